//! Evidence: the worker's own (binding its identity) and the programs' (`env.attestation`).
//!
//! Program evidence must never be usable as worker evidence: a program could otherwise ask
//! for evidence whose `report_data` binds a key it controls under `WORKER_REPORT_TAG` and
//! register as a worker. So the host never lets a program choose the `report_data`
//! outright; it binds the program's data under its own tag:
//!
//! ```text
//! report_data[0..32]  = keccak256("pith/v1/program-report" ‖ program_id(32) ‖ code_hash(32) ‖ data)
//! report_data[32..64] = zero
//! ```
//! (`data` = the program's up to 64 bytes). A verifier recomputes it from the program id,
//! the code hash and the data the program published.

use std::sync::Arc;

use pith_attest::provider::EvidenceSource;
use pith_crypto::{Address, B256};
use pith_sandbox::host::{AttestationProvider, BoxFuture, HostError, ProgramRef};

use crate::error::WorkerError;

/// Tag of a program's `report_data` (see the module docs).
pub const PROGRAM_REPORT_TAG: &[u8] = b"pith/v1/program-report";

/// The `report_data` bound into evidence a program asks for.
pub fn program_report_data(program_id: &[u8; 32], code_hash: &[u8; 32], data: &[u8]) -> [u8; 64] {
    let mut pre = Vec::with_capacity(PROGRAM_REPORT_TAG.len() + 64 + data.len());
    pre.extend_from_slice(PROGRAM_REPORT_TAG);
    pre.extend_from_slice(program_id);
    pre.extend_from_slice(code_hash);
    pre.extend_from_slice(data);
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&pith_crypto::keccak256(&pre));
    out
}

/// Facts about the worker's own evidence, from verifying it with the same verifier the KMS
/// uses.
#[derive(Debug, Clone)]
pub struct OwnEvidence {
    /// The evidence bytes.
    pub bytes: Vec<u8>,
    /// Platform name.
    pub platform: String,
    /// On-chain platform id.
    pub platform_id: u8,
    /// `pith_attest::measurement_hash`.
    pub measurement_hash: B256,
    /// TCB status code.
    pub tcb_status: u8,
}

/// The worker's evidence source.
#[derive(Clone)]
pub struct Attester {
    source: Arc<dyn EvidenceSource>,
    dev_ca: Option<Vec<u8>>,
    collateral: Arc<dyn pith_attest::CollateralSource>,
}

impl std::fmt::Debug for Attester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attester")
            .field("platform", &self.source.platform())
            .finish()
    }
}

impl Attester {
    /// An attester over `source`; `dev_ca` is the development CA (DER or PEM) that
    /// verifies simulated evidence; `collateral` supplies what Intel and AMD evidence need.
    pub fn new(
        source: Arc<dyn EvidenceSource>,
        dev_ca: Option<Vec<u8>>,
        collateral: Arc<dyn pith_attest::CollateralSource>,
    ) -> Self {
        Self {
            source,
            dev_ca,
            collateral,
        }
    }

    /// Evidence binding the worker identity for `chain_id` / `registry`, verified locally
    /// (so a misconfigured platform fails here, with the verifier's reason).
    pub fn worker_evidence(
        &self,
        address: Address,
        enc_public_key: &[u8; 32],
        chain_id: u64,
        registry: Address,
        model_hash: Option<&[u8; 32]>,
    ) -> Result<OwnEvidence, WorkerError> {
        let rd = pith_api::binding::report_data_with_model(
            pith_api::binding::WORKER_REPORT_TAG,
            address,
            enc_public_key,
            chain_id,
            registry,
            model_hash,
        );
        let bytes = self
            .source
            .quote(&rd)
            .map_err(|e| WorkerError::Evidence(e.to_string()))?;
        let platform = self.source.platform();
        let mut options = pith_attest::VerifyOptions::default();
        options.dev_ca.clone_from(&self.dev_ca);
        let evidence = pith_attest::Evidence::new(platform, bytes.clone());
        let now = time_now();
        let collateral = self
            .collateral
            .collateral(&evidence, now)
            .map_err(|e| WorkerError::Evidence(format!("own evidence: no collateral: {e}")))?;
        let bound =
            pith_attest::verify_bound(&evidence, &collateral, &options, &rd, now).map_err(|e| {
                match e {
                    pith_attest::BindingError::Rejected(e) => {
                        WorkerError::Evidence(format!("own evidence does not verify: {e}"))
                    }
                    pith_attest::BindingError::ReportData => WorkerError::Evidence(
                        "own evidence does not carry the identity binding".into(),
                    ),
                }
            })?;
        Ok(OwnEvidence {
            bytes,
            platform: platform.as_str().to_owned(),
            platform_id: platform.id(),
            measurement_hash: B256::from(bound.measurement_hash),
            tcb_status: bound.tcb_status,
        })
    }
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

impl AttestationProvider for Attester {
    fn attest<'a>(
        &'a self,
        program: &'a ProgramRef,
        report_data: Vec<u8>,
    ) -> BoxFuture<'a, Result<Vec<u8>, HostError>> {
        Box::pin(async move {
            if report_data.len() > 64 {
                return Err(HostError::Invalid(
                    "report data must be at most 64 bytes".into(),
                ));
            }
            let id = pith_crypto::keytree::ProgramId::from_hex(&program.id)
                .map_err(|e| HostError::Invalid(e.to_string()))?;
            let rd = program_report_data(&id.0, &program.code_hash, &report_data);
            let source = self.source.clone();
            tokio::task::spawn_blocking(move || source.quote(&rd))
                .await
                .map_err(|e| HostError::Failed(e.to_string()))?
                .map_err(|e| HostError::Failed(format!("evidence: {e}")))
        })
    }
}
