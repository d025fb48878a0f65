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

use crate::stackguard::{self, Band};
use rquickjs::function::Opt;
use rquickjs::prelude::Func;
use rquickjs::promise::PromiseState;
use rquickjs::{
    Array, Context, Ctx, Function, Module, Object, Persistent, Promise, Runtime, TypedArray, Value,
    WriteOptions,
};

use crate::alloc::{CountingAllocator, MemMeter};
use crate::bytes::bytes_of;
use crate::host::{
    EgressBudget, EgressError, EgressPolicy, Host, HostError, HttpRequest, HttpResponse, ProgramRef,
};
use crate::limits::{ErrorKind, InvocationError, Limits, Usage};

mod host_api;
mod loading;
mod state;

use host_api::host_object;
pub use loading::BytecodeCache;
use loading::{NoImports, describe_rust, prelude_bytecode};
use state::{Completion, Done, JsErr, State, done, host_err};

const PRELUDE_SRC: &str = include_str!("../js/prelude.js");

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
        ProgramRef {
            id: self.id.clone(),
            code_hash: self.code_hash,
        }
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
        Self {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
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
    /// Lowest usable address of the stack of the thread that owns this instance (an
    /// instance never leaves its thread), when the platform tells.
    stack_floor: Option<usize>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("program", &self.program.id)
            .field("invocations", &self.invocations)
            .finish()
    }
}

fn internal(e: impl std::fmt::Display) -> InvocationError {
    InvocationError::new(
        ErrorKind::InvalidProgram,
        format!("sandbox setup failed: {e}"),
    )
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
        let rt = Runtime::new_with_alloc(CountingAllocator {
            meter: meter.clone(),
        })
        .map_err(internal)?;
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
            ai_reserved: Cell::new(0),
            ai_prompt_tokens: Cell::new(0),
            ai_completion_tokens: Cell::new(0),
            stack_band: Cell::new(None),
        });
        {
            let st = st.clone();
            let meter = meter.clone();
            rt.set_interrupt_handler(Some(Box::new(move || {
                if meter.exceeded.get() {
                    st.kill(ErrorKind::MemoryLimit, "memory limit exceeded");
                    return true;
                }
                if st.stack_band.get().is_some_and(|b| b.touched_top()) {
                    st.kill(
                        ErrorKind::StackLimit,
                        format!("stack limit of {} KiB exceeded", st.limits.get().stack_kb),
                    );
                    return true;
                }
                st.killed() || st.over_time()
            })));
        }
        let prelude = prelude_bytecode().map_err(internal)?;
        let out = ctx.with(
            |ctx| -> Result<Persistent<Object<'static>>, InvocationError> {
                let g = ctx.globals();
                let h = host_object(&ctx, &st).map_err(|e| internal(describe_rust(&ctx, e)))?;
                g.set("__pith_host", h).map_err(internal)?;
                // SAFETY: the bytecode was produced by `prelude_bytecode` in this process from
                // our own source with the same engine version.
                let m = unsafe { Module::load(ctx.clone(), prelude) }
                    .map_err(|e| internal(describe_rust(&ctx, e)))?;
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
            },
        )?;
        Ok(Self {
            out,
            handler: None,
            ctx,
            _rt: rt,
            rx,
            st,
            meter,
            program,
            cache,
            broken: false,
            invocations: 0,
            stack_floor: stackguard::thread_stack_floor(),
        })
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
                result: Err(InvocationError::new(
                    ErrorKind::ProgramError,
                    "instance is no longer usable",
                )),
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
        st.ai_reserved.set(0);
        st.ai_prompt_tokens.set(0);
        st.ai_completion_tokens.set(0);
        self.meter.limit.set(limits.memory_bytes());
        self.meter.reset_peak();
        // The program's stack is measured from this frame; the band painted beyond it
        // tells afterwards whether a frame went deeper, even if the program caught the
        // engine's RangeError (see `stackguard`).
        let band = match Band::plan(
            stackguard::stack_pointer(),
            limits.stack_bytes(),
            self.stack_floor,
        ) {
            Ok(b) => b,
            Err(e) => {
                return Outcome {
                    result: Err(internal(e)),
                    usage: Usage::default(),
                    logs: Vec::new(),
                };
            }
        };
        if band.stack_bytes() < limits.stack_bytes() {
            tracing::warn!(
                program = %self.program.id,
                limit = limits.stack_bytes(),
                available = band.stack_bytes(),
                "thread stack smaller than the program's stack limit; the program gets less"
            );
        }
        self.ctx
            .with(|ctx| stackguard::set_engine_stack(&ctx, band.engine_max));
        band.paint();
        st.stack_band.set(Some(band));
        st.active.set(true);

        let result = self.run(req);

        st.active.set(false);
        st.stack_band.set(None);
        let stack_hit = band.touched();
        let wall = st.start.get().elapsed();
        let cpu = st.cpu();
        // A limit hit anywhere wins over what the program made of it.
        let result = if let Some(k) = st.kill.borrow_mut().take() {
            Err(k)
        } else if self.meter.exceeded.get() {
            Err(InvocationError::new(
                ErrorKind::MemoryLimit,
                format!("memory limit of {} MiB exceeded", limits.memory_mb),
            ))
        } else if stack_hit {
            Err(InvocationError::new(
                ErrorKind::StackLimit,
                format!("stack limit of {} KiB exceeded", limits.stack_kb),
            ))
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
            memory_bytes: self.meter.peak.get() as u64,
            egress_requests: st.egress_requests.get(),
            egress_bytes: st.egress_bytes.get(),
            log_bytes: st.log_bytes.get(),
            kv_ops: st.kv_ops.get(),
            ai_prompt_tokens: st.ai_prompt_tokens.get(),
            ai_completion_tokens: st.ai_completion_tokens.get(),
            ..Usage::timed(cpu, wall)
        };
        Outcome {
            result,
            usage,
            logs: std::mem::take(&mut *st.logs.borrow_mut()),
        }
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
                Some(code) => unsafe { Module::load(ctx.clone(), &code) }
                    .map_err(|e| self.invalid(&ctx, e))?,
                None => {
                    let m = Module::declare(
                        ctx.clone(),
                        "program.js",
                        program.source.as_bytes().to_vec(),
                    )
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
                return Err(InvocationError::new(
                    ErrorKind::InvalidProgram,
                    "the default export has no `fetch` function",
                ));
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
    fn classify_exception<'js>(
        &self,
        ctx: &Ctx<'js>,
        out: &Object<'js>,
        e: rquickjs::Error,
    ) -> InvocationError {
        if let Some(k) = self.st.kill.borrow().clone() {
            return k;
        }
        if !e.is_exception() {
            return program_error(e.to_string());
        }
        let v = ctx.catch();
        self.classify_value(ctx, out, v)
    }

    fn classify_value<'js>(
        &self,
        _ctx: &Ctx<'js>,
        out: &Object<'js>,
        v: Value<'js>,
    ) -> InvocationError {
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
                format!(
                    "stack limit of {} KiB exceeded",
                    self.program.limits.stack_kb
                ),
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
    fn run_loop<'js>(
        &self,
        ctx: &Ctx<'js>,
        out: &Object<'js>,
        p: &Promise<'js>,
    ) -> Result<Value<'js>, InvocationError> {
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
                return Err(InvocationError::new(
                    ErrorKind::MemoryLimit,
                    "memory limit exceeded",
                ));
            }
            match p.state() {
                PromiseState::Resolved => {
                    return p
                        .result::<Value<'js>>()
                        .unwrap_or_else(|| Err(rquickjs::Error::Unknown))
                        .map_err(internal);
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
                    if let Err(e) =
                        dispatch.call::<_, ()>((id as f64, true, Value::new_undefined(ctx.clone())))
                    {
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
                return Err(program_error(
                    "the handler's promise never settled (nothing left to wait for)",
                ));
            }
            let limits = st.limits.get();
            let wall_deadline = st.start.get() + Duration::from_millis(limits.wall_ms);
            let until = next_timer.map_or(wall_deadline, |t| t.min(wall_deadline));
            let wait_start = Instant::now();
            let got = self
                .rx
                .recv_timeout(until.saturating_duration_since(wait_start));
            st.waited.set(st.waited.get() + wait_start.elapsed());
            match got {
                Ok(c) => self.complete(ctx, &dispatch, out, c)?,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if Instant::now() >= wall_deadline {
                        st.kill(
                            ErrorKind::WallTimeLimit,
                            format!("wall time limit of {} ms exceeded", limits.wall_ms),
                        );
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(internal("host channel closed"));
                }
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
            st.fetch_inflight
                .set(st.fetch_inflight.get().saturating_sub(1));
            st.egress_requests.set(st.egress_requests.get() + reqs);
            st.egress_bytes
                .set(st.egress_bytes.get().saturating_add(bytes));
            if denied {
                st.egress_denied.set(true);
            }
            if st.egress_requests.get() > limits.egress_requests
                || st.egress_bytes.get() > limits.egress_bytes
            {
                st.kill(ErrorKind::EgressLimit, "egress limit exceeded");
            }
        }
        if let Some((reserved, prompt, completion)) = c.ai {
            // The reservation becomes what was really generated.
            st.ai_reserved.set(
                st.ai_reserved
                    .get()
                    .saturating_sub(reserved)
                    .saturating_add(completion),
            );
            st.ai_prompt_tokens
                .set(st.ai_prompt_tokens.get().saturating_add(prompt));
            st.ai_completion_tokens
                .set(st.ai_completion_tokens.get().saturating_add(completion));
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
        dispatch
            .call::<_, ()>((c.id as f64, ok, v))
            .map_err(|e| self.classify_exception(ctx, out, e))
    }
}

fn as_invalid(e: InvocationError) -> InvocationError {
    if e.kind == ErrorKind::ProgramError {
        InvocationError::new(
            ErrorKind::InvalidProgram,
            format!("module evaluation failed: {}", e.message),
        )
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
