//! The worker's inference service: an OpenAI-compatible API (`POST /v1/chat/completions`,
//! streamed as server-sent events when asked, `GET /v1/models`) for inference programs
//! (`pith_api::inference`), answered by the worker's own model inside the TEE. Requests and
//! answers travel encrypted like every invocation; a streamed answer goes out one event per
//! chunk of a chunked OHTTP response (`pith_crypto::chunked`), its receipt last.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pith_api::inference::Manifest;
use pith_crypto::chunked::FrameWriter;
use pith_crypto::envelope::Request as SealedRequest;
use pith_infer::{ChatRequest, Control, Engine, FinishReason, InferError};
use serde_json::{Value, json};

/// What an inference request asks for, once parsed.
#[derive(Debug)]
pub(crate) enum Plan {
    /// An answer known without the model (the model list, a refused request).
    Reply {
        /// HTTP status.
        status: u16,
        /// JSON body.
        body: Value,
    },
    /// A chat for the model.
    Chat(ChatPlan),
}

/// A chat to run.
#[derive(Debug)]
pub(crate) struct ChatPlan {
    req: ChatRequest,
    stream: bool,
    include_usage: bool,
    id: String,
    created: u64,
    model: String,
}

/// Tokens and time a chat used (what the receipt and the usage batch count).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ChatUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub wall: Duration,
}

/// An OpenAI-style error body.
fn error(status: u16, kind: &str, code: &str, message: impl Into<String>) -> Plan {
    Plan::Reply {
        status,
        body: json!({"error": {"message": message.into(), "type": kind, "param": null, "code": code}}),
    }
}

fn strip_v1(path: &str) -> &str {
    let path = path.split('?').next().unwrap_or(path);
    path.strip_prefix("/v1").unwrap_or(path)
}

/// Parse the request. `request_hash` names the completion (`chatcmpl-…`); `max_tokens` is the
/// program's token limit (`Limits::ai_tokens`), the most a chat may generate.
pub(crate) fn plan(
    manifest: &Manifest,
    engine: &Engine,
    req: &SealedRequest,
    request_hash: [u8; 32],
    max_tokens: u32,
    now: u64,
) -> Plan {
    let name = manifest.model.name.as_str();
    let path = strip_v1(req.path());
    let models = json!({"object": "list", "data": [model_object(name)]});
    match (req.method(), path) {
        ("GET", "/models") => Plan::Reply {
            status: 200,
            body: models,
        },
        ("GET", p) if p.strip_prefix("/models/") == Some(name) => Plan::Reply {
            status: 200,
            body: model_object(name),
        },
        ("GET", p) if p.starts_with("/models/") => error(
            404,
            "invalid_request_error",
            "model_not_found",
            format!("this service serves `{name}` only"),
        ),
        ("POST", "/chat/completions") => {
            chat_plan(name, engine, req, request_hash, max_tokens, now)
        }
        (_, "/models" | "/chat/completions") => error(
            405,
            "invalid_request_error",
            "method_not_allowed",
            format!("{} is not allowed on {}", req.method(), req.path()),
        ),
        _ => error(
            404,
            "invalid_request_error",
            "unknown_url",
            format!(
                "unknown route {} {}: this service answers POST /v1/chat/completions and GET /v1/models",
                req.method(),
                req.path()
            ),
        ),
    }
}

fn model_object(name: &str) -> Value {
    json!({"id": name, "object": "model", "created": 0, "owned_by": "pith"})
}

fn chat_plan(
    name: &str,
    engine: &Engine,
    req: &SealedRequest,
    request_hash: [u8; 32],
    max_tokens: u32,
    now: u64,
) -> Plan {
    let body: Value = match serde_json::from_slice(req.body()) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return error(
                400,
                "invalid_request_error",
                "invalid_body",
                "the body must be a JSON object",
            );
        }
        Err(e) => {
            return error(
                400,
                "invalid_request_error",
                "invalid_json",
                format!("body is not JSON: {e}"),
            );
        }
    };
    let mut chat: ChatRequest = match serde_json::from_value(body.clone()) {
        Ok(c) => c,
        Err(e) => {
            return error(
                400,
                "invalid_request_error",
                "invalid_request",
                e.to_string(),
            );
        }
    };
    if let Some(m) = chat.model.as_deref()
        && m != name
        && m != engine.model_id()
    {
        return error(
            404,
            "invalid_request_error",
            "model_not_found",
            format!("the model `{m}` does not exist here; this service serves `{name}`"),
        );
    }
    if body
        .get("n")
        .and_then(Value::as_u64)
        .is_some_and(|n| n != 1)
    {
        return error(
            400,
            "invalid_request_error",
            "unsupported",
            "only n = 1 is supported",
        );
    }
    if body.get("tools").is_some_and(|t| !t.is_null()) {
        return error(
            400,
            "invalid_request_error",
            "unsupported",
            "tools are not supported by this model",
        );
    }
    chat.max_tokens = Some(chat.max_tokens.map_or(max_tokens, |m| m.min(max_tokens)));
    if let Err(e) = chat.validate() {
        return error(
            400,
            "invalid_request_error",
            "invalid_request",
            e.to_string(),
        );
    }
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Plan::Chat(ChatPlan {
        req: chat,
        stream,
        include_usage,
        id: format!(
            "chatcmpl-{}",
            hex::encode(request_hash.get(..12).unwrap_or_default())
        ),
        created: now,
        model: name.to_owned(),
    })
}

/// Where the answer goes: collected into one response, or streamed frame by frame.
pub(crate) enum Sink<'a> {
    /// Collected (a plain OHTTP exchange).
    Collect {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Streamed (a chunked exchange); `broken` once the client went away.
    Stream {
        writer: &'a mut FrameWriter,
        broken: bool,
    },
}

impl Sink<'_> {
    /// An empty collecting sink.
    pub(crate) fn collect() -> Sink<'static> {
        Sink::Collect {
            status: 500,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    async fn head(&mut self, status: u16, content_type: &str) {
        let hs = vec![
            ("content-type".to_owned(), content_type.to_owned()),
            ("cache-control".to_owned(), "no-store".to_owned()),
        ];
        match self {
            Sink::Collect {
                status: s, headers, ..
            } => {
                *s = status;
                *headers = hs;
            }
            Sink::Stream { writer, broken } => {
                if !*broken && writer.head(status, hs).await.is_err() {
                    *broken = true;
                }
            }
        }
    }

    async fn data(&mut self, bytes: &[u8]) {
        match self {
            Sink::Collect { body, .. } => body.extend_from_slice(bytes),
            Sink::Stream { writer, broken } => {
                if !*broken && writer.data(bytes).await.is_err() {
                    *broken = true;
                }
            }
        }
    }

    fn broken(&self) -> bool {
        matches!(self, Sink::Stream { broken: true, .. })
    }

    /// Write a whole JSON reply.
    pub(crate) async fn reply(&mut self, status: u16, body: &Value) {
        self.head(status, "application/json").await;
        self.data(&serde_json::to_vec(body).unwrap_or_default())
            .await;
    }
}

fn sse(v: &Value) -> Vec<u8> {
    let mut out = b"data: ".to_vec();
    out.extend_from_slice(&serde_json::to_vec(v).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
    out
}

fn usage_json(u: &ChatUsage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens.saturating_add(u.completion_tokens),
    })
}

fn infer_error(e: &InferError) -> (u16, &'static str, &'static str) {
    match e {
        InferError::InvalidRequest(_) => (400, "invalid_request_error", "invalid_request"),
        InferError::PromptTooLong { .. } => {
            (400, "invalid_request_error", "context_length_exceeded")
        }
        InferError::DeadlineExceeded { .. } => (504, "server_error", "timeout"),
        InferError::Cancelled { .. } => (499, "server_error", "cancelled"),
        _ => (500, "server_error", "inference_failed"),
    }
}

/// Run a chat into `sink` under `deadline`. Returns the tokens and time used.
pub(crate) async fn run_chat(
    engine: &Engine,
    plan: ChatPlan,
    deadline: Instant,
    sink: &mut Sink<'_>,
) -> ChatUsage {
    let start = Instant::now();
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": plan.id, "object": "chat.completion.chunk", "created": plan.created,
            "model": plan.model, "system_fingerprint": fingerprint(engine),
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
    };
    if plan.stream {
        sink.head(200, "text/event-stream").await;
        sink.data(&sse(&chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )))
        .await;
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let cancel = Arc::new(AtomicBool::new(false));
    let control = Control::new()
        .with_deadline(deadline)
        .with_cancel(cancel.clone());
    let e = engine.clone();
    let req = plan.req.clone();
    let task = tokio::task::spawn_blocking(move || {
        e.chat(&req, &control, |delta| {
            if tx.send(delta.to_owned()).is_err() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
    });
    while let Some(delta) = rx.recv().await {
        if plan.stream {
            sink.data(&sse(&chunk(json!({"content": delta}), Value::Null)))
                .await;
            if sink.broken() {
                // The client went away: stop generating.
                cancel.store(true, Ordering::Relaxed);
            }
        }
    }
    let result = match task.await {
        Ok(r) => r,
        Err(e) => Err(InferError::Engine(format!("inference task: {e}"))),
    };
    let mut usage = ChatUsage {
        wall: start.elapsed(),
        ..ChatUsage::default()
    };
    match result {
        Ok(done) => {
            usage.prompt_tokens = u64::from(done.usage.prompt_tokens);
            usage.completion_tokens = u64::from(done.usage.completion_tokens);
            let finish = match done.finish_reason {
                FinishReason::Stop => "stop",
                FinishReason::Length => "length",
            };
            if plan.stream {
                sink.data(&sse(&chunk(json!({}), json!(finish)))).await;
                if plan.include_usage {
                    let mut u = chunk(json!({}), Value::Null);
                    u["choices"] = json!([]);
                    u["usage"] = usage_json(&usage);
                    sink.data(&sse(&u)).await;
                }
                sink.data(b"data: [DONE]\n\n").await;
            } else {
                let body = json!({
                    "id": plan.id, "object": "chat.completion", "created": plan.created,
                    "model": plan.model, "system_fingerprint": fingerprint(engine),
                    "choices": [{
                        "index": 0,
                        "message": {"role": "assistant", "content": done.text, "refusal": null},
                        "logprobs": null,
                        "finish_reason": finish,
                    }],
                    "usage": usage_json(&usage),
                });
                sink.reply(200, &body).await;
            }
        }
        Err(e) => {
            if let Some(u) = e.usage() {
                usage.prompt_tokens = u64::from(u.prompt_tokens);
                usage.completion_tokens = u64::from(u.completion_tokens);
            }
            let (status, kind, code) = infer_error(&e);
            let body = json!({"error": {"message": e.to_string(), "type": kind, "param": null, "code": code}});
            if plan.stream {
                // The head went out already: the error is the stream's last event.
                sink.data(&sse(&body)).await;
            } else {
                sink.reply(status, &body).await;
            }
        }
    }
    usage
}

/// `system_fingerprint`: the model file's hash (what the receipt names), shortened.
fn fingerprint(engine: &Engine) -> String {
    format!(
        "pith-{}",
        hex::encode(engine.model_hash().get(..8).unwrap_or_default())
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_and_without_the_version_prefix() {
        assert_eq!(strip_v1("/v1/chat/completions"), "/chat/completions");
        assert_eq!(strip_v1("/chat/completions?x=1"), "/chat/completions");
        assert_eq!(strip_v1("/v1/models"), "/models");
    }

    #[test]
    fn sse_events_are_data_lines() {
        assert_eq!(sse(&json!({"a": 1})), b"data: {\"a\":1}\n\n");
    }
}
