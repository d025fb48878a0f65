//! AMD Key Distribution Service (KDS) client: VCEKs and the ASK/ASVK + ARK chains from an
//! AMD-KDS-compatible base URL, with an on-disk cache.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use pith_attest::fetch::amd::KdsClient;
//! let report = std::fs::read("report.bin")?;
//! let kds = KdsClient::new(pith_attest::fetch::amd::AMD_KDS_URL).with_cache_dir(".pith/cache".into());
//! let collateral = kds.collateral_for_report(&report, None)?;
//! # Ok(()) }
//! ```
//!
//! Endpoints (AMD "Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface
//! Specification"):
//! - `GET {base}/vcek/v1/{product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..` → VCEK
//!   (DER). Turin adds `fmcSPL` and uses the 8-byte hwID; `hwid` is lowercase hex of CHIP_ID.
//! - `GET {base}/vcek/v1/{product}/cert_chain` → ASK + ARK (PEM).
//! - `GET {base}/vlek/v1/{product}/cert_chain` → ASVK + ARK (PEM). VLEKs themselves are
//!   installed by the cloud provider and not served by KDS.
//!
//! Cache: one file per URL under `{cache_dir}/amd/`, named by the SHA-256 of the URL. A cached
//! response is used while every certificate in it is valid (before its notAfter) at the
//! client's clock; otherwise it is fetched again. Files are written atomically (temporary
//! file, then rename). Fetching never verifies: pass the result to [`crate::verify`].

use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::Collateral;
use crate::snp::Product;
use crate::snp::report::{Report, SigningKey, Tcb};
use crate::snp::x509::{self, Certificate};

/// AMD's public KDS.
pub const AMD_KDS_URL: &str = "https://kdsintf.amd.com";

/// Largest response accepted (certificates are a few KiB).
const MAX_RESPONSE: u64 = 256 * 1024;

/// Why collateral could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The server answered with a non-success status.
    #[error("{url}: HTTP status {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// Connection, TLS or protocol failure.
    #[error("{url}: {message}")]
    Transport {
        /// The URL requested.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The response is not what the endpoint serves (no certificate in it).
    #[error("{url}: unexpected response: {message}")]
    BadResponse {
        /// The URL requested.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The cache directory could not be written.
    #[error("cache {path}: {source}")]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The report does not parse, or its product cannot be determined.
    #[error("report: {0}")]
    Report(String),
}

/// Which endorsement key's chain to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Versioned Chip Endorsement Key (chain: ASK + ARK).
    Vcek,
    /// Versioned Loaded Endorsement Key (chain: ASVK + ARK).
    Vlek,
}

/// The security patch levels a VCEK is issued for (REPORTED_TCB of the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcbSpl {
    /// FMC (Turin and later only).
    pub fmc: Option<u8>,
    /// Boot loader.
    pub bootloader: u8,
    /// PSP OS (TEE).
    pub tee: u8,
    /// SNP firmware.
    pub snp: u8,
    /// CPU microcode.
    pub microcode: u8,
}

/// A blocking KDS client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct KdsClient {
    base: String,
    cache_dir: Option<PathBuf>,
    now: Option<OffsetDateTime>,
    agent: ureq::Agent,
}

impl KdsClient {
    /// A client for `base_url` (for example [`AMD_KDS_URL`] or a local mirror), without a
    /// cache, with a 30-second timeout per request.
    pub fn new(base_url: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build();
        Self {
            base: base_url.trim_end_matches('/').to_string(),
            cache_dir: None,
            now: None,
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// Cache responses under `dir/amd/`. Default: no cache.
    pub fn with_cache_dir(mut self, dir: PathBuf) -> Self {
        self.cache_dir = Some(dir);
        self
    }

    /// The clock used to decide whether a cached certificate is still valid. Default: the
    /// system clock at each call.
    pub fn with_clock(mut self, now: OffsetDateTime) -> Self {
        self.now = Some(now);
        self
    }

    /// The URL of the VCEK for `chip_id` at `tcb`.
    pub fn vcek_url(&self, product: Product, chip_id: &[u8], tcb: &TcbSpl) -> String {
        let hwid = match product {
            Product::Turin => chip_id.get(..8).unwrap_or(chip_id),
            _ => chip_id,
        };
        let fmc = match (product, tcb.fmc) {
            (Product::Turin, Some(f)) => format!("fmcSPL={f}&"),
            _ => String::new(),
        };
        format!(
            "{}/vcek/v1/{}/{}?{fmc}blSPL={}&teeSPL={}&snpSPL={}&ucodeSPL={}",
            self.base,
            product.name(),
            hex::encode(hwid),
            tcb.bootloader,
            tcb.tee,
            tcb.snp,
            tcb.microcode
        )
    }

    /// The URL of the certificate chain for `kind` keys of `product`.
    pub fn cert_chain_url(&self, product: Product, kind: KeyKind) -> String {
        let prefix = match kind {
            KeyKind::Vcek => "vcek",
            KeyKind::Vlek => "vlek",
        };
        format!("{}/{prefix}/v1/{}/cert_chain", self.base, product.name())
    }

    /// Fetch the VCEK (DER) of `chip_id` at `tcb`.
    pub fn vcek(
        &self,
        product: Product,
        chip_id: &[u8],
        tcb: &TcbSpl,
    ) -> Result<Vec<u8>, FetchError> {
        self.get_certificates(&self.vcek_url(product, chip_id, tcb))
    }

    /// Fetch the ASK + ARK (VCEK) or ASVK + ARK (VLEK) chain (PEM).
    pub fn cert_chain(&self, product: Product, kind: KeyKind) -> Result<Vec<u8>, FetchError> {
        self.get_certificates(&self.cert_chain_url(product, kind))
    }

    /// Everything KDS serves for `report`: for a VCEK-signed report its VCEK and chain; for a
    /// VLEK-signed report the ASVK chain only (`vlek` stays `None`: the VLEK comes from the
    /// cloud provider). The product comes from the report's CPUID (version 3 and later),
    /// else from `product` (required for version 2 reports).
    pub fn collateral_for_report(
        &self,
        report: &[u8],
        product: Option<Product>,
    ) -> Result<Collateral, FetchError> {
        let r = Report::parse(report).map_err(|e| FetchError::Report(e.message().to_string()))?;
        let product = r
            .cpuid
            .and_then(|(family, model, _)| Product::from_cpuid(family, model))
            .or(product)
            .ok_or_else(|| {
                FetchError::Report(
                    "cannot tell the product (report v2 without a product hint, or unknown CPUID)"
                        .into(),
                )
            })?;
        let mut collateral = Collateral::default();
        match r.signing_key {
            SigningKey::Vcek => {
                if r.chip_id_masked() {
                    return Err(FetchError::Report(
                        "CHIP_ID is masked: the VCEK cannot be looked up".into(),
                    ));
                }
                let t = Tcb::decode(r.reported_tcb, product == Product::Turin);
                let tcb = TcbSpl {
                    fmc: t.fmc,
                    bootloader: t.bootloader,
                    tee: t.tee,
                    snp: t.snp,
                    microcode: t.microcode,
                };
                collateral.vcek = Some(self.vcek(product, r.chip_id, &tcb)?);
                collateral.cert_chain = Some(self.cert_chain(product, KeyKind::Vcek)?);
            }
            SigningKey::Vlek => {
                collateral.cert_chain = Some(self.cert_chain(product, KeyKind::Vlek)?)
            }
            SigningKey::None => return Err(FetchError::Report("the report is not signed".into())),
        }
        Ok(collateral)
    }

    fn cache_path(&self, url: &str) -> Option<PathBuf> {
        self.cache_dir.as_ref().map(|d| {
            d.join("amd")
                .join(hex::encode(Sha256::digest(url.as_bytes())))
        })
    }

    /// GET `url`, expecting one or more certificates (DER or PEM); served from the cache
    /// while every certificate in the cached copy is unexpired.
    fn get_certificates(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let now = self.now.unwrap_or_else(OffsetDateTime::now_utc);
        let path = self.cache_path(url);
        if let Some(path) = &path
            && let Ok(bytes) = std::fs::read(path)
            && certificates_valid_until(&bytes).is_some_and(|end| now <= end)
        {
            tracing::debug!(target: "pith_attest::fetch", %url, "AMD KDS cache hit");
            return Ok(bytes);
        }
        tracing::debug!(target: "pith_attest::fetch", %url, "AMD KDS request");
        let transport = |e: ureq::Error| FetchError::Transport {
            url: url.to_string(),
            message: e.to_string(),
        };
        let mut response = self.agent.get(url).call().map_err(transport)?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(FetchError::Status {
                url: url.to_string(),
                status,
            });
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()
            .map_err(transport)?;
        if certificates_valid_until(&body).is_none() {
            return Err(FetchError::BadResponse {
                url: url.to_string(),
                message: "no parseable certificate".into(),
            });
        }
        if let Some(path) = &path {
            write_atomically(path, &body)?;
        }
        Ok(body)
    }
}

/// The earliest notAfter of the certificates in `bytes` (one DER certificate or a PEM
/// bundle), or `None` if there is none or one does not parse.
fn certificates_valid_until(bytes: &[u8]) -> Option<OffsetDateTime> {
    let ders = if bytes.first() == Some(&x509::TAG_SEQUENCE) {
        vec![bytes.to_vec()]
    } else {
        x509::pem_certificates(bytes).ok()?
    };
    let mut end: Option<OffsetDateTime> = None;
    for der in &ders {
        let na = Certificate::parse(der).ok()?.not_after;
        end = Some(end.map_or(na, |e| e.min(na)));
    }
    end
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), FetchError> {
    let cache_err = |p: &std::path::Path| {
        let p = p.to_path_buf();
        move |source| FetchError::Cache { path: p, source }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(cache_err(dir))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(cache_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(cache_err(path))
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]

    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::{ErrorClass, Evidence, Platform, VerifyOptions, verify};

    fn corpus(path: &str) -> Vec<u8> {
        std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../testdata/attestation")
                .join(path),
        )
        .unwrap()
    }

    /// A real HTTP/1.1 server on 127.0.0.1 serving fixed responses by request target, and
    /// recording every request target it saw.
    struct Server {
        base: String,
        seen: Arc<Mutex<Vec<String>>>,
    }

    fn serve(routes: Routes) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let target = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                }
                log.lock().unwrap().push(target.clone());
                let (status, body) = routes
                    .get(&target)
                    .cloned()
                    .unwrap_or((404, b"not found".to_vec()));
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        Server { base, seen }
    }

    type Routes = HashMap<String, (u16, Vec<u8>)>;

    fn n1_routes() -> (Vec<u8>, Routes) {
        let report = corpus("snp-n1-milan/evidence.bin");
        let chip = hex::encode(&report[0x1a0..0x1e0]);
        let mut routes = HashMap::new();
        // n1: REPORTED_TCB bl 2, tee 0, snp 5, ucode 0x44 (68).
        routes.insert(
            format!("/vcek/v1/Milan/{chip}?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68"),
            (200, corpus("snp-n1-milan/collateral/vcek.der")),
        );
        routes.insert(
            "/vcek/v1/Milan/cert_chain".to_string(),
            (200, corpus("snp-n1-milan/collateral/cert_chain.pem")),
        );
        routes.insert(
            "/vlek/v1/Milan/cert_chain".to_string(),
            (200, corpus("snp-n8-vlek-aws/collateral/cert_chain.pem")),
        );
        (report, routes)
    }

    #[test]
    fn fetches_verifiable_collateral_and_caches_it() {
        let (report, routes) = n1_routes();
        let server = serve(routes);
        let cache = tempfile::tempdir().unwrap();
        let at = time::macros::datetime!(2022-09-24 01:00 UTC);
        let kds = KdsClient::new(&format!("{}/", server.base))
            .with_cache_dir(cache.path().to_path_buf())
            .with_clock(at);

        let collateral = kds
            .collateral_for_report(&report, Some(Product::Milan))
            .unwrap();
        assert_eq!(server.seen.lock().unwrap().len(), 2);
        let v = verify(
            &Evidence::new(Platform::SevSnp, report.clone()),
            &collateral,
            &VerifyOptions::default(),
            at,
        );
        assert!(v.is_ok(), "{v:?}");

        // Second time: from the cache, no request.
        let again = kds
            .collateral_for_report(&report, Some(Product::Milan))
            .unwrap();
        assert_eq!(again, collateral);
        assert_eq!(server.seen.lock().unwrap().len(), 2);
        assert_eq!(
            std::fs::read_dir(cache.path().join("amd")).unwrap().count(),
            2
        );

        // Once the VCEK has expired at the client's clock, it is fetched again.
        let later = kds
            .clone()
            .with_clock(time::macros::datetime!(2030-01-01 0:00 UTC));
        later
            .collateral_for_report(&report, Some(Product::Milan))
            .unwrap();
        let seen = server.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen[2].starts_with("/vcek/v1/Milan/3ac3fe21"), "{seen:?}");
    }

    #[test]
    fn vlek_reports_get_the_asvk_chain_only() {
        let (_, routes) = n1_routes();
        let server = serve(routes);
        let report = corpus("snp-n8-vlek-aws/evidence.bin");
        let c = KdsClient::new(&server.base)
            .collateral_for_report(&report, None)
            .unwrap();
        assert_eq!(c.vlek, None);
        assert_eq!(
            c.cert_chain,
            Some(corpus("snp-n8-vlek-aws/collateral/cert_chain.pem"))
        );
        assert_eq!(
            server.seen.lock().unwrap().as_slice(),
            ["/vlek/v1/Milan/cert_chain"]
        );
        // Without the VLEK, verification reports missing collateral.
        let r = verify(
            &Evidence::new(Platform::SevSnp, report),
            &c,
            &VerifyOptions::default(),
            time::macros::datetime!(2024-12-11 22:14 UTC),
        )
        .unwrap_err();
        assert_eq!(r.error.class(), ErrorClass::MissingCollateral);
    }

    #[test]
    fn errors_are_typed() {
        let (report, mut routes) = n1_routes();
        routes.insert(
            "/vcek/v1/Milan/cert_chain".to_string(),
            (200, b"<html>maintenance</html>".to_vec()),
        );
        let server = serve(routes);
        let kds = KdsClient::new(&server.base);
        // v2 report without a product hint.
        assert!(matches!(
            kds.collateral_for_report(&report, None),
            Err(FetchError::Report(_))
        ));
        // Not a certificate.
        assert!(matches!(
            kds.cert_chain(Product::Milan, KeyKind::Vcek),
            Err(FetchError::BadResponse { .. })
        ));
        // Unknown hwID: 404.
        let tcb = TcbSpl {
            fmc: None,
            bootloader: 1,
            tee: 0,
            snp: 1,
            microcode: 1,
        };
        match kds.vcek(Product::Milan, &[0u8; 64], &tcb) {
            Err(FetchError::Status { status: 404, .. }) => {}
            other => panic!("{other:?}"),
        }
        // Nothing listening.
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        assert!(matches!(
            KdsClient::new(&closed).cert_chain(Product::Genoa, KeyKind::Vcek),
            Err(FetchError::Transport { .. })
        ));
    }

    #[test]
    fn turin_urls_use_the_8_byte_hwid_and_fmc() {
        let kds = KdsClient::new("https://kds.example/");
        let mut chip = [0u8; 64];
        chip[..8].copy_from_slice(&[0xab, 1, 2, 3, 4, 5, 6, 7]);
        let tcb = TcbSpl {
            fmc: Some(1),
            bootloader: 2,
            tee: 3,
            snp: 4,
            microcode: 5,
        };
        assert_eq!(
            kds.vcek_url(Product::Turin, &chip, &tcb),
            "https://kds.example/vcek/v1/Turin/ab01020304050607?fmcSPL=1&blSPL=2&teeSPL=3&snpSPL=4&ucodeSPL=5"
        );
        let genoa = kds.vcek_url(Product::Genoa, &chip, &TcbSpl { fmc: None, ..tcb });
        assert!(genoa.starts_with("https://kds.example/vcek/v1/Genoa/ab01020304050607000000"));
        assert!(genoa.ends_with("?blSPL=2&teeSPL=3&snpSPL=4&ucodeSPL=5"));
        assert_eq!(
            kds.cert_chain_url(Product::Genoa, KeyKind::Vlek),
            "https://kds.example/vlek/v1/Genoa/cert_chain"
        );
    }
}
