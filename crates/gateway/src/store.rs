//! The gateway's embedded database (redb, one file `STATE_DIR/gateway.redb`):
//!
//! | table | key | value |
//! |---|---|---|
//! | `code` | sha256 of the code (32 bytes) | code bytes |
//! | `receipts` | request hash (32 bytes) | receipt JSON (`SignedReceipt`) |
//! | `receipt_order` | sequence number (u64, increasing) | request hash |
//! | `receipt_by_program` | program id ‖ be64(sequence) | request hash |
//! | `secrets` | program id (32 bytes) | the latest encrypted secrets upload |
//! | `workers` | worker address (20 bytes) | be64(block of its latest registration event) |
//!
//! Everything the gateway stores is either content-addressed (code), signed by someone else
//! (receipts, checked before storing) or opaque ciphertext (secrets): a reader never has to
//! trust the gateway's database, only its availability.

use std::path::Path;
use std::sync::Arc;

use pith_crypto::receipt::SignedReceipt;
use pith_crypto::{Address, B256};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const CODE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("code");
const RECEIPTS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("receipts");
const RECEIPT_ORDER: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("receipt_order");
const RECEIPT_BY_PROGRAM: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("receipt_by_program");
const SECRETS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("secrets");
/// Program id → JSON of its newest `SignedTriggers`.
const TRIGGERS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("triggers");
const WORKERS: TableDefinition<'_, &[u8], u64> = TableDefinition::new("workers");

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (I/O, corruption, lock held by another process).
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    /// A stored value does not decode (a bug or a corrupted file).
    #[error("stored value: {0}")]
    Corrupt(String),
}

fn db_err<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Db(e.into())
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The gateway's database. Cheap to clone; every method is blocking (call it from
/// `tokio::task::spawn_blocking` in async code).
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Open (or create) the database file and its tables.
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::create(path).map_err(db_err)?;
        let w = db.begin_write().map_err(db_err)?;
        {
            w.open_table(CODE).map_err(db_err)?;
            w.open_table(RECEIPTS).map_err(db_err)?;
            w.open_table(RECEIPT_ORDER).map_err(db_err)?;
            w.open_table(RECEIPT_BY_PROGRAM).map_err(db_err)?;
            w.open_table(SECRETS).map_err(db_err)?;
            w.open_table(TRIGGERS).map_err(db_err)?;
            w.open_table(WORKERS).map_err(db_err)?;
        }
        w.commit().map_err(db_err)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Store code under its sha256 and return the hash (idempotent).
    pub fn put_code(&self, code: &[u8]) -> Result<B256> {
        let hash = pith_crypto::sha256(code);
        let w = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = w.open_table(CODE).map_err(db_err)?;
            if t.get(hash.as_slice()).map_err(db_err)?.is_none() {
                t.insert(hash.as_slice(), code).map_err(db_err)?;
            }
        }
        w.commit().map_err(db_err)?;
        Ok(B256::from(hash))
    }

    /// The code stored under `hash`, checked again against the hash on the way out (a
    /// corrupted file is an error, never wrong code).
    pub fn code(&self, hash: &B256) -> Result<Option<Vec<u8>>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(CODE).map_err(db_err)?;
        let Some(v) = t.get(hash.as_slice()).map_err(db_err)? else {
            return Ok(None);
        };
        let bytes = v.value().to_vec();
        if pith_crypto::sha256(&bytes) != hash.0 {
            return Err(StoreError::Corrupt(format!(
                "code {hash} does not hash to its key"
            )));
        }
        Ok(Some(bytes))
    }

    /// Store checked receipts (one transaction for the batch). A receipt already stored
    /// under the same request hash is left as it is.
    pub fn put_receipts(&self, receipts: &[SignedReceipt]) -> Result<()> {
        let w = self.db.begin_write().map_err(db_err)?;
        {
            let mut by_hash = w.open_table(RECEIPTS).map_err(db_err)?;
            let mut order = w.open_table(RECEIPT_ORDER).map_err(db_err)?;
            let mut by_program = w.open_table(RECEIPT_BY_PROGRAM).map_err(db_err)?;
            let mut next = order
                .last()
                .map_err(db_err)?
                .map(|(k, _)| k.value().saturating_add(1))
                .unwrap_or(0);
            for r in receipts {
                let key = r.request_hash.as_slice();
                if by_hash.get(key).map_err(db_err)?.is_some() {
                    continue;
                }
                let json = serde_json::to_vec(r).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                by_hash.insert(key, json.as_slice()).map_err(db_err)?;
                order.insert(next, key).map_err(db_err)?;
                by_program
                    .insert(program_key(&r.program_id, next).as_slice(), key)
                    .map_err(db_err)?;
                next = next.saturating_add(1);
            }
        }
        w.commit().map_err(db_err)?;
        Ok(())
    }

    /// The receipt of the request whose hash is `request_hash`.
    pub fn receipt(&self, request_hash: &B256) -> Result<Option<SignedReceipt>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(RECEIPTS).map_err(db_err)?;
        let Some(v) = t.get(request_hash.as_slice()).map_err(db_err)? else {
            return Ok(None);
        };
        serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("receipt {request_hash}: {e}")))
    }

    /// Up to `limit` receipts, newest first, optionally of one program.
    pub fn receipts(&self, program: Option<&B256>, limit: usize) -> Result<Vec<SignedReceipt>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let by_hash = r.open_table(RECEIPTS).map_err(db_err)?;
        let mut hashes: Vec<Vec<u8>> = Vec::new();
        match program {
            None => {
                let order = r.open_table(RECEIPT_ORDER).map_err(db_err)?;
                for item in order.iter().map_err(db_err)?.rev().take(limit) {
                    let (_, v) = item.map_err(db_err)?;
                    hashes.push(v.value().to_vec());
                }
            }
            Some(p) => {
                let t = r.open_table(RECEIPT_BY_PROGRAM).map_err(db_err)?;
                let lo = program_key(p, 0);
                let hi = program_key(p, u64::MAX);
                for item in t
                    .range(lo.as_slice()..=hi.as_slice())
                    .map_err(db_err)?
                    .rev()
                    .take(limit)
                {
                    let (_, v) = item.map_err(db_err)?;
                    hashes.push(v.value().to_vec());
                }
            }
        }
        let mut out = Vec::with_capacity(hashes.len());
        for h in hashes {
            if let Some(v) = by_hash.get(h.as_slice()).map_err(db_err)? {
                out.push(
                    serde_json::from_slice(v.value())
                        .map_err(|e| StoreError::Corrupt(format!("receipt: {e}")))?,
                );
            }
        }
        Ok(out)
    }

    /// Number of stored receipts of `program`.
    pub fn receipt_count_of(&self, program: &B256) -> Result<u64> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(RECEIPT_BY_PROGRAM).map_err(db_err)?;
        let lo = program_key(program, 0);
        let hi = program_key(program, u64::MAX);
        let mut n = 0u64;
        for item in t.range(lo.as_slice()..=hi.as_slice()).map_err(db_err)? {
            item.map_err(db_err)?;
            n = n.saturating_add(1);
        }
        Ok(n)
    }

    /// Number of stored receipts.
    pub fn receipt_count(&self) -> Result<u64> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(RECEIPTS).map_err(db_err)?;
        t.len().map_err(db_err)
    }

    /// Replace a program's encrypted secrets upload.
    pub fn put_secrets(&self, program: &B256, blob: &[u8]) -> Result<()> {
        let w = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = w.open_table(SECRETS).map_err(db_err)?;
            t.insert(program.as_slice(), blob).map_err(db_err)?;
        }
        w.commit().map_err(db_err)
    }

    /// A program's latest encrypted secrets upload.
    pub fn secrets(&self, program: &B256) -> Result<Option<Vec<u8>>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(SECRETS).map_err(db_err)?;
        Ok(t.get(program.as_slice())
            .map_err(db_err)?
            .map(|v| v.value().to_vec()))
    }

    /// Store `t` unless the stored triggers of its program have a version ≥ its own; returns
    /// whether it was stored. (Signature and owner are the caller's checks.)
    pub fn put_triggers(&self, t: &pith_api::agent::SignedTriggers) -> Result<bool> {
        let bytes = serde_json::to_vec(t).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let w = self.db.begin_write().map_err(db_err)?;
        let stored = {
            let mut table = w.open_table(TRIGGERS).map_err(db_err)?;
            let newer = match table.get(t.program_id.as_slice()).map_err(db_err)? {
                Some(v) => {
                    let old: pith_api::agent::SignedTriggers = serde_json::from_slice(v.value())
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    t.version > old.version
                }
                None => true,
            };
            if newer {
                table
                    .insert(t.program_id.as_slice(), bytes.as_slice())
                    .map_err(db_err)?;
            }
            newer
        };
        w.commit().map_err(db_err)?;
        Ok(stored)
    }

    /// A program's newest signed triggers.
    pub fn triggers(&self, program: &B256) -> Result<Option<pith_api::agent::SignedTriggers>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(TRIGGERS).map_err(db_err)?;
        t.get(program.as_slice())
            .map_err(db_err)?
            .map(|v| {
                serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .transpose()
    }

    /// Every program's newest signed triggers, by program id.
    pub fn all_triggers(&self) -> Result<Vec<pith_api::agent::SignedTriggers>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(TRIGGERS).map_err(db_err)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db_err)? {
            let (_, v) = row.map_err(db_err)?;
            out.push(
                serde_json::from_slice(v.value())
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// Remember a worker seen in a registration event, with the event's block.
    pub fn put_worker(&self, worker: &Address, block: u64) -> Result<()> {
        let w = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = w.open_table(WORKERS).map_err(db_err)?;
            t.insert(worker.as_slice(), block).map_err(db_err)?;
        }
        w.commit().map_err(db_err)
    }

    /// Every worker seen in a registration event, with the block of its latest one.
    pub fn workers(&self) -> Result<Vec<(Address, u64)>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(WORKERS).map_err(db_err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            let addr = Address::try_from(k.value())
                .map_err(|_| StoreError::Corrupt("worker key is not 20 bytes".into()))?;
            out.push((addr, v.value()));
        }
        Ok(out)
    }
}

fn program_key(program: &B256, seq: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    let (a, b) = k.split_at_mut(32);
    a.copy_from_slice(program.as_slice());
    b.copy_from_slice(&seq.to_be_bytes());
    k
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn receipt(program: u8, request: u8) -> SignedReceipt {
        SignedReceipt {
            chain_id: 31337,
            verifying_contract: Address::repeat_byte(1),
            program_id: B256::repeat_byte(program),
            code_hash: B256::repeat_byte(2),
            request_hash: B256::repeat_byte(request),
            response_hash: B256::repeat_byte(4),
            model_hash: B256::ZERO,
            worker: Address::repeat_byte(5),
            timestamp: 1,
            cpu_micros: 2,
            wall_micros: 3,
            memory_bytes: 4,
            egress_bytes: 5,
            signature: vec![0; 65],
        }
    }

    #[test]
    fn code_is_content_addressed_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.redb");
        let s = Store::open(&path).unwrap();
        let h = s.put_code(b"export default {}").unwrap();
        assert_eq!(h.0, pith_crypto::sha256(b"export default {}"));
        assert_eq!(s.put_code(b"export default {}").unwrap(), h);
        assert_eq!(s.code(&B256::repeat_byte(9)).unwrap(), None);
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.code(&h).unwrap().unwrap(), b"export default {}");
    }

    #[test]
    fn receipts_newest_first_per_program_and_deduplicated() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("g.redb")).unwrap();
        s.put_receipts(&[receipt(1, 10), receipt(2, 11)]).unwrap();
        s.put_receipts(&[receipt(1, 12), receipt(1, 10)]).unwrap();
        assert_eq!(s.receipt_count().unwrap(), 3);
        let all: Vec<_> = s
            .receipts(None, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.request_hash)
            .collect();
        assert_eq!(
            all,
            [
                B256::repeat_byte(12),
                B256::repeat_byte(11),
                B256::repeat_byte(10)
            ]
        );
        let p1: Vec<_> = s
            .receipts(Some(&B256::repeat_byte(1)), 10)
            .unwrap()
            .into_iter()
            .map(|r| r.request_hash)
            .collect();
        assert_eq!(p1, [B256::repeat_byte(12), B256::repeat_byte(10)]);
        assert_eq!(s.receipts(Some(&B256::repeat_byte(1)), 1).unwrap().len(), 1);
        assert_eq!(
            s.receipts(Some(&B256::repeat_byte(3)), 10).unwrap().len(),
            0
        );
        assert_eq!(s.receipt_count_of(&B256::repeat_byte(1)).unwrap(), 2);
        assert_eq!(s.receipt_count_of(&B256::repeat_byte(2)).unwrap(), 1);
        assert_eq!(s.receipt_count_of(&B256::repeat_byte(3)).unwrap(), 0);
        assert_eq!(
            s.receipt(&B256::repeat_byte(11)).unwrap().unwrap(),
            receipt(2, 11)
        );
        assert_eq!(s.receipt(&B256::repeat_byte(99)).unwrap(), None);
    }

    #[test]
    fn secrets_replace_and_workers_list() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("g.redb")).unwrap();
        let p = B256::repeat_byte(1);
        assert_eq!(s.secrets(&p).unwrap(), None);
        s.put_secrets(&p, b"one").unwrap();
        s.put_secrets(&p, b"two").unwrap();
        assert_eq!(s.secrets(&p).unwrap().unwrap(), b"two");
        s.put_worker(&Address::repeat_byte(7), 5).unwrap();
        s.put_worker(&Address::repeat_byte(7), 9).unwrap();
        assert_eq!(s.workers().unwrap(), [(Address::repeat_byte(7), 9)]);
    }
}
