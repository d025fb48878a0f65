//! The component's stdout/stderr (the log), its wall clock, and its outgoing HTTP.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::Shared;
use crate::engine::LogLine;
use crate::host::{Clock, Egress, EgressBudget, EgressError, EgressPolicy, HttpRequest};
use crate::limits::ErrorKind;

// ------------------------------------------------------------------------- log

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogLevel {
    /// stdout.
    Log,
    /// stderr.
    Error,
}

impl LogLevel {
    fn index(self) -> usize {
        match self {
            Self::Log => 0,
            Self::Error => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Error => "error",
        }
    }
}

/// Log bytes accepted so far, complete lines and the unterminated tail of each stream.
pub(crate) struct LogBuf {
    limit: u64,
    used: u64,
    lines: Vec<LogLine>,
    partial: [Vec<u8>; 2],
}

impl LogBuf {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            used: 0,
            lines: Vec::new(),
            partial: [Vec::new(), Vec::new()],
        }
    }

    /// Accept `data` or refuse it whole when it would pass the limit.
    pub(crate) fn write(&mut self, level: LogLevel, data: &[u8]) -> bool {
        if self.used.saturating_add(data.len() as u64) > self.limit {
            return false;
        }
        self.used += data.len() as u64;
        let buf = &mut self.partial[level.index()];
        buf.extend_from_slice(data);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            let text = text.strip_suffix('\r').unwrap_or(&text).to_owned();
            self.lines.push(LogLine {
                level: level.name().into(),
                message: text,
            });
        }
        true
    }

    /// The lines (unterminated tails last) and the bytes accepted.
    pub(crate) fn finish(&mut self) -> (Vec<LogLine>, u64) {
        for level in [LogLevel::Log, LogLevel::Error] {
            let tail = std::mem::take(&mut self.partial[level.index()]);
            if !tail.is_empty() {
                self.lines.push(LogLine {
                    level: level.name().into(),
                    message: String::from_utf8_lossy(&tail).into_owned(),
                });
            }
        }
        (std::mem::take(&mut self.lines), self.used)
    }
}

/// stdout or stderr of the component.
#[derive(Clone)]
pub(crate) struct LogStream {
    shared: Arc<Shared>,
    level: LogLevel,
}

impl LogStream {
    pub(crate) fn new(shared: Arc<Shared>, level: LogLevel) -> Self {
        Self { shared, level }
    }

    fn accept(&self, data: &[u8]) -> bool {
        let ok = self
            .shared
            .logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .write(self.level, data);
        if !ok {
            let limit = self.shared.limits().log_bytes;
            self.shared.kill(
                ErrorKind::LogLimit,
                format!("log output exceeds the limit of {limit} bytes"),
            );
        }
        ok
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if self.accept(&bytes) {
            Ok(())
        } else {
            Err(StreamError::trap("log limit exceeded"))
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.accept(buf) {
            Poll::Ready(Ok(buf.len()))
        } else {
            Poll::Ready(Err(std::io::Error::other("log limit exceeded")))
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

// ------------------------------------------------------------------------- clock

/// `wasi:clocks/wall-clock` from the host's [`Clock`] (as `Date.now()` in JavaScript).
pub(crate) struct HostClock(pub(crate) Arc<dyn Clock>);

impl wasmtime_wasi::HostWallClock for HostClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_secs_f64((self.0.now_ms() / 1000.0).max(0.0))
    }
}

// ------------------------------------------------------------------------- egress

/// Outgoing `wasi:http` requests through the host's egress (same policy, same budget
/// accounting as JavaScript `fetch`). Redirects are returned to the guest, as
/// `wasi:http` specifies, each request counting once.
pub(crate) struct EgressHooks {
    egress: Arc<dyn Egress>,
    policy: Arc<EgressPolicy>,
    shared: Arc<Shared>,
}

impl EgressHooks {
    pub(crate) fn new(egress: Arc<dyn Egress>, policy: EgressPolicy, shared: Arc<Shared>) -> Self {
        Self {
            egress,
            policy: Arc::new(policy),
            shared,
        }
    }
}

type SendFuture = Box<
    dyn std::future::Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let egress = self.egress.clone();
        let policy = self.policy.clone();
        let shared = self.shared.clone();
        Box::new(async move {
            let limits = shared.limits();
            let used_requests = shared.egress_requests.load(Ordering::Relaxed);
            let used_bytes = shared.egress_bytes.load(Ordering::Relaxed);
            let budget = EgressBudget {
                requests: limits.egress_requests.saturating_sub(used_requests),
                bytes: limits.egress_bytes.saturating_sub(used_bytes),
            };
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            let headers = parts
                .headers
                .iter()
                .filter(|(k, _)| k.as_str() != "host")
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let req = HttpRequest {
                method: parts.method.as_str().to_owned(),
                url: parts.uri.to_string(),
                headers,
                body: body.to_vec(),
                follow_redirects: false,
            };
            match egress.fetch(&policy, req, budget).await {
                Ok(r) => {
                    shared
                        .egress_requests
                        .fetch_add(r.requests, Ordering::Relaxed);
                    shared.egress_bytes.fetch_add(r.bytes, Ordering::Relaxed);
                    let mut b = http::Response::builder().status(r.status);
                    for (k, v) in &r.headers {
                        b = b.header(k.as_str(), v.as_str());
                    }
                    let body = http_body_util::Full::new(Bytes::from(r.body))
                        .map_err(|never: std::convert::Infallible| -> HttpError { match never {} })
                        .boxed_unsync();
                    let resp = b
                        .body(body)
                        .map_err(|e| HttpError::InternalError(Some(e.to_string())))?;
                    let io: Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send> =
                        Box::new(async { Ok(()) });
                    Ok((resp, io))
                }
                Err(EgressError::Denied {
                    message,
                    requests,
                    bytes,
                }) => {
                    shared
                        .egress_requests
                        .fetch_add(requests, Ordering::Relaxed);
                    shared.egress_bytes.fetch_add(bytes, Ordering::Relaxed);
                    shared.egress_denied.store(true, Ordering::Relaxed);
                    tracing::debug!(target: "pith::sandbox", "wasm egress denied: {message}");
                    Err(HttpError::HttpRequestDenied)
                }
                Err(EgressError::Limit(m)) => {
                    shared.kill(ErrorKind::EgressLimit, m);
                    Err(HttpError::HttpRequestDenied)
                }
                Err(EgressError::Failed(m)) => {
                    shared.egress_requests.fetch_add(1, Ordering::Relaxed);
                    Err(HttpError::InternalError(Some(m)))
                }
            }
        })
    }
}
