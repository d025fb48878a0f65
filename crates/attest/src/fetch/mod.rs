//! Collateral fetching over HTTP (feature `fetch`). Separate from verification: fetch, then
//! pass the [`Collateral`](crate::Collateral) to [`verify`](crate::verify).
//!
//! - [`amd`]: AMD KDS (VCEKs, ASK/ASVK + ARK chains).
//! - [`intel`]: Intel PCS / PCCS (TCBInfo, QE identity, PCK CRL, root CA CRL, issuer chains).
//! - [`cache`]: a generic on-disk response cache honouring an expiry taken from the content
//!   (`nextUpdate`, notAfter).

pub mod amd;
pub mod cache;
pub mod intel;
