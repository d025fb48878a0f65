//! ECDSA public-key recovery of a receipt signature: libsecp256k1 (what
//! `pith_crypto::receipt::recover` uses) against the pure-Rust k256 path (alloy's
//! `Signature::recover_address_from_prehash`, the baseline it replaced), and signing with
//! k256 for scale. `cargo bench -p pith-crypto --bench recover`.

#![allow(missing_docs, clippy::unwrap_used)]

use alloy_primitives::{B256, Signature};
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use k256::ecdsa::SigningKey;

fn bench(c: &mut Criterion) {
    let key = SigningKey::from_slice(&[0x42; 32]).unwrap();
    let hash = B256::repeat_byte(0x17);
    let sig = pith_crypto::receipt::sign_hash(&key, &hash).unwrap();
    let mut g = c.benchmark_group("receipt_signature");
    g.bench_function("recover_libsecp256k1", |b| {
        b.iter(|| pith_crypto::receipt::recover(black_box(&hash), black_box(&sig)).unwrap())
    });
    g.bench_function("recover_k256_baseline", |b| {
        b.iter(|| {
            Signature::try_from(black_box(&sig[..]))
                .unwrap()
                .recover_address_from_prehash(black_box(&hash))
                .unwrap()
        })
    });
    g.bench_function("sign_k256", |b| {
        b.iter(|| pith_crypto::receipt::sign_hash(black_box(&key), black_box(&hash)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
