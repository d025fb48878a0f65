//! `env.kv` for programs: values sealed inside the TEE, rows kept in an untrusted
//! [`Store`] shared by every worker that runs the program.
//!
//! ```text
//! row.sealed = be32(epoch) ‖ pith_crypto::seal(storage_key(epoch), program, key, row.version, payload)
//! payload    = 0x01 ‖ value      (a value)
//!            | 0x00              (a tombstone: the key was deleted)
//! ```
//! The seal's associated data binds the program, the key and the version, so the store
//! cannot move a value to another key or program, nor present it under another version.
//! Writes are compare-and-set on the version (`expected = version read`, new = +1), so two
//! workers writing the same key never silently lose an update: the loser re-reads and
//! retries. A delete writes a tombstone instead of removing the row, so a deleted key has a
//! version like any other.
//!
//! Rollback: the worker remembers, per `(program, key)`, the highest version it has read or
//! written (its high-water mark). A row whose version is below the mark, or a missing row
//! for a key with a mark, is refused with a `storage_integrity` error; so is a row that does
//! not authenticate. The worker seals its marks to its state directory every heartbeat and
//! when it drains, and restores them at start. **Window that remains**
//! (docs/adr/0075-worker-storage.md): (1) marks raised after the last save before a crash
//! (`kill -9`) are lost, and (2) for a key this worker has not touched since another worker
//! wrote it, the store can serve any older validly sealed version of the key without
//! detection. Closing it needs a trusted
//! monotonic counter per program (a chain-anchored or KMS-held version root), planned with
//! the networked backend.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pith_crypto::keytree::ProgramId;
use pith_sandbox::host::{
    BoxFuture, HostError, KvPage, KvStore, MAX_KV_KEY, MAX_KV_VALUE, ProgramRef,
};

use crate::keys::KeyRing;
use crate::storage::{Row, Store};

/// Prefix of every integrity error the program sees (the API kind's stable string).
pub const INTEGRITY: &str = "storage_integrity";
/// Compare-and-set attempts before a write gives up under contention.
const CAS_ATTEMPTS: usize = 16;

fn integrity(message: String) -> HostError {
    HostError::Failed(format!("{INTEGRITY}: {message}"))
}

fn backend(e: crate::storage::StoreError) -> HostError {
    HostError::Failed(format!("storage unavailable: {e}"))
}

/// The sealed KV the sandbox's `env.kv` runs on.
pub struct SealedKv {
    store: Arc<dyn Store>,
    keys: Arc<KeyRing>,
    marks: Mutex<HashMap<(ProgramId, String), u64>>,
    dirty: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for SealedKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedKv(..)")
    }
}

impl SealedKv {
    /// A sealed KV over `store`, with program keys from `keys`.
    pub fn new(store: Arc<dyn Store>, keys: Arc<KeyRing>) -> Self {
        Self {
            store,
            keys,
            marks: Mutex::new(HashMap::new()),
            dirty: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The high-water marks as bytes, when they changed since the last call (the worker
    /// seals them to its state directory, so rollback across its own restart is detected):
    /// `be32(n) ‖ n × (program_id[32] ‖ be16(len key) ‖ key ‖ be64(version))`.
    pub fn export_marks(&self) -> Option<Vec<u8>> {
        if !self.dirty.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let m = self
            .marks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::with_capacity(4 + m.len() * 64);
        out.extend_from_slice(&u32::try_from(m.len()).unwrap_or(u32::MAX).to_be_bytes());
        for ((p, k), v) in m.iter() {
            out.extend_from_slice(&p.0);
            out.extend_from_slice(&u16::try_from(k.len()).unwrap_or(u16::MAX).to_be_bytes());
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&v.to_be_bytes());
        }
        Some(out)
    }

    /// Restore marks exported by [`SealedKv::export_marks`] (raising, never lowering).
    pub fn import_marks(&self, bytes: &[u8]) -> Result<usize, crate::WorkerError> {
        let bad = || crate::WorkerError::State("kv marks: malformed".into());
        let (n, mut rest) = bytes.split_first_chunk::<4>().ok_or_else(bad)?;
        let n = u32::from_be_bytes(*n);
        let mut entries = Vec::new();
        for _ in 0..n {
            let (p, r) = rest.split_first_chunk::<32>().ok_or_else(bad)?;
            let (l, r) = r.split_first_chunk::<2>().ok_or_else(bad)?;
            let (k, r) = r
                .split_at_checked(usize::from(u16::from_be_bytes(*l)))
                .ok_or_else(bad)?;
            let (v, r) = r.split_first_chunk::<8>().ok_or_else(bad)?;
            let key = std::str::from_utf8(k).map_err(|_| bad())?;
            entries.push((ProgramId(*p), key.to_owned(), u64::from_be_bytes(*v)));
            rest = r;
        }
        if !rest.is_empty() {
            return Err(bad());
        }
        let count = entries.len();
        for (p, k, v) in entries {
            self.raise(p, &k, v);
        }
        Ok(count)
    }

    fn mark(&self, program: ProgramId, key: &str) -> u64 {
        self.marks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(program, key.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    fn raise(&self, program: ProgramId, key: &str, version: u64) {
        let mut m = self
            .marks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = m.entry((program, key.to_owned())).or_insert(0);
        if version > *e {
            *e = version;
            self.dirty.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn program_id(program: &ProgramRef) -> Result<ProgramId, HostError> {
        ProgramId::from_hex(&program.id).map_err(|e| HostError::Invalid(format!("program id: {e}")))
    }

    fn keyset(&self, program: &ProgramId) -> Result<Arc<crate::keys::ProgramKeySet>, HostError> {
        self.keys.get(program).ok_or(HostError::Unavailable(
            "env.kv (program keys not held by this worker)",
        ))
    }

    /// Seal `payload` for `key` at `version` with the newest epoch's storage key.
    fn seal_row(
        &self,
        program: &ProgramId,
        key: &str,
        version: u64,
        payload: &[u8],
    ) -> Result<Row, HostError> {
        let set = self.keyset(program)?;
        let current = set.current();
        let sealed = pith_crypto::seal::seal(
            current.storage_key(),
            program,
            key.as_bytes(),
            version,
            payload,
            &mut rand_core::OsRng,
        )
        .map_err(|e| HostError::Failed(format!("seal: {e}")))?;
        let mut out = Vec::with_capacity(sealed.len().saturating_add(4));
        out.extend_from_slice(&current.epoch().to_be_bytes());
        out.extend_from_slice(&sealed);
        Ok(Row {
            version,
            sealed: out,
        })
    }

    /// Authenticate a row read for `key`, check it against the high-water mark and return
    /// its payload (`None` for a tombstone).
    ///
    /// `mark` must be read *before* the row was fetched: marks only grow, so a row older than
    /// a mark taken earlier is a rollback, whereas a mark taken later may include this
    /// worker's own concurrent writes.
    fn open_row(
        &self,
        program: &ProgramId,
        key: &str,
        row: &Row,
        mark: u64,
    ) -> Result<Option<Vec<u8>>, HostError> {
        if row.version < mark {
            return Err(integrity(format!(
                "key {key:?} was rolled back: the store holds version {}, this worker has seen version {mark}",
                row.version
            )));
        }
        let (epoch, sealed) = row
            .sealed
            .split_first_chunk::<4>()
            .ok_or_else(|| integrity(format!("value of key {key:?} is truncated")))?;
        let epoch = u32::from_be_bytes(*epoch);
        let set = self.keyset(program)?;
        let storage_key = set.storage_key(epoch).ok_or_else(|| {
            integrity(format!(
                "value of key {key:?} names key epoch {epoch}, which this program does not have"
            ))
        })?;
        let payload = pith_crypto::seal::open(
            storage_key,
            program,
            key.as_bytes(),
            row.version,
            sealed,
        )
        .map_err(|_| {
            integrity(format!(
                "value of key {key:?} (version {}) does not authenticate: tampered with or moved",
                row.version
            ))
        })?;
        self.raise(*program, key, row.version);
        match payload.split_first() {
            Some((1, value)) => Ok(Some(value.to_vec())),
            Some((0, [])) => Ok(None),
            _ => Err(integrity(format!(
                "value of key {key:?} has a bad payload tag"
            ))),
        }
    }

    async fn read(&self, program: &ProgramId, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        let mark = self.mark(*program, key);
        match self.store.get(&program.0, key).await.map_err(backend)? {
            Some(row) => self.open_row(program, key, &row, mark),
            None => {
                if mark > 0 {
                    return Err(integrity(format!(
                        "key {key:?} is missing from the store, this worker has seen version {mark}"
                    )));
                }
                Ok(None)
            }
        }
    }

    async fn write(&self, program: &ProgramId, key: &str, payload: &[u8]) -> Result<(), HostError> {
        for attempt in 0..CAS_ATTEMPTS {
            if attempt > 0 {
                // Back off a random 0..min(250 µs × 2^attempt, 50 ms) so writers that lost the
                // race do not all retry at the same moment and lose again (without it, 20
                // writers on one key under load starved one of them through every attempt).
                let cap = (250u64 << attempt.min(8)).min(50_000);
                let jitter = u64::from(rand_core::RngCore::next_u32(&mut rand_core::OsRng)) % cap;
                tokio::time::sleep(std::time::Duration::from_micros(jitter)).await;
            }
            let mark = self.mark(*program, key);
            let current = self.store.get(&program.0, key).await.map_err(backend)?;
            let expected = current.as_ref().map_or(0, |r| r.version);
            if expected < mark {
                return Err(integrity(format!(
                    "key {key:?} was rolled back: the store holds version {expected}, this worker has seen version {mark}"
                )));
            }
            let version = expected
                .checked_add(1)
                .ok_or_else(|| integrity(format!("version of key {key:?} overflows")))?;
            let row = self.seal_row(program, key, version, payload)?;
            if self
                .store
                .put(&program.0, key, expected, row)
                .await
                .map_err(backend)?
            {
                self.raise(*program, key, version);
                return Ok(());
            }
            // Another worker wrote first: re-read and retry on its version.
        }
        Err(HostError::Failed(format!(
            "storage busy: key {key:?} kept changing under {CAS_ATTEMPTS} write attempts"
        )))
    }
}

fn check_key(key: &str) -> Result<(), HostError> {
    if key.is_empty() || key.len() > MAX_KV_KEY {
        return Err(HostError::Invalid(format!(
            "kv key must be 1..={MAX_KV_KEY} bytes"
        )));
    }
    Ok(())
}

impl KvStore for SealedKv {
    fn get<'a>(
        &'a self,
        program: &'a ProgramRef,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, HostError>> {
        Box::pin(async move {
            check_key(key)?;
            let p = Self::program_id(program)?;
            self.read(&p, key).await
        })
    }

    fn put<'a>(
        &'a self,
        program: &'a ProgramRef,
        key: &'a str,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), HostError>> {
        Box::pin(async move {
            check_key(key)?;
            if value.len() > MAX_KV_VALUE {
                return Err(HostError::Invalid(format!(
                    "kv value must be at most {MAX_KV_VALUE} bytes"
                )));
            }
            let p = Self::program_id(program)?;
            let mut payload = Vec::with_capacity(value.len().saturating_add(1));
            payload.push(1);
            payload.extend_from_slice(&value);
            self.write(&p, key, &payload).await
        })
    }

    fn delete<'a>(
        &'a self,
        program: &'a ProgramRef,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), HostError>> {
        Box::pin(async move {
            check_key(key)?;
            let p = Self::program_id(program)?;
            self.write(&p, key, &[0]).await
        })
    }

    fn list<'a>(
        &'a self,
        program: &'a ProgramRef,
        prefix: &'a str,
        limit: usize,
        cursor: &'a str,
    ) -> BoxFuture<'a, Result<KvPage, HostError>> {
        Box::pin(async move {
            let p = Self::program_id(program)?;
            let limit = limit.clamp(1, 1000);
            let mut keys = Vec::new();
            let mut after = cursor.to_owned();
            loop {
                let marks: HashMap<(ProgramId, String), u64> = self
                    .marks
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                let rows = self
                    .store
                    .list(&p.0, prefix, &after, limit)
                    .await
                    .map_err(backend)?;
                let exhausted = rows.len() < limit;
                for (k, row) in rows {
                    after.clone_from(&k);
                    // Every listed row is authenticated; tombstones are skipped.
                    let mark = marks.get(&(p, k.clone())).copied().unwrap_or(0);
                    if self.open_row(&p, &k, &row, mark)?.is_some() {
                        if keys.len() == limit {
                            return Ok(KvPage {
                                cursor: keys.last().cloned().unwrap_or_default(),
                                keys,
                            });
                        }
                        keys.push(k);
                    }
                }
                if exhausted {
                    return Ok(KvPage {
                        keys,
                        cursor: String::new(),
                    });
                }
            }
        })
    }
}
