//! `pith attest verify` end to end: runs the built `pith` binary over every case of the
//! attestation corpus (generated from the directory, so added cases are picked up) and
//! compares its JSON output and exit code with `expect.json`. Plus re-encodings (hex,
//! base64), garbage input, usage errors, policies and the measurement-hash test vectors.
//!
//! Cases of platforms whose verifier is not built yet fail; that is expected while the
//! platform verifiers are being written.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value as Json;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/attestation")
}

struct Case {
    name: String,
    dir: PathBuf,
    evidence: PathBuf,
    expect: Json,
}

impl Case {
    fn load(dir: &Path) -> Case {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let expect: Json =
            serde_json::from_slice(&std::fs::read(dir.join("expect.json")).unwrap()).unwrap();
        let evidence = if dir.join("evidence.bin").is_file() {
            dir.join("evidence.bin")
        } else {
            dir.join("evidence.json")
        };
        Case {
            name,
            dir: dir.to_path_buf(),
            evidence,
            expect,
        }
    }
    fn at(&self) -> &str {
        self.expect["at"].as_str().unwrap()
    }
    fn lenient(&self) -> bool {
        self.expect
            .get("needs_lenient_collateral")
            .and_then(Json::as_bool)
            .unwrap_or(false)
    }
    fn valid(&self) -> bool {
        self.expect["verdict"] == "valid"
    }
}

struct Run {
    code: i32,
    json: Json,
    stderr: String,
}

fn pith(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pith"))
        .args(args)
        .output()
        .expect("run pith");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn verify_json(evidence: &Path, case: &Case, extra: &[&str]) -> Result<Run, Failed> {
    let collateral = case.dir.join("collateral");
    let mut args = vec![
        "attest",
        "verify",
        evidence.to_str().unwrap(),
        "--at",
        case.at(),
        "--json",
    ];
    // Nitro cases without expected PCRs have no collateral directory.
    if collateral.is_dir() {
        args.extend_from_slice(&["--collateral", collateral.to_str().unwrap()]);
    }
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = pith(&args);
    let json: Json = serde_json::from_str(stdout.trim()).map_err(|e| {
        format!("exit {code}: stdout is not one JSON object ({e}): {stdout:?}; stderr: {stderr}")
    })?;
    Ok(Run { code, json, stderr })
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(msg().into()) }
}

/// Compare one run with the case's expectations (verdict, failure, status, advisories,
/// measurements, report_data, window, exit code).
fn check_against_expect(case: &Case, run: &Run) -> Result<(), Failed> {
    let e = &case.expect;
    let j = &run.json;
    let ctx = || format!("exit {}, output {j}, stderr {}", run.code, run.stderr);
    ensure(j["platform"] == e["platform"], || {
        format!("platform: {}", ctx())
    })?;
    ensure(j["verdict"] == e["verdict"], || {
        format!("verdict: {}", ctx())
    })?;
    ensure(j["failure"] == e["failure"], || {
        format!(
            "failure {} expected {}: {}",
            j["failure"],
            e["failure"],
            ctx()
        )
    })?;
    if case.valid() {
        ensure(run.code == 0, || format!("exit code: {}", ctx()))?;
        ensure(j["tcb_status"] == e["tcb_status"], || {
            format!("tcb_status: {}", ctx())
        })?;
        ensure(j["advisory_ids"] == e["advisory_ids"], || {
            format!("advisory_ids: {}", ctx())
        })?;
        if let Some(ms) = e.get("measurements").and_then(Json::as_object) {
            for (k, want) in ms {
                ensure(&j["measurements"][k] == want, || {
                    format!("measurement {k}: {}", ctx())
                })?;
            }
        }
        if let Some(rd) = e.get("report_data").filter(|r| !r.is_null()) {
            ensure(&j["report_data"] == rd, || {
                format!("report_data: {}", ctx())
            })?;
        }
        if let Some(w) = e.get("window") {
            ensure(&j["window"] == w, || {
                format!("window {} expected {w}", j["window"])
            })?;
        }
        ensure(j["error"].is_null(), || {
            format!("error on a valid case: {}", ctx())
        })?;
        ensure(
            j["measurement_hash"]
                .as_str()
                .is_some_and(|h| h.len() == 64),
            || format!("hash: {}", ctx()),
        )?;
    } else {
        ensure(run.code == 1, || format!("exit code: {}", ctx()))?;
        ensure(j["error"]["class"] == e["failure"], || {
            format!("error.class: {}", ctx())
        })?;
        ensure(
            j["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            || format!("error.message: {}", ctx()),
        )?;
        ensure(j["measurements"].is_null(), || {
            format!("unverified claims under measurements: {}", ctx())
        })?;
        ensure(j["tcb_status"].is_null() && j["window"].is_null(), || {
            format!("status/window: {}", ctx())
        })?;
    }
    Ok(())
}

fn check_case(case: &Case) -> Result<(), Failed> {
    let lenient: &[&str] = if case.lenient() {
        &["--lenient-collateral"]
    } else {
        &[]
    };
    let run = verify_json(&case.evidence, case, lenient)?;
    check_against_expect(case, &run)?;
    if case.lenient() {
        let warnings = run.json["warnings"].as_array().map(Vec::len).unwrap_or(0);
        ensure(warnings > 0, || {
            format!("lenient run lists no warnings: {}", run.json)
        })?;
        // Strictly, the same case fails with its strict_failure.
        let strict = verify_json(&case.evidence, case, &[])?;
        let want = &case.expect["strict_failure"];
        ensure(
            strict.code == 1
                && strict.json["verdict"] == "invalid"
                && &strict.json["failure"] == want,
            || format!("strict run: exit {}, {}", strict.code, strict.json),
        )?;
    }
    Ok(())
}

/// The same evidence as hex text and as wrapped base64 text gives the same result.
fn check_reencoded(case: &Case) -> Result<(), Failed> {
    let bytes = std::fs::read(&case.evidence).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hex_path = dir.path().join("evidence.hex");
    let mut hex_text = hex::encode(&bytes);
    hex_text.insert(hex_text.len() / 2, '\n');
    std::fs::write(&hex_path, format!("{hex_text}\n")).unwrap();
    let b64_path = dir.path().join("evidence.b64");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let wrapped: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    std::fs::write(&b64_path, wrapped.join("\n")).unwrap();
    let lenient: &[&str] = if case.lenient() {
        &["--lenient-collateral"]
    } else {
        &[]
    };
    for (path, encoding) in [(&hex_path, "hex"), (&b64_path, "base64")] {
        let run = verify_json(path, case, lenient)?;
        check_against_expect(case, &run)
            .map_err(|e| format!("{encoding}: {}", e.message().unwrap_or_default()))?;
        ensure(run.json["input_encoding"] == encoding, || {
            format!("input_encoding {}", run.json["input_encoding"])
        })?;
    }
    Ok(())
}

/// Explicit `--platform` gives the same result as auto-detection; a wrong one is invalid.
fn check_explicit_platform(case: &Case) -> Result<(), Failed> {
    let platform = case.expect["platform"].as_str().unwrap();
    let lenient: &[&str] = if case.lenient() {
        &["--lenient-collateral"]
    } else {
        &[]
    };
    let mut args = vec!["--platform", platform];
    args.extend_from_slice(lenient);
    check_against_expect(case, &verify_json(&case.evidence, case, &args)?)?;
    let wrong = if platform == "sev-snp" {
        "nitro"
    } else {
        "sev-snp"
    };
    let run = verify_json(&case.evidence, case, &["--platform", wrong])?;
    ensure(
        run.code == 1 && run.json["verdict"] == "invalid" && run.json["platform"] == wrong,
        || format!("wrong --platform {wrong}: exit {}, {}", run.code, run.json),
    )
}

fn garbage() -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        (
            "random.bin",
            (0u32..4096)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect::<Vec<u8>>(),
        ),
        ("text.txt", b"this is not attestation evidence\n".to_vec()),
        ("empty.bin", Vec::new()),
        ("hex.txt", b"deadbeefcafe\n".to_vec()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &content).unwrap();
        let (code, stdout, stderr) = pith(&["attest", "verify", path.to_str().unwrap(), "--json"]);
        ensure(code == 1, || {
            format!("{name}: exit {code}, stdout {stdout}, stderr {stderr}")
        })?;
        let j: Json =
            serde_json::from_str(stdout.trim()).map_err(|e| format!("{name}: {e}: {stdout}"))?;
        ensure(
            j["verdict"] == "invalid" && j["failure"] == "malformed",
            || format!("{name}: {j}"),
        )?;
        ensure(j["error"]["class"] == "malformed", || {
            format!("{name}: {j}")
        })?;
        // Without --json: a one-line human summary, same exit code.
        let (code, stdout, _) = pith(&["attest", "verify", path.to_str().unwrap()]);
        ensure(code == 1 && stdout.starts_with("invalid:"), || {
            format!("{name} (text): exit {code}: {stdout}")
        })?;
    }
    Ok(())
}

/// A JSON list that is not NVIDIA serialized evidence: detected as `nvidia-gpu`, then
/// rejected as malformed by its verifier.
fn garbage_nvidia_json() -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evidence.json");
    std::fs::write(&path, b"[{\"arch\": \"HOPPER\", \"evidence\": \"AAAA\"}]").unwrap();
    let (code, stdout, stderr) = pith(&["attest", "verify", path.to_str().unwrap(), "--json"]);
    let j: Json =
        serde_json::from_str(stdout.trim()).map_err(|e| format!("{e}: {stdout} {stderr}"))?;
    ensure(
        code == 1 && j["platform"] == "nvidia-gpu" && j["failure"] == "malformed",
        || format!("exit {code}: {j}"),
    )
}

fn usage_errors() -> Result<(), Failed> {
    let case = Case::load(&corpus_dir().join("nitro-a6-fastcrypto"));
    let ev = case.evidence.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bad_policy = dir.path().join("bad.toml");
    std::fs::write(&bad_policy, "alow_debug = true\n").unwrap();
    let not_a_dir = case.evidence.clone();
    let checks: Vec<(&str, Vec<&str>)> = vec![
        (
            "missing evidence file",
            vec!["attest", "verify", "/nonexistent/evidence.bin"],
        ),
        (
            "evidence is a directory",
            vec!["attest", "verify", case.dir.to_str().unwrap()],
        ),
        (
            "bad --at",
            vec!["attest", "verify", ev, "--at", "yesterday"],
        ),
        (
            "bad --platform",
            vec!["attest", "verify", ev, "--platform", "amiga"],
        ),
        (
            "missing --collateral dir",
            vec!["attest", "verify", ev, "--collateral", "/nonexistent/dir"],
        ),
        (
            "--collateral is a file",
            vec![
                "attest",
                "verify",
                ev,
                "--collateral",
                not_a_dir.to_str().unwrap(),
            ],
        ),
        (
            "missing --policy",
            vec![
                "attest",
                "verify",
                ev,
                "--policy",
                "/nonexistent/policy.toml",
            ],
        ),
        (
            "invalid --policy",
            vec![
                "attest",
                "verify",
                ev,
                "--policy",
                bad_policy.to_str().unwrap(),
            ],
        ),
        (
            "missing --dev-ca",
            vec!["attest", "verify", ev, "--dev-ca", "/nonexistent/ca.pem"],
        ),
        ("unknown flag", vec!["attest", "verify", ev, "--frobnicate"]),
        ("no evidence", vec!["attest", "verify"]),
    ];
    for (what, args) in checks {
        let (code, stdout, stderr) = pith(&args);
        ensure(code == 2, || {
            format!("{what}: exit {code}, stdout {stdout}, stderr {stderr}")
        })?;
        ensure(!stderr.trim().is_empty(), || {
            format!("{what}: no message on stderr")
        })?;
    }
    Ok(())
}

/// Intel evidence without `--collateral` and an unreachable PCCS fails cleanly with
/// missing_collateral rather than crashing or passing.
fn no_collateral() -> Result<(), Failed> {
    let case = Case::load(&corpus_dir().join("tdx-t1-uptodate"));
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pith"))
        .args([
            "attest",
            "verify",
            case.evidence.to_str().unwrap(),
            "--at",
            case.at(),
            "--json",
        ])
        .env("PITH_PCCS_URL", "http://127.0.0.1:9")
        .env("PITH_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    let (code, stdout, stderr) = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    let j: Json =
        serde_json::from_str(stdout.trim()).map_err(|e| format!("{e}: {stdout} {stderr}"))?;
    ensure(
        code == 1 && j["verdict"] == "invalid" && j["platform"] == "tdx",
        || format!("exit {code}: {j}"),
    )?;
    ensure(j["failure"] == "missing_collateral", || format!("{j}"))
}

/// A minimal AMD-KDS-compatible HTTP server on loopback serving one case's real VCEK and
/// chain (Milan); counts requests. Stops when the returned guard is dropped.
struct Kds {
    url: String,
    requests: Arc<std::sync::atomic::AtomicUsize>,
}

fn serve_kds(case_dir: &Path) -> Kds {
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let vcek = std::fs::read(case_dir.join("collateral/vcek.der")).unwrap();
    let chain = std::fs::read(case_dir.join("collateral/cert_chain.pem")).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // Drain the headers.
            let mut h = String::new();
            while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                h.clear();
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let (status, body): (&str, &[u8]) = if path == "/vcek/v1/Milan/cert_chain" {
                ("200 OK", &chain)
            } else if path.starts_with("/vcek/v1/Milan/") && path.contains("blSPL=") {
                ("200 OK", &vcek)
            } else {
                ("404 Not Found", b"")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
        }
    });
    Kds { url, requests }
}

/// SEV-SNP without `--collateral`: the VCEK and chain are fetched from an AMD-KDS-compatible
/// URL, then served from the on-disk cache.
fn snp_fetched_collateral() -> Result<(), Failed> {
    use std::sync::atomic::Ordering;
    let case = Case::load(&corpus_dir().join("snp-n1-milan"));
    let kds = serve_kds(&case.dir);
    let cache = tempfile::tempdir().unwrap();
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_pith"))
            .args([
                "attest",
                "verify",
                case.evidence.to_str().unwrap(),
                "--at",
                case.at(),
                "--json",
            ])
            .env("PITH_AMD_KDS_URL", &kds.url)
            .env("PITH_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let j: Json = serde_json::from_str(stdout.trim()).unwrap_or(Json::Null);
        (
            out.status.code().unwrap_or(-1),
            j,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, j, stderr) = run();
    ensure(code == 0 && j["verdict"] == "valid", || {
        format!("fetched: exit {code}: {j} {stderr}")
    })?;
    ensure(
        j["measurements"]["measurement"] == case.expect["measurements"]["measurement"],
        || format!("{j}"),
    )?;
    let fetched = kds.requests.load(Ordering::SeqCst);
    ensure(fetched >= 2, || format!("{fetched} requests"))?;
    let (code, j, stderr) = run();
    ensure(code == 0 && j["verdict"] == "valid", || {
        format!("cached: exit {code}: {j} {stderr}")
    })?;
    ensure(kds.requests.load(Ordering::SeqCst) == fetched, || {
        "second run was not served from the cache".into()
    })?;
    // A KDS that does not know the chip: missing_collateral.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pith"))
        .args([
            "attest",
            "verify",
            case.evidence.to_str().unwrap(),
            "--at",
            case.at(),
            "--json",
        ])
        .env("PITH_AMD_KDS_URL", format!("{}/nothing-here", kds.url))
        .env("PITH_CACHE_DIR", empty.path())
        .output()
        .unwrap();
    let j: Json = serde_json::from_slice(&out.stdout).unwrap_or(Json::Null);
    ensure(
        out.status.code() == Some(1) && j["failure"] == "missing_collateral",
        || format!("unknown chip: {j}"),
    )
}

fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join(format!("policy-{}.toml", text.len()));
    std::fs::write(&p, text).unwrap();
    p
}

/// `--policy`: the verdict stays the verification's; `policy` carries the decision and
/// the exit code follows it.
fn policy_decisions() -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    // A debug-mode Nitro enclave: authentic, but the default policy forbids debug.
    let debug = Case::load(&corpus_dir().join("nitro-a1-debug-ga"));
    let default_policy = write_policy(dir.path(), "");
    let run = verify_json(
        &debug.evidence,
        &debug,
        &["--policy", default_policy.to_str().unwrap()],
    )?;
    ensure(run.code == 1 && run.json["verdict"] == "valid", || {
        format!("debug: exit {}, {}", run.code, run.json)
    })?;
    ensure(run.json["policy"]["allowed"] == false, || {
        format!("debug allowed: {}", run.json)
    })?;
    let reasons = run.json["policy"]["reasons"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure(
        reasons
            .iter()
            .any(|r| r.as_str().is_some_and(|r| r.starts_with("debug:"))),
        || format!("{reasons:?}"),
    )?;
    let allow_debug = write_policy(dir.path(), "allow_debug = true\n");
    let run = verify_json(
        &debug.evidence,
        &debug,
        &["--policy", allow_debug.to_str().unwrap()],
    )?;
    ensure(
        run.code == 0 && run.json["policy"]["allowed"] == true,
        || format!("allow_debug: {}", run.json),
    )?;

    // A production enclave, allow-listed by its measurement hash; another hash is denied.
    let prod = Case::load(&corpus_dir().join("nitro-a2-prod-beta"));
    let run = verify_json(&prod.evidence, &prod, &[])?;
    let hash = run.json["measurement_hash"]
        .as_str()
        .ok_or("no measurement_hash")?
        .to_string();
    let listed = write_policy(dir.path(), &format!("measurement_hashes = [\"{hash}\"]\n"));
    let run = verify_json(
        &prod.evidence,
        &prod,
        &["--policy", listed.to_str().unwrap()],
    )?;
    ensure(
        run.code == 0 && run.json["policy"]["allowed"] == true,
        || format!("listed: {}", run.json),
    )?;
    ensure(
        run.json["policy"]["reasons"] == serde_json::json!([]),
        || format!("listed: {}", run.json),
    )?;
    let other = write_policy(
        dir.path(),
        &format!("measurement_hashes = [\"{}\"]\n", "00".repeat(32)),
    );
    let run = verify_json(
        &prod.evidence,
        &prod,
        &["--policy", other.to_str().unwrap()],
    )?;
    ensure(
        run.code == 1 && run.json["policy"]["allowed"] == false,
        || format!("unlisted: {}", run.json),
    )?;

    // Invalid evidence with a policy: not allowed, exit 1.
    let bad = Case::load(&corpus_dir().join("nitro-a6-fastcrypto-bitflip"));
    let run = verify_json(
        &bad.evidence,
        &bad,
        &["--policy", allow_debug.to_str().unwrap()],
    )?;
    ensure(
        run.code == 1 && run.json["policy"]["allowed"] == false,
        || format!("invalid: {}", run.json),
    )?;
    Ok(())
}

/// Simulated evidence from `pith attest quote`: the dev CA is found under `.pith/` of the
/// working directory (or given with `--dev-ca`); another network's CA is `bad_chain`; the
/// default policy denies simulated evidence and `allow_simulated` admits it.
fn simulated_round_trip() -> Result<(), Failed> {
    let net = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let run_in = |dir: &Path, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_pith"))
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run pith");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let rd = "ab".repeat(32);
    for dir in [net.path(), other.path()] {
        let (code, _, stderr) = run_in(
            dir,
            &[
                "attest",
                "quote",
                "--simulated",
                "--report-data",
                &rd,
                "--out",
                "ev.bin",
            ],
        );
        ensure(code == 0, || format!("quote: exit {code}: {stderr}"))?;
    }
    let json = |(code, stdout, stderr): (i32, String, String)| -> Result<(i32, Json), Failed> {
        let j =
            serde_json::from_str(stdout.trim()).map_err(|e| format!("{e}: {stdout} {stderr}"))?;
        Ok((code, j))
    };
    // Default --dev-ca: .pith/dev-ca.pem of the working directory.
    let (code, j) = json(run_in(
        net.path(),
        &["attest", "verify", "ev.bin", "--json"],
    ))?;
    ensure(
        code == 0 && j["platform"] == "simulated" && j["verdict"] == "valid",
        || format!("exit {code}: {j}"),
    )?;
    ensure(
        j["report_data"]
            .as_str()
            .is_some_and(|r| r.starts_with(&rd)),
        || format!("report_data: {j}"),
    )?;
    ensure(
        j["measurements"]["mr_td"]
            .as_str()
            .is_some_and(|m| m.len() == 96),
        || format!("mr_td: {j}"),
    )?;
    // Explicit --dev-ca of another network: the chain does not verify.
    let other_ca = other.path().join(".pith/dev-ca.pem");
    let (code, j) = json(run_in(
        net.path(),
        &[
            "attest",
            "verify",
            "ev.bin",
            "--json",
            "--dev-ca",
            other_ca.to_str().unwrap(),
        ],
    ))?;
    ensure(code == 1 && j["failure"] == "bad_chain", || {
        format!("other CA: exit {code}: {j}")
    })?;
    // No dev CA at all (no .pith here): bad_chain.
    let elsewhere = tempfile::tempdir().unwrap();
    let ev = net.path().join("ev.bin");
    let (code, j) = json(run_in(
        elsewhere.path(),
        &["attest", "verify", ev.to_str().unwrap(), "--json"],
    ))?;
    ensure(code == 1 && j["failure"] == "bad_chain", || {
        format!("no CA: exit {code}: {j}")
    })?;
    // Policies.
    let deny = write_policy(net.path(), "");
    let (code, j) = json(run_in(
        net.path(),
        &[
            "attest",
            "verify",
            "ev.bin",
            "--json",
            "--policy",
            deny.to_str().unwrap(),
        ],
    ))?;
    ensure(
        code == 1 && j["verdict"] == "valid" && j["policy"]["allowed"] == false,
        || format!("default policy: {j}"),
    )?;
    let allow = write_policy(
        net.path(),
        &format!(
            "allow_simulated = true\nexpected_report_data = \"{rd}\"\nmax_age_seconds = 600\n"
        ),
    );
    let (code, j) = json(run_in(
        net.path(),
        &[
            "attest",
            "verify",
            "ev.bin",
            "--json",
            "--policy",
            allow.to_str().unwrap(),
        ],
    ))?;
    ensure(code == 0 && j["policy"]["allowed"] == true, || {
        format!("allow_simulated: exit {code}: {j}")
    })?;
    Ok(())
}

/// The measurement-hash test vectors of docs/protocol.md (one corpus case each), checked
/// through the whole verifier.
const VECTORS: [(&str, &str); 6] = [
    (
        "sgx-s1-confsw-hardening",
        "7a8129bb510266abc9e2af599abb95de16ed4c5c56746b4b56aa070cb957c6ad",
    ),
    (
        "tdx-t1-uptodate",
        "55d9b317a6a4c2094350d6cb0290c3c64612e47bffb639b95f8f37ee9dbad43d",
    ),
    (
        "tdx-t10-v5-uptodate",
        "04eeca1f0afd4639b55b2f95601c1cd197b5dad9c28b3ece33240a1c8e117a04",
    ),
    (
        "snp-n1-milan",
        "b24891ecc7935ea38ab93bdd081bb15b2cda0c9f322091fed1536e8bddf781b2",
    ),
    (
        "snp-n8-vlek-aws",
        "31d934d640d4b0fbf78454c2d5e755a17e1d684cc3b42ca77eca774b4929af2a",
    ),
    (
        "nitro-a6-fastcrypto",
        "0ed75d8ec40a9de8d7069b7f78c550cd2011d7692d9a617de09ea33bf4833e53",
    ),
];

fn measurement_vector(name: &str, want: &str) -> Result<(), Failed> {
    let case = Case::load(&corpus_dir().join(name));
    let run = verify_json(&case.evidence, &case, &[])?;
    ensure(run.json["measurement_hash"] == want, || {
        format!(
            "{name}: {} ({})",
            run.json["measurement_hash"], run.json["error"]
        )
    })
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
    let mut reencoded_platforms = std::collections::BTreeSet::new();
    for dir in dirs {
        let case = Arc::new(Case::load(&dir));
        let kind = case.expect["platform"]
            .as_str()
            .unwrap_or("unknown")
            .to_string();
        let c = case.clone();
        trials.push(
            Trial::test(format!("cli::{}", case.name), move || check_case(&c))
                .with_kind(kind.clone()),
        );
        // Re-encodings and explicit platform: the first valid binary case of each platform,
        // plus the lenient ones.
        let binary = case.evidence.extension().is_some_and(|e| e == "bin");
        if binary && case.valid() && (reencoded_platforms.insert(kind.clone()) || case.lenient()) {
            let c = case.clone();
            trials.push(
                Trial::test(format!("reencoded::{}", case.name), move || {
                    check_reencoded(&c)
                })
                .with_kind(kind.clone()),
            );
            let c = case.clone();
            trials.push(
                Trial::test(format!("platform_flag::{}", case.name), move || {
                    check_explicit_platform(&c)
                })
                .with_kind(kind),
            );
        }
    }
    trials.push(Trial::test("garbage_input", garbage));
    trials.push(Trial::test("garbage_nvidia_json", garbage_nvidia_json).with_kind("nvidia-gpu"));
    trials.push(Trial::test("usage_errors", usage_errors));
    trials.push(Trial::test("simulated_round_trip", simulated_round_trip).with_kind("simulated"));
    trials.push(Trial::test("intel_without_collateral", no_collateral).with_kind("tdx"));
    trials.push(Trial::test("snp_fetched_collateral", snp_fetched_collateral).with_kind("sev-snp"));
    trials.push(Trial::test("policy_decisions", policy_decisions).with_kind("nitro"));
    for (name, want) in VECTORS {
        let kind = Case::load(&corpus_dir().join(name)).expect["platform"]
            .as_str()
            .unwrap_or("")
            .to_string();
        trials.push(
            Trial::test(format!("measurement_hash::{name}"), move || {
                measurement_vector(name, want)
            })
            .with_kind(kind),
        );
    }
    libtest_mimic::run(&args, trials).exit();
}
