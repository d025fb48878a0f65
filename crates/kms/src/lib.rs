//! # pith-kms
//!
//! The Pith key management service (`pith kms`).
//!
//! - Identity ([`identity`]): secp256k1 + X25519 keys generated inside the TEE at first
//!   start, sealed to the state directory (`pith_attest::sealing`; simulated platform: a
//!   local sealing key), bound into the node's evidence under `KMS_REPORT_TAG`.
//! - Master keys ([`store`]): generated inside at bootstrap (epoch 0), one per epoch,
//!   sealed in an embedded redb database; old epochs are kept for decryption.
//! - Worker registration: evidence verified with `pith_attest` (the development CA for the
//!   simulated platform), `report_data` binding checked, measurement, platform and TCB
//!   checked against the Registry's worker policy, then the EIP-712 `WorkerRegistration`
//!   signed.
//! - Key release: the worker's signed, fresh request; evidence re-verified; its keccak256
//!   must be the evidence hash of the worker's active Registry record; the program's keys
//!   for every epoch sealed to the worker's attested X25519 key (`pith_crypto::transport`,
//!   context `program_id ‖ worker`).
//! - Key certificates: the program's `application/ohttp-keys` (every epoch) with the KMS's
//!   EIP-712 certificate.
//! - Replication: a committee member asks a peer for the master keys; each side verifies
//!   the other's evidence against the Registry's KMS allow-list and committee.
//! - Rotation: the node follows `Registry.kmsKeyEpoch` (ordered by governance).
//!
//! See `docs/protocol.md` ("KMS") and `docs/adr/0070-kms.md`.

pub mod error;
pub mod evidence;
pub mod identity;
pub mod node;
pub mod server;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

pub use error::KmsError;
pub use node::{Config, Kms};
use tokio_util::sync::CancellationToken;

/// A started KMS node.
#[derive(Debug)]
pub struct Running {
    /// The node.
    pub kms: Arc<Kms>,
    /// The bound address.
    pub addr: SocketAddr,
    /// Ends when the node has stopped.
    pub done: tokio::task::JoinHandle<Result<(), KmsError>>,
}

/// Open the node, bind the listener, start the chain loop. Cancel `shutdown` to stop.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, KmsError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| KmsError::State(format!("bind {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| KmsError::State(e.to_string()))?;
    let mut config = config;
    config.listen = addr;
    let kms = Kms::open(config)?;
    let chain_loop = {
        let kms = kms.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                kms.tick().await;
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(kms.config().poll) => {}
                }
            }
        })
    };
    let app = server::router(kms.clone());
    let stop = shutdown.clone();
    let done = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        chain_loop.abort();
        let _ = chain_loop.await;
        served.map_err(|e| KmsError::State(format!("server: {e}")))?;
        tracing::info!(target: "pith::kms", "stopped");
        Ok(())
    });
    Ok(Running { kms, addr, done })
}
