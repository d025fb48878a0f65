//! Collateral fetching over HTTP (feature `fetch`). Separate from verification: fetch, then
//! pass the [`Collateral`](crate::Collateral) to [`verify`](crate::verify).
//!
//! - [`amd`]: AMD KDS (VCEKs, ASK/ASVK + ARK chains).

pub mod amd;
