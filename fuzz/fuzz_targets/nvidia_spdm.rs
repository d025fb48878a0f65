//! NVIDIA SPDM GET_MEASUREMENTS request + MEASUREMENTS response, with a real device chain.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pith_attest::Platform;
use pith_fuzz::{Context, context, run};

static CTX: OnceLock<Context> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    run(Platform::NvidiaGpu, data, CTX.get_or_init(|| context("nvidia-v1-hopper")));
});
