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
//! | PUT  | [`crate::agent::PROGRAM_TRIGGERS`] | `SignedTriggers` JSON (owner-signed) → 204 |
//! | GET  | [`crate::agent::PROGRAM_TRIGGERS`] | → `SignedTriggers`, 404 if none |
//! | GET  | [`crate::agent::AGENTS`] | → `[SignedTriggers]` |
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

// ------------------------------------------------------------------------- client

/// What the client of a gateway can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The gateway answered with a typed error body.
    #[error("gateway answered {status}: {error}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error from the body.
        error: crate::ApiError,
    },
    /// The gateway answered with a non-2xx status and no Pith error body.
    #[error("gateway answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// Transport (connect, TLS, timeout, reading the body).
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// A 2xx answer that does not have the documented shape.
    #[error("unexpected answer: {0}")]
    Decode(String),
    /// Code served under a hash does not hash to it.
    #[error("code served for {expected} hashes to {actual}")]
    CodeMismatch {
        /// The hash asked for.
        expected: B256,
        /// sha256 of the bytes served.
        actual: B256,
    },
}

impl ClientError {
    /// The error kind when the gateway answered with a typed error.
    pub fn kind(&self) -> Option<crate::ErrorKind> {
        match self {
            Self::Api { error, .. } => Some(error.kind),
            _ => None,
        }
    }
}

/// The answer to an invocation: the encapsulated response and the headers around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The `message/ohttp-res` bytes.
    pub body: Vec<u8>,
    /// The worker's receipt (header `pith-receipt`), when present.
    pub receipt: Option<pith_crypto::receipt::SignedReceipt>,
    /// The worker that ran it (header `pith-worker`), when present.
    pub worker: Option<Address>,
}

/// Typed HTTP client of the gateway API (every route of this module).
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

fn path_with(template: &str, name: &str, value: &str) -> String {
    template.replace(&format!("{{{name}}}"), value)
}

impl Client {
    /// A client for the gateway at `base_url` (e.g. `http://127.0.0.1:8700`), with a 60 s
    /// request timeout.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        Ok(Self::with_http(base_url, http))
    }

    /// A client using an existing `reqwest::Client` (connection pool, timeouts, TLS roots).
    pub fn with_http(base_url: &str, http: reqwest::Client) -> Self {
        Self {
            base: base_url.trim_end_matches('/').to_string(),
            http,
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Turn a non-2xx answer into a typed error; pass 2xx answers through.
    async fn check(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let bytes = resp.bytes().await?;
        match serde_json::from_slice::<crate::ErrorBody>(&bytes) {
            Ok(body) => Err(ClientError::Api {
                status: status.as_u16(),
                error: body.error,
            }),
            Err(_) => Err(ClientError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(
                    bytes.get(..bytes.len().min(512)).unwrap_or_default(),
                )
                .into_owned(),
            }),
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let resp = Self::check(self.http.get(self.url(path)).send().await?).await?;
        let bytes = resp.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(format!("{path}: {e}")))
    }

    async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let resp = Self::check(self.http.get(self.url(path)).send().await?).await?;
        Ok(resp.bytes().await?.to_vec())
    }

    /// `GET /v1/health`: true when the gateway answers `{"ok": true}`.
    pub async fn health(&self) -> Result<bool, ClientError> {
        let v: serde_json::Value = self.get_json(HEALTH).await?;
        Ok(v.get("ok")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false))
    }

    /// `GET /v1/network`.
    pub async fn network(&self) -> Result<NetworkInfo, ClientError> {
        self.get_json(NETWORK).await
    }

    /// `GET /openapi.json`.
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        self.get_json(OPENAPI).await
    }

    /// `GET /metrics` (Prometheus text).
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let bytes = self.get_bytes(METRICS).await?;
        String::from_utf8(bytes).map_err(|e| ClientError::Decode(format!("metrics: {e}")))
    }

    /// `POST /v1/code`: upload program code; answers its sha256.
    pub async fn upload_code(&self, code: Vec<u8>) -> Result<CodeUploaded, ClientError> {
        let resp = self
            .http
            .post(self.url(CODE))
            .header("content-type", "application/octet-stream")
            .body(code)
            .send()
            .await?;
        let bytes = Self::check(resp).await?.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(format!("{CODE}: {e}")))
    }

    /// `GET /v1/code/{hash}`: the code bytes, checked: `sha256(bytes) == hash`, otherwise
    /// [`ClientError::CodeMismatch`] (the gateway is not trusted with code).
    pub async fn code(&self, hash: B256) -> Result<Vec<u8>, ClientError> {
        let bytes = self
            .get_bytes(&path_with(CODE_BY_HASH, "hash", &hash.to_string()))
            .await?;
        let actual = B256::from(pith_crypto::sha256(&bytes));
        if actual != hash {
            return Err(ClientError::CodeMismatch {
                expected: hash,
                actual,
            });
        }
        Ok(bytes)
    }

    /// `GET /v1/programs`.
    pub async fn programs(&self) -> Result<Vec<ProgramEntry>, ClientError> {
        self.get_json(PROGRAMS).await
    }

    /// `GET /v1/programs/{id}`.
    pub async fn program(&self, id: B256) -> Result<ProgramEntry, ClientError> {
        self.get_json(&path_with(PROGRAM, "id", &id.to_string()))
            .await
    }

    /// `GET /v1/programs/{id}/ohttp-keys`: the key configuration list and the KMS
    /// certificate from the `pith-key-certificate` header. The caller verifies the
    /// certificate (`KeyCertificate::verify`) and that its signer is a KMS member on chain.
    pub async fn ohttp_keys(
        &self,
        id: B256,
    ) -> Result<(Vec<u8>, pith_crypto::certify::KeyCertificate), ClientError> {
        let path = path_with(PROGRAM_OHTTP_KEYS, "id", &id.to_string());
        let resp = Self::check(self.http.get(self.url(&path)).send().await?).await?;
        let header = resp
            .headers()
            .get(crate::headers::KEY_CERTIFICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                ClientError::Decode(format!(
                    "{path}: no {} header",
                    crate::headers::KEY_CERTIFICATE
                ))
            })?;
        let cert_json = crate::from_b64url(&header).map_err(|e| ClientError::Decode(e.message))?;
        let cert = serde_json::from_slice(&cert_json)
            .map_err(|e| ClientError::Decode(format!("key certificate: {e}")))?;
        Ok((resp.bytes().await?.to_vec(), cert))
    }

    /// `POST /v1/programs/{id}/invoke` with a `message/ohttp-req` body.
    pub async fn invoke(&self, id: B256, request: Vec<u8>) -> Result<Invocation, ClientError> {
        let resp = self
            .http
            .post(self.url(&path_with(PROGRAM_INVOKE, "id", &id.to_string())))
            .header("content-type", crate::media::OHTTP_REQ)
            .body(request)
            .send()
            .await?;
        let resp = Self::check(resp).await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let receipt = match header(crate::headers::RECEIPT) {
            Some(h) => {
                let json = crate::from_b64url(&h).map_err(|e| ClientError::Decode(e.message))?;
                Some(
                    serde_json::from_slice(&json)
                        .map_err(|e| ClientError::Decode(format!("receipt: {e}")))?,
                )
            }
            None => None,
        };
        let worker = match header(crate::headers::WORKER) {
            Some(h) => Some(
                h.parse()
                    .map_err(|e| ClientError::Decode(format!("{}: {e}", crate::headers::WORKER)))?,
            ),
            None => None,
        };
        Ok(Invocation {
            body: resp.bytes().await?.to_vec(),
            receipt,
            worker,
        })
    }

    /// `PUT /v1/programs/{id}/secrets` with an encapsulated secrets upload.
    pub async fn put_secrets(&self, id: B256, upload: Vec<u8>) -> Result<(), ClientError> {
        let resp = self
            .http
            .put(self.url(&path_with(PROGRAM_SECRETS, "id", &id.to_string())))
            .header("content-type", crate::media::OHTTP_REQ)
            .body(upload)
            .send()
            .await?;
        Self::check(resp).await.map(drop)
    }

    /// `PUT /v1/programs/{id}/triggers`: an agent's owner-signed triggers.
    pub async fn put_triggers(&self, t: &crate::agent::SignedTriggers) -> Result<(), ClientError> {
        let resp = self
            .http
            .put(self.url(&path_with(
                crate::agent::PROGRAM_TRIGGERS,
                "id",
                &t.program_id.to_string(),
            )))
            .header("content-type", crate::media::JSON)
            .body(serde_json::to_vec(t).map_err(|e| ClientError::Decode(e.to_string()))?)
            .send()
            .await?;
        Self::check(resp).await.map(drop)
    }

    /// `GET /v1/agents`: every program's newest signed triggers (unchecked: verify each
    /// signature against the owner on chain before acting on it).
    pub async fn agents(&self) -> Result<Vec<crate::agent::SignedTriggers>, ClientError> {
        self.get_json(crate::agent::AGENTS).await
    }

    /// `GET /v1/programs/{id}/secrets`: the latest encapsulated upload.
    pub async fn secrets(&self, id: B256) -> Result<Vec<u8>, ClientError> {
        self.get_bytes(&path_with(PROGRAM_SECRETS, "id", &id.to_string()))
            .await
    }

    /// `GET /v1/programs/{id}/logs` with the owner's signature over
    /// `message_digest(LOGS_TAG, [program_id], timestamp)`.
    pub async fn logs(
        &self,
        id: B256,
        timestamp: u64,
        signature: &[u8],
    ) -> Result<crate::worker::ProgramLogs, ClientError> {
        let path = format!(
            "{}?timestamp={timestamp}&signature=0x{}",
            path_with(PROGRAM_LOGS, "id", &id.to_string()),
            hex::encode(signature)
        );
        self.get_json(&path).await
    }

    /// `GET /v1/workers`.
    pub async fn workers(&self) -> Result<Vec<WorkerEntry>, ClientError> {
        self.get_json(WORKERS).await
    }

    /// `GET /v1/workers/{address}`.
    pub async fn worker(&self, address: Address) -> Result<WorkerEntry, ClientError> {
        self.get_json(&path_with(WORKER, "address", &address.to_string()))
            .await
    }

    /// `GET /v1/workers/{address}/evidence`: the registered evidence bytes. The caller checks
    /// `keccak256(bytes)` against the Registry's evidence hash.
    pub async fn worker_evidence(&self, address: Address) -> Result<Vec<u8>, ClientError> {
        self.get_bytes(&path_with(WORKER_EVIDENCE, "address", &address.to_string()))
            .await
    }

    /// `POST /v1/workers/announce`.
    pub async fn announce(&self, announce: &Announce) -> Result<(), ClientError> {
        let body = serde_json::to_vec(announce).map_err(|e| ClientError::Decode(e.to_string()))?;
        let resp = self
            .http
            .post(self.url(ANNOUNCE))
            .header("content-type", crate::media::JSON)
            .body(body)
            .send()
            .await?;
        Self::check(resp).await.map(drop)
    }

    /// `GET /v1/receipts`, newest first, optionally for one program, at most `limit`.
    pub async fn receipts(
        &self,
        program: Option<B256>,
        limit: Option<u32>,
    ) -> Result<Vec<pith_crypto::receipt::SignedReceipt>, ClientError> {
        let mut q = Vec::new();
        if let Some(p) = program {
            q.push(format!("program={p}"));
        }
        if let Some(l) = limit {
            q.push(format!("limit={l}"));
        }
        let path = if q.is_empty() {
            RECEIPTS.to_string()
        } else {
            format!("{RECEIPTS}?{}", q.join("&"))
        };
        self.get_json(&path).await
    }

    /// `GET /v1/receipts/{hash}` (request hash).
    pub async fn receipt(
        &self,
        request_hash: B256,
    ) -> Result<pith_crypto::receipt::SignedReceipt, ClientError> {
        self.get_json(&path_with(RECEIPT, "hash", &request_hash.to_string()))
            .await
    }
}
