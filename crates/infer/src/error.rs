//! The one error type of pith-infer.

use std::path::PathBuf;

use crate::Usage;

/// Why loading a model or answering a chat failed.
///
/// Operator errors (a missing or corrupt model file) are apart from client errors (a bad
/// request, a prompt that does not fit) and from limits the worker enforces (deadline,
/// cancellation), which carry the usage consumed so far so that the work can still be billed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferError {
    /// The model file could not be read (missing, unreadable).
    #[error("model file {path}: {source}")]
    ModelIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The model file is not a usable GGUF model (truncated, corrupt, a missing tensor or
    /// metadata entry, an unsupported architecture or tokenizer).
    #[error("model file {path} is not a usable GGUF model: {reason}")]
    CorruptModel {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The model file's SHA-256 is not the one the caller pinned.
    #[error("model file {path} has sha256 {actual}, expected {expected}")]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// The pinned hash (hex).
        expected: String,
        /// The file's hash (hex).
        actual: String,
    },
    /// The request is malformed (no messages, a temperature out of range, ...).
    #[error("invalid chat request: {0}")]
    InvalidRequest(String),
    /// The rendered prompt leaves no room for a single completion token in the context.
    #[error(
        "prompt of {prompt_tokens} tokens does not fit the model's context of {context_length} tokens"
    )]
    PromptTooLong {
        /// Tokens of the rendered prompt.
        prompt_tokens: usize,
        /// The model's usable context length.
        context_length: usize,
    },
    /// The deadline passed before the completion finished.
    #[error("deadline exceeded after {} prompt and {} completion tokens", usage.prompt_tokens, usage.completion_tokens)]
    DeadlineExceeded {
        /// Work done before the deadline stopped it.
        usage: Usage,
    },
    /// The caller cancelled the completion (its cancel flag, or the token callback said stop).
    #[error("cancelled after {} prompt and {} completion tokens", usage.prompt_tokens, usage.completion_tokens)]
    Cancelled {
        /// Work done before the cancellation.
        usage: Usage,
    },
    /// The model computation failed (a bug or resource exhaustion, not the client's fault).
    #[error("inference failed: {0}")]
    Engine(String),
}

impl InferError {
    /// Usage consumed by a chat that was stopped by a limit, for billing.
    pub fn usage(&self) -> Option<Usage> {
        match self {
            Self::DeadlineExceeded { usage } | Self::Cancelled { usage } => Some(*usage),
            _ => None,
        }
    }
}

impl From<candle_core::Error> for InferError {
    fn from(e: candle_core::Error) -> Self {
        Self::Engine(e.to_string())
    }
}
