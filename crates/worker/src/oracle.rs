//! Oracle requests: watch `OracleAnchor.OracleRequested`, run the program with the payload,
//! fulfil with the worker-signed result.
//!
//! Assignment (docs/adr/0077-worker-oracle.md): every worker sees every request. Worker `w`
//! waits `rank(w, id) × TAKEOVER_DELAY` before acting, with
//! `rank(w, id) = keccak256(be256(requestId) ‖ w)[0] mod RANKS`; when its turn comes it
//! checks `requestInfo(id)` and fulfils only a request still open. So the worker with the
//! lowest rank answers, and the others take over one by one if it is down. Ties (same rank)
//! may fulfil twice; the second transaction reverts on chain (`UnknownRequest`, the request
//! is deleted on fulfilment), which the worker treats as "already fulfilled", not an error.
//!
//! The program receives `POST https://pith/.pith/oracle` with the payload as the body and
//! header `pith-oracle-request` = the request id (decimal); the response body is the result.
//! The worker signs the contract's `resultDigest(requestId, programId, codeHash,
//! keccak256(result))` and its operator account sends `fulfil`.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use pith_chain::bindings::OracleAnchor;
use pith_chain::watcher::{EventWatcher, WatchEvent, WatcherConfig};
use pith_crypto::keytree::ProgramId;
use tokio_util::sync::CancellationToken;

use crate::error::WorkerError;
use crate::node::Node;

/// Delay between successive takeover ranks.
pub const TAKEOVER_DELAY: Duration = Duration::from_secs(4);
/// Number of ranks.
pub const RANKS: u8 = 4;
/// Header carrying the request id to the program.
pub const REQUEST_HEADER: &str = "pith-oracle-request";

/// The rank of `worker` for `request_id` (0 acts first).
pub fn rank(request_id: U256, worker: pith_crypto::Address) -> u8 {
    let mut pre = request_id.to_be_bytes::<32>().to_vec();
    pre.extend_from_slice(worker.as_slice());
    pith_crypto::keccak256(&pre)[0] % RANKS
}

/// Watch and fulfil until `stop`.
pub async fn run(node: Arc<Node>, stop: CancellationToken) {
    if node.operator.is_none() {
        return;
    }
    let provider = node.contracts.provider().clone();
    let from = loop {
        match provider.get_block_number().await {
            Ok(b) => break b.saturating_add(1),
            Err(e) => {
                tracing::warn!(target: "pith::worker", "oracle: block number: {e}");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let filter = Filter::new()
        .address(node.config.deployment.contracts.oracle_anchor)
        .event_signature(OracleAnchor::OracleRequested::SIGNATURE_HASH);
    let config = WatcherConfig::new()
        .confirmations(1)
        .cursor_file(node.config.state_dir.join("oracle-cursor.json"));
    let mut watcher = match EventWatcher::new(provider, filter, from, config) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(target: "pith::worker", "oracle watcher: {e}");
            return;
        }
    };
    loop {
        match watcher.poll().await {
            Ok(events) => {
                for ev in events {
                    if let WatchEvent::Log(log) = ev {
                        match log.log_decode::<OracleAnchor::OracleRequested>() {
                            Ok(d) => {
                                let r = d.inner.data;
                                let node = node.clone();
                                let stop = stop.clone();
                                tokio::spawn(async move {
                                    handle(node, stop, r.requestId, r.programId, r.payload).await
                                });
                            }
                            Err(e) => {
                                tracing::warn!(target: "pith::worker", "oracle: undecodable log: {e}")
                            }
                        }
                    }
                }
                if let Err(e) = watcher.save() {
                    tracing::warn!(target: "pith::worker", "oracle cursor: {e}");
                }
            }
            Err(e) => tracing::warn!(target: "pith::worker", "oracle watcher: {e}"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

async fn handle(
    node: Arc<Node>,
    stop: CancellationToken,
    request_id: U256,
    program_id: U256,
    payload: Bytes,
) {
    let wait = TAKEOVER_DELAY * u32::from(rank(request_id, node.address()));
    tokio::select! {
        () = stop.cancelled() => return,
        () = tokio::time::sleep(wait) => {}
    }
    match fulfil(&node, request_id, program_id, payload).await {
        Ok(true) => tracing::info!(target: "pith::worker", %request_id, "oracle request fulfilled"),
        Ok(false) => {
            tracing::debug!(target: "pith::worker", %request_id, "oracle request already fulfilled")
        }
        Err(e) => tracing::warn!(target: "pith::worker", %request_id, "oracle request: {e}"),
    }
}

async fn open(node: &Node, request_id: U256) -> Result<bool, WorkerError> {
    let info = node
        .contracts
        .oracle_anchor
        .raw()
        .requestInfo(request_id)
        .call()
        .await
        .map_err(|e| WorkerError::Chain(format!("requestInfo: {e}")))?;
    Ok(!info.requester.is_zero())
}

/// Run and fulfil one request; `Ok(false)` when it was already fulfilled (or refunded).
pub async fn fulfil(
    node: &Node,
    request_id: U256,
    program_id: U256,
    payload: Bytes,
) -> Result<bool, WorkerError> {
    if node.is_draining() || !open(node, request_id).await? {
        return Ok(false);
    }
    let program = ProgramId(program_id.to_be_bytes::<32>());
    let keys = node.program_keys(program).await?;
    let loaded = node.load_program(program, &keys).await?;
    let req = pith_sandbox::Request {
        method: "POST".into(),
        url: "https://pith/.pith/oracle".into(),
        headers: vec![(REQUEST_HEADER.into(), request_id.to_string())],
        body: payload.to_vec(),
    };
    let outcome = node.run(&loaded, req).await;
    node.record_usage(program, &outcome.usage, &outcome.logs);
    let response = outcome
        .result
        .map_err(|e| WorkerError::Chain(format!("program failed on the oracle request: {e}")))?;
    let result = Bytes::from(response.body);
    let digest = node
        .contracts
        .oracle_anchor
        .raw()
        .resultDigest(
            request_id,
            program_id,
            loaded.code_hash.into(),
            pith_crypto::keccak256(&result).into(),
        )
        .call()
        .await
        .map_err(|e| WorkerError::Chain(format!("resultDigest: {e}")))?;
    let sig = node.identity().sign_digest(&digest)?;
    let (_, op) = node
        .operator
        .as_ref()
        .ok_or_else(|| WorkerError::Chain("no operator account".into()))?;
    if !open(node, request_id).await? {
        return Ok(false);
    }
    match op
        .oracle_anchor
        .send_fulfil(request_id, result, Bytes::from(sig.to_vec()))
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => {
            if open(node, request_id).await.ok() == Some(false) {
                Ok(false)
            } else {
                Err(WorkerError::Chain(format!("fulfil: {e}")))
            }
        }
    }
}
