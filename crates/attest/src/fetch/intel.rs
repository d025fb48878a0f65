//! Intel collateral from a PCCS-compatible base URL (Intel PCS v4 API shapes), with an
//! on-disk cache that honours each object's `nextUpdate`.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use pith_attest::fetch::intel::PcsClient;
//! let quote = std::fs::read("quote.bin")?;
//! let pcs = PcsClient::new(pith_attest::fetch::intel::INTEL_PCS_URL).with_cache_dir(".pith/cache".into());
//! let collateral = pcs.collateral_for_quote(&quote)?;
//! # Ok(()) }
//! ```
//!
//! Endpoints (`{base}` without a trailing slash; `{tee}` is `sgx` or `tdx`):
//! - `{base}/{tee}/certification/v4/tcb?fmspc={FMSPC}`: TCBInfo; issuer chain in
//!   `TCB-Info-Issuer-Chain` (or v3's `SGX-TCB-Info-Issuer-Chain`);
//! - `{base}/{tee}/certification/v4/qe/identity`: QE identity; issuer chain in
//!   `SGX-Enclave-Identity-Issuer-Chain`;
//! - `{base}/sgx/certification/v4/pckcrl?ca=platform|processor&encoding=der`: PCK CRL of the
//!   quote's PCK CA; issuer chain in `SGX-PCK-CRL-Issuer-Chain`;
//! - `{base}/sgx/certification/v4/rootcacrl`: the Intel SGX Root CA CRL (PCCS; DER or hex).
//!
//! The FMSPC and the PCK CA come from the PCK certificate embedded in the quote. Nothing
//! here is trusted: fetching never verifies; pass the [`Collateral`] to [`crate::verify`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use time::OffsetDateTime;

use super::amd::FetchError;
use super::cache::{DiskCache, Entry};
use crate::Collateral;
use crate::intel::collateral::{crl_der, split_signed};
use crate::intel::own::crl_validity;
use crate::intel::tcb;

/// Intel's Provisioning Certification Service.
pub const INTEL_PCS_URL: &str = "https://api.trustedservices.intel.com";

/// Largest response accepted (PCK CRLs of the Processor CA are the largest, tens of KiB).
const MAX_RESPONSE: u64 = 4 * 1024 * 1024;

/// Which PCK CA issued the quote's PCK certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PckCa {
    /// Intel SGX PCK Platform CA.
    Platform,
    /// Intel SGX PCK Processor CA.
    Processor,
}

impl PckCa {
    fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Processor => "processor",
        }
    }
}

/// A blocking client for a PCCS-compatible service.
#[derive(Debug, Clone)]
pub struct PcsClient {
    base: String,
    agent: ureq::Agent,
    cache: Option<DiskCache>,
    now: Option<OffsetDateTime>,
}

impl PcsClient {
    /// A client for `base_url` (for example [`INTEL_PCS_URL`] or a local PCCS), no cache,
    /// 30-second timeout per request.
    pub fn new(base_url: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Self {
            base: base_url.trim_end_matches('/').to_owned(),
            agent,
            cache: None,
            now: None,
        }
    }

    /// Cache responses under `dir/intel/`, served until their `nextUpdate`. Default: no cache.
    pub fn with_cache_dir(mut self, dir: PathBuf) -> Self {
        self.cache = Some(DiskCache::new(dir.join("intel")));
        self
    }

    /// The clock deciding whether a cached object is still current. Default: the system clock.
    pub fn with_clock(mut self, now: OffsetDateTime) -> Self {
        self.now = Some(now);
        self
    }

    /// Fetch the five collateral pieces (plus the PCK CRL issuer chain) for `quote`.
    pub fn collateral_for_quote(&self, quote: &[u8]) -> Result<Collateral, FetchError> {
        let report = |m: String| FetchError::Report(m);
        let q = dcap_qvl::quote::Quote::parse(quote).map_err(|e| report(format!("{e:#}")))?;
        let tdx = !q.header.is_sgx();
        let fmspc =
            dcap_qvl::intel::quote_fmspc(&q).map_err(|e| report(format!("FMSPC: {e:#}")))?;
        let ca =
            match dcap_qvl::intel::quote_ca(&q).map_err(|e| report(format!("PCK CA: {e:#}")))? {
                dcap_qvl::config::PckCa::Processor => PckCa::Processor,
                dcap_qvl::config::PckCa::Platform => PckCa::Platform,
            };
        self.collateral(tdx, &fmspc, ca)
    }

    /// Fetch collateral for an SGX (`tdx == false`) or TDX platform with `fmspc` and PCK CA `ca`.
    pub fn collateral(&self, tdx: bool, fmspc: &[u8], ca: PckCa) -> Result<Collateral, FetchError> {
        let tee = if tdx { "tdx" } else { "sgx" };
        let fmspc = hex::encode_upper(fmspc);
        let tcb = self.get(
            &format!("{}/{tee}/certification/v4/tcb?fmspc={fmspc}", self.base),
            &["tcb-info-issuer-chain", "sgx-tcb-info-issuer-chain"],
            |b| signed_next_update(b, "tcbInfo"),
        )?;
        let qe = self.get(
            &format!("{}/{tee}/certification/v4/qe/identity", self.base),
            &["sgx-enclave-identity-issuer-chain"],
            |b| signed_next_update(b, "enclaveIdentity"),
        )?;
        let pck_crl = self.get(
            &format!(
                "{}/sgx/certification/v4/pckcrl?ca={}&encoding=der",
                self.base,
                ca.as_str()
            ),
            &["sgx-pck-crl-issuer-chain"],
            crl_next_update,
        )?;
        let root_crl = self.get(
            &format!("{}/sgx/certification/v4/rootcacrl", self.base),
            &[],
            crl_next_update,
        )?;
        let chain = |e: &Entry, names: &[&str], url: &str| -> Result<Vec<u8>, FetchError> {
            names
                .iter()
                .find_map(|n| e.headers.get(*n))
                .map(|v| percent_decode(v).into_bytes())
                .ok_or_else(|| FetchError::BadResponse {
                    url: url.to_owned(),
                    message: format!("no {} header", names.join("/")),
                })
        };
        let mut c = Collateral::default();
        c.tcb_signing_chain = Some(chain(
            &tcb,
            &["tcb-info-issuer-chain", "sgx-tcb-info-issuer-chain"],
            "tcb",
        )?);
        c.pck_crl_issuer_chain = pck_crl
            .headers
            .get("sgx-pck-crl-issuer-chain")
            .map(|v| percent_decode(v).into_bytes());
        c.tcb_info = Some(tcb.body);
        c.qe_identity = Some(qe.body);
        c.pck_crl = Some(pck_crl.body);
        c.root_ca_crl = Some(root_crl.body);
        Ok(c)
    }

    /// GET `url`: from the cache while its `nextUpdate` has not passed, else from the
    /// server. `keep` names the headers to keep; `expiry` validates the body and returns
    /// its `nextUpdate`.
    fn get(
        &self,
        url: &str,
        keep: &[&str],
        expiry: impl Fn(&[u8]) -> Result<OffsetDateTime, String>,
    ) -> Result<Entry, FetchError> {
        let now = self.now.unwrap_or_else(OffsetDateTime::now_utc);
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(url, now)) {
            tracing::debug!(target: "pith_attest::fetch", %url, "Intel PCS cache hit");
            return Ok(hit);
        }
        tracing::debug!(target: "pith_attest::fetch", %url, "Intel PCS request");
        let transport = |e: ureq::Error| FetchError::Transport {
            url: url.to_owned(),
            message: e.to_string(),
        };
        let mut response = self.agent.get(url).call().map_err(transport)?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status,
            });
        }
        let mut headers = BTreeMap::new();
        for name in keep {
            if let Some(v) = response.headers().get(*name).and_then(|v| v.to_str().ok()) {
                headers.insert((*name).to_owned(), v.to_owned());
            }
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()
            .map_err(transport)?;
        let valid_until = expiry(&body).map_err(|message| FetchError::BadResponse {
            url: url.to_owned(),
            message,
        })?;
        let entry = Entry {
            body,
            headers,
            valid_until,
        };
        if let Some(cache) = &self.cache {
            cache.put(url, &entry).map_err(|source| FetchError::Cache {
                path: cache.dir().to_path_buf(),
                source,
            })?;
        }
        Ok(entry)
    }
}

/// `nextUpdate` of a PCS-shaped signed JSON document.
fn signed_next_update(body: &[u8], key: &str) -> Result<OffsetDateTime, String> {
    #[derive(serde::Deserialize)]
    struct N {
        #[serde(rename = "nextUpdate")]
        next_update: String,
    }
    let (text, _) = split_signed(body, key).map_err(|e| e.to_string())?;
    let n: N = serde_json::from_str(text).map_err(|e| format!("{key}: {e}"))?;
    tcb::date(&n.next_update, "nextUpdate").map_err(|e| e.to_string())
}

/// `nextUpdate` of a CRL (DER, PEM or hex).
fn crl_next_update(body: &[u8]) -> Result<OffsetDateTime, String> {
    let der = crl_der(body, "CRL").map_err(|e| e.to_string())?;
    crl_validity(&der)
        .map(|(_, end)| end)
        .map_err(|e| e.to_string())
}

/// Decode `%XX` escapes (PCS URL-encodes the PEM issuer chains in headers).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i.saturating_add(1)..i.saturating_add(3))
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i = i.saturating_add(3);
            }
            _ => {
                out.push(b);
                i = i.saturating_add(1);
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]

    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::{Evidence, Platform, VerifyOptions, verify};

    type Routes = Arc<Mutex<Vec<(String, u16, Vec<(String, String)>, Vec<u8>)>>>;

    /// A real HTTP/1.1 server on 127.0.0.1: answers by request-target prefix from `routes`
    /// and records every target requested.
    struct Server {
        base: String,
        routes: Routes,
        seen: Arc<Mutex<Vec<String>>>,
    }

    impl Server {
        fn start() -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let routes: Routes = Arc::default();
            let seen: Arc<Mutex<Vec<String>>> = Arc::default();
            let (r, s) = (routes.clone(), seen.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        continue;
                    }
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                    }
                    let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    s.lock().unwrap().push(target.clone());
                    let routes = r.lock().unwrap().clone();
                    let (status, headers, body) = routes
                        .iter()
                        .find(|(p, ..)| target.starts_with(p.as_str()))
                        .map(|(_, st, h, b)| (*st, h.clone(), b.clone()))
                        .unwrap_or((404, vec![], b"not found".to_vec()));
                    let mut head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                        body.len()
                    );
                    for (k, v) in headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&body);
                    let _ = reader.read(&mut [0u8; 0]);
                }
            });
            Self { base, routes, seen }
        }
        fn serve(&self, prefix: &str, status: u16, headers: Vec<(String, String)>, body: Vec<u8>) {
            let mut r = self.routes.lock().unwrap();
            r.retain(|(p, ..)| p != prefix);
            r.push((prefix.to_owned(), status, headers, body));
        }
        fn requests(&self) -> usize {
            self.seen.lock().unwrap().len()
        }
    }

    fn encode(pem: &[u8]) -> String {
        pem.iter()
            .map(|&b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    const CASE: &str = "tdx-t1-uptodate";

    fn case_file(name: &str) -> Vec<u8> {
        std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../testdata/attestation")
                .join(CASE)
                .join(name),
        )
        .unwrap()
    }

    fn serve_case(server: &Server) {
        let chain = encode(&case_file("collateral/tcb_signing_chain.pem"));
        server.serve(
            "/tdx/certification/v4/tcb?fmspc=",
            200,
            vec![("TCB-Info-Issuer-Chain".into(), chain.clone())],
            case_file("collateral/tcb_info.json"),
        );
        server.serve(
            "/tdx/certification/v4/qe/identity",
            200,
            vec![("SGX-Enclave-Identity-Issuer-Chain".into(), chain)],
            case_file("collateral/qe_identity.json"),
        );
        server.serve(
            "/sgx/certification/v4/pckcrl?ca=platform&encoding=der",
            200,
            vec![(
                "SGX-PCK-CRL-Issuer-Chain".into(),
                encode(&case_file("collateral/pck_crl_issuer_chain.pem")),
            )],
            case_file("collateral/pck_crl.der"),
        );
        server.serve(
            "/sgx/certification/v4/rootcacrl",
            200,
            vec![],
            case_file("collateral/root_ca_crl.der"),
        );
    }

    fn at() -> OffsetDateTime {
        OffsetDateTime::parse(
            "2025-07-04T10:16:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    }

    #[test]
    fn fetches_verifiable_collateral_caches_and_refetches_after_next_update() {
        let server = Server::start();
        serve_case(&server);
        let cache = tempfile::tempdir().unwrap();
        let quote = case_file("evidence.bin");
        let client = PcsClient::new(&server.base)
            .with_cache_dir(cache.path().to_path_buf())
            .with_clock(at());
        let c = client.collateral_for_quote(&quote).unwrap();
        assert_eq!(server.requests(), 4);
        assert_eq!(
            c.tcb_signing_chain.as_deref(),
            Some(&case_file("collateral/tcb_signing_chain.pem")[..])
        );
        let v = verify(
            &Evidence::new(Platform::Tdx, quote.clone()),
            &c,
            &VerifyOptions::default(),
            at(),
        )
        .unwrap();
        assert_eq!(v.tcb_status(), Some(crate::TcbStatus::UpToDate));

        // Cache hit: no request.
        let again = client.collateral_for_quote(&quote).unwrap();
        assert_eq!(again, c);
        assert_eq!(server.requests(), 4);

        // After the TCBInfo/QE identity nextUpdate (2025-07-19), each expired object is
        // fetched again; the CRLs are still current (their nextUpdate is later) or not.
        let later = OffsetDateTime::parse(
            "2025-07-20T00:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let client2 = PcsClient::new(&server.base)
            .with_cache_dir(cache.path().to_path_buf())
            .with_clock(later);
        client2.collateral_for_quote(&quote).unwrap();
        let refetched = server.seen.lock().unwrap()[4..].to_vec();
        assert!(
            refetched
                .iter()
                .any(|t| t.starts_with("/tdx/certification/v4/tcb")),
            "{refetched:?}"
        );
        assert!(
            refetched
                .iter()
                .any(|t| t.starts_with("/tdx/certification/v4/qe/identity")),
            "{refetched:?}"
        );
    }

    #[test]
    fn server_errors_and_bad_bodies_are_errors() {
        let server = Server::start();
        serve_case(&server);
        server.serve(
            "/sgx/certification/v4/rootcacrl",
            500,
            vec![],
            b"boom".to_vec(),
        );
        let quote = case_file("evidence.bin");
        let client = PcsClient::new(&server.base).with_clock(at());
        match client.collateral_for_quote(&quote) {
            Err(FetchError::Status { status: 500, .. }) => {}
            other => panic!("{other:?}"),
        }
        serve_case(&server);
        server.serve(
            "/tdx/certification/v4/qe/identity",
            200,
            vec![],
            b"{\"not\":\"identity\"}".to_vec(),
        );
        assert!(matches!(
            client.collateral_for_quote(&quote),
            Err(FetchError::BadResponse { .. })
        ));
        serve_case(&server);
        server.serve(
            "/tdx/certification/v4/tcb?fmspc=",
            200,
            vec![],
            case_file("collateral/tcb_info.json"),
        );
        assert!(
            matches!(
                client.collateral_for_quote(&quote),
                Err(FetchError::BadResponse { .. })
            ),
            "missing issuer chain header"
        );
        // Nothing listening.
        let dead = PcsClient::new("http://127.0.0.1:1").with_clock(at());
        assert!(matches!(
            dead.collateral_for_quote(&quote),
            Err(FetchError::Transport { .. })
        ));
        assert!(matches!(
            client.collateral_for_quote(b"not a quote"),
            Err(FetchError::Report(_))
        ));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%0A%zz%"), "a b\n%zz%");
    }
}
