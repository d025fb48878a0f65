//! Registration through the KMS, re-registration before expiry, announcements
//! (heartbeats) to the gateway.
//!
//! 1. `POST /v1/kms/workers/register` with the worker's evidence: the KMS verifies it
//!    against the chain's worker policy and signs the EIP-712 registration.
//! 2. The operator account sends `Registry.registerWorker(reg, evidence, [sig])`.
//! 3. The worker re-registers when less than a third of its registration's lifetime is
//!    left ([`needs_renewal`]).
//! 4. Every heartbeat it announces its URL to the gateway, signed by its identity key
//!    (`Announce`, `ANNOUNCE_TAG`); a draining worker stops announcing.

use alloy::primitives::Bytes;
use pith_api::gateway::Announce;
use pith_api::kms::{REGISTER_WORKER, RegisterWorkerRequest, RegisterWorkerResponse};
use pith_chain::bindings::Registry;

use crate::error::WorkerError;
use crate::node::{Node, now_secs};

/// True when a registration made at `registered_at` expiring at `expiry` should be renewed
/// at `now`: less than a third of its lifetime left.
pub fn needs_renewal(registered_at: u64, expiry: u64, now: u64) -> bool {
    let lifetime = expiry.saturating_sub(registered_at);
    expiry.saturating_sub(now) < lifetime / 3 + 1
}

async fn kms_register(node: &Node) -> Result<RegisterWorkerResponse, WorkerError> {
    let operator = node
        .config
        .operator
        .as_ref()
        .map(alloy::signers::Signer::address)
        .ok_or_else(|| {
            WorkerError::Kms("no operator account configured (--operator-key-file)".into())
        })?;
    let body = RegisterWorkerRequest {
        worker: node.address(),
        operator,
        enc_public_key: node.identity.enc_public_key(),
        evidence: node.evidence.bytes.clone(),
        model_hash: node.model_hash(),
    };
    let mut last = WorkerError::Kms("no KMS configured (--kms)".into());
    for base in &node.config.kms_urls {
        let url = format!("{}{REGISTER_WORKER}", base.trim_end_matches('/'));
        match node
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, pith_api::media::JSON)
            .body(serde_json::to_vec(&body).unwrap_or_default())
            .send()
            .await
        {
            Ok(resp) => {
                let status = resp.status();
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| WorkerError::Kms(e.to_string()))?;
                if status.is_success() {
                    return serde_json::from_slice(&bytes)
                        .map_err(|e| WorkerError::Kms(format!("register answer: {e}")));
                }
                // A policy refusal is final (another KMS applies the same chain policy).
                if let Ok(b) = serde_json::from_slice::<pith_api::ErrorBody>(&bytes) {
                    return Err(WorkerError::Api(b.error));
                }
                last = WorkerError::Kms(format!("{url}: HTTP {status}"));
            }
            Err(e) => last = WorkerError::Kms(format!("{url}: {e}")),
        }
    }
    Err(last)
}

/// Make sure the worker is registered and not close to expiry; returns the expiry.
pub async fn ensure_registered(node: &Node) -> Result<u64, WorkerError> {
    let me = node.address();
    let registry = &node.contracts.registry;
    let evidence_hash = pith_crypto::keccak256(&node.evidence.bytes);
    let active = registry
        .is_active_worker(me)
        .await
        .map_err(|e| WorkerError::Chain(e.to_string()))?;
    let now = now_secs();
    if active {
        let info = registry
            .worker_info(me)
            .await
            .map_err(|e| WorkerError::Chain(e.to_string()))?;
        let since = node.registered_at.load(std::sync::atomic::Ordering::SeqCst);
        let since = if since == 0 { now } else { since };
        if info.evidenceHash.0 == evidence_hash && !needs_renewal(since, info.expiry, now) {
            node.set_registered(Some(info.expiry), since);
            return Ok(info.expiry);
        }
    }
    let answer = kms_register(node).await?;
    let r = &answer.registration;
    if r.worker != me || r.evidence_hash.0 != evidence_hash {
        return Err(WorkerError::Kms(
            "the KMS signed a registration for another worker or evidence".into(),
        ));
    }
    let reg = Registry::WorkerRegistration {
        worker: r.worker,
        operator: r.operator,
        platform: r.platform,
        measurementHash: r.measurement_hash,
        tcbStatus: r.tcb_status,
        evidenceHash: r.evidence_hash,
        expiry: r.expiry,
    };
    let (_, op) = node
        .operator
        .as_ref()
        .ok_or_else(|| WorkerError::Chain("no operator account".into()))?;
    op.registry
        .send_register_worker(
            reg,
            Bytes::from(node.evidence.bytes.clone()),
            vec![Bytes::from(answer.signature.clone())],
        )
        .await
        .map_err(|e| WorkerError::Chain(format!("registerWorker: {e}")))?;
    tracing::info!(target: "pith::worker", worker = %me, expiry = r.expiry, "registered");
    node.set_registered(Some(r.expiry), now);
    Ok(r.expiry)
}

/// Announce the worker's URL to the gateway (one heartbeat).
pub async fn announce(node: &Node) -> Result<(), WorkerError> {
    let Some(gw) = node.config.gateway_url.as_deref() else {
        return Ok(());
    };
    let url = node.url();
    let timestamp = now_secs();
    let digest = pith_api::binding::message_digest(
        pith_api::binding::ANNOUNCE_TAG,
        &[node.address().as_slice(), url.as_bytes()],
        timestamp,
    );
    let signature = node.identity.sign_digest(&digest)?.to_vec();
    let body = Announce {
        worker: node.address(),
        url,
        timestamp,
        signature,
    };
    let resp = node
        .http
        .post(format!(
            "{}{}",
            gw.trim_end_matches('/'),
            pith_api::gateway::ANNOUNCE
        ))
        .header(reqwest::header::CONTENT_TYPE, pith_api::media::JSON)
        .body(serde_json::to_vec(&body).unwrap_or_default())
        .send()
        .await
        .map_err(|e| WorkerError::Gateway(e.to_string()))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(WorkerError::Gateway(format!(
            "announce: HTTP {status}: {text}"
        )));
    }
    Ok(())
}
