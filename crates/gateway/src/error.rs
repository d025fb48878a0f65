//! Errors: [`GatewayError`] for starting the gateway, [`Failure`] for HTTP answers (every
//! non-2xx answer is a `pith_api::ErrorBody`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pith_api::{ApiError, ErrorKind};

/// What starting or running the gateway can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The state directory or a file in it.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The embedded database.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The chain (RPC, contract calls, watcher).
    #[error(transparent)]
    Chain(#[from] pith_chain::Error),
    /// An HTTP client could not be built.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    /// The configuration is inconsistent.
    #[error("config: {0}")]
    Config(String),
}

/// An HTTP error answer: a typed [`ApiError`] sent as `{"error": {"kind", "message"}}` with
/// the kind's status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub ApiError);

impl Failure {
    /// A failure of `kind` with `message` (shown to the client: never put secrets in it).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self(ApiError::new(kind, message))
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(target: "pith_gateway", error = %e, "store failure");
        Self::new(ErrorKind::Internal, "the gateway's store failed")
    }
}

impl From<pith_chain::Error> for Failure {
    fn from(e: pith_chain::Error) -> Self {
        tracing::warn!(target: "pith_gateway", error = %e, "chain read failed");
        Self::new(ErrorKind::Unavailable, "the chain RPC is unavailable")
    }
}

impl From<tokio::task::JoinError> for Failure {
    fn from(e: tokio::task::JoinError) -> Self {
        tracing::error!(target: "pith_gateway", error = %e, "blocking task failed");
        Self::new(ErrorKind::Internal, "internal error")
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.0.body())).into_response()
    }
}
