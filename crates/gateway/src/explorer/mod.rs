//! The network explorer: a read-only JSON API under `/explorer/api/` and the web page at
//! `/explorer/` whose built assets (`explorer/dist/`, committed, checked against a fresh build
//! by `explorer/build.mjs --check`) are embedded in the binary (docs/adr/0130-explorer.md).
//!
//! Everything the API serves is read from the chain (Registry, Programs, StakePools, the
//! Governor's events), from the gateway's own store (receipts, checked on the way out as on
//! `/v1/receipts`) or from its in-memory health history; nothing is secret. Every list is
//! bounded (a `limit` with a default and a maximum). `POST /explorer/api/verify-evidence`
//! verifies evidence with `pith-attest` for the page's "verify" button when the browser cannot
//! (the page labels such a result "verified by gateway").

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pith_api::ErrorKind;
use pith_api::gateway::WorkerEntry;
use pith_crypto::receipt::SignedReceipt;
use serde::{Deserialize, Serialize};

use crate::error::Failure;
use crate::routes::AppState;

mod attestation;

pub use attestation::{
    Attestation, GatewayVerdict, IntelCollateralFiles, VerdictError, VerifyRequest,
};
pub(crate) use attestation::{attestation, collateral, verify_evidence};

type S = State<Arc<AppState>>;

/// The page.
pub const PAGE: &str = "/explorer/";
/// The page without its trailing slash (redirects to [`PAGE`]).
pub const PAGE_BARE: &str = "/explorer";
/// A built asset (`app.js`, `app.css`).
pub const ASSET: &str = "/explorer/assets/{file}";
/// Network overview.
pub const OVERVIEW: &str = "/explorer/api/overview";
/// Workers.
pub const WORKERS: &str = "/explorer/api/workers";
/// One worker's registered attestation.
pub const WORKER_ATTESTATION: &str = "/explorer/api/workers/{address}/attestation";
/// The Intel collateral for one worker's registered evidence.
pub const WORKER_COLLATERAL: &str = "/explorer/api/workers/{address}/collateral";
/// Programs.
pub const PROGRAMS: &str = "/explorer/api/programs";
/// Recent receipts.
pub const RECEIPTS: &str = "/explorer/api/receipts";
/// Stake pools.
pub const POOLS: &str = "/explorer/api/pools";
/// Governance proposals.
pub const PROPOSALS: &str = "/explorer/api/proposals";
/// Calls over time.
pub const CALLS: &str = "/explorer/api/calls";
/// Gateway-side evidence verification.
pub const VERIFY_EVIDENCE: &str = "/explorer/api/verify-evidence";

/// Default and largest `limit` of the program list.
pub const PROGRAMS_LIMIT: (u64, u64) = (50, 200);
/// Default and largest `limit` of the receipt list.
pub const RECEIPTS_LIMIT: (usize, usize) = (50, 500);
/// Default and largest `limit` of the proposal list (newest first).
pub const PROPOSALS_LIMIT: (usize, usize) = (50, 200);
/// Most pools listed (largest stake first).
pub const MAX_POOLS: usize = 200;
/// Most versions listed per program (newest).
pub const MAX_VERSIONS: usize = 20;
/// Default and largest number of buckets of the calls series.
pub const CALL_BUCKETS: (u32, u32) = (60, 500);
/// Default, smallest and largest bucket width of the calls series, seconds.
pub const CALL_BUCKET_SECONDS: (u64, u64, u64) = (60, 1, 86_400);
/// Most stored receipts the calls series reads (the newest).
pub const MAX_SERIES_SCAN: usize = 20_000;
/// Largest evidence accepted by `verify-evidence` (bytes, before hex encoding).
pub const MAX_EVIDENCE_BYTES: usize = 128 * 1024;

const INDEX_HTML: &[u8] = include_bytes!("../../../../explorer/dist/index.html");
const APP_JS: &[u8] = include_bytes!("../../../../explorer/dist/app.js");
const APP_CSS: &[u8] = include_bytes!("../../../../explorer/dist/app.css");

/// Block timestamps already read (registration times).
#[derive(Debug, Default)]
pub struct BlockTimes(Mutex<HashMap<u64, u64>>);

impl BlockTimes {
    async fn of(&self, state: &AppState, block: u64) -> Option<u64> {
        if let Some(t) = self.0.lock().ok().and_then(|m| m.get(&block).copied()) {
            return Some(t);
        }
        let b = state
            .chain
            .provider()
            .get_block_by_number(BlockNumberOrTag::Number(block))
            .await
            .ok()??;
        let t = b.header.timestamp;
        if let Ok(mut m) = self.0.lock() {
            m.insert(block, t);
        }
        Some(t)
    }
}

// ------------------------------------------------------------------------- wire types

/// Worker counts of the overview.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Known to the gateway (registration events and announcements).
    pub known: usize,
    /// Active in the Registry.
    pub active: usize,
    /// Passing health checks.
    pub healthy: usize,
}

/// `GET /explorer/api/overview`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Overview {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The chain RPC URL the gateway reads (the page reads Registry facts from it with viem).
    pub rpc_url: String,
    /// Latest block number.
    pub block: u64,
    /// The block of the deployment (event scans start there).
    pub deploy_block: u64,
    /// Contract name → address (the names of `deployment.json`).
    pub contracts: BTreeMap<String, Address>,
    /// Workers.
    pub workers: WorkerCounts,
    /// `Programs.programCount()`.
    pub programs: u64,
    /// Receipts in the gateway's store.
    pub receipts: u64,
    /// Sum of the known workers' operators' pool stakes (PHA wei, decimal).
    pub total_stake: String,
    /// The KMS committee.
    pub kms_members: Vec<Address>,
    /// Whether the gateway has the network's development CA (simulated evidence).
    pub dev_ca: bool,
    /// Gateway version.
    pub version: String,
}

/// Health history of a worker as this gateway saw it (since the gateway started).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Uptime {
    /// Health checks made.
    pub checks: u64,
    /// Of which passed.
    pub passed: u64,
    /// Unix seconds of the first check, if any.
    pub first_check: Option<u64>,
    /// Unix seconds since which it has been healthy without a failed check, if healthy.
    pub up_since: Option<u64>,
}

/// One row of `GET /explorer/api/workers`: the `/v1/workers` entry and more.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExplorerWorker {
    /// The `/v1/workers` entry (address, operator, platform, measurement hash, TCB code,
    /// evidence hash, registered, healthy, expiry, registration block, stake, calls).
    #[serde(flatten)]
    pub entry: WorkerEntry,
    /// TCB status name (docs/protocol.md, "TCB status encoding"); `null` for platforms
    /// without one (code 0 on chain).
    pub tcb_status_name: Option<String>,
    /// Unix seconds of the block of its latest registration event.
    pub registered_at: Option<u64>,
    /// Revoked in the Registry.
    pub revoked: bool,
    /// Health history.
    pub uptime: Uptime,
}

/// A version of a program's code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Version {
    /// `registered` or `upgraded`.
    pub kind: String,
    /// The code hash from then on.
    pub code_hash: B256,
    /// Block of the event.
    pub block: u64,
    /// Transaction.
    pub tx: Option<B256>,
}

/// One row of `GET /explorer/api/programs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExplorerProgram {
    /// Id as 32 bytes.
    pub program_id: B256,
    /// Id in decimal.
    pub id: String,
    /// Owner.
    pub owner: Address,
    /// Current code hash.
    pub code_hash: B256,
    /// Billing deposit (PHA wei, decimal).
    pub deposit: String,
    /// Receipts stored by this gateway for the program.
    pub calls: u64,
    /// Code history, oldest first (at most [`MAX_VERSIONS`], the newest).
    pub versions: Vec<Version>,
}

/// `GET /explorer/api/programs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgramPage {
    /// `Programs.programCount()`.
    pub total: u64,
    /// Newest first.
    pub programs: Vec<ExplorerProgram>,
}

/// One row of `GET /explorer/api/pools`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExplorerPool {
    /// Operator (the pool's key).
    pub operator: Address,
    /// Commission, basis points.
    pub commission_bps: u16,
    /// PHA wei, decimal.
    pub total_stake: String,
    /// PHA wei committed to running workers, decimal.
    pub locked_stake: String,
    /// Shares (active and queued), decimal.
    pub total_shares: String,
    /// Shares waiting in the withdrawal queue, decimal.
    pub queued_shares: String,
    /// Known workers of this operator.
    pub workers: Vec<Address>,
}

/// Vote totals of a proposal (decimal strings).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Votes {
    /// For.
    #[serde(rename = "for")]
    pub for_votes: String,
    /// Against.
    pub against: String,
    /// Abstain.
    pub abstain: String,
}

/// One row of `GET /explorer/api/proposals`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExplorerProposal {
    /// Proposal id, decimal.
    pub id: String,
    /// Proposer.
    pub proposer: Address,
    /// Description.
    pub description: String,
    /// State (`pending`, `active`, `canceled`, `defeated`, `succeeded`, `queued`, `expired`,
    /// `executed`).
    pub state: String,
    /// Voting opens (block).
    pub vote_start: String,
    /// Voting closes (block).
    pub vote_end: String,
    /// Vote totals.
    pub votes: Votes,
    /// Number of calls it makes.
    pub actions: usize,
    /// Block of `ProposalCreated`.
    pub block: u64,
}

/// `GET /explorer/api/calls`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CallSeries {
    /// Width of a bucket, seconds.
    pub bucket_seconds: u64,
    /// Unix seconds at which the first bucket starts.
    pub start: u64,
    /// Calls per bucket, oldest first.
    pub counts: Vec<u64>,
    /// Receipts read.
    pub scanned: usize,
    /// True when [`MAX_SERIES_SCAN`] receipts were read, so older buckets may be short.
    pub truncated: bool,
}

// ------------------------------------------------------------------------- helpers

fn bad(message: impl Into<String>) -> Failure {
    Failure::new(ErrorKind::BadRequest, message)
}

fn rpc_failure(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::from(pith_chain::Error::Rpc(format!("{what}: {e}")))
}

/// Parse an optional `limit` query value (decimal, at least 1), clamped to `max`.
pub fn limit(raw: Option<&str>, default: u64, max: u64) -> Result<u64, Failure> {
    match raw {
        None => Ok(default),
        Some(s) => {
            let n: u64 = s
                .parse()
                .map_err(|_| bad("limit is not a non-negative integer"))?;
            if n == 0 {
                return Err(bad("limit must be at least 1"));
            }
            Ok(n.min(max))
        }
    }
}

/// The TCB status name of an on-chain code on a platform that has one (Intel), else `None`.
pub fn tcb_status_name(platform_id: u8, code: u8) -> Option<&'static str> {
    if !matches!(platform_id, 1 | 2) {
        return None;
    }
    Some(match code {
        0 => "UpToDate",
        1 => "SWHardeningNeeded",
        2 => "ConfigurationNeeded",
        3 => "ConfigurationAndSWHardeningNeeded",
        4 => "OutOfDate",
        5 => "OutOfDateConfigurationNeeded",
        6 => "Revoked",
        _ => "unknown",
    })
}

/// Count `timestamps` into `buckets` buckets of `width` seconds ending at `end` (exclusive);
/// timestamps outside the window are ignored.
pub fn bucket_counts(
    timestamps: impl IntoIterator<Item = u64>,
    end: u64,
    width: u64,
    buckets: u32,
) -> (u64, Vec<u64>) {
    let width = width.max(1);
    let span = width.saturating_mul(u64::from(buckets));
    let start = end.saturating_sub(span);
    let mut counts = vec![0u64; buckets as usize];
    for t in timestamps {
        if t < start || t >= end {
            continue;
        }
        let i = ((t - start) / width) as usize;
        if let Some(c) = counts.get_mut(i) {
            *c = c.saturating_add(1);
        }
    }
    (start, counts)
}

// ------------------------------------------------------------------------- page and assets

/// The Content-Security-Policy of the page: scripts, styles and connections only to the
/// gateway itself, plus connections to the chain RPC (the page reads Registry facts there).
pub fn content_security_policy(rpc_url: &str) -> String {
    let rpc = reqwest::Url::parse(rpc_url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null");
    let connect = match rpc {
        Some(o) => format!("'self' {o}"),
        None => "'self'".to_string(),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {connect}; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

fn asset(state: &AppState, content_type: &'static str, body: &'static [u8]) -> Response {
    let mut r = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_security_policy(&state.config.rpc_url)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub(crate) async fn page(State(state): S) -> Response {
    asset(&state, "text/html; charset=utf-8", INDEX_HTML)
}

pub(crate) async fn page_bare() -> Response {
    (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, PAGE)]).into_response()
}

pub(crate) async fn asset_file(
    State(state): S,
    Path(file): Path<String>,
) -> Result<Response, Failure> {
    match file.as_str() {
        "app.js" => Ok(asset(&state, "text/javascript; charset=utf-8", APP_JS)),
        "app.css" => Ok(asset(&state, "text/css; charset=utf-8", APP_CSS)),
        _ => Err(Failure::new(ErrorKind::NotFound, "no such explorer asset")),
    }
}

// ------------------------------------------------------------------------- API

pub(crate) async fn overview(State(state): S) -> Result<Response, Failure> {
    let d = state.chain.deployment();
    let block = state
        .chain
        .provider()
        .get_block_number()
        .await
        .map_err(|e| rpc_failure("block number", e))?;
    let programs = u64::try_from(state.chain.program_count().await?).unwrap_or(u64::MAX);
    let kms_members = state.chain.kms_members().await?;
    let store = state.store.clone();
    let receipts = tokio::task::spawn_blocking(move || store.receipt_count()).await??;
    let entries = state.workers.entries();
    let mut stakes: BTreeMap<Address, U256> = BTreeMap::new();
    for e in &entries {
        if e.operator != Address::ZERO {
            stakes.insert(e.operator, e.stake.parse().unwrap_or(U256::ZERO));
        }
    }
    let total_stake = stakes
        .values()
        .fold(U256::ZERO, |a, b| a.saturating_add(*b));
    let contracts = d
        .contracts
        .named()
        .into_iter()
        .map(|(n, a)| (n.to_string(), a))
        .collect();
    Ok(axum::Json(Overview {
        chain_id: d.chain_id,
        rpc_url: state.config.rpc_url.clone(),
        block,
        deploy_block: d.deploy_block,
        contracts,
        workers: WorkerCounts {
            known: entries.len(),
            active: entries.iter().filter(|e| e.registered).count(),
            healthy: entries.iter().filter(|e| e.healthy).count(),
        },
        programs,
        receipts,
        total_stake: total_stake.to_string(),
        kms_members,
        dev_ca: state.config.dev_ca.is_some(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    })
    .into_response())
}

pub(crate) async fn workers(State(state): S) -> Result<Response, Failure> {
    let mut out = Vec::new();
    for (entry, uptime, revoked) in state.workers.explorer_rows() {
        let registered_at = match entry.registered_block {
            Some(b) => state.explorer_blocks.of(&state, b).await,
            None => None,
        };
        out.push(ExplorerWorker {
            tcb_status_name: tcb_status_name(entry.platform_id, entry.tcb_status)
                .map(str::to_string),
            registered_at,
            revoked,
            uptime,
            entry,
        });
    }
    Ok(axum::Json(out).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    limit: Option<String>,
    offset: Option<String>,
    program: Option<String>,
    bucket: Option<String>,
    buckets: Option<String>,
}

pub(crate) async fn programs(
    State(state): S,
    Query(q): Query<PageQuery>,
) -> Result<Response, Failure> {
    let limit = limit(q.limit.as_deref(), PROGRAMS_LIMIT.0, PROGRAMS_LIMIT.1)?;
    let offset: u64 = match q.offset.as_deref() {
        None => 0,
        Some(s) => s
            .parse()
            .map_err(|_| bad("offset is not a non-negative integer"))?,
    };
    let total = u64::try_from(state.chain.program_count().await?).unwrap_or(u64::MAX);
    let newest = total.saturating_sub(offset);
    let oldest = newest.saturating_sub(limit).saturating_add(1);
    let mut versions: HashMap<U256, Vec<Version>> = HashMap::new();
    if newest >= 1 {
        let programs = state.chain.contracts().programs.raw();
        let from = state.chain.deployment().deploy_block;
        let registered = programs
            .ProgramRegistered_filter()
            .from_block(from)
            .query()
            .await
            .map_err(|e| rpc_failure("ProgramRegistered", e))?;
        for (ev, log) in registered {
            versions.entry(ev.programId).or_default().push(Version {
                kind: "registered".into(),
                code_hash: ev.codeHash,
                block: log.block_number.unwrap_or(0),
                tx: log.transaction_hash,
            });
        }
        let upgraded = programs
            .ProgramUpgraded_filter()
            .from_block(from)
            .query()
            .await
            .map_err(|e| rpc_failure("ProgramUpgraded", e))?;
        for (ev, log) in upgraded {
            versions.entry(ev.programId).or_default().push(Version {
                kind: "upgraded".into(),
                code_hash: ev.newCodeHash,
                block: log.block_number.unwrap_or(0),
                tx: log.transaction_hash,
            });
        }
    }
    let mut out = Vec::new();
    for id in (oldest..=newest).rev() {
        if id == 0 {
            break;
        }
        let Some(p) = state.chain.program(U256::from(id)).await? else {
            continue;
        };
        let program_id = B256::from(p.id.to_be_bytes::<32>());
        let store = state.store.clone();
        let calls =
            tokio::task::spawn_blocking(move || store.receipt_count_of(&program_id)).await??;
        let mut vs = versions.remove(&p.id).unwrap_or_default();
        vs.sort_by_key(|v| v.block);
        let skip = vs.len().saturating_sub(MAX_VERSIONS);
        out.push(ExplorerProgram {
            program_id,
            id: p.id.to_string(),
            owner: p.owner,
            code_hash: p.code_hash,
            deposit: p.deposit.to_string(),
            calls,
            versions: vs.split_off(skip),
        });
    }
    Ok(axum::Json(ProgramPage {
        total,
        programs: out,
    })
    .into_response())
}

pub(crate) async fn receipts(
    State(state): S,
    Query(q): Query<PageQuery>,
) -> Result<Response, Failure> {
    let limit = limit(
        q.limit.as_deref(),
        RECEIPTS_LIMIT.0 as u64,
        RECEIPTS_LIMIT.1 as u64,
    )? as usize;
    let program = q
        .program
        .as_deref()
        .map(crate::routes::parse_program_id)
        .transpose()?;
    let store = state.store.clone();
    let list =
        tokio::task::spawn_blocking(move || store.receipts(program.as_ref(), limit)).await??;
    let list: Vec<SignedReceipt> = list
        .into_iter()
        .filter(|r| crate::routes::served(&state, r))
        .collect();
    Ok(axum::Json(list).into_response())
}

pub(crate) async fn pools(State(state): S) -> Result<Response, Failure> {
    let c = state.chain.contracts();
    let created = c
        .stake_pools
        .raw()
        .PoolCreated_filter()
        .from_block(state.chain.deployment().deploy_block)
        .query()
        .await
        .map_err(|e| rpc_failure("PoolCreated", e))?;
    let mut operators: Vec<Address> = Vec::new();
    for (ev, _) in created.into_iter().rev() {
        if !operators.contains(&ev.operator) {
            operators.push(ev.operator);
        }
    }
    let entries = state.workers.entries();
    let mut out = Vec::new();
    for op in operators.into_iter().take(MAX_POOLS) {
        let p = c.stake_pools.pool(op).await?;
        out.push((
            p.totalStake,
            ExplorerPool {
                operator: op,
                commission_bps: p.commissionBps,
                total_stake: p.totalStake.to_string(),
                locked_stake: p.lockedStake.to_string(),
                total_shares: p.totalShares.to_string(),
                queued_shares: p.queuedShares.to_string(),
                workers: entries
                    .iter()
                    .filter(|e| e.operator == op)
                    .map(|e| e.address)
                    .collect(),
            },
        ));
    }
    out.sort_by_key(|(stake, _)| std::cmp::Reverse(*stake));
    Ok(axum::Json(out.into_iter().map(|(_, p)| p).collect::<Vec<_>>()).into_response())
}

pub(crate) async fn proposals(
    State(state): S,
    Query(q): Query<PageQuery>,
) -> Result<Response, Failure> {
    let limit = limit(
        q.limit.as_deref(),
        PROPOSALS_LIMIT.0 as u64,
        PROPOSALS_LIMIT.1 as u64,
    )? as usize;
    let g = &state.chain.contracts().governor;
    let created = g
        .raw()
        .ProposalCreated_filter()
        .from_block(state.chain.deployment().deploy_block)
        .query()
        .await
        .map_err(|e| rpc_failure("ProposalCreated", e))?;
    let mut out = Vec::new();
    for (ev, log) in created.into_iter().rev().take(limit) {
        let st = g.state(ev.proposalId).await?;
        let v = g
            .raw()
            .proposalVotes(ev.proposalId)
            .call()
            .await
            .map_err(|e| rpc_failure("proposalVotes", e))?;
        out.push(ExplorerProposal {
            id: ev.proposalId.to_string(),
            proposer: ev.proposer,
            description: ev.description,
            state: format!("{st:?}").to_ascii_lowercase(),
            vote_start: ev.voteStart.to_string(),
            vote_end: ev.voteEnd.to_string(),
            votes: Votes {
                for_votes: v.forVotes.to_string(),
                against: v.againstVotes.to_string(),
                abstain: v.abstainVotes.to_string(),
            },
            actions: ev.targets.len(),
            block: log.block_number.unwrap_or(0),
        });
    }
    Ok(axum::Json(out).into_response())
}

pub(crate) async fn calls(
    State(state): S,
    Query(q): Query<PageQuery>,
) -> Result<Response, Failure> {
    let (def_w, min_w, max_w) = CALL_BUCKET_SECONDS;
    let width = match q.bucket.as_deref() {
        None => def_w,
        Some(s) => {
            let w: u64 = s
                .parse()
                .map_err(|_| bad("bucket is not a number of seconds"))?;
            if !(min_w..=max_w).contains(&w) {
                return Err(bad(format!("bucket must be {min_w}..={max_w} seconds")));
            }
            w
        }
    };
    let buckets = u32::try_from(limit(
        q.buckets.as_deref(),
        u64::from(CALL_BUCKETS.0),
        u64::from(CALL_BUCKETS.1),
    )?)
    .unwrap_or(CALL_BUCKETS.1);
    let program = q
        .program
        .as_deref()
        .map(crate::routes::parse_program_id)
        .transpose()?;
    let store = state.store.clone();
    let list =
        tokio::task::spawn_blocking(move || store.receipts(program.as_ref(), MAX_SERIES_SCAN))
            .await??;
    let now = crate::now_secs();
    // The window ends at the end of the current bucket.
    let end = (now / width).saturating_add(1).saturating_mul(width);
    let (start, counts) = bucket_counts(list.iter().map(|r| r.timestamp), end, width, buckets);
    Ok(axum::Json(CallSeries {
        bucket_seconds: width,
        start,
        counts,
        scanned: list.len(),
        truncated: list.len() >= MAX_SERIES_SCAN,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_clamp_and_refuse() {
        assert_eq!(limit(None, 50, 200).ok(), Some(50));
        assert_eq!(limit(Some("7"), 50, 200).ok(), Some(7));
        assert_eq!(limit(Some("100000"), 50, 200).ok(), Some(200));
        assert!(limit(Some("0"), 50, 200).is_err());
        assert!(limit(Some("-1"), 50, 200).is_err());
        assert!(limit(Some("ten"), 50, 200).is_err());
    }

    #[test]
    fn buckets_count_inside_the_window_only() {
        // Window [100, 160) in 6 buckets of 10 s.
        let (start, counts) = bucket_counts([99, 100, 109, 110, 155, 159, 160, 1_000], 160, 10, 6);
        assert_eq!(start, 100);
        assert_eq!(counts, [2, 1, 0, 0, 0, 2]);
        let (_, empty) = bucket_counts([], 160, 10, 3);
        assert_eq!(empty, [0, 0, 0]);
        // A window longer than time itself starts at 0.
        let (start, counts) = bucket_counts([0, 5], 10, 10, 5);
        assert_eq!((start, counts), (0, vec![2, 0, 0, 0, 0]));
    }

    #[test]
    fn tcb_names_only_for_intel() {
        assert_eq!(tcb_status_name(2, 0), Some("UpToDate"));
        assert_eq!(tcb_status_name(1, 4), Some("OutOfDate"));
        assert_eq!(tcb_status_name(255, 0), None);
        assert_eq!(tcb_status_name(3, 0), None);
    }

    #[test]
    fn csp_allows_self_and_the_rpc_origin_only() {
        let csp = content_security_policy("http://127.0.0.1:8545/some/path");
        assert!(
            csp.contains("connect-src 'self' http://127.0.0.1:8545;"),
            "{csp}"
        );
        assert!(csp.contains("script-src 'self';"));
        assert!(!csp.contains("unsafe"));
        let csp = content_security_policy("not a url");
        assert!(csp.contains("connect-src 'self';"), "{csp}");
    }
}
