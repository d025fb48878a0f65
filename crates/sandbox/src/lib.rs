//! `pith-sandbox`: runs untrusted JavaScript programs on QuickJS (through rquickjs) and,
//! with the default feature `wasm`, WASM programs (WASI 0.2 components in the
//! `wasi:http/proxy` world, see [`wasm`]) on wasmtime, with hard limits and the Pith host
//! API. [`AnyInstance`] runs either kind.
//!
//! ```no_run
//! use std::sync::Arc;
//! use pith_sandbox::{BytecodeCache, Host, Instance, Program, Request};
//!
//! let tokio = tokio::runtime::Runtime::new().unwrap();
//! let program = Arc::new(Program::new("hello", r#"
//!     export default { async fetch(request, env, ctx) { return new Response("hi") } }
//! "#));
//! let mut instance = Instance::new(program, Host::local(b"seed".to_vec()), tokio.handle().clone(),
//!     BytecodeCache::default()).unwrap();
//! let outcome = instance.invoke(&Request::get("http://localhost/"));
//! assert_eq!(outcome.result.unwrap().body, b"hi");
//! ```
//!
//! Programs are ES modules in the Workers style (`export default { async fetch(request,
//! env, ctx) }`). The Web APIs are implemented in JavaScript (`src/js/prelude.js`,
//! compiled to bytecode once per process) over a few Rust primitives. They are checked
//! against workerd, Cloudflare's Workers runtime, by a differential conformance test
//! (`tests/conformance.rs`; method and deliberate divergences in
//! docs/adr/0040-sandbox-conformance-against-workerd.md). Not provided: streams
//! (`Request.body`/`Response.body` are `null`; use `text()`, `json()`, `arrayBuffer()`,
//! `bytes()`), `FormData`, `Blob`, `AbortController`, `crypto.subtle` beyond `digest`
//! (SHA-1/256/384/512), `TextDecoder` encodings other than UTF-8, and `{stream: true}`
//! decoding. `Date.now()`, `new Date()` and `Date()` read the host's [`host::Clock`].
//!
//! Limits ([`Limits`]) end an invocation with a typed [`ErrorKind`] even when the program
//! catches the exception the engine raises: the host records the limit and the engine's
//! interrupt handler stops the program at its next check. A stack overflow the program
//! catches is seen by stack painting (a band beyond `stack_kb` whose pattern any deeper
//! frame overwrites; see `stackguard`).

mod alloc;
mod bytes;
mod cputime;
pub mod egress;
pub mod eip712;
#[allow(unsafe_code)] // loading our own bytecode: see the SAFETY comments in the module
mod engine;
pub mod eth;
pub mod host;
pub mod limits;
pub mod pool;
mod runner;
mod stackguard;
#[cfg(feature = "wasm")]
pub mod wasm;

pub use engine::{BytecodeCache, Instance, LogLine, Outcome, Program, Request, Response};
pub use host::Host;
pub use limits::{ErrorKind, InvocationError, LIMIT_NAMES, LimitParseError, Limits, Usage};
pub use runner::AnyInstance;

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}

/// Keccak-256 (Ethereum's hash).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    use sha3::Digest as _;
    sha3::Keccak256::digest(data).into()
}
