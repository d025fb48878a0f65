//! `POST /v1/programs/{id}/invoke`: routing to a worker (least in flight, failover only
//! before delivery), plain and streamed (chunked) answers relayed, receipts checked and queued.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use pith_api::{ErrorBody, ErrorKind, headers, media};
use pith_crypto::receipt::SignedReceipt;
use pith_crypto::{Address, B256};

use super::{AppState, S, parse_program_id, read_body};
use crate::error::Failure;
use crate::metrics::FailoverReason;
use crate::workers::Pick;

/// True when a request that failed with `e` was certainly never delivered to the worker.
fn never_delivered(e: &reqwest::Error) -> bool {
    e.is_connect()
}

pub(super) async fn invoke(
    State(state): S,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Failure> {
    let program = parse_program_id(&id)?;
    // A chunked request asks for a streamed answer, relayed as it arrives.
    let chunked = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == media::OHTTP_CHUNKED_REQ.as_bytes());
    let request_type = if chunked {
        media::OHTTP_CHUNKED_REQ
    } else {
        media::OHTTP_REQ
    };
    let body = read_body(&headers, body, state.config.max_invoke_bytes).await?;
    let path = pith_api::worker::INVOKE.replace("{id}", &program.to_string());
    let mut tried: Vec<Address> = Vec::new();
    loop {
        if tried.len() >= state.config.max_attempts.max(1) {
            state.metrics.invocation("no_worker");
            return Err(Failure::new(
                ErrorKind::NoWorker,
                format!("{} workers refused before delivery", tried.len()),
            ));
        }
        let Some(pick) = state.workers.pick(&tried) else {
            state.metrics.invocation("no_worker");
            let msg = if tried.is_empty() {
                "no healthy registered worker"
            } else {
                "no other healthy worker after a refusal before delivery"
            };
            return Err(Failure::new(ErrorKind::NoWorker, msg));
        };
        tried.push(pick.address);
        pick.in_flight.fetch_add(1, Ordering::Relaxed);
        let _guard = InFlight(pick.in_flight.clone());
        let url = format!("{}{}", pick.url.trim_end_matches('/'), path);
        let sent = state
            .http
            .post(&url)
            .header(header::CONTENT_TYPE, request_type)
            .body(body.clone());
        // A stream runs as long as its worker writes: the invocation timeout bounds its start.
        let sent = if chunked {
            match tokio::time::timeout(state.config.invoke_timeout, sent.send()).await {
                Ok(r) => r,
                Err(_) => {
                    state.metrics.invocation("failed_after_delivery");
                    return Err(Failure::new(
                        ErrorKind::Unavailable,
                        format!(
                            "worker {} did not start its answer in time; not retried since it may have run",
                            pick.address
                        ),
                    ));
                }
            }
        } else {
            sent.timeout(state.config.invoke_timeout).send().await
        };
        let resp = match sent {
            Ok(r) => r,
            Err(e) if never_delivered(&e) => {
                tracing::info!(target: "pith_gateway", worker = %pick.address, error = %e, "connect failed; trying another worker");
                state.workers.mark_unreachable(pick.address);
                state.metrics.failover(FailoverReason::Connect);
                continue;
            }
            Err(e) => {
                tracing::warn!(target: "pith_gateway", worker = %pick.address, error = %e, "worker failed after the request was sent");
                state.metrics.invocation("failed_after_delivery");
                return Err(Failure::new(
                    ErrorKind::Unavailable,
                    format!(
                        "worker {} failed after the request was sent; not retried since it may have run",
                        pick.address
                    ),
                ));
            }
        };
        let status = resp.status();
        let resp_headers = resp.headers().clone();
        if chunked
            && status.is_success()
            && resp_headers
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes() == media::OHTTP_CHUNKED_RES.as_bytes())
        {
            // The receipt is inside the encrypted stream (its END frame): the client checks
            // it; the gateway cannot see it and stores none.
            count_call(&state, &pick, program);
            state.metrics.invocation("ok");
            state.metrics.receipt("in_stream");
            let guard = InFlight(pick.in_flight.clone());
            pick.in_flight.fetch_add(1, Ordering::Relaxed);
            let stream = futures::StreamExt::map(resp.bytes_stream(), move |r| {
                let _keep = &guard;
                r.map_err(std::io::Error::other)
            });
            return Response::builder()
                .status(status)
                .header(header::CONTENT_TYPE, media::OHTTP_CHUNKED_RES)
                .header(headers::WORKER, pick.address.to_string())
                .body(Body::from_stream(stream))
                .map_err(|e| Failure::new(ErrorKind::Internal, e.to_string()));
        }
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(target: "pith_gateway", worker = %pick.address, error = %e, "worker answer broke off");
                state.metrics.invocation("failed_after_delivery");
                return Err(Failure::new(
                    ErrorKind::Unavailable,
                    format!("worker {}'s answer broke off", pick.address),
                ));
            }
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            if let Ok(b) = serde_json::from_slice::<ErrorBody>(&bytes) {
                if b.error.kind == ErrorKind::Draining {
                    state.workers.mark_draining(pick.address);
                    state.metrics.failover(FailoverReason::Draining);
                    continue;
                }
                if b.error.kind == ErrorKind::ModelUnavailable {
                    // Nothing ran: another worker may serve the model.
                    state.metrics.failover(FailoverReason::Model);
                    continue;
                }
            }
        }
        count_call(&state, &pick, program);
        let mut out = Response::builder().status(status);
        for name in [
            header::CONTENT_TYPE.as_str(),
            headers::RECEIPT,
            headers::WORKER,
        ] {
            if let Some(v) = resp_headers.get(name) {
                out = out.header(name, v);
            }
        }
        if resp_headers.get(headers::WORKER).is_none() {
            out = out.header(headers::WORKER, pick.address.to_string());
        }
        if status.is_success() {
            state.metrics.invocation("ok");
            match resp_headers
                .get(headers::RECEIPT)
                .and_then(|v| v.to_str().ok())
            {
                Some(h) => {
                    match check_receipt(h, pick.address, program, state.chain.deployment()) {
                        Ok(r) => queue_receipt(&state, r).await,
                        Err(reason) => {
                            tracing::warn!(target: "pith_gateway", worker = %pick.address, %reason, "receipt rejected; not stored");
                            state.metrics.receipt("rejected");
                        }
                    }
                }
                None => state.metrics.receipt("missing"),
            }
        } else {
            state.metrics.invocation("refused");
        }
        return out
            .body(Body::from(bytes))
            .map_err(|e| Failure::new(ErrorKind::Internal, e.to_string()));
    }
}

/// Count an invocation a worker answered, for the worker and for the program.
fn count_call(state: &AppState, pick: &Pick, program: B256) {
    pick.calls.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut m) = state.calls.lock() {
        *m.entry(program).or_default() += 1;
    }
}

struct InFlight(Arc<std::sync::atomic::AtomicU64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Check a `pith-receipt` header on the invocation path: it decodes, names the worker that
/// answered, and is for this program, chain and Registry. Its **signature is checked when
/// the receipt is read back** (`GET /v1/receipts..`), not here: recovering a secp256k1
/// signature is the largest single cost of an invocation in the gateway, receipts are read
/// back rarely, and the client checks the signature of the receipt it gets in any case. A
/// stored receipt whose signature does not recover to the worker it names is never served.
pub fn check_receipt(
    header: &str,
    answered_by: Address,
    program: B256,
    d: &pith_chain::Deployment,
) -> Result<SignedReceipt, String> {
    let json = pith_api::from_b64url(header).map_err(|e| e.message)?;
    let r: SignedReceipt =
        serde_json::from_slice(&json).map_err(|e| format!("receipt JSON: {e}"))?;
    if r.worker != answered_by {
        return Err(format!(
            "receipt names worker {}, but {answered_by} answered",
            r.worker
        ));
    }
    if r.program_id != program {
        return Err(format!(
            "receipt is for program {}, not {program}",
            r.program_id
        ));
    }
    if r.chain_id != d.chain_id || r.verifying_contract != d.contracts.registry {
        return Err("receipt is for another chain or Registry".into());
    }
    Ok(r)
}

async fn queue_receipt(state: &AppState, r: SignedReceipt) {
    if let Ok(mut p) = state.pending_receipts.lock() {
        p.insert(r.request_hash, r.clone());
    }
    if state.receipt_tx.send(r).await.is_err() {
        tracing::warn!(target: "pith_gateway", "receipt writer stopped; receipt not stored");
    }
}
