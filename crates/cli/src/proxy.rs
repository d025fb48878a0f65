//! `pith proxy --program ID [--port N]`: a local plain-HTTP endpoint for clients that know
//! nothing of Pith (curl, an SDK, a browser on localhost). Every request it receives is
//! encrypted to the program's certified key (Oblivious HTTP), sent through the gateway, and
//! answered only when the receipt verifies against that exact exchange and the chain (the
//! checks of `pith call`); otherwise the client gets a 502 naming the failed checks. The
//! receipt travels back in the `pith-receipt` header (base64url JSON, as from the worker).
//!
//! It listens on 127.0.0.1 only: the plaintext never leaves the machine.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::B256;
use anyhow::{Context, Result, anyhow};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use clap::Args;
use pith_api::headers;
use pith_crypto::envelope::Request;
use serde_json::json;
use tokio::sync::Mutex;

use crate::call::{self, ProgramKey, REQUEST_TTL_SECS};
use crate::network::{NetOpts, Network, now_secs};
use crate::trust;

/// Largest request body the proxy accepts.
pub const MAX_BODY: usize = 10 * 1024 * 1024;
/// A program key is fetched (and its certificate checked) again after this long.
const KEY_REFRESH: Duration = Duration::from_secs(300);

/// Arguments of `pith proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Program id (decimal or 0x-hex) whose calls this endpoint encrypts.
    #[arg(long)]
    pub program: String,
    /// Port on 127.0.0.1 (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8788)]
    pub port: u16,
    #[command(flatten)]
    pub net: NetOpts,
}

struct Proxy {
    net: Network,
    program: B256,
    key: Mutex<(ProgramKey, Instant)>,
}

impl Proxy {
    /// The program key, fetched again (certificate re-checked) when old.
    async fn key(&self) -> Result<ProgramKey> {
        let mut k = self.key.lock().await;
        if k.1.elapsed() >= KEY_REFRESH {
            *k = (
                call::fetch_program_key(&self.net, self.program).await?,
                Instant::now(),
            );
        }
        Ok(k.0.clone())
    }
}

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1), and `host`.
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

fn refuse(status: StatusCode, error: &str, detail: serde_json::Value) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "detail": detail})),
    )
        .into_response()
}

/// The plaintext request as the program will see it.
fn to_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Request, String> {
    let mut hs = Vec::new();
    for (k, v) in headers {
        let name = k.as_str();
        if hop_by_hop(name) {
            continue;
        }
        if name.starts_with("pith-") {
            return Err(format!("header {name}: pith-* names are reserved"));
        }
        let v = v
            .to_str()
            .map_err(|_| format!("header {name}: not visible ASCII"))?;
        hs.push((name.to_owned(), v.to_owned()));
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let nonce = call::nonce().map_err(|e| e.to_string())?;
    Ok(Request::new(
        method.as_str(),
        path,
        hs,
        body.to_vec(),
        nonce,
        now_secs() + REQUEST_TTL_SECS,
    ))
}

async fn forward(
    State(p): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = match to_request(&method, &uri, &headers, body) {
        Ok(r) => r,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, "bad request", json!(e)),
    };
    let key = match p.key().await {
        Ok(k) => k,
        Err(e) => {
            return refuse(
                StatusCode::BAD_GATEWAY,
                "no certified program key",
                json!(format!("{e:#}")),
            );
        }
    };
    let outcome = match call::invoke(&p.net, p.program, &key, &request).await {
        Ok(o) => o,
        Err(e) => {
            return refuse(
                StatusCode::BAD_GATEWAY,
                "the call failed",
                json!(format!("{e:#}")),
            );
        }
    };
    if !trust::all_ok(&outcome.checks) {
        let failed: Vec<_> = outcome
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| json!({"check": c.name, "detail": c.detail}))
            .collect();
        tracing::warn!(program = %p.program, ?failed, "receipt did not verify; answer withheld");
        return refuse(
            StatusCode::BAD_GATEWAY,
            "the receipt did not verify; the answer is withheld",
            json!(failed),
        );
    }
    let status = StatusCode::from_u16(outcome.response.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = Response::builder().status(status);
    for (k, v) in &outcome.response.headers {
        if hop_by_hop(k) {
            continue;
        }
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            out = out.header(k, v);
        }
    }
    let receipt = serde_json::to_vec(&outcome.receipt).unwrap_or_default();
    out = out
        .header(headers::RECEIPT, pith_api::b64url(&receipt))
        .header(headers::WORKER, format!("{:#x}", outcome.receipt.worker));
    out.body(axum::body::Body::from(outcome.response.body))
        .unwrap_or_else(|e| {
            refuse(
                StatusCode::BAD_GATEWAY,
                "bad response from the program",
                json!(e.to_string()),
            )
        })
}

async fn serve(args: ProxyArgs) -> Result<()> {
    let net = args.net.resolve(false).await?;
    let program = call::parse_program_id(&args.program)?;
    let key = call::fetch_program_key(&net, program).await?;
    let proxy = Arc::new(Proxy {
        net,
        program,
        key: Mutex::new((key, Instant::now())),
    });
    let app = axum::Router::new()
        .fallback(forward)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(proxy);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port)))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", args.port))?;
    let addr = listener.local_addr()?;
    println!(
        "proxy for program {} listening on http://{addr}",
        call::id_hex(program)
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| anyhow!("serving: {e}"))
}

/// Run `pith proxy` until interrupted.
pub fn run(args: ProxyArgs) -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
