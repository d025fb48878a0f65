//! One instance of either kind of program: JavaScript ([`Instance`]) or WASM
//! ([`crate::wasm::WasmInstance`], feature `wasm`), chosen by [`Program::is_wasm`].

use std::sync::Arc;

use crate::engine::{BytecodeCache, Instance, Outcome, Program, Request};
use crate::host::Host;
use crate::limits::InvocationError;

/// An instance of a JavaScript or WASM program.
#[derive(Debug)]
pub enum AnyInstance {
    /// A JavaScript program.
    Js(Instance),
    /// A WASM program.
    #[cfg(feature = "wasm")]
    Wasm(crate::wasm::WasmInstance),
}

impl AnyInstance {
    /// An instance for `program`. WASM programs use the process-wide
    /// [`crate::wasm::WasmRuntime::global`]; JavaScript programs use `cache`.
    pub fn new(
        program: Arc<Program>,
        host: Host,
        handle: tokio::runtime::Handle,
        cache: BytecodeCache,
    ) -> Result<Self, InvocationError> {
        if program.is_wasm() {
            #[cfg(feature = "wasm")]
            return crate::wasm::WasmInstance::new(
                program,
                host,
                handle,
                crate::wasm::WasmRuntime::global(),
            )
            .map(Self::Wasm);
            #[cfg(not(feature = "wasm"))]
            return Err(InvocationError::new(
                crate::limits::ErrorKind::InvalidProgram,
                "this build of the sandbox has no WASM support (feature `wasm`)",
            ));
        }
        Instance::new(program, host, handle, cache).map(Self::Js)
    }

    /// Run one request.
    pub fn invoke(&mut self, req: &Request) -> Outcome {
        match self {
            Self::Js(i) => i.invoke(req),
            #[cfg(feature = "wasm")]
            Self::Wasm(i) => i.invoke(req),
        }
    }

    /// Whether the instance may serve another invocation (a WASM instance always may:
    /// every invocation gets a fresh store).
    pub fn is_reusable(&self) -> bool {
        match self {
            Self::Js(i) => i.is_reusable(),
            #[cfg(feature = "wasm")]
            Self::Wasm(_) => true,
        }
    }

    /// Invocations served so far.
    pub fn invocations(&self) -> u64 {
        match self {
            Self::Js(i) => i.invocations(),
            #[cfg(feature = "wasm")]
            Self::Wasm(i) => i.invocations(),
        }
    }
}
