//! WASM programs: WASI 0.2 components in the `wasi:http/proxy` world, run on wasmtime.
//!
//! A program is a component that exports `wasi:http/incoming-handler` (what standard
//! toolchains build for `wasmtime serve`) and may import the `pith:host` interfaces
//! (`wit/pith-host.wit`). Per process there is one [`WasmRuntime`]: one wasmtime
//! `Engine` per distinct stack limit (the stack limit is an engine setting), a linker, a
//! ticker thread that advances the engines' epochs every millisecond, and the compiled
//! component cache ([`cache`]). Each invocation gets a fresh `Store` and instance, so
//! nothing survives between invocations (unlike JavaScript module state).
//!
//! Limits (the same [`Limits`] as JavaScript):
//! - `cpu_ms` / `wall_ms`: epoch interruption; every tick the store's callback compares
//!   the thread's CPU time and the elapsed time with the limits and traps the guest when
//!   one is exceeded (or when another limit already ended the invocation). The whole
//!   invocation also runs under a wall-clock timeout, which covers waiting on I/O.
//!   The check costs one thread-CPU-clock read per millisecond of guest execution.
//! - `memory_mb`: a `ResourceLimiter` summing every linear memory of the instance
//!   (creation and `memory.grow`); growth past the limit traps. Tables, instances and
//!   memories are capped too.
//! - `stack_kb`: wasmtime's `max_wasm_stack` (rounded up to a power of two, 64 KiB to
//!   64 MiB: one engine per value); an overflow traps as `stack_limit`.
//! - `output_bytes`: the response body is collected while the guest streams it and the
//!   invocation ends once it exceeds the limit.
//! - `log_bytes`: the component's stdout and stderr are the log (stdout lines at level
//!   `log`, stderr at `error`); a write past the limit traps as `log_limit`.
//! - egress: outgoing `wasi:http` requests go through the host's [`crate::host::Egress`]
//!   with the program's policy and the `egress_requests` / `egress_bytes` budget.
//! - `kv_ops`: counted by `pith:host/kv`.

mod cache;
mod host_impl;
mod io;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::engine::{Outcome, Program, Request, Response};
use crate::host::{Host, ProgramRef};
use crate::limits::{ErrorKind, InvocationError, Limits, Usage};

pub use cache::CacheStats;

/// Tables may hold at most this many elements each.
const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Instances, tables and memories per store at most.
const MAX_INSTANCES: usize = 100;
/// How often the engines' epoch advances.
const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Compiled components kept in memory per process.
const MEMORY_CACHE_CAPACITY: usize = 64;

/// Does `bytes` look like a WebAssembly binary (module or component)?
pub fn is_wasm(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm")
}

// ------------------------------------------------------------------------- runtime

struct EngineEntry {
    engine: Engine,
    linker: Arc<Linker<State>>,
    /// SHA-256 over the engine's precompile compatibility hash.
    config_hash: [u8; 32],
}

struct RuntimeInner {
    engines: Mutex<HashMap<u64, Arc<EngineEntry>>>,
    /// Pre-linked components by (code hash, engine config hash, stack limit): a
    /// `ProxyPre` belongs to one engine, and engines differ by stack limit.
    compiled: Mutex<HashMap<([u8; 32], [u8; 32], u64), ProxyPre<State>>>,
    disk: Option<cache::DiskCache>,
    stats: cache::Counters,
}

/// The per-process WASM runtime: engines, linker, compiled component cache. Cheap to clone.
#[derive(Clone)]
pub struct WasmRuntime {
    inner: Arc<RuntimeInner>,
}

impl std::fmt::Debug for WasmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmRuntime")
            .field("disk_cache", &self.inner.disk.as_ref().map(|d| d.dir()))
            .finish()
    }
}

/// All engines ever created, advanced by the ticker thread.
fn ticked_engines() -> &'static Mutex<Vec<Engine>> {
    static ENGINES: OnceLock<Mutex<Vec<Engine>>> = OnceLock::new();
    ENGINES.get_or_init(|| {
        let started = std::thread::Builder::new()
            .name("pith-wasm-epoch".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(EPOCH_TICK);
                    let engines = ticked_engines()
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    for e in engines.iter() {
                        e.increment_epoch();
                    }
                }
            });
        if let Err(e) = started {
            // Without the ticker no CPU or wall limit could be enforced: refuse to run.
            tracing::error!(target: "pith::sandbox", "cannot start the WASM epoch thread: {e}");
            std::process::abort();
        }
        Mutex::new(Vec::new())
    })
}

impl WasmRuntime {
    /// A runtime whose compiled components are also kept in `cache_dir` (created with
    /// mode 0700 if missing), or only in memory when `None`.
    pub fn new(cache_dir: Option<PathBuf>) -> Self {
        let disk = cache_dir.and_then(|d| match cache::DiskCache::open(d.clone()) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(target: "pith::sandbox", "WASM cache directory {} unusable: {e}", d.display());
                None
            }
        });
        Self {
            inner: Arc::new(RuntimeInner {
                engines: Mutex::new(HashMap::new()),
                compiled: Mutex::new(HashMap::new()),
                disk,
                stats: cache::Counters::default(),
            }),
        }
    }

    /// The process-wide runtime. Its disk cache is `$PITH_WASM_CACHE` if set (`off`
    /// disables it), else `$XDG_CACHE_HOME/pith/wasm`, else `$HOME/.cache/pith/wasm`.
    pub fn global() -> &'static WasmRuntime {
        static RT: OnceLock<WasmRuntime> = OnceLock::new();
        RT.get_or_init(|| WasmRuntime::new(default_cache_dir()))
    }

    /// Cache statistics (memory hits, disk hits, compilations, rejected disk entries).
    pub fn stats(&self) -> CacheStats {
        self.inner.stats.snapshot()
    }

    /// Forget the in-memory compiled components (the disk cache stays).
    pub fn clear_memory_cache(&self) {
        self.inner
            .compiled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The engine for a stack limit. Limits are rounded up to a power of two between
    /// 64 KiB and 64 MiB, so programs cannot make the process create unboundedly many
    /// engines (at most 11).
    fn engine(&self, stack_kb: u64) -> Result<Arc<EngineEntry>, InvocationError> {
        let stack_kb = engine_stack_kb(stack_kb);
        let mut engines = self
            .inner
            .engines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = engines.get(&stack_kb) {
            return Ok(e.clone());
        }
        let stack = usize::try_from(stack_kb.saturating_mul(1024)).unwrap_or(usize::MAX);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(stack)
            // The guest runs on a fiber stack: room for the wasm stack plus host frames.
            .async_stack_size(stack.saturating_add(1024 * 1024))
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config)
            .map_err(|e| setup(format!("cannot create the WASM engine: {e}")))?;
        let mut linker = Linker::<State>::new(&engine);
        // All of WASI 0.2, not only the proxy world's interfaces: components built with a
        // standard library for wasm32-wasip2 also import wasi:cli/environment, exit,
        // wasi:filesystem and wasi:sockets. Nothing is reachable through them: no
        // environment or arguments, no preopened directory, TCP/UDP/name lookup disabled.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| setup(format!("cannot link WASI: {e}")))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| setup(format!("cannot link wasi:http: {e}")))?;
        host_impl::add_to_linker(&mut linker)
            .map_err(|e| setup(format!("cannot link pith:host: {e}")))?;
        let config_hash = {
            use std::hash::Hash as _;
            let mut h = cache::Sha256Hasher::default();
            engine.precompile_compatibility_hash().hash(&mut h);
            h.finish_sha256()
        };
        ticked_engines()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(engine.clone());
        let entry = Arc::new(EngineEntry {
            engine,
            linker: Arc::new(linker),
            config_hash,
        });
        engines.insert(stack_kb, entry.clone());
        Ok(entry)
    }

    /// Compile (or fetch from the caches) the program's component and pre-link it.
    fn prepare(
        &self,
        program: &Program,
        bytes: &[u8],
    ) -> Result<(Arc<EngineEntry>, ProxyPre<State>), InvocationError> {
        let entry = self.engine(program.limits.stack_kb)?;
        let key = (
            program.code_hash,
            entry.config_hash,
            engine_stack_kb(program.limits.stack_kb),
        );
        if let Some(pre) = self
            .inner
            .compiled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            self.inner.stats.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok((entry.clone(), pre.clone()));
        }
        let component = cache::load_or_compile(
            &entry.engine,
            self.inner.disk.as_ref(),
            &program.code_hash,
            &entry.config_hash,
            bytes,
            &self.inner.stats,
        )?;
        let pre = entry.linker.instantiate_pre(&component).map_err(|e| {
            invalid(format!(
                "the component cannot be linked against wasi:http/proxy and pith:host: {e:#}"
            ))
        })?;
        let pre = ProxyPre::new(pre).map_err(|e| {
            invalid(format!(
                "the component does not export wasi:http/incoming-handler: {e:#}"
            ))
        })?;
        let mut compiled = self
            .inner
            .compiled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if compiled.len() >= MEMORY_CACHE_CAPACITY {
            if let Some(k) = compiled.keys().next().copied() {
                compiled.remove(&k);
            }
        }
        compiled.insert(key, pre.clone());
        Ok((entry, pre))
    }
}

/// The stack limit an engine is built with for a program's `stack_kb`.
fn engine_stack_kb(stack_kb: u64) -> u64 {
    stack_kb.clamp(64, 64 * 1024).next_power_of_two()
}

fn default_cache_dir() -> Option<PathBuf> {
    match std::env::var_os("PITH_WASM_CACHE") {
        Some(v) if v == "off" => return None,
        Some(v) if !v.is_empty() => return Some(PathBuf::from(v)),
        _ => {}
    }
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("pith").join("wasm"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("pith").join("wasm"))
}

fn setup(m: impl Into<String>) -> InvocationError {
    InvocationError::new(ErrorKind::InvalidProgram, m)
}

fn invalid(m: impl Into<String>) -> InvocationError {
    InvocationError::new(ErrorKind::InvalidProgram, m)
}

// ------------------------------------------------------------------------- per-invocation state

/// State shared between the store, the egress futures and the response collector.
pub(crate) struct Shared {
    limits: Limits,
    kill: Mutex<Option<InvocationError>>,
    killed: AtomicBool,
    pub(crate) egress_requests: AtomicU64,
    pub(crate) egress_bytes: AtomicU64,
    pub(crate) egress_denied: AtomicBool,
    pub(crate) kv_ops: AtomicU64,
    memory_peak: AtomicU64,
    pub(crate) logs: Mutex<io::LogBuf>,
}

impl Shared {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            kill: Mutex::new(None),
            killed: AtomicBool::new(false),
            egress_requests: AtomicU64::new(0),
            egress_bytes: AtomicU64::new(0),
            egress_denied: AtomicBool::new(false),
            kv_ops: AtomicU64::new(0),
            memory_peak: AtomicU64::new(0),
            logs: Mutex::new(io::LogBuf::new(limits.log_bytes)),
        }
    }

    /// End the invocation with `kind` (the first kill wins).
    pub(crate) fn kill(&self, kind: ErrorKind, message: impl Into<String>) {
        let mut k = self
            .kill
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if k.is_none() {
            *k = Some(InvocationError::new(kind, message));
            self.killed.store(true, Ordering::SeqCst);
        }
    }

    fn killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    fn take_kill(&self) -> Option<InvocationError> {
        self.kill
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }
}

/// Caps memories, tables and instances of one store.
struct Limiter {
    shared: Arc<Shared>,
    limit: usize,
    total: usize,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.total.saturating_add(desired.saturating_sub(current));
        if total > self.limit {
            self.shared.kill(
                ErrorKind::MemoryLimit,
                format!(
                    "memory limit of {} MiB exceeded (growing to {total} bytes)",
                    self.shared.limits.memory_mb
                ),
            );
            return Err(wasmtime::format_err!("memory limit exceeded"));
        }
        self.total = total;
        self.shared
            .memory_peak
            .fetch_max(total as u64, Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_INSTANCES
    }
}

/// The `T` of `Store<T>`.
pub(crate) struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: io::EgressHooks,
    limiter: Limiter,
    pub(crate) shared: Arc<Shared>,
    pub(crate) host: Host,
    pub(crate) program: ProgramRef,
    pub(crate) secrets: Arc<BTreeMap<String, String>>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

// ------------------------------------------------------------------------- instance

/// A WASM program ready to run: its component compiled and pre-linked. Each
/// [`WasmInstance::invoke`] instantiates it in a fresh store.
pub struct WasmInstance {
    program: Arc<Program>,
    host: Host,
    handle: tokio::runtime::Handle,
    engine: Arc<EngineEntry>,
    pre: ProxyPre<State>,
    invocations: u64,
}

impl std::fmt::Debug for WasmInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmInstance")
            .field("program", &self.program.id)
            .field("invocations", &self.invocations)
            .finish()
    }
}

impl WasmInstance {
    /// Compile (or load from `runtime`'s caches) the program's component. Fails with
    /// `invalid_program` when the program is not a component exporting
    /// `wasi:http/incoming-handler` with imports the host provides.
    pub fn new(
        program: Arc<Program>,
        host: Host,
        handle: tokio::runtime::Handle,
        runtime: &WasmRuntime,
    ) -> Result<Self, InvocationError> {
        let Some(bytes) = program.wasm.clone() else {
            return Err(invalid("not a WASM program"));
        };
        let (engine, pre) = runtime.prepare(&program, &bytes)?;
        Ok(Self {
            program,
            host,
            handle,
            engine,
            pre,
            invocations: 0,
        })
    }

    /// The program.
    pub fn program(&self) -> &Arc<Program> {
        &self.program
    }

    /// Invocations run so far.
    pub fn invocations(&self) -> u64 {
        self.invocations
    }

    /// Run one request. Blocks the calling thread (which must not be a tokio runtime
    /// thread); the guest runs on it, so its CPU time is this thread's.
    pub fn invoke(&mut self, req: &Request) -> Outcome {
        self.invocations += 1;
        let limits = self.program.limits;
        let shared = Arc::new(Shared::new(limits));
        let start = Instant::now();
        let cpu0 = crate::cputime::thread_cpu();
        let result = match self.build_store(shared.clone(), start, cpu0) {
            Ok(store) => {
                self.handle
                    .block_on(run(store, self.pre.clone(), req, shared.clone(), start))
            }
            Err(e) => Err(e),
        };
        let (cpu, wall) = (
            crate::cputime::thread_cpu().saturating_sub(cpu0),
            start.elapsed(),
        );
        let usage = Usage {
            memory_bytes: shared.memory_peak.load(Ordering::Relaxed),
            egress_requests: shared.egress_requests.load(Ordering::Relaxed),
            egress_bytes: shared.egress_bytes.load(Ordering::Relaxed),
            log_bytes: 0,
            kv_ops: shared.kv_ops.load(Ordering::Relaxed),
            ..Usage::timed(cpu, wall)
        };
        let (logs, log_bytes) = shared
            .logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .finish();
        Outcome {
            result,
            usage: Usage { log_bytes, ..usage },
            logs,
        }
    }

    fn build_store(
        &self,
        shared: Arc<Shared>,
        start: Instant,
        cpu0: Duration,
    ) -> Result<Store<State>, InvocationError> {
        let limits = self.program.limits;
        let wasi = WasiCtxBuilder::new()
            .stdout(io::LogStream::new(shared.clone(), io::LogLevel::Log))
            .stderr(io::LogStream::new(shared.clone(), io::LogLevel::Error))
            .wall_clock(io::HostClock(self.host.clock.clone()))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = State {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: io::EgressHooks::new(
                self.host.egress.clone(),
                self.program.egress.clone(),
                shared.clone(),
            ),
            limiter: Limiter {
                shared: shared.clone(),
                limit: limits.memory_bytes(),
                total: 0,
            },
            shared: shared.clone(),
            host: self.host.clone(),
            program: ProgramRef {
                id: self.program.id.clone(),
                code_hash: self.program.code_hash,
            },
            secrets: Arc::new(self.program.secrets.clone()),
        };
        let mut store = Store::new(&self.engine.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        let wall = Duration::from_millis(limits.wall_ms);
        let cpu = Duration::from_millis(limits.cpu_ms);
        store.epoch_deadline_callback(move |ctx| {
            let sh = &ctx.data().shared;
            if !sh.killed() {
                if start.elapsed() > wall {
                    sh.kill(
                        ErrorKind::WallTimeLimit,
                        format!("wall time limit of {} ms exceeded", limits.wall_ms),
                    );
                } else if crate::cputime::thread_cpu().saturating_sub(cpu0) > cpu {
                    sh.kill(
                        ErrorKind::CpuLimit,
                        format!("CPU limit of {} ms exceeded", limits.cpu_ms),
                    );
                }
            }
            if sh.killed() {
                return Err(wasmtime::format_err!("invocation ended by a limit"));
            }
            // No yield needed: the response collector runs whenever the guest waits (a
            // full body pipe makes its writes wait), and wall time is checked right here.
            Ok(UpdateDeadline::Continue(1))
        });
        Ok(store)
    }
}

/// Why the response collector stopped.
enum Collected {
    /// The handler returned without setting a response.
    NoResponse,
    /// The response, complete.
    Done(Response),
    /// The handler set an error instead of a response, or the body failed.
    Failed(String),
}

async fn collect_response(
    rx: tokio::sync::oneshot::Receiver<
        Result<
            http::Response<wasmtime_wasi_http::p2::body::HyperOutgoingBody>,
            wasmtime_wasi_http::p2::bindings::http::types::ErrorCode,
        >,
    >,
    shared: Arc<Shared>,
) -> Collected {
    let resp = match rx.await {
        Ok(Ok(r)) => r,
        Ok(Err(code)) => {
            return Collected::Failed(format!("the handler answered with error {code:?}"));
        }
        Err(_) => return Collected::NoResponse,
    };
    let limit = shared.limits.output_bytes;
    let (parts, mut body) = resp.into_parts();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut out: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    if (out.len() as u64).saturating_add(data.len() as u64) > limit {
                        shared.kill(
                            ErrorKind::OutputLimit,
                            format!("response body exceeds the output limit of {limit} bytes"),
                        );
                        return Collected::Failed("output limit".into());
                    }
                    out.extend_from_slice(&data);
                }
            }
            Err(e) => return Collected::Failed(format!("the response body failed: {e:?}")),
        }
    }
    Collected::Done(Response {
        status: parts.status.as_u16(),
        headers,
        body: out,
    })
}

fn incoming(
    req: &Request,
) -> Result<http::Request<wasmtime_wasi_http::p2::body::HyperIncomingBody>, InvocationError> {
    let mut b = http::Request::builder()
        .method(req.method.as_str())
        .uri(req.url.as_str());
    for (k, v) in &req.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let body = http_body_util::Full::new(Bytes::from(req.body.clone()))
        .map_err(|never: std::convert::Infallible| -> wasmtime_wasi_http::Error { match never {} })
        .boxed_unsync();
    b.body(body)
        .map_err(|e| InvocationError::new(ErrorKind::ProgramError, format!("bad request: {e}")))
}

async fn run(
    store: Store<State>,
    pre: ProxyPre<State>,
    req: &Request,
    shared: Arc<Shared>,
    start: Instant,
) -> Result<Response, InvocationError> {
    let limits = shared.limits;
    let hreq = incoming(req)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let guest = async move {
        // The store lives in this future: when the handler returns (or traps) it is
        // dropped, which closes any response body the guest left open.
        let mut store = store;
        let proxy = pre.instantiate_async(&mut store).await?;
        let r = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, hreq)?;
        let o = store.data_mut().http().new_response_outparam(tx)?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, r, o)
            .await
    };
    let collect = collect_response(rx, shared.clone());
    let wall = Duration::from_millis(limits.wall_ms).saturating_sub(start.elapsed());
    let joined = tokio::time::timeout(wall, async { tokio::join!(guest, collect) }).await;
    if let Some(k) = shared.take_kill() {
        return Err(k);
    }
    let denied = shared.egress_denied.load(Ordering::Relaxed);
    let program_error = |m: String| {
        if denied {
            InvocationError::new(
                ErrorKind::EgressDenied,
                format!("an outgoing request was refused by the egress policy; {m}"),
            )
        } else {
            InvocationError::new(ErrorKind::ProgramError, m)
        }
    };
    let (guest, collected) = match joined {
        Ok(x) => x,
        Err(_) => {
            return Err(InvocationError::new(
                ErrorKind::WallTimeLimit,
                format!("wall time limit of {} ms exceeded", limits.wall_ms),
            ));
        }
    };
    if let Err(e) = guest {
        if matches!(
            e.downcast_ref::<wasmtime::Trap>(),
            Some(wasmtime::Trap::StackOverflow)
        ) {
            return Err(InvocationError::new(
                ErrorKind::StackLimit,
                format!("stack limit of {} KiB exceeded", limits.stack_kb),
            ));
        }
        return Err(program_error(format!("the handler trapped: {e:?}")));
    }
    match collected {
        Collected::Done(r) => Ok(r),
        Collected::NoResponse => Err(program_error(
            "the handler returned without setting a response".into(),
        )),
        Collected::Failed(m) => Err(program_error(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_stack_sizes_are_bounded() {
        assert_eq!(engine_stack_kb(1), 64);
        assert_eq!(engine_stack_kb(512), 512);
        assert_eq!(engine_stack_kb(513), 1024);
        assert_eq!(engine_stack_kb(u64::MAX), 64 * 1024);
        let distinct: std::collections::BTreeSet<u64> = (1..200_000).map(engine_stack_kb).collect();
        assert_eq!(distinct.len(), 11);
    }

    #[test]
    fn log_lines() {
        let mut l = io::LogBuf::new(20);
        assert!(l.write(io::LogLevel::Log, b"a\r\nb"));
        assert!(l.write(io::LogLevel::Error, b"e1\n"));
        assert!(l.write(io::LogLevel::Log, b"c\n"));
        assert!(!l.write(io::LogLevel::Log, b"0123456789ab"));
        let (lines, used) = l.finish();
        let got: Vec<(&str, &str)> = lines
            .iter()
            .map(|x| (x.level.as_str(), x.message.as_str()))
            .collect();
        assert_eq!(got, [("log", "a"), ("error", "e1"), ("log", "bc")]);
        assert_eq!(used, 9);
    }
}
