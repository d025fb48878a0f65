//! Test network: a real anvil with the contracts deployed, workers registered with real KMS
//! signatures, a KMS and workers stood in for by real HTTP servers on loopback (the real
//! `pith-kms` and `pith-worker` crates are not on main yet), and a real gateway.
//!
//! The stand-in worker does the real cryptography of a worker: it decapsulates the OHTTP
//! request with the program key (pith-crypto), encapsulates a response, and signs a real
//! EIP-712 receipt with its identity key. The stand-in KMS serves the real key configuration
//! with a real certificate.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use anyhow::Result;
use axum::Router;
use axum::body::Bytes as AxBytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use k256::ecdsa::SigningKey;
use pith_api::{ErrorKind, headers, media};
use pith_chain::anvil::{Anvil, AnvilConfig};
use pith_chain::bindings::{Programs, Registry};
use pith_chain::client::{PithContracts, signing_provider};
use pith_chain::deploy::{DeployConfig, Measurement, deploy, platform, role};
use pith_chain::{Deployment, eip712};
use pith_crypto::certify::KeyCertificate;
use pith_crypto::envelope::{ProgramServer, Response as PResponse};
use pith_crypto::keytree::{MasterKey, ProgramId};
use pith_crypto::receipt::{Receipt, ReceiptFields, SignedReceipt};
use tokio_util::sync::CancellationToken;

pub const WORKER_MEASUREMENT: [u8; 32] = [0x11; 32];
pub const MASTER: [u8; 32] = [0x42; 32];

pub use pith_testkit::{anvil_available, now};

pub struct Chain {
    pub anvil: Anvil,
    pub deployment: Deployment,
    pub deployer: DynProvider,
    pub kms: PrivateKeySigner,
}

impl Chain {
    /// anvil + the local profile with account 9 as the only KMS member and the simulated
    /// worker measurement allowed.
    pub async fn start() -> Result<Self> {
        let anvil = Anvil::start(AnvilConfig::new()).await?;
        let deployer: PrivateKeySigner = anvil.accounts()[0].private_key.parse()?;
        let kms: PrivateKeySigner = anvil.accounts()[9].private_key.parse()?;
        let provider = signing_provider(&anvil.url(), deployer.clone())?;
        let mut cfg = DeployConfig::local(deployer.address(), vec![kms.address()]);
        cfg.measurements = vec![Measurement {
            platform: platform::SIMULATED,
            role: role::WORKER,
            hash: B256::from(WORKER_MEASUREMENT),
        }];
        let deployment = deploy(&provider, deployer.address(), &anvil.url(), &cfg).await?;
        Ok(Self {
            anvil,
            deployment,
            deployer: provider,
            kms,
        })
    }

    pub fn account(&self, i: usize) -> PrivateKeySigner {
        self.anvil.accounts()[i].private_key.parse().unwrap()
    }

    /// Register `worker` (operator = account 1) with `evidence`, signed by the KMS.
    pub async fn register_worker(&self, worker: Address, evidence: &[u8]) -> Result<()> {
        let operator = self.account(1);
        let provider = signing_provider(&self.anvil.url(), operator.clone())?;
        let c = PithContracts::new(&self.deployment, provider.clone());
        let now = provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await?
            .unwrap()
            .header
            .timestamp;
        let reg = Registry::WorkerRegistration {
            worker,
            operator: operator.address(),
            platform: platform::SIMULATED,
            measurementHash: B256::from(WORKER_MEASUREMENT),
            tcbStatus: 0,
            evidenceHash: keccak256(evidence),
            expiry: now + 3_600,
        };
        let digest = eip712::registration_digest(
            &reg,
            self.deployment.chain_id,
            self.deployment.contracts.registry,
        );
        let sigs = eip712::sign_sorted(digest, &[&self.kms])?;
        c.registry
            .send_register_worker(reg, Bytes::from(evidence.to_vec()), sigs)
            .await?;
        Ok(())
    }

    /// Register a program owned by account `owner`; returns its id.
    pub async fn register_program(&self, owner: usize, code_hash: B256) -> Result<B256> {
        let provider = signing_provider(&self.anvil.url(), self.account(owner))?;
        let c = PithContracts::new(&self.deployment, provider);
        let config = Programs::Config {
            memoryMib: 64,
            cpuMillis: 100,
            wallMillis: 1000,
            egressCount: 0,
            egressBytes: 0,
            outputBytes: 0,
            platformMask: U256::ZERO,
            egressAllowListHash: B256::ZERO,
        };
        let receipt = c
            .programs
            .send("register", c.programs.raw().register(code_hash, config))
            .await?;
        let ev = receipt
            .inner
            .logs()
            .iter()
            .find_map(|l| {
                <Programs::ProgramRegistered as alloy::sol_types::SolEvent>::decode_log_data(
                    l.data(),
                )
                .ok()
            })
            .map(|e| e.programId)
            .expect("ProgramRegistered");
        Ok(B256::from(ev.to_be_bytes::<32>()))
    }
}

/// The program keys of `program` under the test master key.
/// The program's own address under the stand-in master key.
pub fn program_address(program: B256) -> alloy::primitives::Address {
    MasterKey::from_bytes(MASTER, 1)
        .program_keys(&ProgramId(program.0))
        .unwrap()
        .address()
}

pub fn program_server(program: B256) -> ProgramServer {
    let keys = MasterKey::from_bytes(MASTER, 1)
        .program_keys(&ProgramId(program.0))
        .unwrap();
    ProgramServer::new(&keys).unwrap()
}

// ------------------------------------------------------------------------- servers

pub struct Server {
    pub addr: SocketAddr,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(app: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { c.cancelled().await })
                .await
                .unwrap();
        });
        Self { addr, cancel, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop listening (the port then refuses connections).
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// How a stand-in worker behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Decapsulate, answer, sign a correct receipt.
    Normal,
    /// Health ok, but refuse invocations with `draining` (nothing run).
    RefuseDraining,
    /// Sign the receipt with another key than the one it names.
    ForgedReceipt,
    /// A correctly signed receipt of another worker (not the one that answered).
    OtherWorkersReceipt,
}

pub struct StandInWorker {
    pub key: SigningKey,
    pub address: Address,
    pub chain_id: u64,
    pub registry: Address,
    pub mode: std::sync::Mutex<Mode>,
    pub draining_health: AtomicBool,
    pub invoked: AtomicU64,
}

impl StandInWorker {
    pub fn new(seed: u8, d: &Deployment) -> Arc<Self> {
        let key = SigningKey::from_slice(&[seed; 32]).unwrap();
        let address = pith_crypto::keytree::address_of(&key);
        Arc::new(Self {
            key,
            address,
            chain_id: d.chain_id,
            registry: d.contracts.registry,
            mode: std::sync::Mutex::new(Mode::Normal),
            draining_health: AtomicBool::new(false),
            invoked: AtomicU64::new(0),
        })
    }

    pub fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(pith_api::worker::HEALTH, get(worker_health))
            .route(pith_api::worker::INVOKE, post(worker_invoke))
            .route(pith_api::worker::LOGS, get(worker_logs))
            .with_state(self.clone())
    }

    /// A signed announcement of `url`.
    pub fn announce(&self, url: &str, timestamp: u64) -> pith_api::gateway::Announce {
        let digest = pith_api::binding::message_digest(
            pith_api::binding::ANNOUNCE_TAG,
            &[self.address.as_slice(), url.as_bytes()],
            timestamp,
        );
        let signature = pith_crypto::receipt::sign_hash(&self.key, &digest)
            .unwrap()
            .to_vec();
        pith_api::gateway::Announce {
            worker: self.address,
            url: url.to_string(),
            timestamp,
            signature,
        }
    }
}

async fn worker_health(State(w): State<Arc<StandInWorker>>) -> Response {
    let draining = w.draining_health.load(Ordering::Relaxed);
    let h = pith_api::worker::WorkerHealth {
        ok: !draining,
        registered: true,
        draining,
        in_flight: 0,
    };
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, [("connection", "close")], axum::Json(h)).into_response()
}

async fn worker_invoke(
    State(w): State<Arc<StandInWorker>>,
    Path(id): Path<String>,
    body: AxBytes,
) -> Response {
    let mode = *w.mode.lock().unwrap();
    if mode == Mode::RefuseDraining {
        let e = pith_api::ApiError::new(ErrorKind::Draining, "draining");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("connection", "close")],
            axum::Json(e.body()),
        )
            .into_response();
    }
    w.invoked.fetch_add(1, Ordering::Relaxed);
    let program: B256 = id.parse().unwrap();
    let server = program_server(program);
    let (request, reply) = match server.decapsulate(&body) {
        Ok(x) => x,
        Err(e) => {
            let e = pith_api::ApiError::new(ErrorKind::DecryptFailed, e.to_string());
            return (StatusCode::BAD_REQUEST, axum::Json(e.body())).into_response();
        }
    };
    let request_hash = reply.request_hash();
    let mut answer = b"echo:".to_vec();
    answer.extend_from_slice(request.body());
    let resp = PResponse {
        status: 200,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: answer,
    };
    let (wire, response_hash) = reply.encapsulate(&resp).unwrap();
    let fields = ReceiptFields {
        chain_id: w.chain_id,
        verifying_contract: w.registry,
        receipt: Receipt {
            programId: program,
            codeHash: B256::repeat_byte(0xc0),
            requestHash: B256::from(request_hash),
            responseHash: B256::from(response_hash),
            modelHash: B256::ZERO,
            worker: w.address,
            timestamp: 1,
            cpuMicros: 10,
            wallMicros: 20,
            memoryBytes: 30,
            egressBytes: 0,
        },
    };
    let mut fields = fields;
    let signer = if mode == Mode::OtherWorkersReceipt {
        let other = SigningKey::from_slice(&[0xed; 32]).unwrap();
        fields.receipt.worker = pith_crypto::keytree::address_of(&other);
        other
    } else {
        w.key.clone()
    };
    let mut receipt = SignedReceipt::sign(fields, &signer).unwrap();
    if mode == Mode::ForgedReceipt {
        let other = SigningKey::from_slice(&[0xee; 32]).unwrap();
        receipt.signature = pith_crypto::receipt::sign_hash(&other, &receipt.signing_hash())
            .unwrap()
            .to_vec();
    }
    let receipt = pith_api::b64url(&serde_json::to_vec(&receipt).unwrap());
    let mut h = HeaderMap::new();
    h.insert("content-type", media::OHTTP_RES.parse().unwrap());
    h.insert(headers::RECEIPT, receipt.parse().unwrap());
    h.insert(headers::WORKER, w.address.to_string().parse().unwrap());
    h.insert("connection", "close".parse().unwrap());
    (StatusCode::OK, h, wire).into_response()
}

async fn worker_logs(State(w): State<Arc<StandInWorker>>, Path(id): Path<String>) -> Response {
    let program: B256 = id.parse().unwrap();
    let logs = pith_api::worker::ProgramLogs {
        program_id: program,
        entries: vec![pith_api::worker::LogEntry {
            time_ms: u64::from(w.address.0[0]),
            level: "log".into(),
            message: format!("hello from {}", w.address),
            worker: w.address,
        }],
    };
    axum::Json(logs).into_response()
}

/// A stand-in KMS serving certified keys signed by `signer` (a committee member or not).
pub struct StandInKms {
    pub signer: SigningKey,
    pub chain_id: u64,
    pub registry: Address,
}

pub fn kms_router(kms: Arc<StandInKms>) -> Router {
    async fn key(State(k): State<Arc<StandInKms>>, Path(id): Path<String>) -> Response {
        let program: B256 = id.parse().unwrap();
        let ohttp_keys = program_server(program).encoded_key_configs().unwrap();
        let cert = KeyCertificate::issue(
            &k.signer,
            k.chain_id,
            k.registry,
            program,
            1,
            &ohttp_keys,
            program_address(program),
            4_000_000_000,
        )
        .unwrap();
        axum::Json(pith_api::kms::ProgramKeyInfo {
            program_id: program,
            ohttp_keys,
            certificate: cert,
        })
        .into_response()
    }
    Router::new()
        .route(pith_api::kms::PROGRAM_KEY, get(key))
        .with_state(kms)
}

/// Poll `f` every 100 ms for up to 20 s.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}
