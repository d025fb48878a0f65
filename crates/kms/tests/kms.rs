//! The KMS on loopback against a real anvil chain with the Pith contracts deployed with the
//! KMS in the committee (as `pith up` does: the KMS starts before the deployment exists).
//!
//! Workers are driven at the protocol level: real secp256k1 / X25519 identities and real
//! simulated evidence from the development CA, so every refusal can be provoked.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::path::Path;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use anyhow::Result;
use k256::ecdsa::SigningKey;
use pith_api::ErrorKind;
use pith_api::binding::{self, KEY_RELEASE_TAG, WORKER_REPORT_TAG};
use pith_api::kms::{
    KeyReleaseRequest, KeyReleaseResponse, KmsInfo, ProgramKeyInfo, RegisterWorkerRequest,
    RegisterWorkerResponse,
};
use pith_attest::provider::{EvidenceSource, SimulatedOptions, SimulatedSource};
use pith_chain::bindings::{Programs, Registry};
use pith_chain::client::PithContracts;
use pith_chain::manifest::Deployment;
use pith_crypto::bundle::ProgramKeyBundle;
use pith_crypto::envelope::ProgramServer;
use pith_crypto::transport::{self, Purpose};
use pith_testkit::{anvil_available, now, wait_for};
use rand_core::{OsRng, RngCore};
use tokio_util::sync::CancellationToken;

/// A worker at the protocol level.
struct TestWorker {
    key: SigningKey,
    enc_secret: [u8; 32],
    enc_public: [u8; 32],
    evidence: Vec<u8>,
    source: SimulatedSource,
}

impl TestWorker {
    fn new(dev_ca: &Path, d: &Deployment, binary: Option<[u8; 48]>) -> Self {
        let key = SigningKey::random(&mut OsRng);
        let mut enc_secret = [0u8; 32];
        OsRng.fill_bytes(&mut enc_secret);
        let enc_public = transport::public_key(&enc_secret).unwrap();
        let source = SimulatedSource::open(&SimulatedOptions {
            dev_ca_dir: dev_ca.to_owned(),
            binary_sha384: binary,
            ..Default::default()
        })
        .unwrap();
        let mut w = Self {
            key,
            enc_secret,
            enc_public,
            evidence: Vec::new(),
            source,
        };
        w.evidence = w.quote(d);
        w
    }
    fn address(&self) -> Address {
        pith_crypto::keytree::address_of(&self.key)
    }
    fn quote(&self, d: &Deployment) -> Vec<u8> {
        self.quote_with_model(d, None)
    }
    fn quote_with_model(&self, d: &Deployment, model: Option<&[u8; 32]>) -> Vec<u8> {
        let rd = binding::report_data_with_model(
            WORKER_REPORT_TAG,
            self.address(),
            &self.enc_public,
            d.chain_id,
            d.contracts.registry,
            model,
        );
        self.source.quote(&rd).unwrap()
    }
    fn register_request(&self, operator: Address) -> RegisterWorkerRequest {
        RegisterWorkerRequest {
            worker: self.address(),
            operator,
            enc_public_key: self.enc_public,
            evidence: self.evidence.clone(),
            model_hash: None,
        }
    }
    fn release_request(&self, program: B256, timestamp: u64) -> KeyReleaseRequest {
        let digest = binding::message_digest(
            KEY_RELEASE_TAG,
            &[
                self.address().as_slice(),
                program.as_slice(),
                &self.enc_public,
            ],
            timestamp,
        );
        KeyReleaseRequest {
            worker: self.address(),
            program_id: program,
            enc_public_key: self.enc_public,
            evidence: self.evidence.clone(),
            model_hash: None,
            timestamp,
            signature: pith_crypto::receipt::sign_hash(&self.key, &digest)
                .unwrap()
                .to_vec(),
        }
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(addr: std::net::SocketAddr) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
        }
    }
    async fn post<T: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
    ) -> std::result::Result<R, (u16, pith_api::ApiError)> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).unwrap())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let bytes = r.bytes().await.unwrap();
        if status == 200 {
            Ok(serde_json::from_slice(&bytes).unwrap())
        } else {
            let b: pith_api::ErrorBody = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("HTTP {status}: {e}: {}", String::from_utf8_lossy(&bytes))
            });
            Err((status, b.error))
        }
    }
    async fn get<R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> std::result::Result<R, (u16, pith_api::ApiError)> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let bytes = r.bytes().await.unwrap();
        if status == 200 {
            Ok(serde_json::from_slice(&bytes).unwrap())
        } else {
            let b: pith_api::ErrorBody = serde_json::from_slice(&bytes).unwrap();
            Err((status, b.error))
        }
    }
    async fn info(&self) -> KmsInfo {
        self.get(pith_api::kms::INFO).await.unwrap()
    }
    async fn register(
        &self,
        r: &RegisterWorkerRequest,
    ) -> std::result::Result<RegisterWorkerResponse, (u16, pith_api::ApiError)> {
        self.post(pith_api::kms::REGISTER_WORKER, r).await
    }
    async fn release(
        &self,
        r: &KeyReleaseRequest,
    ) -> std::result::Result<KeyReleaseResponse, (u16, pith_api::ApiError)> {
        self.post(pith_api::kms::KEY_RELEASE, r).await
    }
    async fn program_key(
        &self,
        id: B256,
    ) -> std::result::Result<ProgramKeyInfo, (u16, pith_api::ApiError)> {
        self.get(&pith_api::kms::PROGRAM_KEY.replace("{id}", &format!("{id:#x}")))
            .await
    }
}

fn expect_refusal<T: std::fmt::Debug>(
    r: std::result::Result<T, (u16, pith_api::ApiError)>,
    kind: ErrorKind,
    status: u16,
) -> pith_api::ApiError {
    let (s, e) = r.expect_err("expected a refusal");
    assert_eq!((e.kind, s), (kind, status), "{e:?}");
    e
}

/// The chain (pith-testkit) plus the KMS-specific helpers below.
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

    fn config(&self, name: &str) -> pith_kms::Config {
        let mut c = pith_kms::Config::new(
            self.dir.path().join(name),
            "127.0.0.1:0".parse().unwrap(),
            self.anvil.url(),
            self.manifest.clone(),
        );
        c.dev_ca_dir = Some(self.dev_ca.clone());
        c.poll = Duration::from_millis(200);
        c
    }

    async fn start(&self, c: pith_kms::Config) -> Result<(pith_kms::Running, CancellationToken)> {
        let stop = CancellationToken::new();
        let r = pith_kms::start(c, stop.clone()).await?;
        Ok((r, stop))
    }

    async fn program(&self, d: &Deployment) -> Result<B256> {
        let dev = self.contracts(d, 1)?;
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
            .send_register(B256::repeat_byte(0x42), cfg)
            .await?;
        Ok(B256::from(id.to_be_bytes::<32>()))
    }
}

async fn submit(op: &PithContracts, w: &TestWorker, answer: &RegisterWorkerResponse) -> Result<()> {
    let r = &answer.registration;
    let reg = Registry::WorkerRegistration {
        worker: r.worker,
        operator: r.operator,
        platform: r.platform,
        measurementHash: r.measurement_hash,
        tcbStatus: r.tcb_status,
        evidenceHash: r.evidence_hash,
        expiry: r.expiry,
    };
    op.registry
        .send_register_worker(
            reg,
            Bytes::from(w.evidence.clone()),
            vec![Bytes::from(answer.signature.clone())],
        )
        .await?;
    Ok(())
}

fn open_release(w: &TestWorker, program: B256, answer: &KeyReleaseResponse) -> ProgramKeyBundle {
    let ctx = transport::program_context(&program.0, &w.address());
    let plain = transport::open(&w.enc_secret, Purpose::ProgramKeys, &ctx, &answer.sealed).unwrap();
    ProgramKeyBundle::decode(&plain).unwrap()
}

fn ohttp_keys(bundle: &ProgramKeyBundle) -> Vec<u8> {
    let mut it = bundle.keys().iter();
    let mut s = ProgramServer::new(it.next().unwrap()).unwrap();
    for k in it {
        s.add_epoch(k).unwrap();
    }
    s.encoded_key_configs().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_release_refusals_restart_and_tamper() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let net = Net::new().await?;
    let (kms, stop) = net.start(net.config("kms-0")).await?;
    let client = Client::new(kms.addr);

    // Before the deployment exists: identity and master key epoch 0, evidence bound to no network.
    let info = client.info().await;
    assert_eq!(info.address, kms.kms.address());
    assert_eq!(info.epoch, Some(0));
    assert_eq!(info.registry, Address::ZERO);
    assert_eq!(info.platform, "simulated");

    let d = net.deploy(vec![kms.kms.address()]).await?;
    let k = kms.kms.clone();
    wait_for("the deployment", || k.chain().is_some_and(|c| c.posted)).await;
    let info = client.info().await;
    assert_eq!(
        (info.chain_id, info.registry),
        (d.chain_id, d.contracts.registry)
    );
    assert_eq!(info.measurement_hash, net.measurement);
    let program = net.program(&d).await?;
    let operator = net.contracts(&d, 2)?;
    let op_addr = net.signer(2).address();

    // Happy path: registration signed, accepted by the contract; keys released and opened.
    let w = TestWorker::new(&net.dev_ca, &d, None);
    let answer = client.register(&w.register_request(op_addr)).await.unwrap();
    assert_eq!(answer.kms, kms.kms.address());
    assert_eq!(answer.registration.measurement_hash, net.measurement);
    assert_eq!(
        answer.registration.evidence_hash.0,
        pith_crypto::keccak256(&w.evidence)
    );
    submit(&operator, &w, &answer).await?;
    let reader = PithContracts::new(&d, net.provider().await?);
    assert!(reader.registry.is_active_worker(w.address()).await?);

    let released = client
        .release(&w.release_request(program, now()))
        .await
        .unwrap();
    assert_eq!(released.epochs, vec![0]);
    let bundle = open_release(&w, program, &released);
    assert_eq!(bundle.epochs(), vec![0]);
    // The released keys are the ones behind the certified public configuration.
    assert_eq!(ohttp_keys(&bundle), released.key.ohttp_keys);
    assert_eq!(
        released
            .key
            .certificate
            .verify(&released.key.ohttp_keys, now())?,
        kms.kms.address()
    );
    // The certificate also names the program's own address (its signing key).
    assert_eq!(
        released.key.certificate.program_address,
        bundle.keys()[0].address()
    );
    let pk = client.program_key(program).await.unwrap();
    assert_eq!(pk.ohttp_keys, released.key.ohttp_keys);
    assert_eq!(
        pk.certificate.verify(&pk.ohttp_keys, now())?,
        kms.kms.address()
    );
    // The bundle does not open for another worker.
    let other_ctx = transport::program_context(&program.0, &Address::repeat_byte(1));
    assert!(
        transport::open(
            &w.enc_secret,
            Purpose::ProgramKeys,
            &other_ctx,
            &released.sealed
        )
        .is_err()
    );

    // The model hash in report_data is bound like the identity: a request naming a model
    // the evidence does not bind, or hiding one it binds, is refused; naming it is accepted.
    let mut claims = w.register_request(op_addr);
    claims.model_hash = Some(B256::repeat_byte(5));
    let e = expect_refusal(
        client.register(&claims).await,
        ErrorKind::EvidenceInvalid,
        403,
    );
    assert!(e.message.contains("model"), "{e:?}");
    let mut modelled = TestWorker::new(&net.dev_ca, &d, None);
    modelled.evidence = modelled.quote_with_model(&d, Some(&[5; 32]));
    expect_refusal(
        client.register(&modelled.register_request(op_addr)).await,
        ErrorKind::EvidenceInvalid,
        403,
    );
    let mut shown = modelled.register_request(op_addr);
    shown.model_hash = Some(B256::repeat_byte(5));
    assert_eq!(
        client.register(&shown).await.unwrap().kms,
        kms.kms.address()
    );

    // A worker whose measurement is not allowed: no signature, no keys.
    let bad = TestWorker::new(&net.dev_ca, &d, Some([0xee; 48]));
    let e = expect_refusal(
        client.register(&bad.register_request(op_addr)).await,
        ErrorKind::PolicyRejected,
        403,
    );
    assert!(e.message.contains("not allowed"), "{e:?}");
    expect_refusal(
        client.release(&bad.release_request(program, now())).await,
        ErrorKind::PolicyRejected,
        403,
    );

    // Bad signature (another key) and stale timestamp.
    let mut forged = w.release_request(program, now());
    let other = SigningKey::random(&mut OsRng);
    let digest = binding::message_digest(
        KEY_RELEASE_TAG,
        &[w.address().as_slice(), program.as_slice(), &w.enc_public],
        forged.timestamp,
    );
    forged.signature = pith_crypto::receipt::sign_hash(&other, &digest)
        .unwrap()
        .to_vec();
    expect_refusal(client.release(&forged).await, ErrorKind::Unauthorized, 401);
    let mut garbage = w.release_request(program, now());
    garbage.signature = vec![1, 2, 3];
    expect_refusal(client.release(&garbage).await, ErrorKind::Unauthorized, 401);
    expect_refusal(
        client
            .release(&w.release_request(program, now() - 1_000))
            .await,
        ErrorKind::Unauthorized,
        401,
    );
    expect_refusal(
        client
            .release(&w.release_request(program, now() + 1_000))
            .await,
        ErrorKind::Unauthorized,
        401,
    );
    // A signed request for another key than the evidence binds.
    let mut swapped = TestWorker::new(&net.dev_ca, &d, None);
    swapped.key = w.key.clone();
    swapped.evidence = w.evidence.clone();
    expect_refusal(
        client
            .release(&swapped.release_request(program, now()))
            .await,
        ErrorKind::EvidenceInvalid,
        403,
    );

    // Evidence that verifies but is not the one the Registry holds for this worker.
    let mut fresh = TestWorker::new(&net.dev_ca, &d, None);
    fresh.key = w.key.clone();
    fresh.enc_secret = w.enc_secret;
    fresh.enc_public = w.enc_public;
    fresh.evidence = fresh.quote(&d);
    assert_ne!(fresh.evidence, w.evidence);
    let e = expect_refusal(
        client.release(&fresh.release_request(program, now())).await,
        ErrorKind::PolicyRejected,
        403,
    );
    assert!(e.message.contains("evidence"), "{e:?}");
    // A valid worker that never registered.
    let unregistered = TestWorker::new(&net.dev_ca, &d, None);
    let e = expect_refusal(
        client
            .release(&unregistered.release_request(program, now()))
            .await,
        ErrorKind::PolicyRejected,
        403,
    );
    assert!(e.message.contains("not an active"), "{e:?}");

    // Evidence from another development CA.
    let other_ca = net.dir.path().join("other-ca");
    pith_attest::simulated::DevCa::init(&other_ca, std::time::SystemTime::now())?;
    let foreign = TestWorker::new(&other_ca, &d, None);
    expect_refusal(
        client.register(&foreign.register_request(op_addr)).await,
        ErrorKind::EvidenceInvalid,
        403,
    );
    // Tampered evidence (one byte of report_data, and one of the signature).
    for at in [420, w.evidence.len() - 3] {
        let mut t = w.register_request(op_addr);
        t.evidence[at] ^= 1;
        expect_refusal(client.register(&t).await, ErrorKind::EvidenceInvalid, 403);
    }
    // Evidence made for another network.
    let mut elsewhere = d.clone();
    elsewhere.chain_id = 1;
    let mut other_net = TestWorker::new(&net.dev_ca, &d, None);
    other_net.evidence = other_net.quote(&elsewhere);
    expect_refusal(
        client.register(&other_net.register_request(op_addr)).await,
        ErrorKind::EvidenceInvalid,
        403,
    );
    // Unknown program, malformed bodies.
    expect_refusal(
        client
            .release(&w.release_request(B256::repeat_byte(0x77), now()))
            .await,
        ErrorKind::NotFound,
        404,
    );
    expect_refusal(
        client.program_key(B256::repeat_byte(0x77)).await,
        ErrorKind::NotFound,
        404,
    );
    let r: std::result::Result<RegisterWorkerResponse, _> = client
        .post(
            pith_api::kms::REGISTER_WORKER,
            &serde_json::json!({"worker": 1}),
        )
        .await;
    expect_refusal(r, ErrorKind::BadRequest, 400);

    // Restart: the same identity and the same sealed master key.
    stop.cancel();
    kms.done.await??;
    // (the database is locked while any handle to the node is alive)
    drop((k, kms.kms));
    let (kms2, stop2) = net.start(net.config("kms-0")).await?;
    assert_eq!(kms2.kms.address(), info.address);
    assert_eq!(kms2.kms.epochs(), vec![0]);
    let k2 = kms2.kms.clone();
    wait_for("the deployment after restart", || k2.chain().is_some()).await;
    let pk2 = Client::new(kms2.addr).program_key(program).await.unwrap();
    assert_eq!(pk2.ohttp_keys, pk.ohttp_keys);
    stop2.cancel();
    kms2.done.await??;
    drop((k2, kms2.kms));

    // A tampered sealed master key: the node refuses to start, saying why.
    tamper_master_key(
        &net.dir.path().join("kms-0").join(pith_kms::store::DB_FILE),
        0,
    );
    let e = net.start(net.config("kms-0")).await.unwrap_err();
    assert!(e.to_string().contains("does not open"), "{e}");
    // Another machine's sealing key does not open the state either.
    let copy = net.dir.path().join("kms-copy");
    std::fs::create_dir_all(&copy)?;
    std::fs::copy(
        net.dir.path().join("kms-0/identity.sealed"),
        copy.join("identity.sealed"),
    )?;
    assert!(net.start(net.config("kms-copy")).await.is_err());
    Ok(())
}

fn tamper_master_key(db: &Path, epoch: u32) {
    use redb::ReadableDatabase;
    let db = redb::Database::create(db).unwrap();
    let mut value = {
        let r = db.begin_read().unwrap();
        let t = r.open_table(pith_kms::store::MASTER_KEYS).unwrap();
        t.get(epoch).unwrap().unwrap().value().to_vec()
    };
    value[30] ^= 1;
    let w = db.begin_write().unwrap();
    w.open_table(pith_kms::store::MASTER_KEYS)
        .unwrap()
        .insert(epoch, value.as_slice())
        .unwrap();
    w.commit().unwrap();
}

/// Replication with mutual attestation against the chain's KMS allow-list, and the
/// governance-ordered rotation (old epochs kept).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_and_rotation() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let net = Net::new().await?;
    let (a, stop_a) = net.start(net.config("kms-a")).await?;
    let mut cb = net.config("kms-b");
    cb.peers = vec![format!("http://{}", a.addr)];
    cb.bootstrap = false;
    let (b, stop_b) = net.start(cb).await?;
    assert!(
        b.kms.epochs().is_empty(),
        "a joining node generates nothing"
    );
    assert_eq!(Client::new(b.addr).info().await.epoch, None);
    // A third node with a measurement the chain does not allow for the KMS role.
    let mut cc = net.config("kms-c");
    cc.peers = vec![format!("http://{}", a.addr)];
    cc.bootstrap = false;
    cc.danger_binary_sha384 = Some([0xdd; 48]);
    let (c, stop_c) = net.start(cc).await?;
    // A stranger that is not in the committee.
    let mut cs = net.config("kms-s");
    cs.peers = vec![format!("http://{}", a.addr)];
    cs.bootstrap = false;
    let (s, stop_s) = net.start(cs).await?;

    let d = net
        .deploy(vec![a.kms.address(), b.kms.address(), c.kms.address()])
        .await?;
    let bk = b.kms.clone();
    wait_for("replication to b", || bk.epochs() == vec![0]).await;
    let program = net.program(&d).await?;
    let ka = Client::new(a.addr).program_key(program).await.unwrap();
    let kb = Client::new(b.addr).program_key(program).await.unwrap();
    assert_eq!(
        ka.ohttp_keys, kb.ohttp_keys,
        "both nodes hold the same master key"
    );
    assert_eq!(
        kb.certificate.verify(&kb.ohttp_keys, now())?,
        b.kms.address()
    );

    // The unallowed measurement and the stranger get nothing.
    let kc = c.kms.clone();
    wait_for("c to know the deployment", || kc.chain().is_some()).await;
    let e = c
        .kms
        .replicate_from(&format!("http://{}", a.addr))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not allowed"), "{e}");
    assert!(c.kms.epochs().is_empty());
    let ks = s.kms.clone();
    wait_for("s to know the deployment", || ks.chain().is_some()).await;
    let e = s
        .kms
        .replicate_from(&format!("http://{}", a.addr))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("committee"), "{e}");
    assert!(s.kms.epochs().is_empty());
    // Mutual: b refuses keys offered by a node whose own evidence is not allowed. c asks b
    // for nothing here; b checks c as the responder through accept_replica.
    let ctx = b.kms.chain().unwrap();
    let from_c = pith_api::kms::ReplicateResponse {
        kms: c.kms.address(),
        enc_public_key: c.kms.identity().enc_public_key(),
        evidence: c.kms.info().evidence,
        epochs: vec![0],
        sealed: vec![1; 80],
        timestamp: now(),
        signature: {
            let digest = binding::message_digest(
                pith_api::binding::REPLICATE_REPLY_TAG,
                &[
                    c.kms.address().as_slice(),
                    b.kms.address().as_slice(),
                    &pith_crypto::keccak256(&[1; 80]),
                ],
                now(),
            );
            c.kms.identity().sign_digest(&digest)?.to_vec()
        },
    };
    let e = b.kms.accept_replica(&ctx, &from_c).await.unwrap_err();
    assert!(e.to_string().contains("not allowed"), "{e}");

    // Governance orders a rotation: a (the bootstrap node) generates epoch 1, b replicates it.
    net.rotate_kms_key(&d).await?;
    let (ak, bk) = (a.kms.clone(), b.kms.clone());
    wait_for("rotation on a and b", || {
        ak.epochs() == vec![0, 1] && bk.epochs() == vec![0, 1]
    })
    .await;
    let ka2 = Client::new(a.addr).program_key(program).await.unwrap();
    let kb2 = Client::new(b.addr).program_key(program).await.unwrap();
    assert_eq!(ka2.ohttp_keys, kb2.ohttp_keys);
    assert_eq!(ka2.certificate.epoch, 1);
    assert_ne!(ka2.ohttp_keys, ka.ohttp_keys);
    // The new configuration still carries the old epoch's key (kept for decryption).
    assert!(ka2.ohttp_keys.len() > ka.ohttp_keys.len());
    // The program's identity survives the rotation (ADR 0100): same Ethereum address in the
    // certificate of either node; only the encryption (and storage) keys changed.
    assert_ne!(ka.certificate.program_address, Address::ZERO);
    assert_eq!(
        ka2.certificate.program_address,
        ka.certificate.program_address
    );
    assert_eq!(
        kb2.certificate.program_address,
        ka.certificate.program_address
    );

    for (stop, r) in [(stop_a, a), (stop_b, b), (stop_c, c), (stop_s, s)] {
        stop.cancel();
        r.done.await??;
    }
    Ok(())
}
