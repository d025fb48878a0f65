//! `env.ai` in a worker: the worker's own model (pith-infer) answers programs' chats on a
//! blocking thread, under the invocation's deadline. No request or answer leaves the TEE.

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use pith_infer::{
    ChatMessage, ChatRequest, Control, Engine, EngineConfig, FinishReason, InferError, Model, Role,
    Stop,
};
use pith_sandbox::host::{
    AiChatReply, AiChatRequest, AiProvider, BoxFuture, HostError, ProgramRef,
};

/// The worker's model as the sandbox's [`AiProvider`].
#[derive(Clone, Debug)]
pub struct ModelAi {
    engine: Engine,
}

impl ModelAi {
    /// Serve `engine`'s model to programs.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// Load the GGUF model at `path` with the default engine settings; when `pin` is given
    /// the file's SHA-256 must be that.
    pub fn load(path: &Path, pin: Option<&[u8; 32]>) -> Result<Self, InferError> {
        let model = match pin {
            Some(h) => Model::load_pinned(path, h)?,
            None => Model::load(path)?,
        };
        Ok(Self::new(Engine::new(model, EngineConfig::default())))
    }

    /// SHA-256 of the model file (what receipts and the worker's evidence name).
    pub fn model_hash(&self) -> [u8; 32] {
        self.engine.model_hash()
    }

    /// The engine (the inference service answers with it too).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The model's id.
    pub fn model_id(&self) -> &str {
        self.engine.model_id()
    }
}

fn role(r: &str) -> Result<Role, HostError> {
    match r {
        "system" => Ok(Role::System),
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        other => Err(HostError::Invalid(format!("unknown role `{other}`"))),
    }
}

fn to_infer(req: &AiChatRequest) -> Result<ChatRequest, HostError> {
    let messages = req
        .messages
        .iter()
        .map(|m| Ok(ChatMessage::new(role(&m.role)?, m.content.clone())))
        .collect::<Result<Vec<_>, HostError>>()?;
    Ok(ChatRequest {
        model: req.model.clone(),
        messages,
        max_tokens: Some(req.max_tokens),
        temperature: Some(f64::from(req.temperature)),
        top_p: Some(f64::from(req.top_p)),
        seed: req.seed,
        stop: if req.stop.is_empty() {
            None
        } else {
            Some(Stop::Many(req.stop.clone()))
        },
    })
}

fn host_error(e: InferError) -> HostError {
    match e {
        InferError::InvalidRequest(_) | InferError::PromptTooLong { .. } => {
            HostError::Invalid(e.to_string())
        }
        other => HostError::Failed(other.to_string()),
    }
}

impl AiProvider for ModelAi {
    fn chat<'a>(
        &'a self,
        _program: &'a ProgramRef,
        request: AiChatRequest,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<AiChatReply, HostError>> {
        Box::pin(async move {
            if let Some(m) = &request.model
                && m != self.engine.model_id()
            {
                return Err(HostError::Invalid(format!(
                    "this worker serves the model `{}`, not `{m}`",
                    self.engine.model_id()
                )));
            }
            let req = to_infer(&request)?;
            let engine = self.engine.clone();
            let done = tokio::task::spawn_blocking(move || {
                engine.chat(&req, &Control::new().with_deadline(deadline), |_| {
                    ControlFlow::Continue(())
                })
            })
            .await
            .map_err(|e| HostError::Failed(format!("inference task: {e}")))?
            .map_err(host_error)?;
            Ok(AiChatReply {
                content: done.text,
                finish_reason: match done.finish_reason {
                    FinishReason::Stop => "stop",
                    FinishReason::Length => "length",
                }
                .to_owned(),
                prompt_tokens: done.usage.prompt_tokens,
                completion_tokens: done.usage.completion_tokens,
                model: self.engine.model_id().to_owned(),
                model_hash: done.model_hash,
            })
        })
    }
}
