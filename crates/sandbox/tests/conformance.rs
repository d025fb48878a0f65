//! Differential conformance: every program in `tests/conformance/web/` runs in workerd
//! (Cloudflare's Workers runtime, installed by `scripts/install.d/workerd`) and in the Pith
//! sandbox with the same request; status, content type, body and console output must be
//! equal. `tests/conformance/harness.js` is prepended to each program in both runtimes.
//!
//! The env members workerd has no counterpart for (`env.keys`, `env.program`,
//! `env.attestation`, `env.chain`) are checked by `tests/conformance/pith/*.js` against
//! fixed expected outputs (`*.expected.json`, values computed independently in this file),
//! not differentially.
//!
//! workerd is given the same env: `env.secrets` is a JSON binding, `env.kv` a KV namespace
//! binding backed by a small in-memory KV service worker (`conformance/kv-service.js`)
//! that speaks the KV binding's HTTP protocol, and its global outbound may reach loopback,
//! where this test's echo server listens (the sandbox gets that host on its allow-list).
//!
//! When workerd is not installed the test prints why and passes, except under CI (`CI`
//! set), where a missing workerd fails it.

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pith_sandbox::{Host, Outcome, Program, Request};

const SECRETS: &[(&str, &str)] = &[("API_KEY", "sk-test-123"), ("GREETING", "héllo wörld")];
const REQUEST_BODY: &str = "{\"hello\":\"wörld\",\"n\":[1,2,3]}";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

fn workerd_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PITH_WORKERD") {
        return Some(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tools/workerd/node_modules/@cloudflare/workerd-linux-64/bin/workerd");
    p.exists().then_some(p)
}

/// Deliberate divergences: (program, test name, what the sandbox gives, why). For these the
/// sandbox's result is asserted to be the given JSON value instead of workerd's.
const DELIBERATE: &[(&str, &str, &str, &str)] = &[
    (
        "headers",
        "toStringTag",
        r#""[object Headers]""#,
        "WebIDL class string; workerd's classes have no Symbol.toStringTag",
    ),
    (
        "request_response",
        "request toStringTag",
        r#""[object Request]""#,
        "as above",
    ),
    (
        "request_response",
        "response toStringTag",
        r#""[object Response]""#,
        "as above",
    ),
    (
        "url",
        "usp toStringTag",
        r#""[object URLSearchParams]""#,
        "as above",
    ),
    (
        "request_response",
        "request method Patch",
        r#""Patch""#,
        "the Fetch spec keeps the case of methods other than DELETE/GET/HEAD/OPTIONS/POST/PUT; workerd rejects them",
    ),
    (
        "request_response",
        "request custom method",
        r#""custom""#,
        "the Fetch spec allows any token as a method; workerd accepts only the standard ones",
    ),
    (
        "crypto",
        "digest MD5",
        r#""throws NotSupportedError (DOMException)""#,
        "MD5 is a workerd extension; the sandbox offers the SHA family only",
    ),
];

/// The outputs compared between the two runtimes.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    status: u16,
    content_type: Option<String>,
    body: String,
    /// console.log/info/debug lines (workerd: stdout).
    out: Vec<String>,
    /// console.warn/error lines (workerd: stderr).
    err: Vec<String>,
}

fn source(file: &Path) -> String {
    let harness = std::fs::read_to_string(dir().join("harness.js")).unwrap();
    let program = std::fs::read_to_string(file).unwrap();
    format!("{harness}\n{program}")
}

// ----------------------------------------------------------------------------- echo server

/// Loopback HTTP server the programs fetch from: `/echo` answers JSON with the method,
/// path, the `x-*` and `content-type` request headers and the body; `/redirect?to=P` answers
/// 302 to P; `/status/N` answers status N; `/bytes` answers non-UTF-8 bytes.
fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = echo_one(stream);
            });
        }
    });
    port
}

fn echo_one(mut stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("/").to_owned();
    // Sorted, so the echo does not depend on the order a client sends its headers in (nor
    // on serde_json's `preserve_order`, which a workspace build turns on).
    let mut headers = std::collections::BTreeMap::<String, serde_json::Value>::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        let Some((k, v)) = h.trim_end().split_once(':') else {
            continue;
        };
        let k = k.trim().to_ascii_lowercase();
        let v = v.trim().to_owned();
        if k == "content-length" {
            len = v.parse().unwrap_or(0);
        }
        if k.starts_with("x-") || k == "content-type" {
            headers.insert(k, v.into());
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (status, extra, out): (&str, Vec<(String, String)>, Vec<u8>) = match path {
        "/echo" => {
            let v = serde_json::json!({
                "method": method, "path": target, "headers": headers,
                "body": String::from_utf8_lossy(&body),
            });
            (
                "200 OK",
                vec![
                    ("content-type".into(), "application/json".into()),
                    ("x-echo".into(), "1".into()),
                ],
                v.to_string().into_bytes(),
            )
        }
        "/redirect" => {
            let to = query.strip_prefix("to=").unwrap_or("/echo").to_owned();
            ("302 Found", vec![("location".into(), to)], Vec::new())
        }
        "/bytes" => (
            "200 OK",
            vec![("content-type".into(), "application/octet-stream".into())],
            vec![0, 1, 0xfe, 0xff, 0x80],
        ),
        p if p.starts_with("/status/") => {
            let code = p.trim_start_matches("/status/").to_owned();
            let line = format!("{code} Status");
            let body = format!("status {code}").into_bytes();
            return write_response(
                &mut stream,
                &line,
                &[
                    ("x-multi".into(), "a".into()),
                    ("x-multi".into(), "b".into()),
                ],
                &body,
            );
        }
        _ => ("404 Not Found", Vec::new(), b"not found".to_vec()),
    };
    write_response(&mut stream, status, &extra, &out)
}

fn write_response(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes())?;
    stream.write_all(body)
}

// ----------------------------------------------------------------------------- workerd

struct Workerd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Cap'n Proto text string literal.
fn capnp_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn start_workerd(bin: &Path, program_src: &str, port: u16) -> Workerd {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("program.js"), program_src).unwrap();
    std::fs::copy(
        self::dir().join("kv-service.js"),
        dir.path().join("kv-service.js"),
    )
    .unwrap();
    let secrets: serde_json::Map<String, serde_json::Value> = SECRETS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).into()))
        .collect();
    let config = format!(
        r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .program),
    (name = "kv", worker = (modules = [(name = "kv-service.js", esModule = embed "kv-service.js")], compatibilityDate = "2024-09-23")),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:{port}", http = (), service = "main")],
);
const program :Workerd.Worker = (
  modules = [(name = "program.js", esModule = embed "program.js")],
  compatibilityDate = "2024-09-23",
  globalOutbound = "internet",
  bindings = [
    (name = "secrets", json = {secrets}),
    (name = "kv", kvNamespace = "kv"),
  ],
);
"#,
        secrets = capnp_str(&serde_json::Value::Object(secrets).to_string()),
    );
    std::fs::write(dir.path().join("config.capnp"), config).unwrap();
    let child = Command::new(bin)
        .arg("serve")
        .arg(dir.path().join("config.capnp"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .expect("start workerd");
    let w = Workerd { child, port, dir };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "workerd did not listen: {}",
            std::fs::read_to_string(w.dir.path().join("stderr")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    w
}

fn request_url(port: u16, echo: u16) -> String {
    format!("http://127.0.0.1:{port}/conformance/path?q=1&echo=http%3A%2F%2F127.0.0.1%3A{echo}")
}

const REQUEST_HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/json"),
    ("x-test", "one"),
    ("x-multi", "a, b"),
];

fn via_workerd(bin: &Path, src: &str, port: u16, echo: u16) -> Observed {
    let mut w = start_workerd(bin, src, port);
    let url = request_url(w.port, echo);
    let resp = common::tokio().block_on(async {
        let client = reqwest::Client::new();
        let mut req = client.post(&url).body(REQUEST_BODY);
        for (k, v) in REQUEST_HEADERS {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("request to workerd");
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = r.text().await.unwrap();
        (status, ct, body)
    });
    // Let console output reach the files, then stop workerd.
    std::thread::sleep(Duration::from_millis(200));
    let _ = w.child.kill();
    let _ = w.child.wait();
    let lines = |name: &str| -> Vec<String> {
        std::fs::read_to_string(w.dir.path().join(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let (out, err) = (lines("stdout"), lines("stderr"));
    Observed {
        status: resp.0,
        content_type: resp.1,
        body: resp.2,
        out,
        err,
    }
}

fn via_sandbox(src: &str, workerd_port: u16, echo: u16) -> Observed {
    let mut p = Program::new("conformance", src.to_owned());
    p.secrets = SECRETS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    p.egress.allow_hosts = vec![format!("127.0.0.1:{echo}")];
    let mut headers: Vec<(String, String)> = REQUEST_HEADERS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    headers.push(("host".into(), format!("127.0.0.1:{workerd_port}")));
    let req = Request {
        method: "POST".into(),
        url: request_url(workerd_port, echo),
        headers,
        body: REQUEST_BODY.as_bytes().to_vec(),
    };
    let o: Outcome = common::run_with_host(p, req, Host::local(b"conformance".to_vec()));
    let (out, err) = o
        .logs
        .iter()
        .fold((Vec::new(), Vec::new()), |(mut out, mut err), l| {
            let lines = l.message.split('\n').map(str::to_owned);
            if l.level == "warn" || l.level == "error" {
                err.extend(lines)
            } else {
                out.extend(lines)
            }
            (out, err)
        });
    match o.result {
        Ok(r) => Observed {
            status: r.status,
            content_type: r
                .headers
                .iter()
                .find(|(k, _)| k == "content-type")
                .map(|(_, v)| v.clone()),
            body: String::from_utf8_lossy(&r.body).into_owned(),
            out,
            err,
        },
        Err(e) => panic!("sandbox invocation failed: {e}\nlogs: {:?}", o.logs),
    }
}

/// Line-by-line difference of two results arrays, for a readable failure.
fn diff(name: &str, w: &Observed, s: &Observed) -> String {
    let mut msg = format!("{name}: workerd and the Pith sandbox disagree\n");
    if w.status != s.status || w.content_type != s.content_type {
        msg += &format!(
            "  status/content-type: workerd {} {:?}, sandbox {} {:?}\n",
            w.status, w.content_type, s.status, s.content_type
        );
    }
    let parse = |b: &str| serde_json::from_str::<Vec<serde_json::Value>>(b).ok();
    match (parse(&w.body), parse(&s.body)) {
        (Some(a), Some(b)) => {
            for i in 0..a.len().max(b.len()) {
                if a.get(i) != b.get(i) {
                    msg += &format!(
                        "  workerd: {}\n  sandbox: {}\n",
                        a.get(i).map(|v| v.to_string()).unwrap_or_default(),
                        b.get(i).map(|v| v.to_string()).unwrap_or_default()
                    );
                }
            }
        }
        _ if w.body != s.body => {
            msg += &format!(
                "  body: workerd {:?}\n        sandbox {:?}\n",
                w.body, s.body
            )
        }
        _ => {}
    }
    if w.out != s.out {
        msg += &format!(
            "  console (out): workerd {:?}\n                 sandbox {:?}\n",
            w.out, s.out
        );
    }
    if w.err != s.err {
        msg += &format!(
            "  console (err): workerd {:?}\n                 sandbox {:?}\n",
            w.err, s.err
        );
    }
    msg
}

/// Checks the sandbox's side of each deliberate divergence of `program` and removes those
/// entries from both results.
fn apply_deliberate(
    program: &str,
    mut w: Observed,
    mut s: Observed,
) -> Result<(Observed, Observed), String> {
    let entries: Vec<_> = DELIBERATE.iter().filter(|d| d.0 == program).collect();
    if entries.is_empty() {
        return Ok((w, s));
    }
    let parse = |b: &str| {
        serde_json::from_str::<Vec<serde_json::Value>>(b)
            .map_err(|e| format!("{program}: result is not JSON: {e}"))
    };
    let (mut wr, mut sr) = (parse(&w.body)?, parse(&s.body)?);
    for (_, test, ours, why) in entries {
        let want: serde_json::Value = serde_json::from_str(ours).unwrap();
        let pos = |r: &[serde_json::Value]| r.iter().position(|e| e[0] == *test);
        let (Some(i), Some(j)) = (pos(&wr), pos(&sr)) else {
            return Err(format!(
                "{program}: deliberate divergence {test:?} not among the results"
            ));
        };
        if sr[j][1] != want {
            return Err(format!(
                "{program}: {test:?} ({why}): sandbox gave {}, expected {want}",
                sr[j][1]
            ));
        }
        wr.remove(i);
        sr.remove(j);
    }
    w.body = serde_json::to_string(&wr).unwrap();
    s.body = serde_json::to_string(&sr).unwrap();
    Ok((w, s))
}

#[test]
fn web_apis_match_workerd() {
    let Some(bin) = workerd_bin() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "workerd is not installed (scripts/install.d/workerd) and CI is set"
        );
        eprintln!(
            "SKIPPED: workerd is not installed; run scripts/install.d/workerd (or set PITH_WORKERD) to run the differential conformance tests"
        );
        return;
    };
    let echo = echo_server();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir().join("web"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "js"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "conformance programs missing");
    let bin = Arc::new(bin);
    let mut failures = Vec::new();
    let only = std::env::var("CONFORMANCE_ONLY").ok();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let src = source(file);
        let port = free_port();
        let w = via_workerd(&bin, &src, port, echo);
        assert_eq!(
            w.status, 200,
            "{name}: workerd did not run the program: {}\n{:?}",
            w.body, w.err
        );
        let s = via_sandbox(&src, port, echo);
        if std::env::var_os("CONFORMANCE_PRINT").is_some() {
            eprintln!("== {name}\n{}\n{:?}\n{:?}", w.body, w.out, w.err);
        }
        let (w, s) = match apply_deliberate(&name, w, s) {
            Ok(pair) => pair,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        if w != s {
            failures.push(diff(&name, &w, &s));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ----------------------------------------------------------------------------- Pith-only members

/// Fixed clock of the Pith-only programs (ms since the epoch).
const FIXED_NOW_MS: f64 = 1_700_000_000_123.0;

struct FixedClock;
impl pith_sandbox::host::Clock for FixedClock {
    fn now_ms(&self) -> f64 {
        FIXED_NOW_MS
    }
}

/// Evidence = "pith-test-evidence:" || code hash || report data.
struct TestAttestation;
impl pith_sandbox::host::AttestationProvider for TestAttestation {
    fn attest<'a>(
        &'a self,
        program: &'a pith_sandbox::host::ProgramRef,
        report_data: Vec<u8>,
    ) -> pith_sandbox::host::BoxFuture<'a, Result<Vec<u8>, pith_sandbox::host::HostError>> {
        Box::pin(async move {
            Ok([
                b"pith-test-evidence:".as_slice(),
                program.code_hash.as_slice(),
                &report_data,
            ]
            .concat())
        })
    }
}

/// eth_call answers the program's code hash; sendTransaction answers sha256 of the
/// transaction JSON; a call without `to` fails.
struct TestChain;
impl pith_sandbox::host::ChainProvider for TestChain {
    fn call<'a>(
        &'a self,
        program: &'a pith_sandbox::host::ProgramRef,
        tx: serde_json::Value,
    ) -> pith_sandbox::host::BoxFuture<'a, Result<String, pith_sandbox::host::HostError>> {
        Box::pin(async move {
            if tx.get("to").is_none() {
                return Err(pith_sandbox::host::HostError::Invalid(
                    "eth_call: missing `to`".into(),
                ));
            }
            Ok(format!("0x{}", hex::encode(program.code_hash)))
        })
    }
    fn send_transaction<'a>(
        &'a self,
        _: &'a pith_sandbox::host::ProgramRef,
        tx: serde_json::Value,
    ) -> pith_sandbox::host::BoxFuture<'a, Result<String, pith_sandbox::host::HostError>> {
        Box::pin(async move {
            Ok(format!(
                "0x{}",
                hex::encode(pith_sandbox::sha256(canonical_json(&tx).as_bytes()))
            ))
        })
    }
}

/// JSON with object keys sorted at every level, whatever serde_json's `preserve_order`
/// feature (which feature unification turns on in a workspace build) does to `Value`.
fn canonical_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            let sorted: std::collections::BTreeMap<&String, String> =
                map.iter().map(|(k, v)| (k, canonical_json(v))).collect();
            let fields: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::Value::String((*k).clone())))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(canonical_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

fn pith_host() -> Host {
    let mut host = Host::local(b"conformance".to_vec());
    host.clock = Arc::new(FixedClock);
    host.attestation = Arc::new(TestAttestation);
    host.chain = Arc::new(TestChain);
    host
}

/// Recovers the Ethereum address that signed `digest` (65-byte r||s||v signature, 0x hex).
fn recover(digest: &str, sig: &serde_json::Value) -> String {
    let digest = hex::decode(digest.trim_start_matches("0x")).unwrap();
    let sig = hex::decode(sig.as_str().unwrap().trim_start_matches("0x")).unwrap();
    let rs = k256::ecdsa::Signature::from_slice(&sig[..64]).unwrap();
    let rec = k256::ecdsa::RecoveryId::from_byte(sig[64] - 27).unwrap();
    let vk = k256::ecdsa::VerifyingKey::recover_from_prehash(&digest, &rs, rec).unwrap();
    pith_sandbox::eth::checksum_address(&pith_sandbox::host::eth_address(&vk))
}

fn result<'a>(results: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    &results
        .iter()
        .find(|r| r[0] == name)
        .unwrap_or_else(|| panic!("no result {name:?}"))[1]
}

/// The env members workerd has no counterpart for, and the host clock, against fixed
/// expected outputs (`tests/conformance/pith/*.expected.json`; `${CODE_HASH}` stands for
/// the program's code hash). `CONFORMANCE_BLESS=1` rewrites the expected files.
#[test]
fn pith_env_members_match_fixed_outputs() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir().join("pith"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "js"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "Pith-only conformance programs missing");
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let src = source(file);
        let mut p = Program::new("conformance", src.clone());
        p.secrets = SECRETS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let code_hash = p.code_hash_hex();
        let o = common::run_with_host(p, Request::get("http://localhost/"), pith_host());
        let body = common::body(&o);
        let got: serde_json::Value = serde_json::from_str(&body).unwrap();
        let expected_path = file.with_extension("expected.json");
        let templated = serde_json::to_string_pretty(&got)
            .unwrap()
            .replace(&code_hash, "${CODE_HASH}")
            + "\n";
        if std::env::var_os("CONFORMANCE_BLESS").is_some() {
            std::fs::write(&expected_path, &templated).unwrap();
        }
        let want = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("missing {}", expected_path.display()));
        if want != templated {
            failures.push(format!(
                "{name}: differs from {}\n--- expected\n{want}\n--- got\n{templated}",
                expected_path.display()
            ));
        }
        let results = got.as_array().unwrap();
        match name.as_str() {
            "env_keys" => {
                // Digests computed independently with viem (hashMessage, hashTypedData).
                let addr = result(results, "address").as_str().unwrap().to_owned();
                let hello = "0x50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750";
                let bytes = "0x0be7deb6e7a189a6b66096dd0abc8ec63a7c7f59b2b0eebe395d60778a337908";
                let mail = "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2";
                assert_eq!(recover(hello, result(results, "sign string")), addr);
                assert_eq!(recover(bytes, result(results, "sign bytes")), addr);
                assert_eq!(recover(bytes, result(results, "sign ArrayBuffer")), addr);
                assert_eq!(recover(mail, result(results, "signTypedData Mail")), addr);
                assert_eq!(
                    recover(
                        mail,
                        result(results, "signTypedData without EIP712Domain type")
                    ),
                    addr
                );
            }
            "clock" => {
                assert_eq!(result(results, "Date.now").as_f64(), Some(FIXED_NOW_MS));
                assert_eq!(result(results, "new Date()").as_f64(), Some(FIXED_NOW_MS));
            }
            "env_program" => assert_eq!(result(results, "codeHash"), &serde_json::json!(code_hash)),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
