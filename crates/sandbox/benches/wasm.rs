//! WASM benchmarks (bench/RESULTS.md, section "WASM programs"):
//! (e) instantiate + one request of a small component from the precompiled cache (the
//!     component compiled once; each iteration: a fresh store and instance, one GET,
//!     the response collected), and the same from the disk cache in a fresh runtime
//!     (deserialize + link + instantiate + request);
//! (f) the SHA-256 kernel over 1 MiB: in WASM (examples/wasm-sha256, clang -O2, one
//!     request each), the same C compiled natively with the system compiler (-O2, timed
//!     inside the process around the hash loop), and the same kernel in the JavaScript
//!     sandbox (benches/sha256.js).
//! Needs the example toolchain (scripts/install.d/wasm-toolchain). After criterion,
//! prints medians and the ratios.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use pith_sandbox::wasm::{WasmInstance, WasmRuntime};
use pith_sandbox::{BytecodeCache, Host, Instance, Program, Request};

const SHA_JS: &str = include_str!("sha256.js");

fn tokio() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn host() -> Host {
    Host::local(b"bench".to_vec())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A minimal wasi:http component answering 200 "hello" (core module text + component
/// encoding in-process, as the tests do).
fn hello_component() -> Vec<u8> {
    let wat = r#"(module
  (import "wasi:http/types@0.2.12" "[constructor]fields" (func $fields_new (result i32)))
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-response" (func $resp_new (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.body" (func $resp_body (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-body.write" (func $body_write (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]outgoing-body.finish" (func $body_finish (param i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]response-outparam.set" (func $set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[method]output-stream.blocking-write-and-flush" (func $write (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]output-stream" (func $drop (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "hello")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) unreachable)
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $req i32) (param $out i32)
    (local $resp i32) (local $body i32) (local $s i32)
    (local.set $resp (call $resp_new (call $fields_new)))
    (call $resp_body (local.get $resp) (i32.const 0))
    (local.set $body (i32.load (i32.const 4)))
    (call $body_write (local.get $body) (i32.const 0))
    (local.set $s (i32.load (i32.const 4)))
    (call $set (local.get $out) (i32.const 0) (local.get $resp) (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $write (local.get $s) (i32.const 1024) (i32.const 5) (i32.const 0))
    (call $drop (local.get $s))
    (call $body_finish (local.get $body) (i32.const 0) (i32.const 0) (i32.const 0))))"#;
    let mut module = wat::parse_str(wat).unwrap();
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve.push_dir(repo().join("wit")).unwrap();
    let world = resolve.select_world(&[pkg], Some("app")).unwrap();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

/// Build examples/wasm-sha256 (component + native binary) into `out`.
fn build_example(out: &Path) -> (PathBuf, PathBuf) {
    let adapter = out.join("adapter.wasm");
    std::fs::write(
        &adapter,
        wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_PROXY_ADAPTER,
    )
    .unwrap();
    let status = std::process::Command::new(repo().join("examples/wasm-sha256/build.sh"))
        .arg(out)
        .arg(&adapter)
        .status()
        .expect("run examples/wasm-sha256/build.sh (install the toolchain: scripts/install.d/wasm-toolchain)");
    assert!(status.success(), "examples/wasm-sha256/build.sh failed");
    (out.join("sha256.wasm"), out.join("sha256-native"))
}

/// Run the native binary hashing 1 MiB `n` times; the nanoseconds it reports.
fn native_ns(bin: &Path, n: u64) -> (String, u64) {
    let o = std::process::Command::new(bin)
        .arg(n.to_string())
        .output()
        .unwrap();
    let s = String::from_utf8(o.stdout).unwrap();
    let (digest, ns) = s.trim().split_once(' ').unwrap();
    (digest.to_owned(), ns.parse().unwrap())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let handle = tokio().handle().clone();

    // (e) instantiate + one request.
    let hello = Arc::new(Program::from_wasm("hello", hello_component()));
    let rt = WasmRuntime::new(Some(dir.path().join("cache")));
    let req = Request::get("http://localhost/");
    let mut inst = WasmInstance::new(hello.clone(), host(), handle.clone(), &rt).unwrap();
    assert_eq!(inst.invoke(&req).result.unwrap().body, b"hello");
    let mut g = c.benchmark_group("e_wasm_instantiate");
    g.bench_function("instantiate_and_request_precompiled", |b| {
        b.iter(|| assert!(inst.invoke(&req).result.is_ok()))
    });
    g.bench_function("load_from_disk_cache_instantiate_and_request", |b| {
        b.iter(|| {
            let fresh = WasmRuntime::new(Some(dir.path().join("cache")));
            let mut i = WasmInstance::new(hello.clone(), host(), handle.clone(), &fresh).unwrap();
            assert!(i.invoke(&req).result.is_ok());
        })
    });
    g.finish();

    // (f) the SHA-256 kernel.
    let (component, native) = build_example(dir.path());
    let mut p = Program::from_wasm("sha", std::fs::read(&component).unwrap());
    p.limits.cpu_ms = 60_000;
    p.limits.wall_ms = 120_000;
    let mut wasm = WasmInstance::new(Arc::new(p), host(), handle.clone(), &rt).unwrap();
    let sha = Request::get("http://localhost/sha");
    let want = String::from_utf8(wasm.invoke(&sha).result.unwrap().body).unwrap();
    let (native_digest, _) = native_ns(&native, 1);
    assert_eq!(want, native_digest, "WASM and native disagree");

    let js_src = format!(
        "{SHA_JS}\nexport default {{ async fetch(req) {{ return new Response(workSha()); }} }};"
    );
    let mut jp = Program::new("sha-js", js_src);
    jp.limits.cpu_ms = 60_000;
    jp.limits.wall_ms = 120_000;
    jp.limits.memory_mb = 512;
    let mut js = Instance::new(
        Arc::new(jp),
        host(),
        handle.clone(),
        BytecodeCache::default(),
    )
    .unwrap();
    let js_digest = String::from_utf8(js.invoke(&sha).result.unwrap().body).unwrap();
    assert_eq!(js_digest, want, "JavaScript and WASM disagree");

    let mut g = c.benchmark_group("f_sha256_1mib");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    g.bench_function("wasm_component", |b| {
        b.iter(|| assert!(wasm.invoke(&sha).result.is_ok()))
    });
    g.bench_function("native_c", |b| {
        b.iter_custom(|n| Duration::from_nanos(native_ns(&native, n).1))
    });
    g.bench_function("js_sandbox", |b| {
        b.iter(|| assert!(js.invoke(&sha).result.is_ok()))
    });
    g.finish();

    // Medians of our own repeated runs, for the ratios.
    let runs = 15;
    let inst_med = median(
        (0..2000)
            .map(|_| timed(|| assert!(inst.invoke(&req).result.is_ok())))
            .collect(),
    );
    let wasm_med = median(
        (0..runs)
            .map(|_| timed(|| assert!(wasm.invoke(&sha).result.is_ok())))
            .collect(),
    );
    let native_med = median(
        (0..runs)
            .map(|_| Duration::from_nanos(native_ns(&native, 1).1))
            .collect(),
    );
    let js_med = median(
        (0..runs)
            .map(|_| timed(|| assert!(js.invoke(&sha).result.is_ok())))
            .collect(),
    );
    println!(
        "\nRESULT (e) instantiate + one request from the precompiled cache: median {:.1} us (goal <= 200 us)",
        inst_med.as_secs_f64() * 1e6
    );
    println!(
        "RESULT (f) sha256 1 MiB: wasm {:.2} ms, native {:.2} ms, js sandbox {:.2} ms; wasm/native {:.2} (goal <= 1.5), js/native {:.1}, js/wasm {:.1}",
        ms(wasm_med),
        ms(native_med),
        ms(js_med),
        wasm_med.as_secs_f64() / native_med.as_secs_f64(),
        js_med.as_secs_f64() / native_med.as_secs_f64(),
        js_med.as_secs_f64() / wasm_med.as_secs_f64(),
    );
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
}
