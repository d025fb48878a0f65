//! AWS Nitro attestation documents (COSE_Sign1 / CBOR), with expected PCRs present.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pith_attest::Platform;
use pith_fuzz::{Context, context, run};

static CTX: OnceLock<Context> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    run(Platform::Nitro, data, CTX.get_or_init(|| context("nitro-a5-prod-in-cert")));
});
