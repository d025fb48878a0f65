//! Evidence: the KMS's own (binding its identity under `KMS_REPORT_TAG`) and the checks of
//! a worker's or peer's evidence (verification, `report_data` binding, the chain's policy).

use std::sync::Arc;

use pith_api::ErrorKind;
use pith_attest::provider::EvidenceSource;
use pith_crypto::{Address, B256};

use crate::error::{KmsError, refuse};

/// Facts about verified evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The evidence bytes.
    pub bytes: Vec<u8>,
    /// Platform.
    pub platform: pith_attest::Platform,
    /// On-chain platform id.
    pub platform_id: u8,
    /// `pith_attest::measurement_hash`.
    pub measurement_hash: B256,
    /// TCB status code.
    pub tcb_status: u8,
}

/// Produces this node's evidence and verifies others'.
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

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

impl Attester {
    /// An attester over `source`; `dev_ca` is the development CA (DER or PEM) that
    /// verifies simulated evidence (without it simulated evidence never verifies);
    /// `collateral` supplies what Intel and AMD evidence need.
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

    /// Verify `bytes` and check that its `report_data` is `expected` (a refusal with
    /// `EvidenceInvalid` otherwise).
    pub fn verify(&self, bytes: &[u8], expected: &[u8; 64]) -> Result<Facts, KmsError> {
        self.verify_at(bytes, expected, now())
    }

    /// [`Attester::verify`] as of `at`.
    pub fn verify_at(
        &self,
        bytes: &[u8],
        expected: &[u8; 64],
        at: time::OffsetDateTime,
    ) -> Result<Facts, KmsError> {
        let platform = pith_attest::detect::platform(bytes)
            .ok_or_else(|| refuse(ErrorKind::EvidenceInvalid, "evidence of no known platform"))?;
        let mut options = pith_attest::VerifyOptions::default();
        options.dev_ca.clone_from(&self.dev_ca);
        let evidence = pith_attest::Evidence::new(platform, bytes.to_vec());
        let collateral = self.collateral.collateral(&evidence, at).map_err(|e| {
            refuse(
                ErrorKind::EvidenceInvalid,
                format!("evidence does not verify: {e}"),
            )
        })?;
        let bound = pith_attest::verify_bound(&evidence, &collateral, &options, expected, at)
            .map_err(|e| match e {
                pith_attest::BindingError::Rejected(e) => refuse(
                    ErrorKind::EvidenceInvalid,
                    format!("evidence does not verify: {e}"),
                ),
                pith_attest::BindingError::ReportData => refuse(
                    ErrorKind::EvidenceInvalid,
                    "evidence report_data does not bind this identity, key, network and model",
                ),
            })?;
        Ok(Facts {
            bytes: bytes.to_vec(),
            platform,
            platform_id: platform.id(),
            measurement_hash: B256::from(bound.measurement_hash),
            tcb_status: bound.tcb_status,
        })
    }

    /// This node's evidence for `chain_id` / `registry`, verified locally (so a
    /// misconfigured platform fails here, with the verifier's reason).
    pub fn own(
        &self,
        address: Address,
        enc_public_key: &[u8; 32],
        chain_id: u64,
        registry: Address,
    ) -> Result<Facts, KmsError> {
        let rd = pith_api::binding::report_data(
            pith_api::binding::KMS_REPORT_TAG,
            address,
            enc_public_key,
            chain_id,
            registry,
        );
        let bytes = self
            .source
            .quote(&rd)
            .map_err(|e| KmsError::Evidence(e.to_string()))?;
        self.verify(&bytes, &rd)
            .map_err(|e| KmsError::Evidence(format!("own evidence does not verify: {e}")))
    }
}

/// Measurement role of a worker in the Registry's allow-list.
pub const ROLE_WORKER: u8 = pith_chain::deploy::role::WORKER;
/// Measurement role of a KMS node.
pub const ROLE_KMS: u8 = pith_chain::deploy::role::KMS;

/// Check verified evidence against the Registry's policy for `role` (the same checks as the
/// contract's `_checkPolicy`): platform enabled, TCB status accepted, measurement allowed.
pub async fn check_policy(
    registry: &pith_chain::client::RegistryClient,
    facts: &Facts,
    role: u8,
) -> Result<(), KmsError> {
    let cfg = registry
        .platform_config(facts.platform_id)
        .await
        .map_err(crate::error::chain)?;
    if !cfg.enabled {
        return Err(refuse(
            ErrorKind::PolicyRejected,
            format!(
                "platform {} is not enabled on chain",
                facts.platform.as_str()
            ),
        ));
    }
    if facts.tcb_status > cfg.maxTcbStatus {
        return Err(refuse(
            ErrorKind::PolicyRejected,
            format!(
                "TCB status {} is worse than the chain accepts ({})",
                facts.tcb_status, cfg.maxTcbStatus
            ),
        ));
    }
    let allowed = registry
        .is_allowed_measurement(facts.platform_id, role, facts.measurement_hash)
        .await
        .map_err(crate::error::chain)?;
    if !allowed {
        let who = if role == ROLE_KMS { "KMS" } else { "worker" };
        return Err(refuse(
            ErrorKind::PolicyRejected,
            format!(
                "measurement {} is not allowed for the {who} role on {}",
                facts.measurement_hash,
                facts.platform.as_str()
            ),
        ));
    }
    Ok(())
}
