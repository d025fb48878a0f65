//! A real worker process stack on loopback: real anvil with the Pith contracts, the program
//! registered on chain, code served by hash over HTTP, the worker's HTTP server, and an
//! OHTTP client. Program keys come from the worker's sealed key cache (the path a worker
//! restarts from while the KMS is down), seeded from a test master key.
//!
//! Checks: a good invocation (response decrypts, receipt verifies and names request,
//! response, code and worker), and a refusal for every check: replay, expired, tampered
//! request, wrong program key, code hash mismatch, unknown program; shared storage across
//! two workers with tamper and rollback refused; drain.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use pith_testkit::{anvil_available, local_measurement, model_path, now};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::{B256, U256};
use alloy::signers::local::PrivateKeySigner;
use anyhow::Result;
use axum::extract::{Path as AxPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use pith_api::ErrorKind;
use pith_chain::anvil::{Anvil, AnvilConfig};
use pith_chain::bindings::Programs;
use pith_chain::bindings::{Billing, OracleAnchor, Registry};
use pith_chain::client::{PithContracts, signing_provider};
use pith_chain::deploy::{DeployConfig, Measurement, PHA_UNIT, deploy, platform, role};
use pith_chain::eip712;
use pith_crypto::envelope::{ClientSession, ProgramServer, Request};
use pith_crypto::keytree::{MasterKey, ProgramId};
use pith_worker::identity::Sealer;
use pith_worker::keys::{ProgramKeySet, store_sealed};
use pith_worker::storage::{SqliteStore, Store};
use tokio_util::sync::CancellationToken;

const PROGRAM: &str = r#"
export default { async fetch(request, env) {
  const url = new URL(request.url);
  if (url.pathname === "/put") { await env.kv.put("k", await request.text()); return new Response("stored"); }
  if (url.pathname === "/get") {
    try { const v = await env.kv.get("k"); return new Response(v === null ? "null" : v); }
    catch (e) { return new Response(String(e), { status: 500 }); }
  }
  if (url.pathname === "/.pith/oracle") { return new Response("answer:" + await request.text() + ":" + request.headers.get("pith-oracle-request")); }
  if (url.pathname === "/secret") { return new Response(env.secrets.API_KEY ?? "none"); }
  if (url.pathname === "/slow") { const t = Date.now(); while (Date.now() - t < 1500) {} return new Response("slow done"); }
  console.log("hello from the program");
  return new Response("hello " + await request.text(), { headers: { "x-program": "yes" } });
} }
"#;

/// Content-addressed code and secrets over HTTP, the two things a worker reads from a
/// gateway (the gateway itself is another crate; the network end-to-end tests use it).
#[derive(Clone, Default)]
struct CodeServer {
    code: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    secrets: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

async fn secrets_of(
    State(s): State<CodeServer>,
    AxPath(id): AxPath<String>,
) -> axum::response::Response {
    match s.secrets.lock().unwrap().get(&id) {
        Some(c) => (StatusCode::OK, c.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn code_by_hash(
    State(s): State<CodeServer>,
    AxPath(hash): AxPath<String>,
) -> axum::response::Response {
    match s.code.lock().unwrap().get(&hash) {
        Some(c) => (StatusCode::OK, c.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn serve_code(s: CodeServer) -> SocketAddr {
    let app = axum::Router::new()
        .route(
            pith_api::gateway::CODE_BY_HASH,
            axum::routing::get(code_by_hash),
        )
        .route(
            pith_api::gateway::PROGRAM_SECRETS,
            axum::routing::get(secrets_of),
        )
        .route(
            pith_api::gateway::ANNOUNCE,
            axum::routing::post(|| async { StatusCode::NO_CONTENT }),
        )
        .with_state(s);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

struct Net {
    anvil: Anvil,
    dir: tempfile::TempDir,
    deployment: pith_chain::Deployment,
    rpc: String,
    dev_ca: PathBuf,
    code: CodeServer,
    gateway: String,
    developer: PithContracts,
    developer_key: PrivateKeySigner,
    master: MasterKey,
}

async fn net() -> Result<Net> {
    let anvil = Anvil::start(AnvilConfig::new()).await?;
    let deployer: PrivateKeySigner = anvil.accounts()[0].private_key.parse()?;
    let provider = signing_provider(&anvil.url(), deployer.clone())?;
    let mut cfg = DeployConfig::local(deployer.address(), vec![anvil.accounts()[9].address]);
    cfg.measurements = vec![Measurement {
        platform: platform::SIMULATED,
        role: role::WORKER,
        hash: local_measurement(),
    }];
    cfg.allocations = vec![(
        anvil.accounts()[2].address,
        U256::from(10_000u64) * U256::from(PHA_UNIT),
    )];
    let deployment = deploy(&provider, deployer.address(), &anvil.url(), &cfg).await?;
    let dir = tempfile::tempdir()?;
    let dev_ca = dir.path().join("dev-ca");
    pith_attest::simulated::DevCa::init(&dev_ca, std::time::SystemTime::now())?;
    let code = CodeServer::default();
    let gateway = format!("http://{}", serve_code(code.clone()).await);
    let dev: PrivateKeySigner = anvil.accounts()[1].private_key.parse()?;
    let developer = PithContracts::new(&deployment, signing_provider(&anvil.url(), dev.clone())?);
    Ok(Net {
        rpc: anvil.url(),
        anvil,
        dir,
        deployment,
        dev_ca,
        code,
        gateway,
        developer,
        developer_key: dev,
        master: MasterKey::from_bytes([0x5a; 32], 1),
    })
}

impl Net {
    /// Register `code` on chain (its sha256) and serve `served` for that hash.
    async fn program(&self, code: &str, served: &str) -> Result<ProgramId> {
        let hash = pith_crypto::sha256(code.as_bytes());
        self.code.code.lock().unwrap().insert(
            format!("0x{}", hex::encode(hash)),
            served.as_bytes().to_vec(),
        );
        let cfg = Programs::Config {
            memoryMib: 0,
            cpuMillis: 5_000,
            wallMillis: 0,
            egressCount: 0,
            egressBytes: 0,
            outputBytes: 0,
            platformMask: U256::ZERO,
            egressAllowListHash: B256::ZERO,
        };
        let p = &self.developer.programs;
        let receipt = p
            .send("register", p.raw().register(B256::from(hash), cfg))
            .await?;
        let id = receipt
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<Programs::ProgramRegistered>().ok())
            .unwrap()
            .inner
            .data
            .programId;
        Ok(ProgramId(id.to_be_bytes::<32>()))
    }

    fn seed_keys(&self, state: &Path, program: ProgramId) -> Result<()> {
        let sealer = Sealer::simulated(state)?;
        store_sealed(
            &sealer,
            &ProgramKeySet::new(program, vec![self.master.program_keys(&program)?])?,
        )?;
        Ok(())
    }

    fn config(&self, name: &str) -> pith_worker::Config {
        pith_worker::Config {
            state_dir: self.dir.path().join(name),
            listen: "127.0.0.1:0".parse().unwrap(),
            public_url: None,
            rpc_url: self.rpc.clone(),
            deployment: self.deployment.clone(),
            kms_urls: Vec::new(),
            gateway_url: Some(self.gateway.clone()),
            operator: None,
            storage: self.dir.path().join("storage.sqlite"),
            dev_ca_dir: Some(self.dev_ca.clone()),
            collateral: Arc::new(pith_attest::NoCollateral),
            danger_binary_sha384: None,
            heartbeat: Duration::from_secs(1),
            usage_interval: Duration::from_secs(1),
            pool: pith_sandbox::pool::PoolConfig::default(),
            model: None,
        }
    }

    async fn worker(
        &self,
        name: &str,
        programs: &[ProgramId],
    ) -> Result<(pith_worker::Running, CancellationToken)> {
        for p in programs {
            self.seed_keys(&self.dir.path().join(name), *p)?;
        }
        let stop = CancellationToken::new();
        let running = pith_worker::start(self.config(name), stop.clone()).await?;
        Ok((running, stop))
    }

    fn key_config(&self, program: ProgramId) -> Vec<u8> {
        ProgramServer::new(&self.master.program_keys(&program).unwrap())
            .unwrap()
            .encoded_key_configs()
            .unwrap()
    }
}

fn request(path: &str, body: &str, expiry: u64) -> Request {
    let mut nonce = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    Request::new(
        "POST",
        path,
        vec![],
        body.as_bytes().to_vec(),
        nonce,
        expiry,
    )
}

fn client(r: &pith_worker::Running) -> pith_api::worker::Client {
    pith_api::worker::Client::new(&format!("http://{}", r.addr))
}

async fn call(
    r: &pith_worker::Running,
    cfg: &[u8],
    program: ProgramId,
    path: &str,
    body: &str,
) -> Result<(u16, String)> {
    let (wire, session) = ClientSession::encapsulate(cfg, &request(path, body, now() + 60))?;
    let inv = client(r).invoke(B256::from(program.0), wire).await?;
    let (resp, _) = session.decapsulate(&inv.ohttp_res)?;
    Ok((resp.status, String::from_utf8(resp.body)?))
}

fn kind(e: &pith_api::worker::ClientError) -> Option<ErrorKind> {
    e.kind()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocation_receipt_and_every_refusal() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let n = net().await?;
    let program = n.program(PROGRAM, PROGRAM).await?;
    let bad_code = n
        .program(
            "export default { fetch() { return new Response('x') } }",
            "export default { fetch() { return new Response('evil') } }",
        )
        .await?;
    let unknown = ProgramId([0x77; 32]);
    let (w, stop) = n.worker("w0", &[program, bad_code, unknown]).await?;
    let cfg = n.key_config(program);

    // A good invocation.
    let req = request("/hello", "world", now() + 60);
    let (wire, session) = ClientSession::encapsulate(&cfg, &req)?;
    let request_hash = session.request_hash();
    let inv = client(&w)
        .invoke(B256::from(program.0), wire.clone())
        .await?;
    let (resp, response_hash) = session.decapsulate(&inv.ohttp_res)?;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"hello world");
    assert!(
        resp.headers
            .iter()
            .any(|(k, v)| k == "x-program" && v == "yes")
    );
    let r = &inv.receipt;
    r.verify_signature()?;
    assert_eq!(r.worker, w.node.address());
    assert_eq!(inv.worker, w.node.address());
    assert_eq!(r.program_id.0, program.0);
    assert_eq!(r.code_hash.0, pith_crypto::sha256(PROGRAM.as_bytes()));
    assert_eq!(r.request_hash.0, request_hash);
    assert_eq!(r.response_hash.0, response_hash);
    assert_eq!(r.chain_id, n.deployment.chain_id);
    assert_eq!(r.verifying_contract, n.deployment.contracts.registry);
    // a tampered receipt does not verify
    let mut forged = r.clone();
    forged.response_hash = B256::repeat_byte(1);
    assert!(forged.verify_signature().is_err());

    // Replay of the same encapsulated request.
    let e = client(&w)
        .invoke(B256::from(program.0), wire.clone())
        .await
        .unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::Replay), "{e}");

    // Expired request, and one whose expiry is too far ahead.
    for expiry in [now() - 1, now() + 3_600] {
        let (wire, _) = ClientSession::encapsulate(&cfg, &request("/hello", "x", expiry))?;
        let e = client(&w)
            .invoke(B256::from(program.0), wire)
            .await
            .unwrap_err();
        assert_eq!(kind(&e), Some(ErrorKind::Expired), "{e}");
    }

    // Tampered request (one byte flipped in the ciphertext).
    let (mut wire2, _) = ClientSession::encapsulate(&cfg, &request("/hello", "x", now() + 60))?;
    let last = wire2.len() - 1;
    wire2[last] ^= 1;
    let e = client(&w)
        .invoke(B256::from(program.0), wire2)
        .await
        .unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::DecryptFailed), "{e}");

    // Encrypted to another program's key: a clear decrypt_failed, never a run.
    let other = n.key_config(bad_code);
    let (wire3, _) = ClientSession::encapsulate(&other, &request("/hello", "x", now() + 60))?;
    let e = client(&w)
        .invoke(B256::from(program.0), wire3)
        .await
        .unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::DecryptFailed), "{e}");

    // Code served for a hash does not match it.
    let e = call(&w, &other, bad_code, "/", "").await.unwrap_err();
    let e = e.downcast::<pith_api::worker::ClientError>()?;
    assert_eq!(kind(&e), Some(ErrorKind::CodeMismatch), "{e}");

    // Not registered on chain.
    let e = call(&w, &n.key_config(unknown), unknown, "/", "")
        .await
        .unwrap_err();
    let e = e.downcast::<pith_api::worker::ClientError>()?;
    assert_eq!(kind(&e), Some(ErrorKind::UnknownProgram), "{e}");

    // Bad program id and bad route.
    let e = client(&w)
        .invoke(B256::ZERO, vec![1, 2, 3])
        .await
        .unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::Unavailable), "{e}");

    // Info and health.
    let info = client(&w).info().await?;
    assert_eq!(info.address, w.node.address());
    assert_eq!(info.platform, "simulated");
    assert!(info.programs.contains(&B256::from(program.0)));
    assert!(!info.registered);
    let h = client(&w).health().await?;
    assert!(!h.draining);

    stop.cancel();
    w.done.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_shared_by_two_workers_tamper_and_rollback_refused() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let n = net().await?;
    let program = n.program(PROGRAM, PROGRAM).await?;
    let (a, stop_a) = n.worker("a", &[program]).await?;
    let (b, stop_b) = n.worker("b", &[program]).await?;
    let cfg = n.key_config(program);

    assert_eq!(
        call(&a, &cfg, program, "/put", "v1").await?,
        (200, "stored".into())
    );
    assert_eq!(
        call(&b, &cfg, program, "/get", "").await?,
        (200, "v1".into())
    );
    let raw = SqliteStore::open(&n.dir.path().join("storage.sqlite"))?;
    let v1 = raw.get(&program.0, "k").await?.unwrap();
    assert_eq!(
        call(&b, &cfg, program, "/put", "v2").await?,
        (200, "stored".into())
    );
    assert_eq!(
        call(&a, &cfg, program, "/get", "").await?,
        (200, "v2".into())
    );

    // Roll the row back to the older, validly sealed version 1: both workers refuse it.
    raw.danger_overwrite(&program.0, "k", &v1)?;
    for w in [&a, &b] {
        let (status, body) = call(w, &cfg, program, "/get", "").await?;
        assert_eq!(status, 500);
        assert!(
            body.contains("storage_integrity") && body.contains("rolled back"),
            "{body}"
        );
    }
    // Tamper with the bytes.
    let mut t = v1.clone();
    t.version = 3;
    raw.danger_overwrite(&program.0, "k", &t)?;
    let (status, body) = call(&a, &cfg, program, "/get", "").await?;
    assert_eq!(status, 500);
    assert!(
        body.contains("storage_integrity") && body.contains("does not authenticate"),
        "{body}"
    );

    stop_a.cancel();
    stop_b.cancel();
    a.done.await??;
    b.done.await??;

    // Worker a restarts: its sealed marks come back, so the rollback is still refused.
    raw.danger_overwrite(&program.0, "k", &v1)?;
    let (a, stop_a) = n.worker("a", &[]).await?;
    let (status, body) = call(&a, &cfg, program, "/get", "").await?;
    assert_eq!(status, 500);
    assert!(body.contains("rolled back"), "{body}");
    stop_a.cancel();
    a.done.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_finishes_in_flight_and_refuses_new_work() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let n = net().await?;
    let program = n.program(PROGRAM, PROGRAM).await?;
    let (w, stop) = n.worker("w", &[program]).await?;
    let cfg = n.key_config(program);
    // warm: load the program
    assert_eq!(call(&w, &cfg, program, "/hello", "a").await?.0, 200);

    let slow = {
        let addr = w.addr;
        let cfg = cfg.clone();
        tokio::spawn(async move {
            let (wire, session) =
                ClientSession::encapsulate(&cfg, &request("/slow", "", now() + 60)).unwrap();
            let c = pith_api::worker::Client::new(&format!("http://{addr}"));
            let inv = c.invoke(B256::from(program.0), wire).await.unwrap();
            session.decapsulate(&inv.ohttp_res).unwrap().0
        })
    };
    while w.node.in_flight() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    while !w.node.is_draining() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let e = call(&w, &cfg, program, "/hello", "b").await.unwrap_err();
    let e = e.downcast::<pith_api::worker::ClientError>()?;
    assert_eq!(kind(&e), Some(ErrorKind::Draining), "{e}");
    let h = client(&w).health().await?;
    assert!(h.draining && !h.ok);
    let resp = slow.await?;
    assert_eq!(resp.body, b"slow done");
    w.done.await??;
    Ok(())
}

/// Register the running worker `w` for `operator` (a new pool holding the minimum stake) with
/// a KMS signature over the worker's own evidence (the KMS service makes this signature after
/// verifying the evidence; here the committee key signs), start it on chain, and wait until
/// the worker sees its registration.
async fn register(n: &Net, w: &pith_worker::Running, operator: &PrivateKeySigner) -> Result<()> {
    let kms: PrivateKeySigner = n.anvil.accounts()[9].private_key.parse()?;
    let op = PithContracts::new(&n.deployment, signing_provider(&n.rpc, operator.clone())?);
    op.stake_pools.send_create_pool(1_000).await?;
    let min = op.stake_pools.params().await?.minStake;
    op.pha.send_approve(op.stake_pools.address(), min).await?;
    op.stake_pools.send_deposit(operator.address(), min).await?;
    let ev = w.node.evidence().clone();
    let reg = Registry::WorkerRegistration {
        worker: w.node.address(),
        operator: operator.address(),
        platform: ev.platform_id,
        measurementHash: ev.measurement_hash,
        tcbStatus: ev.tcb_status,
        evidenceHash: pith_crypto::keccak256(&ev.bytes).into(),
        expiry: now() + 3_600,
    };
    let digest =
        eip712::registration_digest(&reg, n.deployment.chain_id, n.deployment.contracts.registry);
    let sigs = eip712::sign_sorted(digest, &[&kms])?;
    op.registry
        .send_register_worker(reg, ev.bytes.clone().into(), sigs)
        .await?;
    op.stake_pools
        .send(
            "startWorker",
            op.stake_pools.raw().startWorker(w.node.address(), min),
        )
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !client(w).info().await?.registered {
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker never saw its registration"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(client(w).health().await?.ok);
    Ok(())
}

/// The usage of `program` that worker `w` settled so far, summed over the entries of its
/// `submitUsage` transactions (read back from the chain: the `UsageSettled` logs' calldata).
async fn settled_usage(
    n: &Net,
    w: &pith_worker::Running,
    program: ProgramId,
) -> Result<Billing::UsageEntry> {
    use alloy::consensus::Transaction;
    use alloy::providers::Provider;
    use alloy::sol_types::{SolCall, SolEvent};
    let id = U256::from_be_bytes(program.0);
    let filter = alloy::rpc::types::Filter::new()
        .address(n.deployment.contracts.billing)
        .event_signature(Billing::UsageSettled::SIGNATURE_HASH)
        .from_block(0);
    let mut sum = Billing::UsageEntry {
        programId: id,
        requests: 0,
        cpuMillis: 0,
        egressBytes: 0,
        aiTokens: 0,
    };
    for log in n.developer.provider().get_logs(&filter).await? {
        let settled = log.log_decode::<Billing::UsageSettled>()?.inner.data;
        if settled.worker != w.node.address() {
            continue;
        }
        let tx = n
            .developer
            .provider()
            .get_transaction_by_hash(log.transaction_hash.unwrap())
            .await?
            .unwrap();
        let call = Billing::submitUsageCall::abi_decode(tx.inner.input())?;
        assert_eq!(call.batch.nonce, settled.nonce);
        for e in call.batch.entries.iter().filter(|e| e.programId == id) {
            sum.requests += e.requests;
            sum.cpuMillis += e.cpuMillis;
            sum.egressBytes += e.egressBytes;
            sum.aiTokens += e.aiTokens;
        }
    }
    Ok(sum)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_worker_settles_usage_and_fulfils_oracle_requests() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let n = net().await?;
    let program = n.program(PROGRAM, PROGRAM).await?;
    let operator: PrivateKeySigner = n.anvil.accounts()[2].private_key.parse()?;

    n.seed_keys(&n.dir.path().join("w"), program)?;
    let mut config = n.config("w");
    config.operator = Some(operator.clone());
    let stop = CancellationToken::new();
    let w = pith_worker::start(config, stop.clone()).await?;
    assert!(!client(&w).info().await?.registered);
    register(&n, &w, &operator).await?;

    // Usage: an invocation, then a batch settles on chain (nonce advances).
    let cfg = n.key_config(program);
    assert_eq!(call(&w, &cfg, program, "/hello", "x").await?.0, 200);
    let billing = n.developer.billing.raw();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while billing.nextUsageNonce(w.node.address()).call().await? == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "usage was never settled"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let settled = settled_usage(&n, &w, program).await?;
    assert_eq!((settled.requests, settled.aiTokens), (1, 0), "{settled:?}");

    // Oracle: a request on chain is answered by the program, signed by the worker.
    let anchor = &n.developer.oracle_anchor;
    let receipt = anchor
        .send(
            "request",
            anchor.raw().request(
                U256::from_be_bytes(program.0),
                b"ping".to_vec().into(),
                0,
                0,
            ),
        )
        .await?;
    let request_id = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<OracleAnchor::OracleRequested>().ok())
        .unwrap()
        .inner
        .data
        .requestId;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let info = anchor.raw().requestInfo(request_id).call().await?;
        if info.requester.is_zero() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "oracle request never fulfilled"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let filter = alloy::rpc::types::Filter::new()
        .address(n.deployment.contracts.oracle_anchor)
        .event_signature(
            <OracleAnchor::OracleFulfilled as alloy::sol_types::SolEvent>::SIGNATURE_HASH,
        )
        .from_block(0);
    let logs = alloy::providers::Provider::get_logs(n.developer.provider(), &filter).await?;
    let f = logs
        .iter()
        .find_map(|l| l.log_decode::<OracleAnchor::OracleFulfilled>().ok())
        .unwrap()
        .inner
        .data;
    assert_eq!(f.worker, w.node.address());
    let expected = format!("answer:ping:{request_id}");
    assert_eq!(
        f.resultHash,
        B256::from(pith_crypto::keccak256(expected.as_bytes()))
    );

    stop.cancel();
    w.done.await??;
    Ok(())
}

/// An owner-signed secrets upload encrypted to the program key, as `pith deploy --secret` makes it.
fn secrets_upload(
    cfg: &[u8],
    program: ProgramId,
    signer: &PrivateKeySigner,
    version: u64,
    value: &str,
) -> Vec<u8> {
    let body =
        serde_json::to_vec(&serde_json::json!({"version": version, "secrets": {"API_KEY": value}}))
            .unwrap();
    let digest = pith_api::binding::message_digest(
        pith_api::binding::SECRETS_TAG,
        &[&program.0, &pith_crypto::keccak256(&body)],
        version,
    );
    let sig = pith_crypto::receipt::sign_hash(signer.credential(), &digest).unwrap();
    let mut nonce = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let req = Request::new(
        "PUT",
        pith_worker::secrets::SECRETS_PATH,
        vec![(
            pith_api::headers::OWNER_SIGNATURE.into(),
            format!("0x{}", hex::encode(sig)),
        )],
        body,
        nonce,
        now() + 60,
    );
    ClientSession::encapsulate(cfg, &req).unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_logs_are_owner_only() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let n = net().await?;
    let program = n.program(PROGRAM, PROGRAM).await?;
    let cfg = n.key_config(program);
    let stranger: PrivateKeySigner = n.anvil.accounts()[5].private_key.parse()?;
    let set = |wire: Vec<u8>| {
        n.code
            .secrets
            .lock()
            .unwrap()
            .insert(program.to_hex(), wire)
    };

    // An upload signed by someone other than the owner is ignored.
    set(secrets_upload(&cfg, program, &stranger, 1, "forged"));
    let (w, stop) = n.worker("w", &[program]).await?;
    assert_eq!(
        call(&w, &cfg, program, "/secret", "").await?,
        (200, "none".into())
    );

    // The owner's upload is taken (after the 2 s program re-check).
    set(secrets_upload(&cfg, program, &n.developer_key, 2, "s3cret"));
    tokio::time::sleep(pith_worker::node::PROGRAM_TTL).await;
    assert_eq!(
        call(&w, &cfg, program, "/secret", "").await?,
        (200, "s3cret".into())
    );

    // An older (validly signed) version replayed by the gateway is ignored.
    set(secrets_upload(&cfg, program, &n.developer_key, 1, "old"));
    tokio::time::sleep(pith_worker::node::PROGRAM_TTL).await;
    assert_eq!(
        call(&w, &cfg, program, "/secret", "").await?,
        (200, "s3cret".into())
    );

    // Logs: the owner reads them; a stranger and a stale timestamp are refused.
    assert_eq!(call(&w, &cfg, program, "/hello", "x").await?.0, 200);
    let pid = B256::from(program.0);
    let sign = |who: &PrivateKeySigner, t: u64| {
        let d = pith_api::binding::message_digest(pith_api::binding::LOGS_TAG, &[&program.0], t);
        pith_crypto::receipt::sign_hash(who.credential(), &d).unwrap()
    };
    let t = now();
    let logs = client(&w).logs(pid, t, &sign(&n.developer_key, t)).await?;
    assert!(
        logs.entries
            .iter()
            .any(|e| e.message.contains("hello from the program") && e.worker == w.node.address())
    );
    let e = client(&w)
        .logs(pid, t, &sign(&stranger, t))
        .await
        .unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::Unauthorized), "{e}");
    let old = t - 3_600;
    let e = client(&w)
        .logs(pid, old, &sign(&n.developer_key, old))
        .await
        .unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::Unauthorized), "{e}");

    stop.cancel();
    w.done.await??;
    Ok(())
}

const AI_PROGRAM: &str = r#"
export default {
  async fetch(request, env) {
    const r = await env.ai.chat({ messages: [{ role: "user", content: "Name one colour." }], max_tokens: 8 });
    return new Response(JSON.stringify(r), { headers: { "content-type": "application/json" } });
  },
};
"#;

/// The worker's model answers env.ai; its file hash is in the worker's evidence, in its
/// info, and in the receipts of invocations that used it (and only those).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_ai_uses_the_model_bound_in_the_evidence_and_named_by_receipts() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let Some(path) = model_path() else {
        return Ok(());
    };
    let file_hash = pith_crypto::sha256(&std::fs::read(&path)?);
    let n = net().await?;
    let ai = n.program(AI_PROGRAM, AI_PROGRAM).await?;
    let plain = n.program(PROGRAM, PROGRAM).await?;
    for p in [ai, plain] {
        n.seed_keys(&n.dir.path().join("ai0"), p)?;
    }
    let mut config = n.config("ai0");
    config.model = Some(pith_worker::ai::ModelAi::load(&path, Some(&file_hash))?);
    let stop = CancellationToken::new();
    let w = pith_worker::start(config, stop.clone()).await?;

    // Evidence and info name the model.
    let info = client(&w).info().await?;
    assert_eq!(info.model_hash, Some(B256::from(file_hash)));
    let mut opts = pith_attest::VerifyOptions::default();
    opts.dev_ca = Some(std::fs::read(
        n.dev_ca.join(pith_attest::simulated::CERT_FILE),
    )?);
    let verified = pith_attest::verify(
        &pith_attest::Evidence::new(pith_attest::Platform::Simulated, info.evidence.clone()),
        &Default::default(),
        &opts,
        time::OffsetDateTime::now_utc(),
    )?;
    let rd = verified.report_data().expect("report_data");
    assert_eq!(pith_api::binding::bound_model_hash(rd), Some(file_hash));
    assert_eq!(
        rd,
        pith_api::binding::report_data_with_model(
            pith_api::binding::WORKER_REPORT_TAG,
            w.node.address(),
            &w.node.identity().enc_public_key(),
            n.deployment.chain_id,
            n.deployment.contracts.registry,
            Some(&file_hash),
        )
        .as_slice()
    );

    // A program asking the model: greedy, so the same answer twice; receipts name the model.
    let cfg = n.key_config(ai);
    let mut answers = Vec::new();
    for _ in 0..2 {
        let (wire, session) = ClientSession::encapsulate(&cfg, &request("/", "", now() + 60))?;
        let inv = client(&w).invoke(B256::from(ai.0), wire).await?;
        let (resp, _) = session.decapsulate(&inv.ohttp_res)?;
        assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
        let v: serde_json::Value = serde_json::from_slice(&resp.body)?;
        assert_eq!(
            v["model_hash"],
            format!("0x{}", hex::encode(file_hash)),
            "{v}"
        );
        let completion = v["usage"]["completion_tokens"].as_u64().unwrap();
        assert!((1..=8).contains(&completion), "{v}");
        assert!(!v["message"]["content"].as_str().unwrap().is_empty(), "{v}");
        inv.receipt.verify_signature()?;
        assert_eq!(inv.receipt.model_hash, B256::from(file_hash));
        answers.push(v["message"]["content"].clone());
    }
    assert_eq!(answers[0], answers[1], "greedy answers differ");

    // A program that does not use the model: its receipt names none.
    let (wire, session) =
        ClientSession::encapsulate(&n.key_config(plain), &request("/hello", "x", now() + 60))?;
    let inv = client(&w).invoke(B256::from(plain.0), wire).await?;
    assert_eq!(session.decapsulate(&inv.ohttp_res)?.0.status, 200);
    assert_eq!(inv.receipt.model_hash, B256::ZERO);

    stop.cancel();
    w.done.await??;
    Ok(())
}

/// A program using the model pays for its tokens: the worker's settled batch carries the
/// prompt and completion tokens the program was told it used, and the program's deposit
/// is charged for them at the governance price per token (plus requests, CPU and egress).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_tokens_are_billed_on_chain() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let Some(path) = model_path() else {
        return Ok(());
    };
    let file_hash = pith_crypto::sha256(&std::fs::read(&path)?);
    let n = net().await?;
    let ai = n.program(AI_PROGRAM, AI_PROGRAM).await?;
    let operator: PrivateKeySigner = n.anvil.accounts()[2].private_key.parse()?;
    n.seed_keys(&n.dir.path().join("ai-billed"), ai)?;
    let mut config = n.config("ai-billed");
    config.operator = Some(operator.clone());
    config.model = Some(pith_worker::ai::ModelAi::load(&path, Some(&file_hash))?);
    let stop = CancellationToken::new();
    let w = pith_worker::start(config, stop.clone()).await?;
    register(&n, &w, &operator).await?;

    // Anyone may fund a program: the operator deposits for it here.
    let op = PithContracts::new(&n.deployment, signing_provider(&n.rpc, operator.clone())?);
    let id = U256::from_be_bytes(ai.0);
    let funded = U256::from(100u64) * U256::from(PHA_UNIT);
    op.pha
        .send_approve(n.deployment.contracts.billing, funded)
        .await?;
    op.billing.send_deposit(id, funded).await?;

    let (wire, session) =
        ClientSession::encapsulate(&n.key_config(ai), &request("/", "", now() + 60))?;
    let inv = client(&w).invoke(B256::from(ai.0), wire).await?;
    let (resp, _) = session.decapsulate(&inv.ohttp_res)?;
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let v: serde_json::Value = serde_json::from_slice(&resp.body)?;
    let prompt = v["usage"]["prompt_tokens"].as_u64().unwrap();
    let completion = v["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(prompt > 0 && completion > 0, "{v}");

    let billing = n.developer.billing.raw();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while billing.nextUsageNonce(w.node.address()).call().await? == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "usage was never settled"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let settled = settled_usage(&n, &w, ai).await?;
    assert_eq!(settled.requests, 1, "{settled:?}");
    assert_eq!(settled.aiTokens, prompt + completion, "{settled:?}");

    let p = n.developer.billing.prices().await?;
    let for_tokens = U256::from(settled.aiTokens) * U256::from(p.perAiToken);
    assert!(for_tokens > U256::ZERO, "the local profile prices tokens");
    let cost = U256::from(settled.requests) * U256::from(p.perRequest)
        + U256::from(settled.cpuMillis) * U256::from(p.perCpuMilli)
        + U256::from(settled.egressBytes) * U256::from(p.perEgressByte)
        + for_tokens;
    assert_eq!(n.developer.billing.deposit_of(id).await?, funded - cost);

    stop.cancel();
    w.done.await??;
    Ok(())
}

/// Split a server-sent-events body into its `data:` payloads.
fn sse_data(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// One chunked exchange with the worker: the frames as they came, then the checked receipt.
async fn chunked_call(
    w: &pith_worker::Running,
    program: ProgramId,
    cfg: &[u8],
    req: &Request,
) -> Result<(
    pith_crypto::envelope::Response,
    usize,
    pith_crypto::receipt::SignedReceipt,
    [u8; 32],
    [u8; 32],
)> {
    use futures::TryStreamExt;
    let (wire, client) = pith_crypto::chunked::ChunkedClient::encapsulate(cfg, req)?;
    let request_hash = client.request_hash();
    let url = format!(
        "http://{}{}",
        w.addr,
        pith_api::worker::INVOKE.replace("{id}", &format!("0x{}", hex::encode(program.0)))
    );
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", pith_api::media::OHTTP_CHUNKED_REQ)
        .body(wire)
        .send()
        .await?;
    assert_eq!(resp.status(), 200, "{:?}", resp.headers());
    assert_eq!(
        resp.headers()["content-type"],
        pith_api::media::OHTTP_CHUNKED_RES
    );
    let src = resp
        .bytes_stream()
        .map_err(std::io::Error::other)
        .into_async_read();
    let mut reader = client.response(Box::pin(src))?;
    let mut head = None;
    let mut body = Vec::new();
    let mut frames = 0;
    while let Some(f) = reader.next().await? {
        match f {
            pith_crypto::chunked::Frame::Head(h) => head = Some(h),
            pith_crypto::chunked::Frame::Data(d) => {
                frames += 1;
                body.extend_from_slice(&d);
            }
            pith_crypto::chunked::Frame::End {
                receipt,
                response_hash,
            } => {
                let r: pith_crypto::receipt::SignedReceipt = serde_json::from_slice(&receipt)?;
                let mut h = head.take().unwrap();
                h.body = std::mem::take(&mut body);
                assert_eq!(reader.next().await?, None);
                return Ok((h, frames, r, request_hash, response_hash));
            }
        }
    }
    anyhow::bail!("no END frame")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_program_answers_openai_requests_streamed_and_whole_with_model_receipts()
-> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let Some(path) = model_path() else {
        return Ok(());
    };
    let file_hash = pith_crypto::sha256(&std::fs::read(&path)?);
    let n = net().await?;
    let manifest = serde_json::to_string(&pith_api::inference::Manifest::new(
        "SmolLM2-135M-Instruct",
        file_hash,
    ))?;
    let other = serde_json::to_string(&pith_api::inference::Manifest::new("other", [9; 32]))?;
    let inf = n.program(&manifest, &manifest).await?;
    let wrong = n.program(&other, &other).await?;
    let plain = n.program(PROGRAM, PROGRAM).await?;
    for p in [inf, wrong, plain] {
        n.seed_keys(&n.dir.path().join("inf0"), p)?;
    }
    let mut config = n.config("inf0");
    config.model = Some(pith_worker::ai::ModelAi::load(&path, Some(&file_hash))?);
    let stop = CancellationToken::new();
    let w = pith_worker::start(config, stop.clone()).await?;
    let cfg = n.key_config(inf);
    let chat = |stream: bool| {
        let body = serde_json::json!({
            "model": "SmolLM2-135M-Instruct",
            "messages": [{"role": "user", "content": "Name one colour."}],
            "max_tokens": 12, "temperature": 0, "stream": stream,
            "stream_options": {"include_usage": true},
        });
        let mut r = request("/v1/chat/completions", &body.to_string(), now() + 60);
        r = Request::new(
            "POST",
            r.path(),
            vec![("content-type".into(), "application/json".into())],
            r.body().to_vec(),
            r.nonce().try_into().unwrap(),
            r.expiry(),
        );
        r
    };

    // Streamed: one event per DATA frame, [DONE] last, the receipt names request, response,
    // manifest (code) and model.
    let mut streamed = Vec::new();
    for _ in 0..2 {
        let (resp, frames, r, rh, sh) = chunked_call(&w, inf, &cfg, &chat(true)).await?;
        assert_eq!(resp.status, 200);
        assert!(
            resp.headers
                .contains(&("content-type".into(), "text/event-stream".into()))
        );
        let events = sse_data(&resp.body);
        assert_eq!(events.len(), frames, "one event per frame");
        assert!(frames > 4, "{events:?}");
        assert_eq!(events.last().unwrap(), "[DONE]");
        let mut text = String::new();
        let mut finish = None;
        let mut usage = None;
        for e in &events[..events.len() - 1] {
            let v: serde_json::Value = serde_json::from_str(e)?;
            assert_eq!(v["object"], "chat.completion.chunk");
            if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
                text.push_str(c);
            }
            if let Some(f) = v["choices"][0]["finish_reason"].as_str() {
                finish = Some(f.to_owned());
            }
            if !v["usage"].is_null() {
                usage = Some(v["usage"].clone());
            }
        }
        assert!(!text.is_empty());
        assert!(finish.is_some());
        let usage = usage.expect("include_usage");
        r.verify_signature()?;
        assert_eq!(r.worker, w.node.address());
        assert_eq!(r.request_hash, B256::from(rh));
        assert_eq!(r.response_hash, B256::from(sh));
        assert_eq!(
            r.model_hash,
            B256::from(file_hash),
            "receipt names the model file"
        );
        assert_eq!(
            r.code_hash,
            B256::from(pith_crypto::sha256(manifest.as_bytes()))
        );
        assert!(usage["completion_tokens"].as_u64().unwrap() >= 1);
        streamed.push(text);
    }
    assert_eq!(streamed[0], streamed[1], "greedy streams differ");

    // Whole (plain OHTTP): the same text as the stream, a chat.completion object.
    let (wire, session) = ClientSession::encapsulate(&cfg, &chat(false))?;
    let inv = client(&w).invoke(B256::from(inf.0), wire).await?;
    let (resp, _) = session.decapsulate(&inv.ohttp_res)?;
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let v: serde_json::Value = serde_json::from_slice(&resp.body)?;
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], streamed[0].as_str());
    assert_eq!(inv.receipt.model_hash, B256::from(file_hash));

    // The model list; requests the service refuses, in the encrypted answer.
    let list = Request::new("GET", "/v1/models", vec![], vec![], [1; 16], now() + 60);
    let (resp, _, r, _, _) = chunked_call(&w, inf, &cfg, &list).await?;
    let v: serde_json::Value = serde_json::from_slice(&resp.body)?;
    assert_eq!(v["data"][0]["id"], "SmolLM2-135M-Instruct");
    assert_eq!(r.model_hash, B256::ZERO, "no tokens, no model named");
    for (body, status, code) in [
        (
            r#"{"model":"gpt-4","messages":[{"role":"user","content":"x"}]}"#,
            404,
            "model_not_found",
        ),
        (r#"{"messages":[]}"#, 400, "invalid_request"),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"temperature":3}"#,
            400,
            "invalid_request",
        ),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"n":2}"#,
            400,
            "unsupported",
        ),
        ("not json", 400, "invalid_json"),
    ] {
        let (resp, _, _, _, _) = chunked_call(
            &w,
            inf,
            &cfg,
            &request("/v1/chat/completions", body, now() + 60),
        )
        .await?;
        assert_eq!(resp.status, status, "{body}");
        let v: serde_json::Value = serde_json::from_slice(&resp.body)?;
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
    }

    // A manifest naming another model: refused before anything runs, so a gateway retries
    // elsewhere.
    let (wire, _) = ClientSession::encapsulate(&n.key_config(wrong), &chat(false))?;
    let e = client(&w)
        .invoke(B256::from(wrong.0), wire)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("model_unavailable")
            || format!("{e:?}").contains("ModelUnavailable"),
        "{e:?}"
    );

    // An ordinary program over a chunked exchange: one DATA frame, its receipt at the end.
    let (resp, frames, r, _, _) = chunked_call(
        &w,
        plain,
        &n.key_config(plain),
        &request("/hello", "x", now() + 60),
    )
    .await?;
    assert_eq!((resp.status, frames), (200, 1));
    r.verify_signature()?;
    assert_eq!(r.model_hash, B256::ZERO);

    stop.cancel();
    w.done.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_requests_cannot_pose_as_the_scheduler() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    // pith-* headers are the worker's (agent firings, oracle requests): a user's are dropped.
    const ECHO: &str = r#"export default { async fetch(request) {
      return Response.json([request.headers.get("pith-trigger"), request.headers.get("pith-oracle-request"), request.headers.get("x-kept")]);
    } }"#;
    let n = net().await?;
    let p = n.program(ECHO, ECHO).await?;
    let (w, stop) = n.worker("echo0", &[p]).await?;
    let mut nonce = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let req = Request::new(
        "POST",
        "/.pith/agent",
        vec![
            ("pith-trigger".into(), "cron".into()),
            ("pith-oracle-request".into(), "7".into()),
            ("x-kept".into(), "yes".into()),
        ],
        br#"{"trigger":"cron"}"#.to_vec(),
        nonce,
        now() + 60,
    );
    let (wire, session) = ClientSession::encapsulate(&n.key_config(p), &req)?;
    let inv = client(&w).invoke(B256::from(p.0), wire).await?;
    let (resp, _) = session.decapsulate(&inv.ohttp_res)?;
    assert_eq!(resp.status, 200);
    assert_eq!(String::from_utf8_lossy(&resp.body), r#"[null,null,"yes"]"#);
    stop.cancel();
    w.done.await??;
    Ok(())
}
