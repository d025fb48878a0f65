//! AMD SEV-SNP attestation reports with a real VCEK chain (Milan) and a VLEK chain.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pith_attest::Platform;
use pith_fuzz::{Context, context, run};

static VCEK: OnceLock<Context> = OnceLock::new();
static VLEK: OnceLock<Context> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    run(Platform::SevSnp, data, VCEK.get_or_init(|| context("snp-n1-milan")));
    run(Platform::SevSnp, data, VLEK.get_or_init(|| context("snp-n8-vlek-aws")));
});
