//! A small on-disk HTTP response cache that honours an expiry the caller derives from the
//! content (Intel: the TCBInfo / QE identity / CRL `nextUpdate`; AMD: certificate notAfter).
//!
//! One file per key under the cache directory, named by the SHA-256 of the key (usually
//! the URL), holding a JSON record `{ "valid_until": RFC 3339, "headers": {..}, "body":
//! base64 }`. [`DiskCache::get`] returns an entry only while `now <= valid_until`; after
//! that the caller refetches and [`DiskCache::put`]s the new response. Files are written
//! atomically (temporary file, then rename); an unreadable or corrupt file is a miss.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A cached response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Response body.
    pub body: Vec<u8>,
    /// Response headers the caller chose to keep (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// The entry is served until this instant (inclusive).
    pub valid_until: OffsetDateTime,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    valid_until: String,
    headers: BTreeMap<String, String>,
    body: String,
}

/// A directory of cached responses.
#[derive(Debug, Clone)]
pub struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(hex::encode(Sha256::digest(key.as_bytes())))
    }

    /// The entry for `key` if present and still valid at `now`.
    pub fn get(&self, key: &str, now: OffsetDateTime) -> Option<Entry> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let r: Record = serde_json::from_slice(&bytes).ok()?;
        let valid_until = OffsetDateTime::parse(&r.valid_until, &Rfc3339).ok()?;
        if now > valid_until {
            return None;
        }
        let body = base64::engine::general_purpose::STANDARD
            .decode(r.body)
            .ok()?;
        Some(Entry {
            body,
            headers: r.headers,
            valid_until,
        })
    }

    /// Store `entry` under `key`, replacing any previous one.
    pub fn put(&self, key: &str, entry: &Entry) -> std::io::Result<()> {
        let record = Record {
            valid_until: entry
                .valid_until
                .format(&Rfc3339)
                .map_err(std::io::Error::other)?,
            headers: entry.headers.clone(),
            body: base64::engine::general_purpose::STANDARD.encode(&entry.body),
        };
        let bytes = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(key);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn serves_until_expiry_then_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path().join("c"));
        let t = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
        assert!(cache.get("k", t(0)).is_none());
        let e = Entry {
            body: vec![0, 1, 2, 255],
            headers: [("a".into(), "b".into())].into(),
            valid_until: t(100),
        };
        cache.put("k", &e).unwrap();
        assert_eq!(cache.get("k", t(100)), Some(e.clone()));
        assert!(cache.get("k", t(101)).is_none());
        assert!(cache.get("other", t(0)).is_none());
        // A corrupt file is a miss, not an error.
        let path = cache.path("k");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(cache.get("k", t(0)).is_none());
    }
}
