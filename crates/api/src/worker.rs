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

// ------------------------------------------------------------------------- client

/// Why a call to a worker failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The request never got an HTTP answer (connection refused, reset, timeout).
    #[error("worker unreachable: {0}")]
    Transport(String),
    /// The worker answered with a typed error body.
    #[error("worker refused ({status}): {error}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error body.
        error: crate::ApiError,
    },
    /// The answer was not what the API promises (bad JSON, missing receipt header).
    #[error("bad answer from worker: {0}")]
    BadAnswer(String),
}

impl ClientError {
    /// The error kind when the worker answered with a typed error.
    pub fn kind(&self) -> Option<crate::ErrorKind> {
        match self {
            Self::Api { error, .. } => Some(error.kind),
            _ => None,
        }
    }
}

/// An encrypted invocation's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoked {
    /// The `message/ohttp-res` body (decapsulate with the client's session).
    pub ohttp_res: Vec<u8>,
    /// The decoded `pith-receipt` header.
    pub receipt: pith_crypto::receipt::SignedReceipt,
    /// The raw `pith-receipt` header value (base64url of the receipt JSON).
    pub receipt_header: String,
    /// The `pith-worker` header.
    pub worker: Address,
}

/// Typed HTTP client of a worker (`reqwest` with rustls). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client for the worker at `base_url` (e.g. `http://127.0.0.1:8701`).
    pub fn new(base_url: &str) -> Self {
        Self::with_http(base_url, reqwest::Client::new())
    }

    /// A client sharing an existing `reqwest::Client` (connection pool, timeouts).
    pub fn with_http(base_url: &str, http: reqwest::Client) -> Self {
        Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The worker's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET` [`INFO`].
    pub async fn info(&self) -> Result<WorkerInfo, ClientError> {
        let resp = self
            .http
            .get(self.url(INFO))
            .send()
            .await
            .map_err(transport)?;
        json_answer(resp).await
    }

    /// `GET` [`HEALTH`]. A draining worker answers 503 with a [`WorkerHealth`] body; that
    /// body is returned as `Ok` (check `ok`/`draining`).
    pub async fn health(&self) -> Result<WorkerHealth, ClientError> {
        let resp = self
            .http
            .get(self.url(HEALTH))
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(transport)?;
        if let Ok(h) = serde_json::from_slice::<WorkerHealth>(&bytes) {
            return Ok(h);
        }
        Err(api_error(status, &bytes))
    }

    /// `POST` an encapsulated request ([`INVOKE`]) for `program_id`.
    pub async fn invoke(
        &self,
        program_id: B256,
        ohttp_req: Vec<u8>,
    ) -> Result<Invoked, ClientError> {
        let path = INVOKE.replace("{id}", &format!("{program_id:#x}"));
        let resp = self
            .http
            .post(self.url(&path))
            .header(reqwest::header::CONTENT_TYPE, crate::media::OHTTP_REQ)
            .body(ohttp_req)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let receipt_header = header(crate::headers::RECEIPT);
        let worker = header(crate::headers::WORKER);
        let bytes = resp.bytes().await.map_err(transport)?;
        if status != 200 {
            return Err(api_error(status, &bytes));
        }
        let receipt_header = receipt_header
            .ok_or_else(|| ClientError::BadAnswer("missing pith-receipt header".into()))?;
        let receipt = decode_receipt(&receipt_header)?;
        let worker = worker
            .ok_or_else(|| ClientError::BadAnswer("missing pith-worker header".into()))?
            .parse::<Address>()
            .map_err(|e| ClientError::BadAnswer(format!("bad pith-worker header: {e}")))?;
        Ok(Invoked {
            ohttp_res: bytes.to_vec(),
            receipt,
            receipt_header,
            worker,
        })
    }

    /// `GET` [`LOGS`] with the owner's signature over
    /// `binding::message_digest(LOGS_TAG, [program_id], timestamp)`.
    pub async fn logs(
        &self,
        program_id: B256,
        timestamp: u64,
        signature: &[u8],
    ) -> Result<ProgramLogs, ClientError> {
        let path = LOGS.replace("{id}", &format!("{program_id:#x}"));
        let resp = self
            .http
            .get(self.url(&path))
            .query(&[
                ("timestamp", timestamp.to_string()),
                ("signature", format!("0x{}", hex::encode(signature))),
            ])
            .send()
            .await
            .map_err(transport)?;
        json_answer(resp).await
    }
}

/// Decode a `pith-receipt` header value.
pub fn decode_receipt(header: &str) -> Result<pith_crypto::receipt::SignedReceipt, ClientError> {
    let raw = crate::from_b64url(header)
        .map_err(|e| ClientError::BadAnswer(format!("pith-receipt: {e}")))?;
    serde_json::from_slice(&raw)
        .map_err(|e| ClientError::BadAnswer(format!("pith-receipt JSON: {e}")))
}

/// Encode a receipt as a `pith-receipt` header value.
pub fn encode_receipt(receipt: &pith_crypto::receipt::SignedReceipt) -> String {
    // Serializing a struct of plain fields to JSON cannot fail.
    crate::b64url(&serde_json::to_vec(receipt).unwrap_or_default())
}

fn transport(e: reqwest::Error) -> ClientError {
    ClientError::Transport(e.to_string())
}

fn api_error(status: u16, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<crate::ErrorBody>(body) {
        Ok(b) => ClientError::Api {
            status,
            error: b.error,
        },
        Err(_) => ClientError::BadAnswer(format!(
            "HTTP {status} without an error body: {}",
            String::from_utf8_lossy(body.get(..200).unwrap_or(body))
        )),
    }
}

async fn json_answer<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
) -> Result<T, ClientError> {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(transport)?;
    if !(200..300).contains(&status) {
        return Err(api_error(status, &bytes));
    }
    serde_json::from_slice(&bytes).map_err(|e| ClientError::BadAnswer(format!("JSON: {e}")))
}
