//! Loading a GGUF model: the file's hash, its weights and its own tokenizer.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_core::quantized::gguf_file;
use candle_transformers::models::quantized_llama::{MAX_SEQ_LEN, ModelWeights};
use sha2::{Digest, Sha256};

use crate::InferError;
use crate::chat::ChatTemplate;
use crate::tokenizer::GgufTokenizer;

/// A loaded GGUF model (llama architecture, byte-level BPE tokenizer, ChatML template).
///
/// The weights are read once; every chat works on a clone of [`ModelWeights`], which shares
/// the quantized tensors (reference-counted) and owns only its KV cache (ADR 0120).
pub struct Model {
    pub(crate) weights: ModelWeights,
    pub(crate) tokenizer: GgufTokenizer,
    pub(crate) template: ChatTemplate,
    hash: [u8; 32],
    id: String,
    context_length: usize,
    path: PathBuf,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("id", &self.id)
            .field("hash", &hex::encode(self.hash))
            .field("context_length", &self.context_length)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Loads the model at `path`. The file is read into memory once; its SHA-256 (the model
    /// hash) and the model are computed from those same bytes, so the hash names exactly
    /// what was loaded. The model id is the file name without `.gguf`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, InferError> {
        let path = path.as_ref();
        let (bytes, hash) = read_hashed(path)?;
        Self::from_bytes(path, &bytes, hash)
    }

    /// Loads the model at `path` only if its SHA-256 is `expected` (the hash the worker's
    /// attested configuration names).
    pub fn load_pinned(path: impl AsRef<Path>, expected: &[u8; 32]) -> Result<Self, InferError> {
        let path = path.as_ref();
        let (bytes, hash) = read_hashed(path)?;
        if &hash != expected {
            return Err(InferError::HashMismatch {
                path: path.to_owned(),
                expected: hex::encode(expected),
                actual: hex::encode(hash),
            });
        }
        Self::from_bytes(path, &bytes, hash)
    }

    fn from_bytes(path: &Path, bytes: &[u8], hash: [u8; 32]) -> Result<Self, InferError> {
        let corrupt = |reason: String| InferError::CorruptModel {
            path: path.to_owned(),
            reason,
        };
        // candle's GGUF reader and model builder return errors for the malformed files we know
        // of; a panic on some other malformation must still not take the worker down.
        let parsed = catch_unwind(AssertUnwindSafe(|| -> Result<_, String> {
            let mut reader = Cursor::new(bytes);
            let content = gguf_file::Content::read(&mut reader).map_err(|e| e.to_string())?;
            let arch = content
                .metadata
                .get("general.architecture")
                .and_then(|v| v.to_string().ok())
                .cloned()
                .unwrap_or_default();
            if arch != "llama" {
                return Err(format!(
                    "architecture {arch:?}; only \"llama\" is supported"
                ));
            }
            let tokenizer = GgufTokenizer::from_gguf(&content)?;
            let template = content
                .metadata
                .get("tokenizer.chat_template")
                .and_then(|v| v.to_string().ok())
                .ok_or_else(|| "tokenizer.chat_template missing".to_string())
                .and_then(|t| ChatTemplate::from_template(t))?;
            let context_length = content
                .metadata
                .get("llama.context_length")
                .and_then(|v| v.to_u32().ok())
                .map_or(MAX_SEQ_LEN, |n| (n as usize).min(MAX_SEQ_LEN));
            let weights = ModelWeights::from_gguf(content, &mut reader, &Device::Cpu)
                .map_err(|e| e.to_string())?;
            Ok((weights, tokenizer, template, context_length))
        }));
        let (weights, tokenizer, template, context_length) = match parsed {
            Ok(Ok(parts)) => parts,
            Ok(Err(reason)) => return Err(corrupt(reason)),
            Err(_) => return Err(corrupt("the GGUF reader panicked on this file".into())),
        };
        let id = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.strip_suffix(".gguf").unwrap_or(n).to_owned())
            .unwrap_or_else(|| "model".to_owned());
        tracing::info!(
            target: "pith_infer",
            model = %id,
            sha256 = %hex::encode(hash),
            context_length,
            vocab = tokenizer.vocab_size(),
            "model loaded"
        );
        Ok(Self {
            weights,
            tokenizer,
            template,
            hash,
            id,
            context_length,
            path: path.to_owned(),
        })
    }

    /// SHA-256 of the model file: the model hash of attested configurations and receipts.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The model's id (`GET /v1/models`): the file name without `.gguf`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Renames the model (the id clients pass as `model`).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Most tokens (prompt and completion) one chat can hold: the model's trained context,
    /// capped at 4,096 (the rotary tables candle's llama precomputes).
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Token ids of the ChatML prompt for `messages`, as the model will see it.
    pub fn prompt_tokens(&self, messages: &[crate::ChatMessage]) -> Result<Vec<u32>, InferError> {
        self.template.render(&self.tokenizer, messages)
    }

    /// Token ids of `text`, encoded as plain text.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, InferError> {
        self.tokenizer.encode_text(text).map_err(InferError::Engine)
    }

    /// The text of `tokens` (control tokens print nothing; invalid UTF-8 becomes U+FFFD).
    pub fn decode(&self, tokens: &[u32]) -> String {
        let bytes: Vec<u8> = tokens
            .iter()
            .flat_map(|&t| self.tokenizer.bytes(t).iter().copied())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A fresh copy of the weights with an empty KV cache, sharing the tensors: what each chat
    /// (and the benchmark's plain candle loop) runs on.
    pub fn weights(&self) -> ModelWeights {
        self.weights.clone()
    }

    /// The id that ends the assistant's turn (`<|im_end|>`), and the end-of-sequence id.
    pub fn stop_tokens(&self) -> [u32; 2] {
        [
            self.tokenizer.im_end().unwrap_or(self.tokenizer.eos()),
            self.tokenizer.eos(),
        ]
    }
}

/// The model file's bytes and their SHA-256 (the hash is of exactly the bytes parsed).
fn read_hashed(path: &Path) -> Result<(Vec<u8>, [u8; 32]), InferError> {
    let bytes = std::fs::read(path).map_err(|source| InferError::ModelIo {
        path: path.to_owned(),
        source,
    })?;
    let hash: [u8; 32] = Sha256::digest(&bytes).into();
    Ok((bytes, hash))
}
