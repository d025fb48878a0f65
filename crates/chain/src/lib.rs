//! `pith-chain`: the chain layer of Pith in Rust — alloy bindings generated from the
//! checked-in contract artifacts, a typed client per contract, a deterministic deployer
//! that writes `deployment.json`, an event watcher with confirmations, reorg handling and
//! a persisted cursor, and the anvil launcher used by `pith chain up` and the tests.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pith_chain::Error> {
//! use pith_chain::anvil::{Anvil, AnvilConfig};
//! let anvil = Anvil::start(AnvilConfig::new().state_file("/tmp/chain/state.json")).await?;
//! println!("chain at {}", anvil.url());
//! anvil.stop().await?; // SIGTERM: anvil dumps its state; a restart from the file keeps it
//! # Ok(()) }
//! ```

pub mod anvil;
pub mod bindings;
pub mod client;
pub mod deploy;
pub mod eip712;
pub mod error;
pub mod keys;
pub mod manifest;
pub mod watcher;

pub use error::{Error, Result};
pub use manifest::{Contracts, Deployment};
