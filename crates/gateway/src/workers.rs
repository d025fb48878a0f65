//! The gateway's view of the workers: the set comes from the chain (WorkerRegistered events
//! through the pith-chain watcher, persisted in the store) and from announcements (signed,
//! fresh, and only from workers active in the Registry); each worker's registration is
//! re-read from the Registry every few seconds; health checks (`GET /v1/worker/health`)
//! decide which workers take invocations.
//!
//! Health: a worker is `Unknown` until its first check, `Healthy` after a passing check,
//! `Draining` when it says so (taken out of routing at once), and `Unhealthy` after
//! `unhealthy_after` failed checks in a row, or at once after a refused connection during
//! routing. One passing check brings it back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use alloy::primitives::U256;
use pith_api::gateway::{Announce, WorkerEntry};
use pith_api::worker::WorkerHealth;
use pith_api::{ApiError, ErrorKind};
use pith_crypto::{Address, B256};

use crate::chain::{ChainView, ChainWorker};

/// Health as the gateway sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not checked yet.
    Unknown,
    /// Passing.
    Healthy,
    /// Failing.
    Unhealthy,
    /// Finishing its work, taking none.
    Draining,
}

/// Longest announced URL.
pub const MAX_URL_LEN: usize = 256;

#[derive(Debug, Clone)]
struct WorkerState {
    url: Option<String>,
    announced_at: Option<u64>,
    chain: Option<ChainWorker>,
    stake: U256,
    registered_block: Option<u64>,
    health: Health,
    failures: u32,
    in_flight: Arc<AtomicU64>,
    calls: Arc<AtomicU64>,
    uptime: crate::explorer::Uptime,
}

impl WorkerState {
    fn new() -> Self {
        Self {
            url: None,
            announced_at: None,
            chain: None,
            stake: U256::ZERO,
            registered_block: None,
            health: Health::Unknown,
            failures: 0,
            in_flight: Arc::new(AtomicU64::new(0)),
            calls: Arc::new(AtomicU64::new(0)),
            uptime: crate::explorer::Uptime::default(),
        }
    }

    fn routable(&self) -> bool {
        self.health == Health::Healthy
            && self.url.is_some()
            && self.chain.as_ref().is_some_and(|c| c.active)
    }
}

/// A worker picked for an invocation.
#[derive(Debug, Clone)]
pub struct Pick {
    /// Its address.
    pub address: Address,
    /// Its URL.
    pub url: String,
    /// Its in-flight counter (the caller increments and decrements it).
    pub in_flight: Arc<AtomicU64>,
    /// Its call counter.
    pub calls: Arc<AtomicU64>,
}

/// The platform name of an on-chain platform id (docs/protocol.md, "Platform identifiers").
pub fn platform_name(id: u8) -> &'static str {
    match id {
        1 => "sgx",
        2 => "tdx",
        3 => "sev-snp",
        4 => "nitro",
        5 => "nvidia-gpu",
        255 => "simulated",
        _ => "unknown",
    }
}

/// All known workers.
#[derive(Debug)]
pub struct Workers {
    map: RwLock<BTreeMap<Address, WorkerState>>,
    next: AtomicUsize,
    unhealthy_after: u32,
}

fn check_url(url: &str) -> Result<(), ApiError> {
    if url.len() > MAX_URL_LEN {
        return Err(ApiError::new(
            ErrorKind::TooLarge,
            format!("URL longer than {MAX_URL_LEN} bytes"),
        ));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| ApiError::new(ErrorKind::BadRequest, format!("bad URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(ApiError::new(
            ErrorKind::BadRequest,
            "URL must be http(s) with a host",
        ));
    }
    Ok(())
}

impl Workers {
    /// No workers yet; a worker is unhealthy after `unhealthy_after` failed checks in a row.
    pub fn new(unhealthy_after: u32) -> Self {
        Self {
            map: RwLock::new(BTreeMap::new()),
            next: AtomicUsize::new(0),
            unhealthy_after: unhealthy_after.max(1),
        }
    }

    /// Add a worker seen in a registration event at `block`.
    pub fn saw_registration(&self, address: Address, block: u64) {
        if let Ok(mut m) = self.map.write() {
            let w = m.entry(address).or_insert_with(WorkerState::new);
            w.registered_block = Some(w.registered_block.map_or(block, |b| b.max(block)));
        }
    }

    /// Check and apply an announcement: URL shape, freshness, the worker's signature over
    /// `message_digest(ANNOUNCE_TAG, [worker, url], timestamp)`, not older than the last one
    /// accepted, and the worker active in the Registry.
    pub async fn announce(
        &self,
        a: &Announce,
        now: u64,
        chain: &ChainView,
    ) -> Result<(), ApiError> {
        check_url(&a.url)?;
        if !pith_api::binding::fresh(a.timestamp, now) {
            return Err(ApiError::new(
                ErrorKind::Expired,
                "announcement timestamp is not within the allowed clock skew",
            ));
        }
        let digest = pith_api::binding::message_digest(
            pith_api::binding::ANNOUNCE_TAG,
            &[a.worker.as_slice(), a.url.as_bytes()],
            a.timestamp,
        );
        let signer = pith_crypto::receipt::recover(&digest, &a.signature).map_err(|e| {
            ApiError::new(
                ErrorKind::Unauthorized,
                format!("announcement signature: {e}"),
            )
        })?;
        if signer != a.worker {
            return Err(ApiError::new(
                ErrorKind::Unauthorized,
                format!("announcement signed by {signer}, not by {}", a.worker),
            ));
        }
        let cw = chain
            .worker(a.worker)
            .await
            .map_err(|e| ApiError::new(ErrorKind::Unavailable, format!("chain RPC: {e}")))?;
        if !cw.active {
            return Err(ApiError::new(
                ErrorKind::PolicyRejected,
                format!("worker {} is not active in the Registry", a.worker),
            ));
        }
        let mut m = self
            .map
            .write()
            .map_err(|_| ApiError::new(ErrorKind::Internal, "lock poisoned"))?;
        let w = m.entry(a.worker).or_insert_with(WorkerState::new);
        if w.announced_at.is_some_and(|t| a.timestamp < t) {
            return Err(ApiError::new(
                ErrorKind::Replay,
                "announcement older than the last one accepted",
            ));
        }
        if w.url.as_deref() != Some(a.url.as_str()) {
            // A new URL is a new endpoint: check it before routing to it.
            w.health = Health::Unknown;
            w.failures = 0;
        }
        w.url = Some(a.url.clone());
        w.announced_at = Some(a.timestamp);
        w.chain = Some(cw);
        Ok(())
    }

    /// Re-read every worker's registration (and its operator's stake) from the chain.
    pub async fn refresh_chain(&self, chain: &ChainView) {
        let addrs: Vec<Address> = self
            .map
            .read()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        for addr in addrs {
            let cw = match chain.worker(addr).await {
                Ok(cw) => cw,
                Err(e) => {
                    tracing::debug!(target: "pith_gateway::workers", worker = %addr, error = %e, "registry read failed");
                    continue;
                }
            };
            let stake = chain.stake(cw.operator).await.unwrap_or(U256::ZERO);
            if let Ok(mut m) = self.map.write() {
                if let Some(w) = m.get_mut(&addr) {
                    w.chain = Some(cw);
                    w.stake = stake;
                }
            }
        }
    }

    /// Check the health of every worker with a URL, concurrently, each within `timeout`.
    pub async fn check_health(&self, http: &reqwest::Client, timeout: Duration) {
        let targets: Vec<(Address, String)> = self
            .map
            .read()
            .map(|m| {
                m.iter()
                    .filter_map(|(a, w)| w.url.clone().map(|u| (*a, u)))
                    .collect()
            })
            .unwrap_or_default();
        let checks = targets.into_iter().map(|(addr, url)| {
            let http = http.clone();
            async move {
                let u = format!("{}{}", url.trim_end_matches('/'), pith_api::worker::HEALTH);
                let r = async {
                    let resp = http.get(&u).timeout(timeout).send().await.ok()?;
                    let status = resp.status();
                    let body = resp.bytes().await.ok()?;
                    let h: WorkerHealth = serde_json::from_slice(&body).ok()?;
                    Some((status.is_success(), h))
                }
                .await;
                (addr, url, r)
            }
        });
        let results = futures_join_all(checks).await;
        let now = crate::now_secs();
        if let Ok(mut m) = self.map.write() {
            for (addr, url, r) in results {
                let Some(w) = m.get_mut(&addr) else { continue };
                if w.url.as_deref() != Some(url.as_str()) {
                    continue;
                }
                let before = w.health;
                match r {
                    Some((_, h)) if h.draining => {
                        w.health = Health::Draining;
                        w.failures = 0;
                    }
                    Some((true, h)) if h.ok => {
                        w.health = Health::Healthy;
                        w.failures = 0;
                    }
                    _ => {
                        w.failures = w.failures.saturating_add(1);
                        if w.failures >= self.unhealthy_after {
                            w.health = Health::Unhealthy;
                        }
                    }
                }
                let up = &mut w.uptime;
                up.checks = up.checks.saturating_add(1);
                up.first_check.get_or_insert(now);
                if matches!(w.health, Health::Healthy | Health::Draining) && w.failures == 0 {
                    up.passed = up.passed.saturating_add(1);
                    up.up_since.get_or_insert(now);
                } else {
                    up.up_since = None;
                }
                if before != w.health {
                    tracing::info!(target: "pith_gateway::workers", worker = %addr, from = ?before, to = ?w.health, "worker health changed");
                }
            }
        }
    }

    /// Take a worker out of routing at once after its connection was refused.
    pub fn mark_unreachable(&self, address: Address) {
        if let Ok(mut m) = self.map.write() {
            if let Some(w) = m.get_mut(&address) {
                w.health = Health::Unhealthy;
                w.failures = w.failures.max(self.unhealthy_after);
                w.uptime.up_since = None;
                tracing::info!(target: "pith_gateway::workers", worker = %address, "connection refused; worker taken out of routing");
            }
        }
    }

    /// Take a worker out of routing after it refused with `draining`.
    pub fn mark_draining(&self, address: Address) {
        if let Ok(mut m) = self.map.write() {
            if let Some(w) = m.get_mut(&address) {
                w.health = Health::Draining;
            }
        }
    }

    /// A routable worker not in `exclude`: the least in-flight, ties broken round robin.
    pub fn pick(&self, exclude: &[Address]) -> Option<Pick> {
        let m = self.map.read().ok()?;
        let candidates: Vec<(&Address, &WorkerState)> = m
            .iter()
            .filter(|(a, w)| w.routable() && !exclude.contains(a))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % candidates.len();
        let mut best: Option<(u64, &Address, &WorkerState)> = None;
        for i in 0..candidates.len() {
            let Some((a, w)) = candidates.get((start + i) % candidates.len()) else {
                continue;
            };
            let load = w.in_flight.load(Ordering::Relaxed);
            if best.as_ref().is_none_or(|(l, _, _)| load < *l) {
                best = Some((load, a, w));
            }
        }
        best.and_then(|(_, a, w)| {
            Some(Pick {
                address: *a,
                url: w.url.clone()?,
                in_flight: w.in_flight.clone(),
                calls: w.calls.clone(),
            })
        })
    }

    /// Addresses and URLs of the workers that take work (for the logs fan-out).
    pub fn routable(&self) -> Vec<(Address, String)> {
        self.map
            .read()
            .map(|m| {
                m.iter()
                    .filter(|(_, w)| w.routable())
                    .filter_map(|(a, w)| Some((*a, w.url.clone()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every known worker as the API shows it.
    pub fn entries(&self) -> Vec<WorkerEntry> {
        self.map
            .read()
            .map(|m| m.iter().map(|(a, w)| entry(*a, w)).collect())
            .unwrap_or_default()
    }

    /// Every known worker as the explorer shows it: the API entry, its health history and
    /// whether the Registry has revoked it.
    pub fn explorer_rows(&self) -> Vec<(WorkerEntry, crate::explorer::Uptime, bool)> {
        self.map
            .read()
            .map(|m| {
                m.iter()
                    .map(|(a, w)| {
                        (
                            entry(*a, w),
                            w.uptime.clone(),
                            w.chain.as_ref().is_some_and(|c| c.revoked),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One worker as the API shows it.
    pub fn entry(&self, address: Address) -> Option<WorkerEntry> {
        self.map
            .read()
            .ok()?
            .get(&address)
            .map(|w| entry(address, w))
    }

    /// The registered evidence hash of a worker, when its registration has been read.
    pub fn evidence_hash(&self, address: Address) -> Option<B256> {
        self.map
            .read()
            .ok()?
            .get(&address)?
            .chain
            .as_ref()
            .map(|c| c.evidence_hash)
    }

    /// `(address, healthy, in_flight)` of every worker, for the metrics.
    pub fn gauges(&self) -> Vec<crate::metrics::WorkerGauge> {
        self.map
            .read()
            .map(|m| {
                m.iter()
                    .map(|(a, w)| crate::metrics::WorkerGauge {
                        address: a.to_string(),
                        healthy: w.health == Health::Healthy,
                        in_flight: w.in_flight.load(Ordering::Relaxed),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn entry(address: Address, w: &WorkerState) -> WorkerEntry {
    let c = w.chain.clone();
    WorkerEntry {
        address,
        url: w.url.clone(),
        operator: c.as_ref().map_or(Address::ZERO, |c| c.operator),
        platform: platform_name(c.as_ref().map_or(0, |c| c.platform)).to_string(),
        platform_id: c.as_ref().map_or(0, |c| c.platform),
        measurement_hash: c.as_ref().map_or(B256::ZERO, |c| c.measurement_hash),
        tcb_status: c.as_ref().map_or(0, |c| c.tcb_status),
        evidence_hash: c.as_ref().map_or(B256::ZERO, |c| c.evidence_hash),
        registered: c.as_ref().is_some_and(|c| c.active),
        healthy: w.health == Health::Healthy,
        expiry: c.as_ref().map_or(0, |c| c.expiry),
        registered_block: w.registered_block,
        last_seen: w.announced_at,
        stake: w.stake.to_string(),
        calls: w.calls.load(Ordering::Relaxed),
    }
}

/// Run futures concurrently and collect their outputs in order (a tiny `join_all`).
async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output>
where
    F: Send + 'static,
    F::Output: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, f) in futs.into_iter().enumerate() {
        set.spawn(async move { (i, f.await) });
    }
    let mut out: Vec<(usize, F::Output)> = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(v) = r {
            out.push(v);
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, v)| v).collect()
}
