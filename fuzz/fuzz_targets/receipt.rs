//! pith-crypto's receipts: a receipt JSON of any shape parses or is refused without a panic,
//! and its signature check never panics; `receipt::recover` (libsecp256k1) agrees with the
//! pure-Rust k256 recovery (alloy's) on every 32-byte hash and 65-byte signature: the same
//! address, or both refuse. High-s signatures are refused by ours only (by design, as on
//! chain), so they are compared after normalisation.
#![no_main]
use alloy_primitives::{B256, Signature};
use libfuzzer_sys::fuzz_target;
use pith_crypto::receipt::{SignedReceipt, recover};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    if selector % 2 == 0 {
        if let Ok(r) = serde_json::from_slice::<SignedReceipt>(rest) {
            let _ = r.verify_signature();
        }
        return;
    }
    if rest.len() < 32 + 65 {
        return;
    }
    let (h, sig) = rest.split_at(32);
    let hash = B256::from_slice(h);
    let sig = &sig[..65];
    let ours = recover(&hash, sig).ok();
    let theirs = Signature::try_from(sig).ok().and_then(|s| {
        if s.normalize_s().is_some() {
            None // ours refuses high-s
        } else {
            s.recover_address_from_prehash(&hash).ok()
        }
    });
    assert_eq!(ours, theirs, "libsecp256k1 and k256 disagree");
});
