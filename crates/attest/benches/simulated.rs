//! Verifications per second of simulated evidence on one core, next to the irreducible
//! crypto baseline (the two P-256 ECDSA verifications every simulated verification does:
//! the evidence signature and the attestation-key certificate).
//!
//! Run: `cargo bench -p pith-attest --bench simulated`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, black_box};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey, signature::Signer, signature::Verifier};
use pith_attest::simulated::{DevCa, SimulatedReport};
use pith_attest::{Collateral, Evidence, Platform, VerifyOptions, verify};

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
    let now = SystemTime::now();
    let ca = DevCa::generate(now).unwrap();
    let ak = ca.issue_attestation_key(now).unwrap();
    let bytes = SimulatedReport::new([1; 64], [2; 48], b"cfg")
        .sign(&ak, now)
        .unwrap();
    let evidence = Evidence::new(Platform::Simulated, bytes.clone());
    let mut options = VerifyOptions::default();
    options.dev_ca = Some(ca.cert_pem().unwrap().into_bytes());
    let collateral = Collateral::default();
    let at = time::OffsetDateTime::now_utc();
    verify(&evidence, &collateral, &options, at).unwrap();

    // Baseline: two P-256 verifications over messages of the same sizes.
    let key = SigningKey::random(&mut rand_core::OsRng);
    let vk: VerifyingKey = *key.verifying_key();
    let m1 = vec![7u8; bytes.len() - 64 + 26];
    let m2 = vec![9u8; ak.cert_der().len() - 80];
    let s1: Signature = key.sign(&m1);
    let s2: Signature = key.sign(&m2);
    let baseline = || {
        vk.verify(black_box(&m1), &s1).unwrap();
        vk.verify(black_box(&m2), &s2).unwrap();
    };

    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(5));
    c.bench_function("simulated/verify", |b| {
        b.iter(|| verify(black_box(&evidence), &collateral, &options, at).unwrap())
    });
    c.bench_function("baseline/p256_verify_x2", |b| b.iter(baseline));
    c.final_summary();

    let budget = Duration::from_secs(3);
    let ours = per_second(
        || drop(verify(black_box(&evidence), &collateral, &options, at).unwrap()),
        budget,
    );
    let base = per_second(baseline, budget);
    println!("simulated verify: {ours:.0}/s on one core");
    println!("baseline 2x P-256 ECDSA verify: {base:.0}/s");
    println!("ratio simulated/baseline time: {:.2}", base / ours);
}
