//! AWS Nitro Enclaves attestation documents.
//!
//! A document is one CBOR data item: a `COSE_Sign1` (RFC 9052) array
//! `[protected: bstr, unprotected: map, payload: bstr, signature: bstr]`, optionally wrapped
//! in CBOR tag 18. The protected header must name ES384 (`{1: -35}`); the signature is
//! ECDSA P-384 / SHA-384 (`r ‖ s`, 96 bytes) over the COSE `Sig_structure`
//! `["Signature1", protected, h'', payload]`. The payload is a map (definite or indefinite
//! length) with `module_id`, `digest` (`"SHA384"`), `timestamp` (ms since the Unix epoch),
//! `pcrs` (`{index: bstr}`), `certificate` (the signing leaf, DER), `cabundle` (DER
//! certificates, root first) and optional `public_key`, `user_data`, `nonce`.
//!
//! Checks, in order: envelope and payload structure (`malformed`), signature with the leaf
//! key (`bad_signature`), chain leaf ← cabundle with `cabundle[0]` DER-equal to the pinned AWS
//! Nitro Enclaves root G1 (`bad_chain`), validity of every certificate at `now`
//! (`not_yet_valid` / `cert_expired`), the document timestamp not after `now`
//! (`not_yet_valid`), then `expected_pcrs.json` if given (`pcr_mismatch`).
//! Debug mode (PCR0 all zero) is reported in [`Claims::debug`], never rejected here.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::OnceLock;

use time::OffsetDateTime;

use crate::cbor::{self, Cbor, map_get};
use crate::error::{Error, ErrorClass, Result};
use crate::x509::{self, Cert, HashAlg};
use crate::{Claims, Collateral, Platform, Rejected, Value, Verified, VerifyOptions, Window};

/// The AWS Nitro Enclaves root G1 (PEM), as published by AWS.
const AWS_NITRO_ROOT_G1_PEM: &[u8] = include_bytes!("../roots/aws/aws_nitro_enclaves_root_G1.pem");

/// SHA-256 of the root's DER, as published by AWS.
const AWS_NITRO_ROOT_G1_SHA256: &str =
    "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b";

/// COSE tag for COSE_Sign1.
const COSE_SIGN1_TAG: u64 = 18;
/// COSE algorithm identifier ES384.
const COSE_ALG_ES384: i128 = -35;

fn pinned_root() -> Result<&'static Cert> {
    static ROOT: OnceLock<Option<Cert>> = OnceLock::new();
    ROOT.get_or_init(|| {
        Cert::from_pem_or_der(AWS_NITRO_ROOT_G1_PEM)
            .ok()
            .filter(|c| hex::encode(x509::sha256(c.der())) == AWS_NITRO_ROOT_G1_SHA256)
    })
    .as_ref()
    .ok_or_else(|| Error::bad_chain("pinned AWS Nitro root does not parse"))
}

/// The parts of a COSE_Sign1 envelope.
struct Envelope<'a> {
    protected: &'a [u8],
    payload: &'a [u8],
    payload_range: Range<usize>,
    signature: &'a [u8],
}

/// A parsed (unverified) attestation document payload.
struct Document {
    module_id: String,
    digest: String,
    timestamp: u64,
    pcrs: BTreeMap<u64, Vec<u8>>,
    certificate: Vec<u8>,
    cabundle: Vec<Vec<u8>>,
    public_key: Option<Vec<u8>>,
    user_data: Option<Vec<u8>>,
    nonce: Option<Vec<u8>>,
}

fn envelope(bytes: &[u8]) -> Result<Envelope<'_>> {
    let item = Cbor::decode_one(bytes)?;
    let item = match item {
        Cbor::Tag(COSE_SIGN1_TAG, inner) => *inner,
        Cbor::Tag(t, _) => {
            return Err(Error::malformed(format!(
                "unexpected CBOR tag {t} (COSE_Sign1 is 18)"
            )));
        }
        other => other,
    };
    let parts = item
        .as_array()
        .ok_or_else(|| Error::malformed("COSE_Sign1 is not an array"))?;
    let [protected, unprotected, payload, signature] = parts else {
        return Err(Error::malformed(format!(
            "COSE_Sign1 has {} elements, expected 4",
            parts.len()
        )));
    };
    let definite = |c: &Cbor<'_>, what: &str| -> Result<Range<usize>> {
        c.as_bytes().and_then(|b| b.range.clone()).ok_or_else(|| {
            Error::malformed(format!(
                "COSE_Sign1 {what} is not a definite-length byte string"
            ))
        })
    };
    let protected_range = definite(protected, "protected header")?;
    let payload_range = definite(payload, "payload")?;
    let signature_range = definite(signature, "signature")?;
    if unprotected.as_map().is_none() {
        return Err(Error::malformed(
            "COSE_Sign1 unprotected header is not a map",
        ));
    }
    let slice = |r: &Range<usize>| {
        bytes
            .get(r.clone())
            .ok_or_else(|| Error::malformed("COSE range"))
    };
    Ok(Envelope {
        protected: slice(&protected_range)?,
        payload: slice(&payload_range)?,
        payload_range,
        signature: slice(&signature_range)?,
    })
}

fn check_protected(protected: &[u8]) -> Result<()> {
    let header = Cbor::decode_one(protected)?;
    let map = header
        .as_map()
        .ok_or_else(|| Error::malformed("COSE protected header is not a map"))?;
    let mut alg = None;
    for (k, v) in map {
        if k.as_int() == Some(1) {
            if alg.is_some() {
                return Err(Error::malformed("duplicate COSE alg"));
            }
            alg = Some(
                v.as_int()
                    .ok_or_else(|| Error::malformed("COSE alg is not an integer"))?,
            );
        }
    }
    match alg {
        Some(COSE_ALG_ES384) => Ok(()),
        Some(a) => Err(Error::malformed(format!("COSE alg {a} is not ES384 (-35)"))),
        None => Err(Error::malformed("COSE protected header has no alg")),
    }
}

fn opt_bytes(map: &[(Cbor<'_>, Cbor<'_>)], key: &str, max: usize) -> Result<Option<Vec<u8>>> {
    match map_get(map, key)? {
        None | Some(Cbor::Null) => Ok(None),
        Some(Cbor::Bytes(b)) if b.bytes.len() <= max => Ok(Some(b.bytes.to_vec())),
        Some(_) => Err(Error::malformed(format!(
            "{key} is not a byte string of at most {max} bytes"
        ))),
    }
}

fn document(payload: &[u8]) -> Result<Document> {
    let item = Cbor::decode_one(payload)?;
    let map = item
        .as_map()
        .ok_or_else(|| Error::malformed("attestation document is not a map"))?;
    let field = |key: &str| -> Result<&Cbor<'_>> {
        map_get(map, key)?
            .ok_or_else(|| Error::malformed(format!("attestation document has no {key}")))
    };
    let module_id = field("module_id")?
        .as_text()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::malformed("module_id is not a non-empty text"))?
        .to_string();
    let digest = field("digest")?
        .as_text()
        .ok_or_else(|| Error::malformed("digest is not text"))?
        .to_string();
    if digest != "SHA384" {
        return Err(Error::malformed(format!("digest {digest:?} is not SHA384")));
    }
    let timestamp = field("timestamp")?
        .as_uint()
        .filter(|t| *t > 0)
        .ok_or_else(|| Error::malformed("timestamp is not a positive integer"))?;
    let pcr_map = field("pcrs")?
        .as_map()
        .ok_or_else(|| Error::malformed("pcrs is not a map"))?;
    if pcr_map.is_empty() || pcr_map.len() > 32 {
        return Err(Error::malformed(format!(
            "{} PCRs (1..=32 allowed)",
            pcr_map.len()
        )));
    }
    let mut pcrs = BTreeMap::new();
    for (k, v) in pcr_map {
        let index = k
            .as_uint()
            .filter(|i| *i < 32)
            .ok_or_else(|| Error::malformed("PCR index is not 0..31"))?;
        let value = v
            .as_bytes()
            .filter(|b| matches!(b.bytes.len(), 32 | 48 | 64))
            .ok_or_else(|| Error::malformed(format!("PCR{index} is not a 32/48/64-byte string")))?;
        if pcrs.insert(index, value.bytes.to_vec()).is_some() {
            return Err(Error::malformed(format!("duplicate PCR{index}")));
        }
    }
    let certificate = field("certificate")?
        .as_bytes()
        .filter(|b| !b.bytes.is_empty())
        .ok_or_else(|| Error::malformed("certificate is not a byte string"))?
        .bytes
        .to_vec();
    let bundle = field("cabundle")?
        .as_array()
        .ok_or_else(|| Error::malformed("cabundle is not an array"))?;
    if bundle.is_empty() {
        return Err(Error::malformed("cabundle is empty"));
    }
    let cabundle = bundle
        .iter()
        .map(|c| {
            c.as_bytes()
                .filter(|b| !b.bytes.is_empty())
                .map(|b| b.bytes.to_vec())
                .ok_or_else(|| Error::malformed("cabundle entry is not a byte string"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Document {
        module_id,
        digest,
        timestamp,
        pcrs,
        certificate,
        cabundle,
        public_key: opt_bytes(map, "public_key", 1024)?,
        user_data: opt_bytes(map, "user_data", 512)?,
        nonce: opt_bytes(map, "nonce", 512)?,
    })
}

fn claims(doc: &Document) -> Claims {
    let mut c = Claims::default();
    for (i, v) in &doc.pcrs {
        c.measurements
            .insert(format!("pcr{i}"), Value::Bytes(v.clone()));
    }
    c.user_data = doc.user_data.clone();
    c.nonce = doc.nonce.clone();
    c.public_key = doc.public_key.clone();
    c.debug = doc.pcrs.get(&0).map(|p| p.iter().all(|b| *b == 0));
    c.properties.insert(
        "module_id".into(),
        serde_json::Value::from(doc.module_id.clone()),
    );
    c.properties
        .insert("digest".into(), serde_json::Value::from(doc.digest.clone()));
    c.properties
        .insert("timestamp".into(), serde_json::Value::from(doc.timestamp));
    c
}

/// The COSE Sig_structure for COSE_Sign1 with empty external AAD.
fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        protected
            .len()
            .saturating_add(payload.len())
            .saturating_add(32),
    );
    cbor::encode_head(&mut out, 4, 4);
    cbor::encode_text(&mut out, "Signature1");
    cbor::encode_bstr(&mut out, protected);
    cbor::encode_bstr(&mut out, &[]);
    cbor::encode_bstr(&mut out, payload);
    out
}

/// Parse `expected_pcrs.json` (`{"pcr0": "<hex>", ...}`; keys `pcrN`, `PCRN` or `N`).
fn expected_pcrs(json: &[u8]) -> Result<BTreeMap<u64, Vec<u8>>> {
    let map: BTreeMap<String, String> = serde_json::from_slice(json)
        .map_err(|e| Error::malformed(format!("expected_pcrs.json: {e}")))?;
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let digits = k
            .strip_prefix("pcr")
            .or_else(|| k.strip_prefix("PCR"))
            .unwrap_or(&k);
        let index: u64 = digits
            .parse()
            .map_err(|_| Error::malformed(format!("expected_pcrs.json: bad key {k:?}")))?;
        let value = hex::decode(v.trim())
            .map_err(|_| Error::malformed(format!("expected_pcrs.json: {k} is not hex")))?;
        out.insert(index, value);
    }
    Ok(out)
}

fn check_pcrs(doc: &Document, expected: &BTreeMap<u64, Vec<u8>>) -> Result<()> {
    for (i, want) in expected {
        match doc.pcrs.get(i) {
            Some(got) if got == want => {}
            Some(got) => {
                return Err(Error::new(
                    ErrorClass::PcrMismatch,
                    format!(
                        "PCR{i} is {}, expected {}",
                        hex::encode(got),
                        hex::encode(want)
                    ),
                ));
            }
            None => {
                return Err(Error::new(
                    ErrorClass::PcrMismatch,
                    format!("PCR{i} is absent, expected a value"),
                ));
            }
        }
    }
    Ok(())
}

/// The document timestamp (milliseconds since the Unix epoch) as an instant.
fn issued_at(timestamp_ms: u64) -> Result<OffsetDateTime> {
    i128::from(timestamp_ms)
        .checked_mul(1_000_000)
        .and_then(|ns| OffsetDateTime::from_unix_timestamp_nanos(ns).ok())
        .ok_or_else(|| Error::malformed(format!("timestamp {timestamp_ms} is out of range")))
}

/// Verify everything; on success the claims and window.
fn verify_inner(
    bytes: &[u8],
    collateral: &Collateral,
    now: OffsetDateTime,
    claims_out: &mut Option<Claims>,
) -> Result<(Claims, Window)> {
    let env = envelope(bytes)?;
    check_protected(env.protected)?;
    let doc = document(env.payload)?;
    let claims = claims(&doc);
    *claims_out = Some(claims.clone());
    let expected = collateral
        .expected_pcrs
        .as_deref()
        .map(expected_pcrs)
        .transpose()?;

    // Signature first: everything below is authenticated only through it.
    let leaf = Cert::from_der(&doc.certificate)?;
    let key = leaf.ec_key().map_err(|e| {
        Error::bad_signature(format!(
            "leaf key cannot verify the document: {}",
            e.message()
        ))
    })?;
    if !matches!(key, x509::EcKey::P384(_)) {
        return Err(Error::bad_signature(
            "ES384 document but the leaf key is not P-384",
        ));
    }
    key.verify_raw(
        HashAlg::Sha384,
        &sig_structure(env.protected, env.payload),
        env.signature,
    )
    .map_err(|e| match e.class() {
        ErrorClass::Malformed => e,
        _ => Error::bad_signature("COSE_Sign1 signature does not verify with the leaf certificate"),
    })?;

    // Chain: leaf, then the cabundle from the end (closest to the leaf) back to its root.
    let root = pinned_root()?;
    let bundle = doc
        .cabundle
        .iter()
        .map(|c| Cert::from_der(c))
        .collect::<Result<Vec<_>>>()?;
    let first = bundle
        .first()
        .ok_or_else(|| Error::malformed("cabundle is empty"))?;
    x509::require_pinned(first, root)?;
    let mut chain = Vec::with_capacity(bundle.len().saturating_add(1));
    chain.push(leaf);
    chain.extend(bundle.iter().rev().cloned());
    let mut window = Window::unbounded();
    x509::verify_chain(&chain, &[root], now, &mut window)?;

    // The (now authenticated) document timestamp must not lie after `now`.
    let issued = issued_at(doc.timestamp)?;
    if issued > now {
        return Err(Error::new(
            ErrorClass::NotYetValid,
            format!("document timestamp {issued} is after the verification time {now}"),
        ));
    }

    if let Some(expected) = expected {
        check_pcrs(&doc, &expected)?;
    }
    Ok((claims, window))
}

pub(crate) fn verify(
    bytes: &[u8],
    collateral: &Collateral,
    _options: &VerifyOptions,
    now: OffsetDateTime,
) -> Result<Verified, Rejected> {
    let mut parsed = None;
    match verify_inner(bytes, collateral, now, &mut parsed) {
        Ok((claims, window)) => Ok(Verified::new(
            Platform::Nitro,
            claims,
            None,
            None,
            window,
            now,
        )),
        Err(e) => {
            let r = Rejected::new(Some(Platform::Nitro), e);
            Err(match parsed {
                Some(c) => r.with_claims(c),
                None => r,
            })
        }
    }
}

/// The byte range of `bytes` covered by the evidence signature: the payload's content.
pub(crate) fn signed_region(bytes: &[u8]) -> Option<Range<usize>> {
    envelope(bytes).ok().map(|e| e.payload_range)
}

/// SHA-256 of the pinned root's DER (checked against the published value in tests).
#[cfg(test)]
fn pinned_root_sha256() -> String {
    pinned_root()
        .map(|r| hex::encode(x509::sha256(r.der())))
        .unwrap_or_default()
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

    fn case(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../../testdata/attestation/{name}/evidence.bin",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }
    const A6_AT: OffsetDateTime = datetime!(2024-11-14 23:50 UTC);

    fn run(
        bytes: &[u8],
        collateral: &Collateral,
        at: OffsetDateTime,
    ) -> Result<Verified, Rejected> {
        verify(bytes, collateral, &VerifyOptions::default(), at)
    }
    fn class(r: Result<Verified, Rejected>) -> ErrorClass {
        r.map(|_| ()).unwrap_err().error.class()
    }

    #[test]
    fn pinned_root_fingerprint() {
        assert_eq!(pinned_root_sha256(), AWS_NITRO_ROOT_G1_SHA256);
    }

    #[test]
    fn valid_document_claims() {
        let v = run(&case("nitro-a6-fastcrypto"), &Collateral::default(), A6_AT).unwrap();
        assert_eq!(v.platform(), Platform::Nitro);
        assert!(v.measurements().len() >= 16);
        assert!(v.claims().properties.contains_key("module_id"));
        assert_eq!(v.claims().properties["digest"], "SHA384");
        // a1 is a debug-mode enclave: reported, not rejected.
        let v = run(
            &case("nitro-a1-debug-ga"),
            &Collateral::default(),
            datetime!(2023-09-18 17:18 UTC),
        )
        .unwrap();
        assert_eq!(v.claims().debug, Some(true));
        let v = run(
            &case("nitro-a2-prod-beta"),
            &Collateral::default(),
            datetime!(2022-10-13 10:28 UTC),
        )
        .unwrap();
        assert_eq!(v.claims().debug, Some(false));
    }

    #[test]
    fn document_from_the_future_is_not_yet_valid() {
        let bytes = case("nitro-a6-fastcrypto");
        let v = run(&bytes, &Collateral::default(), A6_AT).unwrap();
        let ts = v.claims().properties["timestamp"].as_u64().unwrap();
        let issued = issued_at(ts).unwrap();
        let (start, _) = (v.window().start, v.window().end);
        assert!(
            issued > start + time::Duration::seconds(2),
            "leaf must be valid before the timestamp"
        );
        // Exactly at the timestamp: valid; one millisecond earlier (certificates still
        // valid): not yet valid.
        run(&bytes, &Collateral::default(), issued).unwrap();
        let e = run(
            &bytes,
            &Collateral::default(),
            issued - time::Duration::milliseconds(1),
        )
        .unwrap_err();
        assert_eq!(e.error.class(), ErrorClass::NotYetValid);
        assert!(
            e.error.message().contains("timestamp"),
            "{}",
            e.error.message()
        );
        assert_eq!(
            issued_at(u64::MAX).unwrap_err().class(),
            ErrorClass::Malformed
        );
    }

    #[test]
    fn tagged_and_untagged() {
        let untagged = case("nitro-a6-fastcrypto");
        let mut tagged = vec![0xd2];
        tagged.extend_from_slice(&untagged);
        run(&tagged, &Collateral::default(), A6_AT).unwrap();
        assert_eq!(
            signed_region(&tagged).unwrap().start,
            signed_region(&untagged).unwrap().start + 1
        );
        // Another tag is not a COSE_Sign1.
        let mut other = vec![0xd1];
        other.extend_from_slice(&untagged);
        assert_eq!(
            class(run(&other, &Collateral::default(), A6_AT)),
            ErrorClass::Malformed
        );
    }

    /// Re-encode the document's payload map with an indefinite-length header; the signature
    /// then no longer matches, but parsing must succeed up to the signature check.
    #[test]
    fn indefinite_payload_map_parses() {
        let bytes = case("nitro-a6-fastcrypto");
        let env = envelope(&bytes).unwrap();
        let payload = env.payload;
        // Definite map header a9 (9 entries) -> bf ... ff.
        assert_eq!(payload[0], 0xa9);
        let mut indef = vec![0xbf];
        indef.extend_from_slice(&payload[1..]);
        indef.push(0xff);
        let doc = document(&indef).unwrap();
        assert_eq!(doc.pcrs.len(), document(payload).unwrap().pcrs.len());
        // A whole document with that payload: structurally fine, signature fails.
        let mut out = vec![0x84];
        cbor::encode_bstr(&mut out, env.protected);
        out.push(0xa0);
        cbor::encode_bstr(&mut out, &indef);
        cbor::encode_bstr(&mut out, env.signature);
        assert_eq!(
            class(run(&out, &Collateral::default(), A6_AT)),
            ErrorClass::BadSignature
        );
    }

    #[test]
    fn trailing_bytes_and_truncation() {
        let mut bytes = case("nitro-a6-fastcrypto");
        bytes.push(0);
        assert_eq!(
            class(run(&bytes, &Collateral::default(), A6_AT)),
            ErrorClass::Malformed
        );
        bytes.pop();
        bytes.pop();
        assert_eq!(
            class(run(&bytes, &Collateral::default(), A6_AT)),
            ErrorClass::Malformed
        );
    }

    #[test]
    fn wrong_alg_is_malformed() {
        let mut bytes = case("nitro-a6-fastcrypto");
        // Protected header a1 01 38 22 ({1: -35}) -> {1: -7} (ES256).
        assert_eq!(&bytes[1..6], &[0x44, 0xa1, 0x01, 0x38, 0x22]);
        bytes[4] = 0x26;
        bytes[5] = 0x00;
        let r = run(&bytes, &Collateral::default(), A6_AT);
        assert!(matches!(class(r), ErrorClass::Malformed));
    }

    #[test]
    fn pcr_expectations() {
        let bytes = case("nitro-a6-fastcrypto");
        let v = run(&bytes, &Collateral::default(), A6_AT).unwrap();
        let pcr0 = match &v.measurements()["pcr0"] {
            Value::Bytes(b) => hex::encode(b),
            Value::Text(_) => unreachable!(),
        };
        let mut c = Collateral::default();
        c.expected_pcrs = Some(format!("{{\"pcr0\": \"{pcr0}\"}}").into_bytes());
        run(&bytes, &c, A6_AT).unwrap();
        c.expected_pcrs = Some(format!("{{\"pcr0\": \"{}\"}}", "11".repeat(48)).into_bytes());
        let r = run(&bytes, &c, A6_AT).unwrap_err();
        assert_eq!(r.error.class(), ErrorClass::PcrMismatch);
        assert!(r.unverified.is_some());
        c.expected_pcrs = Some(format!("{{\"pcr31\": \"{pcr0}\"}}").into_bytes());
        assert_eq!(class(run(&bytes, &c, A6_AT)), ErrorClass::PcrMismatch);
        c.expected_pcrs = Some(b"{\"pcr0\": \"zz\"}".to_vec());
        assert_eq!(class(run(&bytes, &c, A6_AT)), ErrorClass::Malformed);
    }

    #[test]
    fn times() {
        let bytes = case("nitro-a6-fastcrypto");
        let v = run(&bytes, &Collateral::default(), A6_AT).unwrap();
        let w = v.window();
        // The window is the certificates'; the document itself exists only from its
        // timestamp on (later than the leaf's notBefore), so at the window start it is
        // from the future.
        let issued = issued_at(v.claims().properties["timestamp"].as_u64().unwrap()).unwrap();
        assert!(issued > w.start);
        assert_eq!(
            class(run(&bytes, &Collateral::default(), w.start)),
            ErrorClass::NotYetValid
        );
        run(&bytes, &Collateral::default(), issued).unwrap();
        run(&bytes, &Collateral::default(), w.end).unwrap();
        assert_eq!(
            class(run(
                &bytes,
                &Collateral::default(),
                w.start - time::Duration::seconds(1)
            )),
            ErrorClass::NotYetValid
        );
        assert_eq!(
            class(run(
                &bytes,
                &Collateral::default(),
                w.end + time::Duration::seconds(1)
            )),
            ErrorClass::CertExpired
        );
    }

    /// Rebuild the document with a modified payload (signature then fails) to test that
    /// the chain is checked: here we only check the error precedence with a foreign root.
    #[test]
    fn root_swapped_is_bad_chain() {
        let bytes = case("nitro-a6-fastcrypto");
        let env = envelope(&bytes).unwrap();
        let doc = document(env.payload).unwrap();
        let leaf = Cert::from_der(&doc.certificate).unwrap();
        let bundle: Vec<Cert> = doc
            .cabundle
            .iter()
            .map(|c| Cert::from_der(c).unwrap())
            .collect();
        let nvidia = Cert::from_pem_or_der(include_bytes!(
            "../roots/nvidia/NVIDIA_Device_Identity_CA.pem"
        ))
        .unwrap();
        // cabundle[0] not the pinned root.
        assert_eq!(
            x509::require_pinned(&nvidia, pinned_root().unwrap())
                .unwrap_err()
                .class(),
            ErrorClass::BadChain
        );
        // Chain missing an intermediate.
        let mut chain = vec![leaf];
        chain.extend(bundle.iter().rev().skip(1).cloned());
        let mut w = Window::unbounded();
        let e = x509::verify_chain(&chain, &[pinned_root().unwrap()], A6_AT, &mut w).unwrap_err();
        assert_eq!(e.class(), ErrorClass::BadChain);
    }

    #[test]
    fn garbage_never_panics() {
        let bytes = case("nitro-a6-fastcrypto");
        for len in 0..bytes.len().min(400) {
            let _ = run(&bytes[..len], &Collateral::default(), A6_AT);
        }
        assert_eq!(
            class(run(
                &[0x84, 0x40, 0xa0, 0x40, 0x40],
                &Collateral::default(),
                A6_AT
            )),
            ErrorClass::Malformed
        );
    }
}
