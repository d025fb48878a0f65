//! Placeholder until this platform's verifier lands (being written in parallel).

use time::OffsetDateTime;

use crate::{Collateral, Error, ErrorClass, Platform, Rejected, Verified, VerifyOptions};

pub(crate) fn verify(
    _bytes: &[u8],
    _collateral: &Collateral,
    _options: &VerifyOptions,
    _now: OffsetDateTime,
) -> Result<Verified, Rejected> {
    let _ = Verified::new;
    Err(Rejected::new(Some(Platform::SevSnp), Error::new(ErrorClass::Unsupported, "verifier not built yet")))
}

/// The byte range of `bytes` covered by the evidence signature, for property tests.
pub(crate) fn signed_region(_bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    None
}
