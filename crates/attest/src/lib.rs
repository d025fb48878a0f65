//! # pith-attest
//!
//! Parse and verify remote-attestation evidence from Intel SGX (DCAP quote v3), Intel TDX
//! (quote v4/v5), AMD SEV-SNP, AWS Nitro Enclaves, NVIDIA GPUs/NVSwitches (SPDM) and the
//! `simulated` development platform, with one result type.
//!
//! Verification is pure and synchronous: [`verify`] takes the evidence, the collateral,
//! options and the instant to verify at, and returns a [`Verified`] proof (which no other
//! crate can construct) or a [`Rejected`] with a classified [`Error`]. Fetching collateral
//! is a separate step. Appraisal against a policy is separate from verification,
//! as in the IETF RATS model ([`policy`]). Input files are decoded and their platform
//! detected by [`detect`]; [`measurement_hash`] is the allow-list identifier.
//!
//! ```no_run
//! use pith_attest::{verify, Collateral, Evidence, Platform, VerifyOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let evidence = Evidence::new(Platform::Tdx, std::fs::read("quote.bin")?);
//! let collateral = Collateral::from_dir("collateral/".as_ref())?;
//! let now = time::OffsetDateTime::now_utc();
//! let verified = verify(&evidence, &collateral, &VerifyOptions::default(), now)?;
//! println!("{:?} {:?}", verified.platform(), verified.tcb_status());
//! # Ok(()) }
//! ```

pub mod collateral;
pub mod detect;
pub mod error;
#[cfg(feature = "fetch")]
pub mod fetch;
pub mod measurement;
pub mod policy;
pub mod provider;
pub mod report;
pub mod sealing;
pub mod simulated;
pub mod x509;

mod cbor;
mod intel;
mod nitro;
mod nvidia;
mod snp;

use time::OffsetDateTime;

pub use collateral::{Collateral, CollateralSource, FixedCollateral, NoCollateral};
pub use error::{Error, ErrorClass, Result};
pub use measurement::measurement_hash;
pub use policy::{Appraisal, Policy, appraise};
pub use report::{Claims, Measurements, Platform, Rejected, TcbStatus, Value, Verified, Window};
pub use snp::Product;

/// Evidence bytes with the platform they claim to come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    platform: Platform,
    bytes: Vec<u8>,
}

impl Evidence {
    /// Evidence of `platform`, as raw bytes (binary, not hex or base64).
    pub fn new(platform: Platform, bytes: Vec<u8>) -> Self {
        Self { platform, bytes }
    }
    /// The claimed platform.
    pub fn platform(&self) -> Platform {
        self.platform
    }
    /// The raw bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Options for [`verify`]. Defaults are the strict, secure ones.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Skip an absent Intel PCK CRL or QE identity (and only those checks), listing what was
    /// skipped in [`Verified::warnings`]. Default `false`: absent collateral is
    /// `missing_collateral`.
    pub lenient_collateral: bool,
    /// The development CA certificate (PEM or DER) that signs simulated evidence. Without
    /// it, simulated evidence is rejected with `bad_chain`.
    pub dev_ca: Option<Vec<u8>>,
}

/// The byte range of the evidence covered by its signature (for property tests and fuzzing),
/// or `None` when the bytes do not parse far enough to tell or the format is not binary.
pub fn signed_region(evidence: &Evidence) -> Option<std::ops::Range<usize>> {
    let bytes = &evidence.bytes;
    match evidence.platform {
        Platform::Sgx | Platform::Tdx => intel::signed_region(bytes),
        Platform::SevSnp => snp::signed_region(bytes),
        Platform::Nitro => nitro::signed_region(bytes),
        Platform::NvidiaGpu => nvidia::signed_region(bytes),
        Platform::Simulated => simulated::signed_region(bytes),
    }
}

/// Verify `evidence` with `collateral` as of `now`.
pub fn verify(
    evidence: &Evidence,
    collateral: &Collateral,
    options: &VerifyOptions,
    now: OffsetDateTime,
) -> Result<Verified, Rejected> {
    match evidence.platform {
        Platform::Sgx | Platform::Tdx => {
            intel::verify(evidence.platform, &evidence.bytes, collateral, options, now)
        }
        Platform::SevSnp => snp::verify(&evidence.bytes, collateral, options, now),
        Platform::Nitro => nitro::verify(&evidence.bytes, collateral, options, now),
        Platform::NvidiaGpu => nvidia::verify(&evidence.bytes, collateral, options, now),
        Platform::Simulated => simulated::verify(&evidence.bytes, collateral, options, now),
    }
}

/// Verified evidence reduced to what the chain's policy and the Registry use: the facts a
/// KMS checks of a worker or peer, and a node of its own evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundEvidence {
    /// The platform it verified as.
    pub platform: Platform,
    /// [`measurement_hash`] of the verified evidence.
    pub measurement_hash: [u8; 32],
    /// [`TcbStatus::code`] (0 when the platform reports no TCB status).
    pub tcb_status: u8,
}

/// Why [`verify_bound`] refused evidence.
#[derive(Debug, Clone)]
pub enum BindingError {
    /// The evidence does not verify.
    Rejected(Rejected),
    /// It verifies, but its `report_data` is not the expected binding.
    ReportData,
}

impl std::fmt::Display for BindingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rejected(r) => write!(f, "evidence does not verify: {r}"),
            Self::ReportData => f.write_str("evidence report_data is not the expected binding"),
        }
    }
}

impl std::error::Error for BindingError {}

/// [`verify`] `evidence`, then require its `report_data` to equal `expected_report_data`.
pub fn verify_bound(
    evidence: &Evidence,
    collateral: &Collateral,
    options: &VerifyOptions,
    expected_report_data: &[u8],
    now: OffsetDateTime,
) -> std::result::Result<BoundEvidence, BindingError> {
    let verified = verify(evidence, collateral, options, now).map_err(BindingError::Rejected)?;
    if verified.report_data() != Some(expected_report_data) {
        return Err(BindingError::ReportData);
    }
    Ok(BoundEvidence {
        platform: evidence.platform,
        measurement_hash: measurement_hash(&verified),
        tcb_status: verified.tcb_status().map_or(0, TcbStatus::code),
    })
}
