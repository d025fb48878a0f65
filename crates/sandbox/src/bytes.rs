//! Byte helpers: reading JavaScript byte views, forgiving base64, SHA-1.
#![allow(unsafe_code)]

use rquickjs::{ArrayBuffer, TypedArray, Value};

/// Copy the bytes of a `Uint8Array` or `ArrayBuffer`.
pub(crate) fn bytes_of(v: &Value<'_>) -> Option<Vec<u8>> {
    if let Ok(ta) = TypedArray::<u8>::from_value(v.clone()) {
        // SAFETY: we copy the bytes out immediately, on the engine's thread, while no
        // JavaScript runs (so the view cannot be detached or resized during the copy).
        return unsafe { ta.as_bytes() }.map(<[u8]>::to_vec);
    }
    if let Some(ab) = ArrayBuffer::from_value(v.clone()) {
        // SAFETY: as above.
        return unsafe { ab.as_bytes() }.map(<[u8]>::to_vec);
    }
    None
}

/// WHATWG "forgiving-base64 decode" (what `atob` does). `None` on failure.
pub(crate) fn forgiving_base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut data: Vec<u8> = s
        .bytes()
        .filter(|b| !matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' '))
        .collect();
    if data.len() % 4 == 0 {
        if data.ends_with(b"==") {
            data.truncate(data.len() - 2);
        } else if data.ends_with(b"=") {
            data.truncate(data.len() - 1);
        }
    }
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0u32;
    for c in data {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((buf >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

pub(crate) fn sha1(b: &[u8]) -> [u8; 20] {
    use sha1::Digest as _;
    sha1::Sha1::digest(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgiving() {
        assert_eq!(forgiving_base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(forgiving_base64_decode("aGk").unwrap(), b"hi");
        assert_eq!(forgiving_base64_decode(" aG k= ").unwrap(), b"hi");
        assert!(forgiving_base64_decode("a").is_none());
        assert!(forgiving_base64_decode("a*==").is_none());
        assert!(forgiving_base64_decode("aGk==").is_none());
    }
}
