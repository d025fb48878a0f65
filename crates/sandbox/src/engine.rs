//! One JavaScript instance: a QuickJS runtime and context with the prelude loaded, the
//! program's module, and the event loop that drives an invocation to its response.
//!
//! An [`Instance`] is not `Send`: it lives on the thread that created it (the pool gives
//! each instance its own thread).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rquickjs::function::Opt;
use rquickjs::prelude::Func;
use rquickjs::{
    Array, Context, Ctx, Function, Module, Object, Persistent, Promise, Runtime, TypedArray, Value, WriteOptions,
};
use rquickjs::promise::PromiseState;

use crate::alloc::{CountingAllocator, MemMeter};
use crate::bytes::bytes_of;
use crate::host::{EgressBudget, EgressError, EgressPolicy, Host, HostError, HttpRequest, HttpResponse, ProgramRef};
use crate::limits::{ErrorKind, InvocationError, Limits, Usage};

const PRELUDE_SRC: &str = include_str!("js/prelude.js");

/// How close to the engine's stack limit an engine allocation counts as the stack limit
/// being reached (capped at a quarter of the limit).
const STACK_MARGIN: usize = 16 * 1024;

/// A program as the sandbox runs it.
#[derive(Debug, Clone)]
pub struct Program {
    /// Program id (`env.program.id`).
    pub id: String,
    /// ES module source (empty for a WASM program).
    pub source: Arc<str>,
    /// The component of a WASM program (`None` for JavaScript).
    pub wasm: Option<Arc<[u8]>>,
    /// SHA-256 of `source`, or of the component bytes for a WASM program
    /// (`env.program.codeHash`, compiled-code cache key).
    pub code_hash: [u8; 32],
    /// `env.secrets`.
    pub secrets: BTreeMap<String, String>,
    /// Egress allow-list.
    pub egress: EgressPolicy,
    /// Limits per invocation.
    pub limits: Limits,
}

impl Program {
    /// A program with default limits, no secrets and no egress.
    pub fn new(id: impl Into<String>, source: impl Into<Arc<str>>) -> Self {
        let source = source.into();
        Self {
            id: id.into(),
            code_hash: crate::sha256(source.as_bytes()),
            source,
            wasm: None,
            secrets: BTreeMap::new(),
            egress: EgressPolicy::default(),
            limits: Limits::default(),
        }
    }

    /// A WASM program (a WASI 0.2 component exporting `wasi:http/incoming-handler`) with
    /// default limits, no secrets and no egress.
    pub fn from_wasm(id: impl Into<String>, component: impl Into<Arc<[u8]>>) -> Self {
        let component = component.into();
        Self {
            id: id.into(),
            code_hash: crate::sha256(&component),
            source: Arc::from(""),
            wasm: Some(component),
            secrets: BTreeMap::new(),
            egress: EgressPolicy::default(),
            limits: Limits::default(),
        }
    }

    /// Is this a WASM program?
    pub fn is_wasm(&self) -> bool {
        self.wasm.is_some()
    }

    /// `0x`-hex code hash.
    pub fn code_hash_hex(&self) -> String {
        format!("0x{}", hex::encode(self.code_hash))
    }

    fn program_ref(&self) -> ProgramRef {
        ProgramRef { id: self.id.clone(), code_hash: self.code_hash }
    }
}

/// An incoming request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Absolute URL (`http://localhost/path` for `pith run`).
    pub url: String,
    /// Header pairs.
    pub headers: Vec<(String, String)>,
    /// Body (empty for none).
    pub body: Vec<u8>,
}

impl Request {
    /// `GET url` without headers.
    pub fn get(url: impl Into<String>) -> Self {
        Self { method: "GET".into(), url: url.into(), headers: Vec::new(), body: Vec::new() }
    }
}

/// The program's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header pairs (lower-case names, in the order the program set them).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// One console line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// `log`, `info`, `warn`, `error` or `debug`.
    pub level: String,
    /// Formatted message.
    pub message: String,
}

/// Everything an invocation produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The response, or why there is none.
    pub result: Result<Response, InvocationError>,
    /// What it consumed.
    pub usage: Usage,
    /// Console output.
    pub logs: Vec<LogLine>,
}

// ------------------------------------------------------------------------- bytecode cache

/// Compiled module bytecode by code hash, shared by all instances of a process.
/// Bounded: at most `capacity` programs, oldest evicted first.
#[derive(Debug, Clone)]
pub struct BytecodeCache {
    inner: Arc<Mutex<CacheInner>>,
}

#[derive(Debug)]
struct CacheInner {
    map: HashMap<[u8; 32], Arc<[u8]>>,
    order: VecDeque<[u8; 32]>,
    capacity: usize,
    hits: u64,
    misses: u64,
}

impl Default for BytecodeCache {
    fn default() -> Self {
        Self::new(256)
    }
}

impl BytecodeCache {
    /// A cache holding at most `capacity` programs.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(CacheInner {
                map: HashMap::new(),
                order: VecDeque::new(),
                capacity: capacity.max(1),
                hits: 0,
                misses: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, hash: &[u8; 32]) -> Option<Arc<[u8]>> {
        let mut c = self.lock();
        let r = c.map.get(hash).cloned();
        if r.is_some() {
            c.hits += 1;
        } else {
            c.misses += 1;
        }
        r
    }

    fn insert(&self, hash: [u8; 32], code: Vec<u8>) {
        let mut c = self.lock();
        if c.map.contains_key(&hash) {
            return;
        }
        while c.map.len() >= c.capacity {
            match c.order.pop_front() {
                Some(old) => {
                    c.map.remove(&old);
                }
                None => break,
            }
        }
        c.map.insert(hash, code.into());
        c.order.push_back(hash);
    }

    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        let c = self.lock();
        (c.hits, c.misses)
    }

    /// Drop every entry.
    pub fn clear(&self) {
        let mut c = self.lock();
        c.map.clear();
        c.order.clear();
    }
}

fn prelude_bytecode() -> Result<&'static [u8], String> {
    static CODE: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    CODE.get_or_init(|| {
        let rt = Runtime::new().map_err(|e| e.to_string())?;
        let ctx = Context::full(&rt).map_err(|e| e.to_string())?;
        ctx.with(|ctx| {
            let m = Module::declare(ctx.clone(), "pith:prelude", PRELUDE_SRC).map_err(|e| describe_rust(&ctx, e))?;
            m.write(WriteOptions::default()).map_err(|e| e.to_string())
        })
    })
    .as_ref()
    .map(Vec::as_slice)
    .map_err(Clone::clone)
}

fn describe_rust(ctx: &Ctx<'_>, e: rquickjs::Error) -> String {
    if e.is_exception() {
        let v = ctx.catch();
        if let Some(ex) = v.as_exception() {
            return format!("{}\n{}", ex.message().unwrap_or_default(), ex.stack().unwrap_or_default());
        }
        return format!("{v:?}");
    }
    e.to_string()
}

/// Refuses every module import.
struct NoImports;

impl rquickjs::loader::Resolver for NoImports {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        Err(rquickjs::Error::new_resolving_message(base, name, "imports are not supported: a program is a single module"))
    }
}

impl rquickjs::loader::Loader for NoImports {
    fn load<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, rquickjs::module::Declared>> {
        Err(rquickjs::Error::new_loading_message(name, "imports are not supported"))
    }
}

// ------------------------------------------------------------------------- per-invocation state

enum Done {
    Undefined,
    Null,
    Bytes(Vec<u8>),
    Str(String),
    KvPage(Vec<String>, String),
    Derived(String, String),
    Http(HttpResponse),
}

struct JsErr {
    name: String,
    message: String,
}

struct Completion {
    id: u64,
    result: Result<Done, JsErr>,
    /// For fetch: requests and bytes to account, and whether the policy refused it.
    egress: Option<(u64, u64, bool)>,
}

struct State {
    host: Host,
    program: ProgramRef,
    egress_policy: EgressPolicy,
    handle: tokio::runtime::Handle,
    tx: mpsc::Sender<Completion>,

    limits: Cell<Limits>,
    active: Cell<bool>,
    start: Cell<Instant>,
    waited: Cell<Duration>,
    cpu_start: Cell<Duration>,
    kill: RefCell<Option<InvocationError>>,

    next_id: Cell<u64>,
    timers: RefCell<BTreeSet<(Instant, u64)>>,
    timer_at: RefCell<HashMap<u64, Instant>>,
    inflight: RefCell<HashMap<u64, tokio::task::AbortHandle>>,

    logs: RefCell<Vec<crate::engine::LogLine>>,
    log_bytes: Cell<u64>,
    egress_requests: Cell<u64>,
    egress_bytes: Cell<u64>,
    egress_denied: Cell<bool>,
    fetch_inflight: Cell<u64>,
    kv_ops: Cell<u64>,
}

impl State {
    fn kill(&self, kind: ErrorKind, message: impl Into<String>) {
        let mut k = self.kill.borrow_mut();
        if k.is_none() {
            *k = Some(InvocationError::new(kind, message));
        }
    }

    fn killed(&self) -> bool {
        self.kill.borrow().is_some()
    }

    /// Checked by the interrupt handler and between jobs.
    fn over_time(&self) -> bool {
        if !self.active.get() {
            return false;
        }
        let l = self.limits.get();
        let elapsed = self.start.get().elapsed();
        if elapsed > Duration::from_millis(l.wall_ms) {
            self.kill(ErrorKind::WallTimeLimit, format!("wall time limit of {} ms exceeded", l.wall_ms));
            return true;
        }
        if self.cpu() > Duration::from_millis(l.cpu_ms) {
            self.kill(ErrorKind::CpuLimit, format!("CPU limit of {} ms exceeded", l.cpu_ms));
            return true;
        }
        false
    }

    /// CPU time of this invocation (the instance's thread).
    fn cpu(&self) -> Duration {
        crate::cputime::thread_cpu().saturating_sub(self.cpu_start.get())
    }

    fn new_id(&self) -> u64 {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        id
    }

    fn spawn<F>(&self, id: u64, fut: F)
    where
        F: std::future::Future<Output = Completion> + Send + 'static,
    {
        let tx = self.tx.clone();
        let h = self.handle.spawn(async move {
            let c = fut.await;
            let _ = tx.send(Completion { id, ..c });
        });
        self.inflight.borrow_mut().insert(id, h.abort_handle());
    }

    fn count_kv(&self) -> Result<(), ()> {
        let n = self.kv_ops.get() + 1;
        let limit = self.limits.get().kv_ops;
        if n > limit {
            self.kill(ErrorKind::KvLimit, format!("kv operation limit of {limit} exceeded"));
            return Err(());
        }
        self.kv_ops.set(n);
        Ok(())
    }
}

fn host_err(e: HostError) -> JsErr {
    JsErr { name: "Error".into(), message: e.to_string() }
}

fn done(r: Result<Done, JsErr>) -> Completion {
    Completion { id: 0, result: r, egress: None }
}

// ------------------------------------------------------------------------- instance

/// A JavaScript instance for one program.
pub struct Instance {
    // Field order matters: JS values must drop before the context and runtime.
    out: Persistent<Object<'static>>,
    handler: Option<Persistent<Object<'static>>>,
    ctx: Context,
    /// Kept alive for the context; dropped last.
    _rt: Runtime,
    rx: mpsc::Receiver<Completion>,
    st: Rc<State>,
    meter: Rc<MemMeter>,
    program: Arc<Program>,
    cache: BytecodeCache,
    broken: bool,
    invocations: u64,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance").field("program", &self.program.id).field("invocations", &self.invocations).finish()
    }
}

fn internal(e: impl std::fmt::Display) -> InvocationError {
    InvocationError::new(ErrorKind::InvalidProgram, format!("sandbox setup failed: {e}"))
}

impl Instance {
    /// A fresh instance with the prelude loaded. The program's module is loaded by the
    /// first [`Instance::invoke`], under that invocation's limits.
    pub fn new(
        program: Arc<Program>,
        host: Host,
        handle: tokio::runtime::Handle,
        cache: BytecodeCache,
    ) -> Result<Self, InvocationError> {
        let meter = Rc::new(MemMeter::default());
        let limits = program.limits;
        meter.limit.set(limits.memory_bytes());
        let rt = Runtime::new_with_alloc(CountingAllocator { meter: meter.clone() }).map_err(internal)?;
        rt.set_max_stack_size(limits.stack_bytes());
        // Programs are single modules: every import is refused, including the name of
        // the already-loaded prelude.
        rt.set_loader(NoImports, NoImports);
        let ctx = Context::full(&rt).map_err(internal)?;
        let (tx, rx) = mpsc::channel();
        let st = Rc::new(State {
            host,
            program: program.program_ref(),
            egress_policy: program.egress.clone(),
            handle,
            tx,
            limits: Cell::new(limits),
            active: Cell::new(false),
            start: Cell::new(Instant::now()),
            waited: Cell::new(Duration::ZERO),
            cpu_start: Cell::new(Duration::ZERO),
            kill: RefCell::new(None),
            next_id: Cell::new(0),
            timers: RefCell::new(BTreeSet::new()),
            timer_at: RefCell::new(HashMap::new()),
            inflight: RefCell::new(HashMap::new()),
            logs: RefCell::new(Vec::new()),
            log_bytes: Cell::new(0),
            egress_requests: Cell::new(0),
            egress_bytes: Cell::new(0),
            egress_denied: Cell::new(false),
            fetch_inflight: Cell::new(0),
            kv_ops: Cell::new(0),
        });
        {
            let st = st.clone();
            let meter = meter.clone();
            rt.set_interrupt_handler(Some(Box::new(move || {
                if meter.exceeded.get() {
                    st.kill(ErrorKind::MemoryLimit, "memory limit exceeded");
                    return true;
                }
                if meter.stack_hit.get() {
                    st.kill(ErrorKind::StackLimit, format!("stack limit of {} KiB exceeded", st.limits.get().stack_kb));
                    return true;
                }
                st.killed() || st.over_time()
            })));
        }
        let prelude = prelude_bytecode().map_err(internal)?;
        let out = ctx.with(|ctx| -> Result<Persistent<Object<'static>>, InvocationError> {
            let g = ctx.globals();
            let h = host_object(&ctx, &st).map_err(|e| internal(describe_rust(&ctx, e)))?;
            g.set("__pith_host", h).map_err(internal)?;
            // SAFETY: the bytecode was produced by `prelude_bytecode` in this process from
            // our own source with the same engine version.
            let m = unsafe { Module::load(ctx.clone(), prelude) }.map_err(|e| internal(describe_rust(&ctx, e)))?;
            let (_, p) = m.eval().map_err(|e| internal(describe_rust(&ctx, e)))?;
            while ctx.execute_pending_job() {}
            if p.state() == PromiseState::Rejected {
                return Err(internal("prelude failed"));
            }
            let out: Object<'_> = g.get("__pith_out").map_err(internal)?;
            g.remove("__pith_out").map_err(internal)?;
            let setup: Function<'_> = out.get("setup").map_err(internal)?;
            let secrets = Object::new(ctx.clone()).map_err(internal)?;
            for (k, v) in &program.secrets {
                secrets.set(k.as_str(), v.as_str()).map_err(internal)?;
            }
            setup
                .call::<_, ()>((secrets, program.id.as_str(), program.code_hash_hex()))
                .map_err(|e| internal(describe_rust(&ctx, e)))?;
            Ok(Persistent::save(&ctx, out))
        })?;
        Ok(Self { out, handler: None, ctx, _rt: rt, rx, st, meter, program, cache, broken: false, invocations: 0 })
    }

    /// Can this instance serve another invocation? False after any failed invocation
    /// (see docs/adr/0010-sandbox-isolation.md).
    pub fn is_reusable(&self) -> bool {
        !self.broken
    }

    /// Invocations served so far.
    pub fn invocations(&self) -> u64 {
        self.invocations
    }

    /// The program this instance runs.
    pub fn program(&self) -> &Arc<Program> {
        &self.program
    }

    /// Run one invocation to completion.
    pub fn invoke(&mut self, req: &Request) -> Outcome {
        if self.broken {
            return Outcome {
                result: Err(InvocationError::new(ErrorKind::ProgramError, "instance is no longer usable")),
                usage: Usage::default(),
                logs: Vec::new(),
            };
        }
        self.invocations += 1;
        let limits = self.program.limits;
        let st = self.st.clone();
        st.limits.set(limits);
        st.start.set(Instant::now());
        st.waited.set(Duration::ZERO);
        st.cpu_start.set(crate::cputime::thread_cpu());
        *st.kill.borrow_mut() = None;
        st.logs.borrow_mut().clear();
        st.log_bytes.set(0);
        st.egress_requests.set(0);
        st.egress_bytes.set(0);
        st.egress_denied.set(false);
        st.fetch_inflight.set(0);
        st.kv_ops.set(0);
        self.meter.limit.set(limits.memory_bytes());
        self.meter.reset_peak();
        // The engine's stack limit lies `stack_bytes` below (about) this frame; an engine
        // allocation within STACK_MARGIN of it is the engine raising its stack overflow
        // error (see `alloc`), which ends the invocation even if the program catches it.
        let stack = limits.stack_bytes();
        let margin = STACK_MARGIN.min(stack / 4);
        self.meter.stack_floor.set(crate::alloc::stack_pointer().saturating_sub(stack).saturating_add(margin));
        st.active.set(true);

        let result = self.run(req);

        st.active.set(false);
        self.meter.stack_floor.set(0);
        let wall = st.start.get().elapsed();
        let cpu = st.cpu();
        // A limit hit anywhere wins over what the program made of it.
        let result = if let Some(k) = st.kill.borrow_mut().take() {
            Err(k)
        } else if self.meter.exceeded.get() {
            Err(InvocationError::new(ErrorKind::MemoryLimit, format!("memory limit of {} MiB exceeded", limits.memory_mb)))
        } else if self.meter.stack_hit.get() {
            Err(InvocationError::new(ErrorKind::StackLimit, format!("stack limit of {} KiB exceeded", limits.stack_kb)))
        } else {
            result
        };
        // Cancel what is still running and forget timers.
        for (_, h) in st.inflight.borrow_mut().drain() {
            h.abort();
        }
        st.timers.borrow_mut().clear();
        st.timer_at.borrow_mut().clear();
        while self.rx.try_recv().is_ok() {}
        if result.is_err() {
            self.broken = true;
        }
        let usage = Usage {
            cpu_ms: u64::try_from(cpu.as_millis()).unwrap_or(u64::MAX),
            wall_ms: u64::try_from(wall.as_millis()).unwrap_or(u64::MAX),
            cpu_us: u64::try_from(cpu.as_micros()).unwrap_or(u64::MAX),
            wall_us: u64::try_from(wall.as_micros()).unwrap_or(u64::MAX),
            memory_bytes: self.meter.peak.get() as u64,
            egress_requests: st.egress_requests.get(),
            egress_bytes: st.egress_bytes.get(),
            log_bytes: st.log_bytes.get(),
            kv_ops: st.kv_ops.get(),
        };
        Outcome { result, usage, logs: std::mem::take(&mut *st.logs.borrow_mut()) }
    }

    fn run(&mut self, req: &Request) -> Result<Response, InvocationError> {
        if self.handler.is_none() {
            let h = self.load()?;
            self.handler = Some(h);
        }
        let handler = self.handler.clone().ok_or_else(|| internal("no handler"))?;
        let out = self.out.clone();
        let output_limit = self.program.limits.output_bytes;
        let ctx = self.ctx.clone();
        ctx.with(|ctx| {
            let out = out.restore(&ctx).map_err(internal)?;
            let handler = handler.restore(&ctx).map_err(internal)?;
            let invoke: Function<'_> = out.get("invoke").map_err(internal)?;
            let headers: Vec<Vec<String>> =
                req.headers.iter().map(|(k, v)| vec![k.to_ascii_lowercase(), v.clone()]).collect();
            let body: Value<'_> = if req.body.is_empty() {
                Value::new_null(ctx.clone())
            } else {
                TypedArray::<u8>::new(ctx.clone(), req.body.clone()).map_err(internal)?.into_value()
            };
            let p: Result<Promise<'_>, _> = invoke.call((handler, req.method.as_str(), req.url.as_str(), headers, body));
            let p = match p {
                Ok(p) => p,
                Err(e) => return Err(self.classify_exception(&ctx, &out, e)),
            };
            let v = self.run_loop(&ctx, &out, &p)?;
            let arr = Array::from_value(v).map_err(|_| program_error("bad response"))?;
            let status: i32 = arr.get(0).map_err(|_| program_error("bad response status"))?;
            let headers: Vec<Vec<String>> = arr.get(1).map_err(|_| program_error("bad response headers"))?;
            let body: Value<'_> = arr.get(2).map_err(|_| program_error("bad response body"))?;
            let body = if body.is_null() || body.is_undefined() {
                Vec::new()
            } else if let Some(s) = body.as_string() {
                let s = s.to_string().map_err(|_| program_error("bad body string"))?;
                if s.len() as u64 > output_limit {
                    return Err(InvocationError::new(
                        ErrorKind::OutputLimit,
                        format!("response body of {} bytes exceeds the output limit of {output_limit} bytes", s.len()),
                    ));
                }
                s.into_bytes()
            } else {
                bytes_of(&body).ok_or_else(|| program_error("bad body bytes"))?
            };
            if body.len() as u64 > output_limit {
                return Err(InvocationError::new(
                    ErrorKind::OutputLimit,
                    format!("response body of {} bytes exceeds the output limit of {output_limit} bytes", body.len()),
                ));
            }
            let status = u16::try_from(status).map_err(|_| program_error("bad response status"))?;
            let headers = headers
                .into_iter()
                .filter_map(|mut kv| {
                    let v = kv.pop()?;
                    let k = kv.pop()?;
                    Some((k, v))
                })
                .collect();
            Ok(Response { status, headers, body })
        })
    }

    fn load(&mut self) -> Result<Persistent<Object<'static>>, InvocationError> {
        let out = self.out.clone();
        let ctx = self.ctx.clone();
        let program = self.program.clone();
        let cache = self.cache.clone();
        ctx.with(|ctx| {
            let out = out.restore(&ctx).map_err(internal)?;
            let module = match cache.get(&program.code_hash) {
                // SAFETY: cache entries are written only below, by `Module::write` in this
                // process, keyed by the SHA-256 of the source they were compiled from.
                Some(code) => unsafe { Module::load(ctx.clone(), &code) }.map_err(|e| self.invalid(&ctx, e))?,
                None => {
                    let m = Module::declare(ctx.clone(), "program.js", program.source.as_bytes().to_vec())
                        .map_err(|e| self.invalid(&ctx, e))?;
                    if let Ok(code) = m.write(WriteOptions::default()) {
                        cache.insert(program.code_hash, code);
                    }
                    m
                }
            };
            let (module, p) = match module.eval() {
                Ok(x) => x,
                Err(e) => {
                    let err = self.classify_exception(&ctx, &out, e);
                    return Err(as_invalid(err));
                }
            };
            self.run_loop(&ctx, &out, &p).map_err(as_invalid)?;
            let ns = module.namespace().map_err(internal)?;
            let default: Value<'_> = ns.get("default").map_err(internal)?;
            let Some(obj) = default.as_object() else {
                return Err(InvocationError::new(
                    ErrorKind::InvalidProgram,
                    "the module must `export default { async fetch(request, env, ctx) { ... } }`",
                ));
            };
            let f: Value<'_> = obj.get("fetch").map_err(internal)?;
            if !f.is_function() {
                return Err(InvocationError::new(ErrorKind::InvalidProgram, "the default export has no `fetch` function"));
            }
            Ok(Persistent::save(&ctx, obj.clone()))
        })
    }

    fn invalid(&self, ctx: &Ctx<'_>, e: rquickjs::Error) -> InvocationError {
        if let Some(k) = self.st.kill.borrow().clone() {
            return k;
        }
        InvocationError::new(ErrorKind::InvalidProgram, describe_rust(ctx, e))
    }

    /// Turn a thrown exception (pending on ctx) into an invocation error.
    fn classify_exception<'js>(&self, ctx: &Ctx<'js>, out: &Object<'js>, e: rquickjs::Error) -> InvocationError {
        if let Some(k) = self.st.kill.borrow().clone() {
            return k;
        }
        if !e.is_exception() {
            return program_error(e.to_string());
        }
        let v = ctx.catch();
        self.classify_value(ctx, out, v)
    }

    fn classify_value<'js>(&self, _ctx: &Ctx<'js>, out: &Object<'js>, v: Value<'js>) -> InvocationError {
        if let Some(k) = self.st.kill.borrow().clone() {
            return k;
        }
        if self.meter.exceeded.get() {
            return InvocationError::new(ErrorKind::MemoryLimit, "memory limit exceeded");
        }
        let (name, message): (String, String) = out
            .get::<_, Function<'_>>("describe")
            .and_then(|d| d.call::<_, Vec<String>>((v,)))
            .ok()
            .and_then(|mut v| {
                let m = v.pop()?;
                let n = v.pop()?;
                Some((n, m))
            })
            .unwrap_or_else(|| (String::new(), "uncaught exception".into()));
        if name == "RangeError" && message.contains("Maximum call stack size exceeded") {
            return InvocationError::new(
                ErrorKind::StackLimit,
                format!("stack limit of {} KiB exceeded", self.program.limits.stack_kb),
            );
        }
        if message.starts_with("InternalError: out of memory") {
            return InvocationError::new(ErrorKind::MemoryLimit, "memory limit exceeded");
        }
        if name == "EgressDenied" && self.st.egress_denied.get() {
            return InvocationError::new(ErrorKind::EgressDenied, message);
        }
        program_error(message)
    }

    /// Drive jobs, timers and host completions until `p` settles.
    fn run_loop<'js>(&self, ctx: &Ctx<'js>, out: &Object<'js>, p: &Promise<'js>) -> Result<Value<'js>, InvocationError> {
        let st = &*self.st;
        let dispatch: Function<'js> = out.get("dispatch").map_err(internal)?;
        loop {
            while ctx.execute_pending_job() {
                if st.killed() || self.meter.exceeded.get() || st.over_time() {
                    break;
                }
            }
            if let Some(k) = st.kill.borrow().clone() {
                return Err(k);
            }
            if self.meter.exceeded.get() {
                return Err(InvocationError::new(ErrorKind::MemoryLimit, "memory limit exceeded"));
            }
            match p.state() {
                PromiseState::Resolved => {
                    return p.result::<Value<'js>>().unwrap_or_else(|| Err(rquickjs::Error::Unknown)).map_err(internal);
                }
                PromiseState::Rejected => {
                    let _ = p.result::<Value<'js>>();
                    let v = ctx.catch();
                    return Err(self.classify_value(ctx, out, v));
                }
                PromiseState::Pending => {}
            }
            // Fire due timers.
            let now = Instant::now();
            let due: Vec<u64> = {
                let mut t = st.timers.borrow_mut();
                let mut ids = Vec::new();
                while let Some(&(at, id)) = t.first() {
                    if at > now {
                        break;
                    }
                    t.pop_first();
                    ids.push(id);
                }
                ids
            };
            if !due.is_empty() {
                for id in due {
                    st.timer_at.borrow_mut().remove(&id);
                    if let Err(e) = dispatch.call::<_, ()>((id as f64, true, Value::new_undefined(ctx.clone()))) {
                        return Err(self.classify_exception(ctx, out, e));
                    }
                    while ctx.execute_pending_job() {
                        if st.killed() || st.over_time() {
                            break;
                        }
                    }
                    if st.killed() || self.meter.exceeded.get() || st.over_time() {
                        break;
                    }
                }
                continue;
            }
            let next_timer = st.timers.borrow().first().map(|&(at, _)| at);
            if next_timer.is_none() && st.inflight.borrow().is_empty() {
                return Err(program_error("the handler's promise never settled (nothing left to wait for)"));
            }
            let limits = st.limits.get();
            let wall_deadline = st.start.get() + Duration::from_millis(limits.wall_ms);
            let until = next_timer.map_or(wall_deadline, |t| t.min(wall_deadline));
            let wait_start = Instant::now();
            let got = self.rx.recv_timeout(until.saturating_duration_since(wait_start));
            st.waited.set(st.waited.get() + wait_start.elapsed());
            match got {
                Ok(c) => self.complete(ctx, &dispatch, out, c)?,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if Instant::now() >= wall_deadline {
                        st.kill(ErrorKind::WallTimeLimit, format!("wall time limit of {} ms exceeded", limits.wall_ms));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(internal("host channel closed")),
            }
        }
    }

    fn complete<'js>(
        &self,
        ctx: &Ctx<'js>,
        dispatch: &Function<'js>,
        out: &Object<'js>,
        c: Completion,
    ) -> Result<(), InvocationError> {
        let st = &*self.st;
        if st.inflight.borrow_mut().remove(&c.id).is_none() {
            return Ok(());
        }
        let limits = st.limits.get();
        if let Some((reqs, bytes, denied)) = c.egress {
            st.fetch_inflight.set(st.fetch_inflight.get().saturating_sub(1));
            st.egress_requests.set(st.egress_requests.get() + reqs);
            st.egress_bytes.set(st.egress_bytes.get().saturating_add(bytes));
            if denied {
                st.egress_denied.set(true);
            }
            if st.egress_requests.get() > limits.egress_requests || st.egress_bytes.get() > limits.egress_bytes {
                st.kill(ErrorKind::EgressLimit, "egress limit exceeded");
            }
        }
        if let Err(JsErr { name, .. }) = &c.result {
            if name == "EgressLimit" {
                st.kill(ErrorKind::EgressLimit, "egress limit exceeded");
            }
        }
        if let Some(k) = st.kill.borrow().clone() {
            return Err(k);
        }
        let (ok, v) = match c.result {
            Ok(d) => (true, done_to_js(ctx, d).map_err(internal)?),
            Err(e) => {
                let o = Object::new(ctx.clone()).map_err(internal)?;
                o.set("name", e.name).map_err(internal)?;
                o.set("message", e.message).map_err(internal)?;
                (false, o.into_value())
            }
        };
        dispatch.call::<_, ()>((c.id as f64, ok, v)).map_err(|e| self.classify_exception(ctx, out, e))
    }
}

fn as_invalid(e: InvocationError) -> InvocationError {
    if e.kind == ErrorKind::ProgramError {
        InvocationError::new(ErrorKind::InvalidProgram, format!("module evaluation failed: {}", e.message))
    } else {
        e
    }
}

fn program_error(m: impl Into<String>) -> InvocationError {
    InvocationError::new(ErrorKind::ProgramError, m)
}

fn done_to_js<'js>(ctx: &Ctx<'js>, d: Done) -> rquickjs::Result<Value<'js>> {
    Ok(match d {
        Done::Undefined => Value::new_undefined(ctx.clone()),
        Done::Null => Value::new_null(ctx.clone()),
        Done::Bytes(b) => TypedArray::<u8>::new(ctx.clone(), b)?.into_value(),
        Done::Str(s) => rquickjs::String::from_str(ctx.clone(), &s)?.into_value(),
        Done::KvPage(keys, cursor) => {
            let a = Array::new(ctx.clone())?;
            a.set(0, keys)?;
            a.set(1, cursor)?;
            a.into_value()
        }
        Done::Derived(pk, addr) => {
            let a = Array::new(ctx.clone())?;
            a.set(0, pk)?;
            a.set(1, addr)?;
            a.into_value()
        }
        Done::Http(r) => {
            let a = Array::new(ctx.clone())?;
            a.set(0, r.status)?;
            a.set(1, r.status_text)?;
            let hs: Vec<Vec<String>> = r.headers.into_iter().map(|(k, v)| vec![k, v]).collect();
            a.set(2, hs)?;
            a.set(3, TypedArray::<u8>::new(ctx.clone(), r.body)?)?;
            a.set(4, r.url)?;
            a.set(5, r.redirected)?;
            a.into_value()
        }
    })
}

// ------------------------------------------------------------------------- host primitives

fn throw_type(ctx: &Ctx<'_>, m: &str) -> rquickjs::Error {
    rquickjs::Exception::throw_type(ctx, m)
}

fn host_object<'js>(ctx: &Ctx<'js>, st: &Rc<State>) -> rquickjs::Result<Object<'js>> {
    let h = Object::new(ctx.clone())?;
    {
        let st = st.clone();
        h.set(
            "log",
            Func::from(move |ctx: Ctx<'js>, level: String, msg: String| -> rquickjs::Result<()> {
                let limit = st.limits.get().log_bytes;
                let n = st.log_bytes.get().saturating_add(msg.len() as u64);
                if n > limit {
                    st.kill(ErrorKind::LogLimit, format!("log limit of {limit} bytes exceeded"));
                    return Err(rquickjs::Exception::throw_internal(&ctx, "log limit exceeded"));
                }
                st.log_bytes.set(n);
                st.logs.borrow_mut().push(LogLine { level, message: msg });
                Ok(())
            }),
        )?;
    }
    {
        let st = st.clone();
        h.set(
            "start",
            Func::from(move |ctx: Ctx<'js>, name: String, arg: Value<'js>| -> rquickjs::Result<f64> {
                start_op(&ctx, &st, &name, arg).map(|id| id as f64)
            }),
        )?;
    }
    {
        let st = st.clone();
        h.set(
            "clearTimer",
            Func::from(move |id: f64| {
                let id = id as u64;
                if let Some(at) = st.timer_at.borrow_mut().remove(&id) {
                    st.timers.borrow_mut().remove(&(at, id));
                }
            }),
        )?;
    }
    {
        let st = st.clone();
        h.set(
            "randomBytes",
            Func::from(move |ctx: Ctx<'js>, n: usize| -> rquickjs::Result<TypedArray<'js, u8>> {
                let mut b = vec![0u8; n.min(65536)];
                st.host.random.fill(&mut b);
                TypedArray::new(ctx, b)
            }),
        )?;
    }
    {
        let st = st.clone();
        h.set("now", Func::from(move || st.host.clock.now_ms()))?;
    }
    h.set(
        "digest",
        Func::from(|ctx: Ctx<'js>, alg: String, data: Value<'js>| -> rquickjs::Result<rquickjs::ArrayBuffer<'js>> {
            use sha2::Digest as _;
            let b = bytes_of(&data).ok_or_else(|| throw_type(&ctx, "digest: expected bytes"))?;
            let d: Vec<u8> = match alg.as_str() {
                "SHA-1" => sha1_digest(&b).to_vec(),
                "SHA-256" => sha2::Sha256::digest(&b).to_vec(),
                "SHA-384" => sha2::Sha384::digest(&b).to_vec(),
                "SHA-512" => sha2::Sha512::digest(&b).to_vec(),
                _ => return Err(throw_type(&ctx, "unsupported digest")),
            };
            rquickjs::ArrayBuffer::new(ctx, d)
        }),
    )?;
    h.set(
        "utf8Encode",
        Func::from(|ctx: Ctx<'js>, s: rquickjs::String<'js>| -> rquickjs::Result<TypedArray<'js, u8>> {
            // Lone surrogates become U+FFFD (what TextEncoder does).
            let s = s.to_string().unwrap_or_default();
            TypedArray::new(ctx, s.into_bytes())
        }),
    )?;
    h.set(
        "utf8Decode",
        Func::from(|ctx: Ctx<'js>, data: Value<'js>, fatal: bool, ignore_bom: bool| -> rquickjs::Result<Value<'js>> {
            let b = bytes_of(&data).ok_or_else(|| throw_type(&ctx, "decode: expected bytes"))?;
            let b = if !ignore_bom && b.starts_with(&[0xEF, 0xBB, 0xBF]) { &b[3..] } else { &b[..] };
            let s = if fatal {
                match std::str::from_utf8(b) {
                    Ok(s) => std::borrow::Cow::Borrowed(s),
                    Err(_) => return Ok(Value::new_null(ctx)),
                }
            } else {
                String::from_utf8_lossy(b)
            };
            Ok(rquickjs::String::from_str(ctx, &s)?.into_value())
        }),
    )?;
    h.set(
        "atob",
        Func::from(|ctx: Ctx<'js>, s: String| -> rquickjs::Result<Value<'js>> {
            match crate::bytes::forgiving_base64_decode(&s) {
                Some(b) => {
                    let latin1: String = b.iter().map(|&c| char::from(c)).collect();
                    Ok(rquickjs::String::from_str(ctx, &latin1)?.into_value())
                }
                None => Ok(Value::new_null(ctx)),
            }
        }),
    )?;
    h.set(
        "btoa",
        Func::from(|ctx: Ctx<'js>, s: String| -> rquickjs::Result<Value<'js>> {
            let mut bytes = Vec::with_capacity(s.len());
            for c in s.chars() {
                match u8::try_from(u32::from(c)) {
                    Ok(b) => bytes.push(b),
                    Err(_) => return Ok(Value::new_null(ctx)),
                }
            }
            use base64::Engine as _;
            let e = base64::engine::general_purpose::STANDARD.encode(bytes);
            Ok(rquickjs::String::from_str(ctx, &e)?.into_value())
        }),
    )?;
    h.set(
        "urlParse",
        Func::from(|ctx: Ctx<'js>, input: String, base: Opt<String>| -> rquickjs::Result<Value<'js>> {
            let parsed = match base.0 {
                Some(b) => url::Url::parse(&b).and_then(|b| b.join(&input)),
                None => url::Url::parse(&input),
            };
            match parsed {
                Ok(u) => url_components(&ctx, &u),
                Err(_) => Ok(Value::new_null(ctx)),
            }
        }),
    )?;
    h.set(
        "urlSet",
        Func::from(|ctx: Ctx<'js>, href: String, part: String, value: String| -> rquickjs::Result<Value<'js>> {
            let Ok(mut u) = url::Url::parse(&href) else { return Ok(Value::new_null(ctx)) };
            let ok = match part.as_str() {
                "href" => match url::Url::parse(&value) {
                    Ok(n) => {
                        u = n;
                        true
                    }
                    Err(_) => false,
                },
                "protocol" => u.set_scheme(value.trim_end_matches(':')).is_ok(),
                "username" => u.set_username(&value).is_ok(),
                "password" => u.set_password(Some(&value)).is_ok(),
                "host" => url::quirks::set_host(&mut u, &value).is_ok(),
                "hostname" => url::quirks::set_hostname(&mut u, &value).is_ok(),
                "port" => url::quirks::set_port(&mut u, &value).is_ok(),
                "pathname" => {
                    url::quirks::set_pathname(&mut u, &value);
                    true
                }
                "search" => {
                    url::quirks::set_search(&mut u, &value);
                    true
                }
                "hash" => {
                    url::quirks::set_hash(&mut u, &value);
                    true
                }
                _ => false,
            };
            if ok { url_components(&ctx, &u) } else { Ok(Value::new_null(ctx)) }
        }),
    )?;
    Ok(h)
}

fn url_components<'js>(ctx: &Ctx<'js>, u: &url::Url) -> rquickjs::Result<Value<'js>> {
    use url::quirks as q;
    let parts = [
        q::href(u),
        q::protocol(u),
        q::username(u),
        q::password(u),
        q::host(u),
        q::hostname(u),
        q::port(u),
        q::pathname(u),
        q::search(u),
        q::hash(u),
    ];
    let a = Array::new(ctx.clone())?;
    for (i, p) in parts.iter().enumerate() {
        a.set(i, *p)?;
    }
    a.set(10, q::origin(u))?;
    Ok(a.into_value())
}

fn sha1_digest(b: &[u8]) -> [u8; 20] {
    crate::bytes::sha1(b)
}

fn arg_list<'js>(v: &Value<'js>) -> Option<Array<'js>> {
    v.as_array().cloned()
}

fn start_op<'js>(ctx: &Ctx<'js>, st: &Rc<State>, name: &str, arg: Value<'js>) -> rquickjs::Result<u64> {
    let bad = |m: &str| throw_type(ctx, m);
    match name {
        "timer" => {
            let a = arg_list(&arg).ok_or_else(|| bad("timer"))?;
            let ms: f64 = a.get(0)?;
            let reuse: f64 = a.get(1)?;
            let id = if reuse > 0.0 { reuse as u64 } else { st.new_id() };
            let at = Instant::now() + Duration::from_secs_f64((ms.max(0.0) / 1000.0).min(1.0e7));
            st.timers.borrow_mut().insert((at, id));
            st.timer_at.borrow_mut().insert(id, at);
            Ok(id)
        }
        "fetch" => {
            let a = arg_list(&arg).ok_or_else(|| bad("fetch"))?;
            let method: String = a.get(0)?;
            let url: String = a.get(1)?;
            let headers: Vec<Vec<String>> = a.get(2)?;
            let body_v: Value<'js> = a.get(3)?;
            let redirect: String = a.get(4)?;
            let body = if body_v.is_null() { Vec::new() } else { bytes_of(&body_v).ok_or_else(|| bad("fetch body"))? };
            let limits = st.limits.get();
            let used = st.egress_requests.get() + st.fetch_inflight.get();
            if used >= limits.egress_requests {
                st.kill(ErrorKind::EgressLimit, format!("egress request limit of {} exceeded", limits.egress_requests));
                return Err(rquickjs::Exception::throw_internal(ctx, "egress limit exceeded"));
            }
            if redirect == "error" {
                return Err(bad("fetch: redirect mode \"error\" is not supported"));
            }
            st.fetch_inflight.set(st.fetch_inflight.get() + 1);
            let budget = EgressBudget {
                requests: limits.egress_requests - used,
                bytes: limits.egress_bytes.saturating_sub(st.egress_bytes.get()),
            };
            let req = HttpRequest {
                method,
                url,
                headers: headers
                    .into_iter()
                    .filter_map(|mut kv| {
                        let v = kv.pop()?;
                        let k = kv.pop()?;
                        Some((k, v))
                    })
                    .collect(),
                body,
                follow_redirects: redirect != "manual",
            };
            let egress = st.host.egress.clone();
            let policy = st.egress_policy.clone();
            let id = st.new_id();
            st.spawn(id, async move {
                match egress.fetch(&policy, req, budget).await {
                    Ok(r) => {
                        let acct = (r.requests, r.bytes, false);
                        Completion { id: 0, result: Ok(Done::Http(r)), egress: Some(acct) }
                    }
                    Err(EgressError::Denied { message, requests, bytes }) => Completion {
                        id: 0,
                        result: Err(JsErr { name: "EgressDenied".into(), message }),
                        egress: Some((requests, bytes, true)),
                    },
                    Err(EgressError::Limit(m)) => Completion {
                        id: 0,
                        result: Err(JsErr { name: "EgressLimit".into(), message: m }),
                        egress: Some((0, 0, false)),
                    },
                    Err(EgressError::Failed(m)) => Completion {
                        id: 0,
                        result: Err(JsErr { name: "TypeError".into(), message: m }),
                        egress: Some((1, 0, false)),
                    },
                }
            });
            Ok(id)
        }
        "kv_get" | "kv_delete" => {
            if st.count_kv().is_err() {
                return Err(rquickjs::Exception::throw_internal(ctx, "kv limit exceeded"));
            }
            let key: String = arg.get()?;
            let kv = st.host.kv.clone();
            let p = st.program.clone();
            let id = st.new_id();
            let get = name == "kv_get";
            st.spawn(id, async move {
                done(if get {
                    kv.get(&p, &key).await.map(|v| v.map_or(Done::Null, Done::Bytes)).map_err(host_err)
                } else {
                    kv.delete(&p, &key).await.map(|()| Done::Undefined).map_err(host_err)
                })
            });
            Ok(id)
        }
        "kv_put" => {
            if st.count_kv().is_err() {
                return Err(rquickjs::Exception::throw_internal(ctx, "kv limit exceeded"));
            }
            let a = arg_list(&arg).ok_or_else(|| bad("kv_put"))?;
            let key: String = a.get(0)?;
            let v: Value<'js> = a.get(1)?;
            let value = bytes_of(&v).ok_or_else(|| bad("kv.put: value"))?;
            let kv = st.host.kv.clone();
            let p = st.program.clone();
            let id = st.new_id();
            st.spawn(id, async move { done(kv.put(&p, &key, value).await.map(|()| Done::Undefined).map_err(host_err)) });
            Ok(id)
        }
        "kv_list" => {
            if st.count_kv().is_err() {
                return Err(rquickjs::Exception::throw_internal(ctx, "kv limit exceeded"));
            }
            let a = arg_list(&arg).ok_or_else(|| bad("kv_list"))?;
            let prefix: String = a.get(0)?;
            let limit: i64 = a.get(1)?;
            let cursor: String = a.get(2)?;
            let kv = st.host.kv.clone();
            let p = st.program.clone();
            let id = st.new_id();
            st.spawn(id, async move {
                let limit = usize::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
                done(kv.list(&p, &prefix, limit, &cursor).await.map(|pg| Done::KvPage(pg.keys, pg.cursor)).map_err(host_err))
            });
            Ok(id)
        }
        "derive" => {
            let path: String = arg.get()?;
            let keys = st.host.keys.clone();
            let p = st.program.clone();
            let id = st.new_id();
            st.spawn(id, async move {
                done(
                    keys.derive(&p, &path)
                        .await
                        .map(|d| Done::Derived(format!("0x{}", hex::encode(&d.public_key)), crate::eth::checksum_address(&d.address)))
                        .map_err(host_err),
                )
            });
            Ok(id)
        }
        "sign" | "sign_typed_data" => {
            let a = arg_list(&arg).ok_or_else(|| bad(name))?;
            let path: String = a.get(0)?;
            let digest = if name == "sign" {
                let v: Value<'js> = a.get(1)?;
                let msg = bytes_of(&v).ok_or_else(|| bad("sign: bytes"))?;
                crate::eth::personal_message_hash(&msg)
            } else {
                let json: String = a.get(1)?;
                let td: serde_json::Value = serde_json::from_str(&json).map_err(|e| bad(&format!("signTypedData: {e}")))?;
                crate::eip712::typed_data_hash(&td).map_err(|e| bad(&format!("signTypedData: {e}")))?
            };
            let keys = st.host.keys.clone();
            let p = st.program.clone();
            let id = st.new_id();
            st.spawn(id, async move {
                done(keys.sign_digest(&p, &path, digest).await.map(|s| Done::Str(format!("0x{}", hex::encode(s)))).map_err(host_err))
            });
            Ok(id)
        }
        "attestation" => {
            let data = bytes_of(&arg).ok_or_else(|| bad("attestation: bytes"))?;
            if data.len() > 64 {
                return Err(bad("attestation: report data is at most 64 bytes"));
            }
            let att = st.host.attestation.clone();
            let p = st.program.clone();
            let id = st.new_id();
            st.spawn(id, async move { done(att.attest(&p, data).await.map(Done::Bytes).map_err(host_err)) });
            Ok(id)
        }
        "eth_call" | "send_transaction" => {
            let json: String = arg.get()?;
            let tx: serde_json::Value = serde_json::from_str(&json).map_err(|e| bad(&e.to_string()))?;
            let chain = st.host.chain.clone();
            let p = st.program.clone();
            let id = st.new_id();
            let call = name == "eth_call";
            st.spawn(id, async move {
                let r = if call { chain.call(&p, tx).await } else { chain.send_transaction(&p, tx).await };
                done(r.map(Done::Str).map_err(host_err))
            });
            Ok(id)
        }
        other => Err(bad(&format!("unknown host op {other}"))),
    }
}
