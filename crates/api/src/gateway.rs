//! Gateway HTTP API (`pith gateway`): the public face. The OpenAPI document of these routes
//! is served at [`OPENAPI`].
//!
//! | method | path | body → answer |
//! |---|---|---|
//! | GET  | [`OPENAPI`] | → OpenAPI 3.1 JSON |
//! | GET  | [`METRICS`] | → Prometheus text |
//! | GET  | [`HEALTH`] | → `{"ok": true}` |
//! | GET  | [`NETWORK`] | → [`NetworkInfo`] |
//! | POST | [`CODE`] | code bytes → [`CodeUploaded`] (content-addressed by sha256) |
//! | GET  | [`CODE_BY_HASH`] | → code bytes (`application/octet-stream`) |
//! | GET  | [`PROGRAMS`] | → `[ProgramEntry]` |
//! | GET  | [`PROGRAM`] | → [`ProgramEntry`] |
//! | GET  | [`PROGRAM_OHTTP_KEYS`] | → `application/ohttp-keys` body, header `pith-key-certificate` |
//! | POST | [`PROGRAM_INVOKE`] | `message/ohttp-req` → `message/ohttp-res` (+ `pith-receipt`, `pith-worker`) |
//! | PUT  | [`PROGRAM_SECRETS`] | `message/ohttp-req` (encrypted secrets upload) → 204 |
//! | GET  | [`PROGRAM_SECRETS`] | → the latest encrypted upload (`message/ohttp-req`), 404 if none |
//! | GET  | [`PROGRAM_LOGS`] | owner-signed query → `worker::ProgramLogs` merged from all workers |
//! | GET  | [`WORKERS`] | → `[WorkerEntry]` |
//! | GET  | [`WORKER`] | → [`WorkerEntry`] |
//! | GET  | [`WORKER_EVIDENCE`] | → the worker's registered evidence bytes |
//! | POST | [`ANNOUNCE`] | [`Announce`] → 204 |
//! | GET  | [`RECEIPTS`] | query `program`, `limit` → `[SignedReceipt]`, newest first |
//! | GET  | [`RECEIPT`] | `{hash}` = request hash → `SignedReceipt` |
//!
//! Invocation routing: the gateway picks a healthy, registered worker; it retries on another
//! worker only when the request was never delivered (connection refused/reset before any
//! byte of an answer, or a `draining` refusal), never after a worker may have run it.

use pith_crypto::{Address, B256};
use serde::{Deserialize, Serialize};

/// OpenAPI document.
pub const OPENAPI: &str = "/openapi.json";
/// Prometheus metrics.
pub const METRICS: &str = "/metrics";
/// Liveness.
pub const HEALTH: &str = "/v1/health";
/// Network facts.
pub const NETWORK: &str = "/v1/network";
/// Upload code.
pub const CODE: &str = "/v1/code";
/// Download code by sha256.
pub const CODE_BY_HASH: &str = "/v1/code/{hash}";
/// Program list.
pub const PROGRAMS: &str = "/v1/programs";
/// One program.
pub const PROGRAM: &str = "/v1/programs/{id}";
/// A program's key configuration (RFC 9458 media type) with its certificate in a header.
pub const PROGRAM_OHTTP_KEYS: &str = "/v1/programs/{id}/ohttp-keys";
/// Invoke (same path as the worker's).
pub const PROGRAM_INVOKE: &str = crate::worker::INVOKE;
/// Encrypted secrets upload / download.
pub const PROGRAM_SECRETS: &str = "/v1/programs/{id}/secrets";
/// A program's logs (owner only).
pub const PROGRAM_LOGS: &str = crate::worker::LOGS;
/// Workers.
pub const WORKERS: &str = "/v1/workers";
/// One worker.
pub const WORKER: &str = "/v1/workers/{address}";
/// One worker's registered evidence bytes.
pub const WORKER_EVIDENCE: &str = "/v1/workers/{address}/evidence";
/// Worker announcement (heartbeat).
pub const ANNOUNCE: &str = "/v1/workers/announce";
/// Receipts.
pub const RECEIPTS: &str = "/v1/receipts";
/// One receipt by request hash.
pub const RECEIPT: &str = "/v1/receipts/{hash}";

/// Largest code upload accepted (bytes).
pub const MAX_CODE_BYTES: usize = 8 * 1024 * 1024;

/// Network facts a client needs to verify what the gateway says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// Chain id.
    pub chain_id: u64,
    /// RPC URL the gateway reads the chain from.
    pub rpc_url: String,
    /// The deployment manifest (`deployment.json` as written by pith-chain).
    pub deployment: serde_json::Value,
    /// KMS nodes known to the gateway.
    pub kms: Vec<crate::network::Endpoint>,
    /// Gateway software version.
    pub version: String,
}

/// Answer to a code upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeUploaded {
    /// sha256 of the bytes (the code hash registered in Programs).
    pub code_hash: B256,
    /// Size in bytes.
    pub size: u64,
}

/// Programs.Config as JSON (units as in pith-sandbox `Limits`; zero = network default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramConfig {
    /// Memory, MiB.
    pub memory_mib: u32,
    /// CPU, ms.
    pub cpu_millis: u32,
    /// Wall time, ms.
    pub wall_millis: u32,
    /// Egress request count.
    pub egress_count: u32,
    /// Egress bytes.
    pub egress_bytes: u64,
    /// Output bytes.
    pub output_bytes: u64,
    /// Platform mask, decimal string of the uint256.
    pub platform_mask: String,
    /// Egress allow-list hash.
    pub egress_allow_list_hash: B256,
}

/// A program as the gateway shows it (chain facts plus the certified key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramEntry {
    /// Program id (uint256 as 32 bytes).
    pub program_id: B256,
    /// Owner.
    pub owner: Address,
    /// Current code hash (sha256 of the code).
    pub code_hash: B256,
    /// Config.
    pub config: ProgramConfig,
    /// The certified key configuration, when the KMS has certified one.
    pub key: Option<crate::kms::ProgramKeyInfo>,
    /// Deposit left in Billing, PHA wei as a decimal string.
    pub deposit: String,
    /// Invocations relayed by this gateway.
    pub calls: u64,
    /// The program's own Ethereum address (its signing key), when known.
    pub address: Option<Address>,
}

/// A worker announces (and keeps announcing, as a heartbeat) the URL it serves on.
///
/// `signature` = worker key over `binding::message_digest(ANNOUNCE_TAG, [worker, url], timestamp)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// Worker address.
    pub worker: Address,
    /// Base URL, e.g. `http://127.0.0.1:8701`.
    pub url: String,
    /// Unix seconds.
    pub timestamp: u64,
    /// 65-byte signature.
    #[serde(with = "crate::hexser::bytes")]
    pub signature: Vec<u8>,
}

/// A worker as the gateway shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerEntry {
    /// Worker address.
    pub address: Address,
    /// URL it announced.
    pub url: Option<String>,
    /// Operator.
    pub operator: Address,
    /// Platform name.
    pub platform: String,
    /// Platform id.
    pub platform_id: u8,
    /// Registered measurement hash.
    pub measurement_hash: B256,
    /// Registered TCB status code.
    pub tcb_status: u8,
    /// keccak256 of the registered evidence.
    pub evidence_hash: B256,
    /// Active in the Registry.
    pub registered: bool,
    /// Passing the gateway's health checks.
    pub healthy: bool,
    /// Registration expiry, unix seconds.
    pub expiry: u64,
    /// Block of its (latest) registration.
    pub registered_block: Option<u64>,
    /// Last announcement, unix seconds.
    pub last_seen: Option<u64>,
    /// Stake in the operator's pool, PHA wei as a decimal string.
    pub stake: String,
    /// Invocations relayed to it by this gateway.
    pub calls: u64,
}
