//! The error body every Pith service returns, and its kinds.

use serde::{Deserialize, Serialize};

/// Machine-readable error kinds (`error.kind` in every error body). Stable strings: clients
/// branch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Malformed request (JSON, hex, sizes, encoding). HTTP 400.
    BadRequest,
    /// Signature missing, wrong, or from an address that is not allowed. HTTP 401/403.
    Unauthorized,
    /// Evidence did not verify (signature, chain, format). HTTP 403.
    EvidenceInvalid,
    /// Evidence verified but the chain's policy does not allow it (measurement, platform,
    /// TCB status, not a KMS member, worker not active). HTTP 403.
    PolicyRejected,
    /// Encapsulated request could not be decrypted (unknown key id, wrong key, tampered). HTTP 400.
    DecryptFailed,
    /// Request expiry is past or too far ahead. HTTP 400.
    Expired,
    /// Nonce already seen within its expiry window. HTTP 409.
    Replay,
    /// Program id unknown on chain or not loadable here. HTTP 404.
    UnknownProgram,
    /// Code bytes do not match the code hash. HTTP 422.
    CodeMismatch,
    /// Resource not found. HTTP 404.
    NotFound,
    /// Body or field over a size limit. HTTP 413.
    TooLarge,
    /// Client over its rate limit. HTTP 429.
    RateLimited,
    /// No healthy worker could take the request. HTTP 503.
    NoWorker,
    /// The node is draining and takes no new work. HTTP 503.
    Draining,
    /// A dependency (chain RPC, KMS, store) is unavailable. HTTP 503.
    Unavailable,
    /// This worker does not serve the model an inference program names; nothing ran, another
    /// worker may. HTTP 503.
    ModelUnavailable,
    /// Storage refused a value: authentication failed or version rolled back. HTTP 500
    /// inside the program's response; surfaced to the program as a kv error.
    StorageIntegrity,
    /// Anything else. HTTP 500.
    Internal,
}

impl ErrorKind {
    /// The HTTP status code this kind is returned with.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest | Self::DecryptFailed | Self::Expired => 400,
            Self::Unauthorized => 401,
            Self::EvidenceInvalid | Self::PolicyRejected => 403,
            Self::UnknownProgram | Self::NotFound => 404,
            Self::Replay => 409,
            Self::TooLarge => 413,
            Self::CodeMismatch => 422,
            Self::RateLimited => 429,
            Self::NoWorker | Self::Draining | Self::Unavailable | Self::ModelUnavailable => 503,
            Self::StorageIntegrity | Self::Internal => 500,
        }
    }

    /// The stable string form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::EvidenceInvalid => "evidence_invalid",
            Self::PolicyRejected => "policy_rejected",
            Self::DecryptFailed => "decrypt_failed",
            Self::Expired => "expired",
            Self::Replay => "replay",
            Self::UnknownProgram => "unknown_program",
            Self::CodeMismatch => "code_mismatch",
            Self::NotFound => "not_found",
            Self::TooLarge => "too_large",
            Self::RateLimited => "rate_limited",
            Self::NoWorker => "no_worker",
            Self::Draining => "draining",
            Self::Unavailable => "unavailable",
            Self::ModelUnavailable => "model_unavailable",
            Self::StorageIntegrity => "storage_integrity",
            Self::Internal => "internal",
        }
    }
}

/// `{"error": {"kind": "...", "message": "..."}}`: the body of every non-2xx JSON response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ApiError,
}

/// A typed API error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct ApiError {
    /// Machine-readable kind.
    pub kind: ErrorKind,
    /// Human-readable message (never contains secrets).
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.clone(),
        }
    }
}
