//! The KMS HTTP API (`pith_api::kms`): info, health, register worker, key release, program
//! key, replicate. Errors as `pith_api::ErrorBody` with the kind's HTTP status.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pith_api::kms::{HEALTH, INFO, KEY_RELEASE, PROGRAM_KEY, REGISTER_WORKER, REPLICATE};
use pith_api::{ApiError, ErrorKind};
use pith_crypto::keytree::ProgramId;
use serde::de::DeserializeOwned;

use crate::error::KmsError;
use crate::node::Kms;

/// Largest accepted request body (evidence with its certificate chain fits easily).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A typed JSON error response.
pub struct Refusal(pub ApiError);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.0.body())).into_response()
    }
}

impl From<KmsError> for Refusal {
    fn from(e: KmsError) -> Self {
        let api = e.to_api();
        match api.kind {
            ErrorKind::Internal => tracing::error!(target: "pith::kms", "internal error: {e}"),
            _ => tracing::info!(target: "pith::kms", "refused: {e}"),
        }
        Self(api)
    }
}

fn bad(kind: ErrorKind, m: impl Into<String>) -> Refusal {
    Refusal(ApiError::new(kind, m))
}

fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body)
        .map_err(|e| bad(ErrorKind::BadRequest, format!("request body: {e}")))
}

/// The router (no socket: tests may call it with `oneshot`).
pub fn router(kms: Arc<Kms>) -> Router {
    Router::new()
        .route(INFO, get(info))
        .route(HEALTH, get(health))
        .route(REGISTER_WORKER, post(register))
        .route(KEY_RELEASE, post(release))
        .route(PROGRAM_KEY, get(program_key))
        .route(REPLICATE, post(replicate))
        .fallback(|| async { bad(ErrorKind::NotFound, "no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(kms)
}

async fn info(State(kms): State<Arc<Kms>>) -> axum::Json<pith_api::kms::KmsInfo> {
    axum::Json(kms.info())
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "ok": true }))
}

async fn register(State(kms): State<Arc<Kms>>, body: Bytes) -> Result<Response, Refusal> {
    let req = json(&body)?;
    Ok(axum::Json(kms.register_worker(&req).await?).into_response())
}

async fn release(State(kms): State<Arc<Kms>>, body: Bytes) -> Result<Response, Refusal> {
    let req = json(&body)?;
    Ok(axum::Json(kms.release(&req).await?).into_response())
}

async fn program_key(
    State(kms): State<Arc<Kms>>,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let id = ProgramId::from_hex(&id)
        .map_err(|e| bad(ErrorKind::BadRequest, format!("program id: {e}")))?;
    Ok(axum::Json(kms.program_key(pith_crypto::B256::from(id.0)).await?).into_response())
}

async fn replicate(State(kms): State<Arc<Kms>>, body: Bytes) -> Result<Response, Refusal> {
    let req = json(&body)?;
    Ok(axum::Json(kms.replicate(&req).await?).into_response())
}
