//! `pith run` and `pith dev` with WASM programs through the real binary: the same flags,
//! JSON and error kinds as for JavaScript. The components are the sandbox's test
//! components (crates/sandbox/tests/wasm/*.wat) encoded with wasm-tools
//! (scripts/install.d/wasm-toolchain).

mod common;

use common::wasm_component as component;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn pith(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pith"));
    c.env("PITH_WASM_CACHE", cache);
    c
}

#[test]
fn run_wasm_json() {
    let dir = tempfile::tempdir().unwrap();
    let echo = component(dir.path(), "echo");
    let out = pith(dir.path())
        .args([
            "run",
            echo.to_str().unwrap(),
            "--method",
            "POST",
            "--path",
            "/a?b=1",
            "--header",
            "X-In: v",
            "--body",
            "hi",
        ])
        .args(["--limit", "cpu_ms=500", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], 201);
    assert_eq!(v["headers"]["x-method"], "POST");
    assert_eq!(v["headers"]["x-echo"], "v");
    assert_eq!(v["body"], "/a?b=1\nhi");
    assert_eq!(v["limits"]["cpu_ms"], 500);
    assert_eq!(v["error"], serde_json::Value::Null);
    assert_eq!(v["logs"], serde_json::json!([]));
    for k in [
        "cpu_ms",
        "wall_ms",
        "memory_bytes",
        "egress_requests",
        "egress_bytes",
        "log_bytes",
        "kv_ops",
    ] {
        assert!(v["usage"][k].is_u64(), "usage.{k}");
    }
    // The precompiled component was cached.
    assert!(
        std::fs::read_dir(dir.path()).unwrap().any(|e| e
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "cwasm"))
    );
}

#[test]
fn run_wasm_errors() {
    let dir = tempfile::tempdir().unwrap();
    let lp = component(dir.path(), "loop");
    let out = pith(dir.path())
        .args([
            "run",
            lp.to_str().unwrap(),
            "--limit",
            "cpu_ms=50",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "cpu_limit");
    assert_eq!(v["status"], serde_json::Value::Null);
    assert!(v["usage"]["cpu_ms"].as_u64().unwrap() >= 50);

    let logs = component(dir.path(), "huge_logs");
    let out = pith(dir.path())
        .args([
            "run",
            logs.to_str().unwrap(),
            "--limit",
            "log_bytes=1000",
            "--json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "log_limit");
    assert!(v["usage"]["log_bytes"].as_u64().unwrap() <= 1000);

    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, b"\0asm not really").unwrap();
    let out = pith(dir.path())
        .args(["run", bad.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "invalid_program");
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn dev_serves_wasm() {
    let dir = tempfile::tempdir().unwrap();
    let echo = component(dir.path(), "echo");
    let child = pith(dir.path())
        .args(["dev", echo.to_str().unwrap(), "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Kill(child);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready http://127.0.0.1:"), "{line}");
    let addr = line
        .trim_start_matches("ready http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    for path in ["/one", "/two?x=1"] {
        let mut s = TcpStream::connect(&addr).unwrap();
        write!(s, "POST {path} HTTP/1.1\r\nhost: {addr}\r\nx-in: hdr\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbody").unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        assert!(buf.starts_with("HTTP/1.1 201 "), "{buf}");
        assert!(buf.contains("x-echo: hdr\r\n"), "{buf}");
        assert!(buf.ends_with(&format!("\r\n\r\n{path}\nbody")), "{buf}");
    }
}
