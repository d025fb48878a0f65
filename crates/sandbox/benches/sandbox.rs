//! Sandbox benchmarks (bench/RESULTS.md, section "sandbox"):
//! (a) cold start: new instance + load a 20 KB module + one request, bytecode cache warm vs
//!     from source;
//! (b) warm hello invocations per second on one core;
//! (c) pure-JS SHA-256 over 1 MiB and JSON parse/stringify of 1 MiB, inside the sandbox vs
//!     bare rquickjs (no host layer, no limits).
//! After criterion, prints medians and the ratios against the named baselines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
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

/// A ~20 KB module: a hello handler plus a data table and helper functions.
fn module_20k() -> String {
    let mut s = String::from("const TABLE = [\n");
    let mut i = 0;
    while s.len() < 14_000 {
        s.push_str(&format!(
            "  {{ id: {i}, name: \"entry-{i}\", weight: {}.5, tags: [\"t{}\", \"u{}\"] }},\n",
            i * 7,
            i % 5,
            i % 3
        ));
        i += 1;
    }
    s.push_str("];\n");
    let mut f = 0;
    while s.len() < 20_000 {
        s.push_str(&format!("function helper{f}(x) {{ let acc = 0; for (const e of TABLE) {{ if (e.id % {m} === x) acc += e.weight; }} return acc + {f}; }}\n", m = f % 7 + 2));
        f += 1;
    }
    s.push_str("export default { async fetch(request) { return new Response('hello ' + TABLE.length + ' ' + helper0(1)); } };\n");
    s
}

fn host() -> Host {
    Host::local(b"bench".to_vec())
}

fn cold(program: &Arc<Program>, cache: &BytecodeCache) {
    let mut i = Instance::new(
        program.clone(),
        host(),
        tokio().handle().clone(),
        cache.clone(),
    )
    .unwrap();
    let o = i.invoke(&Request::get("http://localhost/"));
    assert!(o.result.is_ok(), "{:?}", o.result);
}

fn compute_program() -> Arc<Program> {
    let src = format!(
        "{SHA_JS}\nexport default {{ async fetch(req) {{ const w = new URL(req.url).pathname; return new Response(String(w === '/sha' ? workSha() : workJson())); }} }};"
    );
    let mut p = Program::new("compute", src);
    p.limits.cpu_ms = 60_000;
    p.limits.wall_ms = 120_000;
    p.limits.memory_mb = 512;
    Arc::new(p)
}

/// Bare rquickjs: runtime + context, the same code as a script, the work function called directly.
struct Bare {
    _rt: rquickjs::Runtime,
    ctx: rquickjs::Context,
}

impl Bare {
    fn new() -> Self {
        let rt = rquickjs::Runtime::new().unwrap();
        let ctx = rquickjs::Context::full(&rt).unwrap();
        ctx.with(|ctx| ctx.eval::<(), _>(SHA_JS).unwrap());
        Self { _rt: rt, ctx }
    }
    fn call(&self, f: &str) -> String {
        self.ctx.with(|ctx| {
            let func: rquickjs::Function<'_> = ctx.globals().get(f).unwrap();
            let v: rquickjs::Value<'_> = func.call(()).unwrap();
            format!("{v:?}")
        })
    }
}

fn benches(c: &mut Criterion) {
    let module = Arc::new(Program::new("cold", module_20k()));
    let warm_cache = BytecodeCache::default();
    cold(&module, &warm_cache);
    let mut g = c.benchmark_group("a_cold_start_20k");
    g.bench_function("with_bytecode_cache", |b| {
        b.iter(|| cold(&module, &warm_cache))
    });
    g.bench_function("from_source", |b| {
        b.iter(|| cold(&module, &BytecodeCache::default()))
    });
    g.finish();

    let hello = Arc::new(Program::new(
        "hello",
        "export default { async fetch(request) { return new Response('hello'); } }",
    ));
    let mut inst = Instance::new(
        hello,
        host(),
        tokio().handle().clone(),
        BytecodeCache::default(),
    )
    .unwrap();
    let req = Request::get("http://localhost/");
    c.bench_function("b_warm_hello", |b| {
        b.iter(|| assert!(inst.invoke(&req).result.is_ok()))
    });

    let mut g = c.benchmark_group("c_compute");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    let mut sandbox = Instance::new(
        compute_program(),
        host(),
        tokio().handle().clone(),
        BytecodeCache::default(),
    )
    .unwrap();
    let bare = Bare::new();
    let sha = Request::get("http://localhost/sha");
    let json = Request::get("http://localhost/json");
    g.bench_function("sha256_1mib_sandbox", |b| {
        b.iter(|| assert!(sandbox.invoke(&sha).result.is_ok()))
    });
    g.bench_function("sha256_1mib_bare_rquickjs", |b| {
        b.iter(|| bare.call("workSha"))
    });
    g.bench_function("json_1mib_sandbox", |b| {
        b.iter(|| assert!(sandbox.invoke(&json).result.is_ok()))
    });
    g.bench_function("json_1mib_bare_rquickjs", |b| {
        b.iter(|| bare.call("workJson"))
    });
    g.finish();
}

fn median(mut f: impl FnMut(), n: usize) -> Duration {
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    v[n / 2]
}

/// Same-run medians and ratios against the named baselines.
fn summary() {
    let module = Arc::new(Program::new("cold", module_20k()));
    println!("\n== sandbox summary (medians, same run) ==");
    println!("module size: {} bytes", module.source.len());
    let cache = BytecodeCache::default();
    cold(&module, &cache);
    let with_cache = median(|| cold(&module, &cache), 301);
    let from_source = median(|| cold(&module, &BytecodeCache::default()), 101);
    println!(
        "(a) cold start, bytecode cache: {:.3} ms (goal <= 1 ms)",
        with_cache.as_secs_f64() * 1e3
    );
    println!(
        "(a) cold start, from source:    {:.3} ms (ratio source/cache {:.2})",
        from_source.as_secs_f64() * 1e3,
        from_source.as_secs_f64() / with_cache.as_secs_f64()
    );

    let hello = Arc::new(Program::new(
        "hello",
        "export default { async fetch(request) { return new Response('hello'); } }",
    ));
    let mut inst = Instance::new(
        hello,
        host(),
        tokio().handle().clone(),
        BytecodeCache::default(),
    )
    .unwrap();
    let req = Request::get("http://localhost/");
    for _ in 0..1000 {
        inst.invoke(&req);
    }
    let n = 50_000;
    let t = Instant::now();
    for _ in 0..n {
        inst.invoke(&req);
    }
    let per_s = n as f64 / t.elapsed().as_secs_f64();
    println!("(b) warm hello: {per_s:.0} invocations/s on one thread (goal >= 20,000/s)");

    let mut sandbox = Instance::new(
        compute_program(),
        host(),
        tokio().handle().clone(),
        BytecodeCache::default(),
    )
    .unwrap();
    let bare = Bare::new();
    for (name, path, f) in [
        ("sha256 1 MiB", "/sha", "workSha"),
        ("json 1 MiB", "/json", "workJson"),
    ] {
        let req = Request::get(format!("http://localhost{path}"));
        let s = median(|| assert!(sandbox.invoke(&req).result.is_ok()), 11);
        let b = median(|| drop(bare.call(f)), 11);
        println!(
            "(c) {name}: sandbox {:.1} ms, bare rquickjs {:.1} ms, ratio {:.3} (goal <= 1.10)",
            s.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3,
            s.as_secs_f64() / b.as_secs_f64()
        );
    }
}

criterion_group!(group, benches);

fn main() {
    let quick = std::env::args().any(|a| a == "--summary-only");
    if !quick {
        group();
        Criterion::default().configure_from_args().final_summary();
    }
    summary();
}
