//! The tokenizer of a GGUF model, built from the file's own vocabulary and merges.
//!
//! GGUF files of the `gpt2` tokenizer family (GPT-2, StarCoder, SmolLM2) carry the byte-level
//! BPE vocabulary (`tokenizer.ggml.tokens`), its merges (`tokenizer.ggml.merges`), the token
//! types (`tokenizer.ggml.token_type`, 3 = control) and the pre-tokenizer name
//! (`tokenizer.ggml.pre`). The `tokenizers` crate's BPE model runs on them with the
//! pre-tokenizer the name stands for and `add_prefix_space` OFF: a prefix space would turn the
//! `system` after `<|im_start|>` into ` system`, a different token, and the model would see a
//! prompt unlike the ones it was trained on.
//!
//! Control tokens are never produced from text: the chat renderer inserts them by id, and text
//! (including a message's content that spells `<|im_end|>`) is always encoded as plain text,
//! so a message cannot forge a role boundary.

use candle_core::quantized::gguf_file;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{PreTokenizerWrapper, Tokenizer};

/// GGUF token type of control tokens (`<|im_start|>`, `<|endoftext|>`, ...).
const TOKEN_TYPE_CONTROL: i32 = 3;

/// A byte-level BPE tokenizer read from a GGUF file.
pub(crate) struct GgufTokenizer {
    /// BPE without added tokens: encodes text as text.
    bpe: Tokenizer,
    /// The bytes each token stands for; empty for control tokens (they print nothing).
    token_bytes: Vec<Box<[u8]>>,
    /// `tokenizer.ggml.add_bos_token`.
    add_bos: bool,
    bos: Option<u32>,
    eos: u32,
    im_start: Option<u32>,
    im_end: Option<u32>,
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer")
            .field("vocab", &self.token_bytes.len())
            .field("eos", &self.eos)
            .finish_non_exhaustive()
    }
}

/// How GPT-2's byte-level BPE spells bytes as characters: printable Latin-1 bytes stand for
/// themselves, the other 68 bytes (controls, space, ...) for U+0100.. in byte order. This is the
/// published `bytes_to_unicode` table of GPT-2, which every byte-level vocabulary is written in;
/// the `tokenizers` crate keeps its copy private.
fn byte_of_char() -> std::collections::HashMap<char, u8> {
    let printable =
        |b: u8| matches!(b, b'!'..=b'~') || matches!(b, 0xA1..=0xAC) || matches!(b, 0xAE..=0xFF);
    let mut map = std::collections::HashMap::with_capacity(256);
    let mut next = 0u32;
    for b in 0..=255u8 {
        let c = if printable(b) {
            char::from(b)
        } else {
            let c = char::from_u32(256 + next).unwrap_or(char::REPLACEMENT_CHARACTER);
            next += 1;
            c
        };
        map.insert(c, b);
    }
    map
}

fn string_array<'a>(ct: &'a gguf_file::Content, key: &str) -> Result<Vec<&'a str>, String> {
    let v = ct
        .metadata
        .get(key)
        .ok_or_else(|| format!("metadata {key} missing"))?;
    let items = v.to_vec().map_err(|e| format!("metadata {key}: {e}"))?;
    items
        .iter()
        .map(|i| {
            i.to_string()
                .map(String::as_str)
                .map_err(|e| format!("metadata {key}: {e}"))
        })
        .collect()
}

fn u32_value(ct: &gguf_file::Content, key: &str) -> Result<Option<u32>, String> {
    match ct.metadata.get(key) {
        None => Ok(None),
        Some(v) => v
            .to_u32()
            .map(Some)
            .map_err(|e| format!("metadata {key}: {e}")),
    }
}

impl GgufTokenizer {
    /// Builds the tokenizer from a GGUF file's metadata. Errors are reasons for
    /// [`crate::InferError::CorruptModel`].
    pub(crate) fn from_gguf(ct: &gguf_file::Content) -> Result<Self, String> {
        let model = ct
            .metadata
            .get("tokenizer.ggml.model")
            .and_then(|v| v.to_string().ok())
            .map(String::as_str);
        if model != Some("gpt2") {
            return Err(format!(
                "tokenizer.ggml.model is {model:?}; only byte-level BPE (\"gpt2\") is supported"
            ));
        }
        let pre = ct
            .metadata
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .map_or("gpt2", String::as_str);
        let byte_level = ByteLevel::new(false, true, true);
        let pre_tokenizer: PreTokenizerWrapper = match pre {
            // GPT-2's split only.
            "gpt2" => byte_level.into(),
            // StarCoder's family (SmolLM2 is trained with it): every digit on its own, then
            // GPT-2's split.
            "smollm" | "starcoder" | "refact" => {
                Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
            }
            other => return Err(format!("tokenizer.ggml.pre {other:?} is not supported")),
        };

        let tokens = string_array(ct, "tokenizer.ggml.tokens")?;
        let merges = string_array(ct, "tokenizer.ggml.merges")?;
        let types: Vec<i32> = match ct.metadata.get("tokenizer.ggml.token_type") {
            None => vec![1; tokens.len()],
            Some(v) => v
                .to_vec()
                .map_err(|e| format!("tokenizer.ggml.token_type: {e}"))?
                .iter()
                .map(|t| {
                    t.to_i32()
                        .map_err(|e| format!("tokenizer.ggml.token_type: {e}"))
                })
                .collect::<Result<_, _>>()?,
        };
        if types.len() != tokens.len() {
            return Err(format!(
                "{} token types for {} tokens",
                types.len(),
                tokens.len()
            ));
        }
        let n = u32::try_from(tokens.len()).map_err(|_| "vocabulary too large".to_string())?;

        let control: Vec<bool> = types.iter().map(|&t| t == TOKEN_TYPE_CONTROL).collect();
        let bytes_of = byte_of_char();
        let mut token_bytes = Vec::with_capacity(tokens.len());
        for (id, (tok, &is_control)) in tokens.iter().zip(&control).enumerate() {
            if is_control {
                token_bytes.push(Box::default());
                continue;
            }
            let bytes: Option<Vec<u8>> = tok.chars().map(|c| bytes_of.get(&c).copied()).collect();
            let bytes = bytes.ok_or_else(|| {
                format!("token {id} ({tok:?}) is not written in the byte-level alphabet")
            })?;
            token_bytes.push(bytes.into_boxed_slice());
        }

        let vocab: Vocab = tokens
            .iter()
            .zip(0u32..)
            .filter(|(_, id)| !control.get(*id as usize).copied().unwrap_or(false))
            .map(|(t, id)| ((*t).to_owned(), id))
            .collect();
        let merges: Vec<(String, String)> = merges
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .ok_or_else(|| format!("merge {m:?} is not two tokens"))
            })
            .collect::<Result<_, _>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| format!("BPE: {e}"))?;
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer.with_pre_tokenizer(Some(pre_tokenizer));

        let id_in_vocab = |key: &str| -> Result<Option<u32>, String> {
            match u32_value(ct, key)? {
                Some(id) if id >= n => Err(format!("{key} {id} is outside the vocabulary of {n}")),
                other => Ok(other),
            }
        };
        let find = |text: &str| {
            tokens
                .iter()
                .position(|t| *t == text)
                .and_then(|i| u32::try_from(i).ok())
        };
        let eos = id_in_vocab("tokenizer.ggml.eos_token_id")?
            .ok_or_else(|| "tokenizer.ggml.eos_token_id missing".to_string())?;
        Ok(Self {
            bpe: tokenizer,
            token_bytes,
            add_bos: ct
                .metadata
                .get("tokenizer.ggml.add_bos_token")
                .and_then(|v| v.to_bool().ok())
                .unwrap_or(false),
            bos: id_in_vocab("tokenizer.ggml.bos_token_id")?,
            eos,
            im_start: find("<|im_start|>"),
            im_end: find("<|im_end|>"),
        })
    }

    /// Token ids of `text`, encoded as plain text (control tokens are never matched).
    pub(crate) fn encode_text(&self, text: &str) -> Result<Vec<u32>, String> {
        self.bpe
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| e.to_string())
    }

    /// The bytes token `id` prints (empty for control tokens and ids outside the vocabulary).
    pub(crate) fn bytes(&self, id: u32) -> &[u8] {
        self.token_bytes.get(id as usize).map_or(&[], |b| b)
    }

    pub(crate) fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }

    pub(crate) fn eos(&self) -> u32 {
        self.eos
    }

    pub(crate) fn bos_prefix(&self) -> Option<u32> {
        if self.add_bos { self.bos } else { None }
    }

    pub(crate) fn im_start(&self) -> Option<u32> {
        self.im_start
    }

    pub(crate) fn im_end(&self) -> Option<u32> {
        self.im_end
    }
}
