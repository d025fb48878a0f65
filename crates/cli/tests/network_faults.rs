//! The network's storage, refusals and faults, with real processes on loopback:
//! program storage shared by both workers, a tampered and a rolled-back value refused; a
//! replayed request and a request sealed to another program's key refused; a worker whose
//! measurement is not allowed gets no registration and no keys; kill -9 of a worker under
//! load (the gateway fails over, only in-flight requests fail, the worker rejoins); kill -9
//! of the KMS (workers keep serving; it comes back with its sealed master key); `pith up`
//! stopped and started again (anvil from its saved state): nothing is lost.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use alloy::primitives::B256;
use common::{GUARD, Net, eventually, out_text, rt};
use pith_api::ErrorKind;
use pith_crypto::envelope::{ClientSession, Request};
use pith_worker::storage::{SqliteStore, Store};

use pith_testkit::now;

fn request(path: &str, headers: Vec<(String, String)>) -> Request {
    let mut nonce = [0u8; 16];
    getrandom::getrandom(&mut nonce).unwrap();
    Request::new("GET", path, headers, Vec::new(), nonce, now() + 60)
}

fn count_call(net: &Net, pid: &str) -> (serde_json::Value, std::process::Output) {
    let o = net.pith(&[
        "call",
        pid,
        "--path",
        "/count/alice",
        "--header",
        "authorization: Bearer t",
        "--json",
    ]);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (v, o)
}

fn id_b256(pid: &str) -> B256 {
    pid.parse().unwrap()
}

/// One encrypted request straight to a worker (not through the gateway): status and body.
fn direct(
    rt: &tokio::runtime::Runtime,
    net: &Net,
    worker_url: &str,
    program: &str,
    path: &str,
) -> (u16, String) {
    let gw = pith_api::gateway::Client::new(&net.gateway()).unwrap();
    rt.block_on(async {
        let (keys, _) = gw.ohttp_keys(id_b256(program)).await.unwrap();
        let req = request(path, vec![("authorization".into(), "Bearer t".into())]);
        let (wire, session) = ClientSession::encapsulate(&keys, &req).unwrap();
        let inv = pith_api::worker::Client::new(worker_url)
            .invoke(id_b256(program), wire)
            .await
            .unwrap();
        let (resp, _) = session.decapsulate(&inv.ohttp_res).unwrap();
        (
            resp.status,
            String::from_utf8_lossy(&resp.body).into_owned(),
        )
    })
}

/// The identity address a `pith worker` printed at start (`pith worker 0x.. listening`).
fn rogue_address(log: &str) -> String {
    let l = log
        .lines()
        .find(|l| l.starts_with("pith worker 0x"))
        .unwrap_or_else(|| panic!("no start line in {log}"));
    l.split_whitespace().nth(2).unwrap().to_lowercase()
}

/// The URL of the worker with identity `address` (network.json).
fn worker_url(net: &Net, address: &str) -> String {
    let nf = net.network();
    let w = nf["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["address"].as_str().unwrap().eq_ignore_ascii_case(address));
    w.unwrap_or_else(|| panic!("no worker {address} in {nf}"))["url"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn storage_refusals_and_faults() {
    let mut net = Net::up();
    let rt = rt();
    let kv = net.pith_json(&[
        "deploy",
        "examples/secrets-kv",
        "--secret",
        "TOKEN=t",
        "--deposit",
        "100",
    ]);
    let kv_id = kv["program_id"].as_str().unwrap().to_owned();
    let hello = net.pith_json(&["deploy", "examples/hello", "--deposit", "100"]);
    let hello_id = hello["program_id"].as_str().unwrap().to_owned();

    // ---- storage shared by both workers: the counter goes up whichever worker serves.
    let workers: Vec<String> = net.network()["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["address"].as_str().unwrap().to_lowercase())
        .collect();
    let mut served = std::collections::BTreeSet::new();
    for expected in 1..=6u64 {
        let (v, o) = count_call(&net, &kv_id);
        assert!(o.status.success(), "{}", out_text(&o));
        let body: serde_json::Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["count"], expected, "{v}");
        let r = v["receipt"].to_string().to_lowercase();
        served.extend(workers.iter().filter(|w| r.contains(w.as_str())).cloned());
    }
    assert_eq!(
        served.len(),
        2,
        "both workers served the counter: {served:?}"
    );

    // ---- a rolled-back value (an older, validly sealed version) is refused.
    let store = SqliteStore::open(&net.path().join("storage.sqlite")).unwrap();
    let program = id_b256(&kv_id).0;
    let old = rt
        .block_on(store.get(&program, "count/alice"))
        .unwrap()
        .expect("the counter row");
    let (v, o) = count_call(&net, &kv_id);
    assert!(o.status.success(), "{}", out_text(&o));
    assert!(v["body"].as_str().unwrap().contains("\"count\":7"), "{v}");
    // The worker that wrote version 7 holds that high-water mark inside its TEE and refuses
    // the older row. (The other worker last saw an older version: a rollback to a version
    // it has not passed yet is the documented window, docs/protocol.md.)
    let newest = worker_url(&net, v["receipt"]["worker"].as_str().unwrap());
    store
        .danger_overwrite(&program, "count/alice", &old)
        .unwrap();
    for _ in 0..2 {
        let (status, body) = direct(&rt, &net, &newest, &kv_id, "/count/alice");
        assert!(
            status == 500 && body.contains("storage_integrity") && body.contains("rolled back"),
            "rollback not refused: {status} {body}"
        );
    }
    // ---- tampered bytes are refused by every worker.
    let mut t = old.clone();
    let last = t.sealed.len() - 1;
    t.sealed[last] ^= 1;
    t.version += 10;
    store.danger_overwrite(&program, "count/alice", &t).unwrap();
    for w in &workers {
        let (status, body) = direct(&rt, &net, &worker_url(&net, w), &kv_id, "/count/alice");
        assert!(
            status == 500 && body.contains("storage_integrity"),
            "tamper not refused by {w}: {status} {body}"
        );
    }
    // ... and through the CLI the refusal is a clear error.
    let (v, o) = count_call(&net, &kv_id);
    let text = format!("{v}{}", out_text(&o));
    assert!(
        text.contains("storage_integrity"),
        "tamper not refused: {text}"
    );

    // ---- replay, and a request sealed to another program's key.
    let gw = pith_api::gateway::Client::new(&net.gateway()).unwrap();
    rt.block_on(async {
        let (hello_keys, _) = gw.ohttp_keys(id_b256(&hello_id)).await.unwrap();
        let (wire, _session) =
            ClientSession::encapsulate(&hello_keys, &request("/?name=r", vec![])).unwrap();
        // straight to one worker twice: the second is a replay.
        let w0 = net.network()["workers"][0]["url"]
            .as_str()
            .unwrap()
            .to_owned();
        let wc = pith_api::worker::Client::new(&w0);
        wc.invoke(id_b256(&hello_id), wire.clone()).await.unwrap();
        let e = wc
            .invoke(id_b256(&hello_id), wire.clone())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), Some(ErrorKind::Replay), "{e}");
        // through the gateway: at most one more worker may still run it (the documented
        // window is one run per worker), then every copy is refused as a replay.
        let mut replays = 0;
        for _ in 0..3 {
            if let Err(e) = gw.invoke(id_b256(&hello_id), wire.clone()).await {
                assert_eq!(e.kind(), Some(ErrorKind::Replay), "{e}");
                replays += 1;
            }
        }
        assert!(
            replays >= 2,
            "replays through the gateway refused: {replays} of 3"
        );

        // hello's key configuration used for the kv program: a clear refusal.
        let (wire, _) =
            ClientSession::encapsulate(&hello_keys, &request("/count/x", vec![])).unwrap();
        let e = gw.invoke(id_b256(&kv_id), wire).await.unwrap_err();
        assert_eq!(
            e.kind(),
            Some(ErrorKind::DecryptFailed),
            "wrong program key: {e:?}"
        );
    });

    // ---- a WebAssembly component through the network: deployed like JavaScript, run by
    // either worker, with the program's sealed storage, derived key, secrets and id.
    let wasm = common::wasm_component(net.path(), "host_api");
    let w = net.pith_json(&[
        "deploy",
        wasm.to_str().unwrap(),
        "--secret",
        "token=s3cret",
        "--deposit",
        "10",
    ]);
    let w_id = w["program_id"].as_str().unwrap().to_owned();
    let mut addresses = std::collections::BTreeSet::new();
    let mut served = std::collections::BTreeSet::new();
    for i in 0..6 {
        let c = net.pith_json(&["call", &w_id, "--path", &format!("/kv-{i}")]);
        assert_eq!(c["status"], 200, "{c}");
        assert_eq!(c["verified"], true, "{c}");
        let body = match c["body_base64"].as_str() {
            Some(b) => pith_api::from_b64url(b).unwrap(), // base64url, no padding (docs/protocol.md)
            None => c["body"].as_str().unwrap().as_bytes().to_vec(),
        };
        let path = format!("/kv-{i}");
        assert!(body.starts_with(path.as_bytes()), "{c}");
        let rest = &body[path.len()..];
        // public key (33), address (20), signature (65), secret, program id
        assert!(rest.len() > 118, "{c}");
        addresses.insert(hex::encode(&rest[33..53]));
        let tail = String::from_utf8_lossy(&rest[118..]).into_owned();
        assert_eq!(tail, format!("s3cret{}", w_id.to_lowercase()), "{c}");
        served.insert(c["receipt"]["worker"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        addresses.len(),
        1,
        "one derived key whichever worker runs the component: {addresses:?}"
    );
    assert_eq!(
        served.len(),
        2,
        "both workers ran the component: {served:?}"
    );
    let row = rt
        .block_on(store.get(&id_b256(&w_id).0, "k"))
        .unwrap()
        .expect("the component's kv row");
    assert!(
        row.version >= 6,
        "each call wrote the shared row: version {}",
        row.version
    );
    assert!(
        !row.sealed.windows(5).any(|w| w == b"/kv-5"),
        "the stored value is sealed, not plain text"
    );

    // ---- a worker whose measurement is not allowed gets no registration and no keys.
    {
        let other = net.path().join("pith-other");
        let mut bin = std::fs::read(common::pith_bin()).unwrap();
        bin.extend_from_slice(b"\0pith: a different build\0");
        std::fs::write(&other, bin).unwrap();
        std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let nf = net.network();
        let log = std::fs::File::create(net.path().join("logs/rogue.log")).unwrap();
        let mut rogue = std::process::Command::new(&other)
            .args(["worker", "--dir"])
            .arg(net.path().join("rogue"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--rpc",
                nf["rpc_url"].as_str().unwrap(),
                "--deployment",
            ])
            .arg(net.path().join("deployment.json"))
            .args([
                "--kms",
                nf["kms"][0]["url"].as_str().unwrap(),
                "--gateway",
                nf["gateway_url"].as_str().unwrap(),
                "--operator-key-file",
            ])
            .arg(net.key_file(2))
            .arg("--dev-ca")
            .arg(net.path().join("dev-ca"))
            .arg("--storage")
            .arg(net.path().join("storage.sqlite"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let rogue_log = net.path().join("logs/rogue.log");
        let refusal = eventually("the rogue worker is refused by the KMS", GUARD, || {
            let text = std::fs::read_to_string(&rogue_log).unwrap_or_default();
            (text.contains("measurement")
                && (text.contains("not allowed") || text.contains("refused")))
            .then_some(text)
        });
        eprintln!("rogue worker log:\n{refusal}");
        // it gets no program keys either: asked to run hello (whose keys the KMS releases
        // only to workers passing the policy), it cannot decrypt anything.
        let rogue_err = rt.block_on(async {
            let gw = pith_api::gateway::Client::new(&net.gateway()).unwrap();
            let (keys, _) = gw.ohttp_keys(id_b256(&hello_id)).await.unwrap();
            let (wire, _) =
                ClientSession::encapsulate(&keys, &request("/?name=rogue", vec![])).unwrap();
            pith_api::worker::Client::new(&format!("http://127.0.0.1:{port}"))
                .invoke(id_b256(&hello_id), wire)
                .await
                .unwrap_err()
        });
        eprintln!("rogue worker asked to run hello: {rogue_err}");
        let e = rogue_err.to_string();
        assert!(
            e.contains("KMS refused key release") && e.contains("not allowed"),
            "{e}"
        );
        let kms_log =
            std::fs::read_to_string(net.path().join("logs/kms-0.log")).unwrap_or_default();
        assert!(
            !kms_log
                .lines()
                .any(|l| l.contains("released")
                    && l.to_lowercase().contains(&rogue_address(&refusal))),
            "the KMS released keys to the rogue worker"
        );
        let status = net.pith_json(&["status"]);
        assert_eq!(
            status["workers"].as_array().unwrap().len(),
            2,
            "{status}\n{refusal}"
        );
        let _ = rogue.kill();
        let _ = rogue.wait();
        let text = std::fs::read_to_string(&rogue_log).unwrap_or_default();
        assert!(!text.contains("registered on chain"), "{text}");
    }

    // ---- kill -9 one worker under load: only in-flight requests fail, it rejoins.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    const CALLERS: usize = 3;
    let mut load = Vec::new();
    for _ in 0..CALLERS {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let dir = net.path().to_owned();
        let hello_id = hello_id.clone();
        load.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let o = std::process::Command::new(common::pith_bin())
                    .args([
                        "call",
                        &hello_id,
                        "--path",
                        "/?name=load",
                        "--json",
                        "--dir",
                    ])
                    .arg(&dir)
                    .output()
                    .unwrap();
                if o.status.success() {
                    ok.fetch_add(1, Ordering::Relaxed)
                } else {
                    failed.fetch_add(1, Ordering::Relaxed)
                };
            }
        }));
    }
    eventually("load running", GUARD, || {
        (ok.load(Ordering::Relaxed) >= 3).then_some(())
    });
    let killed = net.kill9("worker-0");
    let ok_at_kill = ok.load(Ordering::Relaxed);
    net.wait_line(|l| l.contains("worker-0") && l.contains("restarted"), GUARD)
        .expect("worker-0 restarted by pith up");
    eventually("worker-0 rejoins (healthy at the gateway)", GUARD, || {
        let s = net.pith_json(&["status"]);
        s["workers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["healthy"] == true && w["registered"] == true)
            .then_some(())
    });
    eventually("calls keep succeeding after the restart", GUARD, || {
        (ok.load(Ordering::Relaxed) >= ok_at_kill + 6).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    let failed = failed.load(Ordering::Relaxed);
    eprintln!(
        "kill -9 worker-0 under load: {failed} failed, {} ok ({ok_at_kill} before the kill)",
        ok.load(Ordering::Relaxed)
    );
    assert!(
        failed <= CALLERS,
        "only requests in flight at the kill may fail: {failed} failed (pid {killed}), {} ok",
        ok.load(Ordering::Relaxed)
    );

    // ---- kill -9 the KMS: the workers keep serving with their keys; it comes back with
    // its sealed master key (same identity, same epoch).
    let kms_url = net.network()["kms"][0]["url"].as_str().unwrap().to_owned();
    let get_json = |url: String| -> Option<serde_json::Value> {
        rt.block_on(async {
            serde_json::from_slice(
                &reqwest::get(url)
                    .await
                    .ok()?
                    .error_for_status()
                    .ok()?
                    .bytes()
                    .await
                    .ok()?,
            )
            .ok()
        })
    };
    let hello_key_url = format!("{kms_url}/v1/kms/programs/{hello_id}/key");
    let info_before = get_json(format!("{kms_url}/v1/kms/info")).expect("KMS info");
    let key_before = get_json(hello_key_url.clone()).expect("hello's key from the KMS");
    assert!(info_before["epoch"].is_u64(), "{info_before}");
    net.kill9("kms-0");
    assert!(
        get_json(format!("{kms_url}/v1/kms/info")).is_none(),
        "the KMS is down"
    );
    // `pith up` restarts it after PITH_UP_RESTART_DELAY (3 s here): meanwhile both workers
    // keep serving with the keys they hold.
    for i in 0..4 {
        let c = net.pith_json(&["call", &hello_id, "--path", &format!("/?name=nokms{i}")]);
        assert_eq!(c["body"], format!("hello, nokms{i}\n"), "{c}");
        assert_eq!(c["verified"], true, "{c}");
    }
    net.wait_line(|l| l.contains("kms-0") && l.contains("restarted"), GUARD)
        .expect("kms-0 restarted by pith up");
    let info_after = eventually("the KMS answers again", GUARD, || {
        get_json(format!("{kms_url}/v1/kms/info"))
    });
    assert_eq!(
        info_before["address"], info_after["address"],
        "same sealed identity"
    );
    assert_eq!(
        info_before["epoch"], info_after["epoch"],
        "same master key epoch"
    );
    // same master key: the program key it derives is the same key configuration.
    // (it answers /info at once; program keys once it has read the chain again)
    let key_after = eventually("hello's key after the restart", GUARD, || {
        get_json(hello_key_url.clone())
    });
    assert_eq!(
        key_before["ohttp_keys"], key_after["ohttp_keys"],
        "program key changed across the KMS restart"
    );
    assert_eq!(
        key_before["certificate"]["key_config_hash"],
        key_after["certificate"]["key_config_hash"]
    );
    // and it serves new work: a program deployed now gets its keys and runs.
    let fresh = net.pith_json(&["deploy", "examples/hello", "--deposit", "1"]);
    let c = net.pith_json(&[
        "call",
        fresh["program_id"].as_str().unwrap(),
        "--path",
        "/?name=fresh",
    ]);
    assert_eq!(c["body"], "hello, fresh\n", "{c}");

    // ---- stop anvil (SIGTERM: it saves its state) and let `pith up` restart it from the
    // file: the chain, the programs and their deposits are still there, and the network
    // keeps working.
    let deposit_before = net.pith_json(&["programs", "show", &kv_id]);
    let block_before = net.pith_json(&["status"])["chain"]["block"]
        .as_u64()
        .unwrap();
    let anvil = net.pid("anvil").expect("anvil pid");
    assert!(
        std::process::Command::new("kill")
            .arg("-TERM")
            .arg(anvil.to_string())
            .status()
            .unwrap()
            .success()
    );
    net.wait_line(|l| l.contains("anvil exited"), GUARD)
        .expect("pith up saw anvil exit");
    let status = eventually("the chain answers again", GUARD, || {
        let o = net.pith(&["status", "--json"]);
        let s: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        (s["chain"]["block"].as_u64()? >= block_before).then_some(s)
    });
    assert!(
        status["workers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["registered"] == true),
        "{status}"
    );
    assert_eq!(
        net.pith_json(&["programs", "show", &kv_id]),
        deposit_before,
        "program state lost across the anvil restart"
    );
    let c = eventually("calls work after the anvil restart", GUARD, || {
        let o = net.pith(&["call", &hello_id, "--path", "/?name=chain", "--json"]);
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .ok()
            .filter(|_| o.status.success())
    });
    assert_eq!(c["body"], "hello, chain\n", "{c}");

    // ---- stop everything and start again from DIR: anvil resumes from its saved state,
    // the programs, their storage and the network are all still there.
    let deployment_before = std::fs::read(net.path().join("deployment.json")).unwrap();
    let st = net.stop();
    assert!(
        st.success(),
        "pith up stopped cleanly: {st}\n{}",
        net.transcript()
    );
    let dir = std::mem::replace(&mut net.dir, tempfile::tempdir().unwrap());
    drop(net);
    let net = Net::up_in(dir);
    assert_eq!(
        std::fs::read(net.path().join("deployment.json")).unwrap(),
        deployment_before,
        "no redeploy on resume"
    );
    let c = net.pith_json(&["call", &hello_id, "--path", "/?name=again"]);
    assert_eq!(c["body"], "hello, again\n", "{c}");
    let list = net.pith_json(&["programs", "list"]);
    assert!(
        list.to_string()
            .to_lowercase()
            .contains(&kv_id.to_lowercase()),
        "{list}"
    );
    eprintln!("pith up transcript (resumed):\n{}", net.transcript());
}
