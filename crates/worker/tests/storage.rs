//! Sealed shared storage: two store handles on one SQLite file (two workers of a machine),
//! tampering, rollback and removal are refused with `storage_integrity`.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;

use pith_crypto::keytree::{MasterKey, ProgramId};
use pith_sandbox::host::{KvStore, ProgramRef};
use pith_worker::keys::{KeyRing, ProgramKeySet};
use pith_worker::kv::SealedKv;
use pith_worker::storage::{Row, SqliteStore, Store};

const PROGRAM: ProgramId = ProgramId([0x42; 32]);

fn keyring(master: u8) -> Arc<KeyRing> {
    let ring = KeyRing::default();
    let keys = MasterKey::from_bytes([master; 32], 1)
        .program_keys(&PROGRAM)
        .unwrap();
    ring.insert(ProgramKeySet::new(PROGRAM, vec![keys]).unwrap());
    Arc::new(ring)
}

fn pref() -> ProgramRef {
    ProgramRef {
        id: PROGRAM.to_hex(),
        code_hash: [0; 32],
    }
}

struct Two {
    _dir: tempfile::TempDir,
    a: SealedKv,
    b: SealedKv,
    raw: SqliteStore,
}

fn two_workers() -> Two {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.sqlite");
    let sa = SqliteStore::open(&path).unwrap();
    let sb = SqliteStore::open(&path).unwrap();
    let raw = SqliteStore::open(&path).unwrap();
    Two {
        a: SealedKv::new(Arc::new(sa), keyring(7)),
        b: SealedKv::new(Arc::new(sb), keyring(7)),
        raw,
        _dir: dir,
    }
}

fn err_text(r: Result<impl std::fmt::Debug, pith_sandbox::host::HostError>) -> String {
    r.unwrap_err().to_string()
}

#[tokio::test]
async fn two_handles_on_one_file_see_each_others_writes() {
    let t = two_workers();
    let p = pref();
    t.a.put(&p, "greeting", b"hello".to_vec()).await.unwrap();
    assert_eq!(
        t.b.get(&p, "greeting").await.unwrap().as_deref(),
        Some(&b"hello"[..])
    );
    t.b.put(&p, "greeting", b"again".to_vec()).await.unwrap();
    assert_eq!(
        t.a.get(&p, "greeting").await.unwrap().as_deref(),
        Some(&b"again"[..])
    );
    // versions advance through both writers
    assert_eq!(
        t.raw
            .get(&PROGRAM.0, "greeting")
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    t.a.delete(&p, "greeting").await.unwrap();
    assert_eq!(t.b.get(&p, "greeting").await.unwrap(), None);
    // the delete is a tombstone, version 3
    assert_eq!(
        t.raw
            .get(&PROGRAM.0, "greeting")
            .await
            .unwrap()
            .unwrap()
            .version,
        3
    );
}

#[tokio::test]
async fn list_skips_tombstones_and_pages() {
    let t = two_workers();
    let p = pref();
    for k in ["a/1", "a/2", "a/3", "b/1"] {
        t.a.put(&p, k, b"x".to_vec()).await.unwrap();
    }
    t.b.delete(&p, "a/2").await.unwrap();
    let page = t.b.list(&p, "a/", 1, "").await.unwrap();
    assert_eq!(page.keys, vec!["a/1"]);
    assert_eq!(page.cursor, "a/1");
    let page = t.b.list(&p, "a/", 10, &page.cursor).await.unwrap();
    assert_eq!(page.keys, vec!["a/3"]);
    assert_eq!(page.cursor, "");
}

#[tokio::test]
async fn concurrent_writers_never_lose_an_update() {
    let t = Arc::new(two_workers());
    let mut tasks = Vec::new();
    for i in 0..20u32 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let kv = if i % 2 == 0 { &t.a } else { &t.b };
            kv.put(&pref(), "counter", i.to_be_bytes().to_vec())
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // 20 writes through two handles: every one got its own version.
    assert_eq!(
        t.raw
            .get(&PROGRAM.0, "counter")
            .await
            .unwrap()
            .unwrap()
            .version,
        20
    );
}

#[tokio::test]
async fn tampered_value_is_refused() {
    let t = two_workers();
    let p = pref();
    t.a.put(&p, "k", b"value".to_vec()).await.unwrap();
    let mut row = t.raw.get(&PROGRAM.0, "k").await.unwrap().unwrap();
    let last = row.sealed.len() - 1;
    row.sealed[last] ^= 1;
    t.raw.danger_overwrite(&PROGRAM.0, "k", &row).unwrap();
    let e = err_text(t.b.get(&p, "k").await);
    assert!(
        e.starts_with("storage_integrity:") && e.contains("does not authenticate"),
        "{e}"
    );
    // also through list
    let e = err_text(t.b.list(&p, "", 10, "").await);
    assert!(e.starts_with("storage_integrity:"), "{e}");
}

#[tokio::test]
async fn value_moved_to_another_key_or_version_is_refused() {
    let t = two_workers();
    let p = pref();
    t.a.put(&p, "balance/alice", b"100".to_vec()).await.unwrap();
    t.a.put(&p, "balance/bob", b"1".to_vec()).await.unwrap();
    let alice = t
        .raw
        .get(&PROGRAM.0, "balance/alice")
        .await
        .unwrap()
        .unwrap();
    t.raw
        .danger_overwrite(&PROGRAM.0, "balance/bob", &alice)
        .unwrap();
    let e = err_text(t.b.get(&p, "balance/bob").await);
    assert!(e.starts_with("storage_integrity:"), "{e}");
    // same bytes under a bumped version
    let bumped = Row {
        version: alice.version + 1,
        sealed: alice.sealed.clone(),
    };
    t.raw
        .danger_overwrite(&PROGRAM.0, "balance/alice", &bumped)
        .unwrap();
    let e = err_text(t.b.get(&p, "balance/alice").await);
    assert!(e.starts_with("storage_integrity:"), "{e}");
}

#[tokio::test]
async fn rollback_to_an_older_sealed_version_is_refused() {
    let t = two_workers();
    let p = pref();
    t.a.put(&p, "k", b"v1".to_vec()).await.unwrap();
    let v1 = t.raw.get(&PROGRAM.0, "k").await.unwrap().unwrap();
    t.a.put(&p, "k", b"v2".to_vec()).await.unwrap();
    // b reads v2: its high-water mark is now 2
    assert_eq!(t.b.get(&p, "k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    // the store rolls the row back to the (validly sealed) version 1
    t.raw.danger_overwrite(&PROGRAM.0, "k", &v1).unwrap();
    for kv in [&t.a, &t.b] {
        let e = err_text(kv.get(&p, "k").await);
        assert!(
            e.starts_with("storage_integrity:") && e.contains("rolled back"),
            "{e}"
        );
        let e = err_text(kv.put(&p, "k", b"v3".to_vec()).await);
        assert!(e.contains("rolled back"), "{e}");
    }
    // removing the row altogether is refused too
    t.raw.danger_remove(&PROGRAM.0, "k").unwrap();
    let e = err_text(t.a.get(&p, "k").await);
    assert!(
        e.starts_with("storage_integrity:") && e.contains("missing"),
        "{e}"
    );
}

#[tokio::test]
async fn documented_window_a_fresh_worker_cannot_detect_rollback() {
    // The remaining window (docs/adr/0075-worker-storage.md): a worker that never saw the
    // newer version (fresh process) accepts the older validly sealed one.
    let t = two_workers();
    let p = pref();
    t.a.put(&p, "k", b"v1".to_vec()).await.unwrap();
    let v1 = t.raw.get(&PROGRAM.0, "k").await.unwrap().unwrap();
    t.a.put(&p, "k", b"v2".to_vec()).await.unwrap();
    t.raw.danger_overwrite(&PROGRAM.0, "k", &v1).unwrap();
    let fresh = SealedKv::new(Arc::new(t.raw.clone()), keyring(7));
    assert_eq!(
        fresh.get(&p, "k").await.unwrap().as_deref(),
        Some(&b"v1"[..])
    );
}

#[tokio::test]
async fn wrong_program_key_cannot_read() {
    let t = two_workers();
    let p = pref();
    t.a.put(&p, "k", b"secret".to_vec()).await.unwrap();
    let other = SealedKv::new(Arc::new(t.raw.clone()), keyring(8));
    let e = err_text(other.get(&p, "k").await);
    assert!(e.starts_with("storage_integrity:"), "{e}");
    // the store never holds the plaintext
    let row = t.raw.get(&PROGRAM.0, "k").await.unwrap().unwrap();
    assert!(!row.sealed.windows(6).any(|w| w == b"secret"));
}

/// Several processes' worth of connections creating the same new file at the same moment
/// (as `pith up` starts its workers): every open succeeds (WAL switch and table creation
/// are retried when SQLite answers "locked" without waiting).
#[test]
fn concurrent_first_open_of_a_new_file() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join(format!("kv-{round}.sqlite")));
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    SqliteStore::open(&path).map(|_| ())
                })
            })
            .collect();
        for o in opens {
            o.join().unwrap().unwrap();
        }
    }
}
