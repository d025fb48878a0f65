//! The HTTP routes (one table, [`ROUTES`], from which both the router and the OpenAPI
//! test are built), the request middleware (rate limit, metrics), and the handlers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use alloy::primitives::U256;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use pith_api::gateway::{
    self as api, Announce, CodeUploaded, NetworkInfo, ProgramConfig, ProgramEntry,
};
use pith_api::{ErrorKind, agent, headers, media};
use pith_crypto::receipt::SignedReceipt;
use pith_crypto::{Address, B256};
use serde::Deserialize;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::chain::{ChainProgram, ChainView};
use crate::error::Failure;
use crate::explorer;
use crate::kms::KmsKeys;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::store::Store;
use crate::workers::Workers;
use crate::{GatewayConfig, GatewayError, now_secs};

/// Every route: method and path template. The router is built from this table and the
/// OpenAPI test checks that each appears in the document.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", api::OPENAPI),
    ("get", api::METRICS),
    ("get", api::HEALTH),
    ("get", api::NETWORK),
    ("post", api::CODE),
    ("get", api::CODE_BY_HASH),
    ("get", api::PROGRAMS),
    ("get", api::PROGRAM),
    ("get", api::PROGRAM_OHTTP_KEYS),
    ("post", api::PROGRAM_INVOKE),
    ("put", api::PROGRAM_SECRETS),
    ("get", api::PROGRAM_SECRETS),
    ("put", agent::PROGRAM_TRIGGERS),
    ("get", agent::PROGRAM_TRIGGERS),
    ("get", agent::AGENTS),
    ("get", api::PROGRAM_LOGS),
    ("get", api::WORKERS),
    ("post", api::ANNOUNCE),
    ("get", api::WORKER),
    ("get", api::WORKER_EVIDENCE),
    ("get", api::RECEIPTS),
    ("get", api::RECEIPT),
    ("get", explorer::PAGE),
    ("get", explorer::PAGE_BARE),
    ("get", explorer::ASSET),
    ("get", explorer::OVERVIEW),
    ("get", explorer::WORKERS),
    ("get", explorer::WORKER_ATTESTATION),
    ("get", explorer::WORKER_COLLATERAL),
    ("get", explorer::PROGRAMS),
    ("get", explorer::RECEIPTS),
    ("get", explorer::POOLS),
    ("get", explorer::PROPOSALS),
    ("get", explorer::CALLS),
    ("post", explorer::VERIFY_EVIDENCE),
];

/// Largest number of programs `/v1/programs` lists (the newest ones).
pub const MAX_PROGRAM_LIST: u64 = 500;
/// Largest `limit` of `/v1/receipts`.
pub const MAX_RECEIPT_LIST: usize = 1_000;
/// Largest number of log entries `/v1/programs/{id}/logs` returns (the newest).
pub const MAX_LOG_ENTRIES: usize = 1_000;

/// Shared state of the handlers and background tasks.
#[derive(Debug)]
pub struct AppState {
    /// Configuration.
    pub config: GatewayConfig,
    /// Database.
    pub store: Store,
    /// Chain reads.
    pub chain: ChainView,
    /// Workers.
    pub workers: Workers,
    /// KMS keys.
    pub kms: KmsKeys,
    /// Metrics.
    pub metrics: Metrics,
    limiter: Option<RateLimiter>,
    /// HTTP client to workers (no global timeout; each request sets its own).
    pub http: reqwest::Client,
    calls: Mutex<HashMap<B256, u64>>,
    receipt_tx: mpsc::Sender<SignedReceipt>,
    pending_receipts: Mutex<HashMap<B256, SignedReceipt>>,
    /// Wakes the health loop (after an announcement or a registration event).
    pub wake_health: Notify,
    /// Ask the health loop to re-read registrations on its next turn.
    pub refresh_chain_now: AtomicBool,
    /// Block timestamps the explorer has read.
    pub explorer_blocks: explorer::BlockTimes,
}

impl AppState {
    /// State for `config`; also returns the receiving end of the receipt queue.
    pub fn new(
        config: GatewayConfig,
        store: Store,
        chain: ChainView,
    ) -> Result<(Self, mpsc::Receiver<SignedReceipt>), GatewayError> {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .connect_timeout(std::time::Duration::from_secs(2))
            .build()?;
        let (tx, rx) = mpsc::channel(4096);
        let limiter = config.rate_limit.map(|r| RateLimiter::new(r, r.max(1.0)));
        Ok((
            Self {
                workers: Workers::new(config.unhealthy_after),
                kms: KmsKeys::new(config.kms_urls.clone(), http.clone()),
                config,
                store,
                chain,
                metrics: Metrics::default(),
                limiter,
                http,
                calls: Mutex::new(HashMap::new()),
                receipt_tx: tx,
                pending_receipts: Mutex::new(HashMap::new()),
                wake_health: Notify::new(),
                refresh_chain_now: AtomicBool::new(false),
                explorer_blocks: explorer::BlockTimes::default(),
            },
            rx,
        ))
    }

    fn calls_of(&self, program: &B256) -> u64 {
        self.calls
            .lock()
            .ok()
            .and_then(|m| m.get(program).copied())
            .unwrap_or(0)
    }
}

type S = State<Arc<AppState>>;

fn method_router(method: &str, path: &str) -> Option<MethodRouter<Arc<AppState>>> {
    use axum::routing::put;
    Some(match (method, path) {
        ("get", api::OPENAPI) => get(openapi),
        ("get", api::METRICS) => get(metrics),
        ("get", api::HEALTH) => get(health),
        ("get", api::NETWORK) => get(network),
        ("post", api::CODE) => post(upload_code),
        ("get", api::CODE_BY_HASH) => get(code),
        ("get", api::PROGRAMS) => get(programs),
        ("get", api::PROGRAM) => get(program),
        ("get", api::PROGRAM_OHTTP_KEYS) => get(ohttp_keys),
        ("post", api::PROGRAM_INVOKE) => post(invoke),
        ("put", api::PROGRAM_SECRETS) => put(put_secrets),
        ("get", api::PROGRAM_SECRETS) => get(get_secrets),
        ("put", agent::PROGRAM_TRIGGERS) => put(put_triggers),
        ("get", agent::PROGRAM_TRIGGERS) => get(get_triggers),
        ("get", agent::AGENTS) => get(list_agents),
        ("get", api::PROGRAM_LOGS) => get(logs),
        ("get", api::WORKERS) => get(workers),
        ("post", api::ANNOUNCE) => post(announce),
        ("get", api::WORKER) => get(worker),
        ("get", api::WORKER_EVIDENCE) => get(worker_evidence),
        ("get", api::RECEIPTS) => get(receipts),
        ("get", api::RECEIPT) => get(receipt),
        ("get", explorer::PAGE) => get(explorer::page),
        ("get", explorer::PAGE_BARE) => get(explorer::page_bare),
        ("get", explorer::ASSET) => get(explorer::asset_file),
        ("get", explorer::OVERVIEW) => get(explorer::overview),
        ("get", explorer::WORKERS) => get(explorer::workers),
        ("get", explorer::WORKER_ATTESTATION) => get(explorer::attestation),
        ("get", explorer::WORKER_COLLATERAL) => get(explorer::collateral),
        ("get", explorer::PROGRAMS) => get(explorer::programs),
        ("get", explorer::RECEIPTS) => get(explorer::receipts),
        ("get", explorer::POOLS) => get(explorer::pools),
        ("get", explorer::PROPOSALS) => get(explorer::proposals),
        ("get", explorer::CALLS) => get(explorer::calls),
        ("post", explorer::VERIFY_EVIDENCE) => post(explorer::verify_evidence),
        _ => return None,
    })
}

/// The router over [`ROUTES`] with the rate-limit/metrics middleware and JSON 404/405s.
pub fn router(state: Arc<AppState>) -> Router {
    let mut by_path: Vec<(&str, MethodRouter<Arc<AppState>>)> = Vec::new();
    for (method, path) in ROUTES {
        let Some(mr) = method_router(method, path) else {
            continue;
        };
        match by_path.iter_mut().find(|(p, _)| p == path) {
            Some((_, existing)) => *existing = std::mem::take(existing).merge(mr),
            None => by_path.push((path, mr)),
        }
    }
    let mut r = Router::new();
    for (path, mr) in by_path {
        r = r.route(path, mr.fallback(method_not_allowed));
    }
    r.fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

async fn not_found() -> Failure {
    Failure::new(ErrorKind::NotFound, "no such route")
}

async fn method_not_allowed() -> Response {
    let mut r =
        Failure::new(ErrorKind::BadRequest, "method not allowed on this route").into_response();
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}

/// Rate limit per client IP (not on `/metrics` and `/v1/health`), then count the answer.
async fn observe(State(state): S, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().as_str().to_string();
    if let Some(limiter) = &state.limiter {
        let exempt = route == api::METRICS || route == api::HEALTH;
        let ip = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if let (false, Some(ip)) = (exempt, ip) {
            if !limiter.allow(ip, start) {
                state.metrics.rate_limited();
                let resp = Failure::new(
                    ErrorKind::RateLimited,
                    "too many requests from this address",
                )
                .into_response();
                state.metrics.observe_request(
                    &route,
                    &method,
                    resp.status().as_u16(),
                    start.elapsed(),
                );
                return resp;
            }
        }
    }
    let resp = next.run(req).await;
    state
        .metrics
        .observe_request(&route, &method, resp.status().as_u16(), start.elapsed());
    resp
}

// ------------------------------------------------------------------------- helpers

/// Read a body of at most `limit` bytes (checked on `content-length` first, then while
/// reading).
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, Failure> {
    let too_large = || {
        Failure::new(
            ErrorKind::TooLarge,
            format!("body larger than {limit} bytes"),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(too_large());
        }
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}

/// A program id from a path: `0x` + 64 hex digits, or a decimal number.
pub fn parse_program_id(s: &str) -> Result<B256, Failure> {
    if let Some(hex) = s.strip_prefix("0x") {
        let bytes = hex::decode(hex)
            .map_err(|_| Failure::new(ErrorKind::BadRequest, "program id is not hex"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Failure::new(ErrorKind::BadRequest, "program id is not 32 bytes"))?;
        return Ok(B256::from(arr));
    }
    let n: U256 = s.parse().map_err(|_| {
        Failure::new(
            ErrorKind::BadRequest,
            "program id is neither 0x-hex nor decimal",
        )
    })?;
    Ok(B256::from(n.to_be_bytes::<32>()))
}

fn parse_hash(s: &str, what: &str) -> Result<B256, Failure> {
    let hex = s.strip_prefix("0x").unwrap_or(s);
    let bytes = hex::decode(hex)
        .map_err(|_| Failure::new(ErrorKind::BadRequest, format!("{what} is not hex")))?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| Failure::new(ErrorKind::BadRequest, format!("{what} is not 32 bytes")))?;
    Ok(B256::from(arr))
}

fn parse_address(s: &str) -> Result<Address, Failure> {
    s.parse()
        .map_err(|_| Failure::new(ErrorKind::BadRequest, "not a 20-byte 0x-hex address"))
}

fn bytes_response(content_type: &'static str, body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, Failure> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

async fn chain_program(state: &AppState, id: B256) -> Result<ChainProgram, Failure> {
    state
        .chain
        .program(U256::from_be_bytes(id.0))
        .await?
        .ok_or_else(|| {
            Failure::new(
                ErrorKind::UnknownProgram,
                format!("no program {id} on chain"),
            )
        })
}

fn program_entry(
    state: &AppState,
    p: &ChainProgram,
    key: Option<pith_api::kms::ProgramKeyInfo>,
) -> ProgramEntry {
    let id = B256::from(p.id.to_be_bytes::<32>());
    let key_address = key.as_ref().map(|k| k.certificate.program_address);
    ProgramEntry {
        program_id: id,
        owner: p.owner,
        code_hash: p.code_hash,
        config: ProgramConfig {
            memory_mib: p.config.memoryMib,
            cpu_millis: p.config.cpuMillis,
            wall_millis: p.config.wallMillis,
            egress_count: p.config.egressCount,
            egress_bytes: p.config.egressBytes,
            output_bytes: p.config.outputBytes,
            platform_mask: p.config.platformMask.to_string(),
            egress_allow_list_hash: p.config.egressAllowListHash,
        },
        key,
        deposit: p.deposit.to_string(),
        calls: state.calls_of(&id),
        // The program's own address in the newest epoch, certified by the KMS together with
        // the key configuration (the certificate was checked before `key` got here).
        address: key_address,
    }
}

// ------------------------------------------------------------------------- service routes

async fn openapi() -> Response {
    axum::Json(crate::openapi::document()).into_response()
}

async fn metrics(State(state): S) -> Response {
    let text = state.metrics.render(&state.workers.gauges());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn health() -> Response {
    axum::Json(serde_json::json!({"ok": true})).into_response()
}

async fn network(State(state): S) -> Result<Response, Failure> {
    let d = state.chain.deployment();
    let deployment =
        serde_json::to_value(d).map_err(|e| Failure::new(ErrorKind::Internal, e.to_string()))?;
    Ok(axum::Json(NetworkInfo {
        chain_id: d.chain_id,
        rpc_url: state.config.rpc_url.clone(),
        deployment,
        kms: state.kms.endpoints().await,
        version: env!("CARGO_PKG_VERSION").to_string(),
    })
    .into_response())
}

// ------------------------------------------------------------------------- code

async fn upload_code(State(state): S, headers: HeaderMap, body: Body) -> Result<Response, Failure> {
    let bytes = read_body(&headers, body, state.config.max_code_bytes).await?;
    if bytes.is_empty() {
        return Err(Failure::new(ErrorKind::BadRequest, "empty code"));
    }
    let size = bytes.len() as u64;
    let store = state.store.clone();
    let code_hash = blocking(move || store.put_code(&bytes)).await?;
    tracing::info!(target: "pith_gateway", %code_hash, size, "code stored");
    Ok((
        StatusCode::CREATED,
        axum::Json(CodeUploaded { code_hash, size }),
    )
        .into_response())
}

async fn code(State(state): S, Path(hash): Path<String>) -> Result<Response, Failure> {
    let hash = parse_hash(&hash, "code hash")?;
    let store = state.store.clone();
    match blocking(move || store.code(&hash)).await? {
        Some(code) => Ok(bytes_response("application/octet-stream", code)),
        None => Err(Failure::new(
            ErrorKind::NotFound,
            format!("no code with sha256 {hash}"),
        )),
    }
}

// ------------------------------------------------------------------------- programs

async fn programs(State(state): S) -> Result<Response, Failure> {
    let count = state.chain.program_count().await?;
    let count = u64::try_from(count).unwrap_or(u64::MAX);
    let first = count.saturating_sub(MAX_PROGRAM_LIST).saturating_add(1);
    let now = now_secs();
    let mut out = Vec::new();
    for id in first..=count {
        if let Some(p) = state.chain.program(U256::from(id)).await? {
            let key = state.kms.cached(B256::from(p.id.to_be_bytes::<32>()), now);
            out.push(program_entry(&state, &p, key));
        }
    }
    Ok(axum::Json(out).into_response())
}

async fn program(State(state): S, Path(id): Path<String>) -> Result<Response, Failure> {
    let id = parse_program_id(&id)?;
    let p = chain_program(&state, id).await?;
    let key = match state.kms.key(id, &state.chain, now_secs()).await {
        Ok(k) => Some(k),
        Err(e) => {
            tracing::debug!(target: "pith_gateway", program = %id, error = %e, "no certified key for the program");
            None
        }
    };
    Ok(axum::Json(program_entry(&state, &p, key)).into_response())
}

async fn ohttp_keys(State(state): S, Path(id): Path<String>) -> Result<Response, Failure> {
    let id = parse_program_id(&id)?;
    chain_program(&state, id).await?;
    let info = state
        .kms
        .key(id, &state.chain, now_secs())
        .await
        .map_err(|e| match e.kind {
            ErrorKind::Unauthorized => Failure::new(
                ErrorKind::Unavailable,
                format!("no KMS served a key that checks: {}", e.message),
            ),
            _ => Failure(e),
        })?;
    let cert = serde_json::to_vec(&info.certificate)
        .map_err(|e| Failure::new(ErrorKind::Internal, e.to_string()))?;
    let cert = HeaderValue::from_str(&pith_api::b64url(&cert))
        .map_err(|e| Failure::new(ErrorKind::Internal, e.to_string()))?;
    let mut resp = bytes_response(media::OHTTP_KEYS, info.ohttp_keys);
    resp.headers_mut().insert(headers::KEY_CERTIFICATE, cert);
    Ok(resp)
}

async fn put_secrets(
    State(state): S,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Failure> {
    let id = parse_program_id(&id)?;
    let bytes = read_body(&headers, body, state.config.max_secrets_bytes).await?;
    if bytes.is_empty() {
        return Err(Failure::new(ErrorKind::BadRequest, "empty secrets upload"));
    }
    chain_program(&state, id).await?;
    let store = state.store.clone();
    blocking(move || store.put_secrets(&id, &bytes)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_secrets(State(state): S, Path(id): Path<String>) -> Result<Response, Failure> {
    let id = parse_program_id(&id)?;
    let store = state.store.clone();
    match blocking(move || store.secrets(&id)).await? {
        Some(b) => Ok(bytes_response(media::OHTTP_REQ, b)),
        None => Err(Failure::new(
            ErrorKind::NotFound,
            format!("no secrets uploaded for program {id}"),
        )),
    }
}

/// `PUT /v1/programs/{id}/triggers`: the owner's signed agent triggers. Checked: well-formed,
/// for this program, signed by its owner on chain, newer than the stored version.
async fn put_triggers(
    State(state): S,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Failure> {
    let id = parse_program_id(&id)?;
    let bytes = read_body(&headers, body, 64 * 1024).await?;
    let t: agent::SignedTriggers = serde_json::from_slice(&bytes)
        .map_err(|e| Failure::new(ErrorKind::BadRequest, format!("triggers: {e}")))?;
    if t.program_id != id {
        return Err(Failure::new(
            ErrorKind::BadRequest,
            format!("triggers are for program {}, not {id}", t.program_id),
        ));
    }
    t.triggers
        .validate()
        .map_err(|e| Failure::new(ErrorKind::BadRequest, e))?;
    let signer = t
        .signer()
        .map_err(|e| Failure::new(ErrorKind::Unauthorized, e))?;
    let p = chain_program(&state, id).await?;
    if signer != p.owner {
        return Err(Failure::new(
            ErrorKind::Unauthorized,
            format!(
                "triggers signed by {signer}, but the program's owner is {}",
                p.owner
            ),
        ));
    }
    let store = state.store.clone();
    let version = t.version;
    if !blocking(move || store.put_triggers(&t)).await? {
        return Err(Failure::new(
            ErrorKind::Replay,
            format!("version {version} is not newer than the stored triggers"),
        ));
    }
    tracing::info!(target: "pith_gateway", program = %id, version, "agent triggers stored");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_triggers(State(state): S, Path(id): Path<String>) -> Result<Response, Failure> {
    let id = parse_program_id(&id)?;
    let store = state.store.clone();
    match blocking(move || store.triggers(&id)).await? {
        Some(t) => Ok(axum::Json(t).into_response()),
        None => Err(Failure::new(
            ErrorKind::NotFound,
            format!("no triggers uploaded for program {id}"),
        )),
    }
}

/// `GET /v1/agents`: every program's newest signed triggers (workers check the signatures).
async fn list_agents(State(state): S) -> Result<Response, Failure> {
    let store = state.store.clone();
    let all = blocking(move || store.all_triggers()).await?;
    Ok(axum::Json(all).into_response())
}

#[derive(Debug, Deserialize)]
struct LogsQuery {
    timestamp: u64,
    signature: String,
}

async fn logs(
    State(state): S,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, Failure> {
    let id = parse_program_id(&id)?;
    if !pith_api::binding::fresh(q.timestamp, now_secs()) {
        return Err(Failure::new(
            ErrorKind::Expired,
            "logs query timestamp is not within the allowed clock skew",
        ));
    }
    let sig = hex::decode(q.signature.strip_prefix("0x").unwrap_or(&q.signature))
        .map_err(|_| Failure::new(ErrorKind::BadRequest, "signature is not hex"))?;
    let digest = pith_api::binding::message_digest(
        pith_api::binding::LOGS_TAG,
        &[id.as_slice()],
        q.timestamp,
    );
    let signer = pith_crypto::receipt::recover(&digest, &sig)
        .map_err(|e| Failure::new(ErrorKind::Unauthorized, format!("signature: {e}")))?;
    let p = chain_program(&state, id).await?;
    if signer != p.owner {
        return Err(Failure::new(
            ErrorKind::Unauthorized,
            format!("signed by {signer}, not by the program owner"),
        ));
    }
    let path = format!(
        "{}?timestamp={}&signature={}",
        pith_api::worker::LOGS.replace("{id}", &id.to_string()),
        q.timestamp,
        q.signature
    );
    let mut entries = Vec::new();
    for (addr, url) in state.workers.routable() {
        let u = format!("{}{}", url.trim_end_matches('/'), path);
        let r = async {
            let resp = state
                .http
                .get(&u)
                .timeout(std::time::Duration::from_secs(5))
                .send()
                .await
                .ok()?;
            if !resp.status().is_success() {
                return None;
            }
            let b = resp.bytes().await.ok()?;
            serde_json::from_slice::<pith_api::worker::ProgramLogs>(&b).ok()
        }
        .await;
        match r {
            Some(l) if l.program_id == id => entries.extend(l.entries),
            _ => tracing::debug!(target: "pith_gateway", worker = %addr, "worker gave no logs"),
        }
    }
    entries.sort_by_key(|e| e.time_ms);
    let skip = entries.len().saturating_sub(MAX_LOG_ENTRIES);
    let entries = entries.split_off(skip);
    Ok(axum::Json(pith_api::worker::ProgramLogs {
        program_id: id,
        entries,
    })
    .into_response())
}

// ------------------------------------------------------------------------- invoke

mod invoke;
pub use invoke::check_receipt;
use invoke::invoke;

/// Write queued receipts in batches (one database transaction per batch) until cancelled,
/// then flush what is queued.
pub async fn receipt_writer(
    state: Arc<AppState>,
    mut rx: mpsc::Receiver<SignedReceipt>,
    cancel: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            () = cancel.cancelled() => None,
        };
        let mut batch: Vec<SignedReceipt> = first.into_iter().collect();
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            if cancel.is_cancelled() {
                return;
            }
            continue;
        }
        let store = state.store.clone();
        let hashes: Vec<B256> = batch.iter().map(|r| r.request_hash).collect();
        let n = batch.len();
        match tokio::task::spawn_blocking(move || store.put_receipts(&batch)).await {
            Ok(Ok(())) => {
                for _ in 0..n {
                    state.metrics.receipt("stored");
                }
            }
            other => tracing::error!(target: "pith_gateway", ?other, "could not store receipts"),
        }
        if let Ok(mut p) = state.pending_receipts.lock() {
            for h in hashes {
                p.remove(&h);
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct ReceiptsQuery {
    program: Option<String>,
    limit: Option<usize>,
}

async fn receipts(State(state): S, Query(q): Query<ReceiptsQuery>) -> Result<Response, Failure> {
    let program = q.program.as_deref().map(parse_program_id).transpose()?;
    let limit = q.limit.unwrap_or(100).min(MAX_RECEIPT_LIST);
    let store = state.store.clone();
    let list = blocking(move || store.receipts(program.as_ref(), limit)).await?;
    let valid: Vec<SignedReceipt> = list.into_iter().filter(|r| served(&state, r)).collect();
    Ok(axum::Json(valid).into_response())
}

async fn receipt(State(state): S, Path(hash): Path<String>) -> Result<Response, Failure> {
    let hash = parse_hash(&hash, "request hash")?;
    let pending = state
        .pending_receipts
        .lock()
        .ok()
        .and_then(|p| p.get(&hash).cloned());
    let found = match pending {
        Some(r) => Some(r),
        None => {
            let store = state.store.clone();
            blocking(move || store.receipt(&hash)).await?
        }
    };
    match found {
        Some(r) if served(&state, &r) => Ok(axum::Json(r).into_response()),
        _ => Err(Failure::new(
            ErrorKind::NotFound,
            format!("no receipt for request {hash}"),
        )),
    }
}

/// Whether a stored receipt may be served: its signature recovers to the worker it names
/// (checked here rather than on the invocation path, see [`check_receipt`]).
pub(crate) fn served(state: &AppState, r: &SignedReceipt) -> bool {
    match r.verify_signature() {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(target: "pith_gateway", worker = %r.worker, request = %r.request_hash, "stored receipt does not verify ({e}); not served");
            state.metrics.receipt("bad_signature_not_served");
            false
        }
    }
}

// ------------------------------------------------------------------------- workers

async fn workers(State(state): S) -> Response {
    axum::Json(state.workers.entries()).into_response()
}

async fn worker(State(state): S, Path(address): Path<String>) -> Result<Response, Failure> {
    let address = parse_address(&address)?;
    state
        .workers
        .entry(address)
        .map(|e| axum::Json(e).into_response())
        .ok_or_else(|| {
            Failure::new(
                ErrorKind::NotFound,
                format!("worker {address} is not known to this gateway"),
            )
        })
}

async fn worker_evidence(
    State(state): S,
    Path(address): Path<String>,
) -> Result<Response, Failure> {
    let address = parse_address(&address)?;
    let cw = state.chain.worker(address).await?;
    if cw.operator == Address::ZERO {
        return Err(Failure::new(
            ErrorKind::NotFound,
            format!("worker {address} was never registered"),
        ));
    }
    match state
        .chain
        .registered_evidence(address, cw.evidence_hash)
        .await?
    {
        Some(bytes) => Ok(bytes_response("application/octet-stream", bytes)),
        None => Err(Failure::new(
            ErrorKind::NotFound,
            format!(
                "no registerWorker call with evidence hash {} found for {address}",
                cw.evidence_hash
            ),
        )),
    }
}

async fn announce(State(state): S, headers: HeaderMap, body: Body) -> Result<Response, Failure> {
    let bytes = read_body(&headers, body, crate::MAX_ANNOUNCE_BYTES).await?;
    let a: Announce = serde_json::from_slice(&bytes)
        .map_err(|e| Failure::new(ErrorKind::BadRequest, format!("announcement JSON: {e}")))?;
    state.workers.announce(&a, now_secs(), &state.chain).await?;
    state.wake_health.notify_one();
    tracing::debug!(target: "pith_gateway", worker = %a.worker, url = %a.url, "announcement accepted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
