//! # pith-crypto
//!
//! The key tree and message formats of Pith. Pure: no I/O, no async, no panics on input.
//!
//! - [`keytree`]: HKDF-SHA256 derivations, with domain-separated labels, from a KMS master
//!   key to per-program encryption (X25519, as an OHTTP key configuration), signing
//!   (secp256k1, so programs have Ethereum addresses) and storage keys, and user keys.
//! - [`envelope`]: requests and responses as Oblivious HTTP (RFC 9458): Binary HTTP
//!   (RFC 9292) inside HPKE (RFC 9180) with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
//!   AES-128-GCM or ChaCha20-Poly1305; every request carries a nonce and an expiry.
//! - [`receipt`]: EIP-712 receipts signed by the worker key, checkable with one `ecrecover`.
//! - [`certify`]: the KMS's EIP-712 certificate over a program's OHTTP key configuration.
//! - [`seal`]: sealed program storage values (AEAD bound to program, key and version).
//! - [`chunked`]: streamed responses over chunked Oblivious HTTP, framed so that the
//!   receipt at the end signs everything before it.
//! - [`transport`]: key transport (HPKE base mode, X25519 / HKDF-SHA256 / ChaCha20-Poly1305)
//!   from the KMS to an attested worker or KMS peer.
//! - [`bundle`]: versioned binary bundles of program keys and master keys (several epochs).
//!
//! Every preimage and its domain tag is listed in `docs/protocol.md` ("Key tree and
//! envelopes").
//!
//! ```
//! use pith_crypto::keytree::{MasterKey, ProgramId};
//! use pith_crypto::envelope::{Request, ClientSession, ProgramServer};
//!
//! let master = MasterKey::from_bytes([7u8; 32], 1);
//! let program = ProgramId([1u8; 32]);
//! let keys = master.program_keys(&program).unwrap();
//! let server = ProgramServer::new(&keys).unwrap();
//! let config = server.encoded_key_configs().unwrap();
//!
//! let request = Request::new("POST", "/hello", vec![], b"hi".to_vec(), [9u8; 16], 1_900_000_000);
//! let (wire, session) = ClientSession::encapsulate(&config, &request).unwrap();
//! let (got, reply) = server.decapsulate(&wire).unwrap();
//! assert_eq!(got.body(), b"hi");
//! ```

pub mod bundle;
pub mod certify;
pub mod chunked;
pub mod domain;
pub mod envelope;
pub mod error;
pub mod keytree;
pub mod receipt;
pub mod seal;
pub mod transport;

pub use error::{CryptoError, Result};

/// Ethereum address (20 bytes).
pub use alloy_primitives::Address;
/// 32-byte value.
pub use alloy_primitives::B256;

/// keccak256 of `data`.
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    alloy_primitives::keccak256(data).0
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}
