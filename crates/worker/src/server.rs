//! The worker's HTTP API (`pith_api::worker`): info, health, invoke, logs.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pith_api::worker::{HEALTH, INFO, INVOKE, LOGS, ProgramLogs, WorkerHealth, WorkerInfo};
use pith_api::{ApiError, ErrorKind};
use pith_crypto::keytree::ProgramId;

use crate::node::Node;

/// Largest encapsulated request accepted (bytes).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

/// A typed JSON error response.
pub struct Refusal(pub ApiError);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.0.body())).into_response()
    }
}

impl From<crate::WorkerError> for Refusal {
    fn from(e: crate::WorkerError) -> Self {
        let api = e.to_api();
        if api.kind == ErrorKind::Internal {
            tracing::error!(target: "pith::worker", "internal error: {e}");
        }
        Self(api)
    }
}

fn bad(kind: ErrorKind, m: impl Into<String>) -> Refusal {
    Refusal(ApiError::new(kind, m))
}

/// The router (no socket: tests call it with `oneshot`).
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route(INFO, get(info))
        .route(HEALTH, get(health))
        .route(INVOKE, post(invoke))
        .route(LOGS, get(logs))
        .fallback(|| async { bad(ErrorKind::NotFound, "no such route") })
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(node)
}

fn parse_program(id: &str) -> Result<ProgramId, Refusal> {
    ProgramId::from_hex(id).map_err(|e| bad(ErrorKind::BadRequest, format!("program id: {e}")))
}

async fn info(State(node): State<Arc<Node>>) -> axum::Json<WorkerInfo> {
    let e = node.evidence();
    axum::Json(WorkerInfo {
        address: node.address(),
        operator: node
            .config()
            .operator
            .as_ref()
            .map(alloy::signers::Signer::address)
            .unwrap_or_default(),
        platform: e.platform.clone(),
        platform_id: e.platform_id,
        measurement_hash: e.measurement_hash,
        tcb_status: e.tcb_status,
        evidence: e.bytes.clone(),
        enc_public_key: node.identity().enc_public_key(),
        url: node.url(),
        registered: node.registration_expiry().is_some(),
        registration_expiry: node.registration_expiry(),
        draining: node.is_draining(),
        programs: node.keys().programs(),
        model_hash: node.model_hash(),
    })
}

async fn health(State(node): State<Arc<Node>>) -> Response {
    let registered = node.registration_expiry().is_some();
    let draining = node.is_draining();
    let h = WorkerHealth {
        ok: registered && !draining,
        registered,
        draining,
        in_flight: node.in_flight(),
    };
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(h)).into_response()
}

async fn invoke(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let program = parse_program(&id)?;
    let chunked = match headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes) {
        None => false,
        Some(ct) if ct == pith_api::media::OHTTP_REQ.as_bytes() => false,
        Some(ct) if ct == pith_api::media::OHTTP_CHUNKED_REQ.as_bytes() => true,
        Some(_) => {
            return Err(bad(
                ErrorKind::BadRequest,
                format!(
                    "content type must be {} or {}",
                    pith_api::media::OHTTP_REQ,
                    pith_api::media::OHTTP_CHUNKED_REQ
                ),
            ));
        }
    };
    if chunked {
        let rx = node.invoke_chunked(program, &body).await?;
        let stream = tokio_stream_from(rx);
        let mut resp = (StatusCode::OK, axum::body::Body::from_stream(stream)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(pith_api::media::OHTTP_CHUNKED_RES),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("{:#x}", node.address())) {
            resp.headers_mut().insert(pith_api::headers::WORKER, v);
        }
        return Ok(resp);
    }
    let inv = node.invoke(program, &body).await?;
    let mut resp = (StatusCode::OK, inv.body.clone()).into_response();
    for (name, value) in node.invocation_headers(&inv) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    Ok(resp)
}

/// The channel of a streamed answer as a body stream.
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<std::io::Result<Bytes>>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[derive(serde::Deserialize)]
struct LogsQuery {
    timestamp: u64,
    signature: String,
}

async fn logs(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<axum::Json<ProgramLogs>, Refusal> {
    let program = parse_program(&id)?;
    if !pith_api::binding::fresh(q.timestamp, crate::node::now_secs()) {
        return Err(bad(
            ErrorKind::Unauthorized,
            "logs query timestamp is not fresh",
        ));
    }
    let sig = hex::decode(q.signature.trim_start_matches("0x"))
        .map_err(|_| bad(ErrorKind::BadRequest, "signature is not hex"))?;
    let digest =
        pith_api::binding::message_digest(pith_api::binding::LOGS_TAG, &[&program.0], q.timestamp);
    let signer = pith_crypto::receipt::recover(&digest, &sig)
        .map_err(|e| bad(ErrorKind::Unauthorized, e.to_string()))?;
    let owner = node.program_owner(program).await?;
    if signer != owner {
        return Err(bad(
            ErrorKind::Unauthorized,
            format!("signed by {signer}; only the owner {owner} may read the logs"),
        ));
    }
    Ok(axum::Json(ProgramLogs {
        program_id: program.0.into(),
        entries: node.logs(&program),
    }))
}
