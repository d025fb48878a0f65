//! One test per case of the attestation corpus (`testdata/attestation`), generated from the
//! directory so added cases are picked up. For each case:
//! - `verdict::<case>`: verdict, failure class, TCB status, advisory IDs, measurements and
//!   report_data as in `expect.json`, at its `at`; lenient cases also fail strictly with
//!   their `strict_failure`;
//! - `window::<case>`: the reported validity window equals `expect.json`'s (valid cases);
//! - `flips::<case>`: flipping single bytes of the signed region (at least 500 offsets,
//!   spread over it) gives `bad_signature` or `malformed`, never a panic;
//! - `framing::<case>`: truncations are `malformed`; non-zero trailing bytes are `malformed`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![allow(clippy::arithmetic_side_effects)]

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use pith_attest::{Collateral, ErrorClass, Evidence, Platform, VerifyOptions, verify};
use serde_json::Value as Json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/attestation")
}

struct Case {
    name: String,
    dir: PathBuf,
    expect: Json,
    platform: Platform,
    evidence: Vec<u8>,
    at: OffsetDateTime,
}

fn load(dir: &Path) -> Case {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let expect: Json =
        serde_json::from_slice(&std::fs::read(dir.join("expect.json")).unwrap()).unwrap();
    let platform: Platform = expect["platform"].as_str().unwrap().parse().unwrap();
    let evidence = std::fs::read(dir.join("evidence.bin"))
        .or_else(|_| std::fs::read(dir.join("evidence.json")))
        .unwrap();
    let at = OffsetDateTime::parse(expect["at"].as_str().unwrap(), &Rfc3339).unwrap();
    Case {
        name,
        dir: dir.to_path_buf(),
        expect,
        platform,
        evidence,
        at,
    }
}

fn lenient(case: &Case) -> bool {
    case.expect
        .get("needs_lenient_collateral")
        .and_then(Json::as_bool)
        .unwrap_or(false)
}

fn options(lenient: bool) -> VerifyOptions {
    let mut o = VerifyOptions::default();
    o.lenient_collateral = lenient;
    o
}

fn run(
    case: &Case,
    bytes: Vec<u8>,
    lenient: bool,
) -> Result<pith_attest::Verified, pith_attest::Rejected> {
    let collateral = Collateral::from_dir(&case.dir.join("collateral")).unwrap();
    verify(
        &Evidence::new(case.platform, bytes),
        &collateral,
        &options(lenient),
        case.at,
    )
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(msg().into()) }
}

fn check_verdict(case: &Case) -> Result<(), Failed> {
    let e = &case.expect;
    let result = run(case, case.evidence.clone(), lenient(case));
    match e["verdict"].as_str().unwrap() {
        "valid" => {
            let v = result.map_err(|r| format!("expected valid, got {r}"))?;
            ensure(v.platform() == case.platform, || {
                format!("platform {}", v.platform())
            })?;
            let status = v.tcb_status().map(|s| s.as_str().to_string());
            ensure(status.as_deref() == e["tcb_status"].as_str(), || {
                format!("tcb_status {status:?}, expected {}", e["tcb_status"])
            })?;
            let adv = v.advisory_ids().map(|a| a.to_vec());
            let want: Option<Vec<String>> =
                serde_json::from_value(e["advisory_ids"].clone()).unwrap();
            ensure(adv == want, || {
                format!("advisory_ids {adv:?}, expected {want:?}")
            })?;
            if let Some(ms) = e.get("measurements").and_then(Json::as_object) {
                let got = serde_json::to_value(v.measurements()).unwrap();
                for (k, want) in ms {
                    ensure(got.get(k) == Some(want), || {
                        format!("measurement {k}: {:?}, expected {want}", got.get(k))
                    })?;
                }
            }
            if let Some(rd) = e.get("report_data").and_then(Json::as_str) {
                let got = v.report_data().map(hex::encode);
                ensure(got.as_deref() == Some(rd), || {
                    format!("report_data {got:?}, expected {rd}")
                })?;
            }
            if lenient(case) {
                let strict = run(case, case.evidence.clone(), false);
                let want = e["strict_failure"].as_str().unwrap();
                match strict {
                    Ok(_) => return Err(format!("strict mode accepted; expected {want}").into()),
                    Err(r) => ensure(r.error.class().as_str() == want, || {
                        format!("strict failure {}, expected {want}", r.error)
                    })?,
                }
            }
            Ok(())
        }
        _ => {
            let want = e["failure"].as_str().unwrap();
            match result {
                Ok(v) => {
                    Err(format!("expected invalid ({want}), got valid {:?}", v.tcb_status()).into())
                }
                Err(r) => ensure(r.error.class().as_str() == want, || {
                    format!(
                        "failure {} ({}), expected {want}",
                        r.error.class(),
                        r.error.message()
                    )
                }),
            }
        }
    }
}

fn check_window(case: &Case) -> Result<(), Failed> {
    let v =
        run(case, case.evidence.clone(), lenient(case)).map_err(|r| format!("not valid: {r}"))?;
    let w = case.expect["window"].as_array().unwrap();
    let start = OffsetDateTime::parse(w[0].as_str().unwrap(), &Rfc3339).unwrap();
    let end = OffsetDateTime::parse(w[1].as_str().unwrap(), &Rfc3339).unwrap();
    let got = v.window();
    ensure(got.start == start && got.end == end, || {
        format!("window {}..{}, expected {start}..{end}", got.start, got.end)
    })
}

fn check_flips(case: &Case) -> Result<(), Failed> {
    let region = pith_attest::signed_region(&Evidence::new(case.platform, case.evidence.clone()))
        .ok_or("no signed region reported for a valid case")?;
    ensure(
        !region.is_empty() && region.end <= case.evidence.len(),
        || format!("bad region {region:?}"),
    )?;
    let len = region.len();
    let count = len.min(600);
    let mut failures = Vec::new();
    for i in 0..count {
        let offset = region.start + i * len / count;
        let mut bytes = case.evidence.clone();
        bytes[offset] ^= 0xff;
        match run(case, bytes, lenient(case)) {
            Ok(_) => failures.push(format!("offset {offset}: still valid")),
            Err(r)
                if matches!(
                    r.error.class(),
                    ErrorClass::BadSignature | ErrorClass::Malformed
                ) => {}
            Err(r) => failures.push(format!("offset {offset}: {}", r.error)),
        }
    }
    ensure(failures.is_empty(), || {
        format!(
            "{} of {count} flips wrong: {:?}",
            failures.len(),
            &failures[..failures.len().min(10)]
        )
    })
}

fn check_framing(case: &Case) -> Result<(), Failed> {
    let bytes = &case.evidence;
    let mut failures = Vec::new();
    for cut in [
        0,
        1,
        4,
        16,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len().saturating_sub(97),
        bytes.len().saturating_sub(1),
    ] {
        // Removing only trailing zero padding is not a truncation of the evidence.
        if cut >= bytes.len() || bytes[cut..].iter().all(|&b| b == 0) {
            continue;
        }
        match run(case, bytes[..cut].to_vec(), lenient(case)) {
            Ok(_) => failures.push(format!("truncated to {cut}: valid")),
            Err(r) if r.error.class() == ErrorClass::Malformed => {}
            Err(r) => failures.push(format!("truncated to {cut}: {}", r.error)),
        }
    }
    let mut extra = bytes.clone();
    extra.extend_from_slice(&[0, 0, 0x5a]);
    match run(case, extra, lenient(case)) {
        Ok(_) => failures.push("non-zero trailing bytes: valid".into()),
        Err(r) if r.error.class() == ErrorClass::Malformed => {}
        Err(r) => failures.push(format!("non-zero trailing bytes: {}", r.error)),
    }
    ensure(failures.is_empty(), || failures.join("; "))
}

fn main() {
    let args = Arguments::from_args();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expect.json").is_file())
        .collect();
    dirs.sort();
    let mut trials = Vec::new();
    for dir in dirs {
        let case = std::sync::Arc::new(load(&dir));
        let valid = case.expect["verdict"] == "valid";
        let binary = dir.join("evidence.bin").is_file();
        let kind = case.platform.as_str().to_string();
        let c = case.clone();
        trials.push(
            Trial::test(format!("verdict::{}", case.name), move || check_verdict(&c))
                .with_kind(kind.clone()),
        );
        if valid && case.expect.get("window").is_some() {
            let c = case.clone();
            trials.push(
                Trial::test(format!("window::{}", case.name), move || check_window(&c))
                    .with_kind(kind.clone()),
            );
        }
        if valid && binary {
            let c = case.clone();
            trials.push(
                Trial::test(format!("flips::{}", case.name), move || check_flips(&c))
                    .with_kind(kind.clone()),
            );
            let c = case.clone();
            trials.push(
                Trial::test(format!("framing::{}", case.name), move || check_framing(&c))
                    .with_kind(kind),
            );
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
