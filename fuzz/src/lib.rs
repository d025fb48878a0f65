//! Shared glue for the fuzz targets: collateral and verification times of corpus cases, so
//! that fuzzed evidence is checked as deep as the real thing (past parsing, into the chain
//! and TCB logic) rather than stopping at "no collateral".

use std::path::{Path, PathBuf};

use pith_attest::{Collateral, Evidence, Platform, VerifyOptions, verify};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A corpus case's collateral, options and `at`.
pub struct Context {
    pub collateral: Collateral,
    pub options: VerifyOptions,
    pub at: OffsetDateTime,
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/attestation")
}

/// Load a corpus case's context (panics only at start-up, never on fuzz input).
pub fn context(case: &str) -> Context {
    let dir = corpus().join(case);
    let expect = std::fs::read_to_string(dir.join("expect.json")).expect("expect.json");
    let at = expect
        .split("\"at\": \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("at in expect.json");
    let mut options = VerifyOptions::default();
    options.lenient_collateral = expect.contains("\"needs_lenient_collateral\": true");
    Context {
        collateral: Collateral::from_dir(&dir.join("collateral")).expect("collateral"),
        options,
        at: OffsetDateTime::parse(at, &Rfc3339).expect("at"),
    }
}

/// Verify `data` as `platform` evidence in `ctx`; the result is discarded (the fuzzer looks
/// for panics, hangs and sanitizer reports).
pub fn run(platform: Platform, data: &[u8], ctx: &Context) {
    let evidence = Evidence::new(platform, data.to_vec());
    let _ = verify(&evidence, &ctx.collateral, &ctx.options, ctx.at);
    let _ = pith_attest::signed_region(&evidence);
}
