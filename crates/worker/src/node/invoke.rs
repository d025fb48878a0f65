//! The invocation pipeline: the checks every encrypted request passes (draining, keys,
//! decryption, freshness, replay), sandbox runs and inference answers, plain and streamed
//! (chunked) responses, receipts.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pith_api::{ErrorKind, headers};
use pith_crypto::B256;
use pith_crypto::envelope::{Request as SealedRequest, Response as SealedResponse};
use pith_crypto::keytree::ProgramId;
use pith_crypto::receipt::{ReceiptFields, SignedReceipt};
use pith_sandbox::{Limits, Program, Request};

use super::{Invocation, Node, now_secs};
use crate::error::{WorkerError, refuse};
use crate::replay::Seen;

impl Node {
    /// Checks shared by both exchanges, in order: not draining, the program's keys (asked
    /// again when the request names a newer epoch), decryption, freshness, replay.
    async fn open<T>(
        &self,
        program: ProgramId,
        wire: &[u8],
        decapsulate: impl FnOnce(
            &pith_crypto::envelope::ProgramServer,
            &[u8],
        ) -> pith_crypto::Result<(SealedRequest, T)>,
    ) -> Result<(SealedRequest, T, Arc<crate::keys::ProgramKeySet>), WorkerError> {
        if self.is_draining() {
            return Err(refuse(
                ErrorKind::Draining,
                "worker is draining; retry on another worker",
            ));
        }
        let mut keys = self.program_keys(program).await?;
        // A request to a key epoch this worker does not hold (the KMS rotated since the keys
        // were released): ask the KMS again, at most once per KEY_REFRESH_INTERVAL.
        if let Some(&key_id) = wire.first()
            && !keys.holds_key_id(key_id)
        {
            keys = self.refresh_program_keys(program, keys).await;
        }
        let (request, reply) = decapsulate(keys.server(), wire)
            .map_err(|e| refuse(ErrorKind::DecryptFailed, e.to_string()))?;
        let now = now_secs();
        request
            .check_fresh(now)
            .map_err(|e| refuse(ErrorKind::Expired, e.to_string()))?;
        match self
            .replay
            .check_and_insert(program.0, request.nonce(), request.expiry(), now)
        {
            Seen::New => {}
            Seen::Replay => {
                return Err(refuse(
                    ErrorKind::Replay,
                    "request nonce already seen within its expiry",
                ));
            }
            Seen::Full => return Err(refuse(ErrorKind::Unavailable, "replay cache full")),
        }
        Ok((request, reply, keys))
    }

    /// The model of an inference program, when `loaded` is one this worker serves: `None` for
    /// an ordinary program, `model_unavailable` when this worker's model is another (or none).
    fn inference_model(
        &self,
        loaded: &Program,
    ) -> Result<Option<(pith_api::inference::Manifest, pith_infer::Engine)>, WorkerError> {
        let Some(parsed) = pith_api::inference::Manifest::parse(loaded.source.as_bytes()) else {
            return Ok(None);
        };
        let manifest = parsed.map_err(|e| refuse(ErrorKind::UnknownProgram, e))?;
        let want = manifest
            .model_hash()
            .map_err(|e| refuse(ErrorKind::UnknownProgram, e))?;
        match &self.config.model {
            Some(m) if m.model_hash() == want => Ok(Some((manifest, m.engine().clone()))),
            Some(m) => Err(refuse(
                ErrorKind::ModelUnavailable,
                format!(
                    "this worker serves the model {}, not {}",
                    hex::encode(m.model_hash()),
                    manifest.model.sha256
                ),
            )),
            None => Err(refuse(
                ErrorKind::ModelUnavailable,
                "this worker serves no model",
            )),
        }
    }

    /// Answer an inference program's request into `sink` under the program's limits; records
    /// and returns the usage to sign (tokens, and the generation's time as both CPU and wall
    /// time).
    #[allow(clippy::too_many_arguments)]
    async fn serve_inference(
        &self,
        program: ProgramId,
        limits: &Limits,
        manifest: &pith_api::inference::Manifest,
        engine: &pith_infer::Engine,
        request: &SealedRequest,
        request_hash: [u8; 32],
        sink: &mut crate::inference::Sink<'_>,
    ) -> pith_sandbox::Usage {
        let start = Instant::now();
        let plan = crate::inference::plan(
            manifest,
            engine,
            request,
            request_hash,
            u32::try_from(limits.ai_tokens).unwrap_or(u32::MAX),
            now_secs(),
        );
        let used = match plan {
            crate::inference::Plan::Reply { status, body } => {
                sink.reply(status, &body).await;
                crate::inference::ChatUsage::default()
            }
            crate::inference::Plan::Chat(chat) => {
                let deadline = start + Duration::from_millis(limits.wall_ms);
                crate::inference::run_chat(engine, chat, deadline, sink).await
            }
        };
        let wall = start.elapsed();
        // The generation keeps one thread busy; its length is what the CPU figure bills.
        let busy = if used.completion_tokens > 0 || used.prompt_tokens > 0 {
            used.wall
        } else {
            Duration::ZERO
        };
        let usage = pith_sandbox::Usage {
            ai_prompt_tokens: used.prompt_tokens,
            ai_completion_tokens: used.completion_tokens,
            ..pith_sandbox::Usage::timed(busy, wall)
        };
        self.record_usage(program, &usage, &[]);
        usage
    }

    /// Run one encrypted invocation (the body of `POST /v1/programs/{id}/invoke`).
    pub async fn invoke(
        self: &Arc<Self>,
        program: ProgramId,
        wire: &[u8],
    ) -> Result<Invocation, WorkerError> {
        let (request, reply, keys) = self
            .open(program, wire, |server, wire| server.decapsulate(wire))
            .await?;
        let loaded = self.load_program(program, &keys).await?;
        let request_hash = reply.request_hash();
        let (response, usage) = if let Some((manifest, engine)) = self.inference_model(&loaded)? {
            let mut sink = crate::inference::Sink::collect();
            let usage = self
                .serve_inference(
                    program,
                    &loaded.limits,
                    &manifest,
                    &engine,
                    &request,
                    request_hash,
                    &mut sink,
                )
                .await;
            let crate::inference::Sink::Collect {
                status,
                headers,
                body,
            } = sink
            else {
                return Err(WorkerError::State("collecting sink changed kind".into()));
            };
            (
                SealedResponse {
                    status,
                    headers,
                    body,
                },
                usage,
            )
        } else {
            let outcome = self.run(&loaded, to_sandbox(&request)).await;
            self.record_usage(program, &outcome.usage, &outcome.logs);
            (sealed_response(outcome.result), outcome.usage)
        };
        let (body, response_hash) = reply
            .encapsulate(&response)
            .map_err(|e| WorkerError::State(format!("encapsulate: {e}")))?;
        let receipt = self.sign_receipt(
            program,
            loaded.code_hash,
            request_hash,
            response_hash,
            &usage,
        )?;
        Ok(Invocation { body, receipt })
    }

    /// Run one encrypted invocation as a stream (a `message/ohttp-chunked-req` body): every
    /// check happens before this returns; the answer then flows out of the returned channel as
    /// `message/ohttp-chunked-res` bytes, frame by frame, the receipt last
    /// (`pith_crypto::chunked`). Inference programs stream their tokens; other programs answer
    /// in one DATA frame.
    pub async fn invoke_chunked(
        self: &Arc<Self>,
        program: ProgramId,
        wire: &[u8],
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<std::io::Result<axum::body::Bytes>>, WorkerError>
    {
        let (request, reply, keys) = self
            .open(program, wire, |server, wire| {
                server.decapsulate_chunked(wire)
            })
            .await?;
        let loaded = self.load_program(program, &keys).await?;
        let inference = self.inference_model(&loaded)?;
        let request_hash = reply.request_hash();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut writer = reply
            .writer(Box::pin(ChannelWriter(tx)))
            .map_err(|e| WorkerError::State(format!("chunked response: {e}")))?;
        let node = self.clone();
        tokio::spawn(async move {
            let usage = if let Some((manifest, engine)) = inference {
                let mut sink = crate::inference::Sink::Stream {
                    writer: &mut writer,
                    broken: false,
                };
                node.serve_inference(
                    program,
                    &loaded.limits,
                    &manifest,
                    &engine,
                    &request,
                    request_hash,
                    &mut sink,
                )
                .await
            } else {
                let outcome = node.run(&loaded, to_sandbox(&request)).await;
                node.record_usage(program, &outcome.usage, &outcome.logs);
                let r = sealed_response(outcome.result);
                if writer.head(r.status, r.headers).await.is_err()
                    || writer.data(&r.body).await.is_err()
                {
                    return;
                }
                outcome.usage
            };
            let receipt = match node.sign_receipt(
                program,
                loaded.code_hash,
                request_hash,
                writer.response_hash(),
                &usage,
            ) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(target: "pith::worker", "receipt: {e}");
                    return;
                }
            };
            let bytes = serde_json::to_vec(&receipt).unwrap_or_default();
            if let Err(e) = writer.end(&bytes).await {
                tracing::debug!(target: "pith::worker", "stream closed before its end: {e}");
            }
        });
        Ok(rx)
    }

    pub(crate) async fn run(&self, program: &Arc<Program>, req: Request) -> pith_sandbox::Outcome {
        let pool = self.pool.clone();
        let program = program.clone();
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let out = tokio::task::spawn_blocking(move || pool.invoke(&program, req)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        out.unwrap_or_else(|e| pith_sandbox::Outcome {
            result: Err(pith_sandbox::InvocationError {
                kind: pith_sandbox::ErrorKind::ProgramError,
                message: format!("invocation task failed: {e}"),
            }),
            usage: pith_sandbox::Usage::default(),
            logs: Vec::new(),
        })
    }

    pub(crate) fn sign_receipt(
        &self,
        program: ProgramId,
        code_hash: [u8; 32],
        request_hash: [u8; 32],
        response_hash: [u8; 32],
        usage: &pith_sandbox::Usage,
    ) -> Result<SignedReceipt, WorkerError> {
        let fields = ReceiptFields {
            chain_id: self.config.deployment.chain_id,
            verifying_contract: self.config.deployment.contracts.registry,
            receipt: pith_crypto::receipt::Receipt {
                programId: B256::from(program.0),
                codeHash: B256::from(code_hash),
                requestHash: B256::from(request_hash),
                responseHash: B256::from(response_hash),
                // Receipts name the model only for invocations that used it.
                modelHash: match self.model_hash() {
                    Some(m) if usage.ai_prompt_tokens > 0 || usage.ai_completion_tokens > 0 => m,
                    _ => B256::ZERO,
                },
                worker: self.address(),
                timestamp: now_secs(),
                cpuMicros: usage.cpu_us,
                wallMicros: usage.wall_us,
                memoryBytes: usage.memory_bytes,
                egressBytes: usage.egress_bytes,
            },
        };
        SignedReceipt::sign(fields, self.identity.signing_key())
            .map_err(|e| WorkerError::State(format!("receipt: {e}")))
    }

    /// Response headers of a successful invocation.
    pub fn invocation_headers(&self, inv: &Invocation) -> [(&'static str, String); 3] {
        [
            (
                headers::RECEIPT,
                pith_api::worker::encode_receipt(&inv.receipt),
            ),
            (headers::WORKER, format!("{:#x}", self.address())),
            ("content-type", pith_api::media::OHTTP_RES.to_owned()),
        ]
    }
}

/// The sealed response of a sandbox outcome (a failure is a 500 naming its kind).
fn sealed_response(
    result: Result<pith_sandbox::Response, pith_sandbox::InvocationError>,
) -> SealedResponse {
    match result {
        Ok(r) => SealedResponse {
            status: r.status,
            headers: r.headers,
            body: r.body,
        },
        Err(e) => SealedResponse {
            status: 500,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&serde_json::json!({ "error": e })).unwrap_or_default(),
        },
    }
}

/// An `AsyncWrite` into the channel that feeds a streamed HTTP body (never blocks; a closed
/// channel — the client went away — is a broken pipe).
struct ChannelWriter(tokio::sync::mpsc::UnboundedSender<std::io::Result<axum::body::Bytes>>);

impl futures::io::AsyncWrite for ChannelWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = self
            .0
            .send(Ok(axum::body::Bytes::copy_from_slice(buf)))
            .map(|()| buf.len())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        std::task::Poll::Ready(r)
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// A user's request as the program sees it. `pith-*` headers are dropped: the programs can
/// trust those to come from the worker itself (oracle requests, agent firings).
fn to_sandbox(r: &SealedRequest) -> Request {
    Request {
        method: r.method().to_owned(),
        url: format!("https://pith{}", r.path()),
        headers: r
            .headers()
            .iter()
            .filter(|(k, _)| !k.to_ascii_lowercase().starts_with("pith-"))
            .cloned()
            .collect(),
        body: r.body().to_vec(),
    }
}
