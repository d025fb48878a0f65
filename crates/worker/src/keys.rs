//! Program keys held by this worker: every epoch the KMS released, the OHTTP server built
//! from them, and the user-key root. Kept in memory, and sealed to the state directory by
//! [`crate::identity`] so the worker keeps serving while the KMS is down and after its own
//! restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use pith_crypto::bundle::ProgramKeyBundle;
use pith_crypto::envelope::ProgramServer;
use pith_crypto::keytree::{ProgramId, ProgramKeys, StorageKey};
use pith_crypto::transport::{self, Purpose};
use pith_crypto::{Address, B256};

use crate::error::WorkerError;

/// Every key of one program this worker holds.
pub struct ProgramKeySet {
    program: ProgramId,
    epochs: BTreeMap<u32, ProgramKeys>,
    server: ProgramServer,
    /// When these keys were released or last confirmed current by the KMS.
    fetched_at: std::sync::Mutex<std::time::Instant>,
}

impl std::fmt::Debug for ProgramKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgramKeySet")
            .field("program", &self.program.to_hex())
            .field("epochs", &self.epochs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ProgramKeySet {
    /// Build from the released keys of every epoch (at least one).
    pub fn new(program: ProgramId, keys: Vec<ProgramKeys>) -> Result<Self, WorkerError> {
        let mut epochs = BTreeMap::new();
        for k in keys {
            if k.program() != program {
                return Err(WorkerError::Keys(
                    "released keys are for another program".into(),
                ));
            }
            epochs.insert(k.epoch(), k);
        }
        let mut it = epochs.values();
        let first = it
            .next()
            .ok_or_else(|| WorkerError::Keys("no program keys released".into()))?;
        let mut server = ProgramServer::new(first).map_err(|e| WorkerError::Keys(e.to_string()))?;
        for k in it {
            server
                .add_epoch(k)
                .map_err(|e| WorkerError::Keys(e.to_string()))?;
        }
        Ok(Self {
            program,
            epochs,
            server,
            fetched_at: std::sync::Mutex::new(std::time::Instant::now()),
        })
    }

    /// Whether a request with OHTTP key id `key_id` (the epoch modulo 256) can be decrypted.
    pub fn holds_key_id(&self, key_id: u8) -> bool {
        self.epochs.keys().any(|e| e % 256 == u32::from(key_id))
    }

    /// When these keys were released or last confirmed current.
    pub fn fetched_at(&self) -> std::time::Instant {
        *self
            .fetched_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Record that the KMS confirmed these keys are current (or could not be asked) now.
    pub fn touch(&self) {
        *self
            .fetched_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = std::time::Instant::now();
    }

    /// The program.
    pub fn program(&self) -> ProgramId {
        self.program
    }

    /// The OHTTP server holding every epoch's key.
    pub fn server(&self) -> &ProgramServer {
        &self.server
    }

    /// The newest epoch's keys (new values are sealed and transactions signed with these).
    pub fn current(&self) -> &ProgramKeys {
        // `new` refuses an empty set, so there is always a last entry.
        #[allow(clippy::expect_used)]
        self.epochs
            .values()
            .next_back()
            .expect("a key set holds at least one epoch")
    }

    /// The keys of `epoch`.
    pub fn epoch(&self, epoch: u32) -> Option<&ProgramKeys> {
        self.epochs.get(&epoch)
    }

    /// Every epoch, oldest first.
    pub fn all(&self) -> impl Iterator<Item = &ProgramKeys> {
        self.epochs.values()
    }

    /// Storage key of `epoch`.
    pub fn storage_key(&self, epoch: u32) -> Option<&StorageKey> {
        self.epochs.get(&epoch).map(ProgramKeys::storage_key)
    }

    /// The key `env.keys.derive(path)` gives the program (newest epoch), from the user-key
    /// root the KMS releases with the program keys.
    pub fn user_key(&self, path: &str) -> Result<k256::ecdsa::SigningKey, WorkerError> {
        self.current()
            .user_key(path)
            .map_err(|e| WorkerError::Keys(e.to_string()))
    }

    /// The program's Ethereum address (newest epoch).
    pub fn address(&self) -> Address {
        self.current().address()
    }
}

/// The program keys of this worker, by program.
#[derive(Debug, Default)]
pub struct KeyRing {
    map: RwLock<HashMap<ProgramId, Arc<ProgramKeySet>>>,
}

impl KeyRing {
    /// Keys of `program`, if held.
    pub fn get(&self, program: &ProgramId) -> Option<Arc<ProgramKeySet>> {
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(program)
            .cloned()
    }

    /// Hold `set` (replacing older keys of the same program).
    pub fn insert(&self, set: ProgramKeySet) -> Arc<ProgramKeySet> {
        let set = Arc::new(set);
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(set.program(), set.clone());
        set
    }

    /// Programs whose keys are held.
    pub fn programs(&self) -> Vec<B256> {
        let mut v: Vec<B256> = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .map(|p| B256::from(p.0))
            .collect();
        v.sort();
        v
    }
}

// ------------------------------------------------------------------------- release and sealing

/// State-file name of a program's sealed keys.
pub fn sealed_name(program: &ProgramId) -> String {
    format!("keys/{}.sealed", hex::encode(program.0))
}

/// Sealed key file: a `pith_crypto::bundle::ProgramKeyBundle` encoding (every epoch held),
/// inside [`crate::identity::Sealer`].
fn encode(set: &ProgramKeySet) -> Result<zeroize::Zeroizing<Vec<u8>>, WorkerError> {
    let keys = set
        .epochs
        .values()
        .map(|k| ProgramKeys::from_parts(set.program, k.epoch(), &k.to_parts()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WorkerError::Keys(e.to_string()))?;
    let bundle =
        ProgramKeyBundle::new(set.program, keys).map_err(|e| WorkerError::Keys(e.to_string()))?;
    Ok(bundle.encode())
}

fn decode(bytes: &[u8]) -> Result<ProgramKeySet, WorkerError> {
    let bundle = ProgramKeyBundle::decode(bytes)
        .map_err(|e| WorkerError::State(format!("sealed program keys: {e}")))?;
    ProgramKeySet::new(bundle.program(), bundle.into_keys())
}

/// Seal `set` to the state directory.
pub fn store_sealed(
    sealer: &crate::identity::Sealer,
    set: &ProgramKeySet,
) -> Result<(), WorkerError> {
    sealer.write(&sealed_name(&set.program), &encode(set)?)
}

/// Load every sealed key set of the state directory into `ring`.
pub fn load_sealed(sealer: &crate::identity::Sealer, ring: &KeyRing) -> Result<usize, WorkerError> {
    let dir = sealer.dir().join("keys");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(WorkerError::State(format!("{}: {e}", dir.display()))),
    };
    let mut n = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".sealed") {
            continue;
        }
        if let Some(bytes) = sealer.read(&format!("keys/{name}"))? {
            ring.insert(decode(&bytes)?);
            n += 1;
        }
    }
    Ok(n)
}

/// Ask the KMS nodes (in order) to release `program`'s keys to this worker.
pub async fn release(
    node: &crate::node::Node,
    program: ProgramId,
) -> Result<ProgramKeySet, WorkerError> {
    use pith_api::kms::{KEY_RELEASE, KeyReleaseRequest, KeyReleaseResponse};
    let id = node.identity();
    let timestamp = crate::node::now_secs();
    let enc = id.enc_public_key();
    let digest = pith_api::binding::message_digest(
        pith_api::binding::KEY_RELEASE_TAG,
        &[id.address().as_slice(), &program.0, &enc],
        timestamp,
    );
    let body = KeyReleaseRequest {
        worker: id.address(),
        program_id: B256::from(program.0),
        enc_public_key: enc,
        evidence: node.evidence().bytes.clone(),
        model_hash: node.model_hash(),
        timestamp,
        signature: id.sign_digest(&digest)?.to_vec(),
    };
    let mut last = WorkerError::Keys("no KMS configured (--kms)".into());
    for base in &node.config().kms_urls {
        let url = format!("{}{KEY_RELEASE}", base.trim_end_matches('/'));
        let resp = match node
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, pith_api::media::JSON)
            .body(serde_json::to_vec(&body).unwrap_or_default())
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                last = WorkerError::Kms(format!("{url}: {e}"));
                continue;
            }
        };
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| WorkerError::Kms(e.to_string()))?;
        if !status.is_success() {
            match serde_json::from_slice::<pith_api::ErrorBody>(&bytes) {
                // The KMS applies the chain's policy; another KMS would refuse the same way,
                // except when this one is not ready.
                Ok(b) if b.error.kind != pith_api::ErrorKind::Unavailable => {
                    let kind = if b.error.kind == pith_api::ErrorKind::NotFound {
                        pith_api::ErrorKind::UnknownProgram
                    } else {
                        pith_api::ErrorKind::Unavailable
                    };
                    return Err(crate::error::refuse(
                        kind,
                        format!("KMS refused key release: {}", b.error.message),
                    ));
                }
                _ => {
                    last = WorkerError::Kms(format!("{url}: HTTP {status}"));
                    continue;
                }
            }
        }
        let answer: KeyReleaseResponse = serde_json::from_slice(&bytes)
            .map_err(|e| WorkerError::Kms(format!("key release answer: {e}")))?;
        if answer.program_id.0 != program.0 {
            return Err(WorkerError::Kms(
                "KMS released keys of another program".into(),
            ));
        }
        let keys = open_bundle(node, program, &answer.sealed)?;
        return ProgramKeySet::new(program, keys);
    }
    Err(last)
}

/// Open the HPKE-sealed key bundle (`pith_crypto::transport`, purpose program keys,
/// context `program_id ‖ worker`) with the worker's transport key.
fn open_bundle(
    node: &crate::node::Node,
    program: ProgramId,
    sealed: &[u8],
) -> Result<Vec<ProgramKeys>, WorkerError> {
    open_sealed_bundle(node.identity(), program, sealed)
}

/// Open a sealed program key bundle released to `identity` (see [`release`]).
pub fn open_sealed_bundle(
    identity: &crate::identity::Identity,
    program: ProgramId,
    sealed: &[u8],
) -> Result<Vec<ProgramKeys>, WorkerError> {
    let context = transport::program_context(&program.0, &identity.address());
    let plain = transport::open(
        &identity.enc_secret(),
        Purpose::ProgramKeys,
        &context,
        sealed,
    )
    .map_err(|e| WorkerError::Kms(format!("released key bundle: {e}")))?;
    let bundle = ProgramKeyBundle::decode(&plain)
        .map_err(|e| WorkerError::Kms(format!("released key bundle: {e}")))?;
    if bundle.program() != program {
        return Err(WorkerError::Kms(
            "released key bundle is for another program".into(),
        ));
    }
    Ok(bundle.into_keys())
}
