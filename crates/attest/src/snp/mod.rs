//! AMD SEV-SNP attestation reports (versions 2, 3 and 5; Milan, Genoa, Turin; VCEK- or
//! VLEK-signed).
//!
//! Order of checks (the first failure decides the class):
//! 1. the report parses: exactly 1184 bytes, version 2/3/5, signature algorithm 1
//!    (`malformed`);
//! 2. a VCEK or VLEK is present (`missing_collateral`) and parses (`malformed`);
//! 3. chain: the leaf is issued by the pinned ASK (VCEK) or ASVK (VLEK) of its product
//!    (RSA-PSS SHA-384), and every certificate in `cert_chain` is DER-equal to that pinned
//!    ASK/ASVK or ARK (`bad_chain`);
//! 4. every certificate (leaf, ASK/ASVK, ARK) is valid at `now` (`not_yet_valid`,
//!    `cert_expired`);
//! 5. the report signature (ECDSA P-384, SHA-384 over bytes 0x000..0x2A0) verifies with the
//!    leaf key (`bad_signature`);
//! 6. the now-authenticated report matches its certificate (`wrong_collateral`):
//!    SIGNING_KEY equals the certificate kind, the CPUID product (v3+) equals the
//!    certificate's product, REPORTED_TCB equals the certificate's TCB extensions (bl, tee,
//!    snp, ucode; Turin also fmc), and for a VCEK the hwID equals CHIP_ID (Turin: the first
//!    8 bytes). VLEKs are not bound to a chip.
//!
//! The report is bound to its certificate only after its signature is checked: before that
//! none of its fields can be trusted, and a changed field is a bad signature, not wrong
//! collateral. Policy bits (debug, migration agent, SMT, ...) and VMPL are reported in
//! [`Claims`], never turned into a rejection here.

pub(crate) mod report;
mod roots;
pub(crate) mod x509;

use rsa::RsaPublicKey;
use serde_json::{Value as Json, json};
use time::OffsetDateTime;

use self::report::{REPORT_LEN, Report, SIGNED_LEN, SigningKey, Tcb};
use self::x509::{Certificate, Der, TAG_INTEGER, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE};
use crate::error::{Error, ErrorClass};
use crate::report::{Claims, Platform, Rejected, Value, Verified, Window};
use crate::{Collateral, VerifyOptions};

/// An AMD EPYC product line with SEV-SNP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Product {
    /// 3rd generation EPYC (family 19h, models 00h-0Fh).
    Milan,
    /// 4th generation EPYC (family 19h, models 10h-1Fh and A0h-AFh).
    Genoa,
    /// 5th generation EPYC (family 1Ah, models 00h-11h).
    Turin,
}

impl Product {
    /// The name used by AMD KDS and in certificate names (`Milan`, `Genoa`, `Turin`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Milan => "Milan",
            Self::Genoa => "Genoa",
            Self::Turin => "Turin",
        }
    }

    /// The product of a CPUID family/model pair, if it is one with SEV-SNP that we know.
    pub fn from_cpuid(family: u8, model: u8) -> Option<Self> {
        match (family, model) {
            (0x19, 0x00..=0x0f) => Some(Self::Milan),
            (0x19, 0x10..=0x1f | 0xa0..=0xaf) => Some(Self::Genoa),
            (0x1a, 0x00..=0x11) => Some(Self::Turin),
            _ => None,
        }
    }

    /// Parse a product name; a stepping suffix (`Milan-B0`) is ignored.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.split('-').next().unwrap_or_default() {
            "Milan" => Some(Self::Milan),
            "Genoa" => Some(Self::Genoa),
            "Turin" => Some(Self::Turin),
            _ => None,
        }
    }
}

/// The kind of AMD endorsement key that signs reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    /// Versioned Chip Endorsement Key (per chip and TCB), issued by the ASK.
    Vcek,
    /// Versioned Loaded Endorsement Key (per cloud provider and TCB), issued by the ASVK.
    Vlek,
}

impl KeyKind {
    fn name(self) -> &'static str {
        match self {
            Self::Vcek => "VCEK",
            Self::Vlek => "VLEK",
        }
    }
}

/// DER content of OID 1.2.840.113549.1.1.10 (RSASSA-PSS).
pub(crate) const OID_RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const OID_MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_SECP384R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

// AMD VCEK/VLEK extension OIDs: 1.3.6.1.4.1.3704.1.{..} (DER content).
const OID_PRODUCT_NAME: [u8; 9] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x02];
const OID_BL_SPL: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x03, 0x01];
const OID_TEE_SPL: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x03, 0x02];
const OID_SNP_SPL: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x03, 0x03];
const OID_UCODE_SPL: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x03, 0x08];
const OID_FMC_SPL: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x03, 0x09];
const OID_HWID: [u8; 9] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x04];
const OID_CSP_ID: [u8; 9] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x05];

fn wrong(msg: impl Into<String>) -> Error {
    Error::new(ErrorClass::WrongCollateral, msg)
}

/// The byte range covered by the report signature: 0x000..0x2A0 of a 1184-byte report.
pub(crate) fn signed_region(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    (bytes.len() == REPORT_LEN).then_some(0..SIGNED_LEN)
}

#[allow(clippy::result_large_err)] // the crate-wide verify signature returns Rejected
pub(crate) fn verify(
    bytes: &[u8],
    collateral: &Collateral,
    _options: &VerifyOptions,
    now: OffsetDateTime,
) -> Result<Verified, Rejected> {
    let reject = |e: Error| Rejected::new(Some(Platform::SevSnp), e);
    let report = Report::parse(bytes).map_err(reject)?;
    let cpuid_product = report.cpuid.and_then(|(f, m, _)| Product::from_cpuid(f, m));
    match check(&report, collateral, now) {
        Ok((product, kind, window, extra)) => {
            let mut claims = claims(&report, Some(product));
            claims.properties.insert(
                "signing_key".into(),
                json!(kind.name().to_ascii_lowercase()),
            );
            claims.properties.extend(extra);
            Ok(Verified::new(
                Platform::SevSnp,
                claims,
                None,
                None,
                window,
                now,
            ))
        }
        Err((e, product)) => Err(reject(e).with_claims(claims(&report, product.or(cpuid_product)))),
    }
}

type Checked = (Product, KeyKind, Window, Vec<(String, Json)>);

/// Steps 2 to 6 of the module docs. On failure, also returns the product when known (for
/// the TCB layout of the unverified claims).
fn check(
    report: &Report<'_>,
    collateral: &Collateral,
    now: OffsetDateTime,
) -> Result<Checked, (Error, Option<Product>)> {
    // 2. The endorsement key certificate.
    let leaf_file = match (&collateral.vcek, &collateral.vlek) {
        (Some(c), None) | (None, Some(c)) => c,
        (Some(vcek), Some(vlek)) => {
            if report.signing_key == SigningKey::Vlek {
                vlek
            } else {
                vcek
            }
        }
        (None, None) => {
            return Err((
                Error::missing("SEV-SNP: no VCEK or VLEK certificate in the collateral"),
                None,
            ));
        }
    };
    let leaf_der = x509::der_or_pem(leaf_file).map_err(|e| (e, None))?;
    let leaf = Certificate::parse(&leaf_der).map_err(|e| (e, None))?;
    let (kind, product) = leaf_identity(&leaf).map_err(|e| (e, None))?;
    let fail = |e: Error| (e, Some(product));

    // 3. Chain to the pinned roots.
    let roots = roots::for_product(product).map_err(fail)?;
    let inter = match kind {
        KeyKind::Vcek => &roots.ask,
        KeyKind::Vlek => &roots.asvk,
    };
    let inter_name = match kind {
        KeyKind::Vcek => "ASK",
        KeyKind::Vlek => "ASVK",
    };
    if let Some(chain) = &collateral.cert_chain {
        for der in x509::pem_certificates(chain).map_err(fail)? {
            // Bundles that repeat the leaf itself are accepted too.
            if der != inter.der && der != roots.ark.der && der != leaf_der {
                let what = Certificate::parse(&der)
                    .ok()
                    .and_then(|c| c.subject_cn)
                    .unwrap_or_else(|| "?".into());
                return Err(fail(Error::bad_chain(format!(
                    "cert_chain holds {what:?}, which is not the pinned {inter_name} or ARK of {} for a {}",
                    product.name(),
                    kind.name()
                ))));
            }
        }
    }
    if leaf.issuer_raw != inter.subject_raw.as_slice() {
        return Err(fail(Error::bad_chain(format!(
            "{} is not issued by the {inter_name} of {}",
            kind.name(),
            product.name()
        ))));
    }
    crate::x509::link_cache::verify_cached(
        crate::x509::link_cache::Kind::AmdRsaPss,
        &inter.der,
        &leaf_der,
        || verify_pss(&inter.key, &leaf),
    )
    .map_err(|e| {
        fail(Error::bad_chain(format!(
            "{} signature by the {inter_name} of {}: {}",
            kind.name(),
            product.name(),
            e.message()
        )))
    })?;

    // 4. Validity of every certificate used, including the pinned ones.
    let mut window = Window::unbounded();
    let times = [
        (kind.name(), leaf.not_before, leaf.not_after),
        (inter_name, inter.not_before, inter.not_after),
        ("ARK", roots.ark.not_before, roots.ark.not_after),
    ];
    for (_, nb, na) in times {
        window.narrow(nb, na);
    }
    for (name, nb, _) in times {
        if now < nb {
            return Err(fail(Error::new(
                ErrorClass::NotYetValid,
                format!("{name} not valid before {nb}"),
            )));
        }
    }
    for (name, _, na) in times {
        if now > na {
            return Err(fail(Error::new(
                ErrorClass::CertExpired,
                format!("{name} expired at {na}"),
            )));
        }
    }

    // 5a. A genuine certificate of another chip or TCB (the chain verified above): if the
    // report's CHIP_ID / REPORTED_TCB differ from the certificate's hwID / SPL extensions
    // in two or more bytes, this is collateral for another chip or TCB (wrong_collateral),
    // decided before the signature (which then fails too). A single differing byte is left
    // to the signature: one corrupted byte of a genuine report must stay bad_signature.
    let (differing, what) = binding_difference(report, &leaf, kind, product);
    if differing >= 2 {
        return Err(fail(wrong(format!(
            "the {} is for another {what} ({differing} bytes differ)",
            kind.name()
        ))));
    }

    // 5. The report signature.
    verify_report_signature(report, &leaf).map_err(fail)?;

    // 6. The report matches its certificate.
    let extra = bind(report, &leaf, kind, product).map_err(fail)?;
    Ok((product, kind, window, extra))
}

/// Step 6: the authenticated report matches its certificate (`wrong_collateral`), and the
/// certificate has the extensions an endorsement key certificate must have (`bad_chain`).
/// Returns extra properties (`chip_id_masked`, `csp_id`).
fn bind(
    report: &Report<'_>,
    leaf: &Certificate<'_>,
    kind: KeyKind,
    product: Product,
) -> Result<Vec<(String, Json)>, Error> {
    let mut extra = Vec::new();
    let report_kind = match report.signing_key {
        SigningKey::Vcek => KeyKind::Vcek,
        SigningKey::Vlek => KeyKind::Vlek,
        SigningKey::None => return Err(Error::bad_signature("report is not signed")),
    };
    if report_kind != kind {
        return Err(wrong(format!(
            "report says it is signed by a {}, the certificate is a {}",
            report_kind.name(),
            kind.name()
        )));
    }
    if let Some(p) = report
        .cpuid
        .and_then(|(family, model, _)| Product::from_cpuid(family, model))
        && p != product
    {
        return Err(wrong(format!(
            "report is from a {} CPU, the {} is for {}",
            p.name(),
            kind.name(),
            product.name()
        )));
    }
    let turin = product == Product::Turin;
    let reported = Tcb::decode(report.reported_tcb, turin);
    let mut spl = vec![
        ("blSPL", &OID_BL_SPL[..], reported.bootloader),
        ("teeSPL", &OID_TEE_SPL[..], reported.tee),
        ("snpSPL", &OID_SNP_SPL[..], reported.snp),
        ("ucodeSPL", &OID_UCODE_SPL[..], reported.microcode),
    ];
    if let Some(fmc) = reported.fmc {
        spl.push(("fmcSPL", &OID_FMC_SPL[..], fmc));
    }
    for (name, oid, value) in spl {
        let ext = leaf
            .extension(oid)
            .ok_or_else(|| Error::bad_chain(format!("{} has no {name} extension", kind.name())))?;
        let cert_value = spl_value(ext)?;
        if cert_value != u64::from(value) {
            return Err(wrong(format!(
                "REPORTED_TCB {name} is {value}, the {} is for {cert_value}",
                kind.name()
            )));
        }
    }
    match kind {
        KeyKind::Vcek => {
            let hwid = leaf
                .extension(&OID_HWID)
                .ok_or_else(|| Error::bad_chain("VCEK has no hwID extension"))?;
            let hwid = unwrap_octet_string(hwid);
            if report.chip_id_masked() {
                // MaskChipId: the report carries no chip ID to compare; the signature already
                // ties it to this VCEK's chip.
                extra.push(("chip_id_masked".to_string(), json!(true)));
            } else {
                let want_len = if turin { 8 } else { 64 };
                let chip = report.chip_id.get(..want_len).unwrap_or_default();
                if hwid != chip {
                    return Err(wrong(format!(
                        "VCEK hwID {} does not match the report's CHIP_ID {}",
                        hex::encode(hwid),
                        hex::encode(chip)
                    )));
                }
            }
        }
        KeyKind::Vlek => {
            if let Some(csp) = leaf.extension(&OID_CSP_ID) {
                let text = Der::new(csp)
                    .read()
                    .map(|t| String::from_utf8_lossy(t.value).into_owned());
                if let Ok(text) = text {
                    extra.push(("csp_id".to_string(), json!(text)));
                }
            }
        }
    }
    Ok(extra)
}

/// How many bytes of the report's CHIP_ID (VCEK, unless masked) and REPORTED_TCB SPL
/// components differ from the certificate's hwID and SPL extensions, and what differs
/// ("chip", "TCB" or "chip and TCB"). Unreadable or absent extensions count as no
/// difference here; [`bind`] reports them after the signature check.
fn binding_difference(
    report: &Report<'_>,
    leaf: &Certificate<'_>,
    kind: KeyKind,
    product: Product,
) -> (usize, &'static str) {
    let turin = product == Product::Turin;
    let reported = Tcb::decode(report.reported_tcb, turin);
    let mut spl = vec![
        (&OID_BL_SPL[..], reported.bootloader),
        (&OID_TEE_SPL[..], reported.tee),
        (&OID_SNP_SPL[..], reported.snp),
        (&OID_UCODE_SPL[..], reported.microcode),
    ];
    if let Some(fmc) = reported.fmc {
        spl.push((&OID_FMC_SPL[..], fmc));
    }
    let tcb = spl
        .into_iter()
        .filter(|(oid, value)| {
            leaf.extension(oid)
                .and_then(|e| spl_value(e).ok())
                .is_some_and(|cert| cert != u64::from(*value))
        })
        .count();
    let chip = match (kind, leaf.extension(&OID_HWID)) {
        (KeyKind::Vcek, Some(hwid)) if !report.chip_id_masked() => {
            let hwid = unwrap_octet_string(hwid);
            let chip = report.chip_id.get(..hwid.len()).unwrap_or_default();
            if hwid.len() == if turin { 8 } else { 64 } {
                hwid.iter().zip(chip).filter(|(a, b)| a != b).count()
            } else {
                0
            }
        }
        _ => 0,
    };
    let what = match (chip > 0, tcb > 0) {
        (true, true) => "chip and TCB",
        (true, false) => "chip",
        _ => "TCB",
    };
    (chip.saturating_add(tcb), what)
}

/// Kind (from the issuer: `SEV-<product>` or `SEV-VLEK-<product>`) and product of an
/// endorsement key certificate, with a P-384 key.
fn leaf_identity(leaf: &Certificate<'_>) -> Result<(KeyKind, Product), Error> {
    let issuer = leaf.issuer_cn.as_deref().unwrap_or_default();
    let (kind, product) = if let Some(p) = issuer.strip_prefix("SEV-VLEK-") {
        (KeyKind::Vlek, Product::from_name(p))
    } else if let Some(p) = issuer.strip_prefix("SEV-") {
        (KeyKind::Vcek, Product::from_name(p))
    } else {
        (KeyKind::Vcek, None)
    };
    let product = product.ok_or_else(|| {
        Error::bad_chain(format!(
            "endorsement key certificate issued by {issuer:?}, not an AMD ASK or ASVK"
        ))
    })?;
    if let Some(name) = leaf.extension(&OID_PRODUCT_NAME) {
        let name = Der::new(name)
            .read()
            .map(|t| String::from_utf8_lossy(t.value).into_owned())
            .unwrap_or_default();
        if Product::from_name(&name) != Some(product) {
            return Err(Error::bad_chain(format!(
                "productName {name:?} does not match the issuer {issuer:?}"
            )));
        }
    }
    if leaf.key_algorithm.oid != OID_EC_PUBLIC_KEY
        || leaf.key_algorithm.params.map(|p| (p.tag, p.value)) != Some((TAG_OID, OID_SECP384R1))
    {
        return Err(Error::bad_chain(
            "endorsement key is not an ECDSA P-384 key",
        ));
    }
    Ok((kind, product))
}

/// Verify `cert`'s RSASSA-PSS (SHA-384, MGF1-SHA-384, salt 48) signature with `key`.
pub(crate) fn verify_pss(key: &RsaPublicKey, cert: &Certificate<'_>) -> Result<(), Error> {
    let alg = cert.signature_algorithm;
    if alg.oid != OID_RSASSA_PSS {
        return Err(Error::bad_chain(
            "certificate is not signed with RSASSA-PSS",
        ));
    }
    let params = alg
        .params
        .ok_or_else(|| Error::bad_chain("RSASSA-PSS without parameters"))?;
    check_pss_params(params.value)
        .map_err(|e| Error::bad_chain(format!("RSASSA-PSS parameters: {}", e.message())))?;
    // Verified with `ring` (RSASSA-PSS with SHA-384, MGF1-SHA-384 and a salt as long as the
    // hash: the parameters required above), several times faster than the `rsa` crate.
    use rsa::traits::PublicKeyParts as _;
    let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
    ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(
            &ring::signature::RSA_PSS_2048_8192_SHA384,
            cert.tbs,
            cert.signature,
        )
        .map_err(|_| Error::bad_chain("RSASSA-PSS signature does not verify"))
}

/// RSASSA-PSS-params: hash SHA-384, MGF1 with SHA-384, salt length 48, trailer 1.
fn check_pss_params(params: &[u8]) -> Result<(), Error> {
    let mut d = Der::new(params);
    let hash_oid = |tlv: x509::Tlv<'_>| -> Result<Vec<u8>, Error> {
        let mut a = Der::new(tlv.value);
        let seq = a.expect(TAG_SEQUENCE)?;
        let mut s = Der::new(seq.value);
        Ok(s.expect(TAG_OID)?.value.to_vec())
    };
    let hash = d.expect(0xa0)?;
    if hash_oid(hash)? != OID_SHA384 {
        return Err(Error::malformed("hash is not SHA-384"));
    }
    let mgf = d.expect(0xa1)?;
    let mut m = Der::new(mgf.value);
    let mgf_seq = m.expect(TAG_SEQUENCE)?;
    let mut ms = Der::new(mgf_seq.value);
    if ms.expect(TAG_OID)?.value != OID_MGF1 {
        return Err(Error::malformed("mask generation is not MGF1"));
    }
    let inner = ms.expect(TAG_SEQUENCE)?;
    if Der::new(inner.value).expect(TAG_OID)?.value != OID_SHA384 {
        return Err(Error::malformed("MGF1 hash is not SHA-384"));
    }
    let salt = d.expect(0xa2)?;
    if x509::small_uint(Der::new(salt.value).expect(TAG_INTEGER)?.value)? != 48 {
        return Err(Error::malformed("salt length is not 48"));
    }
    if let Some(trailer) = d.optional(0xa3)?
        && x509::small_uint(Der::new(trailer.value).expect(TAG_INTEGER)?.value)? != 1
    {
        return Err(Error::malformed("trailer field is not 1"));
    }
    d.finish()
}

/// An SPL extension value: a DER INTEGER.
fn spl_value(ext: &[u8]) -> Result<u64, Error> {
    let mut d = Der::new(ext);
    let v = x509::small_uint(d.expect(TAG_INTEGER)?.value)?;
    d.finish()?;
    Ok(v)
}

/// hwID is the raw chip ID; accept it wrapped in an OCTET STRING too.
fn unwrap_octet_string(value: &[u8]) -> &[u8] {
    let mut d = Der::new(value);
    match d.read() {
        Ok(t) if t.tag == TAG_OCTET_STRING && d.is_empty() && matches!(t.value.len(), 8 | 64) => {
            t.value
        }
        _ => value,
    }
}

/// ECDSA P-384 with SHA-384 over bytes 0x000..0x2A0; R and S are 72-byte little-endian
/// fields whose upper 24 bytes must be zero.
fn verify_report_signature(report: &Report<'_>, leaf: &Certificate<'_>) -> Result<(), Error> {
    if report.signing_key == SigningKey::None {
        return Err(Error::bad_signature(
            "report is not signed (SIGNING_KEY = none)",
        ));
    }
    if report.mask_chip_key {
        return Err(Error::bad_signature(
            "MASK_CHIP_KEY is set: the report carries no signature",
        ));
    }
    let key = crate::x509::EcKey::p384(leaf.key)
        .map_err(|_| Error::bad_chain("endorsement key is not a valid P-384 point"))?;
    let scalar = |le: &[u8]| -> Result<[u8; 48], Error> {
        let (low, high) = le
            .split_at_checked(48)
            .ok_or_else(|| Error::malformed("signature component"))?;
        if high.iter().any(|&b| b != 0) {
            return Err(Error::bad_signature(
                "signature component larger than 48 bytes",
            ));
        }
        let mut be: [u8; 48] = low
            .try_into()
            .map_err(|_| Error::malformed("signature component"))?;
        be.reverse();
        Ok(be)
    };
    // r ‖ s, big-endian; scalars out of range fail verification (bad_signature).
    let mut sig = Vec::with_capacity(96);
    sig.extend_from_slice(&scalar(report.sig_r)?);
    sig.extend_from_slice(&scalar(report.sig_s)?);
    key.verify_raw(crate::x509::HashAlg::Sha384, report.signed_bytes()?, &sig)
        .map_err(|e| match e.class() {
            ErrorClass::Malformed => e,
            _ => Error::bad_signature("report signature does not verify with the endorsement key"),
        })
}

fn bit(v: u64, n: u32) -> bool {
    v.checked_shr(n).is_some_and(|x| x & 1 == 1)
}

/// Claims of a report: measurements, REPORT_DATA, the DEBUG policy bit and the
/// policy-relevant properties documented in docs/protocol.md ("AMD SEV-SNP").
fn claims(r: &Report<'_>, product: Option<Product>) -> Claims {
    let turin = product == Some(Product::Turin);
    let mut c = Claims::default();
    for (name, value) in [
        ("measurement", r.measurement),
        ("host_data", r.host_data),
        ("id_key_digest", r.id_key_digest),
        ("author_key_digest", r.author_key_digest),
        ("report_id", r.report_id),
        ("report_id_ma", r.report_id_ma),
        ("family_id", r.family_id),
        ("image_id", r.image_id),
    ] {
        c.measurements
            .insert(name.into(), Value::Bytes(value.to_vec()));
    }
    c.report_data = Some(r.report_data.to_vec());
    let policy = r.policy;
    c.debug = Some(bit(policy, 19));
    let p = &mut c.properties;
    p.insert("report_version".into(), json!(r.version));
    if let Some(product) = product {
        p.insert("product".into(), json!(product.name()));
    }
    p.insert("vmpl".into(), json!(r.vmpl));
    p.insert("guest_svn".into(), json!(r.guest_svn));
    p.insert("policy".into(), json!(format!("{policy:#018x}")));
    p.insert("abi_minor".into(), json!(policy & 0xff));
    p.insert("abi_major".into(), json!((policy >> 8) & 0xff));
    for (name, n) in [
        ("smt_allowed", 16),
        ("migration_agent", 18),
        ("debug", 19),
        ("single_socket", 20),
        ("cxl_allowed", 21),
        ("mem_aes_256_xts", 22),
        ("rapl_disabled", 23),
        ("ciphertext_hiding", 24),
        ("page_swap_disabled", 25),
    ] {
        p.insert(name.into(), json!(bit(policy, n)));
    }
    let info = r.platform_info;
    p.insert("platform_info".into(), json!(format!("{info:#018x}")));
    for (name, n) in [
        ("platform_smt_enabled", 0),
        ("platform_tsme_enabled", 1),
        ("platform_ecc_enabled", 2),
        ("platform_rapl_disabled", 3),
        ("platform_ciphertext_hiding_enabled", 4),
        ("platform_alias_check_complete", 5),
        ("platform_tio_enabled", 7),
    ] {
        p.insert(name.into(), json!(bit(info, n)));
    }
    p.insert("author_key_en".into(), json!(r.author_key_en));
    p.insert("mask_chip_key".into(), json!(r.mask_chip_key));
    for (name, raw) in [
        ("current_tcb", r.current_tcb),
        ("reported_tcb", r.reported_tcb),
        ("committed_tcb", r.committed_tcb),
        ("launch_tcb", r.launch_tcb),
    ] {
        p.insert(name.into(), Tcb::decode(raw, turin).to_json());
    }
    let ver = |(major, minor, build): (u8, u8, u8)| json!(format!("{major}.{minor}.{build}"));
    p.insert("current_version".into(), ver(r.current_version));
    p.insert("committed_version".into(), ver(r.committed_version));
    p.insert("chip_id".into(), json!(hex::encode(r.chip_id)));
    if let Some((family, model, stepping)) = r.cpuid {
        p.insert(
            "cpuid".into(),
            json!({"family": family, "model": model, "stepping": stepping}),
        );
    }
    if let Some((launch, current)) = r.mit_vectors {
        p.insert("launch_mit_vector".into(), json!(format!("{launch:#018x}")));
        p.insert(
            "current_mit_vector".into(),
            json!(format!("{current:#018x}")),
        );
    }
    c
}

#[cfg(test)]
mod tests;
