//! Intel SGX/TDX: our `verify` vs calling dcap-qvl directly on the same quote and
//! collateral, for every corpus case with a TCBInfo v3 and all five collateral files that
//! dcap-qvl accepts, single-threaded.
//!
//! Baselines (both dcap-qvl 0.7.1, ring backend, Intel root, debug and service TDs allowed
//! as in our configuration, collateral already in `QuoteCollateralV3` form):
//! - `dcap-qvl verify`: the one-shot `QuoteVerifier::verify` (status and advisories only);
//! - `dcap-qvl claims`: `QuoteVerifier::verify_with_policy` with an accept-all policy,
//!   which also yields the validity window, as our result does (this is what we call).
//!
//! Our figure includes reading the collateral files' shapes (signed-text extraction,
//! hex signatures, PEM), quote framing, measurements and the result type.
//!
//! Run: `cargo bench -p pith-attest --bench intel`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, black_box};
use pith_attest::{Collateral, Evidence, Platform, VerifyOptions, verify};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

struct AcceptAll;
impl dcap_qvl::Policy for AcceptAll {
    fn validate(&self, _: &dcap_qvl::QuoteClaims) -> anyhow::Result<()> {
        Ok(())
    }
}

fn signed(file: &[u8], key: &str) -> (String, Vec<u8>) {
    let v: std::collections::HashMap<String, Box<RawValue>> = serde_json::from_slice(file).unwrap();
    let sig: String = serde_json::from_str(v["signature"].get()).unwrap();
    (v[key].get().to_owned(), hex::decode(sig).unwrap())
}

fn dcap_collateral(c: &Collateral) -> dcap_qvl::QuoteCollateralV3 {
    let (tcb, tcb_sig) = signed(c.tcb_info.as_ref().unwrap(), "tcbInfo");
    let (qe, qe_sig) = signed(c.qe_identity.as_ref().unwrap(), "enclaveIdentity");
    let chain = String::from_utf8(c.tcb_signing_chain.clone().unwrap()).unwrap();
    dcap_qvl::QuoteCollateralV3 {
        pck_crl_issuer_chain: String::new(),
        root_ca_crl: c.root_ca_crl.clone().unwrap(),
        pck_crl: c.pck_crl.clone().unwrap(),
        tcb_info_issuer_chain: chain.clone(),
        tcb_info: tcb,
        tcb_info_signature: tcb_sig,
        qe_identity_issuer_chain: chain,
        qe_identity: qe,
        qe_identity_signature: qe_sig,
        pck_certificate_chain: None,
    }
}

/// Median seconds per call over `rounds` rounds of `n` calls, alternating the two
/// functions round by round so that machine noise hits both alike.
fn interleaved(mut a: impl FnMut(), mut b: impl FnMut(), n: u32, rounds: usize) -> (f64, f64) {
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..n {
            a();
        }
        ta.push(t.elapsed().as_secs_f64() / f64::from(n));
        let t = Instant::now();
        for _ in 0..n {
            b();
        }
        tb.push(t.elapsed().as_secs_f64() / f64::from(n));
    }
    ta.sort_by(f64::total_cmp);
    tb.sort_by(f64::total_cmp);
    (ta[rounds / 2], tb[rounds / 2])
}

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/attestation");
    let mut names: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sgx-") || n.starts_with("tdx-"))
        .collect();
    names.sort();
    let root = std::fs::read(corpus.join("roots/intel/Intel_SGX_Root_CA.der")).unwrap();
    let dcap = dcap_qvl::verify::QuoteVerifier::new(root)
        .allow_debug(true)
        .allow_service_td(true);
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let mut rows = Vec::new();
    for name in names {
        let dir = corpus.join(&name);
        let expect: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("expect.json")).unwrap()).unwrap();
        if expect["verdict"] != "valid" {
            continue;
        }
        let collateral = Collateral::from_dir(&dir.join("collateral")).unwrap();
        let complete = collateral.tcb_info.is_some()
            && collateral.qe_identity.is_some()
            && collateral.pck_crl.is_some()
            && collateral.root_ca_crl.is_some()
            && collateral.tcb_signing_chain.is_some();
        if !complete {
            continue;
        }
        let qcol = dcap_collateral(&collateral);
        if !qcol.tcb_info.contains("\"version\":3") {
            continue;
        }
        let platform: Platform = expect["platform"].as_str().unwrap().parse().unwrap();
        let bytes = std::fs::read(dir.join("evidence.bin")).unwrap();
        let at = OffsetDateTime::parse(expect["at"].as_str().unwrap(), &Rfc3339).unwrap();
        let secs = at.unix_timestamp() as u64;
        if dcap.verify(&bytes, &qcol, secs).is_err() {
            println!("{name}: dcap-qvl rejects it (TD attribute policy); not comparable, skipped");
            continue;
        }
        let evidence = Evidence::new(platform, bytes.clone());
        let options = VerifyOptions::default();
        verify(&evidence, &collateral, &options, at).unwrap();

        let ours = || {
            drop(black_box(
                verify(black_box(&evidence), &collateral, &options, at).unwrap(),
            ))
        };
        let one_shot = || {
            drop(black_box(
                dcap.verify(black_box(&bytes), &qcol, secs).unwrap(),
            ))
        };
        let claims = || {
            drop(black_box(
                dcap.verify_with_policy(black_box(&bytes), &qcol, secs, &AcceptAll)
                    .unwrap(),
            ))
        };
        c.bench_function(&format!("{name}/ours"), |b| b.iter(ours));
        c.bench_function(&format!("{name}/dcap-qvl-verify"), |b| b.iter(one_shot));
        c.bench_function(&format!("{name}/dcap-qvl-claims"), |b| b.iter(claims));
        let (o1, d1) = interleaved(ours, one_shot, 200, 15);
        let (o2, d2) = interleaved(ours, claims, 200, 15);
        rows.push((name, o1, d1, o2, d2));
    }
    c.final_summary();
    println!();
    println!(
        "| case | ours /s | dcap-qvl verify /s | ratio ours/verify | dcap-qvl claims /s | ratio ours/claims |"
    );
    println!("|---|---|---|---|---|---|");
    let (mut r1, mut r2) = (Vec::new(), Vec::new());
    for (name, o1, d1, o2, d2) in &rows {
        println!(
            "| {name} | {:.0} | {:.0} | {:.3} | {:.0} | {:.3} |",
            1.0 / o1,
            1.0 / d1,
            o1 / d1,
            1.0 / d2,
            o2 / d2
        );
        r1.push(o1 / d1);
        r2.push(o2 / d2);
    }
    r1.sort_by(f64::total_cmp);
    r2.sort_by(f64::total_cmp);
    if !r1.is_empty() {
        println!(
            "median overhead vs dcap-qvl verify: {:+.1}%, vs dcap-qvl claims: {:+.1}% ({} cases)",
            (r1[r1.len() / 2] - 1.0) * 100.0,
            (r2[r2.len() / 2] - 1.0) * 100.0,
            r1.len()
        );
    }
}
