//! NVIDIA GPU (Hopper GH100, Blackwell GB100/GB200) and NVSwitch (LS10) SPDM measurement
//! reports.
//!
//! A report is an SPDM (DMTF DSP0274) `GET_MEASUREMENTS` request immediately followed by the
//! signed `MEASUREMENTS` response:
//!
//! ```text
//! request:  SPDMVersion | 0xE0 | Param1 (bit 0: signature requested) | Param2 (operation)
//!           [Nonce 32 | SlotIDParam 1]  (when a signature is requested; SlotIDParam from 1.1)
//!           [RequesterContext 8]        (SPDM 1.3 and later)
//! response: SPDMVersion | 0x60 | Param1 | Param2 (slot id in bits 0..3)
//!           NumberOfBlocks 1 | MeasurementRecordLength 3 (LE) | MeasurementRecord
//!           Nonce 32 | OpaqueDataLength 2 (LE) | OpaqueData
//!           [RequesterContext 8]        (SPDM 1.3 and later)
//!           Signature (ECDSA r ‖ s, big-endian; 96 bytes for P-384)
//! ```
//!
//! Each measurement block is `Index 1 | MeasurementSpecification 1 | MeasurementSize 2 (LE) |
//! Measurement`; with the DMTF specification (bit 0) the measurement is `ValueType 1 |
//! ValueSize 2 (LE) | Value`. NVIDIA opaque data is a list of `Type 2 | Size 2 | Value` TLVs
//! (little-endian), or, with an `NVDAOD` header (magic, profile, major, minor, reserved: 12
//! bytes), `Type 2 | ValueType 2 | Size 2 | Value` entries.
//!
//! Signed message: for SPDM 1.0/1.1 the signature is over `request ‖ response-without-
//! signature` (hash: SHA-384 for P-384 keys, SHA-256 for P-256). From SPDM 1.2 on it is over
//! `combined_spdm_prefix ‖ Hash(request ‖ response-without-signature)`, the prefix being
//! `"dmtf-spdm-v1.N.*"` four times, zero padding and the context
//! `"responder-measurements signing"` (36 bytes with the padding).
//!
//! Checks, in order: structure (`malformed`); the shape of the chain `Collateral.cert_chain`
//! (leaf first: a non-CA signing leaf, names chained; `bad_chain`); the signature with the
//! leaf key (`bad_signature`); the chain's signatures up to the pinned NVIDIA Device Identity
//! CA and every certificate's validity (`bad_chain`, `not_yet_valid`, `cert_expired`); the
//! report's FWID opaque field, where present, inside the leaf's DICE TcbInfo extension
//! (`bad_chain`); the request nonce against `Collateral.nonce` (`nonce_mismatch`).
//! Reference integrity manifests (RIM) and OCSP are not appraised here.

use std::ops::Range;
use std::sync::OnceLock;

use base64::Engine as _;
use const_oid::ObjectIdentifier;
use time::OffsetDateTime;

use crate::error::{Error, ErrorClass, Result};
use crate::x509::{self, Cert, EcKey, HashAlg};
use crate::{
    Claims, Collateral, Measurements, Platform, Rejected, Value, Verified, VerifyOptions, Window,
};

/// The NVIDIA Device Identity CA (PEM), root of GPU and NVSwitch device chains.
const NVIDIA_DEVICE_IDENTITY_CA_PEM: &[u8] =
    include_bytes!("../roots/nvidia/NVIDIA_Device_Identity_CA.pem");
/// SHA-256 of its DER.
const NVIDIA_DEVICE_IDENTITY_CA_SHA256: &str =
    "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48";

/// TCG DICE TcbInfo extension (`tcg-dice-TcbInfo`).
const DICE_TCB_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.5.4.1");
/// The variant some NVIDIA certificates use.
const DICE_TCB_INFO_1: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.5.4.1.1");

const GET_MEASUREMENTS: u8 = 0xE0;
const MEASUREMENTS: u8 = 0x60;
const NONCE_LEN: usize = 32;
const REQUESTER_CONTEXT_LEN: usize = 8;
/// Signature length assumed when no key is at hand (NVIDIA devices sign with P-384).
const DEFAULT_SIGNATURE_LEN: usize = 96;

/// NVIDIA opaque data field types (`OPAQUE_FIELD_ID_*`).
mod opaque {
    pub(super) const DRIVER_VERSION: u16 = 3;
    pub(super) const GPU_INFO: u16 = 4;
    pub(super) const VBIOS_VERSION: u16 = 6;
    pub(super) const CHIP_SKU: u16 = 15;
    pub(super) const PROJECT: u16 = 17;
    pub(super) const PROJECT_SKU: u16 = 18;
    pub(super) const FWID: u16 = 20;
    pub(super) const OPAQUE_DATA_VERSION: u16 = 34;
    /// `NVDAOD` header magic.
    pub(super) const MAGIC: &[u8; 6] = b"NVDAOD";
    pub(super) const HEADER_LEN: usize = 12;
}

fn pinned_root() -> Result<&'static Cert> {
    static ROOT: OnceLock<Option<Cert>> = OnceLock::new();
    ROOT.get_or_init(|| {
        Cert::from_pem_or_der(NVIDIA_DEVICE_IDENTITY_CA_PEM)
            .ok()
            .filter(|c| hex::encode(x509::sha256(c.der())) == NVIDIA_DEVICE_IDENTITY_CA_SHA256)
    })
    .as_ref()
    .ok_or_else(|| Error::bad_chain("pinned NVIDIA Device Identity CA does not parse"))
}

/// A bounds-checked reader over untrusted bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| Error::malformed(format!("{what}: length overflow")))?;
        let out = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| Error::malformed(format!("truncated at {what}")))?;
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self, what: &str) -> Result<u8> {
        self.take(1, what)
            .map(|b| b.first().copied().unwrap_or_default())
    }
    fn le(&mut self, n: usize, what: &str) -> Result<usize> {
        let b = self.take(n, what)?;
        Ok(b.iter()
            .rev()
            .fold(0usize, |acc, x| (acc << 8) | usize::from(*x)))
    }
    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }
}

/// One measurement block of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    index: u8,
    /// `MeasurementSpecification` bit field (bit 0: DMTF).
    spec: u8,
    /// DMTF value type, for DMTF blocks.
    value_type: Option<u8>,
    /// The DMTF value, or the raw measurement for other specifications.
    value: Vec<u8>,
}

/// A parsed (unverified) SPDM measurement report.
#[derive(Debug, Clone)]
struct Report<'a> {
    version: u8,
    nonce: &'a [u8],
    blocks: Vec<Block>,
    opaque: Vec<(u16, Vec<u8>)>,
    /// `request ‖ response` without the signature.
    transcript: &'a [u8],
    signature: &'a [u8],
}

fn version_text(v: u8) -> String {
    format!("{}.{}", v >> 4, v & 0x0f)
}

/// Parse a report whose signature is `sig_len` bytes.
fn parse(bytes: &[u8], sig_len: usize) -> Result<Report<'_>> {
    let mut c = Cursor::new(bytes);
    let version = c.u8("request SPDMVersion")?;
    if !matches!(version, 0x10..=0x13) {
        return Err(Error::malformed(format!(
            "unsupported SPDM version 0x{version:02x} (1.0..1.3)"
        )));
    }
    if c.u8("request code")? != GET_MEASUREMENTS {
        return Err(Error::malformed("first message is not GET_MEASUREMENTS"));
    }
    let attributes = c.u8("request Param1")?;
    let _operation = c.u8("request Param2")?;
    if attributes & 1 == 0 {
        return Err(Error::bad_signature(
            "GET_MEASUREMENTS did not request a signature: report is unsigned",
        ));
    }
    let nonce = c.take(NONCE_LEN, "request nonce")?;
    let slot = if version >= 0x11 {
        c.u8("request SlotIDParam")? & 0x0f
    } else {
        0
    };
    let requester_context = if version >= 0x13 {
        Some(c.take(REQUESTER_CONTEXT_LEN, "request RequesterContext")?)
    } else {
        None
    };

    if c.u8("response SPDMVersion")? != version {
        return Err(Error::malformed(
            "request and response SPDM versions differ",
        ));
    }
    if c.u8("response code")? != MEASUREMENTS {
        return Err(Error::malformed("second message is not MEASUREMENTS"));
    }
    let _param1 = c.u8("response Param1")?;
    let param2 = c.u8("response Param2")?;
    if version >= 0x11 && param2 & 0x0f != slot {
        return Err(Error::malformed(
            "response slot differs from the requested slot",
        ));
    }
    let count = c.u8("NumberOfBlocks")?;
    let record_len = c.le(3, "MeasurementRecordLength")?;
    let record = c.take(record_len, "MeasurementRecord")?;
    let blocks = parse_blocks(record, count)?;
    let _responder_nonce = c.take(NONCE_LEN, "response nonce")?;
    let opaque_len = c.le(2, "OpaqueDataLength")?;
    let opaque_bytes = c.take(opaque_len, "OpaqueData")?;
    let opaque = parse_opaque(opaque_bytes)?;
    if let Some(ctx) = requester_context
        && c.take(REQUESTER_CONTEXT_LEN, "response RequesterContext")? != ctx
    {
        return Err(Error::malformed(
            "response RequesterContext differs from the request's",
        ));
    }
    let signed_end = c.pos;
    let signature = c.take(sig_len, "signature")?;
    // Fixed-size buffers: zero padding after the signature is accepted, anything else is not.
    if c.rest().iter().any(|b| *b != 0) {
        return Err(Error::malformed("non-zero bytes after the signature"));
    }
    let transcript = bytes
        .get(..signed_end)
        .ok_or_else(|| Error::malformed("transcript"))?;
    Ok(Report {
        version,
        nonce,
        blocks,
        opaque,
        transcript,
        signature,
    })
}

fn parse_blocks(record: &[u8], count: u8) -> Result<Vec<Block>> {
    let mut c = Cursor::new(record);
    let mut blocks = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let index = c.u8("block index")?;
        let spec = c.u8("block MeasurementSpecification")?;
        let size = c.le(2, "block MeasurementSize")?;
        let measurement = c.take(size, "block measurement")?;
        let (value_type, value) = if spec & 1 == 1 {
            let mut m = Cursor::new(measurement);
            let value_type = m.u8("DMTF value type")?;
            let value_size = m.le(2, "DMTF value size")?;
            let value = m.take(value_size, "DMTF value")?;
            if !m.rest().is_empty() {
                return Err(Error::malformed(format!(
                    "block {index}: DMTF value size does not fill the measurement"
                )));
            }
            (Some(value_type), value.to_vec())
        } else {
            (None, measurement.to_vec())
        };
        if blocks.iter().any(|b: &Block| b.index == index) {
            return Err(Error::malformed(format!(
                "duplicate measurement block {index}"
            )));
        }
        blocks.push(Block {
            index,
            spec,
            value_type,
            value,
        });
    }
    if !c.rest().is_empty() {
        return Err(Error::malformed(
            "measurement record longer than its blocks",
        ));
    }
    Ok(blocks)
}

fn parse_opaque(bytes: &[u8]) -> Result<Vec<(u16, Vec<u8>)>> {
    let (mut c, typed) = match bytes.get(..opaque::HEADER_LEN) {
        Some(h) if h.starts_with(opaque::MAGIC) => (
            Cursor::new(bytes.get(opaque::HEADER_LEN..).unwrap_or_default()),
            true,
        ),
        _ => (Cursor::new(bytes), false),
    };
    let mut out = Vec::new();
    while !c.rest().is_empty() {
        let kind = u16::try_from(c.le(2, "opaque type")?).unwrap_or(u16::MAX);
        if typed {
            c.take(2, "opaque value type")?;
        }
        let size = c.le(2, "opaque size")?;
        out.push((kind, c.take(size, "opaque value")?.to_vec()));
    }
    Ok(out)
}

fn opaque_field<'r>(report: &'r Report<'_>, kind: u16) -> Option<&'r [u8]> {
    report
        .opaque
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, v)| v.as_slice())
}

/// A NUL-terminated text field.
fn c_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned()
}

/// NVIDIA's VBIOS version rendering: the bytes read little-endian as hex, the upper half
/// followed by the last byte of the lower half, dot-separated pairs (`96.00.9f.00.01`).
fn vbios_text(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().rev().map(|b| format!("{b:02x}")).collect();
    let half = hex.len() / 2;
    let (Some(upper), Some(last)) = (
        hex.get(half..),
        half.checked_sub(2).and_then(|s| hex.get(s..half)),
    ) else {
        return hex;
    };
    let joined = format!("{upper}{last}");
    joined
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join(".")
}

/// Measurements and properties of report `device` (0 for a single report). Measurement
/// blocks are always `gpu{device}_block{n}`; versions and properties carry the
/// `gpu{device}_` prefix only in multi-device evidence (`prefix` empty otherwise).
fn claims_into(report: &Report<'_>, device: usize, prefix: &str, claims: &mut Claims) {
    let m: &mut Measurements = &mut claims.measurements;
    for b in &report.blocks {
        m.insert(
            format!("gpu{device}_block{}", b.index),
            Value::Bytes(b.value.clone()),
        );
    }
    if let Some(v) = opaque_field(report, opaque::DRIVER_VERSION) {
        m.insert(format!("{prefix}driver_version"), Value::Text(c_text(v)));
    }
    if let Some(v) = opaque_field(report, opaque::VBIOS_VERSION) {
        m.insert(format!("{prefix}vbios_version"), Value::Text(vbios_text(v)));
    }
    let p = &mut claims.properties;
    p.insert(
        format!("{prefix}spdm_version"),
        serde_json::Value::from(version_text(report.version)),
    );
    let types: serde_json::Map<String, serde_json::Value> = report
        .blocks
        .iter()
        .filter_map(|b| {
            b.value_type
                .map(|t| (b.index.to_string(), serde_json::Value::from(t)))
        })
        .collect();
    p.insert(
        format!("{prefix}block_value_types"),
        serde_json::Value::Object(types),
    );
    let text_fields = [
        (opaque::CHIP_SKU, "chip_sku"),
        (opaque::PROJECT, "project"),
        (opaque::PROJECT_SKU, "project_sku"),
    ];
    for (kind, name) in text_fields {
        if let Some(v) = opaque_field(report, kind) {
            p.insert(
                format!("{prefix}{name}"),
                serde_json::Value::from(c_text(v)),
            );
        }
    }
    for (kind, name) in [
        (opaque::FWID, "fwid"),
        (opaque::GPU_INFO, "gpu_info"),
        (opaque::OPAQUE_DATA_VERSION, "opaque_data_version"),
    ] {
        if let Some(v) = opaque_field(report, kind) {
            p.insert(
                format!("{prefix}{name}"),
                serde_json::Value::from(hex::encode(v)),
            );
        }
    }
}

/// The message the responder signed (see the module docs).
fn signed_message(report: &Report<'_>, hash: HashAlg) -> Vec<u8> {
    if report.version < 0x12 {
        return report.transcript.to_vec();
    }
    const CONTEXT: &[u8] = b"responder-measurements signing";
    let prefix = format!("dmtf-spdm-v{}.*", version_text(report.version));
    let mut m = Vec::with_capacity(164);
    for _ in 0..4 {
        m.extend_from_slice(prefix.as_bytes());
    }
    m.resize(
        m.len()
            .saturating_add(36usize.saturating_sub(CONTEXT.len())),
        0,
    );
    m.extend_from_slice(CONTEXT);
    m.extend_from_slice(&hash.digest(report.transcript));
    m
}

/// Find `04 len fwid` (an OCTET STRING holding the FWID digest) in a TcbInfo extension.
fn fwid_in_leaf(leaf: &Cert, fwid: &[u8]) -> bool {
    let Ok(len) = u8::try_from(fwid.len()) else {
        return false;
    };
    let mut needle = vec![0x04];
    if len >= 0x80 {
        needle.push(0x81);
    }
    needle.push(len);
    needle.extend_from_slice(fwid);
    [DICE_TCB_INFO, DICE_TCB_INFO_1]
        .into_iter()
        .filter_map(|oid| leaf.extension(oid))
        .any(|ext| ext.windows(needle.len()).any(|w| w == needle.as_slice()))
}

fn parse_nonce_hex(bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| Error::malformed(format!("{what} is not text")))?;
    let text = text.trim();
    let text = text.strip_prefix("0x").unwrap_or(text);
    hex::decode(text).map_err(|_| Error::malformed(format!("{what} is not hex")))
}

/// Verify one report against `chain` (leaf first); returns the chain's window.
fn verify_report(
    bytes: &[u8],
    chain_pem: &[u8],
    expected_nonces: &[Vec<u8>],
    now: OffsetDateTime,
    device: usize,
    prefix: &str,
    claims: &mut Claims,
) -> Result<Window> {
    // Structure first (with the default signature size), so claims are available on failure.
    let chain = x509::parse_certs(chain_pem)
        .map_err(|e| Error::bad_chain(format!("certificate chain: {}", e.message())))?;
    let leaf = chain
        .first()
        .ok_or_else(|| Error::bad_chain("empty certificate chain"))?;
    let key = leaf.ec_key();
    let (sig_len, hash) = match &key {
        Ok(EcKey::P256(_)) => (64, HashAlg::Sha256),
        _ => (DEFAULT_SIGNATURE_LEN, HashAlg::Sha384),
    };
    let report = parse(bytes, sig_len)?;
    claims_into(&report, device, prefix, claims);
    if prefix.is_empty() {
        claims.nonce = Some(report.nonce.to_vec());
    }

    // Chain shape first (cheap): a signing end-entity certificate, name-chained up to the
    // pinned root. The cryptographic chain check follows the report signature, so that a
    // corrupted report costs one signature verification.
    let root = pinned_root()?;
    if chain.len() < 2 && chain.first().map(Cert::der) == Some(root.der()) {
        return Err(Error::bad_chain(
            "chain has no signing certificate below the root",
        ));
    }
    if leaf.is_ca() == Some(true) || leaf.der() == root.der() {
        return Err(Error::bad_chain(format!(
            "first certificate {} is a CA, not the signing certificate",
            leaf.subject()
        )));
    }
    for pair in chain.windows(2) {
        if let [child, parent] = pair
            && !child.issued_by_name(parent)
        {
            return Err(Error::bad_chain(format!(
                "{} is not issued by {}",
                child.subject(),
                parent.subject()
            )));
        }
    }

    let key = key?;
    key.verify_raw(hash, &signed_message(&report, hash), report.signature)
        .map_err(|_| {
            Error::bad_signature(
                "SPDM measurement signature does not verify with the leaf certificate",
            )
        })?;

    let mut window = Window::unbounded();
    x509::verify_chain(&chain, &[root], now, &mut window).map_err(|e| match e.class() {
        ErrorClass::Malformed => Error::bad_chain(e.message()),
        _ => e,
    })?;

    if let Some(fwid) = opaque_field(&report, opaque::FWID)
        && !fwid_in_leaf(leaf, fwid)
    {
        return Err(Error::bad_chain(
            "report FWID does not occur in the leaf certificate's DICE TcbInfo",
        ));
    }
    for expected in expected_nonces {
        if expected.as_slice() != report.nonce {
            return Err(Error::new(
                ErrorClass::NonceMismatch,
                format!(
                    "report nonce {} differs from expected {}",
                    hex::encode(report.nonce),
                    hex::encode(expected)
                ),
            ));
        }
    }
    Ok(window)
}

/// One entry of NVIDIA's serialized evidence list.
#[derive(Debug, serde::Deserialize)]
struct JsonEntry {
    #[serde(default)]
    arch: Option<String>,
    evidence: String,
    certificate: String,
    #[serde(default)]
    nonce: Option<String>,
}

fn b64(text: &str, what: &str) -> Result<Vec<u8>> {
    let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean.as_bytes())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(clean.as_bytes()))
        .map_err(|_| Error::malformed(format!("{what} is not base64")))
}

fn is_json(bytes: &[u8]) -> bool {
    matches!(
        bytes.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'[' | b'{')
    )
}

fn verify_inner(
    bytes: &[u8],
    collateral: &Collateral,
    now: OffsetDateTime,
    claims: &mut Claims,
) -> Result<Window> {
    let mut expected = Vec::new();
    if let Some(n) = &collateral.nonce {
        expected.push(parse_nonce_hex(n, "nonce.hex")?);
    }
    if !is_json(bytes) {
        let chain = collateral
            .cert_chain
            .as_deref()
            .ok_or_else(|| Error::missing("NVIDIA report without cert_chain.pem"))?;
        return verify_report(bytes, chain, &expected, now, 0, "", claims);
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::malformed(format!("evidence.json: {e}")))?;
    let entries: Vec<JsonEntry> = match value {
        serde_json::Value::Array(_) => serde_json::from_value(value),
        other => serde_json::from_value(other).map(|e| vec![e]),
    }
    .map_err(|e| Error::malformed(format!("evidence.json entries: {e}")))?;
    if entries.is_empty() {
        return Err(Error::malformed("evidence.json has no entries"));
    }
    let multi = entries.len() > 1;
    let mut window = Window::unbounded();
    for (i, entry) in entries.iter().enumerate() {
        let prefix = if multi {
            format!("gpu{i}_")
        } else {
            String::new()
        };
        let report = b64(&entry.evidence, "evidence")?;
        let chain = b64(&entry.certificate, "certificate")?;
        let mut nonces = expected.clone();
        if let Some(n) = &entry.nonce {
            nonces.push(parse_nonce_hex(n.as_bytes(), "entry nonce")?);
        }
        if let Some(arch) = &entry.arch {
            claims.properties.insert(
                format!("{prefix}arch"),
                serde_json::Value::from(arch.clone()),
            );
        }
        let w = verify_report(&report, &chain, &nonces, now, i, &prefix, claims)
            .map_err(|e| Error::new(e.class(), format!("entry {i}: {}", e.message())))?;
        window.narrow(w.start, w.end);
        if !multi {
            continue;
        }
        if i == 0 {
            claims.nonce = entry
                .nonce
                .as_deref()
                .and_then(|n| parse_nonce_hex(n.as_bytes(), "nonce").ok());
        }
    }
    if multi {
        // Versions shared by every device are also reported unprefixed (they are part of
        // the measurement hash); per-device values stay under `gpu{i}_`.
        for name in ["driver_version", "vbios_version"] {
            let values: Vec<&Value> = (0..entries.len())
                .filter_map(|i| claims.measurements.get(&format!("gpu{i}_{name}")))
                .collect();
            if let Some(first) = values.first()
                && values.len() == entries.len()
                && values.iter().all(|v| v == first)
            {
                let v = (*first).clone();
                claims.measurements.insert(name.to_string(), v);
            }
        }
    }
    claims
        .properties
        .insert("devices".into(), serde_json::Value::from(entries.len()));
    Ok(window)
}

pub(crate) fn verify(
    bytes: &[u8],
    collateral: &Collateral,
    _options: &VerifyOptions,
    now: OffsetDateTime,
) -> Result<Verified, Rejected> {
    let mut claims = Claims::default();
    match verify_inner(bytes, collateral, now, &mut claims) {
        Ok(window) => Ok(Verified::new(
            Platform::NvidiaGpu,
            claims,
            None,
            None,
            window,
            now,
        )),
        Err(e) => {
            let r = Rejected::new(Some(Platform::NvidiaGpu), e);
            Err(if claims == Claims::default() {
                r
            } else {
                r.with_claims(claims)
            })
        }
    }
}

/// The byte range of `bytes` covered by the evidence signature: request and response up to
/// the signature (assuming NVIDIA's 96-byte P-384 signature). `None` for `evidence.json`.
pub(crate) fn signed_region(bytes: &[u8]) -> Option<Range<usize>> {
    if is_json(bytes) {
        return None;
    }
    parse(bytes, DEFAULT_SIGNATURE_LEN)
        .ok()
        .map(|r| 0..r.transcript.len())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )]
    #![allow(clippy::field_reassign_with_default, clippy::result_large_err)]

    use super::*;
    use time::macros::datetime;

    const AT: OffsetDateTime = datetime!(2026-01-15 0:00 UTC);

    fn dir(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/attestation")
            .join(name)
    }
    fn load(name: &str) -> (Vec<u8>, Collateral) {
        let d = dir(name);
        let ev = std::fs::read(d.join("evidence.bin"))
            .or_else(|_| std::fs::read(d.join("evidence.json")))
            .unwrap();
        (
            ev,
            Collateral::from_dir(&d.join("collateral")).unwrap_or_default(),
        )
    }
    fn run(bytes: &[u8], c: &Collateral) -> Result<Verified, Rejected> {
        verify(bytes, c, &VerifyOptions::default(), AT)
    }
    fn class(r: Result<Verified, Rejected>) -> ErrorClass {
        r.map(|_| ()).unwrap_err().error.class()
    }

    #[test]
    fn pinned_root_fingerprint() {
        assert_eq!(
            hex::encode(x509::sha256(pinned_root().unwrap().der())),
            NVIDIA_DEVICE_IDENTITY_CA_SHA256
        );
    }

    #[test]
    fn hopper_report_claims() {
        let (ev, c) = load("nvidia-v1-hopper");
        let v = run(&ev, &c).unwrap();
        let m = v.measurements();
        assert_eq!(m["driver_version"], Value::Text("550.90.07".into()));
        assert_eq!(m["vbios_version"], Value::Text("96.00.9f.00.01".into()));
        assert_eq!(m.keys().filter(|k| k.starts_with("gpu0_block")).count(), 64);
        assert!(matches!(&m["gpu0_block1"], Value::Bytes(b) if b.len() == 48));
        assert_eq!(
            v.claims().nonce.as_deref(),
            Some(
                parse_nonce_hex(c.nonce.as_ref().unwrap(), "n")
                    .unwrap()
                    .as_slice()
            )
        );
        assert_eq!(v.claims().properties["spdm_version"], "1.1");
    }

    #[test]
    fn wrong_nonce() {
        let (ev, mut c) = load("nvidia-v1-hopper");
        c.nonce = Some(b"00".repeat(32));
        assert_eq!(class(run(&ev, &c)), ErrorClass::NonceMismatch);
        c.nonce = Some(b"xyz".to_vec());
        assert_eq!(class(run(&ev, &c)), ErrorClass::Malformed);
        c.nonce = None;
        run(&ev, &c).unwrap();
    }

    #[test]
    fn chain_problems() {
        let (ev, mut c) = load("nvidia-v1-hopper");
        let chain = x509::parse_certs(c.cert_chain.as_ref().unwrap()).unwrap();
        let pem = |certs: &[Cert]| -> Vec<u8> {
            certs
                .iter()
                .map(|c| {
                    format!(
                        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                        base64::engine::general_purpose::STANDARD.encode(c.der())
                    )
                })
                .collect::<String>()
                .into_bytes()
        };
        // Root swapped for another vendor's: does not lead to the pinned root.
        let aws = Cert::from_pem_or_der(include_bytes!(
            "../roots/aws/aws_nitro_enclaves_root_G1.pem"
        ))
        .unwrap();
        let mut swapped = chain.clone();
        *swapped.last_mut().unwrap() = aws;
        c.cert_chain = Some(pem(&swapped));
        assert_eq!(class(run(&ev, &c)), ErrorClass::BadChain);
        // Missing intermediate.
        let mut gap = chain.clone();
        gap.remove(2);
        c.cert_chain = Some(pem(&gap));
        assert_eq!(class(run(&ev, &c)), ErrorClass::BadChain);
        // Chain without the root itself: the pinned root completes it.
        c.cert_chain = Some(pem(&chain[..chain.len() - 1]));
        run(&ev, &c).unwrap();
        // No chain at all.
        c.cert_chain = None;
        assert_eq!(class(run(&ev, &c)), ErrorClass::MissingCollateral);
        // A leaf from another device: FWID / signature mismatch.
        let (_, other) = load("nvidia-v4d-ls10-switch");
        c.cert_chain = other.cert_chain;
        assert!(matches!(
            class(run(&ev, &c)),
            ErrorClass::BadSignature | ErrorClass::BadChain
        ));
    }

    #[test]
    fn trailing_bytes() {
        let (mut ev, c) = load("nvidia-v1-hopper");
        ev.extend_from_slice(&[0; 7]);
        run(&ev, &c).unwrap();
        ev.push(1);
        assert_eq!(class(run(&ev, &c)), ErrorClass::Malformed);
        let (ev, c) = load("nvidia-v1-hopper");
        assert_eq!(class(run(&ev[..ev.len() - 1], &c)), ErrorClass::Malformed);
    }

    #[test]
    fn unsigned_and_wrong_codes() {
        let (ev, c) = load("nvidia-v1-hopper");
        let mut e = ev.clone();
        e[2] = 0; // signature not requested
        assert_eq!(class(run(&e, &c)), ErrorClass::BadSignature);
        let mut e = ev.clone();
        e[1] = 0xE1;
        assert_eq!(class(run(&e, &c)), ErrorClass::Malformed);
        let mut e = ev.clone();
        e[37] = 0x12; // response version differs from the request's
        assert_eq!(class(run(&e, &c)), ErrorClass::Malformed);
        let mut e = ev.clone();
        e[0] = 0x20;
        assert_eq!(class(run(&e, &c)), ErrorClass::Malformed);
    }

    /// Re-frame the 1.1 report as SPDM 1.0 / 1.2 / 1.3: parsing follows each version's
    /// layout and the signature (made for 1.1) no longer verifies.
    #[test]
    fn spdm_version_variants() {
        let (ev, c) = load("nvidia-v1-hopper");
        let req = &ev[..37];
        let resp = &ev[37..];
        // 1.0: no SlotIDParam.
        let mut v10 = req[..36].to_vec();
        v10[0] = 0x10;
        v10.extend_from_slice(resp);
        v10[36] = 0x10;
        let r = parse(&v10, 96).unwrap();
        assert_eq!((r.version, r.transcript.len()), (0x10, ev.len() - 1 - 96));
        assert_eq!(class(run(&v10, &c)), ErrorClass::BadSignature);
        // 1.2: same layout, prefixed signed message.
        let mut v12 = ev.clone();
        v12[0] = 0x12;
        v12[37] = 0x12;
        let r = parse(&v12, 96).unwrap();
        let msg = signed_message(&r, HashAlg::Sha384);
        assert!(msg.starts_with(b"dmtf-spdm-v1.2.*dmtf-spdm-v1.2.*"));
        assert_eq!(msg.len(), 64 + 36 + 48);
        assert_eq!(&msg[64 + 6..100], b"responder-measurements signing");
        assert_eq!(class(run(&v12, &c)), ErrorClass::BadSignature);
        // 1.3: RequesterContext after SlotIDParam and after the opaque data.
        let ctx = [7u8; 8];
        let sig_at = ev.len() - 96;
        let mut v13 = req.to_vec();
        v13[0] = 0x13;
        v13.extend_from_slice(&ctx);
        v13.extend_from_slice(&resp[..sig_at - 37]);
        v13[37 + 8] = 0x13;
        v13.extend_from_slice(&ctx);
        v13.extend_from_slice(&ev[sig_at..]);
        let r = parse(&v13, 96).unwrap();
        assert_eq!(r.blocks.len(), 64);
        assert_eq!(class(run(&v13, &c)), ErrorClass::BadSignature);
        // 1.3 with a response context that differs from the request's.
        let mut bad = v13.clone();
        let at = bad.len() - 96 - 1;
        bad[at] ^= 1;
        assert_eq!(class(run(&bad, &c)), ErrorClass::Malformed);
    }

    #[test]
    fn fwid_must_be_in_leaf() {
        let (ev, c) = load("nvidia-v1-hopper");
        let chain = x509::parse_certs(c.cert_chain.as_ref().unwrap()).unwrap();
        let report = parse(&ev, 96).unwrap();
        let fwid = opaque_field(&report, opaque::FWID).unwrap().to_vec();
        assert_eq!(fwid.len(), 48);
        assert!(fwid_in_leaf(&chain[0], &fwid));
        let mut other = fwid.clone();
        other[0] ^= 1;
        assert!(!fwid_in_leaf(&chain[0], &other));
        // The intermediate (BROM) certificate carries no FWID of this firmware.
        assert!(!fwid_in_leaf(&chain[1], &fwid));
    }

    #[test]
    fn opaque_with_header() {
        let mut raw = b"NVDAOD".to_vec();
        raw.extend_from_slice(&[0, 0, 1, 0, 0, 0]);
        raw.extend_from_slice(&[3, 0, 0x80, 0, 4, 0, b'5', b'9', b'0', 0]);
        assert_eq!(parse_opaque(&raw).unwrap(), vec![(3, b"590\0".to_vec())]);
        raw.push(1);
        assert!(parse_opaque(&raw).is_err());
        assert_eq!(
            vbios_text(&[0x00, 0x9f, 0x00, 0x96, 0x01, 0, 0, 0]),
            "96.00.9f.00.01"
        );
    }

    #[test]
    fn evidence_json_entries() {
        let (ev, c) = load("nvidia-v5-hopper-4gpu");
        let v = run(&ev, &c).unwrap();
        let m = v.measurements();
        assert!(m.contains_key("gpu3_driver_version"));
        assert!(m.contains_key("gpu3_block1"));
        assert_eq!(m.get("driver_version"), m.get("gpu0_driver_version"));
        // Break one entry's nonce: the whole list fails.
        let mut list: Vec<serde_json::Value> = serde_json::from_slice(&ev).unwrap();
        list[2]["nonce"] = serde_json::Value::from("11".repeat(32));
        let bad = serde_json::to_vec(&list).unwrap();
        assert_eq!(
            class(run(&bad, &Collateral::default())),
            ErrorClass::NonceMismatch
        );
        // Not JSON of the right shape.
        assert_eq!(
            class(run(b"[{\"evidence\": 1}]", &c)),
            ErrorClass::Malformed
        );
        assert_eq!(class(run(b"[]", &c)), ErrorClass::Malformed);
        // Single entry: blocks of device 0, no other prefixes.
        let (ev, c) = load("nvidia-v5-ls10-switch");
        let v = run(&ev, &c).unwrap();
        assert!(
            v.measurements()
                .keys()
                .all(|k| !k.starts_with("gpu") || k.starts_with("gpu0_block"))
        );
        assert!(v.measurements().contains_key("gpu0_block1"));
    }

    #[test]
    fn garbage_never_panics() {
        let (ev, c) = load("nvidia-v1-hopper");
        for len in (0..ev.len()).step_by(7) {
            let _ = run(&ev[..len], &c);
        }
        for i in (0..200).step_by(3) {
            let mut e = ev.clone();
            e[i] = 0xff;
            let _ = run(&e, &c);
        }
    }
}
