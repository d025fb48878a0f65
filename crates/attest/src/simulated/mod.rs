//! The `simulated` platform: TDX-like evidence signed by an attestation key that a
//! per-network development CA certifies. It lets everything run without TEE hardware while
//! taking the same code path after verification (same [`Claims`], same measurement keys).
//! Simulated evidence proves nothing about isolation; policies reject it by default.
//!
//! Wire format (big-endian integers; `docs/protocol.md`, "Simulated platform"):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `PITHSIM1` |
//! | 8 | 2 | version, `1` |
//! | 10 | 2 | flags: bit 0 debug; other bits zero |
//! | 12 | 8 | timestamp, Unix seconds (signed) |
//! | 20 | 48 | `mr_td` |
//! | 68 | 48 | `mr_config_id` |
//! | 116 | 48 | `mr_owner` |
//! | 164 | 4 × 48 | `rtmr0`..`rtmr3` |
//! | 356 | 48 | `binary_sha384` (SHA-384 of the executable) |
//! | 404 | 64 | `report_data` |
//! | 468 | 2 | `n`, length of the attestation-key certificate (1..=4096) |
//! | 470 | n | attestation-key certificate, DER X.509, P-256, issued by the dev CA |
//! | 470+n | 64 | ECDSA P-256/SHA-256 signature `r‖s` by the attestation key over `pith/simulated-evidence/v1` ‖ bytes\[0..470+n\] |
//!
//! The evidence is exactly `534 + n` bytes: anything shorter or longer is `malformed`.
//!
//! ```
//! use pith_attest::simulated::{DevCa, SimulatedReport};
//! use pith_attest::{verify, Collateral, Evidence, Platform, VerifyOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let now = std::time::SystemTime::now();
//! let ca = DevCa::generate(now)?;
//! let ak = ca.issue_attestation_key(now)?;
//! let report = SimulatedReport::new([7; 64], [1; 48], b"config");
//! let bytes = report.sign(&ak, now)?;
//! let mut options = VerifyOptions::default();
//! options.dev_ca = Some(ca.cert_der().to_vec());
//! let verified = verify(&Evidence::new(Platform::Simulated, bytes), &Collateral::default(),
//!     &options, time::OffsetDateTime::now_utc())?;
//! assert_eq!(verified.report_data(), Some(&[7u8; 64][..]));
//! # Ok(()) }
//! ```

mod dev_ca;

use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

use p256::ecdsa::{Signature, signature::Signer, signature::Verifier};
use sha2::{Digest, Sha384};
use time::OffsetDateTime;

pub use dev_ca::{
    AK_LIFETIME, AttestationKey, CA_LIFETIME, CERT_FILE, DevCa, DevCaError, KEY_FILE,
};

use crate::x509::{Cert, EcKey};
use crate::{
    Claims, Collateral, Error, Platform, Rejected, Value, Verified, VerifyOptions, Window,
};

/// First 8 bytes of every simulated evidence; auto-detection looks for it.
pub const MAGIC: &[u8; 8] = b"PITHSIM1";
/// The only format version.
pub const VERSION: u16 = 1;
/// Domain tag prefixed to the signed bytes.
pub const SIGNING_DOMAIN: &[u8] = b"pith/simulated-evidence/v1";
/// Domain tag of the simulated `mr_td` derivation.
pub const MR_TD_DOMAIN: &[u8] = b"pith/simulated-mrtd/v1";
/// Flag bit: the simulated TD runs in debug mode.
pub const FLAG_DEBUG: u16 = 1;
/// Largest accepted attestation-key certificate.
pub const MAX_CERT_LEN: usize = 4096;

const HEADER_LEN: usize = 470;
const SIG_LEN: usize = 64;
const RTMR_KEYS: [&str; 4] = ["rtmr0", "rtmr1", "rtmr2", "rtmr3"];

/// The fields of a simulated report, before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedReport {
    /// SHA-384 of the configuration the caller passed.
    pub mr_config_id: [u8; 48],
    /// Owner identity (free for the caller; zero by default).
    pub mr_owner: [u8; 48],
    /// Runtime measurement registers (zero by default).
    pub rtmr: [[u8; 48]; 4],
    /// SHA-384 of the executable.
    pub binary_sha384: [u8; 48],
    /// Caller data bound into the evidence.
    pub report_data: [u8; 64],
    /// Debug mode (reported, never turned into an invalid verdict by `verify`).
    pub debug: bool,
}

impl SimulatedReport {
    /// A report for an executable whose SHA-384 is `binary_sha384`, running with
    /// `config` (any bytes the caller treats as its configuration): `mr_config_id` is
    /// SHA-384(config) and `mr_td` is [`mr_td`] of both.
    pub fn new(report_data: [u8; 64], binary_sha384: [u8; 48], config: &[u8]) -> Self {
        let mr_config_id: [u8; 48] = Sha384::digest(config).into();
        Self {
            mr_config_id,
            mr_owner: [0; 48],
            rtmr: [[0; 48]; 4],
            binary_sha384,
            report_data,
            debug: false,
        }
    }

    /// The report's `mr_td`: always [`mr_td`] of `binary_sha384` and `mr_config_id`.
    pub fn mr_td(&self) -> [u8; 48] {
        mr_td(&self.binary_sha384, &self.mr_config_id)
    }

    /// Encode and sign with `ak`, stamping `now` as the timestamp.
    pub fn sign(&self, ak: &AttestationKey, now: SystemTime) -> Result<Vec<u8>, DevCaError> {
        let cert = ak.cert_der();
        let cert_len = u16::try_from(cert.len())
            .ok()
            .filter(|&n| usize::from(n) <= MAX_CERT_LEN)
            .ok_or_else(|| DevCaError::Encode("attestation key certificate too large".into()))?;
        let ts = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_secs()).ok())
            .ok_or_else(|| DevCaError::Encode("time before 1970".into()))?;
        let mut out = Vec::with_capacity(
            HEADER_LEN
                .saturating_add(cert.len())
                .saturating_add(SIG_LEN),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&(if self.debug { FLAG_DEBUG } else { 0 }).to_be_bytes());
        out.extend_from_slice(&ts.to_be_bytes());
        out.extend_from_slice(&self.mr_td());
        out.extend_from_slice(&self.mr_config_id);
        out.extend_from_slice(&self.mr_owner);
        for r in &self.rtmr {
            out.extend_from_slice(r);
        }
        out.extend_from_slice(&self.binary_sha384);
        out.extend_from_slice(&self.report_data);
        out.extend_from_slice(&cert_len.to_be_bytes());
        out.extend_from_slice(cert);
        let sig: Signature = ak.key.sign(&preimage(&out));
        out.extend_from_slice(&sig.to_bytes());
        Ok(out)
    }
}

/// The simulated `mr_td`: SHA-384(`pith/simulated-mrtd/v1` ‖ binary_sha384 ‖ mr_config_id).
/// The same binary with the same configuration always has the same `mr_td`, so
/// allow-lists behave as on hardware.
pub fn mr_td(binary_sha384: &[u8; 48], mr_config_id: &[u8; 48]) -> [u8; 48] {
    let mut h = Sha384::new();
    h.update(MR_TD_DOMAIN);
    h.update(binary_sha384);
    h.update(mr_config_id);
    h.finalize().into()
}

/// SHA-384 of the file at `path` (streamed).
pub fn file_sha384(path: &Path) -> std::io::Result<[u8; 48]> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha384::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        let Some(chunk) = buf.get(..n) else { break };
        if chunk.is_empty() {
            break;
        }
        h.update(chunk);
    }
    Ok(h.finalize().into())
}

/// SHA-384 of the running executable (`std::env::current_exe`).
pub fn current_exe_sha384() -> std::io::Result<[u8; 48]> {
    file_sha384(&std::env::current_exe()?)
}

fn preimage(signed: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_DOMAIN.len().saturating_add(signed.len()));
    m.extend_from_slice(SIGNING_DOMAIN);
    m.extend_from_slice(signed);
    m
}

/// A bounds-checked reader over untrusted bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| Error::malformed(format!("{what}: length overflow")))?;
        let s = self.bytes.get(self.pos..end).ok_or_else(|| {
            Error::malformed(format!("truncated at {what} (offset {})", self.pos))
        })?;
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Error> {
        let s = self.take(N, what)?;
        <[u8; N]>::try_from(s).map_err(|_| Error::malformed(format!("truncated at {what}")))
    }
    fn u16(&mut self, what: &str) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
}

/// Parsed, unverified evidence.
struct Parsed<'a> {
    report: SimulatedReport,
    mr_td: [u8; 48],
    timestamp: i64,
    cert_der: &'a [u8],
    signed: &'a [u8],
    signature: [u8; SIG_LEN],
}

fn parse(bytes: &[u8]) -> Result<Parsed<'_>, Error> {
    let mut c = Cursor { bytes, pos: 0 };
    if c.take(8, "magic")? != MAGIC {
        return Err(Error::malformed(
            "not simulated evidence (magic is not PITHSIM1)",
        ));
    }
    let version = c.u16("version")?;
    if version != VERSION {
        return Err(Error::malformed(format!(
            "simulated evidence version {version}; only {VERSION} exists"
        )));
    }
    let flags = c.u16("flags")?;
    if flags & !FLAG_DEBUG != 0 {
        return Err(Error::malformed(format!(
            "reserved flag bits set: {flags:#06x}"
        )));
    }
    let timestamp = i64::from_be_bytes(c.array("timestamp")?);
    let mr_td = c.array("mr_td")?;
    let mr_config_id = c.array("mr_config_id")?;
    let mr_owner = c.array("mr_owner")?;
    let rtmr = [
        c.array("rtmr0")?,
        c.array("rtmr1")?,
        c.array("rtmr2")?,
        c.array("rtmr3")?,
    ];
    let binary_sha384 = c.array("binary_sha384")?;
    let report_data = c.array("report_data")?;
    let cert_len = usize::from(c.u16("certificate length")?);
    if cert_len == 0 || cert_len > MAX_CERT_LEN {
        return Err(Error::malformed(format!(
            "attestation key certificate length {cert_len} out of range"
        )));
    }
    let cert_der = c.take(cert_len, "attestation key certificate")?;
    let signed_end = c.pos;
    let signature = c.array("signature")?;
    if c.pos != bytes.len() {
        return Err(Error::malformed(format!(
            "{} bytes after the signature",
            bytes.len().saturating_sub(c.pos)
        )));
    }
    let signed = bytes
        .get(..signed_end)
        .ok_or_else(|| Error::malformed("truncated"))?;
    let report = SimulatedReport {
        mr_config_id,
        mr_owner,
        rtmr,
        binary_sha384,
        report_data,
        debug: flags & FLAG_DEBUG != 0,
    };
    Ok(Parsed {
        report,
        mr_td,
        timestamp,
        cert_der,
        signed,
        signature,
    })
}

fn claims(p: &Parsed<'_>) -> Claims {
    let r = &p.report;
    let mut claims = Claims::default();
    let m = &mut claims.measurements;
    m.insert("mr_td".into(), Value::Bytes(p.mr_td.to_vec()));
    m.insert("mr_config_id".into(), Value::Bytes(r.mr_config_id.to_vec()));
    m.insert("mr_owner".into(), Value::Bytes(r.mr_owner.to_vec()));
    for (k, v) in RTMR_KEYS.iter().zip(&r.rtmr) {
        m.insert((*k).into(), Value::Bytes(v.to_vec()));
    }
    m.insert(
        "binary_sha384".into(),
        Value::Bytes(r.binary_sha384.to_vec()),
    );
    claims.report_data = Some(r.report_data.to_vec());
    claims.debug = Some(r.debug);
    claims
        .properties
        .insert("timestamp".into(), serde_json::Value::from(p.timestamp));
    claims
}

pub(crate) fn verify(
    bytes: &[u8],
    _collateral: &Collateral,
    options: &VerifyOptions,
    now: OffsetDateTime,
) -> Result<Verified, Rejected> {
    let reject = |e: Error| Rejected::new(Some(Platform::Simulated), e);
    let parsed = parse(bytes).map_err(reject)?;
    let claims = claims(&parsed);
    let fail = |e: Error| Rejected::new(Some(Platform::Simulated), e).with_claims(claims.clone());

    // 1. The evidence signature, with the key of the (not yet trusted) certificate. Any
    //    defect of that certificate here is a defect of the evidence: `malformed`.
    let ak_cert = Cert::from_der(parsed.cert_der).map_err(|e| {
        fail(Error::malformed(format!(
            "attestation key certificate: {}",
            e.message()
        )))
    })?;
    let ak_key = match ak_cert.ec_key() {
        Ok(EcKey::P256(k)) => k,
        Ok(EcKey::P384(_)) => {
            return Err(fail(Error::malformed("attestation key is not a P-256 key")));
        }
        Err(e) => {
            return Err(fail(Error::malformed(format!(
                "attestation key: {}",
                e.message()
            ))));
        }
    };
    let sig = Signature::from_slice(&parsed.signature).map_err(|_| {
        fail(Error::bad_signature(
            "signature is not a valid P-256 (r, s)",
        ))
    })?;
    ak_key.verify(&preimage(parsed.signed), &sig).map_err(|_| {
        fail(Error::bad_signature(
            "evidence signature does not verify with the attestation key",
        ))
    })?;

    // The derivation is part of the format: a signed report whose mr_td is not derived
    // from its binary and configuration is not a simulated report.
    if parsed.mr_td != parsed.report.mr_td() {
        return Err(fail(Error::malformed(
            "mr_td is not derived from binary_sha384 and mr_config_id",
        )));
    }

    // 2. The certificate chain: attestation key <- development CA (the verifier's, never
    //    one carried in the evidence).
    let ca_bytes = options.dev_ca.as_deref().ok_or_else(|| {
        fail(Error::bad_chain(
            "no development CA given: simulated evidence cannot be verified",
        ))
    })?;
    let ca = Cert::from_pem_or_der(ca_bytes).map_err(|e| {
        fail(Error::bad_chain(format!(
            "development CA is not a certificate: {}",
            e.message()
        )))
    })?;
    if !matches!(ca.ec_key(), Ok(EcKey::P256(_))) {
        return Err(fail(Error::bad_chain(
            "development CA key is not a P-256 key",
        )));
    }
    if ca.is_ca() != Some(true) {
        return Err(fail(Error::bad_chain(
            "development CA certificate is not a CA (basicConstraints)",
        )));
    }
    if !ak_cert.issued_by_name(&ca) {
        return Err(fail(Error::bad_chain(
            "attestation key certificate was issued by another CA",
        )));
    }
    if ak_cert.signature_algorithm() != crate::x509::ECDSA_WITH_SHA256 {
        return Err(fail(Error::bad_chain(
            "attestation key certificate is not signed with ecdsa-with-SHA256",
        )));
    }
    ak_cert.verify_signed_by(&ca).map_err(|e| {
        fail(Error::bad_chain(format!(
            "attestation key certificate does not verify with the development CA key: {}",
            e.message()
        )))
    })?;
    if ak_cert.is_ca() == Some(true) {
        return Err(fail(Error::bad_chain(
            "attestation key certificate is a CA certificate",
        )));
    }

    // 3. Time: both certificates valid at `now`; evidence not from the future.
    let mut window = Window::unbounded();
    for c in [&ca, &ak_cert] {
        c.check_valid_at(now).map_err(fail)?;
        c.narrow(&mut window);
    }
    let stamped = OffsetDateTime::from_unix_timestamp(parsed.timestamp)
        .map_err(|_| fail(Error::malformed("timestamp out of range")))?;
    if now < stamped {
        return Err(fail(Error::new(
            crate::ErrorClass::NotYetValid,
            format!("evidence timestamp {stamped} is after {now}"),
        )));
    }
    window.narrow(stamped, window.end);

    tracing::debug!(target: "pith_attest::simulated", "simulated evidence verified");
    Ok(Verified::new(
        Platform::Simulated,
        claims,
        None,
        None,
        window,
        now,
    ))
}

/// The byte range covered by the signature: everything before it.
pub(crate) fn signed_region(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    parse(bytes).ok().map(|p| 0..p.signed.len())
}

#[cfg(test)]
mod tests;
