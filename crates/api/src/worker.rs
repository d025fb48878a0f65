//! Worker HTTP API (`pith worker`). The gateway is the worker's only intended client, but
//! every route is safe to expose: invocations are end-to-end encrypted.
//!
//! | method | path | body → answer |
//! |---|---|---|
//! | GET  | [`INFO`] | → [`WorkerInfo`] |
//! | GET  | [`HEALTH`] | → [`WorkerHealth`] (503 while draining) |
//! | POST | [`INVOKE`] | `message/ohttp-req` → `message/ohttp-res` + headers `pith-receipt`, `pith-worker` |
//! | GET  | [`LOGS`] | query `timestamp`, `signature` (owner, `binding::LOGS_TAG`) → [`ProgramLogs`] |
//!
//! Invocation outcomes: a response the program produced (any status, including a sandbox
//! limit error, which is an encrypted 500 with the sandbox's JSON error body inside) is a
//! 200 `message/ohttp-res` with a receipt. Refusals before the program runs are plain JSON
//! errors: `decrypt_failed`, `expired`, `replay`, `unknown_program`, `draining`,
//! `unavailable` (keys not yet released). A request refused with `draining` was never
//! delivered to a program, so the gateway may retry it elsewhere.

use pith_crypto::{Address, B256};
use serde::{Deserialize, Serialize};

/// `GET` the worker's identity and state.
pub const INFO: &str = "/v1/worker/info";
/// `GET` health.
pub const HEALTH: &str = "/v1/worker/health";
/// `POST` an encrypted invocation (axum path syntax; `{id}` = program id, `0x`-hex).
pub const INVOKE: &str = "/v1/programs/{id}/invoke";
/// `GET` a program's recent logs (owner only).
pub const LOGS: &str = "/v1/programs/{id}/logs";

/// A worker's identity and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Worker identity address.
    pub address: Address,
    /// Operator address.
    pub operator: Address,
    /// Platform name.
    pub platform: String,
    /// Platform id.
    pub platform_id: u8,
    /// Measurement hash of its evidence.
    pub measurement_hash: B256,
    /// TCB status code.
    pub tcb_status: u8,
    /// Its evidence (as registered).
    #[serde(with = "crate::hexser::bytes")]
    pub evidence: Vec<u8>,
    /// X25519 key-transport public key.
    #[serde(with = "crate::hexser::bytes32")]
    pub enc_public_key: [u8; 32],
    /// The URL it serves on.
    pub url: String,
    /// Registered and active on chain.
    pub registered: bool,
    /// Registration expiry (unix seconds) when registered.
    pub registration_expiry: Option<u64>,
    /// Draining: finishing in-flight work, taking none.
    pub draining: bool,
    /// Programs whose keys it holds.
    pub programs: Vec<B256>,
    /// sha256 of the model file it serves, when it serves one.
    pub model_hash: Option<B256>,
}

/// Health answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerHealth {
    /// Registered and not draining.
    pub ok: bool,
    /// Registered on chain.
    pub registered: bool,
    /// Draining.
    pub draining: bool,
    /// Invocations running now.
    pub in_flight: u64,
}

/// One captured log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Unix milliseconds.
    pub time_ms: u64,
    /// `log`, `info`, `warn`, `error`, `debug`.
    pub level: String,
    /// The message.
    pub message: String,
    /// Worker that captured it.
    pub worker: Address,
}

/// A program's recent logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramLogs {
    /// Program id.
    pub program_id: B256,
    /// Oldest first.
    pub entries: Vec<LogEntry>,
}
