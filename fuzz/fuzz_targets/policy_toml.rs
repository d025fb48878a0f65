//! Policy TOML parsing and appraisal of a verified Nitro document against the parsed policy.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pith_attest::{Evidence, Platform, Policy, Verified, appraise, verify};
use pith_fuzz::context;

static VERIFIED: OnceLock<Verified> = OnceLock::new();

fn verified() -> Verified {
    let case = "nitro-a2-prod-beta";
    let ctx = context(case);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/attestation/nitro-a2-prod-beta/evidence.bin");
    let bytes = std::fs::read(path).expect("evidence");
    verify(&Evidence::new(Platform::Nitro, bytes), &ctx.collateral, &ctx.options, ctx.at).expect("seed case verifies")
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(policy) = Policy::from_toml(text) {
        let v = VERIFIED.get_or_init(verified);
        let _ = appraise(v, &policy, v.verified_at());
    }
});
