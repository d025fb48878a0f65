//! examples/wasm-sha256 built from source (examples/wasm-sha256/build.sh: clang +
//! wasi-libc, wasm-tools, the WASI preview-1 proxy adapter) and run in the sandbox: the
//! component answers GET /sha and POST like the native build and sha2 do. Needs the
//! toolchain of scripts/install.d/wasm-toolchain.

use std::path::Path;
use std::sync::Arc;

use pith_sandbox::wasm::{WasmInstance, WasmRuntime};
use pith_sandbox::{Host, Program, Request};
use sha2::{Digest as _, Sha256};

#[test]
fn sha256_example_builds_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = dir.path().join("adapter.wasm");
    std::fs::write(
        &adapter,
        wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_PROXY_ADAPTER,
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/wasm-sha256/build.sh");
    let status = std::process::Command::new(&script)
        .arg(dir.path())
        .arg(&adapter)
        .status()
        .expect("run build.sh");
    assert!(
        status.success(),
        "build.sh failed (toolchain: scripts/install.d/wasm-toolchain)"
    );
    let component = std::fs::read(dir.path().join("sha256.wasm")).unwrap();

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let handle = tokio.handle().clone();
    let (get, post, missing) = std::thread::spawn(move || {
        let rt = WasmRuntime::new(None);
        let mut i = WasmInstance::new(
            Arc::new(Program::from_wasm("sha", component)),
            Host::local(b"t".to_vec()),
            handle,
            &rt,
        )
        .expect("the example is a valid program");
        let get = i.invoke(&Request::get("http://localhost/sha"));
        let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let post = i.invoke(&Request {
            method: "POST".into(),
            url: "http://localhost/x".into(),
            headers: vec![],
            body,
        });
        let missing = i.invoke(&Request::get("http://localhost/nope"));
        (get, post, missing)
    })
    .join()
    .unwrap();

    let buf: Vec<u8> = (0..1u32 << 20).map(|i| i as u8).collect();
    let r = get.result.as_ref().expect("GET /sha");
    assert_eq!(r.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        hex::encode(Sha256::digest(&buf))
    );
    assert!(
        r.headers
            .contains(&("x-digest-bytes".into(), "1048576".into()))
    );
    assert!(
        r.headers
            .contains(&("content-type".into(), "text/plain".into()))
    );
    assert_eq!(get.logs.len(), 1, "{:?}", get.logs);
    assert_eq!(get.logs[0].level, "log");
    assert_eq!(
        get.logs[0].message,
        format!(
            "sha256 of 1048576 bytes: {}",
            hex::encode(Sha256::digest(&buf))
        )
    );
    assert!(get.usage.memory_bytes >= 1 << 20, "{:?}", get.usage);

    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let r = post.result.as_ref().expect("POST");
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        hex::encode(Sha256::digest(&body))
    );
    assert!(
        r.headers
            .contains(&("x-digest-bytes".into(), "100000".into()))
    );

    assert_eq!(missing.result.as_ref().expect("404").status, 404);
}
