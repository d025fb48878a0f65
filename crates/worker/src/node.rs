//! A running worker: configuration, shared state, keys and programs; the invocation
//! pipeline is in `invoke`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use pith_api::ErrorKind;
use pith_api::worker::LogEntry;
use pith_chain::Deployment;
use pith_chain::client::PithContracts;
use pith_crypto::keytree::ProgramId;
use pith_crypto::receipt::SignedReceipt;
use pith_crypto::{Address, B256};
use pith_sandbox::pool::{Pool, PoolConfig};
use pith_sandbox::{BytecodeCache, Host, Limits, Program};

use crate::error::{WorkerError, refuse};
use crate::evidence::{Attester, OwnEvidence};
use crate::identity::{Identity, Sealer};
use crate::keys::KeyRing;
use crate::kv::SealedKv;
use crate::replay::ReplayCache;
use crate::storage::SqliteStore;

/// How long a loaded program (code hash checked on chain, secrets) is used before the chain
/// and the gateway are asked again. An upgrade takes effect on this worker within this time.
pub const PROGRAM_TTL: Duration = Duration::from_secs(2);
/// State file of the sealed storage high-water marks.
pub const KV_MARKS_FILE: &str = "kv-marks.sealed";
/// Log lines kept per program.
pub const LOG_LINES: usize = 256;

/// Worker configuration (`pith worker` flags).
#[derive(Debug, Clone)]
pub struct Config {
    /// State directory (sealed identity, sealed program keys, sealing key).
    pub state_dir: PathBuf,
    /// Listen address (loopback by default).
    pub listen: SocketAddr,
    /// URL announced to the gateway; default `http://{bound address}`.
    pub public_url: Option<String>,
    /// Chain RPC URL.
    pub rpc_url: String,
    /// The deployment.
    pub deployment: Deployment,
    /// KMS base URLs (tried in order).
    pub kms_urls: Vec<String>,
    /// Gateway base URL (code, secrets, announcements).
    pub gateway_url: Option<String>,
    /// Operator account: sends `registerWorker`, `submitUsage`, oracle fulfilments.
    pub operator: Option<PrivateKeySigner>,
    /// SQLite file of program storage (shared by the machine's workers).
    pub storage: PathBuf,
    /// Development CA directory (simulated platform).
    pub dev_ca_dir: Option<PathBuf>,
    /// Collateral for verifying this worker's own evidence (Intel and AMD need it;
    /// `pith worker` fetches it, a local simulated network needs none).
    pub collateral: Arc<dyn pith_attest::CollateralSource>,
    /// Test-only: attest as if running a binary with this SHA-384 (a measurement the
    /// chain does not allow), for negative end-to-end tests.
    pub danger_binary_sha384: Option<[u8; 48]>,
    /// Interval of announcements (heartbeats) and registration checks.
    pub heartbeat: Duration,
    /// Interval of usage batches.
    pub usage_interval: Duration,
    /// Sandbox pool.
    pub pool: PoolConfig,
    /// The model that answers `env.ai.chat` (its file hash goes into the evidence and into
    /// the receipts of invocations that used it); `None`: programs get no model.
    pub model: Option<crate::ai::ModelAi>,
}

/// Usage not yet settled, per program.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingUsage {
    /// Invocations.
    pub requests: u64,
    /// CPU microseconds (billed as milliseconds, rounded up per batch).
    pub cpu_micros: u64,
    /// Egress bytes.
    pub egress_bytes: u64,
    /// Prompt plus completion tokens of the worker's model.
    pub ai_tokens: u64,
}

impl PendingUsage {
    /// Count one invocation's usage.
    pub fn record(&mut self, usage: &pith_sandbox::Usage) {
        self.requests = self.requests.saturating_add(1);
        self.cpu_micros = self.cpu_micros.saturating_add(usage.cpu_us);
        self.egress_bytes = self.egress_bytes.saturating_add(usage.egress_bytes);
        self.ai_tokens = self
            .ai_tokens
            .saturating_add(usage.ai_prompt_tokens)
            .saturating_add(usage.ai_completion_tokens);
    }

    /// Add usage counted elsewhere (a batch that did not settle).
    pub fn merge(&mut self, other: &Self) {
        self.requests = self.requests.saturating_add(other.requests);
        self.cpu_micros = self.cpu_micros.saturating_add(other.cpu_micros);
        self.egress_bytes = self.egress_bytes.saturating_add(other.egress_bytes);
        self.ai_tokens = self.ai_tokens.saturating_add(other.ai_tokens);
    }
}

struct Loaded {
    program: Arc<Program>,
    checked: Instant,
    secrets_version: u64,
}

/// Shared state of a running worker.
pub struct Node {
    pub(crate) config: Config,
    pub(crate) identity: Identity,
    pub(crate) sealer: Sealer,
    pub(crate) evidence: OwnEvidence,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) kv: Arc<SealedKv>,
    /// The shared program storage (also holds agent firing claims).
    pub(crate) store: Arc<SqliteStore>,
    pub(crate) pool: Pool,
    pub(crate) contracts: PithContracts,
    pub(crate) operator: Option<(Address, PithContracts)>,
    pub(crate) http: reqwest::Client,
    pub(crate) url: RwLock<String>,
    replay: ReplayCache,
    programs: Mutex<HashMap<ProgramId, Loaded>>,
    code: Mutex<HashMap<[u8; 32], Arc<[u8]>>>,
    pub(crate) usage: Mutex<HashMap<ProgramId, PendingUsage>>,
    logs: Mutex<HashMap<ProgramId, VecDeque<LogEntry>>>,
    pub(crate) draining: AtomicBool,
    pub(crate) in_flight: AtomicU64,
    pub(crate) registered: RwLock<Option<u64>>,
    pub(crate) registered_at: AtomicU64,
    key_fetch: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("address", &self.identity.address())
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Wall-time limit of an inference request when the program's owner set none (5 minutes:
/// a full-context completion on a CPU worker, queued behind others for an engine slot).
pub const INFERENCE_WALL_MS: u64 = 300_000;

/// Least time between two key releases of one program triggered by requests to an epoch the
/// worker does not hold (bounds the KMS load a client can cause with unknown key ids).
pub const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

fn chain_err(e: impl std::fmt::Display) -> WorkerError {
    WorkerError::Chain(e.to_string())
}

/// What an invocation returns to the HTTP layer.
#[derive(Debug)]
pub struct Invocation {
    /// `message/ohttp-res` body.
    pub body: Vec<u8>,
    /// The signed receipt.
    pub receipt: SignedReceipt,
}

impl Node {
    /// Build the node: state, identity, evidence, chain clients, storage, sandbox pool.
    /// Must run inside a tokio runtime (the pool spawns host futures on it).
    pub fn new(config: Config) -> Result<Arc<Self>, WorkerError> {
        let sealer = Sealer::simulated(&config.state_dir)?;
        let identity = Identity::load_or_create(&sealer)?;
        let source: Arc<dyn pith_attest::provider::EvidenceSource> = {
            let mut options = pith_attest::provider::DetectOptions::default();
            if let Some(dir) = &config.dev_ca_dir {
                let sim = pith_attest::provider::SimulatedOptions {
                    dev_ca_dir: dir.clone(),
                    binary_sha384: config.danger_binary_sha384,
                    ..Default::default()
                };
                options.simulated = Some(sim);
            }
            Arc::from(
                pith_attest::provider::detect(&options)
                    .map_err(|e| WorkerError::Evidence(e.to_string()))?,
            )
        };
        let dev_ca = match &config.dev_ca_dir {
            Some(dir) => Some(
                std::fs::read(dir.join(pith_attest::simulated::CERT_FILE))
                    .map_err(|e| WorkerError::Evidence(format!("dev CA: {e}")))?,
            ),
            None => None,
        };
        let attester = Attester::new(source, dev_ca, config.collateral.clone());
        let model_hash = config.model.as_ref().map(crate::ai::ModelAi::model_hash);
        let evidence = attester.worker_evidence(
            identity.address(),
            &identity.enc_public_key(),
            config.deployment.chain_id,
            config.deployment.contracts.registry,
            model_hash.as_ref(),
        )?;
        let read: DynProvider =
            pith_chain::client::read_provider(&config.rpc_url).map_err(chain_err)?;
        let contracts = PithContracts::new(&config.deployment, read);
        let operator = match &config.operator {
            Some(signer) => {
                let p = pith_chain::client::signing_provider(&config.rpc_url, signer.clone())
                    .map_err(chain_err)?;
                Some((signer.address(), PithContracts::new(&config.deployment, p)))
            }
            None => None,
        };
        let keys = Arc::new(KeyRing::default());
        crate::keys::load_sealed(&sealer, &keys)?;
        let store = Arc::new(
            SqliteStore::open(&config.storage).map_err(|e| WorkerError::State(e.to_string()))?,
        );
        let kv = Arc::new(SealedKv::new(store.clone(), keys.clone()));
        if let Some(bytes) = sealer.read(KV_MARKS_FILE)? {
            kv.import_marks(&bytes)?;
        }
        let host = Host {
            egress: Arc::new(pith_sandbox::egress::HttpEgress::new()),
            kv: kv.clone(),
            keys: Arc::new(crate::host::ProgramKeys::new(keys.clone())),
            chain: Arc::new(crate::host::Chain::new(&config.rpc_url, keys.clone())?),
            attestation: Arc::new(attester),
            ai: match &config.model {
                Some(m) => Arc::new(m.clone()),
                None => Arc::new(pith_sandbox::host::NoAi),
            },
            clock: Arc::new(pith_sandbox::host::SystemClock),
            random: Arc::new(pith_sandbox::host::OsRandom),
        };
        let pool = Pool::new(
            host,
            tokio::runtime::Handle::current(),
            BytecodeCache::default(),
            config.pool,
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| WorkerError::State(format!("http client: {e}")))?;
        let url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.listen));
        Ok(Arc::new(Self {
            config,
            identity,
            sealer,
            evidence,
            keys,
            kv,
            store,
            pool,
            contracts,
            operator,
            http,
            url: RwLock::new(url),
            replay: ReplayCache::default(),
            programs: Mutex::new(HashMap::new()),
            code: Mutex::new(HashMap::new()),
            usage: Mutex::new(HashMap::new()),
            logs: Mutex::new(HashMap::new()),
            draining: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            registered: RwLock::new(None),
            registered_at: AtomicU64::new(0),
            key_fetch: tokio::sync::Mutex::new(()),
        }))
    }

    /// The worker's address.
    pub fn address(&self) -> Address {
        self.identity.address()
    }

    /// The worker's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// SHA-256 of the model file this worker serves (bound in its evidence), if any.
    pub fn model_hash(&self) -> Option<B256> {
        self.config
            .model
            .as_ref()
            .map(|m| B256::from(m.model_hash()))
    }

    /// Its own evidence facts.
    pub fn evidence(&self) -> &OwnEvidence {
        &self.evidence
    }

    /// The program keys it holds.
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The URL it announces.
    pub fn url(&self) -> String {
        self.url
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Seal the storage high-water marks to the state directory when they changed.
    pub fn save_marks(&self) -> Result<(), WorkerError> {
        match self.kv.export_marks() {
            Some(bytes) => self.sealer.write(KV_MARKS_FILE, &bytes),
            None => Ok(()),
        }
    }

    /// Start draining: stop announcing, refuse new work with `draining`.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether it is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Invocations running now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Registration expiry when registered and active.
    pub fn registration_expiry(&self) -> Option<u64> {
        *self
            .registered
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn set_registered(&self, expiry: Option<u64>, since: u64) {
        *self
            .registered
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = expiry;
        self.registered_at.store(since, Ordering::SeqCst);
    }

    /// The owner of `program` on chain.
    pub async fn program_owner(&self, program: ProgramId) -> Result<Address, WorkerError> {
        self.contracts
            .programs
            .raw()
            .ownerOf(U256::from_be_bytes(program.0))
            .call()
            .await
            .map_err(chain_err)
    }

    /// Take the usage accumulated so far (for a batch).
    pub fn take_usage(&self) -> HashMap<ProgramId, PendingUsage> {
        std::mem::take(
            &mut *self
                .usage
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Put back usage a failed batch did not settle.
    pub fn restore_usage(&self, usage: HashMap<ProgramId, PendingUsage>) {
        let mut m = self
            .usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (p, u) in usage {
            m.entry(p).or_default().merge(&u);
        }
    }

    /// Recent log lines of a program, oldest first.
    pub fn logs(&self, program: &ProgramId) -> Vec<LogEntry> {
        self.logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(program)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn record_usage(
        &self,
        program: ProgramId,
        usage: &pith_sandbox::Usage,
        logs: &[pith_sandbox::LogLine],
    ) {
        {
            let mut m = self
                .usage
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            m.entry(program).or_default().record(usage);
        }
        if !logs.is_empty() {
            let mut m = self
                .logs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let q = m.entry(program).or_default();
            let t = now_ms();
            for l in logs {
                if q.len() == LOG_LINES {
                    q.pop_front();
                }
                q.push_back(LogEntry {
                    time_ms: t,
                    level: l.level.clone(),
                    message: l.message.clone(),
                    worker: self.address(),
                });
            }
        }
    }

    // ----------------------------------------------------------------- keys

    /// The keys of `program`: held in memory, or released by a KMS now (and sealed to disk).
    pub async fn program_keys(
        &self,
        program: ProgramId,
    ) -> Result<Arc<crate::keys::ProgramKeySet>, WorkerError> {
        if let Some(k) = self.keys.get(&program) {
            return Ok(k);
        }
        let _guard = self.key_fetch.lock().await;
        if let Some(k) = self.keys.get(&program) {
            return Ok(k);
        }
        let set = crate::keys::release(self, program).await?;
        crate::keys::store_sealed(&self.sealer, &set)?;
        Ok(self.keys.insert(set))
    }

    /// Ask the KMS again for `program`'s keys (after a rotation) unless `held` was fetched
    /// less than [`KEY_REFRESH_INTERVAL`] ago; keeps `held` when the KMS has nothing newer
    /// or is unreachable.
    async fn refresh_program_keys(
        &self,
        program: ProgramId,
        held: Arc<crate::keys::ProgramKeySet>,
    ) -> Arc<crate::keys::ProgramKeySet> {
        if held.fetched_at().elapsed() < KEY_REFRESH_INTERVAL {
            return held;
        }
        let _guard = self.key_fetch.lock().await;
        let current = self.keys.get(&program).unwrap_or(held);
        if current.fetched_at().elapsed() < KEY_REFRESH_INTERVAL {
            return current;
        }
        match crate::keys::release(self, program).await {
            Ok(set) if set.all().count() > current.all().count() => {
                if let Err(e) = crate::keys::store_sealed(&self.sealer, &set) {
                    tracing::warn!(target: "pith::worker", "sealing refreshed keys: {e}");
                }
                tracing::info!(target: "pith::worker", program = %program.to_hex(), ?set, "refreshed program keys after a KMS rotation");
                self.keys.insert(set)
            }
            Ok(_) => {
                current.touch();
                current
            }
            Err(e) => {
                tracing::warn!(target: "pith::worker", "refreshing program keys: {e}");
                current.touch();
                current
            }
        }
    }

    // ----------------------------------------------------------------- programs

    async fn code_hash_on_chain(&self, program: ProgramId) -> Result<[u8; 32], WorkerError> {
        let id = U256::from_be_bytes(program.0);
        let h = self
            .contracts
            .programs
            .raw()
            .codeHashOf(id)
            .call()
            .await
            .map_err(chain_err)?;
        Ok(h.0)
    }

    async fn fetch_code(&self, hash: [u8; 32]) -> Result<Arc<[u8]>, WorkerError> {
        if let Some(c) = self
            .code
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&hash)
        {
            return Ok(c.clone());
        }
        let gw = self.config.gateway_url.as_deref().ok_or_else(|| {
            WorkerError::Gateway("no gateway configured to fetch code from".into())
        })?;
        let url = format!(
            "{}{}",
            gw.trim_end_matches('/'),
            pith_api::gateway::CODE_BY_HASH.replace("{hash}", &format!("0x{}", hex::encode(hash)))
        );
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| WorkerError::Gateway(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(refuse(
                ErrorKind::UnknownProgram,
                format!(
                    "code 0x{} not available from the gateway (HTTP {})",
                    hex::encode(hash),
                    resp.status()
                ),
            ));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| WorkerError::Gateway(e.to_string()))?;
        if bytes.len() > pith_api::gateway::MAX_CODE_BYTES {
            return Err(refuse(ErrorKind::CodeMismatch, "code over the size limit"));
        }
        let got = pith_crypto::sha256(&bytes);
        if got != hash {
            return Err(refuse(
                ErrorKind::CodeMismatch,
                format!(
                    "code served for 0x{} hashes to 0x{}",
                    hex::encode(hash),
                    hex::encode(got)
                ),
            ));
        }
        // JavaScript must be UTF-8; a WebAssembly component (magic `\0asm`) is bytes.
        if !bytes.starts_with(b"\0asm") && std::str::from_utf8(&bytes).is_err() {
            return Err(refuse(
                ErrorKind::CodeMismatch,
                "code is neither UTF-8 JavaScript nor WebAssembly",
            ));
        }
        let code: Arc<[u8]> = Arc::from(bytes.as_ref());
        self.code
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(hash, code.clone());
        Ok(code)
    }

    /// The program's limits from its config on chain; `default_wall_ms` when it sets none.
    async fn limits(
        &self,
        program: ProgramId,
        default_wall_ms: u64,
    ) -> Result<Limits, WorkerError> {
        let p = self
            .contracts
            .programs
            .raw()
            .program(U256::from_be_bytes(program.0))
            .call()
            .await
            .map_err(chain_err)?;
        let c = p.config;
        let mut l = Limits {
            wall_ms: default_wall_ms,
            ..Limits::default()
        };
        if c.memoryMib != 0 {
            l.memory_mb = u64::from(c.memoryMib);
        }
        if c.cpuMillis != 0 {
            l.cpu_ms = u64::from(c.cpuMillis);
        }
        if c.wallMillis != 0 {
            l.wall_ms = u64::from(c.wallMillis);
        }
        if c.egressCount != 0 {
            l.egress_requests = u64::from(c.egressCount);
        }
        if c.egressBytes != 0 {
            l.egress_bytes = c.egressBytes;
        }
        if c.outputBytes != 0 {
            l.output_bytes = c.outputBytes;
        }
        Ok(l)
    }

    /// The program as it must run now: code matching `Programs.codeHashOf(id)`, limits from
    /// its config, the latest owner-signed secrets.
    pub async fn load_program(
        &self,
        program: ProgramId,
        keys: &crate::keys::ProgramKeySet,
    ) -> Result<Arc<Program>, WorkerError> {
        let (cached, secrets_version) = {
            let m = self
                .programs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match m.get(&program) {
                Some(l) if l.checked.elapsed() < PROGRAM_TTL => return Ok(l.program.clone()),
                Some(l) => (Some(l.program.clone()), l.secrets_version),
                None => (None, 0),
            }
        };
        let hash = self.code_hash_on_chain(program).await?;
        if hash == [0u8; 32] {
            return Err(refuse(
                ErrorKind::UnknownProgram,
                format!("program {} is not registered on chain", program.to_hex()),
            ));
        }
        let secrets = crate::secrets::fetch(self, program, keys, secrets_version).await?;
        if secrets.is_none() {
            if let Some(c) = cached.as_ref().filter(|c| c.code_hash == hash) {
                if let Some(l) = self
                    .programs
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get_mut(&program)
                {
                    l.checked = Instant::now();
                }
                return Ok(c.clone());
            }
        }
        let code = self.fetch_code(hash).await?;
        // A long generation (or one queued behind others for an engine slot) needs more than
        // a program's default wall time: inference programs get INFERENCE_WALL_MS unless their
        // owner configured a wall-time limit.
        let default_wall_ms = if pith_api::inference::Manifest::parse(&code).is_some() {
            INFERENCE_WALL_MS
        } else {
            Limits::default().wall_ms
        };
        let mut p = if code.starts_with(b"\0asm") {
            Program::from_wasm(program.to_hex(), code)
        } else {
            // Checked to be UTF-8 by `fetch_code`.
            Program::new(
                program.to_hex(),
                String::from_utf8_lossy(&code).into_owned(),
            )
        };
        p.limits = self.limits(program, default_wall_ms).await?;
        p.code_hash = hash;
        let version = match (secrets, &cached) {
            (Some(u), _) => {
                p.secrets = u.secrets;
                p.egress.allow_hosts = u.egress;
                u.version
            }
            (None, Some(c)) => {
                p.secrets = c.secrets.clone();
                p.egress = c.egress.clone();
                secrets_version
            }
            (None, None) => secrets_version,
        };
        if cached.is_some() {
            self.pool.evict_program(&p.id);
        }
        let p = Arc::new(p);
        self.programs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                program,
                Loaded {
                    program: p.clone(),
                    checked: Instant::now(),
                    secrets_version: version,
                },
            );
        Ok(p)
    }
}

mod invoke;
