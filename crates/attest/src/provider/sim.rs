//! Simulated evidence: signed by an attestation key that the local network's development
//! CA certifies (`crate::simulated`), measuring the running executable.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::{EvidenceSource, ProviderError};
use crate::Platform;
use crate::simulated::{AttestationKey, DevCa, SimulatedReport, current_exe_sha384};

/// Renew the attestation key when less than this much validity is left.
const RENEW_MARGIN: Duration = Duration::from_secs(24 * 3600);

/// How to produce simulated evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedOptions {
    /// Directory with `dev-ca.pem` and `dev-ca.key`. Default `.pith`.
    pub dev_ca_dir: PathBuf,
    /// Create the CA (and directory) if absent. Default `false`: a missing CA is an error.
    pub create: bool,
    /// Configuration bytes measured into `mr_config_id` (and so `mr_td`). Default empty.
    pub config: Vec<u8>,
    /// `mr_owner`. Default zero.
    pub mr_owner: [u8; 48],
    /// `rtmr0..3`. Default zero.
    pub rtmr: [[u8; 48]; 4],
    /// Report debug mode. Default `false`.
    pub debug: bool,
    /// SHA-384 of the measured binary. Default `None`: the running executable's.
    pub binary_sha384: Option<[u8; 48]>,
}

impl Default for SimulatedOptions {
    fn default() -> Self {
        Self {
            dev_ca_dir: PathBuf::from(".pith"),
            create: false,
            config: Vec::new(),
            mr_owner: [0; 48],
            rtmr: [[0; 48]; 4],
            debug: false,
            binary_sha384: None,
        }
    }
}

/// Simulated evidence source.
#[derive(Debug)]
pub struct SimulatedSource {
    ca: DevCa,
    ak: Mutex<AttestationKey>,
    template: SimulatedReport,
}

impl SimulatedSource {
    /// Load (or, with `create`, initialise) the CA in `options.dev_ca_dir` and measure the
    /// binary.
    pub fn open(options: &SimulatedOptions) -> Result<Self, ProviderError> {
        let now = SystemTime::now();
        let ca = if options.create {
            DevCa::init(&options.dev_ca_dir, now)?
        } else {
            DevCa::load(&options.dev_ca_dir)?
        };
        Self::new(ca, options)
    }

    /// A source over an in-memory CA (its directory in `options` is ignored).
    pub fn new(ca: DevCa, options: &SimulatedOptions) -> Result<Self, ProviderError> {
        let binary = match options.binary_sha384 {
            Some(b) => b,
            None => current_exe_sha384().map_err(ProviderError::Measure)?,
        };
        let mut template = SimulatedReport::new([0; 64], binary, &options.config);
        template.mr_owner = options.mr_owner;
        template.rtmr = options.rtmr;
        template.debug = options.debug;
        let ak = ca.issue_attestation_key(SystemTime::now())?;
        Ok(Self {
            ca,
            ak: Mutex::new(ak),
            template,
        })
    }

    /// The CA certificate (DER) verifiers need.
    pub fn dev_ca_der(&self) -> &[u8] {
        self.ca.cert_der()
    }

    /// The `mr_td` of the evidence this source produces.
    pub fn mr_td(&self) -> [u8; 48] {
        self.template.mr_td()
    }
}

impl EvidenceSource for SimulatedSource {
    fn platform(&self) -> Platform {
        Platform::Simulated
    }

    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, ProviderError> {
        let now = SystemTime::now();
        let mut ak = self
            .ak
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if ak.not_after() < now.checked_add(RENEW_MARGIN).unwrap_or(now) {
            *ak = self.ca.issue_attestation_key(now)?;
            tracing::info!(target: "pith_attest::provider", "renewed simulated attestation key");
        }
        let mut report = self.template.clone();
        report.report_data = *report_data;
        Ok(report.sign(&ak, now)?)
    }
}

/// The measurement hash ([`crate::measurement_hash`]) of the simulated evidence this
/// executable produces with default options (a throw-away development CA; the measurement
/// does not depend on the CA): what a local network allows for its KMS and workers, and what
/// the tests allow for nodes started in their process.
pub fn local_measurement_hash() -> Result<[u8; 32], ProviderError> {
    let ca = DevCa::generate(SystemTime::now())?;
    let der = ca.cert_der().to_vec();
    let evidence = SimulatedSource::new(ca, &SimulatedOptions::default())?.quote(&[0; 64])?;
    let mut options = crate::VerifyOptions::default();
    options.dev_ca = Some(der);
    let verified = crate::verify(
        &crate::Evidence::new(Platform::Simulated, evidence),
        &crate::Collateral::default(),
        &options,
        time::OffsetDateTime::now_utc(),
    )
    .map_err(|e| ProviderError::OwnEvidence(e.to_string()))?;
    Ok(crate::measurement_hash(&verified))
}
