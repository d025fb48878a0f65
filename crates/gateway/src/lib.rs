//! # pith-gateway
//!
//! The public face of a Pith network (`pith gateway`): the HTTP API of
//! [`pith_api::gateway`] with its OpenAPI document at `/openapi.json`.
//!
//! - **Workers**: the set comes from the chain (WorkerRegistered events through the
//!   pith-chain watcher) and from signed announcements of active workers; health checks
//!   every `health_interval` decide which workers take invocations ([`workers`]).
//! - **Invocations**: `POST /v1/programs/{id}/invoke` goes to one healthy registered worker
//!   (least in flight, ties round robin); it moves to another worker only when it was never
//!   delivered (connection refused, or a `draining` refusal), never after a worker may have
//!   run it ([`routes`]). The worker's receipt is checked (signature, signer = the worker
//!   that answered, program, chain) and stored by request hash.
//! - **Programs**: chain facts (Programs, Billing) and the KMS-certified key, checked against
//!   the Registry's KMS committee before it is served ([`kms`]).
//! - **Code, receipts, secrets**: an embedded redb database ([`store`]).
//! - **Explorer**: a web page at `/explorer/` and its read-only JSON API ([`explorer`]).
//! - Per-IP rate limits ([`ratelimit`]), body size limits, Prometheus metrics at `/metrics`
//!   ([`metrics`]).
//!
//! The gateway holds no key: everything it serves is content-addressed, signed by a worker
//! or a KMS, or end-to-end encrypted. A hostile gateway can refuse service, delay, or send
//! one request to two workers (the worker's replay window bounds that, docs/protocol.md);
//! it cannot read or forge answers.

pub mod chain;
pub mod error;
pub mod explorer;
pub mod kms;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod routes;
pub mod store;
pub mod workers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy::sol_types::SolEvent;
use pith_chain::Deployment;
use pith_chain::bindings::Registry;
use pith_chain::watcher::{EventWatcher, WatchEvent, WatcherConfig};
use tokio_util::sync::CancellationToken;

pub use error::{Failure, GatewayError};

/// Default largest invocation body (bytes).
pub const MAX_INVOKE_BYTES: usize = 4 * 1024 * 1024;
/// Default largest encrypted secrets upload (bytes).
pub const MAX_SECRETS_BYTES: usize = 64 * 1024;
/// Largest announcement body (bytes).
pub const MAX_ANNOUNCE_BYTES: usize = 4 * 1024;

/// How the gateway runs. [`GatewayConfig::new`] gives the defaults stated on each field.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// State directory (`gateway.redb`, `watcher-cursor.json`).
    pub state_dir: PathBuf,
    /// Listen address (default `127.0.0.1:0`: loopback, any free port).
    pub listen: SocketAddr,
    /// Chain RPC URL.
    pub rpc_url: String,
    /// The deployment.
    pub deployment: Deployment,
    /// KMS base URLs (tried in order).
    pub kms_urls: Vec<String>,
    /// Requests per second per client IP; `None` (default) disables the limit. The burst is
    /// one second's worth (at least 1).
    pub rate_limit: Option<f64>,
    /// Time between health checks of each worker (default 1 s).
    pub health_interval: Duration,
    /// Timeout of one health check (default 1 s).
    pub health_timeout: Duration,
    /// Failed checks in a row before a worker is unhealthy (default 2).
    pub unhealthy_after: u32,
    /// Time between re-reads of the workers' registrations (default 5 s).
    pub chain_refresh: Duration,
    /// Largest code upload (default [`pith_api::gateway::MAX_CODE_BYTES`]).
    pub max_code_bytes: usize,
    /// Largest invocation body (default [`MAX_INVOKE_BYTES`]).
    pub max_invoke_bytes: usize,
    /// Largest secrets upload (default [`MAX_SECRETS_BYTES`]).
    pub max_secrets_bytes: usize,
    /// Most workers one invocation is offered to (default 3).
    pub max_attempts: usize,
    /// Longest wait for a worker's answer to an invocation (default 60 s).
    pub invoke_timeout: Duration,
    /// The network's development CA certificate (PEM or DER; default `None`). With it the
    /// explorer's `verify-evidence` verifies simulated evidence and the page gets the CA to
    /// verify it in the browser; without it simulated evidence is `bad_chain`.
    pub dev_ca: Option<Vec<u8>>,
    /// Where Intel and AMD collateral comes from for the explorer's `verify-evidence` and
    /// `workers/{address}/collateral` (default [`pith_attest::NoCollateral`]: a local network
    /// of simulated nodes needs none).
    pub collateral: std::sync::Arc<dyn pith_attest::CollateralSource>,
}

impl GatewayConfig {
    /// The defaults for a gateway on `deployment` read through `rpc_url`.
    pub fn new(
        state_dir: impl Into<PathBuf>,
        rpc_url: impl Into<String>,
        deployment: Deployment,
    ) -> Self {
        Self {
            state_dir: state_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            rpc_url: rpc_url.into(),
            deployment,
            kms_urls: Vec::new(),
            rate_limit: None,
            health_interval: Duration::from_secs(1),
            health_timeout: Duration::from_secs(1),
            unhealthy_after: 2,
            chain_refresh: Duration::from_secs(5),
            max_code_bytes: pith_api::gateway::MAX_CODE_BYTES,
            max_invoke_bytes: MAX_INVOKE_BYTES,
            max_secrets_bytes: MAX_SECRETS_BYTES,
            max_attempts: 3,
            invoke_timeout: Duration::from_secs(60),
            dev_ca: None,
            collateral: std::sync::Arc::new(pith_attest::NoCollateral),
        }
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    addr: SocketAddr,
    cancel: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
    state: Arc<routes::AppState>,
}

impl Gateway {
    /// Open the state, bind the listener, and start serving and the background tasks
    /// (chain watcher, health checks, receipt writer).
    pub async fn start(config: GatewayConfig) -> Result<Self, GatewayError> {
        std::fs::create_dir_all(&config.state_dir).map_err(|source| GatewayError::Io {
            path: config.state_dir.display().to_string(),
            source,
        })?;
        let store = store::Store::open(&config.state_dir.join("gateway.redb"))?;
        let provider = pith_chain::client::read_provider(&config.rpc_url)?;
        let chain = chain::ChainView::new(config.deployment.clone(), provider.clone());
        let cancel = CancellationToken::new();
        let (state, receipt_rx) =
            routes::AppState::new(config.clone(), store.clone(), chain.clone())?;
        let state = Arc::new(state);
        for (addr, block) in store.workers()? {
            state.workers.saw_registration(addr, block);
        }

        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| GatewayError::Io {
                path: config.listen.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| GatewayError::Io {
            path: config.listen.to_string(),
            source,
        })?;

        let mut tasks = tokio::task::JoinSet::new();
        let app = routes::router(state.clone());
        let c = cancel.clone();
        tasks.spawn(async move {
            let serve = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { c.cancelled().await });
            if let Err(e) = serve.await {
                tracing::error!(target: "pith_gateway", error = %e, "server stopped");
            }
        });
        tasks.spawn(routes::receipt_writer(
            state.clone(),
            receipt_rx,
            cancel.clone(),
        ));
        tasks.spawn(health_loop(state.clone(), cancel.clone()));
        let watcher_cfg = WatcherConfig::new()
            .confirmations(1)
            .poll_interval(config.health_interval)
            .cursor_file(config.state_dir.join("watcher-cursor.json"));
        let filter = alloy::rpc::types::Filter::new()
            .address(config.deployment.contracts.registry)
            .event_signature(vec![
                Registry::WorkerRegistered::SIGNATURE_HASH,
                Registry::WorkerRevoked::SIGNATURE_HASH,
            ]);
        let watcher = EventWatcher::new(
            provider,
            filter,
            config.deployment.deploy_block,
            watcher_cfg,
        )?;
        tasks.spawn(watch_loop(state.clone(), watcher, cancel.clone()));
        tracing::info!(target: "pith_gateway", %addr, "gateway listening");
        Ok(Self {
            addr,
            cancel,
            tasks,
            state,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A token that stops the gateway when cancelled.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Failovers so far (for tests and status).
    pub fn failovers(&self) -> u64 {
        self.state.metrics.failovers()
    }

    /// Stop: finish in-flight requests (graceful shutdown), flush receipts, stop the tasks.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        self.join().await;
    }

    /// Wait until the gateway is stopped through its cancel token.
    pub async fn wait(mut self) {
        self.cancel.cancelled().await;
        self.join().await;
    }

    async fn join(&mut self) {
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = self.tasks.join_next() => if next.is_none() { break },
                () = &mut deadline => {
                    tracing::warn!(target: "pith_gateway", "tasks still running after 10 s; aborting them");
                    self.tasks.abort_all();
                    break;
                }
            }
        }
    }
}

async fn health_loop(state: Arc<routes::AppState>, cancel: CancellationToken) {
    let cfg = &state.config;
    let mut last_refresh: Option<tokio::time::Instant> = None;
    loop {
        if last_refresh.is_none_or(|t| t.elapsed() >= cfg.chain_refresh)
            || state
                .refresh_chain_now
                .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            state.workers.refresh_chain(&state.chain).await;
            last_refresh = Some(tokio::time::Instant::now());
        }
        state
            .workers
            .check_health(&state.http, cfg.health_timeout)
            .await;
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(cfg.health_interval) => {}
            () = state.wake_health.notified() => {}
        }
    }
}

async fn watch_loop<P: alloy::providers::Provider>(
    state: Arc<routes::AppState>,
    mut watcher: EventWatcher<P>,
    cancel: CancellationToken,
) {
    loop {
        match watcher.poll().await {
            Ok(events) => {
                let mut ok = true;
                for ev in events {
                    match ev {
                        WatchEvent::Log(log) => {
                            if let Ok(reg) = Registry::WorkerRegistered::decode_log_data(log.data())
                            {
                                let block = log.block_number.unwrap_or(0);
                                let store = state.store.clone();
                                let w = reg.worker;
                                match tokio::task::spawn_blocking(move || {
                                    store.put_worker(&w, block)
                                })
                                .await
                                {
                                    Ok(Ok(())) => {}
                                    other => {
                                        tracing::error!(target: "pith_gateway", ?other, "could not persist a worker");
                                        ok = false;
                                    }
                                }
                                state.workers.saw_registration(reg.worker, block);
                                tracing::info!(target: "pith_gateway", worker = %reg.worker, block, "worker registration seen");
                            } else if let Ok(rev) =
                                Registry::WorkerRevoked::decode_log_data(log.data())
                            {
                                tracing::info!(target: "pith_gateway", worker = %rev.worker, "worker revocation seen");
                            }
                            state
                                .refresh_chain_now
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                            state.wake_health.notify_one();
                        }
                        WatchEvent::Removed(_) => {
                            // Registration state is re-read from the Registry; a retracted event
                            // only means the next read sees the canonical chain.
                            state
                                .refresh_chain_now
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                            state.wake_health.notify_one();
                        }
                    }
                }
                if ok {
                    if let Err(e) = watcher.save() {
                        tracing::warn!(target: "pith_gateway", error = %e, "could not save the watcher cursor");
                    }
                }
            }
            Err(e) => tracing::debug!(target: "pith_gateway", error = %e, "watcher poll failed"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(state.config.health_interval) => {}
        }
    }
}

/// Unix seconds now.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
