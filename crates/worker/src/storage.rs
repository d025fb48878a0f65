//! Program storage rows: the untrusted store under `env.kv`.
//!
//! The store only ever sees opaque rows — `(program id, key, version, sealed bytes)` — and
//! is trusted for nothing: the sealed KV ([`crate::kv`]) encrypts and authenticates every
//! value inside the TEE and checks versions against its own high-water marks. The store's
//! one duty is the version compare-and-set ([`Store::put`]) that lets several workers write
//! the same key without losing updates silently.
//!
//! [`SqliteStore`] is the embedded default: one file shared by every worker process of a
//! machine (WAL journal, busy timeout, `BEGIN IMMEDIATE` for writes). A networked backend
//! (PostgreSQL next) implements the same trait: `put` is a conditional
//! `UPDATE ... WHERE version = $expected` / `INSERT ... ON CONFLICT DO NOTHING`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pith_sandbox::host::BoxFuture;
use rusqlite::{Connection, OptionalExtension, params};

/// One stored row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Version (1 for the first write of a key, +1 per write; a delete is a write of a
    /// tombstone).
    pub version: u64,
    /// Sealed bytes (see [`crate::kv`]).
    pub sealed: Vec<u8>,
}

/// Why the store failed (its availability, never the integrity of a value: that is the
/// sealed KV's job).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (I/O, locked past the busy timeout, corrupt file).
    #[error("storage backend: {0}")]
    Backend(String),
    /// The stored version does not fit the backend's integer type.
    #[error("version {0} out of range")]
    VersionRange(u64),
}

/// Untrusted storage of sealed rows, keyed by `(program, key)`.
pub trait Store: Send + Sync {
    /// The row of `key`, if any.
    fn get<'a>(
        &'a self,
        program: &'a [u8; 32],
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Row>, StoreError>>;
    /// Write `row` only if the stored version is `expected` (0 = no row yet). Returns
    /// whether the write happened (false: someone else wrote first; re-read and retry).
    fn put<'a>(
        &'a self,
        program: &'a [u8; 32],
        key: &'a str,
        expected: u64,
        row: Row,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Up to `limit` rows whose key starts with `prefix` and sorts after `after`
    /// (exclusive; empty = from the start), in key order.
    fn list<'a>(
        &'a self,
        program: &'a [u8; 32],
        prefix: &'a str,
        after: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<(String, Row)>, StoreError>>;
}

/// How long a writer waits for another process's write lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite store: one database file, shareable by several worker processes.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::VersionRange(v))
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` in WAL mode.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // Two processes setting up a new file at once: switching to WAL and creating the
        // table can fail with SQLITE_BUSY without the busy handler being consulted (SQLite
        // does not wait where waiting could deadlock), so the setup is retried as a whole.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        let (conn, mode) = loop {
            match Self::setup(path) {
                Err(e)
                    if matches!(
                        e.sqlite_error_code(),
                        Some(
                            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                        )
                    ) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                r => break r.map_err(backend)?,
            }
        };
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "could not enable WAL (journal mode {mode})"
            )));
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_owned(),
        })
    }

    /// Open `path`, switch it to WAL and create the table; the connection and the journal
    /// mode SQLite reports.
    fn setup(path: &Path) -> rusqlite::Result<(Connection, String)> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL: readers never block the writer and the file is safely shared by processes.
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Ok((conn, mode)); // refused by the caller, before creating anything
        }
        conn.execute_batch(
            "PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS kv (
                 program BLOB NOT NULL,
                 key     TEXT NOT NULL,
                 version INTEGER NOT NULL,
                 sealed  BLOB NOT NULL,
                 PRIMARY KEY (program, key)
             ) WITHOUT ROWID;",
        )?;
        Ok((conn, mode))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut c)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("storage task: {e}")))?
    }
}

fn row_from(version: i64, sealed: Vec<u8>) -> Result<Row, StoreError> {
    let version = u64::try_from(version)
        .map_err(|_| StoreError::Backend(format!("negative version {version}")))?;
    Ok(Row { version, sealed })
}

impl Store for SqliteStore {
    fn get<'a>(
        &'a self,
        program: &'a [u8; 32],
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Row>, StoreError>> {
        let (program, key) = (program.to_vec(), key.to_owned());
        Box::pin(self.with(move |c| {
            let r = c
                .query_row(
                    "SELECT version, sealed FROM kv WHERE program = ?1 AND key = ?2",
                    params![program, key],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
                )
                .optional()
                .map_err(backend)?;
            r.map(|(v, s)| row_from(v, s)).transpose()
        }))
    }

    fn put<'a>(
        &'a self,
        program: &'a [u8; 32],
        key: &'a str,
        expected: u64,
        row: Row,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (program, key) = (program.to_vec(), key.to_owned());
        Box::pin(self.with(move |c| {
            let version = to_i64(row.version)?;
            let changed = if expected == 0 {
                c.execute(
                    "INSERT INTO kv (program, key, version, sealed) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (program, key) DO NOTHING",
                    params![program, key, version, row.sealed],
                )
            } else {
                c.execute(
                    "UPDATE kv SET version = ?3, sealed = ?4 WHERE program = ?1 AND key = ?2 AND version = ?5",
                    params![program, key, version, row.sealed, to_i64(expected)?],
                )
            }
            .map_err(backend)?;
            Ok(changed == 1)
        }))
    }

    fn list<'a>(
        &'a self,
        program: &'a [u8; 32],
        prefix: &'a str,
        after: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<(String, Row)>, StoreError>> {
        let (program, prefix, after) = (program.to_vec(), prefix.to_owned(), after.to_owned());
        let limit = i64::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        Box::pin(self.with(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT key, version, sealed FROM kv
                     WHERE program = ?1 AND key >= ?2 AND key > ?3 ORDER BY key LIMIT ?4",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![program, prefix, after, limit], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                })
                .map_err(backend)?;
            let mut out = Vec::new();
            for r in rows {
                let (k, v, s) = r.map_err(backend)?;
                if !k.starts_with(&prefix) {
                    break;
                }
                out.push((k, row_from(v, s)?));
            }
            Ok(out)
        }))
    }
}

/// Test and tooling access to the raw rows (what an attacker holding the file can do).
impl SqliteStore {
    /// Overwrite a row without any check (tests: tampering and rollback).
    pub fn danger_overwrite(
        &self,
        program: &[u8; 32],
        key: &str,
        row: &Row,
    ) -> Result<(), StoreError> {
        let c = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.execute(
            "INSERT INTO kv (program, key, version, sealed) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (program, key) DO UPDATE SET version = excluded.version, sealed = excluded.sealed",
            params![program.to_vec(), key, to_i64(row.version)?, row.sealed],
        )
        .map_err(backend)?;
        Ok(())
    }

    /// Remove a row without any check (tests: an attacker deleting a value).
    pub fn danger_remove(&self, program: &[u8; 32], key: &str) -> Result<(), StoreError> {
        let c = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.execute(
            "DELETE FROM kv WHERE program = ?1 AND key = ?2",
            params![program.to_vec(), key],
        )
        .map_err(backend)?;
        Ok(())
    }
}
