#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![allow(clippy::arithmetic_side_effects)]

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use super::*;
use crate::{ErrorClass, Evidence};

struct Fixture {
    ca: DevCa,
    ak: AttestationKey,
    now: SystemTime,
    bytes: Vec<u8>,
}

fn fixture() -> Fixture {
    let now = SystemTime::now();
    let ca = DevCa::generate(now).unwrap();
    let ak = ca.issue_attestation_key(now).unwrap();
    let mut report = SimulatedReport::new([0x42; 64], [0x11; 48], b"config = 1");
    report.rtmr[3] = [0x33; 48];
    report.mr_owner = [0x44; 48];
    let bytes = report.sign(&ak, now).unwrap();
    Fixture { ca, ak, now, bytes }
}

fn at(t: SystemTime) -> OffsetDateTime {
    dev_ca::to_offset(t).unwrap()
}

fn run(bytes: &[u8], dev_ca: Option<&[u8]>, now: OffsetDateTime) -> Result<Verified, Rejected> {
    let mut o = VerifyOptions::default();
    o.dev_ca = dev_ca.map(<[u8]>::to_vec);
    crate::verify(
        &Evidence::new(Platform::Simulated, bytes.to_vec()),
        &Collateral::default(),
        &o,
        now,
    )
}

fn class(r: Result<Verified, Rejected>) -> ErrorClass {
    match r {
        Ok(_) => panic!("expected a rejection"),
        Err(r) => r.error.class(),
    }
}

#[test]
fn valid_evidence_verifies_with_claims_and_window() {
    let f = fixture();
    let v = run(&f.bytes, Some(f.ca.cert_der()), at(f.now)).unwrap();
    assert_eq!(v.platform(), Platform::Simulated);
    assert_eq!(v.report_data(), Some(&[0x42u8; 64][..]));
    assert_eq!(v.claims().debug, Some(false));
    assert_eq!(v.tcb_status(), None);
    let m = serde_json::to_value(v.measurements()).unwrap();
    let config_id: [u8; 48] = Sha384::digest(b"config = 1").into();
    assert_eq!(m["mr_config_id"], hex::encode(config_id));
    assert_eq!(m["mr_td"], hex::encode(mr_td(&[0x11; 48], &config_id)));
    assert_eq!(m["binary_sha384"], hex::encode([0x11; 48]));
    assert_eq!(m["mr_owner"], hex::encode([0x44; 48]));
    assert_eq!(m["rtmr3"], hex::encode([0x33; 48]));
    assert_eq!(m["rtmr0"], hex::encode([0u8; 48]));
    let ts = i64::try_from(
        f.now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    assert_eq!(v.claims().properties["timestamp"], serde_json::json!(ts));
    // Window: from the evidence timestamp to the attestation key's expiry.
    let w = v.window();
    assert_eq!(w.start, OffsetDateTime::from_unix_timestamp(ts).unwrap());
    assert_eq!(w.end, at(f.ak.not_after()));
    assert_eq!(f.bytes.len(), 534 + f.ak.cert_der().len());
    assert_eq!(&f.bytes[..8], MAGIC);
}

#[test]
fn ca_as_pem_verifies_too() {
    let f = fixture();
    let pem = f.ca.cert_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    run(&f.bytes, Some(pem.as_bytes()), at(f.now)).unwrap();
}

#[test]
fn debug_is_reported_not_rejected() {
    let now = SystemTime::now();
    let ca = DevCa::generate(now).unwrap();
    let ak = ca.issue_attestation_key(now).unwrap();
    let mut r = SimulatedReport::new([0; 64], [0; 48], b"");
    r.debug = true;
    let v = run(&r.sign(&ak, now).unwrap(), Some(ca.cert_der()), at(now)).unwrap();
    assert_eq!(v.claims().debug, Some(true));
}

#[test]
fn without_dev_ca_is_bad_chain_with_unverified_claims() {
    let f = fixture();
    let r = run(&f.bytes, None, at(f.now)).unwrap_err();
    assert_eq!(r.error.class(), ErrorClass::BadChain);
    assert_eq!(r.unverified.unwrap().report_data, Some(vec![0x42; 64]));
}

#[test]
fn another_ca_is_bad_chain() {
    let f = fixture();
    let other = DevCa::generate(f.now).unwrap();
    assert_eq!(
        class(run(&f.bytes, Some(other.cert_der()), at(f.now))),
        ErrorClass::BadChain
    );
}

#[test]
fn same_name_other_key_is_bad_chain() {
    // An attacker's CA with the same subject name: the issuer name matches, the signature does not.
    let f = fixture();
    let impostor = f.ca.impostor(f.now).unwrap();
    let attacker_ak = impostor.issue_attestation_key(f.now).unwrap();
    let forged = SimulatedReport::new([0; 64], [0; 48], b"")
        .sign(&attacker_ak, f.now)
        .unwrap();
    run(&forged, Some(impostor.cert_der()), at(f.now)).unwrap();
    let r = run(&forged, Some(f.ca.cert_der()), at(f.now)).unwrap_err();
    assert_eq!(r.error.class(), ErrorClass::BadChain);
    assert!(r.error.message().contains("does not verify"), "{}", r.error);
    // And the genuine evidence against the impostor CA.
    assert_eq!(
        class(run(&f.bytes, Some(impostor.cert_der()), at(f.now))),
        ErrorClass::BadChain
    );
}

#[test]
fn garbage_dev_ca_is_bad_chain() {
    let f = fixture();
    assert_eq!(
        class(run(&f.bytes, Some(b"not a certificate"), at(f.now))),
        ErrorClass::BadChain
    );
}

#[test]
fn leaf_certificate_as_dev_ca_is_bad_chain() {
    // The attestation key's own certificate is not a CA: using it as the anchor fails.
    let f = fixture();
    assert_eq!(
        class(run(&f.bytes, Some(f.ak.cert_der()), at(f.now))),
        ErrorClass::BadChain
    );
}

#[test]
fn ca_signed_evidence_with_ca_cert_inside_is_bad_chain() {
    // Evidence signed directly by a CA key whose certificate is embedded: the embedded
    // certificate is a CA, not an attestation key.
    let now = SystemTime::now();
    let ca = DevCa::generate(now).unwrap();
    let fake_ak = AttestationKey::for_tests(ca.key().clone(), ca.cert_der().to_vec());
    let bytes = SimulatedReport::new([0; 64], [0; 48], b"")
        .sign(&fake_ak, now)
        .unwrap();
    // Self-issued: issuer == subject of the CA and signed by it, but cA=true.
    assert_eq!(
        class(run(&bytes, Some(ca.cert_der()), at(now))),
        ErrorClass::BadChain
    );
}

#[test]
fn time_checks() {
    let f = fixture();
    let ca = Some(f.ca.cert_der());
    // Before the certificates start (they are backdated by 5 minutes).
    let early = at(f.now) - time::Duration::minutes(6);
    assert_eq!(class(run(&f.bytes, ca, early)), ErrorClass::NotYetValid);
    // After the certificates start but before the evidence was made.
    let before_stamp = at(f.now) - time::Duration::minutes(1);
    assert_eq!(
        class(run(&f.bytes, ca, before_stamp)),
        ErrorClass::NotYetValid
    );
    // After the attestation key expired.
    let late = at(f.ak.not_after()) + time::Duration::seconds(1);
    assert_eq!(class(run(&f.bytes, ca, late)), ErrorClass::CertExpired);
    // At the exact end it is still valid.
    run(&f.bytes, ca, at(f.ak.not_after())).unwrap();
}

#[test]
fn expired_ca_is_cert_expired() {
    // A CA made 11 years ago has expired; its attestation key is capped at the CA's end.
    let long_ago = SystemTime::now() - Duration::from_secs(11 * 365 * 24 * 3600);
    let ca = DevCa::generate(long_ago).unwrap();
    let ak = ca.issue_attestation_key(long_ago).unwrap();
    let bytes = SimulatedReport::new([0; 64], [0; 48], b"")
        .sign(&ak, long_ago)
        .unwrap();
    run(&bytes, Some(ca.cert_der()), at(long_ago)).unwrap();
    assert_eq!(
        class(run(&bytes, Some(ca.cert_der()), OffsetDateTime::now_utc())),
        ErrorClass::CertExpired
    );
    // The attestation key is capped by the CA's end.
    let near_end = long_ago + CA_LIFETIME - Duration::from_secs(3600);
    let ak2 = ca.issue_attestation_key(near_end).unwrap();
    let ca_end = near_end + Duration::from_secs(3600);
    assert!(ak2.not_after() <= ca_end);
}

#[test]
fn flips_in_signed_region_are_bad_signature_or_malformed() {
    let f = fixture();
    let ev = Evidence::new(Platform::Simulated, f.bytes.clone());
    let region = crate::signed_region(&ev).unwrap();
    assert_eq!(region, 0..f.bytes.len() - 64);
    let len = region.len();
    let count = len; // every byte of the region (> 500)
    assert!(count >= 500);
    let mut classes = std::collections::BTreeMap::new();
    for i in 0..count {
        let offset = region.start + i * len / count;
        let mut b = f.bytes.clone();
        b[offset] ^= 0xff;
        let c = class(run(&b, Some(f.ca.cert_der()), at(f.now)));
        assert!(
            matches!(c, ErrorClass::BadSignature | ErrorClass::Malformed),
            "offset {offset}: {c}"
        );
        *classes.entry(c).or_insert(0) += 1;
    }
    // Most flips hit the signed fields and fail the signature.
    assert!(
        classes[&ErrorClass::BadSignature] > count / 2,
        "{classes:?}"
    );
}

#[test]
fn flips_in_signature_are_bad_signature() {
    let f = fixture();
    let n = f.bytes.len();
    for offset in n - 64..n {
        let mut b = f.bytes.clone();
        b[offset] ^= 0x01;
        assert_eq!(
            class(run(&b, Some(f.ca.cert_der()), at(f.now))),
            ErrorClass::BadSignature,
            "offset {offset}"
        );
    }
}

#[test]
fn truncations_and_trailing_bytes_are_malformed() {
    let f = fixture();
    let ca = Some(f.ca.cert_der());
    for cut in 0..f.bytes.len() {
        assert_eq!(
            class(run(&f.bytes[..cut], ca, at(f.now))),
            ErrorClass::Malformed,
            "cut {cut}"
        );
    }
    for extra in [&[0u8][..], &[0, 0, 0x5a], &[0x5a]] {
        let mut b = f.bytes.clone();
        b.extend_from_slice(extra);
        assert_eq!(class(run(&b, ca, at(f.now))), ErrorClass::Malformed);
        assert_eq!(
            crate::signed_region(&Evidence::new(Platform::Simulated, b)),
            None
        );
    }
}

/// Re-sign `bytes[..signed]` with `ak` after `edit`, producing well-signed variants.
fn resign(f: &Fixture, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = f.bytes[..f.bytes.len() - 64].to_vec();
    edit(&mut b);
    let sig: Signature = f.ak.key.sign(&preimage(&b));
    b.extend_from_slice(&sig.to_bytes());
    b
}

#[test]
fn header_checks_are_malformed_even_when_signed() {
    let f = fixture();
    let ca = Some(f.ca.cert_der());
    let now = at(f.now);
    // Sanity: re-signing unchanged bytes verifies.
    run(&resign(&f, |_| {}), ca, now).unwrap();
    assert_eq!(
        class(run(&resign(&f, |b| b[7] = b'2'), ca, now)),
        ErrorClass::Malformed
    ); // magic
    assert_eq!(
        class(run(&resign(&f, |b| b[9] = 2), ca, now)),
        ErrorClass::Malformed
    ); // version
    assert_eq!(
        class(run(&resign(&f, |b| b[11] = 2), ca, now)),
        ErrorClass::Malformed
    ); // reserved flag
    assert_eq!(
        class(run(&resign(&f, |b| b[20] ^= 1), ca, now)),
        ErrorClass::Malformed
    ); // mr_td not derived
    assert_eq!(
        class(run(
            &resign(&f, |b| {
                b[468] = 0;
                b[469] = 0;
            }),
            ca,
            now
        )),
        ErrorClass::Malformed
    ); // n = 0
    // Wrong-domain signature (signature over the bytes without the tag) is bad_signature.
    let mut b = f.bytes[..f.bytes.len() - 64].to_vec();
    let sig: Signature = f.ak.key.sign(&b);
    b.extend_from_slice(&sig.to_bytes());
    assert_eq!(class(run(&b, ca, now)), ErrorClass::BadSignature);
}

#[test]
fn timestamp_from_the_future_is_not_yet_valid() {
    let f = fixture();
    let later = f.now + Duration::from_secs(3600);
    let bytes = SimulatedReport::new([0; 64], [0; 48], b"")
        .sign(&f.ak, later)
        .unwrap();
    assert_eq!(
        class(run(&bytes, Some(f.ca.cert_der()), at(f.now))),
        ErrorClass::NotYetValid
    );
    run(&bytes, Some(f.ca.cert_der()), at(later)).unwrap();
}

#[test]
fn mr_td_depends_on_binary_and_config() {
    let a = SimulatedReport::new([0; 64], [1; 48], b"a").mr_td();
    assert_ne!(a, SimulatedReport::new([0; 64], [2; 48], b"a").mr_td());
    assert_ne!(a, SimulatedReport::new([0; 64], [1; 48], b"b").mr_td());
    assert_eq!(a, SimulatedReport::new([9; 64], [1; 48], b"a").mr_td());
}

#[test]
fn current_exe_hash_matches_file_hash() {
    let exe = std::env::current_exe().unwrap();
    let want: [u8; 48] = Sha384::digest(std::fs::read(&exe).unwrap()).into();
    assert_eq!(current_exe_sha384().unwrap(), want);
}

#[test]
fn init_creates_then_loads_the_same_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join(".pith");
    let now = SystemTime::now();
    let a = DevCa::init(&d, now).unwrap();
    let mode = std::fs::metadata(d.join(KEY_FILE))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let b = DevCa::init(&d, now).unwrap();
    assert_eq!(a.cert_der(), b.cert_der());
    let pem = std::fs::read(d.join(CERT_FILE)).unwrap();
    assert_eq!(Cert::from_pem_or_der(&pem).unwrap().der(), a.cert_der());
    // Evidence from a key issued by the loaded CA verifies against the stored certificate.
    let ak = b.issue_attestation_key(now).unwrap();
    let ev = SimulatedReport::new([0; 64], [0; 48], b"")
        .sign(&ak, now)
        .unwrap();
    run(&ev, Some(&pem), at(now)).unwrap();
}

#[test]
fn concurrent_init_agrees_on_one_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let now = SystemTime::now();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let d = d.clone();
            std::thread::spawn(move || DevCa::init(&d, now).unwrap().cert_der().to_vec())
        })
        .collect();
    let certs: Vec<Vec<u8>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(certs.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn load_rejects_insecure_key_mismatch_and_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let now = SystemTime::now();
    assert!(matches!(DevCa::load(d), Err(DevCaError::Io { .. })));
    let ca = DevCa::init(d, now).unwrap();
    let key = d.join(KEY_FILE);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        DevCa::load(d),
        Err(DevCaError::InsecurePermissions { mode: 0o644, .. })
    ));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    DevCa::load(d).unwrap();
    // Certificate of another CA next to this key.
    let other = DevCa::generate(now).unwrap();
    std::fs::write(d.join(CERT_FILE), other.cert_pem().unwrap()).unwrap();
    assert!(matches!(DevCa::load(d), Err(DevCaError::BadCert { .. })));
    std::fs::write(d.join(CERT_FILE), ca.cert_pem().unwrap()).unwrap();
    std::fs::write(&key, "garbage").unwrap();
    assert!(matches!(DevCa::load(d), Err(DevCaError::BadKey { .. })));
}

#[test]
fn each_ca_has_a_fresh_key() {
    let now = SystemTime::now();
    assert_ne!(
        DevCa::generate(now).unwrap().cert_der(),
        DevCa::generate(now).unwrap().cert_der()
    );
    assert_ne!(
        DevCa::generate(now).unwrap().key().verifying_key(),
        DevCa::generate(now).unwrap().key().verifying_key()
    );
}

#[test]
fn verify_bound_checks_the_report_data_binding() {
    let f = fixture();
    let mut o = VerifyOptions::default();
    o.dev_ca = Some(f.ca.cert_der().to_vec());
    let ev = Evidence::new(Platform::Simulated, f.bytes.clone());
    let verified = run(&f.bytes, Some(f.ca.cert_der()), at(f.now)).unwrap();
    let bound =
        crate::verify_bound(&ev, &Collateral::default(), &o, &[0x42; 64], at(f.now)).unwrap();
    assert_eq!(bound.platform, Platform::Simulated);
    assert_eq!(bound.measurement_hash, crate::measurement_hash(&verified));
    assert_eq!(
        bound.tcb_status,
        verified.tcb_status().map_or(0, crate::TcbStatus::code)
    );
    // another binding
    let e =
        crate::verify_bound(&ev, &Collateral::default(), &o, &[0x43; 64], at(f.now)).unwrap_err();
    assert!(matches!(e, crate::BindingError::ReportData), "{e}");
    // evidence that does not verify (no dev CA)
    let e = crate::verify_bound(
        &ev,
        &Collateral::default(),
        &VerifyOptions::default(),
        &[0x42; 64],
        at(f.now),
    )
    .unwrap_err();
    assert!(
        matches!(&e, crate::BindingError::Rejected(r) if r.error.class() == ErrorClass::BadChain),
        "{e}"
    );
}
