//! Errors of the worker.

use pith_api::{ApiError, ErrorKind};

/// What a worker operation can fail with. Each variant maps to one API error kind
/// ([`WorkerError::kind`]); messages never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// Program keys missing, malformed or not released.
    #[error("program keys: {0}")]
    Keys(String),
    /// The state directory (identity, sealed keys) could not be read or written.
    #[error("state: {0}")]
    State(String),
    /// Evidence could not be produced.
    #[error("evidence: {0}")]
    Evidence(String),
    /// Chain access failed.
    #[error("chain: {0}")]
    Chain(String),
    /// A call to the KMS failed.
    #[error("kms: {0}")]
    Kms(String),
    /// A call to the gateway failed.
    #[error("gateway: {0}")]
    Gateway(String),
    /// A typed refusal to a client.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl WorkerError {
    /// The API error kind a client sees.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Keys(_) | Self::Kms(_) | Self::Chain(_) | Self::Gateway(_) => {
                ErrorKind::Unavailable
            }
            Self::State(_) | Self::Evidence(_) => ErrorKind::Internal,
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

/// Shorthand for a typed refusal.
pub(crate) fn refuse(kind: ErrorKind, message: impl Into<String>) -> WorkerError {
    WorkerError::Api(ApiError::new(kind, message))
}
