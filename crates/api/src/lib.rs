//! # pith-api
//!
//! The contract between Pith's processes: HTTP routes, JSON bodies, error bodies, the
//! `report_data` binding of node identities into evidence, and the digests of the small
//! signed messages nodes exchange. The KMS, worker and gateway depend on this crate and
//! never on each other; the CLI and clients use it to talk to all three.
//!
//! Every type here is documented in `docs/protocol.md` ("Network: KMS, worker, gateway").
//! Binary fields travel as `0x`-prefixed lower-case hex unless stated otherwise;
//! addresses and 32-byte values use `alloy-primitives` serde (also `0x`-hex).
//!
//! Each service's own client (`kms::Client`, `worker::Client`, `gateway::Client`) lives in
//! the module of that service, written by the service's owner.

pub mod agent;
pub mod binding;
pub mod error;
pub mod gateway;
pub mod hexser;
pub mod inference;
pub mod kms;
pub mod network;
pub mod worker;

pub use error::{ApiError, ErrorBody, ErrorKind};
pub use pith_crypto::{Address, B256};

/// HTTP header names used across services (lower case, as HTTP/2 and Binary HTTP want them).
pub mod headers {
    /// Response header carrying the worker's signed receipt: base64url (no padding) of the
    /// receipt JSON (`pith_crypto::receipt::SignedReceipt`).
    pub const RECEIPT: &str = "pith-receipt";
    /// Response header naming the worker (address) that ran an invocation.
    pub const WORKER: &str = "pith-worker";
    /// Response header carrying the KMS certificate over an `application/ohttp-keys` body:
    /// base64url (no padding) of the `KeyCertificate` JSON.
    pub const KEY_CERTIFICATE: &str = "pith-key-certificate";
    /// Inner (encrypted) request header with the program owner's signature on a secrets
    /// upload (see [`crate::binding::SECRETS_TAG`]).
    pub const OWNER_SIGNATURE: &str = "pith-owner-signature";
}

/// Media types.
pub mod media {
    /// RFC 9458 key configuration list.
    pub const OHTTP_KEYS: &str = "application/ohttp-keys";
    /// RFC 9458 encapsulated request.
    pub const OHTTP_REQ: &str = "message/ohttp-req";
    /// RFC 9458 encapsulated response.
    pub const OHTTP_RES: &str = "message/ohttp-res";
    /// Chunked OHTTP request (draft-ietf-ohai-chunked-ohttp): asks for a streamed answer.
    pub const OHTTP_CHUNKED_REQ: &str = "message/ohttp-chunked-req";
    /// Chunked OHTTP response (frames, the receipt in the last; `pith_crypto::chunked`).
    pub const OHTTP_CHUNKED_RES: &str = "message/ohttp-chunked-res";
    /// JSON.
    pub const JSON: &str = "application/json";
}

/// Encode bytes as base64url without padding (header values).
pub fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decode base64url without padding.
pub fn from_b64url(s: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim())
        .map_err(|e| ApiError::new(ErrorKind::BadRequest, format!("bad base64url: {e}")))
}
