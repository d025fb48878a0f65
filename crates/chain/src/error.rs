//! Errors of the chain layer: one type, with the failing step named in each variant.

use std::path::PathBuf;

/// Anything the chain layer can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No anvil binary on `PATH`, in `$PITH_ANVIL` or in the project's `node_modules`.
    #[error("anvil not found (looked in $PITH_ANVIL, PATH and {searched})")]
    AnvilNotFound {
        /// The node_modules locations that were searched.
        searched: String,
    },
    /// Anvil exited or never answered `eth_chainId` within the start timeout.
    #[error("anvil did not become ready: {0}")]
    AnvilNotReady(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A process could not be spawned or signalled.
    #[error("process: {0}")]
    Process(#[source] std::io::Error),
    /// A JSON file (manifest, cursor, artifact, anvil config) is malformed.
    #[error("{path}: malformed JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The deployment manifest is inconsistent (for example a zero address or a missing contract).
    #[error("deployment manifest: {0}")]
    Manifest(String),
    /// A key file or keystore could not be used.
    #[error("key: {0}")]
    Key(String),
    /// The RPC transport or node failed.
    #[error("rpc: {0}")]
    Rpc(String),
    /// A contract call reverted or its result could not be decoded.
    #[error("contract {contract}.{function}: {message}")]
    Contract {
        /// Contract name.
        contract: &'static str,
        /// Function name.
        function: &'static str,
        /// Revert reason or decoding failure.
        message: String,
    },
    /// A transaction was mined but reverted.
    #[error("transaction {tx} reverted ({what})")]
    Reverted {
        /// Transaction hash.
        tx: String,
        /// What the transaction was doing.
        what: String,
    },
    /// The chain is not in the state an operation needs (wrong chain id, proposal state, ...).
    #[error("{0}")]
    State(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn json(path: impl Into<PathBuf>, source: serde_json::Error) -> Self {
        Self::Json {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn rpc(e: impl std::fmt::Display) -> Self {
        Self::Rpc(e.to_string())
    }
}

/// Result with the chain layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
