//! Usage batches to `Billing.submitUsage`.
//!
//! Every `usage_interval` with usage pending, the worker builds
//! `UsageBatch{worker, nonce = Billing.nextUsageNonce(worker), entries}` (one entry per
//! program: requests, CPU milliseconds, egress bytes, model tokens), signs the contract's
//! EIP-712 `usageDigest(batch)` with its identity key, and the operator account sends it. A
//! batch that fails is put back and retried with the next one. The nonce comes from the chain,
//! which is the one place it must be right (a batch whose nonce is below the chain's is
//! refused as a replay there). Pending usage lives in memory: usage not yet settled when a
//! worker is killed is lost (to the operator's disadvantage, never the payer's).

use std::collections::HashMap;

use alloy::primitives::{Bytes, U256};
use pith_chain::bindings::Billing;
use pith_crypto::keytree::ProgramId;

use crate::error::WorkerError;
use crate::node::{Node, PendingUsage};

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

/// The batch entries of `pending`, one per program in program id order: CPU microseconds
/// rounded up to milliseconds, model tokens as prompt plus completion tokens.
pub fn entries(pending: &HashMap<ProgramId, PendingUsage>) -> Vec<Billing::UsageEntry> {
    let mut entries: Vec<Billing::UsageEntry> = pending
        .iter()
        .map(|(p, u)| Billing::UsageEntry {
            programId: U256::from_be_bytes(p.0),
            requests: u.requests,
            cpuMillis: u.cpu_micros.div_ceil(1000),
            egressBytes: u.egress_bytes,
            aiTokens: u.ai_tokens,
        })
        .collect();
    entries.sort_by_key(|e| e.programId);
    entries
}

async fn submit_batch(
    node: &Node,
    pending: &HashMap<ProgramId, PendingUsage>,
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
    let batch = Billing::UsageBatch {
        worker: me,
        nonce,
        entries: entries(pending),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(cpu_us: u64, egress: u64, prompt: u64, completion: u64) -> pith_sandbox::Usage {
        pith_sandbox::Usage {
            cpu_us,
            egress_bytes: egress,
            ai_prompt_tokens: prompt,
            ai_completion_tokens: completion,
            ..pith_sandbox::Usage::default()
        }
    }

    #[test]
    fn model_tokens_go_into_the_batch() {
        let ai = ProgramId([2; 32]);
        let plain = ProgramId([1; 32]);
        let mut pending: HashMap<ProgramId, PendingUsage> = HashMap::new();
        pending
            .entry(ai)
            .or_default()
            .record(&usage(1_500, 10, 30, 8));
        pending.entry(ai).or_default().record(&usage(1, 0, 12, 0));
        pending
            .entry(plain)
            .or_default()
            .record(&usage(999, 7, 0, 0));
        assert_eq!(
            entries(&pending),
            vec![
                Billing::UsageEntry {
                    programId: U256::from_be_bytes([1; 32]),
                    requests: 1,
                    cpuMillis: 1,
                    egressBytes: 7,
                    aiTokens: 0,
                },
                Billing::UsageEntry {
                    programId: U256::from_be_bytes([2; 32]),
                    requests: 2,
                    cpuMillis: 2,
                    egressBytes: 10,
                    aiTokens: 30 + 8 + 12,
                },
            ]
        );
    }

    #[test]
    fn restored_usage_keeps_its_tokens_and_counters_saturate() {
        let mut a = PendingUsage::default();
        a.record(&usage(0, 0, 5, 6));
        let mut b = PendingUsage::default();
        b.record(&usage(0, 0, u64::MAX, 1));
        assert_eq!(b.ai_tokens, u64::MAX);
        let mut restored = PendingUsage::default();
        restored.merge(&a);
        restored.merge(&a);
        assert_eq!(restored.ai_tokens, 22);
        assert_eq!(restored.requests, 2);
        restored.merge(&b);
        assert_eq!(restored.ai_tokens, u64::MAX);
    }
}
