//! Simulated evidence (PITHSIM1) verified against a fixed development CA. The seed corpus is
//! written by scripts/fuzz with `pith attest quote` and that CA.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pith_attest::{Collateral, Platform, VerifyOptions};
use pith_fuzz::{Context, run};

static CTX: OnceLock<Context> = OnceLock::new();

fn ctx() -> Context {
    // scripts/fuzz points PITH_FUZZ_DEV_CA at the CA that signed the seeds.
    let mut options = VerifyOptions::default();
    options.dev_ca = std::env::var_os("PITH_FUZZ_DEV_CA").and_then(|p| std::fs::read(p).ok());
    Context { collateral: Collateral::default(), options, at: time::OffsetDateTime::now_utc() }
}

fuzz_target!(|data: &[u8]| {
    run(Platform::Simulated, data, CTX.get_or_init(ctx));
});
