//! The KMS node: identity, master keys, chain context, and the operations behind the HTTP
//! API (registration, key release, key certificates, replication).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use alloy::primitives::U256;
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use pith_api::ErrorKind;
use pith_api::binding::{
    self, KEY_RELEASE_TAG, KMS_REPORT_TAG, REPLICATE_REPLY_TAG, REPLICATE_TAG, WORKER_REPORT_TAG,
};
use pith_api::kms::{
    KeyReleaseRequest, KeyReleaseResponse, KmsInfo, ProgramKeyInfo, RegisterWorkerRequest,
    RegisterWorkerResponse, ReplicateRequest, ReplicateResponse, WorkerRegistration,
};
use pith_attest::sealing::Sealer;
use pith_chain::bindings::Registry;
use pith_chain::client::PithContracts;
use pith_chain::manifest::Deployment;
use pith_crypto::bundle::{MasterKeyBundle, ProgramKeyBundle};
use pith_crypto::certify::KeyCertificate;
use pith_crypto::envelope::ProgramServer;
use pith_crypto::keytree::{MasterKey, ProgramId};
use pith_crypto::transport::{self, Purpose};
use pith_crypto::{Address, B256, keccak256};

use crate::error::{KmsError, chain, refuse};
use crate::evidence::{Attester, Facts, ROLE_KMS, ROLE_WORKER, check_policy};
use crate::identity::Identity;
use crate::store::Store;

/// Configuration of a KMS node.
#[derive(Debug, Clone)]
pub struct Config {
    /// State directory: sealing key (simulated), sealed identity, `kms.redb`.
    pub state_dir: PathBuf,
    /// Listen address.
    pub listen: std::net::SocketAddr,
    /// Chain RPC URL.
    pub rpc_url: String,
    /// Deployment manifest. It may not exist yet at start (`pith up` deploys the contracts
    /// after the KMS answers); the node polls for it.
    pub deployment: PathBuf,
    /// Development CA directory (simulated platform).
    pub dev_ca_dir: Option<PathBuf>,
    /// Collateral for verifying evidence (workers', peers', its own): Intel and AMD need it.
    /// Default: none (a local network of simulated nodes); `pith kms` fetches it.
    pub collateral: Arc<dyn pith_attest::CollateralSource>,
    /// Other KMS nodes to replicate master keys from (tried in order).
    pub peers: Vec<String>,
    /// Generate the first master key when none is held and no peer has one. `false` for a
    /// node joining an existing committee.
    pub bootstrap: bool,
    /// Validity of a worker registration the node signs (capped by the Registry's maximum).
    pub registration_ttl: Duration,
    /// Validity of a key certificate.
    pub certificate_ttl: Duration,
    /// Interval of the chain loop (deployment, evidence posting, rotation, replication).
    pub poll: Duration,
    /// TEST ONLY: attest as a binary with this SHA-384 (a measurement the chain does not allow).
    pub danger_binary_sha384: Option<[u8; 48]>,
}

impl Config {
    /// Defaults for everything but the paths and URLs.
    pub fn new(
        state_dir: PathBuf,
        listen: std::net::SocketAddr,
        rpc_url: String,
        deployment: PathBuf,
    ) -> Self {
        Self {
            state_dir,
            listen,
            rpc_url,
            deployment,
            dev_ca_dir: None,
            collateral: Arc::new(pith_attest::NoCollateral),
            peers: Vec::new(),
            bootstrap: true,
            registration_ttl: Duration::from_secs(24 * 3600),
            certificate_ttl: Duration::from_secs(24 * 3600),
            poll: Duration::from_secs(1),
            danger_binary_sha384: None,
        }
    }
}

/// What the node knows about the network once the deployment exists.
#[derive(Debug, Clone)]
pub struct ChainContext {
    /// The deployment.
    pub deployment: Deployment,
    /// Read-only contract clients.
    pub contracts: PithContracts,
    /// Contract clients signing with the node's identity (posts its evidence).
    pub signer: PithContracts,
    /// The node's evidence bound to this chain and Registry.
    pub evidence: Facts,
    /// Whether the evidence has been posted on chain.
    pub posted: bool,
}

impl ChainContext {
    fn chain_id(&self) -> u64 {
        self.deployment.chain_id
    }
    fn registry(&self) -> Address {
        self.deployment.contracts.registry
    }
}

/// A KMS node.
pub struct Kms {
    config: Config,
    identity: Identity,
    sealer: Sealer,
    store: Store,
    attester: Attester,
    keys: RwLock<BTreeMap<u32, Arc<MasterKey>>>,
    chain: RwLock<Option<ChainContext>>,
    /// Evidence before the deployment is known (bound to chain id 0 and the zero Registry).
    unbound_evidence: Facts,
    pub(crate) http: reqwest::Client,
}

impl std::fmt::Debug for Kms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kms")
            .field("address", &self.address())
            .field("epochs", &self.epochs())
            .finish_non_exhaustive()
    }
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn program_u256(id: &B256) -> U256 {
    U256::from_be_bytes(id.0)
}

impl Kms {
    /// Open the node: sealing key, identity, master keys (sealed in the database), evidence
    /// source. Generates the first master key (epoch 0) when none is held, the node may
    /// bootstrap and has no peers to replicate from.
    pub fn open(config: Config) -> Result<Arc<Self>, KmsError> {
        let sealer = crate::identity::sealer(&config.state_dir)?;
        let identity = Identity::load_or_create(&sealer)?;
        let store = Store::open(&config.state_dir.join(crate::store::DB_FILE))?;
        let loaded = store.load(&sealer)?;
        let source: Arc<dyn pith_attest::provider::EvidenceSource> = {
            let mut options = pith_attest::provider::DetectOptions::default();
            if let Some(dir) = &config.dev_ca_dir {
                options.simulated = Some(pith_attest::provider::SimulatedOptions {
                    dev_ca_dir: dir.clone(),
                    binary_sha384: config.danger_binary_sha384,
                    ..Default::default()
                });
            }
            Arc::from(
                pith_attest::provider::detect(&options)
                    .map_err(|e| KmsError::Evidence(e.to_string()))?,
            )
        };
        let dev_ca = match &config.dev_ca_dir {
            Some(dir) => Some(
                std::fs::read(dir.join(pith_attest::simulated::CERT_FILE))
                    .map_err(|e| KmsError::Evidence(format!("dev CA: {e}")))?,
            ),
            None => None,
        };
        let attester = Attester::new(source, dev_ca, config.collateral.clone());
        let unbound_evidence = attester.own(
            identity.address(),
            &identity.enc_public_key(),
            0,
            Address::ZERO,
        )?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| KmsError::State(format!("http client: {e}")))?;
        let kms = Arc::new(Self {
            keys: RwLock::new(loaded.into_iter().map(|(e, k)| (e, Arc::new(k))).collect()),
            config,
            identity,
            sealer,
            store,
            attester,
            chain: RwLock::new(None),
            unbound_evidence,
            http,
        });
        if kms.epochs().is_empty() && kms.config.bootstrap && kms.config.peers.is_empty() {
            kms.generate(0)?;
        }
        tracing::info!(target: "pith::kms", address = %kms.address(), epochs = ?kms.epochs(), "KMS open");
        Ok(kms)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The node's address.
    pub fn address(&self) -> Address {
        self.identity.address()
    }

    /// The node's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Epochs held, oldest first.
    pub fn epochs(&self) -> Vec<u32> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }

    /// The newest epoch held.
    pub fn current_epoch(&self) -> Option<u32> {
        self.epochs().last().copied()
    }

    fn masters(&self) -> Vec<Arc<MasterKey>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// The chain context, once the deployment is known.
    pub fn chain(&self) -> Option<ChainContext> {
        self.chain
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn require_chain(&self) -> Result<ChainContext, KmsError> {
        self.chain().ok_or_else(|| {
            refuse(
                ErrorKind::Unavailable,
                "the KMS does not know the deployment yet",
            )
        })
    }

    fn require_keys(&self) -> Result<Vec<Arc<MasterKey>>, KmsError> {
        let m = self.masters();
        if m.is_empty() {
            return Err(refuse(
                ErrorKind::Unavailable,
                "the KMS holds no master key yet",
            ));
        }
        Ok(m)
    }

    /// Hold `key` (sealed to the database first). An epoch already held must carry the same
    /// secret.
    fn hold(&self, key: MasterKey) -> Result<(), KmsError> {
        let epoch = key.epoch();
        if let Some(existing) = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&epoch)
        {
            if existing.expose_secret() != key.expose_secret() {
                return Err(KmsError::State(format!(
                    "a different master key of epoch {epoch} is already held"
                )));
            }
            return Ok(());
        }
        self.store.put(&self.sealer, &key)?;
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(epoch, Arc::new(key));
        Ok(())
    }

    /// Generate the master key of `epoch` inside the node and seal it.
    pub fn generate(&self, epoch: u32) -> Result<(), KmsError> {
        let key = MasterKey::generate(&mut rand_core::OsRng, epoch);
        self.hold(key)?;
        tracing::info!(target: "pith::kms", epoch, "generated master key");
        Ok(())
    }

    // ------------------------------------------------------------------ chain

    /// Learn the deployment (when its manifest exists): evidence bound to the network.
    pub fn try_load_deployment(&self) -> Result<bool, KmsError> {
        if self.chain().is_some() {
            return Ok(true);
        }
        if !self.config.deployment.exists() {
            return Ok(false);
        }
        let deployment = Deployment::read(&self.config.deployment)
            .map_err(|e| KmsError::State(e.to_string()))?;
        let read: DynProvider =
            pith_chain::client::read_provider(&self.config.rpc_url).map_err(chain)?;
        let signer = PrivateKeySigner::from_signing_key(self.identity.signing_key().clone());
        let write =
            pith_chain::client::signing_provider(&self.config.rpc_url, signer).map_err(chain)?;
        let evidence = self.attester.own(
            self.address(),
            &self.identity.enc_public_key(),
            deployment.chain_id,
            deployment.contracts.registry,
        )?;
        let ctx = ChainContext {
            contracts: PithContracts::new(&deployment, read),
            signer: PithContracts::new(&deployment, write),
            deployment,
            evidence,
            posted: false,
        };
        tracing::info!(target: "pith::kms", registry = %ctx.registry(), chain_id = ctx.chain_id(), "deployment known");
        *self
            .chain
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(ctx);
        Ok(true)
    }

    /// Post the node's evidence on chain (`Registry.postKmsEvidence`) once it is a committee member.
    pub async fn post_evidence(&self) -> Result<bool, KmsError> {
        let Some(ctx) = self.chain() else {
            return Ok(false);
        };
        if ctx.posted {
            return Ok(true);
        }
        if !ctx
            .contracts
            .registry
            .is_kms_member(self.address())
            .await
            .map_err(chain)?
        {
            return Ok(false);
        }
        let e = &ctx.evidence;
        ctx.signer
            .registry
            .send_post_kms_evidence(
                e.platform_id,
                e.measurement_hash,
                e.tcb_status,
                e.bytes.clone().into(),
            )
            .await
            .map_err(chain)?;
        tracing::info!(target: "pith::kms", "posted evidence on chain");
        if let Some(c) = self
            .chain
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_mut()
        {
            c.posted = true;
        }
        Ok(true)
    }

    /// Follow the governance-ordered key epoch: when the Registry's `kmsKeyEpoch` is newer
    /// than the newest epoch held, get it from a peer, or (the bootstrap node only) generate
    /// it. Old epochs are kept.
    pub async fn follow_epoch(&self) -> Result<(), KmsError> {
        let Some(ctx) = self.chain() else {
            return Ok(());
        };
        let ordered = ctx
            .contracts
            .registry
            .kms_key_epoch()
            .await
            .map_err(chain)?;
        if self.current_epoch().is_some_and(|e| e >= ordered) {
            return Ok(());
        }
        for peer in &self.config.peers {
            match self.replicate_from(peer).await {
                Ok(epochs) => {
                    tracing::info!(target: "pith::kms", %peer, ?epochs, "replicated master keys")
                }
                Err(e) => tracing::warn!(target: "pith::kms", %peer, "replication failed: {e}"),
            }
            if self.current_epoch().is_some_and(|e| e >= ordered) {
                return Ok(());
            }
        }
        // Only the bootstrap node generates; joining nodes wait for a peer to have the epoch
        // (two generators would diverge: exactly one node of a committee bootstraps).
        if self.config.bootstrap {
            self.generate(ordered)?;
            tracing::info!(target: "pith::kms", epoch = ordered, "moved to the key epoch governance ordered");
        }
        Ok(())
    }

    /// One round of the chain loop.
    pub async fn tick(&self) {
        match self.try_load_deployment() {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(target: "pith::kms", "deployment: {e}");
                return;
            }
        }
        if let Err(e) = self.post_evidence().await {
            tracing::warn!(target: "pith::kms", "posting evidence: {e}");
        }
        if let Err(e) = self.follow_epoch().await {
            tracing::warn!(target: "pith::kms", "key epoch: {e}");
        }
    }

    // ------------------------------------------------------------------ API

    /// `GET /v1/kms/info`.
    pub fn info(&self) -> KmsInfo {
        let ctx = self.chain();
        let (e, chain_id, registry) = match &ctx {
            Some(c) => (&c.evidence, c.chain_id(), c.registry()),
            None => (&self.unbound_evidence, 0, Address::ZERO),
        };
        let epochs = self.epochs();
        KmsInfo {
            address: self.address(),
            platform: e.platform.as_str().to_owned(),
            platform_id: e.platform_id,
            measurement_hash: e.measurement_hash,
            tcb_status: e.tcb_status,
            evidence: e.bytes.clone(),
            enc_public_key: self.identity.enc_public_key(),
            chain_id,
            registry,
            epoch: epochs.last().copied(),
            epochs,
        }
    }

    async fn verify_worker(
        &self,
        ctx: &ChainContext,
        worker: Address,
        enc: &[u8; 32],
        model_hash: Option<&B256>,
        evidence: &[u8],
    ) -> Result<Facts, KmsError> {
        let model = model_hash.map(|m| m.0);
        let rd = binding::report_data_with_model(
            WORKER_REPORT_TAG,
            worker,
            enc,
            ctx.chain_id(),
            ctx.registry(),
            model.as_ref(),
        );
        let facts = self.attester.verify(evidence, &rd)?;
        check_policy(&ctx.contracts.registry, &facts, ROLE_WORKER).await?;
        Ok(facts)
    }

    /// `POST /v1/kms/workers/register`: verify the worker's evidence against the chain's
    /// worker policy and sign its registration.
    pub async fn register_worker(
        &self,
        req: &RegisterWorkerRequest,
    ) -> Result<RegisterWorkerResponse, KmsError> {
        let ctx = self.require_chain()?;
        if req.worker == Address::ZERO || req.operator == Address::ZERO {
            return Err(refuse(
                ErrorKind::BadRequest,
                "worker and operator must be non-zero",
            ));
        }
        let facts = self
            .verify_worker(
                &ctx,
                req.worker,
                &req.enc_public_key,
                req.model_hash.as_ref(),
                &req.evidence,
            )
            .await?;
        let max_ttl: u64 = ctx
            .contracts
            .registry
            .raw()
            .maxRegistrationTtl()
            .call()
            .await
            .map_err(chain)?;
        // A minute of margin for the transaction to land before the contract's own check.
        let ttl = self
            .config
            .registration_ttl
            .as_secs()
            .min(max_ttl.saturating_sub(60))
            .max(60);
        let registration = WorkerRegistration {
            worker: req.worker,
            operator: req.operator,
            platform: facts.platform_id,
            measurement_hash: facts.measurement_hash,
            tcb_status: facts.tcb_status,
            evidence_hash: B256::from(keccak256(&req.evidence)),
            expiry: now_secs().saturating_add(ttl),
        };
        let reg = Registry::WorkerRegistration {
            worker: registration.worker,
            operator: registration.operator,
            platform: registration.platform,
            measurementHash: registration.measurement_hash,
            tcbStatus: registration.tcb_status,
            evidenceHash: registration.evidence_hash,
            expiry: registration.expiry,
        };
        let digest = pith_chain::eip712::registration_digest(&reg, ctx.chain_id(), ctx.registry());
        let signature = self.identity.sign_digest(&digest)?.to_vec();
        tracing::info!(target: "pith::kms", worker = %req.worker, measurement = %facts.measurement_hash, "signed worker registration");
        Ok(RegisterWorkerResponse {
            registration,
            kms: self.address(),
            signature,
        })
    }

    fn check_signed(
        &self,
        tag: &str,
        fields: &[&[u8]],
        timestamp: u64,
        signature: &[u8],
        signer: Address,
    ) -> Result<(), KmsError> {
        if !binding::fresh(timestamp, now_secs()) {
            return Err(refuse(
                ErrorKind::Unauthorized,
                format!(
                    "stale timestamp {timestamp} (more than {}s from now)",
                    binding::MAX_CLOCK_SKEW_SECS
                ),
            ));
        }
        let digest = binding::message_digest(tag, fields, timestamp);
        let recovered = pith_crypto::receipt::recover(&digest, signature)
            .map_err(|e| refuse(ErrorKind::Unauthorized, format!("bad signature: {e}")))?;
        if recovered != signer {
            return Err(refuse(
                ErrorKind::Unauthorized,
                format!("signature is by {recovered}, not {signer}"),
            ));
        }
        Ok(())
    }

    /// The public key configuration of `program` (every epoch) and its certificate.
    pub async fn program_key(&self, program_id: B256) -> Result<ProgramKeyInfo, KmsError> {
        let ctx = self.require_chain()?;
        if !ctx
            .contracts
            .programs
            .exists(program_u256(&program_id))
            .await
            .map_err(chain)?
        {
            return Err(refuse(
                ErrorKind::NotFound,
                format!("program {program_id} is not registered on chain"),
            ));
        }
        self.program_key_info(&ctx, program_id)
    }

    fn program_key_info(
        &self,
        ctx: &ChainContext,
        program_id: B256,
    ) -> Result<ProgramKeyInfo, KmsError> {
        let masters = self.require_keys()?;
        let program = ProgramId(program_id.0);
        let mut server: Option<ProgramServer> = None;
        let mut newest = 0;
        let mut address = Address::ZERO;
        for keys in pith_crypto::keytree::program_key_epochs(&program, &masters)
            .map_err(|e| KmsError::Crypto(e.to_string()))?
        {
            newest = keys.epoch();
            address = keys.address();
            match server.as_mut() {
                Some(s) => s
                    .add_epoch(&keys)
                    .map_err(|e| KmsError::Crypto(e.to_string()))?,
                None => {
                    server = Some(
                        ProgramServer::new(&keys).map_err(|e| KmsError::Crypto(e.to_string()))?,
                    )
                }
            }
        }
        let server = server
            .ok_or_else(|| refuse(ErrorKind::Unavailable, "the KMS holds no master key yet"))?;
        let ohttp_keys = server
            .encoded_key_configs()
            .map_err(|e| KmsError::Crypto(e.to_string()))?;
        let not_after = now_secs().saturating_add(self.config.certificate_ttl.as_secs());
        let certificate = KeyCertificate::issue(
            self.identity.signing_key(),
            ctx.chain_id(),
            ctx.registry(),
            program_id,
            newest,
            &ohttp_keys,
            address,
            not_after,
        )
        .map_err(|e| KmsError::Crypto(e.to_string()))?;
        Ok(ProgramKeyInfo {
            program_id,
            ohttp_keys,
            certificate,
        })
    }

    /// `POST /v1/kms/keys/release`: release a program's keys (every epoch) to an attested,
    /// registered worker, sealed to the key its evidence binds.
    pub async fn release(&self, req: &KeyReleaseRequest) -> Result<KeyReleaseResponse, KmsError> {
        self.check_signed(
            KEY_RELEASE_TAG,
            &[
                req.worker.as_slice(),
                req.program_id.as_slice(),
                &req.enc_public_key,
            ],
            req.timestamp,
            &req.signature,
            req.worker,
        )?;
        let ctx = self.require_chain()?;
        self.verify_worker(
            &ctx,
            req.worker,
            &req.enc_public_key,
            req.model_hash.as_ref(),
            &req.evidence,
        )
        .await?;
        let registry = &ctx.contracts.registry;
        if !registry.is_active_worker(req.worker).await.map_err(chain)? {
            return Err(refuse(
                ErrorKind::PolicyRejected,
                format!("worker {} is not an active registered worker", req.worker),
            ));
        }
        let record = registry.worker_info(req.worker).await.map_err(chain)?;
        if record.evidenceHash.0 != keccak256(&req.evidence) {
            return Err(refuse(
                ErrorKind::PolicyRejected,
                "the evidence is not the one the Registry holds for this worker",
            ));
        }
        if !ctx
            .contracts
            .programs
            .exists(program_u256(&req.program_id))
            .await
            .map_err(chain)?
        {
            return Err(refuse(
                ErrorKind::NotFound,
                format!("program {} is not registered on chain", req.program_id),
            ));
        }
        let masters = self.require_keys()?;
        let program = ProgramId(req.program_id.0);
        let keys = pith_crypto::keytree::program_key_epochs(&program, &masters)
            .map_err(|e| KmsError::Crypto(e.to_string()))?;
        let bundle =
            ProgramKeyBundle::new(program, keys).map_err(|e| KmsError::Crypto(e.to_string()))?;
        let context = transport::program_context(&program.0, &req.worker);
        let sealed = transport::seal(
            &req.enc_public_key,
            Purpose::ProgramKeys,
            &context,
            &bundle.encode(),
        )
        .map_err(|e| KmsError::Crypto(e.to_string()))?;
        let key = self.program_key_info(&ctx, req.program_id)?;
        tracing::info!(target: "pith::kms", worker = %req.worker, program = %req.program_id, epochs = ?bundle.epochs(), "released program keys");
        Ok(KeyReleaseResponse {
            program_id: req.program_id,
            kms: self.address(),
            epochs: bundle.epochs(),
            sealed,
            key,
        })
    }

    async fn verify_peer(
        &self,
        ctx: &ChainContext,
        peer: Address,
        enc: &[u8; 32],
        evidence: &[u8],
    ) -> Result<Facts, KmsError> {
        if peer == self.address() {
            return Err(refuse(
                ErrorKind::BadRequest,
                "a KMS does not replicate with itself",
            ));
        }
        if !ctx
            .contracts
            .registry
            .is_kms_member(peer)
            .await
            .map_err(chain)?
        {
            return Err(refuse(
                ErrorKind::PolicyRejected,
                format!("{peer} is not a member of the Registry's KMS committee"),
            ));
        }
        let rd = binding::report_data(KMS_REPORT_TAG, peer, enc, ctx.chain_id(), ctx.registry());
        let facts = self.attester.verify(evidence, &rd)?;
        check_policy(&ctx.contracts.registry, &facts, ROLE_KMS).await?;
        Ok(facts)
    }

    /// `POST /v1/kms/replicate`: hand the master keys to an attested committee member.
    pub async fn replicate(&self, req: &ReplicateRequest) -> Result<ReplicateResponse, KmsError> {
        self.check_signed(
            REPLICATE_TAG,
            &[req.kms.as_slice(), &req.enc_public_key],
            req.timestamp,
            &req.signature,
            req.kms,
        )?;
        let ctx = self.require_chain()?;
        self.verify_peer(&ctx, req.kms, &req.enc_public_key, &req.evidence)
            .await?;
        let masters = self.require_keys()?;
        let bundle = MasterKeyBundle::new(
            masters
                .iter()
                .map(|m| MasterKey::from_bytes(*m.expose_secret(), m.epoch()))
                .collect(),
        )
        .map_err(|e| KmsError::Crypto(e.to_string()))?;
        let context = transport::replication_context(&self.address(), &req.kms);
        let sealed = transport::seal(
            &req.enc_public_key,
            Purpose::MasterKeys,
            &context,
            &bundle.encode(),
        )
        .map_err(|e| KmsError::Crypto(e.to_string()))?;
        let timestamp = now_secs();
        let digest = binding::message_digest(
            REPLICATE_REPLY_TAG,
            &[
                self.address().as_slice(),
                req.kms.as_slice(),
                &keccak256(&sealed),
            ],
            timestamp,
        );
        let signature = self.identity.sign_digest(&digest)?.to_vec();
        tracing::info!(target: "pith::kms", peer = %req.kms, epochs = ?bundle.epochs(), "replicated master keys to a peer");
        Ok(ReplicateResponse {
            kms: self.address(),
            enc_public_key: self.identity.enc_public_key(),
            evidence: ctx.evidence.bytes.clone(),
            epochs: bundle.epochs(),
            sealed,
            timestamp,
            signature,
        })
    }

    /// Ask `peer` (a KMS base URL) for the master keys, verify its evidence against the same
    /// allow-list (mutual attestation) and hold the keys. Returns the epochs received.
    pub async fn replicate_from(&self, peer: &str) -> Result<Vec<u32>, KmsError> {
        let ctx = self.require_chain()?;
        let timestamp = now_secs();
        let enc = self.identity.enc_public_key();
        let digest =
            binding::message_digest(REPLICATE_TAG, &[self.address().as_slice(), &enc], timestamp);
        let body = ReplicateRequest {
            kms: self.address(),
            enc_public_key: enc,
            evidence: ctx.evidence.bytes.clone(),
            timestamp,
            signature: self.identity.sign_digest(&digest)?.to_vec(),
        };
        let url = format!("{}{}", peer.trim_end_matches('/'), pith_api::kms::REPLICATE);
        let resp = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, pith_api::media::JSON)
            .body(serde_json::to_vec(&body).map_err(|e| KmsError::Peer(e.to_string()))?)
            .send()
            .await
            .map_err(|e| KmsError::Peer(format!("{url}: {e}")))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| KmsError::Peer(format!("{url}: {e}")))?;
        if !status.is_success() {
            return Err(
                match serde_json::from_slice::<pith_api::ErrorBody>(&bytes) {
                    Ok(b) => KmsError::Peer(format!("{url} refused: {}", b.error)),
                    Err(_) => KmsError::Peer(format!("{url}: HTTP {status}")),
                },
            );
        }
        let answer: ReplicateResponse = serde_json::from_slice(&bytes)
            .map_err(|e| KmsError::Peer(format!("{url}: answer: {e}")))?;
        self.accept_replica(&ctx, &answer)
            .await
            .map_err(|e| KmsError::Peer(format!("{url}: {e}")))
    }

    /// Check a peer's replication answer (signature, freshness, its evidence against the
    /// KMS allow-list) and hold the master keys it carries.
    pub async fn accept_replica(
        &self,
        ctx: &ChainContext,
        answer: &ReplicateResponse,
    ) -> Result<Vec<u32>, KmsError> {
        self.check_signed(
            REPLICATE_REPLY_TAG,
            &[
                answer.kms.as_slice(),
                self.address().as_slice(),
                &keccak256(&answer.sealed),
            ],
            answer.timestamp,
            &answer.signature,
            answer.kms,
        )?;
        self.verify_peer(ctx, answer.kms, &answer.enc_public_key, &answer.evidence)
            .await?;
        let context = transport::replication_context(&answer.kms, &self.address());
        let plain = transport::open(
            self.identity.enc_secret(),
            Purpose::MasterKeys,
            &context,
            &answer.sealed,
        )
        .map_err(|e| {
            refuse(
                ErrorKind::DecryptFailed,
                format!("replicated master keys: {e}"),
            )
        })?;
        let bundle = MasterKeyBundle::decode(&plain).map_err(|e| {
            refuse(
                ErrorKind::BadRequest,
                format!("replicated master keys: {e}"),
            )
        })?;
        let epochs = bundle.epochs();
        for key in bundle.into_keys() {
            self.hold(key)?;
        }
        Ok(epochs)
    }
}
