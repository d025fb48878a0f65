//! Agents: programs that run by themselves, on their owner-signed triggers
//! (`pith_api::agent`): a cron schedule and on-chain events.
//!
//! Every worker watches every agent; a **firing** (one cron tick, or one event log) has an id
//! — `cron:{unix seconds}` or `event:{block}:{tx hash}:{log index}` — and runs only on the
//! worker that first **claims** it: an insert of `(claims namespace of the program, firing
//! id)` into the program storage the workers share, with the store's compare-and-set
//! (version 0 → 1), which exactly one writer wins. So a firing runs at most once on the whole
//! network: no duplicate actions. A worker that dies after claiming loses that firing (its
//! action may or may not have happened); the next firings run on the workers still alive,
//! with no hand-over step. A worker that first sees an event trigger (a new agent, a restart)
//! reads [`EVENT_LOOKBACK`] blocks back; the claims keep that from running anything twice.
//! Agents that must not miss work keep a cursor in `env.kv` or read the chain for what is
//! still open; agents whose actions must happen exactly once make them idempotent on chain
//! too (the example's Inbox accepts one decision per post), since the store's compare-and-set
//! is the operator's, not the TEE's (docs/adr/0170-agents.md).
//!
//! A firing calls the program with `POST https://pith/.pith/agent`, headers `pith-trigger`
//! and `pith-firing`, and a JSON body (docs/protocol.md "Agents"). User requests can never
//! carry `pith-*` headers (the worker strips them), so a program can trust them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, Log};
use pith_api::agent::{
    EventTrigger, FIRING_HEADER, FIRING_PATH, Schedule, SignedTriggers, TRIGGER_HEADER,
};
use pith_crypto::keytree::ProgramId;
use pith_crypto::{Address, B256};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::error::WorkerError;
use crate::node::{Node, now_secs};
use crate::storage::{Row, Store};

/// How often the worker looks for due firings.
pub const TICK: Duration = Duration::from_millis(500);
/// How often the agent list is read from the gateway.
pub const REFRESH: Duration = Duration::from_secs(2);
/// Most blocks read per event filter and round.
pub const MAX_BLOCK_RANGE: u64 = 1_000;
/// Most cron ticks fired at once after a pause (the newest ones; older ones are skipped).
pub const MAX_CATCH_UP: usize = 1;
/// Blocks looked back when a worker first sees an event trigger: events emitted while the
/// triggers were on their way (or while every worker was restarting) still fire. Claims make
/// the look-back safe: a firing already claimed is never run again.
pub const EVENT_LOOKBACK: u64 = 128;
/// How long an owner read from the chain is trusted.
const OWNER_TTL: Duration = Duration::from_secs(30);

/// The claims namespace of `program` in the shared store (never a program's own kv).
pub fn claims_namespace(program: &ProgramId) -> [u8; 32] {
    let mut pre = b"pith/v1/agent-claims".to_vec();
    pre.extend_from_slice(&program.0);
    pith_crypto::keccak256(&pre)
}

/// Claim `firing` of `program` for `worker`; `Ok(true)` when this call won it.
pub async fn claim(
    store: &dyn Store,
    program: &ProgramId,
    firing: &str,
    worker: Address,
) -> Result<bool, WorkerError> {
    let row = Row {
        version: 1,
        sealed: serde_json::to_vec(&json!({"worker": worker, "at": now_secs()}))
            .unwrap_or_default(),
    };
    store
        .put(&claims_namespace(program), firing, 0, row)
        .await
        .map_err(|e| WorkerError::State(format!("claiming {firing}: {e}")))
}

/// One thing that makes an agent run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firing {
    /// A cron tick (unix seconds), with the agent's event triggers (so a schedule-driven sweep
    /// knows what it watches).
    Cron(i64, Vec<EventTrigger>),
    /// An event log.
    Event(Box<Log>),
}

impl Firing {
    /// The firing id (unique per program).
    pub fn id(&self) -> String {
        match self {
            Self::Cron(t, _) => format!("cron:{t}"),
            Self::Event(l) => format!(
                "event:{}:{:#x}:{}",
                l.block_number.unwrap_or_default(),
                l.transaction_hash.unwrap_or_default(),
                l.log_index.unwrap_or_default()
            ),
        }
    }

    /// The request the program gets.
    pub fn request(&self) -> pith_sandbox::Request {
        let id = self.id();
        let (kind, body) = match self {
            Self::Cron(t, events) => (
                "cron",
                json!({"trigger": "cron", "firing": id, "scheduledTime": t.saturating_mul(1000), "events": events}),
            ),
            Self::Event(l) => (
                "event",
                json!({"trigger": "event", "firing": id, "event": {
                    "address": l.address(),
                    "topics": l.topics(),
                    "data": l.data().data,
                    "blockNumber": l.block_number,
                    "transactionHash": l.transaction_hash,
                    "logIndex": l.log_index,
                }}),
            ),
        };
        pith_sandbox::Request {
            method: "POST".into(),
            url: format!("https://pith{FIRING_PATH}"),
            headers: vec![
                (TRIGGER_HEADER.into(), kind.into()),
                (FIRING_HEADER.into(), id),
                ("content-type".into(), "application/json".into()),
            ],
            body: serde_json::to_vec(&body).unwrap_or_default(),
        }
    }
}

/// What a worker keeps about one agent.
struct Agent {
    version: u64,
    schedule: Option<Schedule>,
    last_tick: i64,
    events: Vec<EventTrigger>,
    /// (address, topic0, last block read)
    filters: Vec<(Address, B256, u64)>,
}

/// Watch the agents and fire them until `stop`.
pub async fn run(node: Arc<Node>, stop: CancellationToken) {
    let Some(gateway) = node.config.gateway_url.clone() else {
        return;
    };
    let gw = match pith_api::gateway::Client::new(&gateway) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(target: "pith::worker", "agents: gateway client: {e}");
            return;
        }
    };
    let mut agents: HashMap<ProgramId, Agent> = HashMap::new();
    let mut owners: HashMap<ProgramId, (Address, Instant)> = HashMap::new();
    let mut refreshed: Option<Instant> = None;
    loop {
        if refreshed.is_none_or(|t| t.elapsed() >= REFRESH) {
            refreshed = Some(Instant::now());
            match gw.agents().await {
                Ok(list) => refresh(&node, &mut agents, &mut owners, list).await,
                Err(e) => tracing::debug!(target: "pith::worker", "agents: list: {e}"),
            }
        }
        if !node.is_draining() && !agents.is_empty() {
            round(&node, &mut agents, &stop).await;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(TICK) => {}
        }
    }
}

async fn owner_of(
    node: &Node,
    owners: &mut HashMap<ProgramId, (Address, Instant)>,
    program: ProgramId,
) -> Result<Address, WorkerError> {
    if let Some((a, at)) = owners.get(&program)
        && at.elapsed() < OWNER_TTL
    {
        return Ok(*a);
    }
    let owner = node
        .contracts
        .programs
        .raw()
        .ownerOf(U256::from_be_bytes(program.0))
        .call()
        .await
        .map_err(|e| WorkerError::Chain(format!("ownerOf: {e}")))?;
    owners.insert(program, (owner, Instant::now()));
    Ok(owner)
}

/// Take in the gateway's list: keep the triggers whose signature recovers to the program's
/// owner on chain; start new cron schedules at "now" (no backlog) and new event filters
/// [`EVENT_LOOKBACK`] blocks back.
async fn refresh(
    node: &Node,
    agents: &mut HashMap<ProgramId, Agent>,
    owners: &mut HashMap<ProgramId, (Address, Instant)>,
    list: Vec<SignedTriggers>,
) {
    let mut seen = Vec::new();
    for t in list {
        let program = ProgramId(t.program_id.0);
        seen.push(program);
        if agents.get(&program).is_some_and(|a| a.version == t.version) {
            continue;
        }
        let checked = match (t.triggers.validate(), t.signer()) {
            (Ok(()), Ok(signer)) => match owner_of(node, owners, program).await {
                Ok(owner) if owner == signer => Ok(()),
                Ok(owner) => Err(format!("signed by {signer}, owner is {owner}")),
                Err(e) => Err(e.to_string()),
            },
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        if let Err(e) = checked {
            tracing::warn!(target: "pith::worker", program = %program.to_hex(), version = t.version, "agent triggers ignored: {e}");
            continue;
        }
        let head = match node.contracts.provider().get_block_number().await {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(target: "pith::worker", "agents: block number: {e}");
                continue;
            }
        };
        let old = agents.remove(&program);
        let now = i64::try_from(now_secs()).unwrap_or(i64::MAX);
        let filters = t
            .triggers
            .events
            .iter()
            .map(|e| {
                // A filter kept from the previous version continues where it was.
                let from = old
                    .as_ref()
                    .and_then(|o| {
                        o.filters
                            .iter()
                            .find(|f| f.0 == e.address && f.1 == e.topic0())
                    })
                    .map_or(head.saturating_sub(EVENT_LOOKBACK), |f| f.2);
                (e.address, e.topic0(), from)
            })
            .collect();
        let schedule = t
            .triggers
            .cron
            .as_deref()
            .and_then(|c| Schedule::parse(c).ok());
        tracing::info!(target: "pith::worker", program = %program.to_hex(), version = t.version, cron = ?t.triggers.cron, events = t.triggers.events.len(), "agent watched");
        agents.insert(
            program,
            Agent {
                version: t.version,
                schedule,
                last_tick: old.map_or(now, |o| o.last_tick),
                events: t.triggers.events.clone(),
                filters,
            },
        );
    }
    agents.retain(|p, _| seen.contains(p));
}

/// Fire what is due: cron ticks up to now, new logs of each filter.
async fn round(node: &Arc<Node>, agents: &mut HashMap<ProgramId, Agent>, stop: &CancellationToken) {
    let now = i64::try_from(now_secs()).unwrap_or(i64::MAX);
    let head = node.contracts.provider().get_block_number().await.ok();
    for (program, a) in agents.iter_mut() {
        if let Some(s) = &a.schedule {
            for tick in s.due(a.last_tick, now, MAX_CATCH_UP) {
                spawn_firing(node, stop, *program, Firing::Cron(tick, a.events.clone()));
            }
            a.last_tick = now;
        }
        let Some(head) = head else { continue };
        for f in &mut a.filters {
            if head <= f.2 {
                continue;
            }
            let to = head.min(f.2.saturating_add(MAX_BLOCK_RANGE));
            let filter = Filter::new()
                .address(f.0)
                .event_signature(f.1)
                .from_block(f.2.saturating_add(1))
                .to_block(to);
            match node.contracts.provider().get_logs(&filter).await {
                Ok(logs) => {
                    for l in logs {
                        spawn_firing(node, stop, *program, Firing::Event(Box::new(l)));
                    }
                    f.2 = to;
                }
                Err(e) => tracing::debug!(target: "pith::worker", "agents: logs: {e}"),
            }
        }
    }
}

fn spawn_firing(node: &Arc<Node>, stop: &CancellationToken, program: ProgramId, firing: Firing) {
    let node = node.clone();
    let stop = stop.clone();
    tokio::spawn(async move {
        let id = firing.id();
        tokio::select! {
            () = stop.cancelled() => {}
            r = fire(&node, program, firing) => match r {
                Ok(true) => {}
                Ok(false) => tracing::debug!(target: "pith::worker", program = %program.to_hex(), firing = %id, "claimed by another worker"),
                Err(e) => tracing::warn!(target: "pith::worker", program = %program.to_hex(), firing = %id, "agent firing: {e}"),
            }
        }
    });
}

/// Claim and run one firing; `Ok(false)` when another worker claimed it.
pub async fn fire(node: &Node, program: ProgramId, firing: Firing) -> Result<bool, WorkerError> {
    let id = firing.id();
    if !claim(node.store.as_ref(), &program, &id, node.address()).await? {
        return Ok(false);
    }
    let keys = node.program_keys(program).await?;
    let loaded = node.load_program(program, &keys).await?;
    let req = firing.request();
    let request_hash = pith_crypto::keccak256(&req.body);
    let outcome = node.run(&loaded, req).await;
    let (status, body) = match &outcome.result {
        Ok(r) => (r.status, r.body.clone()),
        Err(e) => (
            500,
            serde_json::to_vec(&json!({"error": e})).unwrap_or_default(),
        ),
    };
    // The firing's receipt: request = the firing's body, response = the program's answer.
    let receipt = node.sign_receipt(
        program,
        loaded.code_hash,
        request_hash,
        pith_crypto::keccak256(&body),
        &outcome.usage,
    )?;
    let mut logs = outcome.logs.clone();
    logs.push(pith_sandbox::LogLine {
        level: if status < 400 { "info" } else { "error" }.into(),
        message: format!(
            "agent firing {id} on worker {:#x}: status {status}; receipt {}",
            node.address(),
            serde_json::to_string(&receipt).unwrap_or_default()
        ),
    });
    node.record_usage(program, &outcome.usage, &logs);
    tracing::info!(target: "pith::worker", program = %program.to_hex(), firing = %id, status, "agent fired");
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_firing_is_claimed_once_across_handles_on_one_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let a = crate::storage::SqliteStore::open(&path).unwrap();
        let b = crate::storage::SqliteStore::open(&path).unwrap();
        let p = ProgramId([1; 32]);
        let (wa, wb) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        assert!(claim(&a, &p, "cron:10", wa).await.unwrap());
        assert!(!claim(&b, &p, "cron:10", wb).await.unwrap());
        assert!(!claim(&a, &p, "cron:10", wa).await.unwrap());
        assert!(claim(&b, &p, "cron:20", wb).await.unwrap());
        // Another program's firing with the same id is its own.
        assert!(claim(&a, &ProgramId([2; 32]), "cron:10", wa).await.unwrap());
        // Claims never show up in the program's own key space.
        assert!(a.list(&p.0, "", "", 10).await.unwrap().is_empty());
    }

    #[test]
    fn firing_ids_and_requests() {
        let f = Firing::Cron(1_700_000_000, vec![]);
        assert_eq!(f.id(), "cron:1700000000");
        let r = f.request();
        assert_eq!(r.url, "https://pith/.pith/agent");
        assert!(r.headers.contains(&("pith-trigger".into(), "cron".into())));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["scheduledTime"], 1_700_000_000_000_i64);
        let mut log = Log::default();
        log.block_number = Some(7);
        log.log_index = Some(2);
        log.transaction_hash = Some(B256::repeat_byte(3));
        let e = Firing::Event(Box::new(log));
        assert_eq!(e.id(), format!("event:7:{:#x}:2", B256::repeat_byte(3)));
        let v: serde_json::Value = serde_json::from_slice(&e.request().body).unwrap();
        assert_eq!(v["event"]["blockNumber"], 7);
    }
}
