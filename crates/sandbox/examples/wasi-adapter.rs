//! Write the WASI preview-1 component adapter (the `proxy` flavour, for components of the
//! `wasi:http/proxy` world) to the file named by the first argument. Used to turn a
//! wasi-libc core module into a component: `wasm-tools component new core.wasm --adapt
//! wasi_snapshot_preview1=ADAPTER` (examples/wasm-sha256/build.sh).

fn main() -> std::process::ExitCode {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("usage: wasi-adapter OUT.wasm");
        return std::process::ExitCode::from(2);
    };
    match std::fs::write(
        &out,
        wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_PROXY_ADAPTER,
    ) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasi-adapter: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
