//! Evidence input auto-detection (binary / hex / base64, platform framing), then
//! verification of whatever was detected, without collateral.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pith_attest::{Collateral, VerifyOptions, detect, verify};

fuzz_target!(|data: &[u8]| {
    let _ = detect::platform(data);
    if let Ok(decoded) = detect::evidence(data, None) {
        let at = time::macros::datetime!(2025-01-01 0:00 UTC);
        let _ = verify(&decoded.evidence, &Collateral::default(), &VerifyOptions::default(), at);
    }
});
