//! # pith-worker
//!
//! The Pith worker (`pith worker`): an attested node that runs programs on encrypted
//! requests. It
//!
//! - generates its identity (secp256k1 address + X25519 key-transport key) inside the TEE,
//!   binds both into its evidence and registers through a KMS signature;
//! - obtains program keys from the KMS (sealed to its X25519 key) and keeps them sealed on
//!   disk so it keeps serving while the KMS is down;
//! - decapsulates OHTTP requests, checks freshness and replays, runs the program in
//!   `pith-sandbox`, encapsulates the answer and signs an EIP-712 receipt;
//! - backs `env.kv` with values sealed inside the TEE over an untrusted shared store
//!   ([`storage`], [`kv`]);
//! - answers `env.ai.chat` with its own model ([`ai`], pith-infer), whose file hash its
//!   evidence binds and its receipts name.
//!
//! Protocol: `docs/protocol.md`, "Network → Worker". Decisions: docs/adr/0075-0079.

pub mod agents;
pub mod ai;
pub mod error;
pub mod evidence;
pub mod host;
pub mod identity;
mod inference;
pub mod keys;
pub mod kv;
pub mod node;
pub mod oracle;
pub mod register;
pub mod replay;
pub mod secrets;
pub mod server;
pub mod service;
pub mod storage;
pub mod usage;

pub use node::{Config, Node};
pub use service::{Running, start};

pub use error::WorkerError;
