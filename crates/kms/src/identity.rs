//! The KMS node's identity: a secp256k1 key (its Ethereum address, a member of the
//! Registry's KMS committee; signs registrations, key certificates and replication answers)
//! and an X25519 key-transport key (peers seal replicated master keys to it). Both are
//! generated inside the TEE at first start, sealed to the state directory
//! (`pith_attest::sealing`, domain [`STATE_AD`]) and bound into the node's evidence through
//! `pith_api::binding::report_data(KMS_REPORT_TAG, ...)`.
//!
//! ```text
//! identity.sealed = secp256k1 secret(32) ‖ x25519 secret(32)
//! ```

use std::path::Path;

use k256::ecdsa::SigningKey;
use pith_attest::sealing::Sealer;
use pith_crypto::{Address, B256};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::error::KmsError;

/// Sealing domain of every KMS state file and database record.
pub const STATE_AD: &[u8] = b"pith/v1/kms-state";
/// File name of the sealed identity.
pub const IDENTITY_FILE: &str = "identity.sealed";

/// The simulated sealer of a KMS state directory.
pub fn sealer(dir: &Path) -> Result<Sealer, KmsError> {
    Ok(Sealer::simulated(dir, STATE_AD)?)
}

/// The KMS node's keys.
pub struct Identity {
    signing: SigningKey,
    transport: Zeroizing<[u8; 32]>,
    enc_public_key: [u8; 32],
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl Identity {
    fn from_secrets(signing: &[u8; 32], transport: &[u8; 32]) -> Result<Self, KmsError> {
        let signing = SigningKey::from_slice(signing)
            .map_err(|_| KmsError::State("identity: bad secp256k1 key".into()))?;
        let enc_public_key = pith_crypto::transport::public_key(transport)
            .map_err(|e| KmsError::State(format!("identity: {e}")))?;
        Ok(Self {
            signing,
            transport: Zeroizing::new(*transport),
            enc_public_key,
        })
    }

    /// Load the sealed identity, or generate and seal one at first start.
    pub fn load_or_create(sealer: &Sealer) -> Result<Self, KmsError> {
        if let Some(bytes) = sealer.read(IDENTITY_FILE)? {
            let (s, t) = bytes
                .split_first_chunk::<32>()
                .ok_or_else(|| KmsError::State("identity: truncated".into()))?;
            let t: &[u8; 32] = t
                .try_into()
                .map_err(|_| KmsError::State("identity: bad length".into()))?;
            return Self::from_secrets(s, t);
        }
        let signing = SigningKey::random(&mut OsRng);
        let mut secret = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(secret.as_mut());
        let mut plain = Zeroizing::new(Vec::with_capacity(64));
        plain.extend_from_slice(&signing.to_bytes());
        plain.extend_from_slice(secret.as_ref());
        sealer.write(IDENTITY_FILE, &plain)?;
        Self::from_secrets(&signing.to_bytes().into(), &secret)
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The node's address.
    pub fn address(&self) -> Address {
        pith_crypto::keytree::address_of(&self.signing)
    }

    /// The X25519 key-transport public key.
    pub fn enc_public_key(&self) -> [u8; 32] {
        self.enc_public_key
    }

    /// The X25519 key-transport secret (to open master keys a peer sealed to it).
    pub fn enc_secret(&self) -> &[u8; 32] {
        &self.transport
    }

    /// Sign a digest (65 bytes, v = 27/28).
    pub fn sign_digest(&self, digest: &B256) -> Result<[u8; 65], KmsError> {
        pith_crypto::receipt::sign_hash(&self.signing, digest)
            .map_err(|e| KmsError::Crypto(format!("sign: {e}")))
    }
}
