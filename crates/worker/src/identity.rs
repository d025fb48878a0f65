//! The worker's identity and its sealed state.
//!
//! At first start the worker generates, inside the TEE, a secp256k1 identity key (its
//! Ethereum address, which signs receipts, announcements, key-release requests and usage
//! batches) and an X25519 key-transport key (to which the KMS seals program keys). Both are
//! sealed to the state directory and bound into the worker's evidence through
//! `pith_api::binding::report_data(WORKER_REPORT_TAG, ...)`.
//!
//! **Sealing is simulated here**: the sealing key is a random file `sealing.key` in the
//! state directory, labelled as simulated. On a real TEE the same [`Sealer`] is built from
//! the platform's sealing key (SGX `EGETKEY` / TDX-derived keys) or a KMS-derived disk key
//! bound to the measurement, so another binary or machine cannot open the state.
//!
//! ```text
//! sealed file = nonce(24) ‖ XChaCha20-Poly1305(sealing_key, nonce, plaintext,
//!                                               ad = "pith/v1/worker-state" ‖ 0x00 ‖ name)
//! identity    = secp256k1 secret(32) ‖ x25519 secret(32)
//! ```

use std::path::Path;

use k256::ecdsa::SigningKey;
use pith_crypto::Address;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::error::WorkerError;

/// AEAD associated-data prefix of every sealed state file.
pub const STATE_AD: &[u8] = b"pith/v1/worker-state";
/// File name of the simulated sealing key.
pub const SEALING_KEY_FILE: &str = pith_attest::sealing::SEALING_KEY_FILE;
/// File name of the sealed identity.
pub const IDENTITY_FILE: &str = "identity.sealed";

fn seal_err(e: pith_attest::sealing::SealError) -> WorkerError {
    WorkerError::State(e.to_string())
}

/// Seals and opens the worker's state files (`pith_attest::sealing` under the worker's
/// domain [`STATE_AD`]).
#[derive(Debug)]
pub struct Sealer(pith_attest::sealing::Sealer);

impl Sealer {
    /// The simulated sealer of `dir`: loads `dir/sealing.key`, creating it (mode 0600) on
    /// first start.
    pub fn simulated(dir: &Path) -> Result<Self, WorkerError> {
        pith_attest::sealing::Sealer::simulated(dir, STATE_AD)
            .map(Self)
            .map_err(seal_err)
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        self.0.dir()
    }

    /// Seal `plaintext` as the state file `name` (relative to the state directory).
    pub fn write(&self, name: &str, plaintext: &[u8]) -> Result<(), WorkerError> {
        self.0.write(name, plaintext).map_err(seal_err)
    }

    /// Open the state file `name`; `None` when it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, WorkerError> {
        self.0.read(name).map_err(seal_err)
    }
}

/// The worker's keys.
pub struct Identity {
    signing: SigningKey,
    transport: x25519_dalek::StaticSecret,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A fresh identity from the OS random source (inside the TEE).
    pub fn generate() -> Self {
        let signing = SigningKey::random(&mut OsRng);
        let mut t = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(t.as_mut());
        Self {
            signing,
            transport: x25519_dalek::StaticSecret::from(*t),
        }
    }

    /// Load the sealed identity, or generate and seal one at first start.
    pub fn load_or_create(sealer: &Sealer) -> Result<Self, WorkerError> {
        if let Some(bytes) = sealer.read(IDENTITY_FILE)? {
            let (s, t) = bytes
                .split_first_chunk::<32>()
                .ok_or_else(|| WorkerError::State("identity: truncated".into()))?;
            let t: [u8; 32] = t
                .try_into()
                .map_err(|_| WorkerError::State("identity: bad length".into()))?;
            let signing = SigningKey::from_slice(s)
                .map_err(|_| WorkerError::State("identity: bad secp256k1 key".into()))?;
            return Ok(Self {
                signing,
                transport: x25519_dalek::StaticSecret::from(t),
            });
        }
        let id = Self::generate();
        let mut plain = Zeroizing::new(Vec::with_capacity(64));
        plain.extend_from_slice(&id.signing.to_bytes());
        plain.extend_from_slice(id.transport.as_bytes());
        sealer.write(IDENTITY_FILE, &plain)?;
        Ok(id)
    }

    /// The identity (signing) key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The worker's address.
    pub fn address(&self) -> Address {
        pith_crypto::keytree::address_of(&self.signing)
    }

    /// The X25519 key-transport public key.
    pub fn enc_public_key(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.transport).to_bytes()
    }

    /// The X25519 key-transport secret (to open key bundles the KMS sealed to it).
    pub fn enc_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.transport.to_bytes())
    }

    /// Sign a `pith_api::binding::message_digest` (65 bytes, v = 27/28).
    pub fn sign_digest(&self, digest: &pith_crypto::B256) -> Result<[u8; 65], WorkerError> {
        pith_crypto::receipt::sign_hash(&self.signing, digest)
            .map_err(|e| WorkerError::State(format!("sign: {e}")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn identity_survives_restart_and_tampering_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::load_or_create(&Sealer::simulated(dir.path()).unwrap()).unwrap();
        let b = Identity::load_or_create(&Sealer::simulated(dir.path()).unwrap()).unwrap();
        assert_eq!(a.address(), b.address());
        assert_eq!(a.enc_public_key(), b.enc_public_key());
        let label = std::fs::read_to_string(dir.path().join(SEALING_KEY_FILE)).unwrap();
        assert!(label.starts_with("# SIMULATED"));
        // the sealed file never holds the secret in clear
        let sealed = std::fs::read(dir.path().join(IDENTITY_FILE)).unwrap();
        assert!(
            !sealed
                .windows(32)
                .any(|w| w == &a.signing_key().to_bytes()[..])
        );
        // a flipped byte, or another machine's sealing key, does not open
        let mut t = sealed.clone();
        t[30] ^= 1;
        std::fs::write(dir.path().join(IDENTITY_FILE), &t).unwrap();
        assert!(Identity::load_or_create(&Sealer::simulated(dir.path()).unwrap()).is_err());
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join(IDENTITY_FILE), &sealed).unwrap();
        assert!(Identity::load_or_create(&Sealer::simulated(other.path()).unwrap()).is_err());
        // a state file renamed to another name does not open either (the name is bound)
        let s = Sealer::simulated(dir.path()).unwrap();
        s.write("a", b"x").unwrap();
        std::fs::copy(dir.path().join("a"), dir.path().join("b")).unwrap();
        assert!(s.read("b").is_err());
    }
}
