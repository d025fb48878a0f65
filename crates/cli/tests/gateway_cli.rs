//! `pith gateway` as a process: it starts from a deployment file, prints its URL, serves on
//! loopback, and stops cleanly on SIGTERM (exit 0). The chain is not needed for these routes
//! (the RPC URL points at a closed port; chain reads fail with typed `unavailable` errors).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn gateway_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let a = |n: u8| format!("0x{}", hex::encode([n; 20]));
    let deployment = serde_json::json!({
        "chain_id": 31337, "rpc_url": "http://127.0.0.1:1", "deploy_block": 1,
        "contracts": {"PHA": a(1), "Registry": a(2), "Programs": a(3), "StakePools": a(4),
                      "Billing": a(5), "OracleAnchor": a(6), "Governor": a(7), "Timelock": a(8)}
    });
    let dep = dir.path().join("deployment.json");
    std::fs::write(&dep, serde_json::to_vec(&deployment).unwrap()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pith"))
        .args(["gateway", "--dir"])
        .arg(dir.path().join("gw"))
        .arg("--deployment")
        .arg(&dep)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("gateway listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(url.starts_with("127.0.0.1:"), "loopback by default: {url}");

    let (status, body) = get(url, "/v1/health");
    assert_eq!(status, 200);
    assert!(body.contains("\"ok\":true"), "{body}");
    let (status, body) = get(url, "/openapi.json");
    assert_eq!(status, 200);
    assert!(body.contains("\"openapi\":\"3.1.0\""));
    // Chain down: a typed error, not a hang or a crash.
    let (status, body) = get(url, "/v1/programs");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"kind\":\"unavailable\""), "{body}");
    let (status, body) = get(url, "/metrics");
    assert_eq!(status, 200);
    assert!(
        body.contains(
            "pith_gateway_requests_total{route=\"/v1/programs\",method=\"GET\",status=\"503\"} 1"
        ),
        "{body}"
    );

    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(dir.path().join("gw/gateway.redb").exists());
}
