//! `pith attest quote` and `pith attest dev-ca init` through the binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use pith_attest::{Collateral, Evidence, Platform, VerifyOptions, verify};

fn pith(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pith"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `quote` with an empty TEE root (no TEE interfaces), so detection falls back to simulated.
fn quote(dir: &Path, extra: &[&str]) -> Output {
    let root = dir.join("no-tee");
    std::fs::create_dir_all(&root).unwrap();
    let mut args = vec!["attest", "quote", "--tee-root", s(&root)];
    args.extend_from_slice(extra);
    pith(&args, dir)
}

fn verify_simulated(
    evidence: Vec<u8>,
    ca_pem: &Path,
) -> Result<pith_attest::Verified, pith_attest::Rejected> {
    let mut o = VerifyOptions::default();
    o.dev_ca = Some(std::fs::read(ca_pem).unwrap());
    verify(
        &Evidence::new(Platform::Simulated, evidence),
        &Collateral::default(),
        &o,
        time::OffsetDateTime::now_utc(),
    )
}

#[test]
fn quote_creates_dev_ca_and_writes_verifiable_evidence() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ev.bin");
    let o = quote(tmp.path(), &["--report-data", "0xc0ffee", "--out", s(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("SIMULATED"));
    // Default CA directory: .pith under the working directory.
    let ca_dir = tmp.path().join(".pith");
    let mode = std::fs::metadata(ca_dir.join("dev-ca.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let ev = std::fs::read(&out).unwrap();
    assert_eq!(&ev[..8], b"PITHSIM1");
    let v = verify_simulated(ev.clone(), &ca_dir.join("dev-ca.pem")).unwrap();
    let mut want = [0u8; 64];
    want[..3].copy_from_slice(&[0xc0, 0xff, 0xee]);
    assert_eq!(v.report_data(), Some(&want[..]));
    // The measured binary is the pith executable.
    let exe: [u8; 48] =
        <sha2::Sha384 as sha2::Digest>::digest(std::fs::read(env!("CARGO_BIN_EXE_pith")).unwrap())
            .into();
    assert_eq!(
        serde_json::to_value(v.measurements()).unwrap()["binary_sha384"],
        hex::encode(exe)
    );

    // Another network's CA rejects it.
    let other = tempfile::tempdir().unwrap();
    let o = pith(
        &[
            "attest",
            "dev-ca",
            "init",
            "--dir",
            s(&other.path().join("ca")),
        ],
        other.path(),
    );
    assert!(o.status.success());
    let r = verify_simulated(ev, &other.path().join("ca/dev-ca.pem")).unwrap_err();
    assert_eq!(r.error.class(), pith_attest::ErrorClass::BadChain);
}

#[test]
fn quote_to_stdout_is_hex_and_measurement_is_stable_per_config() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca");
    let cfg = tmp.path().join("node.toml");
    std::fs::write(&cfg, "a = 1\n").unwrap();
    let mr_td = |extra: &[&str]| {
        let mut args = vec!["--dev-ca-dir", s(&ca)];
        args.extend_from_slice(extra);
        let o = quote(tmp.path(), &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let ev = hex::decode(String::from_utf8(o.stdout).unwrap().trim()).unwrap();
        let v = verify_simulated(ev, &ca.join("dev-ca.pem")).unwrap();
        assert_eq!(v.report_data(), Some(&[0u8; 64][..]));
        serde_json::to_value(v.measurements()).unwrap()["mr_td"].clone()
    };
    let cert_before = std::fs::read(ca.join("dev-ca.pem")).ok();
    let a = mr_td(&["--config", s(&cfg)]);
    let cert = std::fs::read(ca.join("dev-ca.pem")).unwrap();
    assert!(cert_before.is_none());
    let b = mr_td(&["--config", s(&cfg)]);
    assert_eq!(a, b, "same binary and configuration: same mr_td");
    assert_eq!(
        std::fs::read(ca.join("dev-ca.pem")).unwrap(),
        cert,
        "CA reused, not regenerated"
    );
    std::fs::write(&cfg, "a = 2\n").unwrap();
    assert_ne!(
        a,
        mr_td(&["--config", s(&cfg)]),
        "configuration changes mr_td"
    );
    assert_ne!(a, mr_td(&[]));
}

#[test]
fn quote_usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["zz", "abc", &"00".repeat(65)] {
        let o = quote(tmp.path(), &["--report-data", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
    }
    let o = quote(
        tmp.path(),
        &["--config", s(&tmp.path().join("missing.toml"))],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        !tmp.path().join(".pith").exists(),
        "no CA created on usage errors"
    );
}

#[test]
fn quote_uses_gramine_when_present() {
    // A Gramine /dev/attestation tree (static files): the real interface wins over simulated.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tee");
    let dir = root.join("dev/attestation");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("attestation_type"), "dcap").unwrap();
    std::fs::write(dir.join("user_report_data"), [0u8; 64]).unwrap();
    let mut q = vec![0u8; 1000];
    q[0] = 3;
    q[368] = 0x77;
    std::fs::write(dir.join("quote"), &q).unwrap();
    let out = tmp.path().join("q.bin");
    let o = pith(
        &[
            "attest",
            "quote",
            "--tee-root",
            s(&root),
            "--report-data",
            "77",
            "--out",
            s(&out),
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("sgx evidence"));
    assert_eq!(std::fs::read(&out).unwrap(), q);
    assert_eq!(
        std::fs::read(dir.join("user_report_data")).unwrap()[0],
        0x77
    );
    assert!(
        !tmp.path().join(".pith").exists(),
        "no dev CA when a TEE is present"
    );

    // Report data the quote does not carry: exit 1, nothing written.
    let out2 = tmp.path().join("q2.bin");
    let o = pith(
        &[
            "attest",
            "quote",
            "--tee-root",
            s(&root),
            "--report-data",
            "78",
            "--out",
            s(&out2),
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(!out2.exists());

    // --simulated forces the development path.
    let o = pith(
        &["attest", "quote", "--tee-root", s(&root), "--simulated"],
        tmp.path(),
    );
    assert!(o.status.success());
    assert!(
        hex::decode(String::from_utf8(o.stdout).unwrap().trim())
            .unwrap()
            .starts_with(b"PITHSIM1")
    );

    // Gramine without DCAP: an error, not a silent fallback.
    std::fs::write(dir.join("attestation_type"), "none").unwrap();
    let o = pith(&["attest", "quote", "--tee-root", s(&root)], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("DCAP"));
}

#[test]
fn dev_ca_init_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("x/.pith");
    let o = pith(&["attest", "dev-ca", "init", "--dir", s(&dir)], tmp.path());
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8(o.stdout).unwrap().trim(),
        s(&dir.join("dev-ca.pem"))
    );
    let cert = std::fs::read(dir.join("dev-ca.pem")).unwrap();
    let o = pith(&["attest", "dev-ca", "init", "--dir", s(&dir)], tmp.path());
    assert!(o.status.success());
    assert_eq!(std::fs::read(dir.join("dev-ca.pem")).unwrap(), cert);
    // An insecure key is refused.
    std::fs::set_permissions(
        dir.join("dev-ca.key"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let o = pith(&["attest", "dev-ca", "init", "--dir", s(&dir)], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("chmod 600"));
}

/// `pith attest quote` (hex on stdout) → `pith attest verify --platform simulated --dev-ca`:
/// valid with this network's CA, `bad_chain` with another one or none, `bad_signature` when
/// a signed byte is changed, `malformed` when truncated.
#[test]
fn quote_then_verify_through_the_binary() {
    let net = tempfile::tempdir().unwrap();
    let ca_dir = net.path().join("ca");
    let o = quote(
        net.path(),
        &[
            "--dev-ca-dir",
            s(&ca_dir),
            "--report-data",
            &"5a".repeat(64),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let hex_ev = String::from_utf8(o.stdout).unwrap();
    let ev_path = net.path().join("ev.hex");
    std::fs::write(&ev_path, &hex_ev).unwrap();
    let ca = ca_dir.join("dev-ca.pem");

    // Runs in a directory without .pith, so only --dev-ca can supply the CA.
    let elsewhere = tempfile::tempdir().unwrap();
    let verify_cli = |ev: &Path, ca: Option<&Path>| -> (i32, serde_json::Value) {
        let mut args = vec![
            "attest",
            "verify",
            s(ev),
            "--platform",
            "simulated",
            "--json",
        ];
        if let Some(ca) = ca {
            args.extend_from_slice(&["--dev-ca", s(ca)]);
        }
        let o = pith(&args, elsewhere.path());
        let j = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {} {}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        });
        (o.status.code().unwrap(), j)
    };

    let (code, j) = verify_cli(&ev_path, Some(&ca));
    assert_eq!(code, 0, "{j}");
    assert_eq!(j["platform"], "simulated");
    assert_eq!(j["verdict"], "valid");
    assert_eq!(j["report_data"], "5a".repeat(64));
    assert_eq!(j["failure"], serde_json::Value::Null);
    for key in [
        "mr_td",
        "mr_config_id",
        "mr_owner",
        "rtmr0",
        "rtmr3",
        "binary_sha384",
    ] {
        assert_eq!(
            j["measurements"][key].as_str().map(str::len),
            Some(96),
            "{key}: {j}"
        );
    }

    // Another network's CA.
    let other = net.path().join("other");
    assert!(
        pith(
            &["attest", "dev-ca", "init", "--dir", s(&other)],
            net.path()
        )
        .status
        .success()
    );
    let (code, j) = verify_cli(&ev_path, Some(&other.join("dev-ca.pem")));
    assert_eq!((code, j["failure"].as_str()), (1, Some("bad_chain")), "{j}");
    assert!(
        j["measurements"].is_null() || j["measurements"] == serde_json::json!({}),
        "unverified fields stay out of measurements: {j}"
    );

    // No CA at all.
    let (code, j) = verify_cli(&ev_path, None);
    assert_eq!((code, j["failure"].as_str()), (1, Some("bad_chain")), "{j}");

    // A changed byte inside the signed region (mr_owner) and a truncation.
    let mut bytes = hex::decode(hex_ev.trim()).unwrap();
    bytes[120] ^= 1;
    let tampered = net.path().join("tampered.bin");
    std::fs::write(&tampered, &bytes).unwrap();
    let (code, j) = verify_cli(&tampered, Some(&ca));
    assert_eq!(
        (code, j["failure"].as_str()),
        (1, Some("bad_signature")),
        "{j}"
    );
    bytes[120] ^= 1;
    bytes.truncate(bytes.len() - 1);
    std::fs::write(&tampered, &bytes).unwrap();
    let (code, j) = verify_cli(&tampered, Some(&ca));
    assert_eq!((code, j["failure"].as_str()), (1, Some("malformed")), "{j}");
}

/// A Nitro NSM device node is detected (the pith binary is built with pith-attest's `nsm`
/// feature); a regular file in its place is not an NSM, and the ioctl error is reported
/// instead of falling back to simulated evidence.
#[test]
fn quote_with_fake_nsm_device_fails_without_fallback() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tee");
    std::fs::create_dir_all(root.join("dev")).unwrap();
    std::fs::write(root.join("dev/nsm"), b"").unwrap();
    let o = pith(&["attest", "quote", "--tee-root", s(&root)], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("NSM"), "{err}");
    assert!(
        !tmp.path().join(".pith").exists(),
        "no simulated fallback when a TEE device exists"
    );
}
