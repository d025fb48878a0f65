//! Collateral fetching over HTTP (feature `fetch`). Separate from verification: fetch, then
//! pass the [`Collateral`](crate::Collateral) to [`verify`](crate::verify).
//!
//! - [`amd`]: AMD KDS (VCEKs, ASK/ASVK + ARK chains).
//! - [`intel`]: Intel PCS / PCCS (TCBInfo, QE identity, PCK CRL, root CA CRL, issuer chains).
//! - [`cache`]: a generic on-disk response cache honouring an expiry taken from the content
//!   (`nextUpdate`, notAfter).

pub mod amd;
pub mod cache;
pub mod intel;

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::{Collateral, CollateralSource, Error, ErrorClass, Evidence, Platform};

/// Collateral fetched where a platform needs it, cached on disk: Intel TDX/SGX from a
/// PCS/PCCS-compatible service, AMD SEV-SNP from AMD KDS. Nitro, NVIDIA serialized evidence
/// and simulated evidence need none beyond the pinned roots.
#[derive(Debug, Clone)]
pub struct Fetcher {
    /// PCS/PCCS base URL.
    pub pccs_url: String,
    /// AMD KDS base URL.
    pub kds_url: String,
    /// On-disk response cache.
    pub cache_dir: PathBuf,
}

impl Fetcher {
    /// From the environment: `PITH_PCCS_URL` (default Intel PCS), `PITH_AMD_KDS_URL`
    /// (default AMD KDS), `PITH_CACHE_DIR` (default `$HOME/.cache/pith`).
    pub fn from_env() -> Self {
        let cache_dir = match (std::env::var_os("PITH_CACHE_DIR"), std::env::var_os("HOME")) {
            (Some(dir), _) => PathBuf::from(dir),
            (None, Some(home)) => Path::new(&home).join(".cache/pith"),
            (None, None) => PathBuf::from(".pith/cache"),
        };
        Self {
            pccs_url: std::env::var("PITH_PCCS_URL")
                .unwrap_or_else(|_| intel::INTEL_PCS_URL.to_string()),
            kds_url: std::env::var("PITH_AMD_KDS_URL")
                .unwrap_or_else(|_| amd::AMD_KDS_URL.to_string()),
            cache_dir,
        }
    }

    fn intel(&self, quote: &[u8], now: OffsetDateTime) -> Result<Collateral, Error> {
        intel::PcsClient::new(&self.pccs_url)
            .with_cache_dir(self.cache_dir.clone())
            .with_clock(now)
            .collateral_for_quote(quote)
            .map_err(|e| {
                Error::new(
                    ErrorClass::MissingCollateral,
                    format!("fetching Intel collateral from {}: {e}", self.pccs_url),
                )
            })
    }

    fn amd(&self, report: &[u8], now: OffsetDateTime) -> Result<Collateral, Error> {
        let kds = amd::KdsClient::new(&self.kds_url)
            .with_cache_dir(self.cache_dir.clone())
            .with_clock(now);
        let missing = |e: amd::FetchError| {
            Error::new(
                ErrorClass::MissingCollateral,
                format!("fetching AMD collateral: {e}"),
            )
        };
        match kds.collateral_for_report(report, None) {
            Ok(c) => Ok(c),
            // Version 2 reports do not name their product: try each generation in turn (KDS
            // answers 404 for a chip ID of another product).
            Err(amd::FetchError::Report(_)) if report.first() == Some(&2) => {
                let mut last = None;
                for product in [
                    crate::Product::Milan,
                    crate::Product::Genoa,
                    crate::Product::Turin,
                ] {
                    match kds.collateral_for_report(report, Some(product)) {
                        Ok(c) => return Ok(c),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last
                    .map(missing)
                    .unwrap_or_else(|| Error::missing("no AMD product matched")))
            }
            Err(e) => Err(missing(e)),
        }
    }
}

impl CollateralSource for Fetcher {
    fn collateral(&self, evidence: &Evidence, now: OffsetDateTime) -> Result<Collateral, Error> {
        match evidence.platform() {
            Platform::Sgx | Platform::Tdx => self.intel(evidence.bytes(), now),
            Platform::SevSnp => self.amd(evidence.bytes(), now),
            _ => Ok(Collateral::default()),
        }
    }
}
