//! Intel DCAP quotes (SGX v3, TDX v4/v5) with real collateral of the matching TEE type.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pith_attest::Platform;
use pith_fuzz::{Context, context, run};

static SGX: OnceLock<Context> = OnceLock::new();
static TDX: OnceLock<Context> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let sgx = SGX.get_or_init(|| context("sgx-s1-confsw-hardening"));
    let tdx = TDX.get_or_init(|| context("tdx-t1-uptodate"));
    // Both verifiers see every input: the quote header decides which checks apply.
    run(Platform::Sgx, data, sgx);
    run(Platform::Tdx, data, tdx);
});
