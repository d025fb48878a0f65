//! The real worker (`pith-worker`) against the real KMS (`pith-kms`) on loopback with anvil:
//! registration through the KMS, key release on first use, a governance-ordered rotation
//! picked up by the worker, and a worker whose measurement the chain does not allow getting
//! neither registration nor keys. (Here, not in either service crate: services never depend
//! on each other.)

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use anyhow::Result;
use pith_api::kms::ProgramKeyInfo;
use pith_attest::provider::{EvidenceSource, SimulatedOptions, SimulatedSource};
use pith_chain::anvil::{Anvil, AnvilConfig};
use pith_chain::bindings::Programs;
use pith_chain::client::{PithContracts, Proposal, read_provider, signing_provider};
use pith_chain::deploy::{DeployConfig, Measurement, deploy, platform, role};
use pith_chain::manifest::Deployment;
use tokio_util::sync::CancellationToken;

fn anvil_available() -> bool {
    match pith_chain::anvil::find_anvil(None) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("SKIP: anvil is not installed ({e}); run scripts/install.d/node-tools");
            false
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The measurement hash of simulated evidence from this test binary.
fn local_measurement() -> B256 {
    let ca = pith_attest::simulated::DevCa::generate(std::time::SystemTime::now()).unwrap();
    let der = ca.cert_der().to_vec();
    let src = SimulatedSource::new(ca, &SimulatedOptions::default()).unwrap();
    let evidence = src.quote(&[0; 64]).unwrap();
    let mut options = pith_attest::VerifyOptions::default();
    options.dev_ca = Some(der);
    let v = pith_attest::verify(
        &pith_attest::Evidence::new(pith_attest::Platform::Simulated, evidence),
        &pith_attest::Collateral::default(),
        &options,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    B256::from(pith_attest::measurement_hash(&v))
}

struct Net {
    anvil: Anvil,
    dir: tempfile::TempDir,
    dev_ca: PathBuf,
    manifest: PathBuf,
    measurement: B256,
}

impl Net {
    async fn new() -> Result<Self> {
        let anvil = Anvil::start(AnvilConfig::new()).await?;
        let dir = tempfile::tempdir()?;
        let dev_ca = dir.path().join("dev-ca");
        pith_attest::simulated::DevCa::init(&dev_ca, std::time::SystemTime::now())?;
        let manifest = dir.path().join("deployment.json");
        Ok(Self { anvil, dir, dev_ca, manifest, measurement: local_measurement() })
    }

    async fn start_kms(&self) -> Result<(pith_kms::Running, CancellationToken)> {
        let mut c = pith_kms::Config::new(self.dir.path().join("kms-0"), "127.0.0.1:0".parse().unwrap(), self.anvil.url(), self.manifest.clone());
        c.dev_ca_dir = Some(self.dev_ca.clone());
        c.poll = Duration::from_millis(200);
        let stop = CancellationToken::new();
        let r = pith_kms::start(c, stop.clone()).await?;
        Ok((r, stop))
    }

    fn signer(&self, i: usize) -> PrivateKeySigner {
        self.anvil.accounts()[i].private_key.parse().unwrap()
    }

    async fn deploy(&self, committee: Vec<Address>) -> Result<Deployment> {
        let deployer = self.signer(0);
        let provider = signing_provider(&self.anvil.url(), deployer.clone())?;
        for m in &committee {
            let _: serde_json::Value = provider
                .raw_request("anvil_setBalance".into(), serde_json::json!([m, "0x56BC75E2D63100000"]))
                .await?;
        }
        let mut cfg = DeployConfig::local(deployer.address(), committee);
        cfg.kms_threshold = 1;
        cfg.measurements = vec![
            Measurement { platform: platform::SIMULATED, role: role::WORKER, hash: self.measurement },
            Measurement { platform: platform::SIMULATED, role: role::KMS, hash: self.measurement },
        ];
        let d = deploy(&provider, deployer.address(), &self.anvil.url(), &cfg).await?;
        d.write(&self.manifest)?;
        Ok(d)
    }

    fn contracts(&self, d: &Deployment, i: usize) -> Result<PithContracts> {
        Ok(PithContracts::new(d, signing_provider(&self.anvil.url(), self.signer(i))?))
    }

    async fn provider(&self) -> Result<DynProvider> {
        Ok(read_provider(&self.anvil.url())?)
    }
}

async fn wait_for<F: Fn() -> bool>(what: &str, f: F) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn program_key(kms: std::net::SocketAddr, id: B256) -> ProgramKeyInfo {
    let url = format!("http://{kms}{}", pith_api::kms::PROGRAM_KEY.replace("{id}", &format!("{id:#x}")));
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

/// Governance (the deployer holds the local allocation's votes) orders a KMS key rotation.
async fn rotate(net: &Net, d: &Deployment) -> Result<u32> {
    let gov = net.contracts(d, 0)?;
    let p = Proposal {
        targets: vec![d.contracts.registry],
        values: vec![U256::ZERO],
        calldatas: vec![pith_chain::client::RegistryClient::rotate_kms_key_calldata()],
        description: format!("Rotate the KMS master key {}", now()),
    };
    let provider = net.provider().await?;
    let id = gov.governor.hash_proposal(&p).await?;
    gov.governor.send_propose(&p).await?;
    let _: serde_json::Value = provider.raw_request("anvil_mine".into(), serde_json::json!(["0x2"])).await?;
    gov.governor.send_vote(id, 1).await?;
    let _: serde_json::Value = provider.raw_request("anvil_mine".into(), serde_json::json!(["0x6"])).await?;
    gov.governor.send_queue(&p).await?;
    let _: serde_json::Value = provider.raw_request("evm_increaseTime".into(), serde_json::json!([2])).await?;
    gov.governor.send_execute(&p).await?;
    Ok(gov.registry.kms_key_epoch().await?)
}

/// Code by hash and an announcement sink: what a worker reads from a gateway.
async fn serve_code(code: Vec<u8>) -> String {
    use axum::extract::Path as AxPath;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let hash = format!("0x{}", hex::encode(pith_crypto::sha256(&code)));
    let app = axum::Router::new()
        .route(
            pith_api::gateway::CODE_BY_HASH,
            axum::routing::get(move |AxPath(h): AxPath<String>| {
                let (code, hash) = (code.clone(), hash.clone());
                async move { if h == hash { (StatusCode::OK, code).into_response() } else { StatusCode::NOT_FOUND.into_response() } }
            }),
        )
        .route(pith_api::gateway::PROGRAM_SECRETS, axum::routing::get(|| async { StatusCode::NOT_FOUND }))
        .route(pith_api::gateway::ANNOUNCE, axum::routing::post(|| async { StatusCode::NO_CONTENT }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

/// The real worker (pith-worker) registers through the KMS and gets its keys from it; a worker
/// whose measurement the chain does not allow is never registered and runs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_worker_registers_and_runs_with_released_keys() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let net = Net::new().await?;
    let (kms, stop) = net.start_kms().await?;
    let d = net.deploy(vec![kms.kms.address()]).await?;
    let k = kms.kms.clone();
    wait_for("the deployment", || k.chain().is_some()).await;
    let code = b"export default { async fetch(request) { return new Response('hello ' + await request.text()) } }".to_vec();
    let gateway = serve_code(code.clone()).await;
    let dev = net.contracts(&d, 1)?;
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
    let (id, _) = dev.programs.send_register(B256::from(pith_crypto::sha256(&code)), cfg).await?;
    let program = B256::from(id.to_be_bytes::<32>());

    let worker_config = |name: &str, binary: Option<[u8; 48]>, operator: usize| pith_worker::Config {
        state_dir: net.dir.path().join(name),
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        rpc_url: net.anvil.url(),
        deployment: d.clone(),
        kms_urls: vec![format!("http://{}", kms.addr)],
        gateway_url: Some(gateway.clone()),
        operator: Some(net.signer(operator)),
        storage: net.dir.path().join("storage.sqlite"),
        dev_ca_dir: Some(net.dev_ca.clone()),
        collateral: std::sync::Arc::new(pith_attest::NoCollateral),
        danger_binary_sha384: binary,
        heartbeat: Duration::from_millis(500),
        usage_interval: Duration::from_secs(60),
        pool: pith_sandbox::pool::PoolConfig::default(),
    };
    let good_stop = CancellationToken::new();
    let good = pith_worker::start(worker_config("w-good", None, 2), good_stop.clone()).await?;
    let bad_stop = CancellationToken::new();
    let bad = pith_worker::start(worker_config("w-bad", Some([0xee; 48]), 3), bad_stop.clone()).await?;
    let good_client = pith_api::worker::Client::new(&format!("http://{}", good.addr));
    let bad_client = pith_api::worker::Client::new(&format!("http://{}", bad.addr));
    let mut registered = false;
    for _ in 0..100 {
        if good_client.info().await?.registered {
            registered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(registered, "the worker registered through the KMS");

    // The certified configuration from the KMS; the worker fetches the keys on first use.
    let key = program_key(kms.addr, program).await;
    let request = pith_crypto::envelope::Request::new("POST", "/", vec![], b"kms".to_vec(), [3; 16], now() + 60);
    let (wire, session) = pith_crypto::envelope::ClientSession::encapsulate(&key.ohttp_keys, &request)?;
    let answer = good_client.invoke(program, wire).await?;
    let (response, _) = session.decapsulate(&answer.ohttp_res)?;
    assert_eq!(response.body, b"hello kms");
    answer.receipt.verify_signature()?;

    // Governance rotates the master key: the KMS moves to epoch 1 and certifies the new
    // configuration; the worker, asked with the new key, fetches the new epoch (at most once per
    // KEY_REFRESH_INTERVAL after its last release) and still answers requests to the old one.
    let (old_wire, old_session) = pith_crypto::envelope::ClientSession::encapsulate(
        &key.ohttp_keys,
        &pith_crypto::envelope::Request::new("POST", "/", vec![], b"old".to_vec(), [5; 16], now() + 120),
    )?;
    assert_eq!(rotate(&net, &d).await?, 1);
    let k = kms.kms.clone();
    wait_for("the rotation", || k.epochs() == vec![0, 1]).await;
    let key1 = program_key(kms.addr, program).await;
    assert_eq!(key1.certificate.epoch, 1);
    tokio::time::sleep(pith_worker::node::KEY_REFRESH_INTERVAL).await;
    let request = pith_crypto::envelope::Request::new("POST", "/", vec![], b"epoch 1".to_vec(), [6; 16], now() + 60);
    let (wire, session) = pith_crypto::envelope::ClientSession::encapsulate(&key1.ohttp_keys, &request)?;
    assert_eq!(wire[0], 1, "encrypted to the epoch-1 key");
    let answer = good_client.invoke(program, wire).await?;
    assert_eq!(session.decapsulate(&answer.ohttp_res)?.0.body, b"hello epoch 1");
    let answer = good_client.invoke(program, old_wire).await?;
    assert_eq!(old_session.decapsulate(&answer.ohttp_res)?.0.body, b"hello old");

    // The unallowed worker: not registered after several heartbeats, and gets no keys.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!bad_client.info().await?.registered);
    assert!(!PithContracts::new(&d, net.provider().await?).registry.is_active_worker(bad.node.address()).await?);
    let request = pith_crypto::envelope::Request::new("POST", "/", vec![], b"x".to_vec(), [4; 16], now() + 60);
    let (wire, _) = pith_crypto::envelope::ClientSession::encapsulate(&key.ohttp_keys, &request)?;
    let e = bad_client.invoke(program, wire).await.unwrap_err();
    assert!(e.to_string().contains("KMS refused"), "{e}");

    good_stop.cancel();
    bad_stop.cancel();
    good.done.await??;
    bad.done.await??;
    stop.cancel();
    kms.done.await??;
    Ok(())
}
