//! Usage batches to `Billing.submitUsage`.
//!
//! Every `usage_interval` with usage pending, the worker builds
//! `UsageBatch{worker, nonce = Billing.nextUsageNonce(worker), entries}` (one entry per
//! program: requests, CPU milliseconds, egress bytes), signs the contract's EIP-712
//! `usageDigest(batch)` with its identity key, and the operator account sends it. A batch
//! that fails is put back and retried with the next one. The nonce comes from the chain,
//! which is the one place it must be right (a batch whose nonce is below the chain's is
//! refused as a replay there). Pending usage lives in memory: usage not yet settled when a
//! worker is killed is lost (to the operator's disadvantage, never the payer's).

use alloy::primitives::{Bytes, U256};
use pith_chain::bindings::Billing;

use crate::error::WorkerError;
use crate::node::Node;

/// Submit one batch of the usage pending now; returns the number of programs settled.
pub async fn submit(node: &Node) -> Result<usize, WorkerError> {
    let pending = node.take_usage();
    if pending.is_empty() {
        return Ok(0);
    }
    match submit_batch(node, &pending).await {
        Ok(()) => Ok(pending.len()),
        Err(e) => {
            node.restore_usage(pending);
            Err(e)
        }
    }
}

async fn submit_batch(
    node: &Node,
    pending: &std::collections::HashMap<pith_crypto::keytree::ProgramId, crate::node::PendingUsage>,
) -> Result<(), WorkerError> {
    let (_, op) = node
        .operator
        .as_ref()
        .ok_or_else(|| WorkerError::Chain("no operator account".into()))?;
    let me = node.address();
    let billing = node.contracts.billing.raw();
    let nonce = billing
        .nextUsageNonce(me)
        .call()
        .await
        .map_err(|e| WorkerError::Chain(format!("nextUsageNonce: {e}")))?;
    let mut entries: Vec<Billing::UsageEntry> = pending
        .iter()
        .map(|(p, u)| Billing::UsageEntry {
            programId: U256::from_be_bytes(p.0),
            requests: u.requests,
            cpuMillis: u.cpu_micros.div_ceil(1000),
            egressBytes: u.egress_bytes,
        })
        .collect();
    entries.sort_by_key(|e| e.programId);
    let batch = Billing::UsageBatch {
        worker: me,
        nonce,
        entries,
    };
    let digest = billing
        .usageDigest(batch.clone())
        .call()
        .await
        .map_err(|e| WorkerError::Chain(format!("usageDigest: {e}")))?;
    let sig = node.identity.sign_digest(&digest)?;
    op.billing
        .send_submit_usage(batch, Bytes::from(sig.to_vec()))
        .await
        .map_err(|e| WorkerError::Chain(format!("submitUsage: {e}")))?;
    tracing::debug!(target: "pith::worker", programs = pending.len(), nonce, "usage settled");
    Ok(())
}
