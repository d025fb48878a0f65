//! The real worker (`pith-worker`) against the real KMS (`pith-kms`) on loopback with anvil:
//! registration through the KMS, key release on first use, a governance-ordered rotation
//! picked up by the worker, and a worker whose measurement the chain does not allow getting
//! neither registration nor keys. (Here, not in either service crate: services never depend
//! on each other.)

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::time::Duration;

use alloy::primitives::{B256, U256};
use anyhow::Result;
use pith_api::kms::ProgramKeyInfo;
use pith_chain::bindings::Programs;
use pith_chain::client::PithContracts;
use pith_testkit::{anvil_available, now, wait_for};
use tokio_util::sync::CancellationToken;

/// The chain (pith-testkit) plus a KMS starter.
struct Net(pith_testkit::ChainNet);

impl std::ops::Deref for Net {
    type Target = pith_testkit::ChainNet;
    fn deref(&self) -> &pith_testkit::ChainNet {
        &self.0
    }
}

impl Net {
    async fn new() -> Result<Self> {
        Ok(Self(pith_testkit::ChainNet::new().await?))
    }

    async fn start_kms(&self) -> Result<(pith_kms::Running, CancellationToken)> {
        let mut c = pith_kms::Config::new(
            self.dir.path().join("kms-0"),
            "127.0.0.1:0".parse().unwrap(),
            self.anvil.url(),
            self.manifest.clone(),
        );
        c.dev_ca_dir = Some(self.dev_ca.clone());
        c.poll = Duration::from_millis(200);
        let stop = CancellationToken::new();
        let r = pith_kms::start(c, stop.clone()).await?;
        Ok((r, stop))
    }
}

async fn program_key(kms: std::net::SocketAddr, id: B256) -> ProgramKeyInfo {
    let url = format!(
        "http://{kms}{}",
        pith_api::kms::PROGRAM_KEY.replace("{id}", &format!("{id:#x}"))
    );
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

/// Governance (the deployer holds the local allocation's votes) orders a KMS key rotation.

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
                async move {
                    if h == hash {
                        (StatusCode::OK, code).into_response()
                    } else {
                        StatusCode::NOT_FOUND.into_response()
                    }
                }
            }),
        )
        .route(
            pith_api::gateway::PROGRAM_SECRETS,
            axum::routing::get(|| async { StatusCode::NOT_FOUND }),
        )
        .route(
            pith_api::gateway::ANNOUNCE,
            axum::routing::post(|| async { StatusCode::NO_CONTENT }),
        );
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
    let (id, _) = dev
        .programs
        .send_register(B256::from(pith_crypto::sha256(&code)), cfg)
        .await?;
    let program = B256::from(id.to_be_bytes::<32>());

    let worker_config =
        |name: &str, binary: Option<[u8; 48]>, operator: usize| pith_worker::Config {
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
            model: None,
        };
    let good_stop = CancellationToken::new();
    let good = pith_worker::start(worker_config("w-good", None, 2), good_stop.clone()).await?;
    let bad_stop = CancellationToken::new();
    let bad = pith_worker::start(
        worker_config("w-bad", Some([0xee; 48]), 3),
        bad_stop.clone(),
    )
    .await?;
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
    let request = pith_crypto::envelope::Request::new(
        "POST",
        "/",
        vec![],
        b"kms".to_vec(),
        [3; 16],
        now() + 60,
    );
    let (wire, session) =
        pith_crypto::envelope::ClientSession::encapsulate(&key.ohttp_keys, &request)?;
    let answer = good_client.invoke(program, wire).await?;
    let (response, _) = session.decapsulate(&answer.ohttp_res)?;
    assert_eq!(response.body, b"hello kms");
    answer.receipt.verify_signature()?;

    // Governance rotates the master key: the KMS moves to epoch 1 and certifies the new
    // configuration; the worker, asked with the new key, fetches the new epoch (at most once per
    // KEY_REFRESH_INTERVAL after its last release) and still answers requests to the old one.
    let (old_wire, old_session) = pith_crypto::envelope::ClientSession::encapsulate(
        &key.ohttp_keys,
        &pith_crypto::envelope::Request::new(
            "POST",
            "/",
            vec![],
            b"old".to_vec(),
            [5; 16],
            now() + 120,
        ),
    )?;
    assert_eq!(net.rotate_kms_key(&d).await?, 1);
    let k = kms.kms.clone();
    wait_for("the rotation", || k.epochs() == vec![0, 1]).await;
    let key1 = program_key(kms.addr, program).await;
    assert_eq!(key1.certificate.epoch, 1);
    tokio::time::sleep(pith_worker::node::KEY_REFRESH_INTERVAL).await;
    let request = pith_crypto::envelope::Request::new(
        "POST",
        "/",
        vec![],
        b"epoch 1".to_vec(),
        [6; 16],
        now() + 60,
    );
    let (wire, session) =
        pith_crypto::envelope::ClientSession::encapsulate(&key1.ohttp_keys, &request)?;
    assert_eq!(wire[0], 1, "encrypted to the epoch-1 key");
    let answer = good_client.invoke(program, wire).await?;
    assert_eq!(
        session.decapsulate(&answer.ohttp_res)?.0.body,
        b"hello epoch 1"
    );
    let answer = good_client.invoke(program, old_wire).await?;
    assert_eq!(
        old_session.decapsulate(&answer.ohttp_res)?.0.body,
        b"hello old"
    );

    // The unallowed worker: not registered after several heartbeats, and gets no keys.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!bad_client.info().await?.registered);
    assert!(
        !PithContracts::new(&d, net.provider().await?)
            .registry
            .is_active_worker(bad.node.address())
            .await?
    );
    let request = pith_crypto::envelope::Request::new(
        "POST",
        "/",
        vec![],
        b"x".to_vec(),
        [4; 16],
        now() + 60,
    );
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
