//! The engine a worker shares across its tasks: bounded concurrent chats on one loaded model.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};

use crate::chat::{ChatRequest, ChatResult, FinishReason, Usage};
use crate::text::TextStream;
use crate::{InferError, Model};

/// Engine settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Most chats generating at once; further chats wait for a slot (until their deadline).
    /// Each running chat holds its own KV cache (about 45 KiB per token for SmolLM2-135M, see
    /// bench/RESULTS.md). Default 4.
    pub max_concurrent: usize,
    /// Prompt tokens per forward pass while reading the prompt; the deadline and the cancel
    /// flag are checked between chunks. Default 256.
    pub prefill_chunk: usize,
    /// Most tokens (prompt and completion) of one chat, below the model's context length:
    /// bounds each slot's KV cache. Default `None`: the model's context length.
    pub max_context: Option<usize>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 4,
            prefill_chunk: 256,
            max_context: None,
        }
    }
}

/// Limits on one chat, enforced between forward passes: a deadline and a cancel flag.
#[derive(Debug, Clone, Default)]
pub struct Control {
    deadline: Option<Instant>,
    cancel: Option<Arc<AtomicBool>>,
}

impl Control {
    /// No deadline, not cancellable (except through the token callback).
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the chat with [`InferError::DeadlineExceeded`] once `deadline` has passed.
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// A deadline `timeout` from now.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.with_deadline(Instant::now() + timeout)
    }

    /// Stops the chat with [`InferError::Cancelled`] once `flag` is set.
    pub fn with_cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }

    fn check(&self, usage: Usage) -> Result<(), InferError> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(InferError::Cancelled { usage });
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(InferError::DeadlineExceeded { usage });
        }
        Ok(())
    }
}

/// Counting semaphore of generation slots.
#[derive(Debug)]
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

struct SlotGuard<'a>(&'a Slots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut free = self
            .0
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *free += 1;
        self.0.freed.notify_one();
    }
}

impl Slots {
    /// Waits for a free slot, checking `control` every 20 ms.
    fn acquire(&self, control: &Control, usage: Usage) -> Result<SlotGuard<'_>, InferError> {
        let mut free = self
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if *free > 0 {
                *free -= 1;
                return Ok(SlotGuard(self));
            }
            control.check(usage)?;
            free = self
                .freed
                .wait_timeout(free, Duration::from_millis(20))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }
}

struct Inner {
    model: Model,
    config: EngineConfig,
    slots: Slots,
}

/// A loaded model ready to answer chats; cheap to clone, `Send + Sync`.
///
/// [`Engine::chat`] blocks while it generates: call it from a blocking thread
/// (`tokio::task::spawn_blocking`). At most [`EngineConfig::max_concurrent`] chats generate at
/// once; the others wait.
///
/// ```no_run
/// use pith_infer::{ChatMessage, ChatRequest, Control, Engine, EngineConfig, Model, Role};
/// let model = Model::load("SmolLM2-135M-Instruct.gguf")?;
/// let engine = Engine::new(model, EngineConfig::default());
/// let mut req = ChatRequest::new(vec![ChatMessage::new(Role::User, "Hi!")]);
/// req.temperature = Some(0.0);
/// let done = engine.chat(&req, &Control::new().with_timeout(std::time::Duration::from_secs(30)),
///     |delta| { print!("{delta}"); std::ops::ControlFlow::Continue(()) })?;
/// println!("\n{:?} {:?}", done.finish_reason, done.usage);
/// # Ok::<(), pith_infer::InferError>(())
/// ```
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("model", &self.inner.model)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Engine {
    /// An engine serving `model`. A `max_concurrent` or `prefill_chunk` of 0 is taken as 1.
    pub fn new(model: Model, mut config: EngineConfig) -> Self {
        config.max_concurrent = config.max_concurrent.max(1);
        config.prefill_chunk = config.prefill_chunk.max(1);
        let slots = Slots {
            free: Mutex::new(config.max_concurrent),
            freed: Condvar::new(),
        };
        Self {
            inner: Arc::new(Inner {
                model,
                config,
                slots,
            }),
        }
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.inner.model
    }

    /// The model's id (`GET /v1/models`).
    pub fn model_id(&self) -> &str {
        self.inner.model.id()
    }

    /// SHA-256 of the model file.
    pub fn model_hash(&self) -> [u8; 32] {
        self.inner.model.hash()
    }

    /// Most tokens (prompt and completion) of one chat: the model's context length, or
    /// [`EngineConfig::max_context`] if lower.
    pub fn context_length(&self) -> usize {
        let model = self.inner.model.context_length();
        self.inner
            .config
            .max_context
            .map_or(model, |m| m.clamp(1, model))
    }

    /// Answers a chat. `on_delta` gets the answer's text as it is generated, in pieces that are
    /// whole UTF-8 characters (stop sequences held back until ruled out) whose concatenation is
    /// the final `text`; returning `Break` stops the chat with [`InferError::Cancelled`].
    ///
    /// Greedy (`temperature: 0`) and seeded chats give the same tokens on every run.
    pub fn chat(
        &self,
        req: &ChatRequest,
        control: &Control,
        mut on_delta: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<ChatResult, InferError> {
        req.validate()?;
        let model = &self.inner.model;
        let prompt = model.prompt_tokens(&req.messages)?;
        let context = self.context_length();
        if prompt.len() >= context {
            return Err(InferError::PromptTooLong {
                prompt_tokens: prompt.len(),
                context_length: context,
            });
        }
        let room = context - prompt.len();
        let max_new = req.max_tokens.map_or(room, |m| (m as usize).min(room));
        let mut sampler = LogitsProcessor::from_sampling(seed(req.seed), sampling(req));
        let stops = model.stop_tokens();
        let mut text =
            TextStream::new(req.stop.as_ref().map(|s| s.sequences()).unwrap_or_default());

        let _slot = self.inner.slots.acquire(control, Usage::new(0, 0))?;
        let mut weights = model.weights();
        let span = tracing::debug_span!(target: "pith_infer", "chat", prompt_tokens = prompt.len(), max_new);
        let _enter = span.enter();

        // Read the prompt in chunks, checking the limits in between.
        let mut logits = None;
        let mut pos = 0;
        for chunk in prompt.chunks(self.inner.config.prefill_chunk) {
            control.check(Usage::new(pos, 0))?;
            let input = Tensor::new(chunk, &Device::Cpu)?.unsqueeze(0)?;
            logits = Some(weights.forward(&input, pos)?);
            pos += chunk.len();
        }
        let Some(mut logits) = logits else {
            return Err(InferError::Engine("empty prompt".into()));
        };

        let mut tokens = Vec::with_capacity(max_new.min(1024));
        let finish = loop {
            let usage = Usage::new(prompt.len(), tokens.len());
            control.check(usage)?;
            let next = sampler.sample(&logits.squeeze(0)?)?;
            tokens.push(next);
            if stops.contains(&next) {
                break FinishReason::Stop;
            }
            let step = text.push(model.tokenizer.bytes(next));
            if !step.delta.is_empty() && on_delta(&step.delta).is_break() {
                return Err(InferError::Cancelled {
                    usage: Usage::new(prompt.len(), tokens.len()),
                });
            }
            if step.stopped {
                break FinishReason::Stop;
            }
            if tokens.len() >= max_new {
                break FinishReason::Length;
            }
            let input = Tensor::new(&[next], &Device::Cpu)?.unsqueeze(0)?;
            logits = weights.forward(&input, prompt.len() + tokens.len() - 1)?;
        };
        let rest = text.finish();
        if !rest.is_empty() && on_delta(&rest).is_break() {
            return Err(InferError::Cancelled {
                usage: Usage::new(prompt.len(), tokens.len()),
            });
        }
        let usage = Usage::new(prompt.len(), tokens.len());
        tracing::debug!(target: "pith_infer", completion_tokens = tokens.len(), ?finish, "chat done");
        Ok(ChatResult {
            text: text.text().to_owned(),
            finish_reason: finish,
            usage,
            tokens,
            model_hash: model.hash(),
        })
    }
}

/// OpenAI's defaults: temperature 1, top_p 1; temperature 0 is greedy.
fn sampling(req: &ChatRequest) -> Sampling {
    let temperature = req.temperature.unwrap_or(1.0);
    if temperature <= 0.0 {
        return Sampling::ArgMax;
    }
    match req.top_p {
        Some(p) if p < 1.0 => Sampling::TopP { p, temperature },
        _ => Sampling::All { temperature },
    }
}

/// The request's seed, or a fresh one from the OS (time as a last resort).
fn seed(requested: Option<u64>) -> u64 {
    requested.unwrap_or_else(|| {
        let mut b = [0u8; 8];
        match getrandom::getrandom(&mut b) {
            Ok(()) => u64::from_le_bytes(b),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        }
    })
}
