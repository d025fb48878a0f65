//! Evidence providers for the TEE side: produce evidence binding 64 bytes of caller data
//! (`report_data`) on the platform the process runs on.
//!
//! | platform | source | interface |
//! |---|---|---|
//! | TDX, SEV-SNP | [`TsmSource`] | Linux configfs-tsm, `/sys/kernel/config/tsm/report` |
//! | SGX (Gramine) | [`GramineSource`] | `/dev/attestation/{attestation_type,user_report_data,quote}` |
//! | Nitro | `NsmSource` (feature `nsm`) | `/dev/nsm` ioctl via `aws-nitro-enclaves-nsm-api` |
//! | simulated | [`SimulatedSource`] | the local network's development CA |
//!
//! All I/O is synchronous file I/O through the [`Fs`] trait ([`OsFs`] in production), with
//! every path configurable ([`Paths`]), so the sources are tested against fake trees.
//! [`detect`] picks the real interface when present, else the simulated one when a
//! development CA is configured, else fails with a clear error.
//!
//! ```no_run
//! use pith_attest::provider::{detect, DetectOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let source = detect(&DetectOptions::default())?;
//! let evidence = source.quote(&[0u8; 64])?;
//! println!("{} evidence, {} bytes", source.platform(), evidence.len());
//! # Ok(()) }
//! ```

mod fs;
mod gramine;
#[cfg(feature = "nsm")]
mod nsm;
mod sim;
mod tsm;

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};

pub use fs::{Fs, OsFs};
pub use gramine::GramineSource;
#[cfg(feature = "nsm")]
pub use nsm::NsmSource;
pub use sim::{SimulatedOptions, SimulatedSource, local_measurement_hash};
pub use tsm::{TsmReport, TsmSource};

use crate::Platform;
use crate::simulated::DevCaError;

/// A source of attestation evidence on the local platform.
pub trait EvidenceSource: Send + Sync {
    /// The platform of the evidence this source produces.
    fn platform(&self) -> Platform;
    /// Produce evidence binding `report_data` (REPORTDATA / REPORT_DATA / Nitro
    /// `user_data` / simulated `report_data`). The bytes are what [`crate::verify`] takes.
    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, ProviderError>;
}

/// Why a provider could not produce evidence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// A file of the interface could not be created, read, written or removed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`mkdir`, `read`, `write`, `rmdir`).
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error (permission errors keep their kind).
        source: io::Error,
    },
    /// configfs-tsm: the entry's `generation` changed by other than our one write between
    /// writing `inblob` and reading `outblob`, on every attempt (a concurrent writer).
    #[error(
        "configfs-tsm: generation went from {before} to {after} (expected {expected}); another writer raced us {attempts} times"
    )]
    GenerationChanged {
        /// Generation before writing `inblob`.
        before: u64,
        /// Generation after reading `outblob`.
        after: u64,
        /// The expected value (`before + 1`).
        expected: u64,
        /// Attempts made.
        attempts: u32,
    },
    /// configfs-tsm: no TSM provider is registered (no TDX/SEV guest driver), or its
    /// `provider` attribute is empty.
    #[error("configfs-tsm at {0}: no provider (is the tdx_guest or sev_guest driver loaded?)")]
    MissingProvider(PathBuf),
    /// configfs-tsm: a provider this crate does not know.
    #[error("configfs-tsm: unknown provider {0:?} (expected tdx_guest or sev_guest)")]
    UnknownProvider(String),
    /// The evidence read back is shorter than the smallest valid evidence of its kind
    /// (empty or short read).
    #[error("{what}: {len} bytes is shorter than the minimum {min}")]
    ShortEvidence {
        /// Which blob.
        what: &'static str,
        /// Bytes read.
        len: usize,
        /// Minimum for the platform.
        min: usize,
    },
    /// The evidence read back does not carry the `report_data` we wrote (stale or foreign
    /// evidence).
    #[error("{0}: evidence does not carry the requested report_data")]
    ReportDataMismatch(&'static str),
    /// A value read from the interface is not what its format allows.
    #[error("{what}: unexpected content {content:?}")]
    Unexpected {
        /// Which attribute.
        what: &'static str,
        /// What was read (lossy UTF-8, truncated).
        content: String,
    },
    /// Gramine: remote attestation is not enabled or not DCAP.
    #[error(
        "Gramine attestation_type is {0:?}; DCAP is required (sgx.remote_attestation = \"dcap\")"
    )]
    AttestationType(String),
    /// The Nitro Secure Module returned an error.
    #[error("NSM: {0}")]
    Nsm(String),
    /// A Nitro NSM device is present but this build lacks the `nsm` feature.
    #[error("{0} exists but pith-attest was built without the `nsm` feature")]
    NsmNotBuilt(PathBuf),
    /// The development CA could not be loaded, created or used.
    #[error("development CA: {0}")]
    DevCa(#[from] DevCaError),
    /// The running executable could not be measured.
    #[error("cannot measure the running executable: {0}")]
    Measure(io::Error),
    /// No evidence source is available.
    #[error("no evidence source: {0}")]
    NoSource(String),
    /// This executable's own simulated evidence did not verify (a broken build or clock).
    #[error("our own simulated evidence does not verify: {0}")]
    OwnEvidence(String),
}

impl ProviderError {
    pub(crate) fn io<'a>(
        op: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> ProviderError + 'a {
        move |source| ProviderError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where each interface lives. [`Paths::default`] is the real system; [`Paths::under`]
/// re-roots every path (for fake trees in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// configfs-tsm report directory. Default `/sys/kernel/config/tsm/report`.
    pub tsm_report: PathBuf,
    /// Gramine attestation pseudo-directory. Default `/dev/attestation`.
    pub gramine: PathBuf,
    /// Nitro Secure Module device. Default `/dev/nsm`.
    pub nsm: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Self::under(Path::new("/"))
    }
}

impl Paths {
    /// Every default path re-rooted at `root`.
    pub fn under(root: &Path) -> Self {
        Self {
            tsm_report: root.join("sys/kernel/config/tsm/report"),
            gramine: root.join("dev/attestation"),
            nsm: root.join("dev/nsm"),
        }
    }
}

/// What [`detect`] may use.
#[derive(Debug, Clone, Default)]
pub struct DetectOptions {
    /// Interface paths (default: the real system).
    pub paths: Paths,
    /// Fall back to simulated evidence with this development CA when no TEE interface is
    /// present. `None` (the default): no fallback, an error instead.
    pub simulated: Option<SimulatedOptions>,
}

/// Choose the evidence source for this machine, in order: configfs-tsm with a provider
/// (TDX, SEV-SNP), Gramine `/dev/attestation` (SGX), `/dev/nsm` (Nitro), then simulated
/// if [`DetectOptions::simulated`] is set; otherwise [`ProviderError::NoSource`].
pub fn detect(options: &DetectOptions) -> Result<Box<dyn EvidenceSource>, ProviderError> {
    detect_with(options, std::sync::Arc::new(OsFs))
}

/// [`detect`] over a given file system (for fake trees).
pub fn detect_with(
    options: &DetectOptions,
    fs: std::sync::Arc<dyn Fs>,
) -> Result<Box<dyn EvidenceSource>, ProviderError> {
    let paths = &options.paths;
    let mut tried = Vec::new();
    if fs.is_dir(&paths.tsm_report) {
        match TsmSource::open(fs.clone(), &paths.tsm_report) {
            Ok(s) => {
                tracing::info!(target: "pith_attest::provider", platform = %s.platform(), "using configfs-tsm");
                return Ok(Box::new(s));
            }
            // A TSM directory without a provider (no TEE guest driver): try the others.
            Err(e @ ProviderError::MissingProvider(_)) => tried.push(e.to_string()),
            Err(e) => return Err(e),
        }
    } else {
        tried.push(format!("{} absent", paths.tsm_report.display()));
    }
    if fs.exists(&paths.gramine.join("attestation_type")) {
        let s = GramineSource::open(fs.clone(), &paths.gramine)?;
        tracing::info!(target: "pith_attest::provider", "using Gramine /dev/attestation");
        return Ok(Box::new(s));
    }
    tried.push(format!("{} absent", paths.gramine.display()));
    if fs.exists(&paths.nsm) {
        #[cfg(feature = "nsm")]
        {
            tracing::info!(target: "pith_attest::provider", "using the Nitro Secure Module");
            return Ok(Box::new(NsmSource::new(&paths.nsm)));
        }
        #[cfg(not(feature = "nsm"))]
        return Err(ProviderError::NsmNotBuilt(paths.nsm.clone()));
    }
    tried.push(format!("{} absent", paths.nsm.display()));
    if let Some(sim) = &options.simulated {
        let s = SimulatedSource::open(sim)?;
        tracing::warn!(target: "pith_attest::provider", dir = %sim.dev_ca_dir.display(), "no TEE found: using SIMULATED evidence");
        return Ok(Box::new(s));
    }
    Err(ProviderError::NoSource(format!(
        "no TEE interface found ({}) and no development CA configured for simulated evidence",
        tried.join("; ")
    )))
}

/// First bytes of `bytes` as lossy text, for error messages.
pub(crate) fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes.get(..bytes.len().min(64)).unwrap_or_default()).into_owned()
}
