//! Program secrets (`env.secrets`), uploaded by the owner encrypted to the program key.
//!
//! The gateway stores the latest upload (`GET /v1/programs/{id}/secrets`, an OHTTP request
//! encapsulated to the program's certified key). The worker decapsulates it with the
//! program key, and accepts it only when
//!
//! - it is a `PUT /.pith/secrets` with JSON body
//!   `{"version": n, "secrets": {"K": "V", ..}, "egress": ["host", "host:port", ..]}`
//!   (`egress`, the program's fetch() allow-list, may be absent: no egress);
//! - header `pith-owner-signature` (65 bytes, `0x`-hex) recovers, over
//!   `message_digest(SECRETS_TAG, [program_id, keccak256(body)], n)`, to
//!   `Programs.ownerOf(id)` on chain;
//! - `n` is above the version this worker already holds (an older upload replayed by the
//!   gateway is ignored; the high-water mark is in memory, so after a restart the gateway
//!   could serve an older signed upload until the owner uploads again).
//!
//! The upload's OHTTP expiry is not checked (uploads are kept and re-read); the owner's
//! signature and version are what make it current. A bad upload is ignored with a warning
//! (the gateway is untrusted; refusing to run would let it deny service just the same).

use std::collections::BTreeMap;

use alloy::primitives::U256;
use pith_crypto::keytree::ProgramId;

use crate::error::WorkerError;
use crate::keys::ProgramKeySet;
use crate::node::Node;

/// Path of a secrets upload inside the encrypted request.
pub const SECRETS_PATH: &str = "/.pith/secrets";

/// An accepted owner upload: secrets and the egress allow-list, at one version.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Upload {
    /// Strictly increasing per program.
    pub version: u64,
    /// `env.secrets`.
    pub secrets: BTreeMap<String, String>,
    /// Hosts (`host` or `host:port`) the program's fetch() may reach.
    #[serde(default)]
    pub egress: Vec<String>,
}

/// Newer secrets than `current`, when the gateway holds a valid upload.
pub async fn fetch(
    node: &Node,
    program: ProgramId,
    keys: &ProgramKeySet,
    current: u64,
) -> Result<Option<Upload>, WorkerError> {
    let Some(gw) = node.config.gateway_url.as_deref() else {
        return Ok(None);
    };
    let url = format!(
        "{}{}",
        gw.trim_end_matches('/'),
        pith_api::gateway::PROGRAM_SECRETS.replace("{id}", &program.to_hex())
    );
    let resp = node
        .http
        .get(&url)
        .send()
        .await
        .map_err(|e| WorkerError::Gateway(e.to_string()))?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(WorkerError::Gateway(format!(
            "secrets: HTTP {}",
            resp.status()
        )));
    }
    let wire = resp
        .bytes()
        .await
        .map_err(|e| WorkerError::Gateway(e.to_string()))?;
    match check(node, program, keys, &wire).await {
        Ok(u) if u.version > current => Ok(Some(u)),
        Ok(_) => Ok(None),
        Err(e) => {
            tracing::warn!(target: "pith::worker", program = %program.to_hex(), "ignoring secrets upload: {e}");
            Ok(None)
        }
    }
}

async fn check(
    node: &Node,
    program: ProgramId,
    keys: &ProgramKeySet,
    wire: &[u8],
) -> Result<Upload, String> {
    let (req, _) = keys
        .server()
        .decapsulate(wire)
        .map_err(|e| format!("does not decrypt: {e}"))?;
    if req.method() != "PUT" || req.path() != SECRETS_PATH {
        return Err(format!(
            "not a secrets upload ({} {})",
            req.method(),
            req.path()
        ));
    }
    let sig = req
        .headers()
        .iter()
        .find(|(k, _)| k == pith_api::headers::OWNER_SIGNATURE)
        .map(|(_, v)| v.clone())
        .ok_or("missing pith-owner-signature")?;
    let sig = hex::decode(sig.trim().trim_start_matches("0x"))
        .map_err(|_| "owner signature is not hex")?;
    let upload: Upload = serde_json::from_slice(req.body()).map_err(|e| format!("body: {e}"))?;
    let digest = pith_api::binding::message_digest(
        pith_api::binding::SECRETS_TAG,
        &[&program.0, &pith_crypto::keccak256(req.body())],
        upload.version,
    );
    let signer = pith_crypto::receipt::recover(&digest, &sig)
        .map_err(|e| format!("owner signature: {e}"))?;
    let owner = node
        .contracts
        .programs
        .raw()
        .ownerOf(U256::from_be_bytes(program.0))
        .call()
        .await
        .map_err(|e| format!("ownerOf: {e}"))?;
    if signer != owner {
        return Err(format!("signed by {signer}, the owner is {owner}"));
    }
    Ok(upload)
}
