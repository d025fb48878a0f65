//! The network end to end, with real processes on loopback: `pith up` (anvil, KMS, two
//! simulated-TEE workers, gateway) → `pith deploy` → `pith call` (OHTTP through the gateway)
//! → `pith verify` (online and offline, and a tampered receipt refused) → an EVM contract
//! gets an oracle answer → Billing settles the usage → the operators' stake pools grow.
//! Program storage is shared by both workers and a tampered or rolled-back value is
//! refused; a replayed request and a request sealed to another program's key are refused.

mod common;

use std::time::Duration;

use alloy::primitives::{Address, Bytes, U256};
use common::{GUARD, Net, eventually, out_text, rt};
use pith_chain::client::{PithContracts, read_provider, signing_provider};

alloy::sol!(
    #[sol(rpc)]
    #[allow(missing_docs)]
    OracleConsumer,
    "../../contracts/artifacts/OracleConsumer.json"
);

alloy::sol! {
    struct PriceReport {
        string pair;
        uint256 price;
        uint256 timestamp;
    }
}

/// A local JSON server shaped like Coinbase's spot price API (ETH-USD 3456.789).
fn price_server() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let body = r#"{"data":{"base":"ETH","currency":"USD","amount":"3456.789"}}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// What the hostile gateway in front of the real one does to invocation answers.
const PASS: u8 = 0;
const FLIP_RESPONSE_BYTE: u8 = 1;
const EDIT_RECEIPT: u8 = 2;
const OLD_RECEIPT: u8 = 3;

/// A hostile gateway: forwards everything to `upstream`, and changes the answers of
/// `POST .../invoke` as `mode` says (a byte of the encrypted response, a field of the
/// receipt, or an older valid receipt in place of the new one).
fn hostile_gateway(
    rt: &tokio::runtime::Runtime,
    upstream: String,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
) -> String {
    use std::sync::atomic::Ordering;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let client = reqwest::Client::new();
    let old_receipt = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (client, upstream, mode, old_receipt) = (
            client.clone(),
            upstream.clone(),
            mode.clone(),
            old_receipt.clone(),
        );
        async move {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 24).await.unwrap();
            let url = format!(
                "{upstream}{}",
                parts.uri.path_and_query().map_or("/", |p| p.as_str())
            );
            let mut rb = client
                .request(parts.method.clone(), url)
                .body(bytes.to_vec());
            for (k, v) in &parts.headers {
                if k != "host" && k != "content-length" {
                    rb = rb.header(k, v);
                }
            }
            let resp = rb.send().await.unwrap();
            let status = resp.status();
            let mut headers = resp.headers().clone();
            let mut body = resp.bytes().await.unwrap().to_vec();
            if parts.uri.path().ends_with("/invoke") && status.is_success() {
                let receipt = headers
                    .get("pith-receipt")
                    .map(|v| v.to_str().unwrap().to_owned());
                match mode.load(Ordering::SeqCst) {
                    FLIP_RESPONSE_BYTE => {
                        let i = body.len() / 2;
                        body[i] ^= 0x01;
                    }
                    EDIT_RECEIPT => {
                        let mut r: pith_crypto::receipt::SignedReceipt = serde_json::from_slice(
                            &pith_api::from_b64url(receipt.as_deref().unwrap()).unwrap(),
                        )
                        .unwrap();
                        r.cpu_micros += 1_000_000; // bill the user for a second of CPU
                        headers.insert(
                            "pith-receipt",
                            pith_api::worker::encode_receipt(&r).parse().unwrap(),
                        );
                    }
                    OLD_RECEIPT => {
                        if let Some(old) = old_receipt.lock().unwrap().clone() {
                            headers.insert("pith-receipt", old.parse().unwrap());
                        }
                    }
                    _ => {}
                }
                if let Some(r) = receipt {
                    old_receipt.lock().unwrap().get_or_insert(r);
                }
            }
            headers.remove("content-length");
            headers.remove("transfer-encoding");
            let mut out = axum::response::Response::new(axum::body::Body::from(body));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            out
        }
    });
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A `pith proxy --program ID --port 0` child process.
struct Proxy {
    child: std::process::Child,
    addr: String,
}

impl Proxy {
    fn start(net: &Net, program: &str, gateway: Option<&str>) -> Self {
        Self::start_with(net, &["--program", program], gateway)
    }

    /// `pith proxy TARGET_ARGS --port 0`; waits for its "listening on" line.
    fn start_with(net: &Net, target: &[&str], gateway: Option<&str>) -> Self {
        use std::io::BufRead;
        let mut cmd = std::process::Command::new(common::pith_bin());
        cmd.arg("proxy")
            .args(target)
            .args(["--port", "0", "--dir"])
            .arg(net.path());
        if let Some(g) = gateway {
            cmd.args(["--gateway", g]);
        }
        let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 || line.contains("listening on http://") {
                break;
            }
        }
        // Keep draining its stdout so the proxy never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .unwrap_or_default()
            .to_owned();
        assert!(
            line.contains("listening on http://"),
            "pith proxy said {line:?}"
        );
        Self { child, addr }
    }

    /// One raw HTTP/1.1 exchange: (status, head, body).
    fn request(&self, raw: &str) -> (u16, String, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(GUARD)).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        // A proxy may break a connection off (an unverified stream): keep what arrived.
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let out = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, head.to_owned(), body.to_owned())
    }

    fn get(&self, path: &str) -> (u16, String, String) {
        self.request(&format!(
            "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
        ))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn program_u256(id: &serde_json::Value) -> U256 {
    let s = id.as_str().unwrap();
    if let Some(h) = s.strip_prefix("0x") {
        U256::from_str_radix(h, 16).unwrap()
    } else {
        s.parse().unwrap()
    }
}

#[test]
fn up_deploy_call_verify_oracle_billing_rewards() {
    // Workers serve the default model when it is installed (always under CI).
    let model = pith_testkit::model_path();
    let net = match &model {
        Some(m) => Net::up_with_model(m),
        None => Net::up(),
    };
    let rt = rt();

    // status: everything registered and healthy.
    let status = net.pith_json(&["status"]);
    assert!(status["chain"]["chain_id"].as_u64().is_some(), "{status}");
    assert!(status["chain"]["block"].as_u64().is_some(), "{status}");
    assert_eq!(status["kms"].as_array().unwrap().len(), 1, "{status}");
    assert_eq!(status["kms"][0]["registered"], true, "{status}");
    assert_eq!(status["kms"][0]["platform"], "simulated", "{status}");
    let workers = status["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{status}");
    for w in workers {
        assert_eq!(w["registered"], true, "{status}");
        assert_eq!(w["healthy"], true, "{status}");
        assert_eq!(w["platform"], "simulated", "{status}");
    }
    assert_eq!(status["gateway"]["healthy"], true, "{status}");

    let d = net.deployment();
    let reader = read_provider(&net.rpc()).unwrap();
    let chain = PithContracts::new(&d, reader.clone());
    let operators: Vec<Address> = (0..2).map(|i| net.signer(2 + i).address()).collect();
    let pool_value = |op: Address| {
        rt.block_on(async {
            let shares = chain.stake_pools.shares_of(op, op).await.unwrap();
            chain.stake_pools.value_of(op, shares).await.unwrap()
        })
    };
    let before: Vec<U256> = operators.iter().map(|o| pool_value(*o)).collect();

    // deploy hello with a deposit.
    let deployed = net.pith_json(&["deploy", "examples/hello", "--deposit", "100"]);
    let pid = deployed["program_id"].as_str().unwrap().to_owned();
    assert!(
        pid.starts_with("0x") && deployed["code_hash"].as_str().unwrap().starts_with("0x"),
        "{deployed}"
    );
    let program = program_u256(&deployed["program_id"]);
    let deposit0 = rt.block_on(chain.billing.deposit_of(program)).unwrap();
    assert!(deposit0 > U256::ZERO);

    // call through the gateway, several times so both workers serve.
    let archive = net.path().join("archive");
    let called = net.pith_json(&[
        "call",
        &pid,
        "--path",
        "/?name=e2e",
        "--save",
        archive.to_str().unwrap(),
    ]);
    assert_eq!(called["status"], 200, "{called}");
    assert_eq!(called["body"], "hello, e2e\n", "{called}");
    assert_eq!(called["verified"], true, "{called}");
    let receipt = called["receipt"].clone();
    let mut served_by = std::collections::BTreeSet::new();
    for i in 0..8 {
        let c = net.pith_json(&["call", &pid, "--path", &format!("/?name={i}")]);
        assert_eq!(c["body"], format!("hello, {i}\n"), "{c}");
        assert_eq!(c["verified"], true, "{c}");
        let r = c["receipt"].to_string().to_lowercase();
        for w in status["workers"].as_array().unwrap() {
            let a = w["address"].as_str().unwrap().to_lowercase();
            if r.contains(&a) {
                served_by.insert(a);
            }
        }
    }

    // verify: the saved receipt online, the archive offline, the worker by address.
    let receipt_file = net.path().join("receipt.json");
    std::fs::write(&receipt_file, serde_json::to_vec_pretty(&receipt).unwrap()).unwrap();
    let v = net.pith_json(&["verify", receipt_file.to_str().unwrap()]);
    assert_eq!(v["verified"], true, "{v}");
    let off = net.pith(&["verify", "--offline", archive.to_str().unwrap(), "--json"]);
    assert!(off.status.success(), "offline verify: {}", out_text(&off));
    let off: serde_json::Value = serde_json::from_slice(&off.stdout).unwrap();
    assert_eq!(off["verified"], true, "{off}");
    assert_eq!(off["offline"], true, "{off}");
    // the same archive with its receipt altered fails offline too.
    let bad_archive = net.path().join("archive-tampered");
    std::fs::create_dir_all(&bad_archive).unwrap();
    for e in std::fs::read_dir(&archive).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), bad_archive.join(e.file_name())).unwrap();
        } else {
            let sub = bad_archive.join(e.file_name());
            std::fs::create_dir_all(&sub).unwrap();
            for f in std::fs::read_dir(e.path()).unwrap().flatten() {
                std::fs::copy(f.path(), sub.join(f.file_name())).unwrap();
            }
        }
    }
    let mut r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bad_archive.join("receipt.json")).unwrap()).unwrap();
    tamper_one_hash(&mut r).unwrap();
    std::fs::write(
        bad_archive.join("receipt.json"),
        serde_json::to_vec(&r).unwrap(),
    )
    .unwrap();
    let off_bad = net.pith(&[
        "verify",
        "--offline",
        bad_archive.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        off_bad.status.code(),
        Some(1),
        "tampered archive: {}",
        out_text(&off_bad)
    );
    let worker_addr = status["workers"][0]["address"].as_str().unwrap();
    let vw = net.pith_json(&["verify", worker_addr]);
    assert_eq!(vw["verified"], true, "{vw}");

    // a tampered receipt fails verification (exit 1), whichever field is changed.
    let text = serde_json::to_string(&receipt).unwrap();
    let mut tampered: serde_json::Value = serde_json::from_str(&text).unwrap();
    let field = tamper_one_hash(&mut tampered).expect("a hash field to tamper with in the receipt");
    let bad_file = net.path().join("tampered.json");
    std::fs::write(&bad_file, serde_json::to_vec(&tampered).unwrap()).unwrap();
    let bad = net.pith(&["verify", bad_file.to_str().unwrap(), "--json"]);
    assert_eq!(
        bad.status.code(),
        Some(1),
        "tampered {field}: {}",
        out_text(&bad)
    );

    // a hostile gateway: a changed response, an edited receipt, an old receipt in place of
    // the new one all fail `pith call`'s verification (exit 1, or an error), never a
    // verified answer.
    let mode = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(PASS));
    let hostile = hostile_gateway(&rt, net.gateway(), mode.clone());
    let via = |name: &str| {
        net.pith(&[
            "call",
            &pid,
            "--path",
            &format!("/?name={name}"),
            "--gateway",
            &hostile,
            "--json",
        ])
    };
    let ok = via("honest");
    assert!(
        ok.status.success(),
        "through an honest proxy: {}",
        out_text(&ok)
    );
    for (m, what) in [
        (FLIP_RESPONSE_BYTE, "flipped response byte"),
        (EDIT_RECEIPT, "edited receipt"),
        (OLD_RECEIPT, "old receipt"),
    ] {
        mode.store(m, std::sync::atomic::Ordering::SeqCst);
        let o = via(what);
        assert!(!o.status.success(), "{what} accepted: {}", out_text(&o));
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
        assert_ne!(v["verified"], true, "{what}: {}", out_text(&o));
        eprintln!(
            "{what}: exit {:?}; {}{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).trim(),
            v["checks"]
                .as_array()
                .map(|c| c
                    .iter()
                    .filter(|c| c["ok"] == false)
                    .map(|c| format!(" failed {}", c["name"]))
                    .collect::<String>())
                .unwrap_or_default()
        );
    }

    // env.ai: a program asks the workers' model; the receipt names the model's file hash,
    // and `pith verify` finds that hash bound in the serving worker's registered evidence.
    if let Some(model) = &model {
        let file_hash = format!(
            "0x{}",
            hex::encode(pith_crypto::sha256(&std::fs::read(model).unwrap()))
        );
        let src = net.path().join("ask.js");
        std::fs::write(
            &src,
            "export default { async fetch(req, env) { const r = await env.ai.chat({ messages: [{ role: 'user', content: 'Name one colour.' }], max_tokens: 8 }); return new Response(JSON.stringify(r)); } };",
        )
        .unwrap();
        let asker = net.pith_json(&["deploy", src.to_str().unwrap(), "--deposit", "10"]);
        let aid = asker["program_id"].as_str().unwrap().to_owned();
        let c = net.pith_json(&["call", &aid]);
        assert_eq!(c["verified"], true, "{c}");
        let answer: serde_json::Value = serde_json::from_str(c["body"].as_str().unwrap()).unwrap();
        assert_eq!(answer["model_hash"], file_hash.as_str(), "{answer}");
        assert_eq!(c["receipt"]["modelHash"], file_hash.as_str(), "{c}");
        let ai_receipt = net.path().join("ai-receipt.json");
        std::fs::write(&ai_receipt, serde_json::to_vec(&c["receipt"]).unwrap()).unwrap();
        let v = net.pith_json(&["verify", ai_receipt.to_str().unwrap()]);
        assert_eq!(v["verified"], true, "{v}");
        let checks = v["checks"].as_array().unwrap();
        assert!(
            checks
                .iter()
                .any(|k| k["name"] == "model" && k["ok"] == true),
            "{v}"
        );
    }

    // pith proxy: plain HTTP in, an encrypted call through the gateway out, the answer
    // passed on only with a verified receipt; through the hostile gateway it is withheld.
    mode.store(PASS, std::sync::atomic::Ordering::SeqCst);
    let honest = Proxy::start(&net, &pid, None);
    let (code, head, body) = honest.get("/?name=proxy&x=1");
    assert_eq!((code, body.as_str()), (200, "hello, proxy\n"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("\npith-receipt: "),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );
    let (code, _, body) =
        honest.request("GET / HTTP/1.1\r\nhost: x\r\npith-expiry: 1\r\nconnection: close\r\n\r\n");
    assert_eq!(code, 400, "a reserved pith-* header: {body}");
    let via_hostile = Proxy::start(&net, &pid, Some(&hostile));
    for (m, what) in [
        (FLIP_RESPONSE_BYTE, "flipped response byte"),
        (EDIT_RECEIPT, "edited receipt"),
        (OLD_RECEIPT, "old receipt"),
    ] {
        mode.store(m, std::sync::atomic::Ordering::SeqCst);
        let (code, _, body) = via_hostile.get("/?name=hostile");
        assert_eq!(code, 502, "{what} passed on: {body}");
        assert!(
            !body.contains("hello, hostile"),
            "{what}: the answer leaked: {body}"
        );
    }
    mode.store(PASS, std::sync::atomic::Ordering::SeqCst);
    drop((honest, via_hostile));

    // Inference: the workers' model as an OpenAI-compatible API. The npm `openai` client,
    // unchanged, through `pith proxy --inference`: the model list, a completion, the same
    // prompt streamed (greedy: the same text), and a refused model name.
    if let Some(model) = &model {
        let file_hash = pith_crypto::sha256(&std::fs::read(model).unwrap());
        let dep = net.pith_json(&["deploy", "examples/inference", "--deposit", "10"]);
        assert!(dep["program_id"].is_string(), "{dep}");
        let kept = net.path().join("kept-receipts");
        let proxy = Proxy::start_with(
            &net,
            &["--inference", "--receipts", kept.to_str().unwrap()],
            None,
        );
        let client_dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/openai-client");
        assert!(
            client_dir.join("node_modules/openai").exists(),
            "the npm openai client is not installed: run scripts/install.d/openai-client"
        );
        let out = std::process::Command::new("node")
            .arg(client_dir.join("check.mjs"))
            .arg(format!("http://{}/v1", proxy.addr))
            .output()
            .unwrap();
        assert!(out.status.success(), "openai client: {}", out_text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v["models"],
            serde_json::json!(["SmolLM2-135M-Instruct"]),
            "{v}"
        );
        let text = v["whole"]["text"].as_str().unwrap();
        assert!(!text.is_empty(), "{v}");
        assert_eq!(
            v["streamed"]["text"], text,
            "greedy stream differs from the completion: {v}"
        );
        assert!(v["streamed"]["chunks"].as_u64().unwrap() >= 3, "{v}");
        assert!(
            v["streamed"]["usage"]["completion_tokens"]
                .as_u64()
                .unwrap()
                >= 1,
            "{v}"
        );
        assert_eq!(v["whole"]["usage"], v["streamed"]["usage"], "{v}");
        // Billing: the worker's usage batches carry the tokens of both completions (at least:
        // the hostile-gateway stream below may add some), charged at the token price.
        let tokens = |u: &serde_json::Value| {
            u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
        };
        let want = tokens(&v["whole"]["usage"]) + tokens(&v["streamed"]["usage"]);
        let inference = program_u256(&dep["program_id"]);
        eventually(
            "the inference program's tokens settled in Billing",
            GUARD,
            || {
                let got = rt.block_on(settled_tokens(&chain, inference));
                (got >= want).then_some(())
            },
        );
        assert!(rt.block_on(chain.billing.prices()).unwrap().perAiToken > 0);
        assert_eq!(
            v["whole"]["fingerprint"],
            format!("pith-{}", hex::encode(&file_hash[..8])),
            "{v}"
        );
        assert_eq!(v["refused"]["status"], 404, "{v}");

        // A plain completion through the proxy carries its receipt, naming the model file.
        let body = r#"{"model":"SmolLM2-135M-Instruct","messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"temperature":0}"#;
        let post = |p: &Proxy, body: &str| {
            p.request(&format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            ))
        };
        let (code, head, resp) = post(&proxy, body);
        assert_eq!(code, 200, "{head}\n{resp}");
        let receipt_b64 = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("pith-receipt: ")
                    .map(|_| l[14..].trim().to_owned())
            })
            .expect("receipt header");
        let r: pith_crypto::receipt::SignedReceipt =
            serde_json::from_slice(&pith_api::from_b64url(&receipt_b64).unwrap()).unwrap();
        assert_eq!(r.model_hash.0, file_hash);
        // `pith verify` ties it to the model bound in the serving worker's evidence.
        let inf_receipt = net.path().join("inference-receipt.json");
        std::fs::write(&inf_receipt, serde_json::to_vec(&r).unwrap()).unwrap();
        let v = net.pith_json(&["verify", inf_receipt.to_str().unwrap()]);
        assert_eq!(v["verified"], true, "{v}");
        assert!(
            v["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["name"] == "model" && k["ok"] == true),
            "{v}"
        );

        // A streamed answer's receipt travels inside the stream: `--receipts` keeps it, and
        // `pith verify` checks it like any other.
        let before = std::fs::read_dir(&kept).unwrap().count();
        let streamed_hi = r#"{"model":"SmolLM2-135M-Instruct","messages":[{"role":"user","content":"Hello"}],"max_tokens":8,"temperature":0,"stream":true}"#;
        let (code, _, resp) = post(&proxy, streamed_hi);
        assert!(code == 200 && resp.contains("[DONE]"), "{code} {resp}");
        let files: Vec<_> = std::fs::read_dir(&kept)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), before + 1, "one more receipt kept: {files:?}");
        let mut newest = files.clone();
        newest.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
        let v = net.pith_json(&["verify", newest.last().unwrap().to_str().unwrap()]);
        assert_eq!(v["verified"], true, "{v}");

        // Through the hostile gateway: a flipped byte of the encrypted stream never reaches
        // the client as a complete answer (502, or a stream broken off before [DONE]).
        let via_hostile = Proxy::start_with(&net, &["--inference"], Some(&hostile));
        let streamed = r#"{"model":"SmolLM2-135M-Instruct","messages":[{"role":"user","content":"Hi"}],"max_tokens":16,"temperature":0,"stream":true}"#;
        let (code, _, resp) = post(&via_hostile, streamed);
        assert_eq!(code, 200, "honest relay: {resp}");
        assert!(resp.contains("[DONE]"), "{resp}");
        mode.store(FLIP_RESPONSE_BYTE, std::sync::atomic::Ordering::SeqCst);
        let (code, _, resp) = post(&via_hostile, streamed);
        assert!(
            code == 502 || !resp.contains("[DONE]"),
            "a tampered stream passed for complete: {code} {resp}"
        );
        mode.store(PASS, std::sync::atomic::Ordering::SeqCst);
        drop((proxy, via_hostile));
    }

    // the price oracle: its fetch() reaches a local JSON server (on the owner-signed
    // egress allow-list), and an EVM contract asks it through OracleAnchor.
    let price_server = price_server();
    let price_url = format!("http://{price_server}/v2/prices/ETH-USD/spot");
    let oracle = net.pith_json(&[
        "deploy",
        "examples/price-oracle",
        "--secret",
        &format!("PRICE_URL={price_url}"),
        "--allow-host",
        &price_server.to_string(),
        "--deposit",
        "100",
    ]);
    let oracle_program = program_u256(&oracle["program_id"]);
    // the same program without the allow-list is refused egress (EgressDenied, 500).
    let closed = net.pith_json(&[
        "deploy",
        "examples/price-oracle",
        "--secret",
        &format!("PRICE_URL={price_url}"),
    ]);
    let denied = net.pith(&["call", closed["program_id"].as_str().unwrap(), "--json"]);
    assert!(
        String::from_utf8_lossy(&denied.stdout).contains("egress"),
        "no allow-list, no egress: {}",
        out_text(&denied)
    );
    let developer = net.signer(1);
    let dev_provider = signing_provider(&net.rpc(), developer.clone()).unwrap();
    let answer = rt.block_on(async {
        let consumer = OracleConsumer::deploy(dev_provider.clone(), d.contracts.oracle_anchor)
            .await
            .unwrap();
        let fee = chain.oracle_anchor.min_fee().await.unwrap();
        if fee > 0 {
            let pha = PithContracts::new(&d, dev_provider.clone());
            pha.pha
                .send_approve(*consumer.address(), U256::from(fee))
                .await
                .unwrap();
        }
        let gas = chain.oracle_anchor.max_callback_gas().await.unwrap();
        let tx = consumer
            .ask(oracle_program, Bytes::from_static(b"ETH-USD"), gas, fee)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(tx.status(), "ask reverted");
        let id = consumer.lastRequestId().call().await.unwrap();
        let deadline = tokio::time::Instant::now() + GUARD;
        loop {
            let r = consumer.results(id).call().await.unwrap();
            if !r.is_empty() {
                break r;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "oracle request {id} never answered:\n{}",
                net.logs()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_else(|e| {
        panic!(
            "oracle answer is not JSON ({e}): {}",
            String::from_utf8_lossy(&answer)
        )
    });
    assert_eq!(answer["report"]["pair"], "ETH-USD", "{answer}");
    assert_eq!(answer["report"]["price"], "345678900000", "{answer}");
    // the report is signed by the program's derived key (EIP-712 PriceReport).
    let report = PriceReport {
        pair: "ETH-USD".into(),
        price: U256::from(345_678_900_000u64),
        timestamp: answer["report"]["timestamp"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    };
    let domain = alloy::sol_types::eip712_domain! { name: "PithPriceOracle", version: "1", chain_id: 31337, };
    let digest = alloy::sol_types::SolStruct::eip712_signing_hash(&report, &domain);
    let sig: alloy::primitives::Signature = answer["signature"].as_str().unwrap().parse().unwrap();
    let signer = sig.recover_address_from_prehash(&digest).unwrap();
    assert_eq!(
        format!("{signer:#x}"),
        answer["signer"].as_str().unwrap().to_lowercase(),
        "{answer}"
    );

    // env.chain from the program's own address: deployed with --fund, it reads the PHA
    // token (eth_call) and sends ETH to an address the caller names; the transaction is
    // from the program's address.
    let chain_js = net.path().join("chain.js");
    std::fs::write(
        &chain_js,
        r#"export default {
  async fetch(request, env) {
    const to = new URL(request.url).searchParams.get("to");
    const supply = await env.chain.call({ to: env.secrets.PHA, data: "0x18160ddd" });
    const tx = await env.chain.sendTransaction({ to, value: "1000000000000000" });
    return Response.json({ supply, tx });
  },
};
"#,
    )
    .unwrap();
    let chainy = net.pith_json(&[
        "deploy",
        chain_js.to_str().unwrap(),
        "--secret",
        &format!("PHA={:#x}", d.contracts.pha),
        "--fund",
        "1",
    ]);
    let program_address: Address = chainy["program_address"].as_str().unwrap().parse().unwrap();
    let recipient = Address::repeat_byte(0x5e);
    let called = net.pith_json(&[
        "call",
        chainy["program_id"].as_str().unwrap(),
        "--path",
        &format!("/?to={recipient:#x}"),
    ]);
    assert_eq!(called["status"], 200, "{called}");
    let out: serde_json::Value = serde_json::from_str(called["body"].as_str().unwrap()).unwrap();
    let supply =
        U256::from_str_radix(out["supply"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert!(supply > U256::ZERO, "{out}");
    let tx_hash: alloy::primitives::B256 = out["tx"].as_str().unwrap().parse().unwrap();
    let (from, got) = rt.block_on(async {
        use alloy::providers::Provider;
        let deadline = tokio::time::Instant::now() + GUARD;
        loop {
            if let Some(r) = reader.get_transaction_receipt(tx_hash).await.unwrap() {
                break (r.from, reader.get_balance(recipient).await.unwrap());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "program transaction {tx_hash} never mined"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    assert_eq!(
        from, program_address,
        "the transaction is from the program's own address"
    );
    assert_eq!(got, U256::from(1_000_000_000_000_000u64));

    // Billing settles the usage: a usage batch from a worker, the deposit charged.
    eventually("usage settled in Billing", GUARD, || {
        rt.block_on(async {
            let charged = chain.billing.deposit_of(program).await.unwrap() < deposit0;
            let mut nonces = 0;
            for w in status["workers"].as_array().unwrap() {
                let a: Address = w["address"].as_str().unwrap().parse().unwrap();
                nonces += chain.billing.next_usage_nonce(a).await.unwrap();
            }
            (charged && nonces > 0).then_some(())
        })
    });
    // ... and the operators' stake pools earned from it.
    eventually("stake rewards in an operator pool", GUARD, || {
        let after: Vec<U256> = operators.iter().map(|o| pool_value(*o)).collect();
        after.iter().zip(&before).any(|(a, b)| a > b).then_some(())
    });
    assert_eq!(
        served_by.len(),
        2,
        "the gateway spreads calls over both workers: {served_by:?}"
    );
}

/// Model tokens of `program` in the usage batches settled so far (the `submitUsage` calldata
/// of every `UsageSettled` log).
async fn settled_tokens(chain: &PithContracts, program: U256) -> u64 {
    use alloy::consensus::Transaction;
    use alloy::providers::Provider;
    use alloy::sol_types::{SolCall, SolEvent};
    use pith_chain::bindings::Billing;
    let filter = alloy::rpc::types::Filter::new()
        .address(chain.billing.address())
        .event_signature(Billing::UsageSettled::SIGNATURE_HASH)
        .from_block(0);
    let mut tokens = 0;
    for log in chain.provider().get_logs(&filter).await.unwrap() {
        let tx = chain
            .provider()
            .get_transaction_by_hash(log.transaction_hash.unwrap())
            .await
            .unwrap()
            .unwrap();
        let call = Billing::submitUsageCall::abi_decode(tx.inner.input()).unwrap();
        tokens += call
            .batch
            .entries
            .iter()
            .filter(|e| e.programId == program)
            .map(|e| e.aiTokens)
            .sum::<u64>();
    }
    tokens
}

/// Change one 32-byte hex field of a receipt (response hash, request hash or code hash).
fn tamper_one_hash(v: &mut serde_json::Value) -> Option<String> {
    fn walk(v: &mut serde_json::Value, path: &str) -> Option<String> {
        match v {
            serde_json::Value::Object(m) => {
                for key in [
                    "responseHash",
                    "response_hash",
                    "requestHash",
                    "request_hash",
                    "codeHash",
                    "code_hash",
                ] {
                    if let Some(serde_json::Value::String(s)) = m.get_mut(key)
                        && s.len() == 66
                    {
                        let last = s.pop().unwrap();
                        s.push(if last == '0' { '1' } else { '0' });
                        return Some(format!("{path}.{key}"));
                    }
                }
                for (k, child) in m.iter_mut() {
                    if let Some(p) = walk(child, &format!("{path}.{k}")) {
                        return Some(p);
                    }
                }
                None
            }
            _ => None,
        }
    }
    walk(v, "receipt")
}
