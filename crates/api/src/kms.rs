//! KMS HTTP API (`pith kms`). All bodies JSON; errors as [`crate::ErrorBody`].
//!
//! | method | path | body → answer |
//! |---|---|---|
//! | GET  | [`INFO`] | → [`KmsInfo`] |
//! | GET  | [`HEALTH`] | → `{"ok": true}` |
//! | POST | [`REGISTER_WORKER`] | [`RegisterWorkerRequest`] → [`RegisterWorkerResponse`] |
//! | POST | [`KEY_RELEASE`] | [`KeyReleaseRequest`] → [`KeyReleaseResponse`] |
//! | GET  | [`PROGRAM_KEY`] (`{id}` = program id, `0x`-hex 32 bytes) | → [`ProgramKeyInfo`] |
//! | POST | [`REPLICATE`] | [`ReplicateRequest`] → [`ReplicateResponse`] |

use pith_crypto::certify::KeyCertificate;
use pith_crypto::{Address, B256};
use serde::{Deserialize, Serialize};

/// `GET` the KMS's identity.
pub const INFO: &str = "/v1/kms/info";
/// `GET` liveness.
pub const HEALTH: &str = "/v1/kms/health";
/// `POST` a worker's evidence; answer: the KMS's EIP-712 registration signature.
pub const REGISTER_WORKER: &str = "/v1/kms/workers/register";
/// `POST` key release to an attested, registered worker.
pub const KEY_RELEASE: &str = "/v1/kms/keys/release";
/// `GET` a program's public key configuration and certificate (axum path syntax).
pub const PROGRAM_KEY: &str = "/v1/kms/programs/{id}/key";
/// `POST` master-key replication between KMS nodes (mutual attestation).
pub const REPLICATE: &str = "/v1/kms/replicate";

/// A KMS node's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsInfo {
    /// The KMS's secp256k1 identity (a member of the Registry's KMS committee).
    pub address: Address,
    /// Platform name (`pith_attest::Platform` name, e.g. `"simulated"`, `"tdx"`).
    pub platform: String,
    /// Platform id (on-chain code).
    pub platform_id: u8,
    /// Measurement hash of its evidence.
    pub measurement_hash: B256,
    /// TCB status code of its evidence.
    pub tcb_status: u8,
    /// Its evidence (binds `address` and `enc_public_key`, see [`crate::binding`]).
    #[serde(with = "crate::hexser::bytes")]
    pub evidence: Vec<u8>,
    /// X25519 key for key transport to this KMS.
    #[serde(with = "crate::hexser::bytes32")]
    pub enc_public_key: [u8; 32],
    /// Chain id it serves.
    pub chain_id: u64,
    /// Registry address it serves.
    pub registry: Address,
    /// Current master-key epoch; `None` before the KMS holds a master key.
    pub epoch: Option<u32>,
    /// Every epoch it holds (old epochs are kept for decryption).
    pub epochs: Vec<u32>,
}

/// A worker asks the KMS to sign its registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterWorkerRequest {
    /// Worker identity address.
    pub worker: Address,
    /// Operator (StakePools pool owner) the worker registers under.
    pub operator: Address,
    /// Worker's X25519 key-transport public key (bound in `report_data`).
    #[serde(with = "crate::hexser::bytes32")]
    pub enc_public_key: [u8; 32],
    /// Worker evidence whose `report_data` is `binding::report_data_with_model(WORKER_REPORT_TAG,
    /// worker, enc_public_key, chain_id, registry, model_hash)`.
    #[serde(with = "crate::hexser::bytes")]
    pub evidence: Vec<u8>,
    /// SHA-256 of the model file the worker serves (bound in its `report_data`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_hash: Option<B256>,
}

/// The Registry's `WorkerRegistration` struct as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRegistration {
    /// Worker address.
    pub worker: Address,
    /// Operator address.
    pub operator: Address,
    /// Platform id.
    pub platform: u8,
    /// Measurement hash computed by the KMS from the verified evidence.
    pub measurement_hash: B256,
    /// TCB status code.
    pub tcb_status: u8,
    /// keccak256 of the evidence bytes.
    pub evidence_hash: B256,
    /// Unix seconds.
    pub expiry: u64,
}

/// The KMS's answer: the registration it vouches for and its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterWorkerResponse {
    /// The registration to submit to `Registry.registerWorker`.
    pub registration: WorkerRegistration,
    /// The signing KMS member.
    pub kms: Address,
    /// 65-byte EIP-712 signature over the registration digest (domain "Pith Registry").
    #[serde(with = "crate::hexser::bytes")]
    pub signature: Vec<u8>,
}

/// A registered worker asks for a program's keys.
///
/// `signature` is the worker key's signature over
/// `binding::message_digest(KEY_RELEASE_TAG, [worker, program_id, enc_public_key], timestamp)`.
/// The KMS re-verifies `evidence` against the chain's worker policy, checks that
/// `keccak256(evidence)` is the evidence hash the Registry holds for the active worker, and
/// seals the keys to `enc_public_key` (which the evidence binds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyReleaseRequest {
    /// Worker address.
    pub worker: Address,
    /// Program id.
    pub program_id: B256,
    /// Worker's X25519 key-transport public key.
    #[serde(with = "crate::hexser::bytes32")]
    pub enc_public_key: [u8; 32],
    /// The worker's evidence (as registered).
    #[serde(with = "crate::hexser::bytes")]
    pub evidence: Vec<u8>,
    /// The model hash its evidence binds, if any (see [`RegisterWorkerRequest::model_hash`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_hash: Option<B256>,
    /// Unix seconds.
    pub timestamp: u64,
    /// 65-byte signature.
    #[serde(with = "crate::hexser::bytes")]
    pub signature: Vec<u8>,
}

/// Sealed program keys for every epoch the KMS holds, plus the public half.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyReleaseResponse {
    /// Program id.
    pub program_id: B256,
    /// The releasing KMS.
    pub kms: Address,
    /// Epochs in `sealed`, oldest first.
    pub epochs: Vec<u32>,
    /// HPKE-sealed program key bundle (format in `pith_crypto::transport`, docs/protocol.md).
    #[serde(with = "crate::hexser::bytes")]
    pub sealed: Vec<u8>,
    /// The public key configuration and its certificate (same as [`PROGRAM_KEY`]).
    pub key: ProgramKeyInfo,
}

/// A program's public key configuration (`application/ohttp-keys`, all epochs, newest
/// last) and the KMS certificate over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramKeyInfo {
    /// Program id.
    pub program_id: B256,
    /// The `application/ohttp-keys` body.
    #[serde(with = "crate::hexser::bytes")]
    pub ohttp_keys: Vec<u8>,
    /// KMS certificate over `keccak256(ohttp_keys)`.
    pub certificate: KeyCertificate,
}

/// A KMS node asks a peer for the master keys.
///
/// `signature` = requester's signature over
/// `binding::message_digest(REPLICATE_TAG, [kms, enc_public_key], timestamp)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicateRequest {
    /// Requesting KMS address (must be a committee member on chain).
    pub kms: Address,
    /// Requester's X25519 key-transport public key.
    #[serde(with = "crate::hexser::bytes32")]
    pub enc_public_key: [u8; 32],
    /// Requester's evidence (`KMS_REPORT_TAG` binding), checked against the KMS allow-list.
    #[serde(with = "crate::hexser::bytes")]
    pub evidence: Vec<u8>,
    /// Unix seconds.
    pub timestamp: u64,
    /// 65-byte signature.
    #[serde(with = "crate::hexser::bytes")]
    pub signature: Vec<u8>,
}

/// The peer's answer; the requester verifies the responder's evidence against the same
/// allow-list before it accepts the keys (mutual attestation).
///
/// `signature` = responder's signature over
/// `binding::message_digest(REPLICATE_REPLY_TAG, [kms, requester, keccak256(sealed)], timestamp)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicateResponse {
    /// Responding KMS address.
    pub kms: Address,
    /// Responder's X25519 public key (bound in its evidence).
    #[serde(with = "crate::hexser::bytes32")]
    pub enc_public_key: [u8; 32],
    /// Responder's evidence.
    #[serde(with = "crate::hexser::bytes")]
    pub evidence: Vec<u8>,
    /// Epochs in `sealed`, oldest first.
    pub epochs: Vec<u32>,
    /// HPKE-sealed master keys (format in `pith_crypto::transport`).
    #[serde(with = "crate::hexser::bytes")]
    pub sealed: Vec<u8>,
    /// Unix seconds.
    pub timestamp: u64,
    /// 65-byte signature.
    #[serde(with = "crate::hexser::bytes")]
    pub signature: Vec<u8>,
}
