//! Program keys held by this worker: every epoch the KMS released, the OHTTP server built
//! from them, and the user-key root. Kept in memory, and sealed to the state directory by
//! [`crate::identity`] so the worker keeps serving while the KMS is down and after its own
//! restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use pith_crypto::envelope::ProgramServer;
use pith_crypto::keytree::{ProgramId, ProgramKeys, StorageKey};
use pith_crypto::{Address, B256};

use crate::error::WorkerError;

/// Every key of one program this worker holds.
pub struct ProgramKeySet {
    program: ProgramId,
    epochs: BTreeMap<u32, ProgramKeys>,
    server: ProgramServer,
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
                return Err(WorkerError::Keys("released keys are for another program".into()));
            }
            epochs.insert(k.epoch(), k);
        }
        let mut it = epochs.values();
        let first = it.next().ok_or_else(|| WorkerError::Keys("no program keys released".into()))?;
        let mut server = ProgramServer::new(first).map_err(|e| WorkerError::Keys(e.to_string()))?;
        for k in it {
            server.add_epoch(k).map_err(|e| WorkerError::Keys(e.to_string()))?;
        }
        Ok(Self { program, epochs, server })
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
        self.epochs.values().next_back().expect("a key set holds at least one epoch")
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
        self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(program).cloned()
    }

    /// Hold `set` (replacing older keys of the same program).
    pub fn insert(&self, set: ProgramKeySet) -> Arc<ProgramKeySet> {
        let set = Arc::new(set);
        self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(set.program(), set.clone());
        set
    }

    /// Programs whose keys are held.
    pub fn programs(&self) -> Vec<B256> {
        let mut v: Vec<B256> =
            self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner).keys().map(|p| B256::from(p.0)).collect();
        v.sort();
        v
    }
}
