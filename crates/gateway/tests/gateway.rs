//! The gateway over real sockets on loopback against a real anvil with the contracts
//! deployed. Workers and the KMS are real HTTP servers doing the real cryptography (see
//! `common/mod.rs`), standing in for `pith-worker` and `pith-kms` until those land.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use alloy::primitives::{Address, B256, keccak256};
use anyhow::Result;
use common::*;
use pith_api::ErrorKind;
use pith_api::gateway::{Client, ClientError};
use pith_crypto::envelope::{ClientSession, Request};
use pith_gateway::{Gateway, GatewayConfig};

async fn gateway(
    chain: &Chain,
    dir: &std::path::Path,
    tweak: impl FnOnce(&mut GatewayConfig),
) -> Result<(Gateway, Client)> {
    let mut cfg = GatewayConfig::new(dir, chain.anvil.url(), chain.deployment.clone());
    cfg.health_interval = Duration::from_millis(200);
    tweak(&mut cfg);
    let g = Gateway::start(cfg).await?;
    let c = Client::new(&g.url())?;
    Ok((g, c))
}

fn kind(e: &ClientError) -> Option<ErrorKind> {
    e.kind()
}

#[tokio::test]
async fn code_store_health_network_openapi() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let chain = Chain::start().await?;
    let dir = tempfile::tempdir()?;
    let (g, c) = gateway(&chain, dir.path(), |cfg| cfg.max_code_bytes = 1024).await?;

    assert!(c.health().await?);
    let net = c.network().await?;
    assert_eq!(net.chain_id, chain.deployment.chain_id);
    assert_eq!(
        net.deployment["contracts"]["Registry"],
        serde_json::json!(chain.deployment.contracts.registry)
    );

    // Code: content-addressed by sha256, idempotent, read back checked.
    let code = b"export default { fetch() { return new Response('hi') } }".to_vec();
    let up = c.upload_code(code.clone()).await?;
    assert_eq!(up.code_hash.0, pith_crypto::sha256(&code));
    assert_eq!(up.size, code.len() as u64);
    assert_eq!(c.upload_code(code.clone()).await?.code_hash, up.code_hash);
    assert_eq!(c.code(up.code_hash).await?, code);
    // Negative: unknown hash, malformed hash, oversized upload, empty upload.
    assert_eq!(
        kind(&c.code(B256::repeat_byte(7)).await.unwrap_err()),
        Some(ErrorKind::NotFound)
    );
    let r = reqwest::get(format!("{}/v1/code/0xzz", g.url())).await?;
    assert_eq!(r.status(), 400);
    let e = c.upload_code(vec![0u8; 1025]).await.unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::TooLarge), "{e}");
    assert_eq!(
        kind(&c.upload_code(Vec::new()).await.unwrap_err()),
        Some(ErrorKind::BadRequest)
    );

    // OpenAPI: served, and every routed path answers from its own handler (not the
    // router's fallback).
    let doc = c.openapi().await?;
    assert_eq!(doc["openapi"], "3.1.0");
    let http = reqwest::Client::new();
    for (method, path) in pith_gateway::routes::ROUTES {
        let p = path
            .replace("{hash}", &format!("{}", B256::repeat_byte(1)))
            .replace("{id}", "1")
            .replace("{address}", &format!("{}", Address::repeat_byte(1)));
        let url = format!("{}{}", g.url(), p);
        let resp = match *method {
            "get" => http.get(&url).send().await?,
            "post" => http.post(&url).body("x").send().await?,
            "put" => http.put(&url).body("x").send().await?,
            other => panic!("method {other}"),
        };
        assert_ne!(resp.status(), 405, "{method} {path}");
        let body = resp.text().await?;
        assert!(
            !body.contains("no such route"),
            "{method} {path} fell through to the fallback"
        );
        assert!(
            doc["paths"][*path][*method].is_object(),
            "{method} {path} undocumented"
        );
    }
    // Unknown routes are typed JSON errors.
    let r = http.get(format!("{}/v1/nope", g.url())).send().await?;
    assert_eq!(r.status(), 404);
    let b: pith_api::ErrorBody = serde_json::from_slice(&r.bytes().await?)?;
    assert_eq!(b.error.kind, ErrorKind::NotFound);

    // The store survives a restart.
    g.shutdown().await;
    let (g, c) = gateway(&chain, dir.path(), |_| {}).await?;
    assert_eq!(c.code(up.code_hash).await?, code);
    g.shutdown().await;
    chain.anvil.stop().await?;
    Ok(())
}

/// A server that serves wrong bytes for every code hash: the client refuses them.
#[tokio::test]
async fn client_refuses_code_that_does_not_match_its_hash() -> Result<()> {
    let app = axum::Router::new().route(
        pith_api::gateway::CODE_BY_HASH,
        axum::routing::get(|| async { b"not the code you asked for".to_vec() }),
    );
    let s = Server::start(app).await;
    let c = Client::new(&s.url())?;
    let want = B256::from(pith_crypto::sha256(b"the real code"));
    match c.code(want).await {
        Err(ClientError::CodeMismatch { expected, actual }) => {
            assert_eq!(expected, want);
            assert_eq!(actual.0, pith_crypto::sha256(b"not the code you asked for"));
        }
        other => panic!("expected CodeMismatch, got {other:?}"),
    }
    s.stop().await;
    Ok(())
}

#[tokio::test]
async fn workers_announce_health_and_evidence() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let chain = Chain::start().await?;
    let dir = tempfile::tempdir()?;
    let (g, c) = gateway(&chain, dir.path(), |_| {}).await?;

    let w1 = StandInWorker::new(0x31, &chain.deployment);
    let s1 = Server::start(w1.router()).await;
    let evidence = b"simulated evidence of worker 1".to_vec();

    // Negative: a worker not registered on chain is refused.
    let e = c
        .announce(&w1.announce(&s1.url(), now()))
        .await
        .unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::PolicyRejected), "{e}");

    chain.register_worker(w1.address, &evidence).await?;
    // The chain watcher finds it without an announcement.
    eventually("registered worker listed from the chain", || async {
        c.workers()
            .await
            .map(|ws| ws.iter().any(|w| w.address == w1.address && w.registered))
            .unwrap_or(false)
    })
    .await;
    let entry = c.worker(w1.address).await?;
    assert_eq!(entry.url, None);
    assert!(!entry.healthy);
    assert_eq!(entry.platform, "simulated");
    assert_eq!(entry.evidence_hash, keccak256(&evidence));
    assert_eq!(entry.measurement_hash, B256::from(WORKER_MEASUREMENT));
    assert!(entry.registered_block.is_some());

    // Negatives: signature by another key, stale timestamp, malformed body, bad URL.
    let mut forged = w1.announce(&s1.url(), now());
    let other = k256::ecdsa::SigningKey::from_slice(&[0x99; 32])?;
    let digest = pith_api::binding::message_digest(
        pith_api::binding::ANNOUNCE_TAG,
        &[forged.worker.as_slice(), forged.url.as_bytes()],
        forged.timestamp,
    );
    forged.signature = pith_crypto::receipt::sign_hash(&other, &digest)?.to_vec();
    assert_eq!(
        kind(&c.announce(&forged).await.unwrap_err()),
        Some(ErrorKind::Unauthorized)
    );
    let mut tampered = w1.announce(&s1.url(), now());
    tampered.url = "http://127.0.0.1:1".into();
    assert_eq!(
        kind(&c.announce(&tampered).await.unwrap_err()),
        Some(ErrorKind::Unauthorized)
    );
    assert_eq!(
        kind(
            &c.announce(&w1.announce(&s1.url(), now() - 600))
                .await
                .unwrap_err()
        ),
        Some(ErrorKind::Expired)
    );
    assert_eq!(
        kind(
            &c.announce(&w1.announce("ftp://x", now()))
                .await
                .unwrap_err()
        ),
        Some(ErrorKind::BadRequest)
    );
    let r = reqwest::Client::new()
        .post(format!("{}/v1/workers/announce", g.url()))
        .body("{")
        .send()
        .await?;
    assert_eq!(r.status(), 400);

    // A good announcement: healthy after the next check.
    let t = now();
    c.announce(&w1.announce(&s1.url(), t)).await?;
    eventually("worker healthy", || async {
        c.worker(w1.address)
            .await
            .map(|w| w.healthy)
            .unwrap_or(false)
    })
    .await;
    assert_eq!(
        c.worker(w1.address).await?.url.as_deref(),
        Some(s1.url().as_str())
    );
    // An older announcement than the accepted one is refused.
    assert_eq!(
        kind(
            &c.announce(&w1.announce(&s1.url(), t - 5))
                .await
                .unwrap_err()
        ),
        Some(ErrorKind::Replay)
    );

    // Evidence from the registration calldata, keccak-checked.
    assert_eq!(c.worker_evidence(w1.address).await?, evidence);
    assert_eq!(
        kind(
            &c.worker_evidence(Address::repeat_byte(5))
                .await
                .unwrap_err()
        ),
        Some(ErrorKind::NotFound)
    );
    assert_eq!(
        kind(&c.worker(Address::repeat_byte(5)).await.unwrap_err()),
        Some(ErrorKind::NotFound)
    );

    // Draining: out of routing; healthy again when it says so.
    w1.draining_health.store(true, Ordering::Relaxed);
    eventually("worker draining", || async {
        !c.worker(w1.address)
            .await
            .map(|w| w.healthy)
            .unwrap_or(true)
    })
    .await;
    w1.draining_health.store(false, Ordering::Relaxed);
    eventually("worker back", || async {
        c.worker(w1.address)
            .await
            .map(|w| w.healthy)
            .unwrap_or(false)
    })
    .await;

    // Down: unhealthy after failed checks; back after a restart on the same port.
    let addr = s1.addr;
    s1.stop().await;
    eventually("worker unhealthy", || async {
        !c.worker(w1.address)
            .await
            .map(|w| w.healthy)
            .unwrap_or(true)
    })
    .await;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = w1.router();
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    eventually("worker rejoins", || async {
        c.worker(w1.address)
            .await
            .map(|w| w.healthy)
            .unwrap_or(false)
    })
    .await;
    task.abort();

    let metrics = c.metrics().await?;
    assert!(
        metrics.contains(&format!(
            "pith_gateway_worker_healthy{{worker=\"{}\"}}",
            w1.address
        )),
        "{metrics}"
    );
    g.shutdown().await;
    chain.anvil.stop().await?;
    Ok(())
}

#[tokio::test]
async fn programs_keys_invocation_failover_and_receipts() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let chain = Chain::start().await?;
    let d = chain.deployment.clone();
    let member = k256::ecdsa::SigningKey::from_slice(&alloy::primitives::hex::decode(
        chain.anvil.accounts()[9]
            .private_key
            .trim_start_matches("0x"),
    )?)?;
    let outsider = k256::ecdsa::SigningKey::from_slice(&[0x77; 32])?;
    let good_kms = Server::start(kms_router(Arc::new(StandInKms {
        signer: member,
        chain_id: d.chain_id,
        registry: d.contracts.registry,
    })))
    .await;
    let bad_kms = Server::start(kms_router(Arc::new(StandInKms {
        signer: outsider,
        chain_id: d.chain_id,
        registry: d.contracts.registry,
    })))
    .await;

    let code_hash = B256::from(pith_crypto::sha256(b"program code"));
    let program = chain.register_program(2, code_hash).await?;
    let owner = chain.account(2);

    // Negative: a gateway whose only KMS is not a committee member serves no key.
    let bad_dir = tempfile::tempdir()?;
    let (bg, bc) = gateway(&chain, bad_dir.path(), |cfg| {
        cfg.kms_urls = vec![bad_kms.url()]
    })
    .await?;
    let e = bc.ohttp_keys(program).await.unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::Unavailable), "{e}");
    assert!(e.to_string().contains("not a KMS committee member"), "{e}");
    assert!(bc.program(program).await?.key.is_none());
    bg.shutdown().await;

    let dir = tempfile::tempdir()?;
    let (g, c) = gateway(&chain, dir.path(), |cfg| {
        cfg.kms_urls = vec![bad_kms.url(), good_kms.url()];
        cfg.max_secrets_bytes = 256;
        // Only routing takes a worker out for failures here, so which worker a refused
        // connection hits is deterministic (health checks still bring workers back).
        cfg.unhealthy_after = 1_000;
    })
    .await?;

    // Programs from the chain, with the checked key.
    let list = c.programs().await?;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].program_id, program);
    assert_eq!(list[0].owner, owner.address());
    assert_eq!(list[0].code_hash, code_hash);
    assert_eq!(list[0].config.memory_mib, 64);
    let p = c.program(program).await?;
    assert!(p.key.is_some());
    assert_eq!(
        c.program(B256::from(
            alloy::primitives::U256::from(1).to_be_bytes::<32>()
        ))
        .await?
        .program_id,
        program
    );
    assert_eq!(
        kind(&c.program(B256::repeat_byte(0x55)).await.unwrap_err()),
        Some(ErrorKind::UnknownProgram)
    );
    let (keys, cert) = c.ohttp_keys(program).await?;
    assert_eq!(cert.verify(&keys, now())?, chain.kms.address());
    assert_eq!(keys, program_server(program).encoded_key_configs()?);

    // Secrets: opaque blob, replace, size cap, unknown program.
    c.put_secrets(program, b"sealed-1".to_vec()).await?;
    c.put_secrets(program, b"sealed-2".to_vec()).await?;
    assert_eq!(c.secrets(program).await?, b"sealed-2");
    assert_eq!(
        kind(&c.put_secrets(program, vec![1; 257]).await.unwrap_err()),
        Some(ErrorKind::TooLarge)
    );
    assert_eq!(
        kind(
            &c.put_secrets(B256::repeat_byte(0x55), b"x".to_vec())
                .await
                .unwrap_err()
        ),
        Some(ErrorKind::UnknownProgram)
    );
    assert_eq!(
        kind(&c.secrets(B256::repeat_byte(0x55)).await.unwrap_err()),
        Some(ErrorKind::NotFound)
    );

    // No worker yet.
    let req = Request::new("POST", "/", vec![], b"hi".to_vec(), [1; 16], now() + 60);
    let (wire, _) = ClientSession::encapsulate(&keys, &req)?;
    assert_eq!(
        kind(&c.invoke(program, wire).await.unwrap_err()),
        Some(ErrorKind::NoWorker)
    );

    // Two workers.
    let wa = StandInWorker::new(0x41, &d);
    let wb = StandInWorker::new(0x42, &d);
    let sa = Server::start(wa.router()).await;
    let sb = Server::start(wb.router()).await;
    for (w, s) in [(&wa, &sa), (&wb, &sb)] {
        chain
            .register_worker(w.address, format!("evidence {}", w.address).as_bytes())
            .await?;
        c.announce(&w.announce(&s.url(), now())).await?;
    }
    eventually("both workers healthy", || async {
        c.workers()
            .await
            .map(|ws| ws.iter().filter(|w| w.healthy).count() == 2)
            .unwrap_or(false)
    })
    .await;

    // Encrypted round trips, spread over both workers, receipts checked and stored.
    let mut hashes = Vec::new();
    for i in 0..6u8 {
        let req = Request::new("POST", "/", vec![], vec![b'a' + i], [i; 16], now() + 60);
        let (wire, session) = ClientSession::encapsulate(&keys, &req)?;
        let request_hash = session.request_hash();
        let inv = c.invoke(program, wire).await?;
        let (resp, response_hash) = session.decapsulate(&inv.body)?;
        assert_eq!(resp.body, [b"echo:".as_slice(), &[b'a' + i]].concat());
        let r = inv.receipt.expect("receipt header");
        r.verify_signature()?;
        assert_eq!(r.request_hash.0, request_hash);
        assert_eq!(r.response_hash.0, response_hash);
        assert_eq!(Some(r.worker), inv.worker);
        hashes.push(B256::from(request_hash));
    }
    assert!(
        wa.invoked.load(Ordering::Relaxed) >= 1 && wb.invoked.load(Ordering::Relaxed) >= 1,
        "both workers used"
    );
    eventually("receipts stored", || async {
        c.receipts(Some(program), Some(100))
            .await
            .map(|l| l.len() == 6)
            .unwrap_or(false)
    })
    .await;
    let stored = c.receipt(hashes[0]).await?;
    assert_eq!(stored.request_hash, hashes[0]);
    let newest = c.receipts(None, Some(1)).await?;
    assert_eq!(newest[0].request_hash, hashes[5]);
    assert_eq!(
        kind(&c.receipt(B256::repeat_byte(9)).await.unwrap_err()),
        Some(ErrorKind::NotFound)
    );
    assert_eq!(c.program(program).await?.calls, 6);

    // A forged receipt is passed through (the client checks it) and never served back.
    wa.set_mode(Mode::ForgedReceipt);
    wb.set_mode(Mode::ForgedReceipt);
    let req = Request::new("POST", "/", vec![], b"forged".to_vec(), [9; 16], now() + 60);
    let (wire, session) = ClientSession::encapsulate(&keys, &req)?;
    let inv = c.invoke(program, wire).await?;
    assert!(inv.receipt.expect("receipt").verify_signature().is_err());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        kind(
            &c.receipt(B256::from(session.request_hash()))
                .await
                .unwrap_err()
        ),
        Some(ErrorKind::NotFound)
    );
    assert_eq!(
        c.receipts(Some(program), Some(100)).await?.len(),
        6,
        "a forged receipt is never listed"
    );
    // A valid receipt of another worker than the one that answered is not stored either.
    wa.set_mode(Mode::OtherWorkersReceipt);
    wb.set_mode(Mode::OtherWorkersReceipt);
    let req = Request::new("POST", "/", vec![], b"other".to_vec(), [10; 16], now() + 60);
    let (wire, session) = ClientSession::encapsulate(&keys, &req)?;
    let inv = c.invoke(program, wire).await?;
    let r = inv.receipt.expect("receipt");
    r.verify_signature()?;
    assert_ne!(Some(r.worker), inv.worker);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        kind(
            &c.receipt(B256::from(session.request_hash()))
                .await
                .unwrap_err()
        ),
        Some(ErrorKind::NotFound)
    );
    wa.set_mode(Mode::Normal);
    wb.set_mode(Mode::Normal);

    // Failover on `draining`: wa refuses before running; every request lands on wb.
    wa.set_mode(Mode::RefuseDraining);
    let before_b = wb.invoked.load(Ordering::Relaxed);
    let before_a = wa.invoked.load(Ordering::Relaxed);
    for i in 0..4u8 {
        let req = Request::new("POST", "/", vec![], vec![i], [0x20 + i; 16], now() + 60);
        let (wire, _) = ClientSession::encapsulate(&keys, &req)?;
        let inv = c.invoke(program, wire).await?;
        assert_eq!(inv.worker, Some(wb.address));
    }
    assert_eq!(wb.invoked.load(Ordering::Relaxed), before_b + 4);
    assert_eq!(
        wa.invoked.load(Ordering::Relaxed),
        before_a,
        "a draining refusal runs nothing"
    );
    wa.set_mode(Mode::Normal);
    // Back in routing after its next passing health check.
    eventually("wa healthy again", || async {
        c.worker(wa.address)
            .await
            .map(|w| w.healthy)
            .unwrap_or(false)
    })
    .await;

    // Failover on a refused connection: wa's server goes away; requests still succeed
    // through wb without waiting for a health check.
    sa.stop().await;
    for i in 0..4u8 {
        let req = Request::new("POST", "/", vec![], vec![i], [0x30 + i; 16], now() + 60);
        let (wire, _) = ClientSession::encapsulate(&keys, &req)?;
        let inv = c.invoke(program, wire).await?;
        assert_eq!(inv.worker, Some(wb.address));
    }
    assert!(g.failovers() >= 2, "failovers counted: {}", g.failovers());
    assert!(
        !c.worker(wa.address).await?.healthy,
        "a refused connection takes the worker out of routing"
    );

    // Never retried after delivery: a worker that takes the request and drops the
    // connection without answering fails the request, and the other healthy worker (wb)
    // never sees it.
    let crash = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let crash_url = format!("http://{}", crash.local_addr()?);
    let crash_posts = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let posts = crash_posts.clone();
    let crash_task = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut sock, _)) = crash.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 65536];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if text.starts_with("GET") {
                let body = r#"{"ok":true,"registered":true,"draining":false,"in_flight":0}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(format!("{head}{body}").as_bytes()).await;
            } else {
                // POST: the request arrived; drop the connection without an answer (a crash
                // while running it).
                posts.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let wc = StandInWorker::new(0x43, &d);
    chain.register_worker(wc.address, b"evidence c").await?;
    c.announce(&wc.announce(&crash_url, now())).await?;
    eventually("crashing worker healthy", || async {
        c.worker(wc.address)
            .await
            .map(|w| w.healthy)
            .unwrap_or(false)
    })
    .await;
    let failovers = g.failovers();
    let mut crashed = 0;
    for i in 0..6u8 {
        let before_b = wb.invoked.load(Ordering::Relaxed);
        let req = Request::new(
            "POST",
            "/",
            vec![],
            b"x".to_vec(),
            [0x40 + i; 16],
            now() + 60,
        );
        let (wire, _) = ClientSession::encapsulate(&keys, &req)?;
        match c.invoke(program, wire).await {
            Ok(inv) => {
                assert_eq!(inv.worker, Some(wb.address));
                assert_eq!(wb.invoked.load(Ordering::Relaxed), before_b + 1);
            }
            Err(e) => {
                assert_eq!(kind(&e), Some(ErrorKind::Unavailable), "{e}");
                assert!(e.to_string().contains("not retried"), "{e}");
                assert_eq!(
                    wb.invoked.load(Ordering::Relaxed),
                    before_b,
                    "a delivered request was run again elsewhere"
                );
                crashed += 1;
            }
        }
    }
    assert!(crashed >= 1, "round robin reached the crashing worker");
    assert_eq!(crash_posts.load(Ordering::Relaxed), crashed);
    assert_eq!(
        g.failovers(),
        failovers,
        "a delivered request is never failed over"
    );
    crash_task.abort();

    // Logs fan-out: owner-signed; others refused.
    let ts = now();
    let digest =
        pith_api::binding::message_digest(pith_api::binding::LOGS_TAG, &[program.as_slice()], ts);
    let owner_key = k256::ecdsa::SigningKey::from_slice(&owner.to_bytes().0)?;
    let sig = pith_crypto::receipt::sign_hash(&owner_key, &digest)?;
    let logs = c.logs(program, ts, &sig).await?;
    assert!(
        logs.entries.iter().any(|e| e.worker == wb.address),
        "{logs:?}"
    );
    let stranger = pith_crypto::receipt::sign_hash(
        &k256::ecdsa::SigningKey::from_slice(&[0x12; 32])?,
        &digest,
    )?;
    assert_eq!(
        kind(&c.logs(program, ts, &stranger).await.unwrap_err()),
        Some(ErrorKind::Unauthorized)
    );
    assert_eq!(
        kind(&c.logs(program, ts - 600, &sig).await.unwrap_err()),
        Some(ErrorKind::Expired)
    );

    let metrics = c.metrics().await?;
    assert!(
        metrics.contains("pith_gateway_failovers_total{reason=\"draining\"}"),
        "{metrics}"
    );
    // the receipt of another worker is rejected on the invocation path; the forged one is
    // stored but its signature fails when read back (once by id, once in the list).
    assert!(
        metrics.contains("pith_gateway_receipts_total{outcome=\"rejected\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pith_gateway_receipts_total{outcome=\"bad_signature_not_served\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "pith_gateway_invocations_total{{outcome=\"failed_after_delivery\"}} {crashed}"
        )),
        "{metrics}"
    );
    assert!(
        !metrics.contains("pith_gateway_failovers_total{reason=\"connect\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"/v1/programs/{id}/invoke\""),
        "{metrics}"
    );

    // Receipts survive a restart.
    g.shutdown().await;
    let (g, c) = gateway(&chain, dir.path(), |_| {}).await?;
    assert_eq!(c.receipt(hashes[3]).await?.request_hash, hashes[3]);
    g.shutdown().await;
    sb.stop().await;
    chain.anvil.stop().await?;
    Ok(())
}

#[tokio::test]
async fn rate_limit_per_ip() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let chain = Chain::start().await?;
    let dir = tempfile::tempdir()?;
    let (g, c) = gateway(&chain, dir.path(), |cfg| cfg.rate_limit = Some(2.0)).await?;
    // Burst of 2, then 429 rate_limited; health and metrics are exempt.
    let mut kinds = Vec::new();
    for _ in 0..4 {
        kinds.push(c.programs().await.err().and_then(|e| e.kind()));
    }
    assert_eq!(kinds[..2], [None, None]);
    assert!(
        kinds[2..]
            .iter()
            .all(|k| *k == Some(ErrorKind::RateLimited)),
        "{kinds:?}"
    );
    assert!(c.health().await?);
    let m = c.metrics().await?;
    assert!(m.contains("pith_gateway_rate_limited_total 2"), "{m}");
    assert!(
        m.contains("route=\"/v1/programs\",method=\"GET\",status=\"429\"} 2"),
        "{m}"
    );
    // Refilled after a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.programs().await?;
    g.shutdown().await;
    chain.anvil.stop().await?;
    Ok(())
}
