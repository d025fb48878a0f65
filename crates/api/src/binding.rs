//! Identity binding and small signed messages.
//!
//! ## `report_data` (64 bytes bound into a node's evidence)
//!
//! ```text
//! report_data[0..32]  = keccak256(tag ‖ address[20] ‖ enc_public_key[32] ‖ be64(chain_id) ‖ registry[20])
//! report_data[32..64] = model_hash: SHA-256 of the model file a worker serves (confidential
//!                       AI), or zero (no model; always zero for a KMS node)
//! ```
//! with `tag` = [`WORKER_REPORT_TAG`] or [`KMS_REPORT_TAG`]. `address` is the node's
//! secp256k1 identity (its Ethereum address), `enc_public_key` its X25519 key for key
//! transport; both are generated inside the TEE. Binding the chain id and Registry address
//! means evidence made for one network cannot be replayed on another.
//!
//! ## Signed messages
//!
//! ```text
//! digest    = keccak256(tag ‖ 0x00 ‖ (be32(len f) ‖ f) for each field f ‖ be64(timestamp))
//! signature = r ‖ s ‖ v (65 bytes, v ∈ {27, 28}, low s) over `digest` as a prehash
//! ```
//! (`pith_crypto::receipt::sign_hash` / `recover`). The receiver checks the recovered
//! address and that `timestamp` is within [`MAX_CLOCK_SKEW_SECS`] of its clock.

use pith_crypto::{Address, B256, keccak256};

/// Tag of a worker's `report_data`.
pub const WORKER_REPORT_TAG: &[u8] = b"pith/v1/worker-report";
/// Tag of a KMS node's `report_data`.
pub const KMS_REPORT_TAG: &[u8] = b"pith/v1/kms-report";

/// Worker → KMS: release a program's keys. Fields: worker address, program id, enc public key.
pub const KEY_RELEASE_TAG: &str = "pith/v1/key-release";
/// KMS → KMS: request replication of the master keys. Fields: requester address, enc public key.
pub const REPLICATE_TAG: &str = "pith/v1/kms-replicate";
/// KMS → KMS: the answer to a replication request. Fields: responder, requester, keccak256(sealed).
pub const REPLICATE_REPLY_TAG: &str = "pith/v1/kms-replicate-reply";
/// Worker → gateway: announce the worker's URL. Fields: worker address, URL bytes.
pub const ANNOUNCE_TAG: &str = "pith/v1/worker-announce";
/// Owner → worker (inside an encrypted secrets upload): fields program id, keccak256(secrets JSON).
/// The timestamp is the secrets version (strictly increasing per program).
pub const SECRETS_TAG: &str = "pith/v1/secrets";
/// Owner → gateway/worker: read a program's logs. Fields: program id.
pub const LOGS_TAG: &str = "pith/v1/program-logs";
/// Tag of an owner's agent triggers (`pith_api::agent`).
pub const TRIGGERS_TAG: &str = "pith/v1/triggers";

/// Largest accepted difference between a signed message's timestamp and the receiver's clock.
pub const MAX_CLOCK_SKEW_SECS: u64 = 120;

/// Compute the 64-byte `report_data` for a node identity without a model.
pub fn report_data(
    tag: &[u8],
    address: Address,
    enc_public_key: &[u8; 32],
    chain_id: u64,
    registry: Address,
) -> [u8; 64] {
    report_data_with_model(tag, address, enc_public_key, chain_id, registry, None)
}

/// The model hash a `report_data` binds: bytes 32..64, `None` when they are zero (or the
/// input is not 64 bytes).
pub fn bound_model_hash(report_data: &[u8]) -> Option<[u8; 32]> {
    let m: [u8; 32] = report_data.get(32..64)?.try_into().ok()?;
    (m != [0u8; 32]).then_some(m)
}

/// Compute the 64-byte `report_data` for a node identity and, for a worker serving a
/// model, the SHA-256 of its model file (bytes 32..64).
pub fn report_data_with_model(
    tag: &[u8],
    address: Address,
    enc_public_key: &[u8; 32],
    chain_id: u64,
    registry: Address,
    model_hash: Option<&[u8; 32]>,
) -> [u8; 64] {
    let mut pre = Vec::with_capacity(tag.len() + 20 + 32 + 8 + 20);
    pre.extend_from_slice(tag);
    pre.extend_from_slice(address.as_slice());
    pre.extend_from_slice(enc_public_key);
    pre.extend_from_slice(&chain_id.to_be_bytes());
    pre.extend_from_slice(registry.as_slice());
    let h = keccak256(&pre);
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&h);
    if let Some(m) = model_hash {
        out[32..].copy_from_slice(m);
    }
    out
}

/// Digest of a signed message (see the module docs).
pub fn message_digest(tag: &str, fields: &[&[u8]], timestamp: u64) -> B256 {
    let mut pre =
        Vec::with_capacity(tag.len() + 1 + 8 + fields.iter().map(|f| f.len() + 4).sum::<usize>());
    pre.extend_from_slice(tag.as_bytes());
    pre.push(0);
    for f in fields {
        // Fields are small (addresses, hashes, URLs); a field over 4 GiB cannot occur here,
        // and saturating keeps the function total.
        let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
        pre.extend_from_slice(&len.to_be_bytes());
        pre.extend_from_slice(f);
    }
    pre.extend_from_slice(&timestamp.to_be_bytes());
    B256::from(keccak256(&pre))
}

/// True when `timestamp` is within [`MAX_CLOCK_SKEW_SECS`] of `now`.
pub fn fresh(timestamp: u64, now: u64) -> bool {
    timestamp.abs_diff(now) <= MAX_CLOCK_SKEW_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_data_binds_every_field() {
        let a = Address::repeat_byte(1);
        let r = Address::repeat_byte(2);
        let base = report_data(WORKER_REPORT_TAG, a, &[3; 32], 31337, r);
        assert_eq!(&base[32..], &[0u8; 32]);
        assert_ne!(base, report_data(KMS_REPORT_TAG, a, &[3; 32], 31337, r));
        assert_ne!(
            base,
            report_data(
                WORKER_REPORT_TAG,
                Address::repeat_byte(9),
                &[3; 32],
                31337,
                r
            )
        );
        assert_ne!(base, report_data(WORKER_REPORT_TAG, a, &[4; 32], 31337, r));
        assert_ne!(base, report_data(WORKER_REPORT_TAG, a, &[3; 32], 1, r));
        assert_ne!(
            base,
            report_data(
                WORKER_REPORT_TAG,
                a,
                &[3; 32],
                31337,
                Address::repeat_byte(9)
            )
        );
        let with_model =
            report_data_with_model(WORKER_REPORT_TAG, a, &[3; 32], 31337, r, Some(&[5; 32]));
        assert_eq!(with_model[..32], base[..32]);
        assert_eq!(bound_model_hash(&with_model), Some([5; 32]));
        assert_eq!(bound_model_hash(&base), None);
        assert_eq!(bound_model_hash(&base[..40]), None);
    }

    #[test]
    fn message_digest_is_length_prefixed() {
        // Moving a byte between fields changes the digest.
        let d1 = message_digest(ANNOUNCE_TAG, &[b"ab", b"c"], 5);
        let d2 = message_digest(ANNOUNCE_TAG, &[b"a", b"bc"], 5);
        assert_ne!(d1, d2);
        assert_ne!(d1, message_digest(ANNOUNCE_TAG, &[b"ab", b"c"], 6));
        assert_ne!(d1, message_digest(LOGS_TAG, &[b"ab", b"c"], 5));
    }

    #[test]
    fn freshness_window() {
        assert!(fresh(1000, 1000 + MAX_CLOCK_SKEW_SECS));
        assert!(!fresh(1000, 1001 + MAX_CLOCK_SKEW_SECS));
        assert!(fresh(1000 + MAX_CLOCK_SKEW_SECS, 1000));
    }
}
