//! Our own complete DCAP verification pipeline, used where dcap-qvl 0.7 cannot serve:
//! TCBInfo v2, lenient mode (absent PCK CRL or QE identity), TD attributes dcap-qvl turns
//! into errors, and the precise classification of validity-window failures.
//!
//! It performs the checks of the corpus README §4, in dcap-qvl's order so that the
//! primary failure class is the same on both paths: root CRL, TCBInfo (time, chain,
//! signature), QE identity (time, signature, id), PCK chain with CRLs, QE report
//! signature and binding, QE identity match, quote signature, platform/TDX-module/QE TCB
//! levels and convergence. Certificate paths and CRLs use webpki (the same fork dcap-qvl
//! uses); signatures use ring.

use std::time::Duration;

use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;
use webpki::{CertRevocationList, EndEntityCert, OwnedCertRevocationList};

use super::collateral::{Intel, pem_certs};
use super::errors::webpki_class;
use super::quote::{Body, Quote, SgxReport, TEE_TYPE_TDX};
use super::tcb::{self, QeIdentity, TcbInfo, Tee};
use crate::error::{Error, ErrorClass};
use crate::report::{TcbStatus, Window};

const ALG: &dyn rustls_pki_types::SignatureVerificationAlgorithm = webpki::ring::ECDSA_P256_SHA256;

/// The pinned Intel SGX Root CA (DER), from `roots/intel/` of the corpus.
pub(crate) const INTEL_ROOT_CA: &[u8] = include_bytes!("../../roots/intel/Intel_SGX_Root_CA.der");
/// SHA-256 of [`INTEL_ROOT_CA`] as published (corpus `roots/README.md`).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const INTEL_ROOT_CA_SHA256: &str =
    "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

/// Result of a successful verification by our pipeline.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub status: TcbStatus,
    pub advisory_ids: Vec<String>,
    pub window: Window,
    pub warnings: Vec<String>,
    /// TD 1.5: the launch TCB is out of date but the current TCB (TEE_TCB_SVN2) is not.
    pub relaunch_advised: bool,
}

fn pki(e: webpki::Error, what: &str) -> Error {
    Error::new(webpki_class(&e), format!("{what}: {e:?}"))
}

pub(crate) fn unix_time(now: OffsetDateTime) -> Result<UnixTime, Error> {
    let secs =
        u64::try_from(now.unix_timestamp()).map_err(|_| Error::malformed("time before 1970"))?;
    Ok(UnixTime::since_unix_epoch(Duration::from_secs(secs)))
}

fn from_unix(d: Duration) -> Result<OffsetDateTime, Error> {
    let secs = i64::try_from(d.as_secs()).map_err(|_| Error::malformed("time out of range"))?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| Error::malformed("time out of range"))
}

/// notBefore..notAfter of a certificate (shared X.509 helpers).
pub(crate) fn cert_validity(der: &[u8]) -> Result<(OffsetDateTime, OffsetDateTime), Error> {
    let cert = crate::x509::Cert::from_der(der)?;
    Ok((cert.not_before(), cert.not_after()))
}

/// thisUpdate..nextUpdate of a CRL (an absent nextUpdate never expires).
pub(crate) fn crl_validity(der: &[u8]) -> Result<(OffsetDateTime, OffsetDateTime), Error> {
    use der::Decode as _;
    let crl = x509_cert::crl::CertificateList::from_der(der)
        .map_err(|e| Error::malformed(format!("CRL: {e}")))?;
    let tbs = &crl.tbs_cert_list;
    let end = match tbs.next_update {
        Some(t) => from_unix(t.to_unix_duration())?,
        None => crate::report::far_future(),
    };
    Ok((from_unix(tbs.this_update.to_unix_duration())?, end))
}

/// Kinds of time-bounded objects, for classifying a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cert,
    Collateral,
}

/// Every time-bounded object used, and the intersection of their validity.
#[derive(Default)]
struct Times {
    items: Vec<(String, Kind, OffsetDateTime, OffsetDateTime)>,
}

impl Times {
    fn add(
        &mut self,
        what: impl Into<String>,
        kind: Kind,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) {
        self.items.push((what.into(), kind, start, end));
    }
    fn cert(&mut self, what: &str, der: &[u8]) -> Result<(), Error> {
        let (s, e) = cert_validity(der)?;
        self.add(what, Kind::Cert, s, e);
        Ok(())
    }
    fn window(&self) -> Window {
        let mut w = Window::unbounded();
        for (_, _, s, e) in &self.items {
            w.narrow(*s, *e);
        }
        w
    }
    /// Strict validity at `now`: `not_yet_valid` before any start, then
    /// `collateral_expired` for a TCBInfo/QE identity/CRL past its end, else
    /// `cert_expired`.
    fn check(&self, now: OffsetDateTime) -> Result<(), Error> {
        if let Some((what, _, s, _)) = self.items.iter().find(|(_, _, s, _)| now < *s) {
            return Err(Error::new(
                ErrorClass::NotYetValid,
                format!("{what} is not valid before {s}"),
            ));
        }
        let expired = |k: Kind| {
            self.items
                .iter()
                .find(|(_, kind, _, e)| *kind == k && now > *e)
        };
        if let Some((what, _, _, e)) = expired(Kind::Collateral) {
            return Err(Error::new(
                ErrorClass::CollateralExpired,
                format!("{what} expired at {e}"),
            ));
        }
        if let Some((what, _, _, e)) = expired(Kind::Cert) {
            return Err(Error::new(
                ErrorClass::CertExpired,
                format!("{what} expired at {e}"),
            ));
        }
        Ok(())
    }
}

/// DER `Ecdsa-Sig-Value` from a raw 64-byte r‖s.
pub(crate) fn der_signature(raw: &[u8; 64]) -> Vec<u8> {
    fn int(out: &mut Vec<u8>, v: &[u8]) {
        let v = match v.iter().position(|&b| b != 0) {
            Some(i) => v.get(i..).unwrap_or_default(),
            None => &[0u8][..],
        };
        let pad = v.first().is_some_and(|&b| b & 0x80 != 0);
        out.push(0x02);
        // At most 33 bytes: the length fits one byte.
        out.push(
            u8::try_from(v.len())
                .unwrap_or(0)
                .saturating_add(u8::from(pad)),
        );
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
    }
    let (r, s) = raw.split_at(32);
    let mut body = Vec::with_capacity(72);
    int(&mut body, r);
    int(&mut body, s);
    let mut out = Vec::with_capacity(body.len().saturating_add(2));
    out.push(0x30);
    out.push(u8::try_from(body.len()).unwrap_or(0));
    out.extend_from_slice(&body);
    out
}

fn revocation<'a>(
    crls: &'a [&'a CertRevocationList<'a>],
    allow_unknown: bool,
) -> Result<webpki::RevocationOptions<'a>, Error> {
    let b = webpki::RevocationOptionsBuilder::new(crls)
        .map_err(|_| Error::missing("no CRL to check revocation with"))?;
    Ok(b.with_depth(webpki::RevocationCheckDepth::Chain)
        .with_status_policy(if allow_unknown {
            webpki::UnknownStatusPolicy::Allow
        } else {
            webpki::UnknownStatusPolicy::Deny
        })
        .with_expiration_policy(webpki::ExpirationPolicy::Enforce)
        .build())
}

/// Verify a chain `certs[0]` ← `certs[1..]` ← pinned root; returns the DER of the path's
/// certificates below the root (leaf first).
fn verify_chain(
    certs: &[Vec<u8>],
    anchor: &rustls_pki_types::TrustAnchor<'_>,
    crls: &[&CertRevocationList<'_>],
    allow_unknown: bool,
    at: UnixTime,
    what: &str,
) -> Result<Vec<Vec<u8>>, Error> {
    let (leaf, rest) = certs
        .split_first()
        .ok_or_else(|| Error::bad_chain(format!("{what}: empty chain")))?;
    if rest.len() > 4 {
        return Err(Error::bad_chain(format!("{what}: too many certificates")));
    }
    let leaf_der = CertificateDer::from(leaf.as_slice());
    let ee = EndEntityCert::try_from(&leaf_der).map_err(|e| pki(e, what))?;
    let inter: Vec<CertificateDer<'_>> = rest
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let rev = revocation(crls, allow_unknown)?;
    let path = ee
        .verify_for_usage(
            &[ALG],
            std::slice::from_ref(anchor),
            &inter,
            at,
            webpki::KeyUsage::server_auth(),
            Some(rev),
            None,
        )
        .map_err(|e| pki(e, what))?;
    Ok(std::iter::once(path.end_entity().der())
        .chain(path.intermediate_certificates().map(|c| c.der()))
        .map(|c| c.as_ref().to_vec())
        .collect())
}

fn signed_by(cert_der: &[u8], msg: &[u8], sig: &[u8; 64], what: &str) -> Result<(), Error> {
    let der = CertificateDer::from(cert_der);
    let ee = EndEntityCert::try_from(&der).map_err(|e| pki(e, what))?;
    ee.verify_signature(ALG, msg, &der_signature(sig))
        .map_err(|_| Error::bad_signature(format!("{what}: signature does not verify")))
}

/// Verify `quote` (bytes `raw`) with `col` at `now`. `tee` is the quote's TEE type.
pub(crate) fn verify(
    quote: &Quote<'_>,
    raw: &[u8],
    col: &Intel<'_>,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let at = unix_time(now)?;
    let tee = if quote.tee_type == TEE_TYPE_TDX {
        Tee::Tdx
    } else {
        Tee::Sgx
    };
    let mut warnings = Vec::new();
    let mut times = Times::default();

    // Pinned root and CRLs.
    let root_der = CertificateDer::from(INTEL_ROOT_CA);
    let anchor = webpki::anchor_from_trusted_cert(&root_der).map_err(|e| pki(e, "pinned root"))?;
    times.cert("Intel SGX Root CA", INTEL_ROOT_CA)?;
    let root_crl: CertRevocationList<'static> = OwnedCertRevocationList::from_der_verified(
        &col.root_ca_crl,
        &anchor.subject_public_key_info,
        &[ALG],
    )
    .map_err(|e| pki(e, "root CA CRL"))?
    .into();
    let (s, e) = crl_validity(&col.root_ca_crl)?;
    times.add("root CA CRL", Kind::Collateral, s, e);
    let pck_crl: Option<CertRevocationList<'static>> = match &col.pck_crl {
        Some(der) => {
            let (s, e) = crl_validity(der)?;
            times.add("PCK CRL", Kind::Collateral, s, e);
            Some(
                OwnedCertRevocationList::from_der(der)
                    .map_err(|e| pki(e, "PCK CRL"))?
                    .into(),
            )
        }
        None => {
            warnings.push("pck_crl.der absent: PCK revocation not checked".to_owned());
            None
        }
    };
    let mut crls: Vec<&CertRevocationList<'_>> = vec![&root_crl];
    if let Some(c) = &pck_crl {
        crls.push(c);
    }
    webpki::check_single_cert_revocation(INTEL_ROOT_CA, &crls, &[ALG], at)
        .map_err(|e| pki(e, "Intel SGX Root CA"))?;

    // TCBInfo: time, chain (signer issued by the root), signature.
    let (tcb_text, tcb_sig) = col.tcb_info;
    let info = TcbInfo::parse(tcb_text)?;
    if now < info.issue_date {
        return Err(Error::new(
            ErrorClass::NotYetValid,
            "TCBInfo issueDate is after the verification time",
        ));
    }
    if now > info.next_update {
        return Err(Error::new(
            ErrorClass::CollateralExpired,
            "TCBInfo is past its nextUpdate",
        ));
    }
    times.add(
        "TCBInfo",
        Kind::Collateral,
        info.issue_date,
        info.next_update,
    );
    let tcb_chain = pem_certs(col.tcb_chain_pem, "TCB signing chain")?;
    let tcb_path = verify_chain(&tcb_chain, &anchor, &crls, false, at, "TCB signing chain")?;
    if tcb_path.len() != 1 {
        return Err(Error::bad_chain(
            "TCB signing certificate is not issued directly by the root",
        ));
    }
    let tcb_leaf = tcb_path
        .first()
        .ok_or_else(|| Error::bad_chain("empty TCB signing path"))?;
    times.cert("TCB signing certificate", tcb_leaf)?;
    signed_by(tcb_leaf, tcb_text.as_bytes(), &tcb_sig, "TCBInfo")?;

    // QE identity: time, signature (same signer), id/version.
    let qe_identity = match col.qe_identity {
        Some((text, sig)) => {
            let qe = QeIdentity::parse(text)?;
            if now < qe.issue_date {
                return Err(Error::new(
                    ErrorClass::NotYetValid,
                    "QE identity issueDate is after the verification time",
                ));
            }
            if now > qe.next_update {
                return Err(Error::new(
                    ErrorClass::CollateralExpired,
                    "QE identity is past its nextUpdate",
                ));
            }
            times.add(
                "QE identity",
                Kind::Collateral,
                qe.issue_date,
                qe.next_update,
            );
            signed_by(tcb_leaf, text.as_bytes(), &sig, "QE identity")?;
            let (want, versions): (&str, &[u64]) = match tee {
                Tee::Sgx => ("QE", &[2]),
                Tee::Tdx => ("TD_QE", &[2, 3]),
            };
            if qe.id != want || !versions.contains(&qe.version) {
                return Err(Error::new(
                    ErrorClass::WrongCollateral,
                    format!(
                        "QE identity {} v{} does not fit this quote (expected {want})",
                        qe.id, qe.version
                    ),
                ));
            }
            Some(qe)
        }
        None => {
            warnings.push(
                "qe_identity.json absent: QE identity and QE TCB level not checked".to_owned(),
            );
            None
        }
    };

    // PCK chain from the quote, with the CRLs.
    let pck_chain = pem_certs(quote.pck_chain_pem()?, "PCK chain in the quote")
        .map_err(|e| Error::new(ErrorClass::Malformed, e.message().to_owned()))?;
    let pck_path = verify_chain(
        &pck_chain,
        &anchor,
        &crls,
        pck_crl.is_none(),
        at,
        "PCK chain",
    )?;
    for (i, c) in pck_path.iter().enumerate() {
        times.cert(
            if i == 0 {
                "PCK certificate"
            } else {
                "PCK CA certificate"
            },
            c,
        )?;
    }
    let pck_leaf = pck_path
        .first()
        .ok_or_else(|| Error::bad_chain("empty PCK path"))?;
    let pck = dcap_qvl::intel::parse_pck_extension(pck_leaf).map_err(|e| {
        Error::bad_chain(format!(
            "PCK certificate has no usable SGX extension: {e:#}"
        ))
    })?;

    // QE report: signed by the PCK, binds the attestation key.
    let qe_sig = quote.qe_report_signature;
    signed_by(pck_leaf, quote.qe_report, &qe_sig, "QE report")?;
    let qe_report = SgxReport::parse(quote.qe_report)?;
    let mut hashed = Vec::with_capacity(64usize.saturating_add(quote.qe_auth_data.len()));
    hashed.extend_from_slice(&quote.attestation_key);
    hashed.extend_from_slice(quote.qe_auth_data);
    let digest = ring::digest::digest(&ring::digest::SHA256, &hashed);
    if qe_report.report_data.get(..32) != Some(digest.as_ref()) {
        return Err(Error::bad_signature(
            "QE report does not bind the attestation key",
        ));
    }
    let qe_level = match &qe_identity {
        Some(qe) => {
            if qe_report.debug() {
                return Err(Error::new(
                    ErrorClass::WrongCollateral,
                    "QE runs in debug mode",
                ));
            }
            Some(qe.evaluate(
                tee,
                &qe_report.mr_signer,
                qe_report.isv_prod_id,
                qe_report.misc_select,
                &qe_report.attributes,
                qe_report.isv_svn,
            )?)
        }
        None => None,
    };

    // Quote signature by the attestation key over header‖body.
    let signed = raw
        .get(..quote.signed_len)
        .ok_or_else(|| Error::malformed("quote shorter than its signed region"))?;
    let mut key = [0x04u8; 65];
    if let Some(dst) = key.get_mut(1..) {
        dst.copy_from_slice(&quote.attestation_key);
    }
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, key)
        .verify(signed, &quote.signature)
        .map_err(|_| {
            Error::bad_signature("quote signature does not verify with the attestation key")
        })?;

    // Platform TCB.
    if info.tee != tee {
        return Err(Error::new(
            ErrorClass::WrongCollateral,
            "TCBInfo is for another TEE type",
        ));
    }
    if pck.fmspc != info.fmspc {
        return Err(Error::new(
            ErrorClass::WrongCollateral,
            "TCBInfo FMSPC differs from the PCK certificate's",
        ));
    }
    if pck.pce_id.as_slice() != info.pce_id.as_slice() {
        return Err(Error::new(
            ErrorClass::WrongCollateral,
            "TCBInfo PCEID differs from the PCK certificate's",
        ));
    }
    let evaluate = |svn: Option<&[u8; 16]>| -> Result<(TcbStatus, Vec<String>), Error> {
        let level = info.platform_level(&pck.cpu_svn, pck.pce_svn, svn)?;
        let mut status = level.status;
        let mut adv = level.advisory_ids.clone();
        if let (Some(svn), Body::Td(td)) = (svn, &quote.body) {
            if let Some((m_status, m_adv)) =
                tcb::tdx_module_level(&info, svn, &td.mr_signer_seam, &td.seam_attributes)?
            {
                status = tcb::converge(status, m_status);
                adv.extend(m_adv);
            }
        }
        Ok((status, adv))
    };
    let (launch, current) = match &quote.body {
        Body::Sgx(_) => (evaluate(None)?, None),
        Body::Td(td) => (
            evaluate(Some(&td.tee_tcb_svn))?,
            td.td15
                .as_ref()
                .map(|(svn2, _)| evaluate(Some(svn2)))
                .transpose()?,
        ),
    };
    let (mut status, mut lists) = (launch.0, vec![launch.1]);
    let mut current_status = current.map(|c| c.0);
    if let Some((q_status, q_adv)) = qe_level {
        status = tcb::converge(status, q_status);
        current_status = current_status.map(|c| tcb::converge(c, q_status));
        lists.push(q_adv);
    }
    if status == TcbStatus::Revoked || current_status == Some(TcbStatus::Revoked) {
        return Err(Error::new(
            ErrorClass::NoMatchingTcbLevel,
            "TCB level is Revoked",
        ));
    }
    let relaunch_advised = matches!(
        status,
        TcbStatus::OutOfDate | TcbStatus::OutOfDateConfigurationNeeded
    ) && current_status.is_some_and(|c| {
        !matches!(
            c,
            TcbStatus::OutOfDate | TcbStatus::OutOfDateConfigurationNeeded
        )
    });

    times.check(now)?;
    Ok(Outcome {
        status,
        advisory_ids: tcb::union_sorted(lists.iter().map(Vec::as_slice)),
        window: times.window(),
        warnings,
        relaunch_advised,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pinned_root_hash() {
        let d = ring::digest::digest(&ring::digest::SHA256, INTEL_ROOT_CA);
        assert_eq!(hex::encode(d.as_ref()), INTEL_ROOT_CA_SHA256);
    }

    #[test]
    fn der_signature_encoding() {
        let mut raw = [0u8; 64];
        raw[31] = 1; // r = 1
        raw[32] = 0x80; // s has the high bit set: needs a 0x00 pad
        let der = der_signature(&raw);
        assert_eq!(&der[..5], &[0x30, 3 + 2 + 33, 0x02, 0x01, 0x01]);
        assert_eq!(&der[5..8], &[0x02, 33, 0x00]);
        assert_eq!(der.len(), 2 + 3 + 2 + 33);
    }

    #[test]
    fn times_classify_by_kind() {
        let t = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
        let mut times = Times::default();
        times.add("cert", Kind::Cert, t(0), t(100));
        times.add("crl", Kind::Collateral, t(10), t(100));
        assert!(times.check(t(50)).is_ok());
        assert_eq!(
            times.check(t(5)).unwrap_err().class(),
            ErrorClass::NotYetValid
        );
        assert_eq!(
            times.check(t(101)).unwrap_err().class(),
            ErrorClass::CollateralExpired
        );
        times.items.pop();
        assert_eq!(
            times.check(t(101)).unwrap_err().class(),
            ErrorClass::CertExpired
        );
        assert_eq!(
            times.window(),
            Window {
                start: t(0),
                end: t(100)
            }
        );
    }
}
