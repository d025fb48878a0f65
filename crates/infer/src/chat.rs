//! Chat requests (the OpenAI chat-completions fields pith-infer supports), results, and the
//! ChatML prompt.

use serde::{Deserialize, Serialize};

use crate::InferError;
use crate::tokenizer::GgufTokenizer;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the assistant.
    System,
    /// The person (or program) asking.
    User,
    /// The model's earlier answers.
    Assistant,
}

impl Role {
    /// The role's name in the prompt.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// What it says.
    pub content: String,
}

impl ChatMessage {
    /// A message.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// Stop sequences: OpenAI accepts one string or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop sequence.
    One(String),
    /// Up to [`MAX_STOP_SEQUENCES`] stop sequences.
    Many(Vec<String>),
}

impl Stop {
    /// The sequences as a list.
    pub fn sequences(&self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

/// Most stop sequences a request may carry (OpenAI's limit).
pub const MAX_STOP_SEQUENCES: usize = 4;

/// A chat-completion request: the subset of OpenAI's `POST /v1/chat/completions` body that
/// pith-infer implements. Other fields of the OpenAI body (`stream`, `user`, ...) are the
/// server's business and are ignored here.
///
/// Defaults follow OpenAI: temperature 1, top_p 1, a random seed, `max_tokens` up to the end of
/// the context. `temperature: 0` is greedy decoding, the same tokens on every run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model the client asked for; the server checks it, the engine serves its one model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The conversation, oldest first; at least one message.
    pub messages: Vec<ChatMessage>,
    /// Most completion tokens to generate (≥ 1); clamped to what the context has left.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "max_completion_tokens"
    )]
    pub max_tokens: Option<u32>,
    /// Sampling temperature in [0, 2]; 0 is greedy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling mass in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Seed of the sampler: the same seed, request and model give the same completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Sequences that end the completion (not included in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
}

impl ChatRequest {
    /// A request with these messages and the defaults.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }

    /// Checks the fields' ranges.
    pub fn validate(&self) -> Result<(), InferError> {
        let bad = |m: String| Err(InferError::InvalidRequest(m));
        if self.messages.is_empty() {
            return bad("messages must not be empty".into());
        }
        if self.max_tokens == Some(0) {
            return bad("max_tokens must be at least 1".into());
        }
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return bad(format!("temperature {t} is outside [0, 2]"));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return bad(format!("top_p {p} is outside (0, 1]"));
        }
        if let Some(stop) = &self.stop {
            let seqs = stop.sequences();
            if seqs.len() > MAX_STOP_SEQUENCES {
                return bad(format!("at most {MAX_STOP_SEQUENCES} stop sequences"));
            }
            if seqs.iter().any(String::is_empty) {
                return bad("stop sequences must not be empty".into());
            }
        }
        Ok(())
    }
}

/// Why a completion ended (OpenAI's `finish_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its turn, or a stop sequence appeared.
    Stop,
    /// `max_tokens` or the end of the context was reached.
    Length,
}

/// Tokens consumed by a chat (OpenAI's `usage`), metered and billed by the worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the rendered prompt.
    pub prompt_tokens: u32,
    /// Tokens the model sampled, the one that ended the turn included.
    pub completion_tokens: u32,
    /// The sum of both.
    pub total_tokens: u32,
}

impl Usage {
    pub(crate) fn new(prompt_tokens: usize, completion_tokens: usize) -> Self {
        let p = u32::try_from(prompt_tokens).unwrap_or(u32::MAX);
        let c = u32::try_from(completion_tokens).unwrap_or(u32::MAX);
        Self {
            prompt_tokens: p,
            completion_tokens: c,
            total_tokens: p.saturating_add(c),
        }
    }
}

/// A finished completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatResult {
    /// The assistant's answer (stop sequence and end-of-turn token excluded).
    pub text: String,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Tokens consumed.
    pub usage: Usage,
    /// The completion's token ids as sampled (the end-of-turn token included).
    pub tokens: Vec<u32>,
    /// SHA-256 of the model file that produced it.
    pub model_hash: [u8; 32],
}

/// The chat template of a model: ChatML, with or without a default system prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChatTemplate {
    /// Inserted as the system message when the first message is not a system message.
    pub(crate) default_system: Option<String>,
}

impl ChatTemplate {
    /// Reads the template's behaviour from `tokenizer.chat_template`. Only ChatML templates
    /// are supported; a default system prompt is recognised as the literal
    /// `<|im_start|>system\n...<|im_end|>` the template emits when `messages[0]` is not a
    /// system message (SmolLM2-Instruct's, Qwen2's).
    pub(crate) fn from_template(template: &str) -> Result<Self, String> {
        if !template.contains("<|im_start|>") || !template.contains("<|im_end|>") {
            return Err("tokenizer.chat_template is not a ChatML template".into());
        }
        let open = "<|im_start|>system";
        let default_system =
            if template.contains("!= 'system'") || template.contains("!= \"system\"") {
                template.find(open).and_then(|start| {
                    let rest = template.get(start + open.len()..)?;
                    // The newline after the role: a real newline or Jinja's `\n` escape.
                    let rest = rest
                        .strip_prefix('\n')
                        .or_else(|| rest.strip_prefix("\\n"))?;
                    let end = rest.find("<|im_end|>")?;
                    Some(rest.get(..end)?.replace("\\n", "\n"))
                })
            } else {
                None
            };
        Ok(Self { default_system })
    }

    /// The prompt's token ids: each message as `<|im_start|>{role}\n{content}<|im_end|>\n`,
    /// the default system message first where the template has one and the conversation does
    /// not start with a system message, then `<|im_start|>assistant\n`. Role and content are
    /// encoded as text; the ChatML markers are inserted by id.
    pub(crate) fn render(
        &self,
        tokenizer: &GgufTokenizer,
        messages: &[ChatMessage],
    ) -> Result<Vec<u32>, InferError> {
        let (Some(start), Some(end)) = (tokenizer.im_start(), tokenizer.im_end()) else {
            return Err(InferError::Engine(
                "the vocabulary has no ChatML tokens".into(),
            ));
        };
        let enc = |text: &str| tokenizer.encode_text(text).map_err(InferError::Engine);
        let newline = enc("\n")?;
        let mut ids: Vec<u32> = tokenizer.bos_prefix().into_iter().collect();
        let turn = |role: &str, content: &str, ids: &mut Vec<u32>| -> Result<(), InferError> {
            ids.push(start);
            ids.extend(enc(&format!("{role}\n{content}"))?);
            ids.push(end);
            ids.extend_from_slice(&newline);
            Ok(())
        };
        if let Some(system) = &self.default_system
            && messages.first().is_some_and(|m| m.role != Role::System)
        {
            turn("system", system, &mut ids)?;
        }
        for m in messages {
            turn(m.role.as_str(), &m.content, &mut ids)?;
        }
        ids.push(start);
        ids.extend(enc("assistant\n")?);
        Ok(ids)
    }
}
