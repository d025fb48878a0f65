//! TDX and SEV-SNP evidence through Linux configfs-tsm (`Documentation/ABI/testing/
//! configfs-tsm-report` in the kernel): make an entry directory under the report directory,
//! read `provider` and `generation`, write the 64-byte `inblob`, read `outblob` (and
//! `auxblob` for SEV-SNP), read `generation` again, remove the entry.
//!
//! `generation` counts writes to the entry's attributes. Another process writing the same
//! entry between our `inblob` write and `outblob` read would make `outblob` answer its
//! request, not ours; so the generation after reading must be exactly one more than before
//! writing, otherwise the attempt is discarded and retried with a fresh entry.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{EvidenceSource, Fs, ProviderError, preview};
use crate::Platform;

/// Attempts before giving up on a racing writer.
const MAX_ATTEMPTS: u32 = 3;
/// Provider name of the Intel TDX guest driver.
const TDX_PROVIDER: &str = "tdx_guest";
/// Provider name of the AMD SEV-SNP guest driver.
const SEV_PROVIDER: &str = "sev_guest";

/// An SEV-SNP attestation report is 1184 bytes; REPORT_DATA is at 0x50.
const SNP_REPORT_LEN: usize = 1184;
const SNP_REPORT_DATA: usize = 0x50;
/// A TDX quote v4: 48-byte header, 584-byte TD report body (REPORTDATA at body offset 520),
/// then a 4-byte signature-data length at least.
const TDX_V4_MIN: usize = 48 + 584 + 4;
const TDX_V4_REPORT_DATA: usize = 48 + 520;
/// A TDX quote v5: 48-byte header, 2-byte body type, 4-byte body size, then the body.
const TDX_V5_MIN: usize = 48 + 6 + 584 + 4;
const TDX_V5_REPORT_DATA: usize = 48 + 6 + 520;

static ENTRY_SEQ: AtomicU64 = AtomicU64::new(0);

/// One configfs-tsm report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsmReport {
    /// TDX or SEV-SNP, from the entry's `provider`.
    pub platform: Platform,
    /// `outblob`: a TDX quote or an SEV-SNP attestation report.
    pub outblob: Vec<u8>,
    /// `auxblob`: for SEV-SNP the certificate table from the host (VCEK/VLEK, ASK, ARK) if
    /// the host supplied one; `None` when absent or empty.
    pub auxblob: Option<Vec<u8>>,
}

/// Evidence from configfs-tsm.
#[derive(Debug)]
pub struct TsmSource {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    platform: Platform,
}

impl TsmSource {
    /// Open the report directory `dir` (normally `/sys/kernel/config/tsm/report`): creates a
    /// probe entry to learn the provider, then removes it.
    pub fn open(fs: Arc<dyn Fs>, dir: &Path) -> Result<Self, ProviderError> {
        let entry = Entry::create(fs.as_ref(), dir)?;
        let platform = provider_platform(fs.as_ref(), &entry.path, dir)?;
        drop(entry);
        Ok(Self {
            fs,
            dir: dir.to_path_buf(),
            platform,
        })
    }

    /// Produce a report for `report_data`, with the SEV-SNP `auxblob` when there is one.
    pub fn report(&self, report_data: &[u8; 64]) -> Result<TsmReport, ProviderError> {
        let mut last = None;
        for attempt in 1..=MAX_ATTEMPTS {
            match self.attempt(report_data)? {
                Ok(report) => return Ok(report),
                Err((before, after)) => {
                    tracing::warn!(target: "pith_attest::provider", attempt, before, after, "configfs-tsm generation changed; retrying");
                    last = Some((before, after));
                }
            }
        }
        let (before, after) = last.unwrap_or_default();
        Err(ProviderError::GenerationChanged {
            before,
            after,
            expected: before.saturating_add(1),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// One attempt: `Ok(Err((before, after)))` when the generation check failed.
    #[allow(clippy::type_complexity)]
    fn attempt(
        &self,
        report_data: &[u8; 64],
    ) -> Result<Result<TsmReport, (u64, u64)>, ProviderError> {
        let fs = self.fs.as_ref();
        let entry = Entry::create(fs, &self.dir)?;
        let p = &entry.path;
        let platform = provider_platform(fs, p, &self.dir)?;
        if platform != self.platform {
            return Err(ProviderError::Unexpected {
                what: "provider",
                content: platform.to_string(),
            });
        }
        let before = generation(fs, p)?;
        let inblob = p.join("inblob");
        fs.write(&inblob, report_data)
            .map_err(ProviderError::io("write", &inblob))?;
        let outblob_path = p.join("outblob");
        let outblob = fs
            .read(&outblob_path)
            .map_err(ProviderError::io("read", &outblob_path))?;
        let auxblob = if platform == Platform::SevSnp {
            match fs.read(&p.join("auxblob")) {
                Ok(a) if !a.is_empty() => Some(a),
                Ok(_) => None,
                Err(e) => {
                    tracing::debug!(target: "pith_attest::provider", error = %e, "no auxblob");
                    None
                }
            }
        } else {
            None
        };
        let after = generation(fs, p)?;
        drop(entry);
        if Some(after) != before.checked_add(1) {
            return Ok(Err((before, after)));
        }
        check_outblob(platform, &outblob, report_data)?;
        Ok(Ok(TsmReport {
            platform,
            outblob,
            auxblob,
        }))
    }
}

impl EvidenceSource for TsmSource {
    fn platform(&self) -> Platform {
        self.platform
    }
    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, ProviderError> {
        self.report(report_data).map(|r| r.outblob)
    }
}

/// A report entry directory, removed on drop.
struct Entry<'a> {
    fs: &'a dyn Fs,
    path: PathBuf,
}

impl<'a> Entry<'a> {
    fn create(fs: &'a dyn Fs, dir: &Path) -> Result<Self, ProviderError> {
        // Unique per process and call; on a name clash (left-over entry) take the next.
        for _ in 0..16 {
            let seq = ENTRY_SEQ.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("pith-{}-{seq}", std::process::id()));
            match fs.create_dir(&path) {
                Ok(()) => return Ok(Self { fs, path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(ProviderError::Io {
                        op: "mkdir",
                        path,
                        source: e,
                    });
                }
            }
        }
        Err(ProviderError::Unexpected {
            what: "report entry",
            content: "16 name clashes".into(),
        })
    }
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.fs.remove_dir(&self.path) {
            tracing::warn!(target: "pith_attest::provider", path = %self.path.display(), error = %e, "cannot remove configfs-tsm entry");
        }
    }
}

fn provider_platform(fs: &dyn Fs, entry: &Path, dir: &Path) -> Result<Platform, ProviderError> {
    // With no provider registered, the kernel fails the read (ENXIO) or the file is absent.
    let raw = match fs.read(&entry.join("provider")) {
        Ok(raw) => raw,
        Err(e) => {
            tracing::debug!(target: "pith_attest::provider", error = %e, "cannot read provider");
            return Err(ProviderError::MissingProvider(dir.to_path_buf()));
        }
    };
    match String::from_utf8_lossy(&raw).trim() {
        "" => Err(ProviderError::MissingProvider(dir.to_path_buf())),
        TDX_PROVIDER => Ok(Platform::Tdx),
        SEV_PROVIDER => Ok(Platform::SevSnp),
        other => Err(ProviderError::UnknownProvider(other.to_string())),
    }
}

fn generation(fs: &dyn Fs, entry: &Path) -> Result<u64, ProviderError> {
    let path = entry.join("generation");
    let raw = fs.read(&path).map_err(ProviderError::io("read", &path))?;
    String::from_utf8_lossy(&raw)
        .trim()
        .parse()
        .map_err(|_| ProviderError::Unexpected {
            what: "generation",
            content: preview(&raw),
        })
}

fn check_outblob(
    platform: Platform,
    blob: &[u8],
    report_data: &[u8; 64],
) -> Result<(), ProviderError> {
    let short = |min| ProviderError::ShortEvidence {
        what: "configfs-tsm outblob",
        len: blob.len(),
        min,
    };
    let at = match platform {
        Platform::SevSnp => {
            if blob.len() < SNP_REPORT_LEN {
                return Err(short(SNP_REPORT_LEN));
            }
            SNP_REPORT_DATA
        }
        _ => {
            if blob.len() < TDX_V4_MIN {
                return Err(short(TDX_V4_MIN));
            }
            match blob
                .get(..2)
                .and_then(|v| <[u8; 2]>::try_from(v).ok())
                .map(u16::from_le_bytes)
            {
                Some(4) => TDX_V4_REPORT_DATA,
                Some(5) if blob.len() >= TDX_V5_MIN => TDX_V5_REPORT_DATA,
                Some(5) => return Err(short(TDX_V5_MIN)),
                _ => {
                    return Err(ProviderError::Unexpected {
                        what: "TDX quote version",
                        content: hex::encode(blob.get(..2).unwrap_or_default()),
                    });
                }
            }
        }
    };
    let end = at.saturating_add(64);
    if blob.get(at..end) != Some(&report_data[..]) {
        return Err(ProviderError::ReportDataMismatch("configfs-tsm outblob"));
    }
    Ok(())
}
