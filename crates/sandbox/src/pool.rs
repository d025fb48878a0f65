//! A bounded pool of warm instances, each on its own thread (an engine runtime is not
//! `Send`).
//!
//! Isolation rule (docs/adr/0010-sandbox-isolation.md): an instance only ever runs one
//! program (same id, same code hash); module-level state of that program may survive
//! between its invocations, as in Workers; an instance whose invocation failed for any
//! reason (limit, uncaught exception) is destroyed, never reused; nothing crosses programs
//! because every instance has its own engine runtime, heap and globals.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, mpsc};

use crate::engine::{BytecodeCache, Outcome, Program, Request};
use crate::host::Host;
use crate::limits::{ErrorKind, InvocationError, Usage};
use crate::runner::AnyInstance;

/// Pool settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Live instances at most (busy plus idle, all programs). Default 64.
    pub max_instances: usize,
    /// Invocations served by one instance before it is retired. Default 10,000.
    pub max_invocations_per_instance: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_instances: 64,
            max_invocations_per_instance: 10_000,
        }
    }
}

type Key = (String, [u8; 32]);

struct Job {
    req: Request,
    reply: mpsc::Sender<(Outcome, bool)>,
}

struct Worker {
    tx: mpsc::Sender<Job>,
}

#[derive(Default)]
struct PoolState {
    idle: HashMap<Key, Vec<Worker>>,
    live: usize,
    created: u64,
}

struct Inner {
    host: Host,
    handle: tokio::runtime::Handle,
    cache: BytecodeCache,
    config: PoolConfig,
    state: Mutex<PoolState>,
    cv: Condvar,
}

/// Runs invocations on warm instances. Cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Pool {
    /// A pool using `host` for every program, spawning host futures on `handle`.
    pub fn new(
        host: Host,
        handle: tokio::runtime::Handle,
        cache: BytecodeCache,
        config: PoolConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                host,
                handle,
                cache,
                config,
                state: Mutex::new(PoolState::default()),
                cv: Condvar::new(),
            }),
        }
    }

    /// The bytecode cache.
    pub fn cache(&self) -> &BytecodeCache {
        &self.inner.cache
    }

    /// (live instances, instances created so far).
    pub fn stats(&self) -> (usize, u64) {
        let s = self.lock();
        (s.live, s.created)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drop the idle instances of a program (call after changing its secrets or config).
    pub fn evict_program(&self, id: &str) {
        let mut s = self.lock();
        let keys: Vec<Key> = s.idle.keys().filter(|k| k.0 == id).cloned().collect();
        for k in keys {
            if let Some(ws) = s.idle.remove(&k) {
                s.live -= ws.len();
            }
        }
        self.inner.cv.notify_all();
    }

    /// Run one invocation (blocking the calling thread until it ends).
    pub fn invoke(&self, program: &Arc<Program>, req: Request) -> Outcome {
        let key: Key = (program.id.clone(), program.code_hash);
        let worker = {
            let mut s = self.lock();
            loop {
                if let Some(w) = s.idle.get_mut(&key).and_then(Vec::pop) {
                    break w;
                }
                if s.live < self.inner.config.max_instances {
                    s.live += 1;
                    s.created += 1;
                    match self.spawn(program.clone()) {
                        Some(w) => break w,
                        None => {
                            s.live -= 1;
                            return failed("could not start an instance thread");
                        }
                    }
                }
                // Evict an idle instance of another program, if any.
                let other = s
                    .idle
                    .iter()
                    .find(|(_, v)| !v.is_empty())
                    .map(|(k, _)| k.clone());
                if let Some(k) = other {
                    if let Some(v) = s.idle.get_mut(&k) {
                        v.pop();
                        s.live -= 1;
                    }
                    continue;
                }
                s = self
                    .inner
                    .cv
                    .wait(s)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        let (reply, rx) = mpsc::channel();
        let outcome = if worker.tx.send(Job { req, reply }).is_ok() {
            rx.recv().ok()
        } else {
            None
        };
        let mut s = self.lock();
        let result = match outcome {
            Some((o, true)) => {
                s.idle.entry(key).or_default().push(worker);
                o
            }
            Some((o, false)) => {
                s.live -= 1;
                o
            }
            None => {
                s.live -= 1;
                failed("instance thread ended unexpectedly")
            }
        };
        drop(s);
        self.inner.cv.notify_one();
        result
    }

    fn spawn(&self, program: Arc<Program>) -> Option<Worker> {
        let (tx, rx) = mpsc::channel::<Job>();
        let host = self.inner.host.clone();
        let handle = self.inner.handle.clone();
        let cache = self.inner.cache.clone();
        let max_uses = self.inner.config.max_invocations_per_instance;
        let stack = program.limits.stack_bytes().saturating_add(4 * 1024 * 1024);
        std::thread::Builder::new()
            .name(format!(
                "pith-{}-{}",
                if program.is_wasm() { "wasm" } else { "js" },
                program.id
            ))
            .stack_size(stack)
            .spawn(move || {
                let mut instance = match AnyInstance::new(program, host, handle, cache) {
                    Ok(i) => i,
                    Err(e) => {
                        while let Ok(job) = rx.recv() {
                            let _ = job.reply.send((
                                Outcome {
                                    result: Err(e.clone()),
                                    usage: Usage::default(),
                                    logs: Vec::new(),
                                },
                                false,
                            ));
                        }
                        return;
                    }
                };
                while let Ok(job) = rx.recv() {
                    let o = instance.invoke(&job.req);
                    let reuse = instance.is_reusable() && instance.invocations() < max_uses;
                    let _ = job.reply.send((o, reuse));
                    if !reuse {
                        return;
                    }
                }
            })
            .ok()
            .map(|_| Worker { tx })
    }
}

fn failed(m: &str) -> Outcome {
    Outcome {
        result: Err(InvocationError::new(ErrorKind::ProgramError, m)),
        usage: Usage::default(),
        logs: Vec::new(),
    }
}
