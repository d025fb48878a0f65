//! Errors of this crate.

/// Why a cryptographic operation failed. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Bytes are not a well-formed message of the expected kind.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which message.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Decryption or authentication failed (wrong key, tampered ciphertext, wrong binding).
    #[error("decryption failed: {0}")]
    Decrypt(String),
    /// The request was encrypted to a key configuration this server does not hold
    /// (for example another program's key, or a retired epoch).
    #[error("unknown key: {0}")]
    UnknownKey(String),
    /// A signature does not verify or was made by another signer.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// A request is expired, or its expiry is too far in the future.
    #[error("request expired or expiry out of range: {0}")]
    Expired(String),
    /// Key derivation or encapsulation failed internally.
    #[error("crypto failure: {0}")]
    Internal(String),
}

impl CryptoError {
    pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        Self::Malformed {
            what,
            detail: detail.into(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = CryptoError> = std::result::Result<T, E>;
