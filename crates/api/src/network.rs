//! `DIR/network.json`: how every command finds a local network started by `pith up`.

use pith_crypto::Address;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// File name inside the network directory.
pub const FILE_NAME: &str = "network.json";

/// A service endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Identity address.
    pub address: Address,
    /// Base URL.
    pub url: String,
}

/// A local development account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Address.
    pub address: Address,
    /// Private key file (hex, mode 0600), relative to the network directory or absolute.
    pub key_file: String,
    /// What `pith up` uses it for (`deployer`, `operator-0`, `developer`, ...).
    pub role: String,
}

/// `DIR/network.json` (unknown fields are kept by readers that round-trip it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkFile {
    /// Format version (1).
    pub version: u32,
    /// Gateway base URL.
    pub gateway_url: String,
    /// Explorer URL (served by the gateway), when it has one.
    pub explorer_url: Option<String>,
    /// Chain RPC URL.
    pub rpc_url: String,
    /// Chain id.
    pub chain_id: u64,
    /// The deployment manifest (`deployment.json`).
    pub deployment: serde_json::Value,
    /// KMS nodes.
    pub kms: Vec<Endpoint>,
    /// Workers.
    pub workers: Vec<Endpoint>,
    /// Funded development accounts.
    pub accounts: Vec<Account>,
    /// Development CA directory (simulated platform root), when the network uses one.
    pub dev_ca: Option<String>,
}

/// Errors reading or writing the network file.
#[derive(Debug, thiserror::Error)]
pub enum NetworkFileError {
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// JSON.
    #[error("{path}: {source}")]
    Json {
        /// File.
        path: String,
        /// Cause.
        source: serde_json::Error,
    },
}

impl NetworkFile {
    /// Read `dir/network.json`.
    pub fn read(dir: &Path) -> Result<Self, NetworkFileError> {
        let path = dir.join(FILE_NAME);
        let p = path.display().to_string();
        let bytes = std::fs::read(&path).map_err(|source| NetworkFileError::Io {
            path: p.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| NetworkFileError::Json { path: p, source })
    }

    /// Write `dir/network.json` atomically (temporary file + rename).
    pub fn write(&self, dir: &Path) -> Result<(), NetworkFileError> {
        let path = dir.join(FILE_NAME);
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        let p = path.display().to_string();
        let json = serde_json::to_vec_pretty(self).map_err(|source| NetworkFileError::Json {
            path: p.clone(),
            source,
        })?;
        std::fs::write(&tmp, json).map_err(|source| NetworkFileError::Io {
            path: p.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &path).map_err(|source| NetworkFileError::Io { path: p, source })
    }
}
