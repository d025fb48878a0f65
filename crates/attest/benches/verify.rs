//! Verifications per second per platform, one core: every valid corpus case of a platform
//! is verified once per iteration (criterion reports elements/s = verifications/s), plus
//! simulated evidence made with a fresh development CA. Named baselines in the same run, to
//! read results as ratios on a loaded machine: one ECDSA P-256 and one P-384 signature
//! verification (`p256`/`p384` crates, 1 KiB message), the floor of every platform's work
//! (Intel: 3-4 P-256 verifications plus collateral; SNP: P-384 report + RSA-PSS chain;
//! Nitro: P-384 COSE + 4-5 certificates; NVIDIA: P-384 SPDM + chain). Also: detection alone,
//! and verification + appraisal against a policy.
//!
//! `verify/<platform>` runs with the certificate-link cache warm (x509::link_cache),
//! `verify_cold/<platform>` empties it before each verification.
//!
//! Run: `taskset -c 1 cargo bench -p pith-attest --bench verify`
//! (results in bench/RESULTS.md, section "attest: verifications per second").

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pith_attest::simulated::{DevCa, SimulatedReport};
use pith_attest::{
    Collateral, Evidence, Platform, Policy, VerifyOptions, appraise, detect, verify,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

struct Case {
    name: String,
    evidence: Evidence,
    collateral: Collateral,
    options: VerifyOptions,
    at: OffsetDateTime,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/attestation")
}

/// Valid corpus cases of `platform` that verify with this build (cases of platforms whose
/// verifier is not built are skipped, with a note on stderr).
fn valid_cases(platform: Platform) -> Vec<Case> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expect.json").is_file())
        .collect();
    dirs.sort();
    let mut cases = Vec::new();
    for dir in dirs {
        let expect: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("expect.json")).unwrap()).unwrap();
        if expect["platform"] != platform.as_str() || expect["verdict"] != "valid" {
            continue;
        }
        let bytes = std::fs::read(dir.join("evidence.bin"))
            .or_else(|_| std::fs::read(dir.join("evidence.json")))
            .unwrap();
        let mut options = VerifyOptions::default();
        options.lenient_collateral = expect
            .get("needs_lenient_collateral")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let case = Case {
            name: dir.file_name().unwrap().to_string_lossy().into_owned(),
            evidence: Evidence::new(platform, bytes),
            collateral: Collateral::from_dir(&dir.join("collateral")).unwrap(),
            options,
            at: OffsetDateTime::parse(expect["at"].as_str().unwrap(), &Rfc3339).unwrap(),
        };
        match verify(&case.evidence, &case.collateral, &case.options, case.at) {
            Ok(_) => cases.push(case),
            Err(r) => eprintln!("bench: skipping {} ({})", case.name, r.error),
        }
    }
    cases
}

/// Simulated evidence from a fresh development CA (as `pith up` makes it).
fn simulated_cases() -> Vec<Case> {
    let now = SystemTime::now();
    let ca = DevCa::generate(now).unwrap();
    let ak = ca.issue_attestation_key(now).unwrap();
    let report = SimulatedReport::new([7u8; 64], [9u8; 48], b"bench config");
    let bytes = report.sign(&ak, now).unwrap();
    let mut options = VerifyOptions::default();
    options.dev_ca = Some(ca.cert_der().to_vec());
    let at = OffsetDateTime::from(now) + time::Duration::seconds(1);
    vec![Case {
        name: "simulated".into(),
        evidence: Evidence::new(Platform::Simulated, bytes),
        collateral: Collateral::default(),
        options,
        at,
    }]
}

fn baselines(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    use ecdsa::signature::{Signer as _, Verifier as _};
    let msg = vec![0x5au8; 1024];
    let k256 = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let s256: p256::ecdsa::Signature = k256.sign(&msg);
    let v256 = *k256.verifying_key();
    let k384 = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let s384: p384::ecdsa::Signature = k384.sign(&msg);
    let v384 = *k384.verifying_key();
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline/p256_verify", |b| {
        b.iter(|| v256.verify(&msg, &s256).unwrap())
    });
    group.bench_function("baseline/p384_verify", |b| {
        b.iter(|| v384.verify(&msg, &s384).unwrap())
    });
    // The same P-384 verification with `ring` (already a dependency through dcap-qvl), for
    // comparison with the pure-Rust backend.
    let point = v384.to_encoded_point(false);
    let ring_key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P384_SHA384_FIXED,
        point.as_bytes().to_vec(),
    );
    let fixed = s384.to_bytes();
    group.bench_function("baseline/p384_verify_ring", |b| {
        b.iter(|| ring_key.verify(&msg, &fixed).unwrap())
    });
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("attest");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    baselines(&mut group);
    for platform in Platform::ALL {
        let cases = if platform == Platform::Simulated {
            simulated_cases()
        } else {
            valid_cases(platform)
        };
        if cases.is_empty() {
            eprintln!("bench: no verifiable {platform} cases in this build");
            continue;
        }
        let n = u64::try_from(cases.len()).unwrap();
        group.throughput(Throughput::Elements(n));
        // Warm: the certificate-link cache holds this platform's chains (the steady state of
        // a node verifying many reports from the same chip family / signing service).
        group.bench_with_input(
            BenchmarkId::new("verify", platform.as_str()),
            &cases,
            |b, cases| {
                b.iter(|| {
                    for case in cases {
                        let v = verify(&case.evidence, &case.collateral, &case.options, case.at);
                        assert!(v.is_ok(), "{} stopped verifying", case.name);
                    }
                })
            },
        );
        // Cold: the cache is emptied before every verification (every certificate signature
        // checked, as on the first report from a chain).
        group.bench_with_input(
            BenchmarkId::new("verify_cold", platform.as_str()),
            &cases,
            |b, cases| {
                b.iter(|| {
                    for case in cases {
                        pith_attest::x509::clear_cache();
                        let v = verify(&case.evidence, &case.collateral, &case.options, case.at);
                        assert!(v.is_ok(), "{} stopped verifying", case.name);
                    }
                })
            },
        );
        // Baselines in the same run: detection alone, and verification + appraisal.
        group.bench_with_input(
            BenchmarkId::new("detect", platform.as_str()),
            &cases,
            |b, cases| {
                b.iter(|| {
                    for case in cases {
                        std::hint::black_box(detect::platform(case.evidence.bytes()));
                    }
                })
            },
        );
        let policy = Policy::local_development();
        group.bench_with_input(
            BenchmarkId::new("verify+appraise", platform.as_str()),
            &cases,
            |b, cases| {
                b.iter(|| {
                    for case in cases {
                        let v = verify(&case.evidence, &case.collateral, &case.options, case.at)
                            .unwrap();
                        std::hint::black_box(appraise(&v, &policy, case.at));
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
