//! Verifications per second of AMD SEV-SNP reports on one core, next to the irreducible
//! crypto baseline on the same data: the ECDSA P-384 report signature (VCEK key) plus the
//! RSA-4096 PSS signature of the VCEK by the ASK.
//!
//! Run: `cargo bench -p pith-attest --bench snp`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, black_box};
use p384::ecdsa::signature::Verifier as _;
use pith_attest::x509::Cert;
use pith_attest::{Collateral, Evidence, Platform, VerifyOptions, verify};
use rsa::pkcs1::DecodeRsaPublicKey as _;
use sha2::{Digest, Sha384};
use time::format_description::well_known::Rfc3339;

fn per_second(mut f: impl FnMut(), budget: Duration) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/attestation/snp-n2-milan");
    let report = std::fs::read(dir.join("evidence.bin")).unwrap();
    let collateral = Collateral::from_dir(&dir.join("collateral")).unwrap();
    let expect: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expect.json")).unwrap()).unwrap();
    let at = time::OffsetDateTime::parse(expect["at"].as_str().unwrap(), &Rfc3339).unwrap();
    let evidence = Evidence::new(Platform::SevSnp, report.clone());
    let options = VerifyOptions::default();
    verify(&evidence, &collateral, &options, at).unwrap();

    // Baseline on the same bytes: P-384 over 0x000..0x2A0 and RSA-PSS of the VCEK by the ASK.
    let vcek = Cert::from_pem_or_der(collateral.vcek.as_ref().unwrap()).unwrap();
    let ask = pith_attest::x509::parse_certs(collateral.cert_chain.as_ref().unwrap())
        .unwrap()
        .remove(0);
    let ecdsa_key = p384::ecdsa::VerifyingKey::from_sec1_bytes(vcek.public_key_bytes()).unwrap();
    let be = |le: &[u8]| {
        let mut v = le[..48].to_vec();
        v.reverse();
        let mut fb = p384::FieldBytes::default();
        fb.copy_from_slice(&v);
        fb
    };
    let sig =
        p384::ecdsa::Signature::from_scalars(be(&report[0x2a0..0x2e8]), be(&report[0x2e8..0x330]))
            .unwrap();
    let rsa_key = rsa::RsaPublicKey::from_pkcs1_der(ask.public_key_bytes()).unwrap();
    let baseline = || {
        ecdsa_key.verify(black_box(&report[..0x2a0]), &sig).unwrap();
        let digest = Sha384::digest(black_box(vcek.tbs_der()));
        rsa_key
            .verify(
                rsa::pss::Pss::new_with_salt::<Sha384>(48),
                &digest,
                vcek.signature(),
            )
            .unwrap();
    };
    baseline();

    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(5));
    c.bench_function("sev-snp/verify", |b| {
        b.iter(|| verify(black_box(&evidence), &collateral, &options, at).unwrap())
    });
    c.bench_function("baseline/p384_verify+rsa4096_pss_verify", |b| {
        b.iter(baseline)
    });
    c.final_summary();

    let budget = Duration::from_secs(3);
    let ours = per_second(
        || drop(verify(black_box(&evidence), &collateral, &options, at).unwrap()),
        budget,
    );
    let base = per_second(baseline, budget);
    println!("sev-snp verify: {ours:.0}/s on one core");
    println!("baseline (P-384 + RSA-4096 PSS verify): {base:.0}/s");
    println!("time ratio ours/baseline: {:.2}", base / ours);
    let p384_only = per_second(
        || ecdsa_key.verify(black_box(&report[..0x2a0]), &sig).unwrap(),
        budget,
    );
    println!("of which P-384 verify alone: {p384_only:.0}/s");
}
