//! The explorer's page and JSON API over real sockets against a real anvil with the contracts
//! deployed: workers registered with real simulated evidence, programs registered and
//! upgraded, a stake pool and a governance proposal made with real transactions; the
//! gateway-side evidence check with real pith-attest verification; bad input refused with
//! typed errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime};

use alloy::primitives::{B256, U256, keccak256};
use alloy::providers::Provider;
use anyhow::Result;
use common::*;
use pith_attest::provider::{EvidenceSource, SimulatedOptions, SimulatedSource};
use pith_chain::client::{PithContracts, Proposal, RegistryClient, signing_provider};
use pith_gateway::explorer::{
    Attestation, CallSeries, ExplorerPool, ExplorerProposal, ExplorerWorker, GatewayVerdict,
    Overview, ProgramPage,
};
use pith_gateway::{Gateway, GatewayConfig};
use serde_json::json;

struct Net {
    chain: Chain,
    gateway: Gateway,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Net {
    async fn start(dev_ca: Option<Vec<u8>>) -> Result<Self> {
        let chain = Chain::start().await?;
        let dir = tempfile::tempdir()?;
        let mut cfg = GatewayConfig::new(dir.path(), chain.anvil.url(), chain.deployment.clone());
        cfg.health_interval = Duration::from_millis(200);
        cfg.chain_refresh = Duration::from_millis(500);
        cfg.dev_ca = dev_ca;
        let gateway = Gateway::start(cfg).await?;
        Ok(Self {
            chain,
            gateway,
            http: reqwest::Client::new(),
            _dir: dir,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url())
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let r = self.http.get(self.url(path)).send().await?;
        anyhow::ensure!(
            r.status() == 200,
            "GET {path}: {} {}",
            r.status(),
            r.text().await?
        );
        Ok(serde_json::from_slice(&r.bytes().await?)?)
    }

    /// Status and error kind of a refused request.
    async fn refused(&self, r: reqwest::Response) -> (u16, String) {
        let status = r.status().as_u16();
        let body: serde_json::Value =
            serde_json::from_slice(&r.bytes().await.unwrap_or_default()).unwrap_or_default();
        (
            status,
            body["error"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    }

    async fn get_refused(&self, path: &str) -> (u16, String) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        self.refused(r).await
    }

    async fn verify(&self, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url("/explorer/api/verify-evidence"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .send()
            .await
            .unwrap()
    }

    async fn stop(self) -> Result<()> {
        self.gateway.shutdown().await;
        self.chain.anvil.stop().await?;
        Ok(())
    }
}

fn simulated_evidence() -> Result<(Vec<u8>, String)> {
    let ca = pith_attest::simulated::DevCa::generate(SystemTime::now())?;
    let pem = ca.cert_pem()?;
    let src = SimulatedSource::new(
        ca,
        &SimulatedOptions {
            binary_sha384: Some([1; 48]),
            ..Default::default()
        },
    )?;
    Ok((src.quote(&[7; 64])?, pem))
}

#[tokio::test]
async fn page_assets_and_security_headers() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let net = Net::start(None).await?;
    let r = net.http.get(net.url("/explorer/")).send().await?;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let csp = r.headers()["content-security-policy"].to_str()?.to_string();
    let rpc = net.chain.anvil.url();
    assert!(
        csp.contains(&format!("connect-src 'self' {}", rpc.trim_end_matches('/'))),
        "{csp}"
    );
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let html = r.text().await?;
    assert!(
        html.contains("/explorer/assets/app.js") && html.contains("<title>Pith explorer</title>")
    );

    let js = net
        .http
        .get(net.url("/explorer/assets/app.js"))
        .send()
        .await?;
    assert_eq!(js.status(), 200);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(js.bytes().await?.len() > 1000);
    let css = net
        .http
        .get(net.url("/explorer/assets/app.css"))
        .send()
        .await?;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    // Negative: no other file is served, and no path escapes the embedded set.
    assert_eq!(
        net.get_refused("/explorer/assets/index.html").await,
        (404, "not_found".into())
    );
    assert_eq!(
        net.get_refused("/explorer/assets/..%2F..%2FCargo.toml")
            .await,
        (404, "not_found".into())
    );

    // /explorer redirects to /explorer/.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let r = no_redirect.get(net.url("/explorer")).send().await?;
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "/explorer/");

    // Without a dev CA, simulated evidence cannot verify at the gateway (bad_chain), and the
    // overview says so.
    let (evidence, _) = simulated_evidence()?;
    let v: GatewayVerdict = net
        .verify(json!({"evidence": format!("0x{}", hex::encode(&evidence))}))
        .await
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b))??;
    assert!(!v.ok);
    assert_eq!(v.error.unwrap().class, "bad_chain");
    let o: Overview = net.get("/explorer/api/overview").await?;
    assert!(!o.dev_ca);
    net.stop().await
}

#[tokio::test]
async fn api_reads_chain_and_store_and_refuses_bad_input() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let (evidence, pem) = simulated_evidence()?;
    let net = Net::start(Some(pem.clone().into_bytes())).await?;
    let chain = &net.chain;

    // Overview before anything happened.
    let o: Overview = net.get("/explorer/api/overview").await?;
    assert_eq!(o.chain_id, chain.deployment.chain_id);
    assert_eq!(o.contracts["Registry"], chain.deployment.contracts.registry);
    assert_eq!(o.kms_members, vec![chain.kms.address()]);
    assert_eq!((o.programs, o.receipts, o.workers.known), (0, 0, 0));
    assert!(o.dev_ca);

    // A worker registered with real simulated evidence (operator = account 1).
    let worker = alloy::primitives::Address::repeat_byte(0x42);
    chain.register_worker(worker, &evidence).await?;
    let mut rows: Vec<ExplorerWorker> = Vec::new();
    for _ in 0..100 {
        rows = net.get("/explorer/api/workers").await?;
        if rows
            .iter()
            .any(|w| w.entry.address == worker && w.entry.registered)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let w = rows
        .iter()
        .find(|w| w.entry.address == worker)
        .expect("worker listed");
    assert_eq!(w.entry.platform, "simulated");
    assert_eq!(w.entry.operator, chain.account(1).address());
    assert_eq!(w.entry.evidence_hash, keccak256(&evidence));
    assert_eq!(w.entry.measurement_hash, B256::from(WORKER_MEASUREMENT));
    assert_eq!(w.tcb_status_name, None);
    assert!(!w.revoked);
    let block = w.entry.registered_block.expect("registration block");
    let header = chain
        .deployer
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Number(block))
        .await?
        .unwrap();
    assert_eq!(w.registered_at, Some(header.header.timestamp));
    // No URL announced: never health-checked.
    assert_eq!(w.uptime.checks, 0);

    // Its attestation: the posted bytes, the registered facts and the dev CA.
    let a: Attestation = net
        .get(&format!("/explorer/api/workers/{worker}/attestation"))
        .await?;
    assert_eq!(a.evidence, format!("0x{}", hex::encode(&evidence)));
    assert_eq!(a.evidence_hash, keccak256(&evidence));
    assert_eq!((a.platform.as_str(), a.platform_id), ("simulated", 255));
    assert_eq!(a.dev_ca_pem.as_deref(), Some(pem.as_str()));
    assert_eq!(a.registry, chain.deployment.contracts.registry);
    assert_eq!(a.enc_public_key, None, "no URL announced: no key to report");
    assert_eq!(
        net.get_refused("/explorer/api/workers/0x1234/attestation")
            .await,
        (400, "bad_request".into())
    );
    let unknown = alloy::primitives::Address::repeat_byte(9);
    assert_eq!(
        net.get_refused(&format!("/explorer/api/workers/{unknown}/attestation"))
            .await,
        (404, "not_found".into())
    );
    // Collateral is served for Intel quotes only (this worker's is simulated), and for
    // registered workers only.
    assert_eq!(
        net.get_refused(&format!("/explorer/api/workers/{worker}/collateral"))
            .await,
        (404, "not_found".into())
    );
    assert_eq!(
        net.get_refused(&format!("/explorer/api/workers/{unknown}/collateral"))
            .await,
        (404, "not_found".into())
    );
    assert_eq!(
        net.get_refused("/explorer/api/workers/0x1234/collateral")
            .await,
        (400, "bad_request".into())
    );

    // Gateway-side verification: valid evidence, with and without the platform named.
    let hex_ev = format!("0x{}", hex::encode(&evidence));
    for body in [
        json!({"evidence": hex_ev, "platform": "simulated"}),
        json!({"evidence": hex_ev}),
    ] {
        let r = net.verify(body).await;
        assert_eq!(r.status(), 200);
        let v: GatewayVerdict = serde_json::from_slice(&r.bytes().await?)?;
        assert!(v.ok, "{v:?}");
        assert_eq!(v.platform.as_deref(), Some("simulated"));
        assert_eq!(v.verified_by, "gateway");
        assert_eq!(v.report_data, Some(format!("0x{}", hex::encode([7u8; 64]))));
        assert!(v.measurement_hash.is_some() && v.error.is_none());
    }
    // A flipped byte in the signed region, and one in the signature: invalid, classified.
    for at in [30usize, evidence.len() - 3] {
        let mut bad = evidence.clone();
        bad[at] ^= 1;
        let v: GatewayVerdict = net
            .verify(
                json!({"evidence": format!("0x{}", hex::encode(&bad)), "platform": "simulated"}),
            )
            .await
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b))??;
        assert!(!v.ok);
        let class = v.error.unwrap().class;
        assert!(class == "bad_signature" || class == "malformed", "{class}");
    }
    // Hardware evidence the gateway has no collateral for, or whose certificates have expired:
    // verified, and refused with the class pith-attest gives.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/attestation");
    for (case, platform, class) in [
        ("tdx-t10-v5-uptodate", "tdx", "missing_collateral"),
        ("nitro-a6-fastcrypto", "nitro", "cert_expired"),
    ] {
        let bytes = std::fs::read(root.join(case).join("evidence.bin"))?;
        let v: GatewayVerdict = net
            .verify(json!({"evidence": format!("0x{}", hex::encode(&bytes))}))
            .await
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b))??;
        assert!(!v.ok, "{case}");
        assert_eq!(v.platform.as_deref(), Some(platform), "{case}");
        assert_eq!(v.error.unwrap().class, class, "{case}");
    }
    // Trailing bytes: malformed.
    let mut long = evidence.clone();
    long.push(0);
    let v: GatewayVerdict = net
        .verify(json!({"evidence": format!("0x{}", hex::encode(&long)), "platform": "simulated"}))
        .await
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b))??;
    assert_eq!(v.error.unwrap().class, "malformed");
    // Bad requests.
    for (body, kind) in [
        (json!({"evidence": "0xzz"}), "bad_request"),
        (json!({"evidence": hex::encode(&evidence)}), "bad_request"),
        (json!({"evidence": "0x"}), "bad_request"),
        (
            json!({"evidence": hex_ev, "platform": "quantum"}),
            "bad_request",
        ),
        (json!({"platform": "simulated"}), "bad_request"),
        (
            json!({"evidence": format!("0x{}", "00".repeat(pith_gateway::explorer::MAX_EVIDENCE_BYTES + 1))}),
            "too_large",
        ),
    ] {
        let r = net.verify(body.clone()).await;
        let (status, k) = net.refused(r).await;
        assert_eq!(k, kind, "{body:.80}");
        assert_eq!(status, if kind == "too_large" { 413 } else { 400 });
    }
    let r = net
        .http
        .post(net.url("/explorer/api/verify-evidence"))
        .body("{")
        .send()
        .await?;
    assert_eq!(net.refused(r).await, (400, "bad_request".into()));
    let r = net
        .http
        .post(net.url("/explorer/api/verify-evidence"))
        .body(vec![b' '; 300_000])
        .send()
        .await?;
    assert_eq!(net.refused(r).await, (413, "too_large".into()));

    // Programs: registered then upgraded, newest first, with their code history.
    let code_a = B256::repeat_byte(0xa1);
    let code_b = B256::repeat_byte(0xb2);
    let p1 = chain.register_program(2, code_a).await?;
    let p2 = chain.register_program(3, B256::repeat_byte(0xc3)).await?;
    let owner = PithContracts::new(
        &chain.deployment,
        signing_provider(&chain.anvil.url(), chain.account(2))?,
    );
    owner
        .programs
        .send_upgrade(U256::from_be_bytes(p1.0), code_b)
        .await?;
    let page: ProgramPage = net.get("/explorer/api/programs").await?;
    assert_eq!(page.total, 2);
    assert_eq!(
        page.programs
            .iter()
            .map(|p| p.program_id)
            .collect::<Vec<_>>(),
        [p2, p1]
    );
    let first = &page.programs[1];
    assert_eq!(
        (first.id.as_str(), first.owner, first.code_hash),
        ("1", chain.account(2).address(), code_b)
    );
    let history: Vec<(&str, B256)> = first
        .versions
        .iter()
        .map(|v| (v.kind.as_str(), v.code_hash))
        .collect();
    assert_eq!(history, [("registered", code_a), ("upgraded", code_b)]);
    assert!(first.versions[0].block < first.versions[1].block && first.versions[1].tx.is_some());
    assert_eq!(first.calls, 0);
    assert_eq!(page.programs[0].versions.len(), 1);
    let page: ProgramPage = net.get("/explorer/api/programs?limit=1").await?;
    assert_eq!(page.programs.len(), 1);
    assert_eq!(page.programs[0].program_id, p2);
    let page: ProgramPage = net.get("/explorer/api/programs?limit=5&offset=1").await?;
    assert_eq!(
        page.programs
            .iter()
            .map(|p| p.program_id)
            .collect::<Vec<_>>(),
        [p1]
    );
    let page: ProgramPage = net.get("/explorer/api/programs?offset=5").await?;
    assert!(page.programs.is_empty());
    for q in ["limit=0", "limit=-1", "limit=x", "offset=x"] {
        assert_eq!(
            net.get_refused(&format!("/explorer/api/programs?{q}"))
                .await,
            (400, "bad_request".into()),
            "{q}"
        );
    }

    // Receipts and the calls series: none stored yet; bounded and checked parameters.
    let receipts: Vec<serde_json::Value> = net.get("/explorer/api/receipts").await?;
    assert!(receipts.is_empty());
    assert_eq!(
        net.get_refused("/explorer/api/receipts?limit=0").await,
        (400, "bad_request".into())
    );
    assert_eq!(
        net.get_refused("/explorer/api/receipts?program=0xzz").await,
        (400, "bad_request".into())
    );
    let s: CallSeries = net.get("/explorer/api/calls").await?;
    assert_eq!(
        (s.bucket_seconds, s.counts.len(), s.scanned, s.truncated),
        (60, 60, 0, false)
    );
    assert!(s.counts.iter().all(|c| *c == 0));
    assert!(s.start + 60 * 60 > now());
    let s: CallSeries = net
        .get("/explorer/api/calls?bucket=10&buckets=100000")
        .await?;
    assert_eq!((s.bucket_seconds, s.counts.len()), (10, 500));
    for q in [
        "bucket=0",
        "bucket=86401",
        "bucket=x",
        "buckets=0",
        "buckets=y",
        "program=1x",
    ] {
        assert_eq!(
            net.get_refused(&format!("/explorer/api/calls?{q}")).await,
            (400, "bad_request".into()),
            "{q}"
        );
    }

    // A stake pool of the worker's operator.
    let operator = PithContracts::new(
        &chain.deployment,
        signing_provider(&chain.anvil.url(), chain.account(1))?,
    );
    operator.stake_pools.send_create_pool(500).await?;
    let mut pools: Vec<ExplorerPool> = Vec::new();
    for _ in 0..50 {
        pools = net.get("/explorer/api/pools").await?;
        if pools.first().is_some_and(|p| !p.workers.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pools.len(), 1);
    assert_eq!(
        (pools[0].operator, pools[0].commission_bps),
        (chain.account(1).address(), 500)
    );
    assert_eq!(pools[0].total_stake, "0");
    assert_eq!(pools[0].workers, [worker]);

    // A governance proposal (the local profile's proposal threshold is 0).
    let proposal = Proposal {
        targets: vec![chain.deployment.contracts.registry],
        values: vec![U256::ZERO],
        calldatas: vec![RegistryClient::rotate_kms_key_calldata()],
        description: "explorer test: rotate the KMS key".into(),
    };
    let id = owner.governor.hash_proposal(&proposal).await?;
    owner.governor.send_propose(&proposal).await?;
    let ps: Vec<ExplorerProposal> = net.get("/explorer/api/proposals").await?;
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].id, id.to_string());
    assert_eq!(ps[0].proposer, chain.account(2).address());
    assert_eq!(ps[0].description, "explorer test: rotate the KMS key");
    assert!(
        ps[0].state == "pending" || ps[0].state == "active",
        "{}",
        ps[0].state
    );
    assert_eq!((ps[0].actions, ps[0].votes.for_votes.as_str()), (1, "0"));
    assert_eq!(
        net.get_refused("/explorer/api/proposals?limit=nope").await,
        (400, "bad_request".into())
    );

    let o: Overview = net.get("/explorer/api/overview").await?;
    assert_eq!((o.programs, o.workers.known, o.workers.active), (2, 1, 1));
    net.stop().await
}

#[tokio::test]
async fn uptime_follows_health_checks() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let net = Net::start(None).await?;
    let w = StandInWorker::new(0x51, &net.chain.deployment);
    let server = Server::start(w.router()).await;
    net.chain
        .register_worker(w.address, b"evidence of the stand-in")
        .await?;
    let client = pith_api::gateway::Client::new(&net.gateway.url())?;
    client.announce(&w.announce(&server.url(), now())).await?;
    let row = |rows: Vec<ExplorerWorker>| rows.into_iter().find(|r| r.entry.address == w.address);
    let mut up = None;
    for _ in 0..100 {
        let r = row(net.get("/explorer/api/workers").await?);
        if let Some(r) = r.filter(|r| r.uptime.checks >= 3) {
            up = Some(r.uptime);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let up = up.expect("three health checks");
    assert_eq!(up.passed, up.checks, "{up:?}");
    assert!(up.first_check.is_some() && up.up_since.is_some(), "{up:?}");
    assert!(up.up_since >= up.first_check);
    // The worker serves no /v1/worker/info: no key to relay.
    let a: Attestation = net
        .get(&format!("/explorer/api/workers/{}/attestation", w.address))
        .await?;
    assert_eq!(a.enc_public_key, None);

    // Down: failed checks are counted and it is no longer up.
    server.stop().await;
    let mut down = None;
    for _ in 0..100 {
        let r = row(net.get("/explorer/api/workers").await?).expect("still listed");
        if r.uptime.up_since.is_none() && r.uptime.passed + 2 <= r.uptime.checks {
            down = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let down = down.expect("failed checks counted");
    assert!(!down.entry.healthy);
    assert!(down.uptime.passed >= up.passed);
    net.stop().await
}
