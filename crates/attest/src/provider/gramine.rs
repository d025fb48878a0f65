//! SGX evidence inside a Gramine enclave through its `/dev/attestation` pseudo-files:
//! `attestation_type` must be `dcap`; writing 64 bytes to `user_report_data` and reading
//! `quote` yields a DCAP quote (v3) whose REPORTDATA is those bytes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{EvidenceSource, Fs, ProviderError};
use crate::Platform;

/// SGX quote v3: 48-byte header, 384-byte report body (REPORTDATA at body offset 320),
/// then a 4-byte signature-data length at least.
const SGX_MIN: usize = 48 + 384 + 4;
const SGX_REPORT_DATA: usize = 48 + 320;

/// Evidence from Gramine's `/dev/attestation`.
#[derive(Debug)]
pub struct GramineSource {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    // The write-then-read pair must not interleave between threads of the enclave.
    lock: Mutex<()>,
}

impl GramineSource {
    /// Open the Gramine attestation directory (normally `/dev/attestation`); fails unless
    /// `attestation_type` is `dcap`.
    pub fn open(fs: Arc<dyn Fs>, dir: &Path) -> Result<Self, ProviderError> {
        let path = dir.join("attestation_type");
        let raw = fs.read(&path).map_err(ProviderError::io("read", &path))?;
        let kind = String::from_utf8_lossy(&raw).trim().to_string();
        if kind != "dcap" {
            return Err(ProviderError::AttestationType(kind));
        }
        Ok(Self {
            fs,
            dir: dir.to_path_buf(),
            lock: Mutex::new(()),
        })
    }
}

impl EvidenceSource for GramineSource {
    fn platform(&self) -> Platform {
        Platform::Sgx
    }

    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, ProviderError> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let urd = self.dir.join("user_report_data");
        self.fs
            .write(&urd, report_data)
            .map_err(ProviderError::io("write", &urd))?;
        let qp = self.dir.join("quote");
        let quote = self.fs.read(&qp).map_err(ProviderError::io("read", &qp))?;
        if quote.len() < SGX_MIN {
            return Err(ProviderError::ShortEvidence {
                what: "Gramine quote",
                len: quote.len(),
                min: SGX_MIN,
            });
        }
        let version = quote
            .get(..2)
            .and_then(|v| <[u8; 2]>::try_from(v).ok())
            .map(u16::from_le_bytes);
        if version != Some(3) {
            return Err(ProviderError::Unexpected {
                what: "SGX quote version",
                content: hex::encode(quote.get(..2).unwrap_or_default()),
            });
        }
        if quote.get(SGX_REPORT_DATA..SGX_REPORT_DATA.saturating_add(64)) != Some(&report_data[..])
        {
            return Err(ProviderError::ReportDataMismatch("Gramine quote"));
        }
        Ok(quote)
    }
}
