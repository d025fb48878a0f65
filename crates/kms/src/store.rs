//! The KMS's embedded database (redb, one file `STATE_DIR/kms.redb`).
//!
//! | table | key | value |
//! |---|---|---|
//! | [`MASTER_KEYS`] | epoch (u32) | sealed master key: `pith_attest::sealing` blob, name `master-key/{epoch}`, plaintext = the 32 secret bytes |
//!
//! The database lives on the untrusted disk: every value is sealed under the node's
//! sealing key and bound to its epoch (a value moved to another epoch, flipped, or written by
//! another machine does not open, and the node refuses to start with a clear error).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use pith_attest::sealing::Sealer;
use pith_crypto::keytree::MasterKey;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::KmsError;

/// File name of the database in the state directory.
pub const DB_FILE: &str = "kms.redb";
/// Sealed master keys by epoch.
pub const MASTER_KEYS: TableDefinition<'static, u32, &[u8]> = TableDefinition::new("master_keys");

fn db_err<E: Into<redb::Error>>(e: E) -> KmsError {
    KmsError::State(format!("database: {}", e.into()))
}

/// Record name a master key is sealed under.
pub fn record_name(epoch: u32) -> String {
    format!("master-key/{epoch}")
}

/// The master-key store.
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
    /// Open (or create) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, KmsError> {
        let db = Database::create(path).map_err(db_err)?;
        let w = db.begin_write().map_err(db_err)?;
        w.open_table(MASTER_KEYS).map_err(db_err)?;
        w.commit().map_err(db_err)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Every master key, unsealed, by epoch. Fails on the first record that does not open.
    pub fn load(&self, sealer: &Sealer) -> Result<BTreeMap<u32, MasterKey>, KmsError> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(MASTER_KEYS).map_err(db_err)?;
        let mut out = BTreeMap::new();
        for row in t.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let epoch = k.value();
            let plain = sealer.unseal(&record_name(epoch), v.value()).map_err(|_| {
                KmsError::State(format!(
                    "sealed master key of epoch {epoch} in {DB_FILE} does not open with this node's sealing key (tampered, or another machine's)"
                ))
            })?;
            let secret: [u8; 32] = plain.as_slice().try_into().map_err(|_| {
                KmsError::State(format!("sealed master key of epoch {epoch}: bad length"))
            })?;
            out.insert(epoch, MasterKey::from_bytes(secret, epoch));
        }
        Ok(out)
    }

    /// Seal and store `key` under its epoch. An epoch already stored is never overwritten
    /// (returns `Ok(false)`).
    pub fn put(&self, sealer: &Sealer, key: &MasterKey) -> Result<bool, KmsError> {
        let sealed = sealer.seal(&record_name(key.epoch()), key.expose_secret())?;
        let w = self.db.begin_write().map_err(db_err)?;
        let inserted = {
            let mut t = w.open_table(MASTER_KEYS).map_err(db_err)?;
            if t.get(key.epoch()).map_err(db_err)?.is_some() {
                false
            } else {
                t.insert(key.epoch(), sealed.as_slice()).map_err(db_err)?;
                true
            }
        };
        w.commit().map_err(db_err)?;
        Ok(inserted)
    }
}
