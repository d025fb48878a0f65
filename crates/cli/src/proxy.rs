//! `pith proxy [--program ID | --inference] [--port N]`: a local plain-HTTP endpoint for
//! clients that know nothing of Pith (curl, an SDK, the OpenAI client, a browser on localhost).
//! Every request it receives is encrypted to the program's certified key (Oblivious HTTP),
//! sent through the gateway, and answered only when the receipt verifies against that exact
//! exchange and the chain (the checks of `pith call`); otherwise the client gets a 502 naming
//! the failed checks. The receipt travels back in the `pith-receipt` header (base64url JSON,
//! as from the worker).
//!
//! `--inference` serves the network's inference program (`pith_api::inference`: the newest
//! program whose code, checked against its hash on chain, is an inference manifest) as an
//! OpenAI-compatible endpoint, over chunked exchanges so that streamed completions arrive
//! token by token. A streamed answer's receipt comes last, so the proxy holds back the
//! stream's last piece (`data: [DONE]`) until the receipt verified — also that it names the
//! manifest's model — and breaks the connection instead when it does not: a client never
//! sees a clean end of an unverified stream. An answer of one piece (a plain completion, an
//! error) is withheld whole until verified, with a 502 on failure, as for `--program`.
//!
//! It listens on 127.0.0.1 only: the plaintext never leaves the machine.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::B256;
use anyhow::{Context, Result, anyhow, bail};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use clap::Args;
use pith_api::headers;
use pith_crypto::chunked::{ChunkedClient, Frame};
use pith_crypto::envelope::Request;
use pith_crypto::receipt::SignedReceipt;
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
    #[arg(
        long,
        required_unless_present = "inference",
        conflicts_with = "inference"
    )]
    pub program: Option<String>,
    /// Serve the network's inference program as an OpenAI-compatible API (`/v1/chat/completions`,
    /// `/v1/models`), streamed when the client asks.
    #[arg(long)]
    pub inference: bool,
    /// Also write every verified receipt to DIR/<request hash>.json (for `pith verify`;
    /// the only way to keep the receipt of a streamed answer, which travels inside the stream).
    #[arg(long, value_name = "DIR")]
    pub receipts: Option<std::path::PathBuf>,
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
    /// The model an inference program serves (its file hash): requests go chunked and
    /// receipts must name it.
    model: Option<B256>,
    /// A client without an overall timeout (a stream lasts as long as its generation).
    stream_http: reqwest::Client,
    /// Where verified receipts are kept (`--receipts`).
    receipts: Option<std::path::PathBuf>,
}

impl Proxy {
    /// Keep a verified receipt when `--receipts` asks for it (a write failure is logged: the
    /// answer was verified and goes out regardless).
    fn keep(&self, r: &SignedReceipt) {
        let Some(dir) = &self.receipts else { return };
        let path = dir.join(format!("{:x}.json", r.request_hash));
        let written = serde_json::to_vec_pretty(r)
            .map_err(std::io::Error::other)
            .and_then(|b| std::fs::write(&path, b));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), "keeping the receipt: {e}");
        }
    }
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
    if let Some(model) = p.model {
        return forward_chunked(p, key, request, model).await;
    }
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
        let failed = failed(&outcome.checks);
        tracing::warn!(program = %p.program, ?failed, "receipt did not verify; answer withheld");
        return refuse(
            StatusCode::BAD_GATEWAY,
            "the receipt did not verify; the answer is withheld",
            failed,
        );
    }
    p.keep(&outcome.receipt);
    verified(
        outcome.response.status,
        &outcome.response.headers,
        &outcome.receipt,
        outcome.response.body,
    )
}

/// The failed checks as the 502 body names them.
fn failed(checks: &[trust::Check]) -> serde_json::Value {
    checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| json!({"check": c.name, "detail": c.detail}))
        .collect()
}

/// What a streamed answer's receipt is checked against.
struct StreamCheck {
    request_hash: B256,
    worker_header: Option<alloy::primitives::Address>,
    model: B256,
    /// A chat completion answered 200: the receipt must name the model.
    used_model: bool,
}

impl StreamCheck {
    /// Check the receipt of an END frame: the exchange, the chain, and the model. On failure
    /// (logged) the detail a 502 names.
    async fn verify(
        &self,
        p: &Proxy,
        receipt: &[u8],
        response_hash: [u8; 32],
    ) -> Result<SignedReceipt, serde_json::Value> {
        let checked = self.checks(p, receipt, B256::from(response_hash)).await;
        let detail = match checked {
            Ok((r, checks)) if trust::all_ok(&checks) => return Ok(r),
            Ok((_, checks)) => failed(&checks),
            Err(e) => json!(e),
        };
        tracing::warn!(program = %p.program, failed = ?detail, "streamed receipt did not verify; the answer is withheld or broken off");
        Err(detail)
    }

    async fn checks(
        &self,
        p: &Proxy,
        receipt: &[u8],
        response_hash: B256,
    ) -> Result<(SignedReceipt, Vec<trust::Check>), String> {
        let r: SignedReceipt =
            serde_json::from_slice(receipt).map_err(|e| format!("malformed receipt: {e}"))?;
        let x = trust::Exchange {
            program_id: p.program,
            chain_id: p.net.chain_id(),
            registry: p.net.deployment.contracts.registry,
            request_hash: self.request_hash,
            response_hash,
            worker_header: self.worker_header,
        };
        let mut checks = trust::check_receipt_exchange(&r, &x);
        checks.extend(
            call::chain_checks(&p.net, &r)
                .await
                .map_err(|e| format!("{e:#}"))?,
        );
        let model = self.model;
        let ok = r.model_hash == model || (!self.used_model && r.model_hash == B256::ZERO);
        checks.push(trust::Check {
            name: "model".into(),
            ok,
            detail: format!(
                "receipt model {} / inference program's model {model}",
                r.model_hash
            ),
        });
        Ok((r, checks))
    }
}

/// One request over a chunked exchange (see the module docs for what is held back).
async fn forward_chunked(
    p: Arc<Proxy>,
    key: ProgramKey,
    request: Request,
    model: B256,
) -> Response {
    let bad_gateway = |what: &str, e: String| refuse(StatusCode::BAD_GATEWAY, what, json!(e));
    let chat = request
        .path()
        .split('?')
        .next()
        .is_some_and(|path| path.trim_start_matches("/v1") == "/chat/completions");
    let (wire, client) = match ChunkedClient::encapsulate(&key.ohttp_keys, &request) {
        Ok(x) => x,
        Err(e) => return bad_gateway("encrypting the request", e.to_string()),
    };
    let request_hash = B256::from(client.request_hash());
    let url = p.net.url(&crate::network::route(
        pith_api::gateway::PROGRAM_INVOKE,
        "id",
        &call::id_hex(p.program),
    ));
    let resp = match p
        .stream_http
        .post(&url)
        .header(
            axum::http::header::CONTENT_TYPE,
            pith_api::media::OHTTP_CHUNKED_REQ,
        )
        .body(wire)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return bad_gateway("the call failed", format!("{url}: {e}")),
    };
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&body).unwrap_or(json!(body));
        return refuse(
            StatusCode::BAD_GATEWAY,
            "the call failed",
            json!({"status": status.as_u16(), "answer": detail}),
        );
    }
    let worker_header = resp
        .headers()
        .get(headers::WORKER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let src = futures::TryStreamExt::into_async_read(futures::TryStreamExt::map_err(
        resp.bytes_stream(),
        std::io::Error::other,
    ));
    let mut reader = match client.response(Box::pin(src)) {
        Ok(r) => r,
        Err(e) => return bad_gateway("opening the answer", e.to_string()),
    };
    let head = match reader.next().await {
        Ok(Some(Frame::Head(h))) => h,
        Ok(_) => return bad_gateway("opening the answer", "no head".into()),
        Err(e) => return bad_gateway("opening the answer", e.to_string()),
    };
    let check = StreamCheck {
        request_hash,
        worker_header,
        model,
        used_model: chat && head.status == 200,
    };
    // Hold back up to two pieces: an answer that ends within them is withheld whole.
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        match reader.next().await {
            Ok(Some(Frame::Data(d))) => {
                held.push(d);
                if held.len() == 2 {
                    break;
                }
            }
            Ok(Some(Frame::End {
                receipt,
                response_hash,
            })) => {
                return match check.verify(&p, &receipt, response_hash).await {
                    Ok(r) => {
                        p.keep(&r);
                        verified(head.status, &head.headers, &r, held.concat())
                    }
                    Err(detail) => refuse(
                        StatusCode::BAD_GATEWAY,
                        "the receipt did not verify; the answer is withheld",
                        detail,
                    ),
                };
            }
            Ok(Some(Frame::Head(_)) | None) => {
                return bad_gateway("opening the answer", "frames out of order".into());
            }
            Err(e) => return bad_gateway("opening the answer", e.to_string()),
        }
    }
    // A stream: pass pieces on as they come, one behind, the last after the receipt.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(64);
    let first = held.remove(0);
    let mut pending = held.pop().unwrap_or_default();
    let task_proxy = p.clone();
    tokio::spawn(async move {
        let p = task_proxy;
        if tx.send(Ok(Bytes::from(first))).await.is_err() {
            return;
        }
        loop {
            match reader.next().await {
                Ok(Some(Frame::Data(d))) => {
                    let out = std::mem::replace(&mut pending, d);
                    if tx.send(Ok(Bytes::from(out))).await.is_err() {
                        return; // the client went away; dropping the reader ends the stream
                    }
                }
                Ok(Some(Frame::End {
                    receipt,
                    response_hash,
                })) => {
                    match check.verify(&p, &receipt, response_hash).await {
                        Ok(r) => {
                            p.keep(&r);
                            let _ = tx.send(Ok(Bytes::from(std::mem::take(&mut pending)))).await;
                        }
                        Err(_) => {
                            let _ = tx
                                .send(Err(std::io::Error::other("receipt did not verify")))
                                .await;
                        }
                    }
                    return;
                }
                Ok(_) => {
                    let _ = tx
                        .send(Err(std::io::Error::other("frames out of order")))
                        .await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(program = %p.program, "stream: {e}; broken off");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            }
        }
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let out = answer_head(head.status, &head.headers);
    out.body(axum::body::Body::from_stream(stream))
        .unwrap_or_else(|e| bad_gateway("bad response from the program", e.to_string()))
}

/// A response builder with the program's status and its end-to-end headers.
fn answer_head(status: u16, headers: &[(String, String)]) -> axum::http::response::Builder {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = Response::builder().status(status);
    for (k, v) in headers {
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
    out
}

/// A verified answer: the program's status, headers and body, with the receipt headers.
fn verified(
    status: u16,
    fields: &[(String, String)],
    r: &SignedReceipt,
    body: Vec<u8>,
) -> Response {
    let receipt = serde_json::to_vec(r).unwrap_or_default();
    answer_head(status, fields)
        .header(headers::RECEIPT, pith_api::b64url(&receipt))
        .header(headers::WORKER, format!("{:#x}", r.worker))
        .body(axum::body::Body::from(body))
        .unwrap_or_else(|e| {
            refuse(
                StatusCode::BAD_GATEWAY,
                "bad response from the program",
                json!(e.to_string()),
            )
        })
}

/// The network's inference program: the newest program whose code — checked against its
/// hash on chain — is an inference manifest. Returns its id and the model's file hash.
async fn find_inference(net: &Network) -> Result<(B256, B256, String)> {
    let gw = pith_api::gateway::Client::new(&net.gateway).map_err(|e| anyhow!("{e}"))?;
    let mut programs = gw
        .programs()
        .await
        .map_err(|e| anyhow!("listing programs: {e}"))?;
    programs.sort_by_key(|e| std::cmp::Reverse(e.program_id));
    for e in programs {
        let on_chain = call::code_hash_of(net, e.program_id).await?;
        let Ok(code) = gw.code(on_chain).await else {
            continue;
        };
        if let Some(Ok(m)) = pith_api::inference::Manifest::parse(&code) {
            let hash = m.model_hash().map_err(|e| anyhow!(e))?;
            return Ok((e.program_id, B256::from(hash), m.model.name));
        }
    }
    bail!("no inference program on this network; deploy one first: pith deploy examples/inference")
}

async fn serve(args: ProxyArgs) -> Result<()> {
    let net = args.net.resolve(false).await?;
    let (program, model) = match (&args.program, args.inference) {
        (Some(id), false) => (call::parse_program_id(id)?, None),
        (None, true) => {
            let (id, model, name) = find_inference(&net).await?;
            println!(
                "inference program {} serves {name} (model sha256 {model:x})",
                call::id_hex(id)
            );
            (id, Some(model))
        }
        _ => bail!("give --program ID or --inference"),
    };
    let key = call::fetch_program_key(&net, program).await?;
    let stream_http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .context("building the HTTP client")?;
    if let Some(dir) = &args.receipts {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let proxy = Arc::new(Proxy {
        net,
        program,
        key: Mutex::new((key, Instant::now())),
        model,
        stream_http,
        receipts: args.receipts.clone(),
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
