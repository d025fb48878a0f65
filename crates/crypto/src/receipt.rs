//! EIP-712 receipts, signed by the worker key and checkable with one `ecrecover`.
//!
//! ```text
//! EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)
//!   name = "Pith Receipt", version = "1", verifyingContract = the Registry
//! Receipt(bytes32 programId,bytes32 codeHash,bytes32 requestHash,bytes32 responseHash,
//!         bytes32 modelHash,address worker,uint64 timestamp,uint64 cpuMicros,
//!         uint64 wallMicros,uint64 memoryBytes,uint64 egressBytes)
//! signature = 65 bytes r ‖ s ‖ v (v = 27 or 28) over the EIP-712 signing hash
//! ```
//! `modelHash` is zero unless the invocation used a model (confidential AI).

use alloy_primitives::{Address, B256, Signature, U256};
use alloy_sol_types::{Eip712Domain, SolStruct, sol};
use k256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};

use crate::domain;
use crate::error::{CryptoError, Result};
use crate::keytree::address_of;

sol! {
    /// The EIP-712 struct of a receipt.
    #[derive(Debug, PartialEq, Eq)]
    struct Receipt {
        bytes32 programId;
        bytes32 codeHash;
        bytes32 requestHash;
        bytes32 responseHash;
        bytes32 modelHash;
        address worker;
        uint64 timestamp;
        uint64 cpuMicros;
        uint64 wallMicros;
        uint64 memoryBytes;
        uint64 egressBytes;
    }
}

/// The EIP-712 domain of Pith receipts on `chain_id`, bound to the Registry contract.
pub fn receipt_domain(chain_id: u64, registry: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some(domain::RECEIPT_DOMAIN_NAME.into()),
        Some(domain::EIP712_VERSION.into()),
        Some(U256::from(chain_id)),
        Some(registry),
        None,
    )
}

/// Sign an EIP-712 hash with a secp256k1 key: 65 bytes r ‖ s ‖ v (27/28).
pub fn sign_hash(key: &SigningKey, hash: &B256) -> Result<[u8; 65]> {
    let (sig, recid) = key
        .sign_prehash_recoverable(hash.as_slice())
        .map_err(|e| CryptoError::Internal(format!("sign: {e}")))?;
    let s = Signature::from_signature_and_parity(sig, recid.is_y_odd());
    Ok(s.as_bytes())
}

/// Recover the signer of an EIP-712 hash from a 65-byte signature. High-s signatures are
/// rejected (as OpenZeppelin's ECDSA library does on chain).
///
/// Recovery runs in libsecp256k1 (the `secp256k1` crate): it is on the hot path of every
/// client's receipt check; a test checks it against the pure-Rust k256 recovery.
pub fn recover(hash: &B256, signature: &[u8]) -> Result<Address> {
    let sig = Signature::try_from(signature)
        .map_err(|e| CryptoError::BadSignature(format!("not a 65-byte signature: {e}")))?;
    if sig.normalize_s().is_some() {
        return Err(CryptoError::BadSignature("high-s signature".into()));
    }
    let bytes = sig.as_bytes();
    let compact = bytes
        .get(..64)
        .ok_or_else(|| CryptoError::BadSignature("short signature".into()))?;
    let recid = secp256k1::ecdsa::RecoveryId::try_from(i32::from(sig.v()))
        .map_err(|e| CryptoError::BadSignature(format!("recovery id: {e}")))?;
    let rs = secp256k1::ecdsa::RecoverableSignature::from_compact(compact, recid)
        .map_err(|e| CryptoError::BadSignature(format!("signature: {e}")))?;
    let pk = secp256k1::SECP256K1
        .recover_ecdsa(secp256k1::Message::from_digest(hash.0), &rs)
        .map_err(|e| CryptoError::BadSignature(format!("recovery: {e}")))?;
    let uncompressed = pk.serialize_uncompressed();
    let digest = crate::keccak256(uncompressed.get(1..).unwrap_or_default());
    Ok(Address::from_slice(digest.get(12..).unwrap_or_default()))
}

/// A receipt with its domain and signature: the JSON object `pith call` prints and
/// `pith verify` reads (`docs/protocol.md`, "Receipts").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedReceipt {
    /// Chain id of the EIP-712 domain.
    pub chain_id: u64,
    /// Registry address (EIP-712 verifyingContract).
    pub verifying_contract: Address,
    /// Program id.
    pub program_id: B256,
    /// Code hash that ran.
    pub code_hash: B256,
    /// keccak256 of the Binary HTTP request.
    pub request_hash: B256,
    /// keccak256 of the Binary HTTP response.
    pub response_hash: B256,
    /// Model file hash, zero when no model was used.
    pub model_hash: B256,
    /// Worker address (the signer).
    pub worker: Address,
    /// Unix seconds when the response was produced.
    pub timestamp: u64,
    /// CPU time, microseconds.
    pub cpu_micros: u64,
    /// Wall time, microseconds.
    pub wall_micros: u64,
    /// Peak memory, bytes.
    pub memory_bytes: u64,
    /// Egress bytes.
    pub egress_bytes: u64,
    /// 65-byte signature, `0x`-hex.
    #[serde(with = "hex_sig")]
    pub signature: Vec<u8>,
}

mod hex_sig {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(v)))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(serde::de::Error::custom)
    }
}

/// The unsigned fields of a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptFields {
    /// Chain id.
    pub chain_id: u64,
    /// Registry address.
    pub verifying_contract: Address,
    /// The EIP-712 struct.
    pub receipt: Receipt,
}

impl SignedReceipt {
    fn typed(&self) -> Receipt {
        Receipt {
            programId: self.program_id,
            codeHash: self.code_hash,
            requestHash: self.request_hash,
            responseHash: self.response_hash,
            modelHash: self.model_hash,
            worker: self.worker,
            timestamp: self.timestamp,
            cpuMicros: self.cpu_micros,
            wallMicros: self.wall_micros,
            memoryBytes: self.memory_bytes,
            egressBytes: self.egress_bytes,
        }
    }

    /// Sign `fields` with the worker key; the worker field must be that key's address.
    pub fn sign(fields: ReceiptFields, worker_key: &SigningKey) -> Result<Self> {
        let r = fields.receipt;
        if address_of(worker_key) != r.worker {
            return Err(CryptoError::BadSignature(
                "receipt worker is not the signing key's address".into(),
            ));
        }
        let mut out = Self {
            chain_id: fields.chain_id,
            verifying_contract: fields.verifying_contract,
            program_id: r.programId,
            code_hash: r.codeHash,
            request_hash: r.requestHash,
            response_hash: r.responseHash,
            model_hash: r.modelHash,
            worker: r.worker,
            timestamp: r.timestamp,
            cpu_micros: r.cpuMicros,
            wall_micros: r.wallMicros,
            memory_bytes: r.memoryBytes,
            egress_bytes: r.egressBytes,
            signature: Vec::new(),
        };
        out.signature = sign_hash(worker_key, &out.signing_hash())?.to_vec();
        Ok(out)
    }

    /// The EIP-712 signing hash.
    pub fn signing_hash(&self) -> B256 {
        self.typed()
            .eip712_signing_hash(&receipt_domain(self.chain_id, self.verifying_contract))
    }

    /// Check that the signature was made by `self.worker`. (Whether that worker is
    /// registered and attested is checked against the chain by the verifier.)
    pub fn verify_signature(&self) -> Result<()> {
        let signer = recover(&self.signing_hash(), &self.signature)?;
        if signer != self.worker {
            return Err(CryptoError::BadSignature(format!(
                "signed by {signer}, receipt names {}",
                self.worker
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// libsecp256k1 recovery agrees with k256's (alloy's) on valid signatures of random keys
    /// and digests, and both refuse the same malformed ones.
    #[test]
    fn recovery_backends_agree() {
        use rand_core::RngCore;
        let mut rng = rand_core::OsRng;
        for _ in 0..200 {
            let key = SigningKey::random(&mut rng);
            let mut h = [0u8; 32];
            rng.fill_bytes(&mut h);
            let hash = B256::from(h);
            let sig = sign_hash(&key, &hash).unwrap();
            let ours = recover(&hash, &sig).unwrap();
            let k256 = Signature::try_from(&sig[..])
                .unwrap()
                .recover_address_from_prehash(&hash)
                .unwrap();
            assert_eq!(ours, k256);
            assert_eq!(ours, address_of(&key));
            // a flipped bit of r or s: both backends give another address or an error
            let mut bad = sig;
            bad[(h[0] % 64) as usize] ^= 1 << (h[1] % 8);
            let a = recover(&hash, &bad).ok();
            let b = Signature::try_from(&bad[..])
                .ok()
                .and_then(|s| s.recover_address_from_prehash(&hash).ok());
            if a.is_some() && b.is_some() {
                assert_eq!(a, b);
            }
            assert_ne!(a, Some(address_of(&key)));
        }
        // zero r/s, bad v, short input: typed errors, no panic
        assert!(recover(&B256::ZERO, &[0u8; 65]).is_err());
        assert!(recover(&B256::ZERO, &[1u8; 64]).is_err());
        let mut v = [1u8; 65];
        v[64] = 29;
        assert!(recover(&B256::ZERO, &v).is_err());
    }

    fn fields(worker: Address) -> ReceiptFields {
        ReceiptFields {
            chain_id: 31337,
            verifying_contract: Address::repeat_byte(0x42),
            receipt: Receipt {
                programId: B256::repeat_byte(1),
                codeHash: B256::repeat_byte(2),
                requestHash: B256::repeat_byte(3),
                responseHash: B256::repeat_byte(4),
                modelHash: B256::ZERO,
                worker,
                timestamp: 1_700_000_000,
                cpuMicros: 10,
                wallMicros: 20,
                memoryBytes: 30,
                egressBytes: 40,
            },
        }
    }

    #[test]
    fn sign_verify_and_every_field_is_bound() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let r = SignedReceipt::sign(fields(address_of(&key)), &key).unwrap();
        r.verify_signature().unwrap();
        let json = serde_json::to_string(&r).unwrap();
        let back: SignedReceipt = serde_json::from_str(&json).unwrap();
        back.verify_signature().unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        for (k, val) in v.clone().as_object().unwrap() {
            if k == "signature" {
                continue;
            }
            let tampered = match val {
                serde_json::Value::Number(n) => serde_json::json!(n.as_u64().unwrap() + 1),
                serde_json::Value::String(s) => {
                    let mut s = s.clone();
                    let last = s.pop().unwrap();
                    s.push(if last == '1' { '2' } else { '1' });
                    serde_json::json!(s)
                }
                _ => unreachable!(),
            };
            v[k] = tampered;
            let t: SignedReceipt = serde_json::from_value(v.clone()).unwrap();
            assert!(t.verify_signature().is_err(), "field {k} not bound");
            v[k] = val.clone();
        }
    }

    #[test]
    fn wrong_signer_and_garbage_signatures() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let other = SigningKey::from_slice(&[8u8; 32]).unwrap();
        assert!(SignedReceipt::sign(fields(address_of(&other)), &key).is_err());
        let mut r = SignedReceipt::sign(fields(address_of(&key)), &key).unwrap();
        r.signature.truncate(64);
        assert!(r.verify_signature().is_err());
        r.signature = vec![0; 65];
        assert!(r.verify_signature().is_err());
        assert!(serde_json::from_str::<SignedReceipt>("{\"chainId\": 1}").is_err());
    }

    #[test]
    fn typehash_matches_solidity_string() {
        use alloy_sol_types::SolStruct;
        let expected = crate::keccak256(
            b"Receipt(bytes32 programId,bytes32 codeHash,bytes32 requestHash,bytes32 responseHash,bytes32 modelHash,address worker,uint64 timestamp,uint64 cpuMicros,uint64 wallMicros,uint64 memoryBytes,uint64 egressBytes)",
        );
        let r = fields(Address::ZERO).receipt;
        assert_eq!(r.eip712_type_hash().0, expected);
    }
}
