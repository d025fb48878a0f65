//! Replay cache: a request nonce is remembered until the request's expiry.
//!
//! A request (identified by program and nonce) runs at most once on this worker while it is
//! fresh; after its expiry it is refused as `expired`, so the cache can forget it. **Window
//! that remains** (docs/adr/0076-worker-invocation.md): the cache is per worker and in
//! memory, so within a request's expiry (at most `MAX_REQUEST_TTL_SECS` = 300 s) a hostile
//! gateway could deliver the same request to a second worker, or to this worker again after
//! a restart, and it would run there once more. Each run yields a receipt over the same
//! request hash, so duplicates are visible to anyone holding the receipts.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

/// Largest number of live nonces held (a bound on memory; past it, new requests are
/// refused as `unavailable` until old ones expire).
pub const MAX_ENTRIES: usize = 1_000_000;

#[derive(Default)]
struct Inner {
    seen: HashSet<([u8; 32], Vec<u8>)>,
    by_expiry: BTreeMap<u64, Vec<([u8; 32], Vec<u8>)>>,
}

/// Nonces seen, until their expiry.
#[derive(Default)]
pub struct ReplayCache {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplayCache(..)")
    }
}

/// Outcome of [`ReplayCache::check_and_insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First time: recorded.
    New,
    /// Already seen within its expiry.
    Replay,
    /// The cache is full.
    Full,
}

impl ReplayCache {
    /// Record `(program, nonce)` valid until `expiry` (unix seconds), after dropping entries
    /// that expired before `now`.
    pub fn check_and_insert(&self, program: [u8; 32], nonce: &[u8], expiry: u64, now: u64) -> Seen {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let inner = &mut *g;
        while let Some(entry) = inner.by_expiry.first_entry() {
            if *entry.key() >= now {
                break;
            }
            for k in entry.remove() {
                inner.seen.remove(&k);
            }
        }
        let key = (program, nonce.to_vec());
        if inner.seen.contains(&key) {
            return Seen::Replay;
        }
        if inner.seen.len() >= MAX_ENTRIES {
            return Seen::Full;
        }
        inner.seen.insert(key.clone());
        inner.by_expiry.entry(expiry).or_default().push(key);
        Seen::New
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .seen
            .len()
    }

    /// No live entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_until_expiry_then_forgotten() {
        let c = ReplayCache::default();
        assert_eq!(c.check_and_insert([1; 32], b"n1", 100, 50), Seen::New);
        assert_eq!(c.check_and_insert([1; 32], b"n1", 100, 60), Seen::Replay);
        // same nonce for another program is another request
        assert_eq!(c.check_and_insert([2; 32], b"n1", 100, 60), Seen::New);
        assert_eq!(c.len(), 2);
        // past the expiry the entries are dropped (the request itself is refused as expired)
        assert_eq!(c.check_and_insert([3; 32], b"n2", 300, 101), Seen::New);
        assert_eq!(c.len(), 1);
    }
}
