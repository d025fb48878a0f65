//! Ethereum conventions used by `env.keys`: EIP-191 personal messages, EIP-55 addresses.

use crate::keccak256;

/// `keccak256("\x19Ethereum Signed Message:\n" ‖ len(message) ‖ message)` (EIP-191 version
/// 0x45), what `sign(bytes)` signs; verifiable with ethers' `verifyMessage` or viem's
/// `verifyMessage`.
pub fn personal_message_hash(message: &[u8]) -> [u8; 32] {
    let mut buf = format!("\x19Ethereum Signed Message:\n{}", message.len()).into_bytes();
    buf.extend_from_slice(message);
    keccak256(&buf)
}

/// EIP-55 mixed-case checksum encoding.
pub fn checksum_address(a: &[u8; 20]) -> String {
    let lower = hex::encode(a);
    let h = keccak256(lower.as_bytes());
    let mut out = String::from("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (h[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
        if c.is_ascii_alphabetic() && nibble >= 8 {
            out.push(c.to_ascii_uppercase())
        } else {
            out.push(c)
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip55_vector() {
        let a: [u8; 20] = hex::decode("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(
            checksum_address(&a),
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
        );
    }
}
