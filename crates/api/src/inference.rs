//! Inference programs: a model served by the workers as an OpenAI-compatible API.
//!
//! An inference program is registered on chain like any program; its code is this manifest
//! (JSON, `pith: "inference/v1"`), so its code hash pins the model's file hash on chain and
//! its key comes from the KMS like any program key. A worker answers it natively (no
//! sandbox) when the model it loaded — the one bound into its evidence — has that hash, and
//! refuses with `model_unavailable` otherwise. Inside the encrypted request:
//! `POST /v1/chat/completions` (with `"stream": true` over a chunked exchange: server-sent
//! events) and `GET /v1/models`.

use serde::{Deserialize, Serialize};

/// The `pith` field of a manifest.
pub const KIND: &str = "inference/v1";

/// The code of an inference program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`KIND`].
    pub pith: String,
    /// The model served.
    pub model: ModelRef,
}

/// The model an inference program serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    /// The name clients pass as `model` (and `GET /v1/models` lists).
    pub name: String,
    /// SHA-256 of the model file, 64 hex digits.
    pub sha256: String,
}

impl Manifest {
    /// A manifest for `name` with the file hash `sha256`.
    pub fn new(name: impl Into<String>, sha256: [u8; 32]) -> Self {
        Self {
            pith: KIND.to_owned(),
            model: ModelRef {
                name: name.into(),
                sha256: hex::encode(sha256),
            },
        }
    }

    /// `Some` when `code` is an inference manifest (`Err` when it claims to be one and is
    /// malformed), `None` for any other program.
    pub fn parse(code: &[u8]) -> Option<Result<Self, String>> {
        let trimmed = code.trim_ascii_start();
        if !trimmed.starts_with(b"{") {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(code).ok()?;
        if v.get("pith").and_then(serde_json::Value::as_str) != Some(KIND) {
            return None;
        }
        Some(
            serde_json::from_value::<Self>(v)
                .map_err(|e| format!("inference manifest: {e}"))
                .and_then(|m| m.model_hash().map(|_| m)),
        )
    }

    /// The model file hash.
    pub fn model_hash(&self) -> Result<[u8; 32], String> {
        let bytes = hex::decode(&self.model.sha256)
            .map_err(|e| format!("inference manifest: model.sha256: {e}"))?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| "inference manifest: model.sha256 must be 32 bytes".to_owned())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_told_apart_from_programs() {
        let m = Manifest::new("SmolLM2-135M-Instruct", [7; 32]);
        let code = serde_json::to_vec_pretty(&m).unwrap();
        assert_eq!(Manifest::parse(&code), Some(Ok(m.clone())));
        assert_eq!(m.model_hash().unwrap(), [7; 32]);
        assert_eq!(Manifest::parse(b"export default { fetch() {} }"), None);
        assert_eq!(Manifest::parse(b"{\"pith\": \"other\"}"), None);
        assert_eq!(Manifest::parse(b"\0asm"), None);
        for bad in [
            r#"{"pith":"inference/v1"}"#,
            r#"{"pith":"inference/v1","model":{"name":"m","sha256":"00"}}"#,
            r#"{"pith":"inference/v1","model":{"name":"m","sha256":"zz"}}"#,
            r#"{"pith":"inference/v1","model":{"name":"m","sha256":"00"},"x":1}"#,
        ] {
            assert!(
                matches!(Manifest::parse(bad.as_bytes()), Some(Err(_))),
                "{bad}"
            );
        }
    }
}
