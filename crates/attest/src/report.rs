//! The one result type shared by every platform.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, ErrorClass};

/// A TEE platform. The identifiers (`as_str`) and numeric ids (`id`) are defined in
/// `docs/protocol.md` and shared with the contracts and the KMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Platform {
    /// Intel SGX, DCAP quote v3.
    #[serde(rename = "sgx")]
    Sgx,
    /// Intel TDX, DCAP quote v4/v5.
    #[serde(rename = "tdx")]
    Tdx,
    /// AMD SEV-SNP attestation report.
    #[serde(rename = "sev-snp")]
    SevSnp,
    /// AWS Nitro Enclaves attestation document.
    #[serde(rename = "nitro")]
    Nitro,
    /// NVIDIA GPU / NVSwitch SPDM measurement report.
    #[serde(rename = "nvidia-gpu")]
    NvidiaGpu,
    /// Development platform: evidence signed by a per-network development CA. Never trusted
    /// by the production policy.
    #[serde(rename = "simulated")]
    Simulated,
}

impl Platform {
    /// Every platform, in id order.
    pub const ALL: [Platform; 6] = [
        Platform::Sgx,
        Platform::Tdx,
        Platform::SevSnp,
        Platform::Nitro,
        Platform::NvidiaGpu,
        Platform::Simulated,
    ];

    /// Stable text identifier.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sgx => "sgx",
            Self::Tdx => "tdx",
            Self::SevSnp => "sev-snp",
            Self::Nitro => "nitro",
            Self::NvidiaGpu => "nvidia-gpu",
            Self::Simulated => "simulated",
        }
    }

    /// Stable numeric identifier used on chain (`docs/protocol.md`).
    pub fn id(self) -> u8 {
        match self {
            Self::Sgx => 1,
            Self::Tdx => 2,
            Self::SevSnp => 3,
            Self::Nitro => 4,
            Self::NvidiaGpu => 5,
            Self::Simulated => 255,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Error::new(ErrorClass::Unsupported, format!("unknown platform {s:?}")))
    }
}

/// Intel TCB status after convergence of platform, QE and TDX-module levels. The numeric
/// encoding (`code`) is defined in `docs/protocol.md` and used on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TcbStatus {
    /// `UpToDate`
    UpToDate,
    /// `SWHardeningNeeded`
    #[serde(rename = "SWHardeningNeeded")]
    SwHardeningNeeded,
    /// `ConfigurationNeeded`
    ConfigurationNeeded,
    /// `ConfigurationAndSWHardeningNeeded`
    #[serde(rename = "ConfigurationAndSWHardeningNeeded")]
    ConfigurationAndSwHardeningNeeded,
    /// `OutOfDate`
    OutOfDate,
    /// `OutOfDateConfigurationNeeded`
    OutOfDateConfigurationNeeded,
    /// `Revoked`
    Revoked,
}

impl TcbStatus {
    /// Every status, best first.
    pub const ALL: [TcbStatus; 7] = [
        TcbStatus::UpToDate,
        TcbStatus::SwHardeningNeeded,
        TcbStatus::ConfigurationNeeded,
        TcbStatus::ConfigurationAndSwHardeningNeeded,
        TcbStatus::OutOfDate,
        TcbStatus::OutOfDateConfigurationNeeded,
        TcbStatus::Revoked,
    ];

    /// Intel's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpToDate => "UpToDate",
            Self::SwHardeningNeeded => "SWHardeningNeeded",
            Self::ConfigurationNeeded => "ConfigurationNeeded",
            Self::ConfigurationAndSwHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            Self::OutOfDate => "OutOfDate",
            Self::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            Self::Revoked => "Revoked",
        }
    }

    /// On-chain code: 0 is best; a larger code is never better. Platforms without a TCB
    /// status use 0 (see `docs/protocol.md`).
    pub fn code(self) -> u8 {
        match self {
            Self::UpToDate => 0,
            Self::SwHardeningNeeded => 1,
            Self::ConfigurationNeeded => 2,
            Self::ConfigurationAndSwHardeningNeeded => 3,
            Self::OutOfDate => 4,
            Self::OutOfDateConfigurationNeeded => 5,
            Self::Revoked => 6,
        }
    }
}

impl fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TcbStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        TcbStatus::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| Error::malformed(format!("unknown TCB status {s:?}")))
    }
}

/// A validity window: the intersection of the validity of every time-bounded object used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Earliest instant at which every object is valid.
    pub start: OffsetDateTime,
    /// Latest instant at which every object is valid.
    pub end: OffsetDateTime,
}

impl Window {
    /// The unbounded window.
    pub fn unbounded() -> Self {
        Self {
            start: OffsetDateTime::UNIX_EPOCH,
            end: far_future(),
        }
    }

    /// Narrow this window to its intersection with `[start, end]`.
    pub fn narrow(&mut self, start: OffsetDateTime, end: OffsetDateTime) {
        if start > self.start {
            self.start = start;
        }
        if end < self.end {
            self.end = end;
        }
    }
}

/// 9999-12-31T23:59:59Z, the X.509 "no well-defined expiration" value.
pub fn far_future() -> OffsetDateTime {
    time::macros::datetime!(9999-12-31 23:59:59 UTC)
}

/// A measurement value as it appears in output: lowercase hex for binary values, or text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Binary value, printed as lowercase hex.
    Bytes(Vec<u8>),
    /// Text value (for example an NVIDIA driver version).
    Text(String),
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Bytes(b) => s.serialize_str(&hex::encode(b)),
            Value::Text(t) => s.serialize_str(t),
        }
    }
}

/// Named measurements. Keys are stable and documented in `docs/protocol.md`:
/// SGX `mr_enclave`, `mr_signer`, `isv_prod_id`, `isv_svn`; TDX `mr_td`, `mr_seam`,
/// `mr_signer_seam`, `mr_config_id`, `mr_owner`, `mr_owner_config`, `rtmr0`..`rtmr3`;
/// SNP `measurement`, `host_data`, `id_key_digest`, `author_key_digest`; Nitro `pcr0`..;
/// NVIDIA `driver_version`, `vbios_version`, `gpu{i}_block{n}`; simulated as TDX.
pub type Measurements = BTreeMap<String, Value>;

/// What the evidence says. Inside [`Verified`] these claims are authenticated; in a
/// [`Rejected`] they are not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Claims {
    /// Named measurements.
    pub measurements: Measurements,
    /// SGX/TDX REPORTDATA, SNP REPORT_DATA, simulated report_data (64 bytes).
    pub report_data: Option<Vec<u8>>,
    /// Nitro `user_data`.
    pub user_data: Option<Vec<u8>>,
    /// Nitro / NVIDIA nonce.
    pub nonce: Option<Vec<u8>>,
    /// Nitro `public_key`.
    pub public_key: Option<Vec<u8>>,
    /// Debug mode (SGX DEBUG attribute, TD DEBUG, SNP policy DEBUG, Nitro all-zero PCR0).
    pub debug: Option<bool>,
    /// Policy-relevant properties reported as fields (e.g. `sept_ve_disable`,
    /// `migration_agent`, `vmpl`, `service_td`), see `docs/protocol.md`.
    pub properties: BTreeMap<String, serde_json::Value>,
}

/// Successfully verified evidence. Only this crate can construct it: holding one proves
/// that `verify` accepted the evidence at the given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    platform: Platform,
    claims: Claims,
    tcb_status: Option<TcbStatus>,
    advisory_ids: Option<Vec<String>>,
    window: Window,
    verified_at: OffsetDateTime,
    warnings: Vec<String>,
}

impl Verified {
    /// Crate-private constructor: only verifiers in this crate make proofs.
    pub(crate) fn new(
        platform: Platform,
        claims: Claims,
        tcb_status: Option<TcbStatus>,
        advisory_ids: Option<Vec<String>>,
        window: Window,
        verified_at: OffsetDateTime,
    ) -> Self {
        Self {
            platform,
            claims,
            tcb_status,
            advisory_ids,
            window,
            verified_at,
            warnings: Vec::new(),
        }
    }

    /// Add a warning (for example a collateral check skipped in lenient mode).
    pub(crate) fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings.extend(warnings);
        self
    }

    /// The platform.
    pub fn platform(&self) -> Platform {
        self.platform
    }
    /// The authenticated claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }
    /// Named measurements.
    pub fn measurements(&self) -> &Measurements {
        &self.claims.measurements
    }
    /// REPORTDATA / REPORT_DATA, where the platform has it.
    pub fn report_data(&self) -> Option<&[u8]> {
        self.claims.report_data.as_deref()
    }
    /// Intel TCB status after convergence; `None` for other platforms.
    pub fn tcb_status(&self) -> Option<TcbStatus> {
        self.tcb_status
    }
    /// Sorted advisory IDs (Intel); `None` where not applicable.
    pub fn advisory_ids(&self) -> Option<&[String]> {
        self.advisory_ids.as_deref()
    }
    /// Validity window of the collateral and certificates used.
    pub fn window(&self) -> Window {
        self.window
    }
    /// The instant the evidence was verified at.
    pub fn verified_at(&self) -> OffsetDateTime {
        self.verified_at
    }
    /// Checks skipped or notes from a lenient verification.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Evidence that did not verify: why, and what it claimed (unauthenticated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The platform, when it could be determined.
    pub platform: Option<Platform>,
    /// Why verification failed.
    pub error: Error,
    /// What could be parsed before the failure. Never trust these.
    pub unverified: Option<Claims>,
}

impl Rejected {
    /// A rejection with no parsed claims.
    pub fn new(platform: Option<Platform>, error: Error) -> Self {
        Self {
            platform,
            error,
            unverified: None,
        }
    }
    /// Attach what was parsed.
    pub fn with_claims(mut self, claims: Claims) -> Self {
        self.unverified = Some(claims);
        self
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.platform {
            Some(p) => write!(f, "{p} evidence rejected: {}", self.error),
            None => write!(f, "evidence rejected: {}", self.error),
        }
    }
}

impl std::error::Error for Rejected {}
