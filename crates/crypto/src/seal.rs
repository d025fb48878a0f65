//! Sealed program storage values.
//!
//! ```text
//! ad     = "pith/v1/kv-seal" ‖ program_id(32) ‖ be16(len(key)) ‖ key ‖ be64(version)
//! sealed = nonce(24) ‖ XChaCha20-Poly1305(storage_key, nonce, value, ad)
//! ```
//! The store is untrusted: binding the key and the version into the associated data means a
//! value moved to another key, another program, or presented under another version fails to
//! open. Rollback (an older, validly sealed version) is detected by the caller comparing the
//! version it reads with the highest version it has seen (see the worker's storage).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::domain::SEAL_AD;
use crate::error::{CryptoError, Result};
use crate::keytree::{ProgramId, StorageKey};

const NONCE_LEN: usize = 24;

fn associated_data(program: &ProgramId, key: &[u8], version: u64) -> Result<Vec<u8>> {
    let len = u16::try_from(key.len())
        .map_err(|_| CryptoError::malformed("storage key", "over 65535 bytes"))?;
    let mut ad = Vec::with_capacity(SEAL_AD.len().saturating_add(key.len()).saturating_add(42));
    ad.extend_from_slice(SEAL_AD);
    ad.extend_from_slice(&program.0);
    ad.extend_from_slice(&len.to_be_bytes());
    ad.extend_from_slice(key);
    ad.extend_from_slice(&version.to_be_bytes());
    Ok(ad)
}

/// Seal `value` stored under `key` at `version`.
pub fn seal(
    storage_key: &StorageKey,
    program: &ProgramId,
    key: &[u8],
    version: u64,
    value: &[u8],
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<Vec<u8>> {
    let cipher = XChaCha20Poly1305::new(storage_key.0.as_ref().into());
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let ad = associated_data(program, key, version)?;
    let ct = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: value,
                aad: &ad,
            },
        )
        .map_err(|_| CryptoError::Internal("seal failed".into()))?;
    let mut out = Vec::with_capacity(NONCE_LEN.saturating_add(ct.len()));
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Open a value sealed with [`seal`] under the same program, key and version.
pub fn open(
    storage_key: &StorageKey,
    program: &ProgramId,
    key: &[u8],
    version: u64,
    sealed: &[u8],
) -> Result<Vec<u8>> {
    let (nonce, ct) = sealed
        .split_at_checked(NONCE_LEN)
        .ok_or_else(|| CryptoError::malformed("sealed value", "shorter than its nonce"))?;
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| CryptoError::malformed("sealed value", "bad nonce length"))?;
    let cipher = XChaCha20Poly1305::new(storage_key.0.as_ref().into());
    let ad = associated_data(program, key, version)?;
    cipher
        .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad: &ad })
        .map_err(|_| {
            CryptoError::Decrypt(
                "sealed value does not open under this program, key and version".into(),
            )
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn round_trip_and_every_binding() {
        let k = StorageKey::from_bytes([1; 32]);
        let p = ProgramId([2; 32]);
        let s = seal(&k, &p, b"user:1", 7, b"secret", &mut OsRng).unwrap();
        assert_eq!(open(&k, &p, b"user:1", 7, &s).unwrap(), b"secret");
        assert!(open(&k, &p, b"user:2", 7, &s).is_err());
        assert!(open(&k, &p, b"user:1", 6, &s).is_err());
        assert!(open(&k, &ProgramId([3; 32]), b"user:1", 7, &s).is_err());
        assert!(open(&StorageKey::from_bytes([9; 32]), &p, b"user:1", 7, &s).is_err());
        for i in 0..s.len() {
            let mut t = s.clone();
            t[i] ^= 1;
            assert!(open(&k, &p, b"user:1", 7, &t).is_err());
        }
        assert!(open(&k, &p, b"user:1", 7, &s[..10]).is_err());
    }
}
