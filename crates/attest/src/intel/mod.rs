//! Intel SGX (DCAP quote v3) and TDX (quote v4/v5, TD 1.0 and TD 1.5 bodies).
//!
//! The DCAP verification itself is dcap-qvl's ([`dcap_qvl::verify::QuoteVerifier`],
//! configured to allow debug and service TDs, which are policy questions for us). Around
//! it we own: quote framing (trailing bytes, signed region) and measurement fields
//! ([`quote`]), the collateral files ([`collateral`]), the mapping of dcap-qvl's errors to
//! our classes ([`errors`]), and a complete pipeline of our own ([`own`], with TCB
//! evaluation in [`tcb`]) for what dcap-qvl 0.7 cannot do: TCBInfo v2, lenient mode
//! (absent PCK CRL or QE identity, skipped checks listed as warnings), TDs that dcap-qvl
//! rejects for policy reasons (no SEPT_VE_DISABLE, migratable, reserved attribute bits),
//! which we report as claims, and the validity window's fine classification.

pub(crate) mod collateral;
pub(crate) mod errors;
pub(crate) mod own;
pub(crate) mod quote;
pub(crate) mod tcb;

use std::sync::OnceLock;

use time::OffsetDateTime;

use crate::error::{Error, ErrorClass};
use crate::report::{Claims, TcbStatus, Value, Window};
use crate::{Collateral, Platform, Rejected, Verified, VerifyOptions};

use quote::{Body, Quote, TEE_TYPE_SGX, TEE_TYPE_TDX};

pub(crate) use own::INTEL_ROOT_CA;

/// TD attribute bits (Intel TDX Module ABI spec, TDREPORT ATTRIBUTES).
mod td_attr {
    pub const DEBUG: u64 = 1 << 0;
    pub const TUD_MASK: u64 = 0xff;
    pub const SERVTD_EXT: u64 = 1 << 17;
    pub const SEPT_VE_DISABLE: u64 = 1 << 28;
    pub const MIGRATABLE: u64 = 1 << 29;
    pub const PKS: u64 = 1 << 30;
    pub const KL: u64 = 1 << 31;
    pub const PERFMON: u64 = 1 << 63;
    /// Must-be-zero bits in TDX 1.5 (ABI 348551-008US, table 3.23): 1-3, 7-15, 23-26, 32-61.
    pub const RESERVED: u64 = 0x0e | 0xff80 | (0x0f << 23) | (0x3fff_ffff << 32);
}

/// Build the (unverified) claims from a parsed quote.
pub(crate) fn claims_of(q: &Quote<'_>) -> Claims {
    let mut c = Claims::default();
    let m = &mut c.measurements;
    let b = |v: &[u8]| Value::Bytes(v.to_vec());
    match &q.body {
        Body::Sgx(r) => {
            m.insert("mr_enclave".into(), b(&r.mr_enclave));
            m.insert("mr_signer".into(), b(&r.mr_signer));
            m.insert("isv_prod_id".into(), b(&r.isv_prod_id.to_le_bytes()));
            m.insert("isv_svn".into(), b(&r.isv_svn.to_le_bytes()));
            m.insert("attributes".into(), b(&r.attributes));
            c.report_data = Some(r.report_data.to_vec());
            c.debug = Some(r.debug());
        }
        Body::Td(r) => {
            m.insert("mr_td".into(), b(&r.mr_td));
            m.insert("mr_seam".into(), b(&r.mr_seam));
            m.insert("mr_signer_seam".into(), b(&r.mr_signer_seam));
            m.insert("mr_config_id".into(), b(&r.mr_config_id));
            m.insert("mr_owner".into(), b(&r.mr_owner));
            m.insert("mr_owner_config".into(), b(&r.mr_owner_config));
            for (i, rtmr) in r.rtmr.iter().enumerate() {
                m.insert(format!("rtmr{i}"), b(rtmr));
            }
            m.insert("td_attributes".into(), b(&r.td_attributes));
            m.insert("xfam".into(), b(&r.xfam));
            m.insert("tee_tcb_svn".into(), b(&r.tee_tcb_svn));
            if let Some((svn2, mr_service_td)) = &r.td15 {
                m.insert("tee_tcb_svn2".into(), b(svn2));
                m.insert("mr_service_td".into(), b(mr_service_td));
            }
            c.report_data = Some(r.report_data.to_vec());
            let a = r.attributes();
            c.debug = Some(a & td_attr::DEBUG != 0);
            let p = &mut c.properties;
            let flag = |bit: u64| serde_json::Value::Bool(a & bit != 0);
            p.insert("sept_ve_disable".into(), flag(td_attr::SEPT_VE_DISABLE));
            p.insert("migratable".into(), flag(td_attr::MIGRATABLE));
            p.insert("td_under_debug".into(), flag(td_attr::TUD_MASK));
            p.insert("pks".into(), flag(td_attr::PKS));
            p.insert("kl".into(), flag(td_attr::KL));
            p.insert("perfmon".into(), flag(td_attr::PERFMON));
            p.insert("reserved_attributes".into(), flag(td_attr::RESERVED));
            let service_td = a & td_attr::SERVTD_EXT != 0
                || r.td15
                    .as_ref()
                    .is_some_and(|(_, s)| s.iter().any(|&x| x != 0));
            p.insert("service_td".into(), serde_json::Value::Bool(service_td));
        }
    }
    c.properties
        .insert("quote_version".into(), serde_json::Value::from(q.version));
    c
}

/// Accepts every verified quote: appraisal is the policy module's job.
struct AcceptAll;

impl dcap_qvl::Policy for AcceptAll {
    fn validate(&self, _: &dcap_qvl::QuoteClaims) -> anyhow::Result<()> {
        Ok(())
    }
}

fn verifier() -> &'static dcap_qvl::verify::QuoteVerifier {
    static V: OnceLock<dcap_qvl::verify::QuoteVerifier> = OnceLock::new();
    V.get_or_init(|| {
        dcap_qvl::verify::QuoteVerifier::new(INTEL_ROOT_CA.to_vec())
            .allow_debug(true)
            .allow_service_td(true)
    })
}

fn map_status(s: &dcap_qvl::TcbStatus) -> Result<TcbStatus, Error> {
    use dcap_qvl::TcbStatus as D;
    Ok(match s {
        D::UpToDate => TcbStatus::UpToDate,
        D::SWHardeningNeeded => TcbStatus::SwHardeningNeeded,
        D::ConfigurationNeeded => TcbStatus::ConfigurationNeeded,
        D::ConfigurationAndSWHardeningNeeded => TcbStatus::ConfigurationAndSwHardeningNeeded,
        D::OutOfDate => TcbStatus::OutOfDate,
        D::OutOfDateConfigurationNeeded => TcbStatus::OutOfDateConfigurationNeeded,
        D::Revoked => TcbStatus::Revoked,
        other => {
            return Err(Error::malformed(format!(
                "unexpected level status {other:?}"
            )));
        }
    })
}

fn from_secs(s: u64) -> Result<OffsetDateTime, Error> {
    let s = i64::try_from(s).map_err(|_| Error::malformed("time out of range"))?;
    OffsetDateTime::from_unix_timestamp(s).map_err(|_| Error::malformed("time out of range"))
}

/// The dcap-qvl path. `Ok(None)` means dcap-qvl rejected the quote only for a TD
/// attribute policy check after everything verified: use our pipeline instead.
fn verify_dcap(
    raw: &[u8],
    col: &collateral::Intel<'_>,
    now: OffsetDateTime,
) -> Result<Option<(TcbStatus, Vec<String>, Window, bool)>, Error> {
    let Some(dcap_col) = col.to_dcap() else {
        return Ok(None);
    };
    let secs =
        u64::try_from(now.unix_timestamp()).map_err(|_| Error::malformed("time before 1970"))?;
    let claims = match verifier().verify_with_policy(raw, dcap_col, secs, &AcceptAll) {
        Ok(c) => c,
        Err(e) => {
            return match errors::map(&e) {
                errors::Mapped::Failure(err) => Err(err),
                errors::Mapped::PolicyOnly(_) => Ok(None),
            };
        }
    };
    // dcap-qvl does not compare the TCBInfo PCEID with the PCK certificate's.
    let pce_id = pce_id_of(col.tcb_info.0)?;
    if claims.platform.pck.pce_id.as_slice() != pce_id.as_slice() {
        return Err(Error::new(
            ErrorClass::WrongCollateral,
            "TCBInfo PCEID differs from the PCK certificate's",
        ));
    }
    let window = Window {
        start: from_secs(claims.latest_issue_date)?,
        end: from_secs(claims.earliest_expiration_date)?,
    };
    if now < window.start || now > window.end {
        // dcap-qvl does not check CRL thisUpdate; let our pipeline classify.
        return Ok(None);
    }
    let status = tcb::converge(
        map_status(&claims.platform.tcb_level.tcb_status)?,
        map_status(&claims.qe.tcb_level.tcb_status)?,
    );
    let relaunch = matches!(
        claims.tcb.status,
        dcap_qvl::TcbStatus::TDRelaunchAdvised
            | dcap_qvl::TcbStatus::TDRelaunchAdvisedConfigurationNeeded
    );
    let mut adv = claims.tcb.advisory_ids;
    adv.sort();
    adv.dedup();
    Ok(Some((status, adv, window, relaunch)))
}

/// `pceId` of the signed TCBInfo text.
fn pce_id_of(text: &str) -> Result<[u8; 2], Error> {
    #[derive(serde::Deserialize)]
    struct P<'a> {
        #[serde(rename = "pceId", borrow)]
        pce_id: &'a str,
    }
    let p: P<'_> =
        serde_json::from_str(text).map_err(|e| Error::malformed(format!("TCBInfo: {e}")))?;
    tcb::hex_array(p.pce_id, "pceId")
}

pub(crate) fn verify(
    platform: Platform,
    bytes: &[u8],
    collateral: &Collateral,
    options: &VerifyOptions,
    now: OffsetDateTime,
) -> Result<Verified, Rejected> {
    let quote = quote::parse(bytes).map_err(|e| Rejected::new(Some(platform), e))?;
    let claims = claims_of(&quote);
    let reject = |e: Error| Rejected::new(Some(platform), e).with_claims(claims.clone());
    let want_tee = match platform {
        Platform::Sgx => TEE_TYPE_SGX,
        _ => TEE_TYPE_TDX,
    };
    if quote.tee_type != want_tee {
        return Err(reject(Error::malformed(format!(
            "not an {platform} quote (TEE type {:#x})",
            quote.tee_type
        ))));
    }

    let absent = collateral::absent(collateral);
    let skippable = |name: &&str| matches!(*name, "qe_identity.json" | "pck_crl.der");
    if !absent.is_empty() && (!options.lenient_collateral || !absent.iter().all(skippable)) {
        return Err(reject(Error::missing(format!(
            "Intel collateral absent: {}",
            absent.join(", ")
        ))));
    }
    let col = collateral::Intel::parse(collateral).map_err(reject)?;
    let version = collateral::tcb_info_version(col.tcb_info.0).map_err(reject)?;

    let fast = if absent.is_empty() && version >= 3 {
        verify_dcap(bytes, &col, now).map_err(reject)?
    } else {
        None
    };
    let (status, advisory_ids, window, relaunch, warnings) = match fast {
        Some((s, a, w, r)) => (s, a, w, r, Vec::new()),
        None => {
            let o = own::verify(&quote, bytes, &col, now).map_err(reject)?;
            (
                o.status,
                o.advisory_ids,
                o.window,
                o.relaunch_advised,
                o.warnings,
            )
        }
    };
    if quote.nonzero_trailer {
        return Err(reject(Error::malformed(
            "non-zero bytes after the quote's signature data",
        )));
    }
    let mut claims = claims;
    if matches!(quote.body, Body::Td(_)) {
        claims.properties.insert(
            "td_relaunch_advised".into(),
            serde_json::Value::Bool(relaunch),
        );
    }
    Ok(Verified::new(
        platform,
        claims,
        Some(status),
        Some(advisory_ids),
        window,
        now,
    )
    .with_warnings(warnings))
}

/// The byte range signed by the attestation key: header‖(v5 body descriptor)‖body.
pub(crate) fn signed_region(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    quote::signed_region(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;
    use std::path::{Path, PathBuf};
    use time::format_description::well_known::Rfc3339;

    fn dir(case: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/attestation")
            .join(case)
    }

    fn load(case: &str) -> (Vec<u8>, Collateral, OffsetDateTime, serde_json::Value) {
        let d = dir(case);
        let e: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("expect.json")).unwrap()).unwrap();
        let at = OffsetDateTime::parse(e["at"].as_str().unwrap(), &Rfc3339).unwrap();
        (
            std::fs::read(d.join("evidence.bin")).unwrap(),
            Collateral::from_dir(&d.join("collateral")).unwrap(),
            at,
            e,
        )
    }

    fn intel_cases() -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir(""))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("sgx-") || n.starts_with("tdx-"))
            .collect();
        v.sort();
        v
    }

    /// Our own pipeline agrees with dcap-qvl on every strict TCBInfo-v3 case: same
    /// verdict, class, status, advisories and window.
    #[test]
    fn own_pipeline_agrees_with_dcap_qvl() {
        let mut compared = 0;
        for case in intel_cases() {
            let (ev, c, at, _) = load(&case);
            if !collateral::absent(&c).is_empty() {
                continue;
            }
            let q = quote::parse(&ev).unwrap();
            let col = collateral::Intel::parse(&c).unwrap();
            if collateral::tcb_info_version(col.tcb_info.0).unwrap() < 3 {
                continue;
            }
            let ours = own::verify(&q, &ev, &col, at);
            let theirs = verify_dcap(&ev, &col, at);
            match (ours, theirs) {
                (Ok(o), Ok(Some((s, a, w, r)))) => {
                    assert_eq!(
                        (o.status, &o.advisory_ids, o.window, o.relaunch_advised),
                        (s, &a, w, r),
                        "{case}"
                    );
                }
                (Err(o), Err(t)) => {
                    assert_eq!(o.class(), t.class(), "{case}: ours {o}, dcap-qvl {t}")
                }
                // dcap-qvl rejected a TD for an attribute policy only: our pipeline decides.
                (Ok(_), Ok(None)) => {
                    let p = claims_of(&q).properties;
                    assert!(
                        p.get("sept_ve_disable") == Some(&serde_json::Value::Bool(false))
                            || p.get("migratable") == Some(&serde_json::Value::Bool(true))
                            || p.get("reserved_attributes") == Some(&serde_json::Value::Bool(true)),
                        "{case}: dcap-qvl fell back without a policy reason"
                    );
                }
                (o, t) => panic!("{case}: ours {o:?}, dcap-qvl {t:?}"),
            }
            compared += 1;
        }
        assert!(compared >= 20, "only {compared} cases compared");
    }

    #[test]
    fn strict_requires_all_five_files() {
        let (ev, c, at, _) = load("tdx-t1-uptodate");
        assert!(verify(Platform::Tdx, &ev, &c, &VerifyOptions::default(), at).is_ok());
        let mut lenient = VerifyOptions::default();
        lenient.lenient_collateral = true;
        for drop in 0..5 {
            let mut c2 = c.clone();
            match drop {
                0 => c2.tcb_info = None,
                1 => c2.qe_identity = None,
                2 => c2.tcb_signing_chain = None,
                3 => c2.pck_crl = None,
                _ => c2.root_ca_crl = None,
            }
            let r = verify(Platform::Tdx, &ev, &c2, &VerifyOptions::default(), at).unwrap_err();
            assert_eq!(
                r.error.class(),
                ErrorClass::MissingCollateral,
                "drop {drop}"
            );
            assert!(r.unverified.is_some());
            // Lenient mode only forgives the QE identity and the PCK CRL, with warnings.
            match (drop, verify(Platform::Tdx, &ev, &c2, &lenient, at)) {
                (1 | 3, Ok(v)) => assert_eq!(v.warnings().len(), 1, "drop {drop}"),
                (1 | 3, Err(r)) => panic!("drop {drop}: {r}"),
                (_, Ok(_)) => panic!("drop {drop} accepted"),
                (_, Err(r)) => assert_eq!(r.error.class(), ErrorClass::MissingCollateral),
            }
        }
    }

    #[test]
    fn wrong_platform_and_collateral_mixups() {
        let (ev, c, at, _) = load("tdx-t1-uptodate");
        let r = verify(Platform::Sgx, &ev, &c, &VerifyOptions::default(), at).unwrap_err();
        assert_eq!(r.error.class(), ErrorClass::Malformed);
        // SGX collateral for a TDX quote.
        let (_, sgx_c, _, _) = load("sgx-s1-confsw-hardening");
        let mut mixed = c.clone();
        mixed.tcb_info = sgx_c.tcb_info.clone();
        let r = verify(Platform::Tdx, &ev, &mixed, &VerifyOptions::default(), at).unwrap_err();
        assert!(
            matches!(
                r.error.class(),
                ErrorClass::WrongCollateral
                    | ErrorClass::NotYetValid
                    | ErrorClass::CollateralExpired
            ),
            "{r}"
        );
        // A tampered TCBInfo signature.
        let mut bad = c.clone();
        let text = String::from_utf8(bad.tcb_info.clone().unwrap()).unwrap();
        let i = text.find("\"signature\":\"").unwrap() + 13;
        let mut t = text.into_bytes();
        t[i] = if t[i] == b'0' { b'1' } else { b'0' };
        bad.tcb_info = Some(t);
        let r = verify(Platform::Tdx, &ev, &bad, &VerifyOptions::default(), at).unwrap_err();
        assert_eq!(r.error.class(), ErrorClass::BadSignature, "{r}");
        // A TCB signing chain that is not Intel's: a PCK chain from a quote.
        let q = quote::parse(&ev).unwrap();
        let mut chain = c.clone();
        chain.tcb_signing_chain = Some(q.pck_chain_pem().unwrap().to_vec());
        let r = verify(Platform::Tdx, &ev, &chain, &VerifyOptions::default(), at).unwrap_err();
        assert!(
            matches!(
                r.error.class(),
                ErrorClass::BadChain | ErrorClass::BadSignature
            ),
            "{r}"
        );
    }

    #[test]
    fn td_attribute_policy_is_reported_not_rejected() {
        // Every valid TDX case reports the attribute properties.
        let (ev, c, at, _) = load("tdx-t1-uptodate");
        let v = verify(Platform::Tdx, &ev, &c, &VerifyOptions::default(), at).unwrap();
        let p = &v.claims().properties;
        for k in [
            "sept_ve_disable",
            "migratable",
            "service_td",
            "td_relaunch_advised",
            "reserved_attributes",
        ] {
            assert!(p.contains_key(k), "{k}");
        }
        assert_eq!(v.claims().debug, Some(false));
    }
}
