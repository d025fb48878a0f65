//! Negative cases for every check, built from the real corpus reports and certificates.
//! Checks that come after the report signature (step 6, [`bind`]) are exercised directly
//! on modified reports, since a modified report no longer carries a valid signature.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
#![allow(clippy::panic, clippy::result_large_err)]

use std::path::PathBuf;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::*;

fn dir(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/attestation")
        .join(case)
}

struct Case {
    evidence: Vec<u8>,
    collateral: Collateral,
    at: OffsetDateTime,
}

fn case(name: &str) -> Case {
    let d = dir(name);
    let expect: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("expect.json")).unwrap()).unwrap();
    Case {
        evidence: std::fs::read(d.join("evidence.bin")).unwrap(),
        collateral: Collateral::from_dir(&d.join("collateral")).unwrap(),
        at: OffsetDateTime::parse(expect["at"].as_str().unwrap(), &Rfc3339).unwrap(),
    }
}

fn run(c: &Case) -> Result<Verified, Rejected> {
    verify(&c.evidence, &c.collateral, &VerifyOptions::default(), c.at)
}

fn class(c: &Case) -> ErrorClass {
    match run(c) {
        Ok(_) => panic!("expected a rejection"),
        Err(r) => r.error.class(),
    }
}

fn amd_root(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("roots/amd")
            .join(name),
    )
    .unwrap()
}

fn pem(der: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out.into_bytes()
}

#[test]
fn corpus_valid_cases_verify_with_claims() {
    for name in [
        "snp-n1-milan",
        "snp-n2-milan",
        "snp-n7-milan",
        "snp-n8-vlek-aws",
        "snp-n9-azure-milan",
    ] {
        let v = run(&case(name)).unwrap_or_else(|r| panic!("{name}: {r}"));
        assert_eq!(v.platform(), Platform::SevSnp);
        assert_eq!(v.tcb_status(), None);
        let p = &v.claims().properties;
        assert_eq!(p["product"], "Milan", "{name}");
        for key in [
            "measurement",
            "host_data",
            "id_key_digest",
            "author_key_digest",
            "report_id",
        ] {
            assert!(v.measurements().contains_key(key), "{name}: {key}");
        }
    }
    let v = run(&case("snp-n8-vlek-aws")).unwrap();
    let p = &v.claims().properties;
    assert_eq!(p["vmpl"], 1);
    assert_eq!(p["signing_key"], "vlek");
    assert_eq!(p["csp_id"], "CN=cc-us-east-2.amazonaws.com");
    assert_eq!(
        p["cpuid"],
        serde_json::json!({"family": 0x19, "model": 1, "stepping": 1})
    );
    assert_eq!(
        p["reported_tcb"],
        serde_json::json!({"bl": 4, "tee": 0, "snp": 0x18, "ucode": 0xd9})
    );
    assert_eq!(p["current_version"], "1.55.29");
    // n7: policy 0x3001f = ABI 0.31, SMT allowed, no migration agent, no debug.
    let v = run(&case("snp-n7-milan")).unwrap();
    let p = &v.claims().properties;
    assert_eq!(v.claims().debug, Some(false));
    assert_eq!(p["smt_allowed"], true);
    assert_eq!(p["migration_agent"], false);
    assert_eq!(p["abi_minor"], 0x1f);
    assert_eq!(p["guest_svn"], 4);
    assert_eq!(p["signing_key"], "vcek");
}

#[test]
fn policy_bits_are_reported_not_rejected() {
    let c = case("snp-n1-milan");
    let mut r = Report::parse(&c.evidence).unwrap();
    r.policy = (1 << 19) | (1 << 18) | (1 << 17);
    let claims = claims(&r, Some(Product::Milan));
    assert_eq!(claims.debug, Some(true));
    assert_eq!(claims.properties["migration_agent"], true);
    assert_eq!(claims.properties["smt_allowed"], false);
}

#[test]
fn missing_certificate_is_missing_collateral() {
    let mut c = case("snp-n1-milan");
    c.collateral.vcek = None;
    assert_eq!(class(&c), ErrorClass::MissingCollateral);
}

#[test]
fn absent_cert_chain_uses_the_pinned_one() {
    let mut c = case("snp-n9-azure-milan");
    c.collateral.cert_chain = None;
    run(&c).unwrap();
}

#[test]
fn pem_vcek_is_accepted() {
    let mut c = case("snp-n9-azure-milan");
    let der = c.collateral.vcek.take().unwrap();
    c.collateral.vcek = Some(pem(&der));
    c.collateral.cert_chain = None;
    run(&c).unwrap();
}

#[test]
fn pem_vcek_file_in_the_collateral_dir_is_read() {
    let c = case("snp-n9-azure-milan");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vcek.pem"),
        pem(c.collateral.vcek.as_ref().unwrap()),
    )
    .unwrap();
    let collateral = Collateral::from_dir(dir.path()).unwrap();
    verify(&c.evidence, &collateral, &VerifyOptions::default(), c.at).unwrap();
}

#[test]
fn cert_chain_repeating_the_leaf_is_accepted() {
    let mut c = case("snp-n1-milan");
    let mut chain = pem(c.collateral.vcek.as_ref().unwrap());
    chain.extend(c.collateral.cert_chain.take().unwrap());
    c.collateral.cert_chain = Some(chain);
    run(&c).unwrap();
}

#[test]
fn vlek_with_the_vcek_chain_is_bad_chain() {
    let mut c = case("snp-n8-vlek-aws");
    let mut chain = amd_root("ask_milan.pem");
    chain.extend(amd_root("ark_milan.pem"));
    c.collateral.cert_chain = Some(chain);
    assert_eq!(class(&c), ErrorClass::BadChain);
}

#[test]
fn vcek_with_another_products_chain_is_bad_chain() {
    let mut c = case("snp-n1-milan");
    let mut chain = amd_root("ask_genoa.pem");
    chain.extend(amd_root("ark_genoa.pem"));
    c.collateral.cert_chain = Some(chain);
    assert_eq!(class(&c), ErrorClass::BadChain);
}

#[test]
fn vcek_with_the_vlek_chain_is_bad_chain() {
    // A VCEK (issued by the ASK) with the ASVK + ARK chain of a VLEK.
    let n8 = case("snp-n8-vlek-aws");
    let mut c = case("snp-n1-milan");
    c.collateral.cert_chain = n8.collateral.cert_chain;
    assert_eq!(class(&c), ErrorClass::BadChain);
}

#[test]
fn tampered_vcek_is_bad_chain() {
    let mut c = case("snp-n1-milan");
    let mut der = c.collateral.vcek.take().unwrap();
    // Last byte of the hwID extension value, inside the signed tbsCertificate.
    let tbs_end = 4 + 4 + usize::from(u16::from_be_bytes([der[6], der[7]]));
    der[tbs_end - 1] ^= 1;
    c.collateral.vcek = Some(der);
    assert_eq!(class(&c), ErrorClass::BadChain);
}

#[test]
fn garbage_collateral_is_malformed() {
    let mut c = case("snp-n1-milan");
    c.collateral.vcek = Some(b"not a certificate".to_vec());
    assert_eq!(class(&c), ErrorClass::Malformed);
    let mut c = case("snp-n1-milan");
    c.collateral.cert_chain =
        Some(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n".to_vec());
    assert_eq!(class(&c), ErrorClass::Malformed);
}

#[test]
fn validity_is_strict() {
    let c = case("snp-n1-milan");
    let leaf_der = x509::der_or_pem(c.collateral.vcek.as_ref().unwrap()).unwrap();
    let leaf = Certificate::parse(&leaf_der).unwrap();
    let at = |t| Case {
        evidence: c.evidence.clone(),
        collateral: c.collateral.clone(),
        at: t,
    };
    assert_eq!(
        class(&at(leaf.not_before - time::Duration::SECOND)),
        ErrorClass::NotYetValid
    );
    run(&at(leaf.not_before)).unwrap();
    run(&at(leaf.not_after)).unwrap();
    assert_eq!(
        class(&at(leaf.not_after + time::Duration::SECOND)),
        ErrorClass::CertExpired
    );
    // Before the pinned ARK-Milan existed.
    assert_eq!(
        class(&at(time::macros::datetime!(2019-01-01 0:00 UTC))),
        ErrorClass::NotYetValid
    );
}

#[test]
fn unsupported_versions_are_malformed() {
    for version in [0u32, 1, 4, 6, 0xffff_ffff] {
        let mut c = case("snp-n8-vlek-aws");
        c.evidence[0..4].copy_from_slice(&version.to_le_bytes());
        assert_eq!(class(&c), ErrorClass::Malformed, "version {version}");
    }
}

#[test]
fn wrong_length_is_malformed() {
    let mut c = case("snp-n1-milan");
    c.evidence.push(0);
    assert_eq!(class(&c), ErrorClass::Malformed);
    c.evidence.truncate(REPORT_LEN - 1);
    assert_eq!(class(&c), ErrorClass::Malformed);
}

#[test]
fn unsigned_or_masked_reports_are_bad_signature() {
    let mut c = case("snp-n1-milan");
    c.evidence[0x48] = 7 << 2;
    assert_eq!(class(&c), ErrorClass::BadSignature);
    let mut c = case("snp-n1-milan");
    c.evidence[0x48] = 0b10;
    assert_eq!(class(&c), ErrorClass::BadSignature);
}

#[test]
fn signature_with_high_bytes_set_is_bad_signature() {
    let mut c = case("snp-n1-milan");
    c.evidence[SIGNED_LEN + 60] = 1;
    assert_eq!(class(&c), ErrorClass::BadSignature);
}

#[test]
fn another_chips_vcek_is_wrong_collateral_and_keeps_unverified_claims() {
    // A genuine VCEK of another chip: its hwID differs from CHIP_ID in far more than one
    // byte, so it is collateral for another chip (ADR 0002), decided before the signature.
    let mut c = case("snp-n1-milan");
    c.collateral.vcek = case("snp-n2-milan").collateral.vcek;
    c.at = time::macros::datetime!(2023-04-04 19:23 UTC);
    let r = run(&c).unwrap_err();
    assert_eq!(r.error.class(), ErrorClass::WrongCollateral);
    let claims = r.unverified.unwrap();
    assert_eq!(claims.report_data.unwrap()[..5], [1, 2, 3, 4, 5]);
}

// ---- step 6 (bind), on modified reports ----

fn leaf_of(c: &Case) -> Vec<u8> {
    let file = c
        .collateral
        .vcek
        .as_ref()
        .or(c.collateral.vlek.as_ref())
        .unwrap();
    x509::der_or_pem(file).unwrap()
}

fn bind_class(evidence: &[u8], leaf_der: &[u8]) -> Result<Vec<(String, Json)>, ErrorClass> {
    let r = Report::parse(evidence).unwrap();
    let leaf = Certificate::parse(leaf_der).unwrap();
    let (kind, product) = leaf_identity(&leaf).unwrap();
    bind(&r, &leaf, kind, product).map_err(|e| e.class())
}

#[test]
fn bind_accepts_the_real_pairs() {
    for name in [
        "snp-n1-milan",
        "snp-n2-milan",
        "snp-n7-milan",
        "snp-n8-vlek-aws",
        "snp-n9-azure-milan",
    ] {
        let c = case(name);
        bind_class(&c.evidence, &leaf_of(&c)).unwrap();
    }
}

#[test]
fn wrong_chip_id_is_wrong_collateral() {
    let c = case("snp-n1-milan");
    let mut e = c.evidence.clone();
    e[0x1a0 + 63] ^= 1;
    assert_eq!(
        bind_class(&e, &leaf_of(&c)),
        Err(ErrorClass::WrongCollateral)
    );
}

#[test]
fn masked_chip_id_is_reported_not_rejected() {
    let c = case("snp-n1-milan");
    let mut e = c.evidence.clone();
    e[0x1a0..0x1e0].fill(0);
    let extra = bind_class(&e, &leaf_of(&c)).unwrap();
    assert!(extra.contains(&("chip_id_masked".to_string(), serde_json::json!(true))));
}

#[test]
fn wrong_reported_tcb_is_wrong_collateral() {
    let c = case("snp-n2-milan");
    for offset in [0x180, 0x181, 0x186, 0x187] {
        let mut e = c.evidence.clone();
        e[offset] = e[offset].wrapping_add(1);
        assert_eq!(
            bind_class(&e, &leaf_of(&c)),
            Err(ErrorClass::WrongCollateral),
            "offset {offset:#x}"
        );
    }
    // The reserved bytes of a Milan TCB_VERSION are not part of the comparison.
    let mut e = c.evidence.clone();
    e[0x183] = 9;
    bind_class(&e, &leaf_of(&c)).unwrap();
}

#[test]
fn wrong_key_kind_is_wrong_collateral() {
    let c = case("snp-n1-milan");
    let mut e = c.evidence.clone();
    e[0x48] = 1 << 2; // SIGNING_KEY = VLEK
    assert_eq!(
        bind_class(&e, &leaf_of(&c)),
        Err(ErrorClass::WrongCollateral)
    );
    let c = case("snp-n8-vlek-aws");
    let mut e = c.evidence.clone();
    e[0x48] = 0; // SIGNING_KEY = VCEK
    assert_eq!(
        bind_class(&e, &leaf_of(&c)),
        Err(ErrorClass::WrongCollateral)
    );
}

#[test]
fn cpuid_of_another_product_is_wrong_collateral() {
    let c = case("snp-n8-vlek-aws");
    let mut e = c.evidence.clone();
    e[0x189] = 0x11; // Genoa
    assert_eq!(
        bind_class(&e, &leaf_of(&c)),
        Err(ErrorClass::WrongCollateral)
    );
    e[0x188] = 0x1a; // Turin
    e[0x189] = 0x02;
    assert_eq!(
        bind_class(&e, &leaf_of(&c)),
        Err(ErrorClass::WrongCollateral)
    );
}

#[test]
fn product_from_cpuid() {
    assert_eq!(Product::from_cpuid(0x19, 0x01), Some(Product::Milan));
    assert_eq!(Product::from_cpuid(0x19, 0x11), Some(Product::Genoa));
    assert_eq!(Product::from_cpuid(0x19, 0xa0), Some(Product::Genoa));
    assert_eq!(Product::from_cpuid(0x1a, 0x02), Some(Product::Turin));
    assert_eq!(Product::from_cpuid(0x17, 0x31), None);
    assert_eq!(Product::from_name("Milan-B0"), Some(Product::Milan));
    assert_eq!(Product::from_name("Venice"), None);
}

// ---- Turin: a synthetic VCEK (no signature needed to reach bind) ----

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let n = content.len();
    let mut v = vec![tag];
    if n < 0x80 {
        v.push(n as u8);
    } else if n < 0x100 {
        v.extend([0x81, n as u8]);
    } else {
        v.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(content);
    v
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn name(cn: &str) -> Vec<u8> {
    seq(&[tlv(
        0x31,
        &seq(&[tlv(0x06, &[0x55, 4, 3]), tlv(0x0c, cn.as_bytes())]),
    )])
}

fn int(v: u8) -> Vec<u8> {
    if v < 0x80 {
        tlv(0x02, &[v])
    } else {
        tlv(0x02, &[0, v])
    }
}

fn ext(oid: &[u8], value: Vec<u8>) -> Vec<u8> {
    seq(&[tlv(0x06, oid), tlv(0x04, &value)])
}

/// A VCEK-shaped certificate with a negative serial number, issued by `issuer`.
fn synthetic_vcek(issuer: &str, exts: Vec<Vec<u8>>) -> Vec<u8> {
    let alg = seq(&[tlv(0x06, OID_RSASSA_PSS)]);
    let mut point = vec![0u8, 4];
    point.extend([1u8; 96]);
    let spki = seq(&[
        seq(&[tlv(0x06, OID_EC_PUBLIC_KEY), tlv(0x06, OID_SECP384R1)]),
        tlv(0x03, &point),
    ]);
    let validity = seq(&[tlv(0x17, b"240101000000Z"), tlv(0x18, b"20310101000000Z")]);
    let tbs = seq(&[
        tlv(0xa0, &int(2)),
        tlv(0x02, &[0x80]),
        alg.clone(),
        name(issuer),
        validity,
        name("SEV-VCEK"),
        spki,
        tlv(0xa3, &seq(&exts)),
    ]);
    seq(&[tbs, alg, tlv(0x03, &[0, 1, 2, 3])])
}

const TURIN_CHIP: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];

fn turin_exts(fmc: Option<u8>, hwid: &[u8]) -> Vec<Vec<u8>> {
    let mut e = vec![
        ext(&OID_PRODUCT_NAME, tlv(0x16, b"Turin-C1")),
        ext(&OID_BL_SPL, int(2)),
        ext(&OID_TEE_SPL, int(3)),
        ext(&OID_SNP_SPL, int(4)),
        ext(&OID_UCODE_SPL, int(0xd5)),
        ext(&OID_HWID, hwid.to_vec()),
    ];
    if let Some(f) = fmc {
        e.push(ext(&OID_FMC_SPL, int(f)));
    }
    e
}

/// A v5 Turin report (from a real v3 report, fields rewritten): CPUID 1Ah/02h, VCEK-signed,
/// 8-byte chip ID, Turin TCB layout FMC=1 BL=2 TEE=3 SNP=4 UCODE=0xd5.
fn turin_report() -> Vec<u8> {
    let mut e = case("snp-n8-vlek-aws").evidence;
    e[0..4].copy_from_slice(&5u32.to_le_bytes());
    e[0x48] = 0;
    e[0x188] = 0x1a;
    e[0x189] = 0x02;
    e[0x18a] = 0x00;
    e[0x180..0x188].copy_from_slice(&[1, 2, 3, 4, 0, 0, 0, 0xd5]);
    e[0x1a0..0x1e0].fill(0);
    e[0x1a0..0x1a8].copy_from_slice(&TURIN_CHIP);
    e
}

#[test]
fn synthetic_certificate_with_negative_serial_parses() {
    let der = synthetic_vcek("SEV-Turin", turin_exts(Some(1), &TURIN_CHIP));
    let cert = Certificate::parse(&der).unwrap();
    assert_eq!(
        leaf_identity(&cert).unwrap(),
        (KeyKind::Vcek, Product::Turin)
    );
}

#[test]
fn turin_binding_uses_fmc_and_the_8_byte_hwid() {
    let report = turin_report();
    let good = synthetic_vcek("SEV-Turin", turin_exts(Some(1), &TURIN_CHIP));
    bind_class(&report, &good).unwrap();
    // hwID wrapped in an OCTET STRING is accepted as well.
    bind_class(
        &report,
        &synthetic_vcek("SEV-Turin", turin_exts(Some(1), &tlv(0x04, &TURIN_CHIP))),
    )
    .unwrap();

    let wrong_fmc = synthetic_vcek("SEV-Turin", turin_exts(Some(2), &TURIN_CHIP));
    assert_eq!(
        bind_class(&report, &wrong_fmc),
        Err(ErrorClass::WrongCollateral)
    );
    let no_fmc = synthetic_vcek("SEV-Turin", turin_exts(None, &TURIN_CHIP));
    assert_eq!(bind_class(&report, &no_fmc), Err(ErrorClass::BadChain));
    let mut other_chip = TURIN_CHIP;
    other_chip[7] ^= 1;
    let wrong_hwid = synthetic_vcek("SEV-Turin", turin_exts(Some(1), &other_chip));
    assert_eq!(
        bind_class(&report, &wrong_hwid),
        Err(ErrorClass::WrongCollateral)
    );
    // A 64-byte hwID is not a Turin hwID.
    let mut long = [0u8; 64];
    long[..8].copy_from_slice(&TURIN_CHIP);
    let long_hwid = synthetic_vcek("SEV-Turin", turin_exts(Some(1), &long));
    assert_eq!(
        bind_class(&report, &long_hwid),
        Err(ErrorClass::WrongCollateral)
    );

    let claims = claims(&Report::parse(&report).unwrap(), Some(Product::Turin));
    assert_eq!(
        claims.properties["reported_tcb"],
        serde_json::json!({"fmc": 1, "bl": 2, "tee": 3, "snp": 4, "ucode": 0xd5})
    );
    assert_eq!(claims.properties["launch_mit_vector"], "0x0000000000000000");
}

#[test]
fn turin_report_against_a_genoa_vcek_is_wrong_collateral() {
    let report = turin_report();
    let mut exts = turin_exts(None, &TURIN_CHIP);
    exts[0] = ext(&OID_PRODUCT_NAME, tlv(0x16, b"Genoa-B1"));
    let genoa = synthetic_vcek("SEV-Genoa", exts);
    assert_eq!(
        bind_class(&report, &genoa),
        Err(ErrorClass::WrongCollateral)
    );
}

#[test]
fn leaf_identity_rejects_foreign_issuers_and_mismatched_product_names() {
    let der = synthetic_vcek("Some CA", turin_exts(Some(1), &TURIN_CHIP));
    let cert = Certificate::parse(&der).unwrap();
    assert_eq!(
        leaf_identity(&cert).unwrap_err().class(),
        ErrorClass::BadChain
    );
    let der = synthetic_vcek("SEV-Milan", turin_exts(Some(1), &TURIN_CHIP));
    let cert = Certificate::parse(&der).unwrap();
    assert_eq!(
        leaf_identity(&cert).unwrap_err().class(),
        ErrorClass::BadChain
    );
    let mut exts = turin_exts(Some(1), &TURIN_CHIP);
    exts[0] = ext(&OID_PRODUCT_NAME, tlv(0x16, b"Turin"));
    let der = synthetic_vcek("SEV-VLEK-Turin", exts);
    let cert = Certificate::parse(&der).unwrap();
    assert_eq!(
        leaf_identity(&cert).unwrap(),
        (KeyKind::Vlek, Product::Turin)
    );
}

#[test]
fn synthetic_turin_vcek_fails_the_pinned_turin_chain() {
    let mut c = case("snp-n1-milan");
    c.evidence = turin_report();
    c.collateral.vcek = Some(synthetic_vcek(
        "SEV-Turin",
        turin_exts(Some(1), &TURIN_CHIP),
    ));
    c.collateral.cert_chain = None;
    c.at = time::macros::datetime!(2025-01-01 0:00 UTC);
    assert_eq!(class(&c), ErrorClass::BadChain);
}

/// A genuine VCEK of another chip (its chain verifies) is collateral for the wrong chip:
/// `wrong_collateral`, decided before the report signature (which fails too).
#[test]
fn genuine_vcek_of_another_chip_is_wrong_collateral() {
    let vceks = [
        "snp-n1-milan",
        "snp-n2-milan",
        "snp-n7-milan",
        "snp-n9-azure-milan",
    ];
    let mut compared = 0;
    for report in vceks {
        for other in vceks {
            if report == other {
                continue;
            }
            // At the other case's time, when its VCEK is valid (reports carry no time).
            let mut c = case(report);
            let o = case(other);
            c.collateral = o.collateral;
            c.at = o.at;
            let r = run(&c).map(|_| ()).unwrap_err();
            assert_eq!(
                r.error.class(),
                ErrorClass::WrongCollateral,
                "{report} with the VCEK of {other}: {}",
                r.error
            );
            assert!(r.error.message().contains("another chip"), "{}", r.error);
            compared += 1;
        }
    }
    assert_eq!(compared, 12);
}

/// One corrupted byte of CHIP_ID or REPORTED_TCB with the right VCEK stays bad_signature
/// (the byte-flip property); two differing bytes are a certificate for another chip/TCB.
#[test]
fn binding_differences_before_the_signature() {
    let c = case("snp-n2-milan");
    let with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut e = c.evidence.clone();
        edit(&mut e);
        verify(&e, &c.collateral, &VerifyOptions::default(), c.at)
            .map(|_| ())
            .unwrap_err()
            .error
            .class()
    };
    for offset in [0x1a0, 0x1a0 + 31, 0x1a0 + 63, 0x180, 0x181, 0x186, 0x187] {
        assert_eq!(
            with(&|e| e[offset] ^= 0xff),
            ErrorClass::BadSignature,
            "offset {offset:#x}"
        );
    }
    assert_eq!(
        with(&|e| {
            e[0x1a0] ^= 1;
            e[0x1a1] ^= 1
        }),
        ErrorClass::WrongCollateral
    );
    assert_eq!(
        with(&|e| {
            e[0x186] ^= 1;
            e[0x187] ^= 1
        }),
        ErrorClass::WrongCollateral
    );
    assert_eq!(
        with(&|e| {
            e[0x1a0] ^= 1;
            e[0x187] ^= 1
        }),
        ErrorClass::WrongCollateral
    );
    // Reserved TCB bytes are not compared: still the signature.
    assert_eq!(
        with(&|e| {
            e[0x182] ^= 1;
            e[0x183] ^= 1
        }),
        ErrorClass::BadSignature
    );
}
