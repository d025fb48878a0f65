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
use std::time::Duration;

use alloy::primitives::B256;
use common::{Net, eventually, rt};
use pith_api::ErrorKind;
use pith_crypto::envelope::{ClientSession, Request};
use pith_worker::storage::{SqliteStore, Store};

const GUARD: Duration = Duration::from_secs(180);

fn out_text(o: &std::process::Output) -> String {
    format!("status {}\nstdout: {}\nstderr: {}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn request(path: &str, headers: Vec<(String, String)>) -> Request {
    let mut nonce = [0u8; 16];
    getrandom::getrandom(&mut nonce).unwrap();
    Request::new("GET", path, headers, Vec::new(), nonce, now() + 60)
}

fn count_call(net: &Net, pid: &str) -> (serde_json::Value, std::process::Output) {
    let o = net.pith(&["call", pid, "--path", "/count/alice", "--header", "authorization: Bearer t", "--json"]);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (v, o)
}

fn id_b256(pid: &str) -> B256 {
    pid.parse().unwrap()
}

#[test]
fn storage_refusals_and_faults() {
    let mut net = Net::up();
    let rt = rt();
    let kv = net.pith_json(&["deploy", "examples/secrets-kv", "--secret", "TOKEN=t", "--deposit", "100"]);
    let kv_id = kv["program_id"].as_str().unwrap().to_owned();
    let hello = net.pith_json(&["deploy", "examples/hello", "--deposit", "100"]);
    let hello_id = hello["program_id"].as_str().unwrap().to_owned();

    // ---- storage shared by both workers: the counter goes up whichever worker serves.
    let workers: Vec<String> = net.network()["workers"].as_array().unwrap().iter().map(|w| w["address"].as_str().unwrap().to_lowercase()).collect();
    let mut served = std::collections::BTreeSet::new();
    for expected in 1..=6u64 {
        let (v, o) = count_call(&net, &kv_id);
        assert!(o.status.success(), "{}", out_text(&o));
        let body: serde_json::Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["count"], expected, "{v}");
        let r = v["receipt"].to_string().to_lowercase();
        served.extend(workers.iter().filter(|w| r.contains(w.as_str())).cloned());
    }
    assert_eq!(served.len(), 2, "both workers served the counter: {served:?}");

    // ---- a rolled-back value (an older, validly sealed version) is refused.
    let store = SqliteStore::open(&net.path().join("storage.sqlite")).unwrap();
    let program = id_b256(&kv_id).0;
    let old = rt.block_on(store.get(&program, "count/alice")).unwrap().expect("the counter row");
    let (v, o) = count_call(&net, &kv_id);
    assert!(o.status.success(), "{}", out_text(&o));
    assert!(v["body"].as_str().unwrap().contains("\"count\":7"), "{v}");
    store.danger_overwrite(&program, "count/alice", &old).unwrap();
    for _ in 0..2 {
        // both workers refuse it
        let (v, o) = count_call(&net, &kv_id);
        let text = format!("{v}{}", out_text(&o));
        assert!(text.contains("storage_integrity") && text.contains("rolled back"), "rollback not refused: {text}");
    }
    // ---- tampered bytes are refused.
    let mut t = old.clone();
    let last = t.sealed.len() - 1;
    t.sealed[last] ^= 1;
    t.version += 10;
    store.danger_overwrite(&program, "count/alice", &t).unwrap();
    let (v, o) = count_call(&net, &kv_id);
    let text = format!("{v}{}", out_text(&o));
    assert!(text.contains("storage_integrity") && text.contains("does not authenticate"), "tamper not refused: {text}");

    // ---- replay, and a request sealed to another program's key.
    let gw = pith_api::gateway::Client::new(&net.gateway()).unwrap();
    rt.block_on(async {
        let (hello_keys, _) = gw.ohttp_keys(id_b256(&hello_id)).await.unwrap();
        let (wire, _session) = ClientSession::encapsulate(&hello_keys, &request("/?name=r", vec![])).unwrap();
        // straight to one worker twice: the second is a replay.
        let w0 = net.network()["workers"][0]["url"].as_str().unwrap().to_owned();
        let wc = pith_api::worker::Client::new(&w0);
        wc.invoke(id_b256(&hello_id), wire.clone()).await.unwrap();
        let e = wc.invoke(id_b256(&hello_id), wire.clone()).await.unwrap_err();
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
        assert!(replays >= 2, "replays through the gateway refused: {replays} of 3");

        // hello's key configuration used for the kv program: a clear refusal.
        let (wire, _) = ClientSession::encapsulate(&hello_keys, &request("/count/x", vec![])).unwrap();
        let e = gw.invoke(id_b256(&kv_id), wire).await.unwrap_err();
        assert_eq!(e.kind(), Some(ErrorKind::DecryptFailed), "wrong program key: {e:?}");
    });

    // ---- a worker whose measurement is not allowed gets no registration and no keys.
    {
        let other = net.path().join("pith-other");
        let mut bin = std::fs::read(common::pith_bin()).unwrap();
        bin.extend_from_slice(b"\0pith: a different build\0");
        std::fs::write(&other, bin).unwrap();
        std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let nf = net.network();
        let log = std::fs::File::create(net.path().join("logs/rogue.log")).unwrap();
        let mut rogue = std::process::Command::new(&other)
            .args(["worker", "--dir"])
            .arg(net.path().join("rogue"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--rpc", nf["rpc_url"].as_str().unwrap(), "--deployment"])
            .arg(net.path().join("deployment.json"))
            .args(["--kms", nf["kms"][0]["url"].as_str().unwrap(), "--gateway", nf["gateway_url"].as_str().unwrap(), "--operator-key-file"])
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
            (text.contains("measurement") && (text.contains("not allowed") || text.contains("refused"))).then_some(text)
        });
        let status = net.pith_json(&["status"]);
        assert_eq!(status["workers"].as_array().unwrap().len(), 2, "{status}\n{refusal}");
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
                    .args(["call", &hello_id, "--path", "/?name=load", "--json", "--dir"])
                    .arg(&dir)
                    .output()
                    .unwrap();
                if o.status.success() { ok.fetch_add(1, Ordering::Relaxed) } else { failed.fetch_add(1, Ordering::Relaxed) };
            }
        }));
    }
    eventually("load running", GUARD, || (ok.load(Ordering::Relaxed) >= 3).then_some(()));
    let killed = net.kill9("worker-0");
    let ok_at_kill = ok.load(Ordering::Relaxed);
    net.wait_line(|l| l.contains("worker-0") && l.contains("restarted"), GUARD).expect("worker-0 restarted by pith up");
    eventually("worker-0 rejoins (healthy at the gateway)", GUARD, || {
        let s = net.pith_json(&["status"]);
        s["workers"].as_array().unwrap().iter().all(|w| w["healthy"] == true && w["registered"] == true).then_some(())
    });
    eventually("calls keep succeeding after the restart", GUARD, || (ok.load(Ordering::Relaxed) >= ok_at_kill + 6).then_some(()));
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    let failed = failed.load(Ordering::Relaxed);
    assert!(failed <= CALLERS, "only requests in flight at the kill may fail: {failed} failed (pid {killed}), {} ok", ok.load(Ordering::Relaxed));

    // ---- kill -9 the KMS: the workers keep serving with their keys; it comes back with
    // its sealed master key (same identity, same epoch).
    let kms_url = net.network()["kms"][0]["url"].as_str().unwrap().to_owned();
    let info_before: serde_json::Value = rt.block_on(async { serde_json::from_slice(&reqwest::get(format!("{kms_url}/v1/kms/info")).await.unwrap().bytes().await.unwrap()).unwrap() });
    net.kill9("kms");
    let c = net.pith_json(&["call", &hello_id, "--path", "/?name=nokms"]);
    assert_eq!(c["body"], "hello, nokms\n", "{c}");
    let info_after: serde_json::Value = eventually("the KMS answers again", GUARD, || {
        rt.block_on(async { serde_json::from_slice(&reqwest::get(format!("{kms_url}/v1/kms/info")).await.ok()?.bytes().await.ok()?).ok() })
    });
    assert_eq!(info_before["address"], info_after["address"]);
    assert_eq!(info_before["epoch"], info_after["epoch"]);

    // ---- stop everything and start again from DIR: anvil resumes from its saved state,
    // the programs, their storage and the network are all still there.
    let deployment_before = std::fs::read(net.path().join("deployment.json")).unwrap();
    let st = net.stop();
    assert!(st.success(), "pith up stopped cleanly: {st}\n{}", net.transcript());
    let dir = std::mem::replace(&mut net.dir, tempfile::tempdir().unwrap());
    drop(net);
    let net = Net::up_in(dir);
    assert_eq!(std::fs::read(net.path().join("deployment.json")).unwrap(), deployment_before, "no redeploy on resume");
    let c = net.pith_json(&["call", &hello_id, "--path", "/?name=again"]);
    assert_eq!(c["body"], "hello, again\n", "{c}");
    let list = net.pith_json(&["programs", "list"]);
    assert!(list.to_string().to_lowercase().contains(&kv_id.to_lowercase()), "{list}");
}
