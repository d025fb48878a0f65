//! The precompiled component cache.
//!
//! Key: SHA-256 of the component bytes (the program's code hash) and SHA-256 of the
//! engine's `precompile_compatibility_hash` (wasmtime version, target, compiler
//! settings). On disk, `DIR/<code hash>-<config hash>.cwasm` holds the output of
//! `Engine::precompile_component` and `DIR/<same>.sha256` the hex SHA-256 of that file;
//! an entry is only deserialized when the file matches its recorded hash, otherwise it
//! is discarded and the component compiled again. Files are written to a temporary name
//! and renamed, so a reader never sees a partial entry. The directory is created with
//! mode 0700: it must be private to the user running the sandbox (see the SAFETY note in
//! [`load_or_compile`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::limits::{ErrorKind, InvocationError};

/// Cache statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Pre-linked components found in memory.
    pub memory_hits: u64,
    /// Components loaded from the disk cache.
    pub disk_hits: u64,
    /// Components compiled.
    pub compiled: u64,
    /// Disk entries rejected by the integrity check (or not deserializable).
    pub rejected: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    compiled: AtomicU64,
    rejected: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            compiled: self.compiled.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}

/// A `Hasher` feeding SHA-256 (for a stable digest of wasmtime's compatibility hash).
#[derive(Default)]
pub(crate) struct Sha256Hasher(Sha256);

impl std::hash::Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let d = self.0.clone().finalize();
        u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl Sha256Hasher {
    pub(crate) fn finish_sha256(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// The on-disk cache directory.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    pub(crate) fn open(dir: PathBuf) -> std::io::Result<Self> {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            b.mode(0o700);
        }
        b.create(&dir)?;
        Ok(Self { dir })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self, code_hash: &[u8; 32], config_hash: &[u8; 32]) -> (PathBuf, PathBuf) {
        let stem = format!(
            "{}-{}",
            hex::encode(code_hash),
            hex::encode(&config_hash[..16])
        );
        (
            self.dir.join(format!("{stem}.cwasm")),
            self.dir.join(format!("{stem}.sha256")),
        )
    }

    /// The serialized component, if present and intact.
    fn read(&self, code_hash: &[u8; 32], config_hash: &[u8; 32]) -> Result<Option<Vec<u8>>, ()> {
        let (file, sum) = self.paths(code_hash, config_hash);
        let (Ok(bytes), Ok(expected)) = (std::fs::read(&file), std::fs::read_to_string(&sum))
        else {
            return Ok(None);
        };
        if hex::encode(crate::sha256(&bytes)) != expected.trim() {
            let _ = std::fs::remove_file(&file);
            let _ = std::fs::remove_file(&sum);
            return Err(());
        }
        Ok(Some(bytes))
    }

    fn write(
        &self,
        code_hash: &[u8; 32],
        config_hash: &[u8; 32],
        bytes: &[u8],
    ) -> std::io::Result<()> {
        let (file, sum) = self.paths(code_hash, config_hash);
        let nonce = {
            let mut n = [0u8; 8];
            crate::host::Randomness::fill(&crate::host::OsRandom, &mut n);
            hex::encode(n)
        };
        let tmp_file = self.dir.join(format!(".{nonce}.cwasm.tmp"));
        let tmp_sum = self.dir.join(format!(".{nonce}.sha256.tmp"));
        std::fs::write(&tmp_file, bytes)?;
        std::fs::write(&tmp_sum, hex::encode(crate::sha256(bytes)))?;
        // Hash first, then the artifact: a reader that sees the new artifact also sees
        // its hash (a stale hash with a new file only fails the check).
        std::fs::rename(&tmp_sum, &sum)?;
        std::fs::rename(&tmp_file, &file)
    }
}

/// The component for `bytes`, from the disk cache or compiled (and then stored).
pub(crate) fn load_or_compile(
    engine: &Engine,
    disk: Option<&DiskCache>,
    code_hash: &[u8; 32],
    config_hash: &[u8; 32],
    bytes: &[u8],
    stats: &Counters,
) -> Result<Component, InvocationError> {
    if let Some(d) = disk {
        match d.read(code_hash, config_hash) {
            Ok(Some(serialized)) => match deserialize(engine, &serialized) {
                Ok(c) => {
                    stats.disk_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(c);
                }
                Err(e) => {
                    stats.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(target: "pith::sandbox", "discarding cached component: {e}");
                }
            },
            Ok(None) => {}
            Err(()) => {
                stats.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: "pith::sandbox", "discarding a cached component that failed its integrity check");
            }
        }
    }
    if !super::is_wasm(bytes) {
        return Err(InvocationError::new(
            ErrorKind::InvalidProgram,
            "not a WebAssembly binary",
        ));
    }
    let serialized = engine.precompile_component(bytes).map_err(|e| {
        InvocationError::new(
            ErrorKind::InvalidProgram,
            format!("the component does not compile: {e:#}"),
        )
    })?;
    stats.compiled.fetch_add(1, Ordering::Relaxed);
    if let Some(d) = disk {
        if let Err(e) = d.write(code_hash, config_hash, &serialized) {
            tracing::warn!(target: "pith::sandbox", "cannot write the WASM cache in {}: {e}", d.dir().display());
        }
    }
    deserialize(engine, &serialized).map_err(|e| {
        InvocationError::new(
            ErrorKind::InvalidProgram,
            format!("cannot load the compiled component: {e:#}"),
        )
    })
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, serialized: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` runs native code from its input, so the input must
    // be the output of `Engine::precompile_component` from a trusted producer. Our inputs
    // are (a) the bytes `precompile_component` just returned in this process, or (b) a
    // disk cache entry that this code wrote: the file's SHA-256 must match the hash
    // recorded beside it (rejecting truncated, corrupted or half-written entries), the
    // key includes the engine's compatibility hash, and wasmtime itself checks the
    // artifact's header and engine settings before using it. The directory is created
    // 0700: anyone able to write it can already run code as this user.
    unsafe { Component::deserialize(engine, serialized) }
}
