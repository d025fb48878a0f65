//! Errors of the KMS.

use pith_api::{ApiError, ErrorKind};

/// What a KMS operation can fail with. Each variant maps to one API error kind
/// ([`KmsError::kind`]); messages never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KmsError {
    /// The state directory or the database could not be read or written, or does not open
    /// with this node's sealing key.
    #[error("state: {0}")]
    State(String),
    /// This node's own evidence could not be produced.
    #[error("evidence: {0}")]
    Evidence(String),
    /// Chain access failed.
    #[error("chain: {0}")]
    Chain(String),
    /// A call to a KMS peer failed.
    #[error("peer: {0}")]
    Peer(String),
    /// A cryptographic operation failed internally.
    #[error("crypto: {0}")]
    Crypto(String),
    /// A typed refusal to a client.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl KmsError {
    /// The API error kind a client sees.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Chain(_) | Self::Peer(_) => ErrorKind::Unavailable,
            Self::State(_) | Self::Evidence(_) | Self::Crypto(_) => ErrorKind::Internal,
            Self::Api(e) => e.kind,
        }
    }

    /// The API error a client sees.
    pub fn to_api(&self) -> ApiError {
        match self {
            Self::Api(e) => e.clone(),
            other => ApiError::new(other.kind(), other.to_string()),
        }
    }
}

impl From<pith_attest::sealing::SealError> for KmsError {
    fn from(e: pith_attest::sealing::SealError) -> Self {
        Self::State(e.to_string())
    }
}

/// Shorthand for a typed refusal.
pub(crate) fn refuse(kind: ErrorKind, message: impl Into<String>) -> KmsError {
    KmsError::Api(ApiError::new(kind, message))
}

/// Shorthand for a chain failure.
pub(crate) fn chain(e: impl std::fmt::Display) -> KmsError {
    KmsError::Chain(e.to_string())
}
