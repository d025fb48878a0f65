//! Per-invocation state shared by the instance's event loop and the host primitives:
//! limits and clocks, the kill switch, timers, operations in flight, logs and counters.

use super::*;

// ------------------------------------------------------------------------- per-invocation state

pub(super) enum Done {
    Undefined,
    Null,
    Bytes(Vec<u8>),
    Str(String),
    KvPage(Vec<String>, String),
    Derived(String, String),
    Http(HttpResponse),
}

pub(super) struct JsErr {
    pub(super) name: String,
    pub(super) message: String,
}

pub(super) struct Completion {
    pub(super) id: u64,
    pub(super) result: Result<Done, JsErr>,
    /// For fetch: requests and bytes to account, and whether the policy refused it.
    pub(super) egress: Option<(u64, u64, bool)>,
}

pub(super) struct State {
    pub(super) host: Host,
    pub(super) program: ProgramRef,
    pub(super) egress_policy: EgressPolicy,
    pub(super) handle: tokio::runtime::Handle,
    pub(super) tx: mpsc::Sender<Completion>,

    pub(super) limits: Cell<Limits>,
    pub(super) active: Cell<bool>,
    pub(super) start: Cell<Instant>,
    pub(super) waited: Cell<Duration>,
    pub(super) cpu_start: Cell<Duration>,
    pub(super) kill: RefCell<Option<InvocationError>>,

    pub(super) next_id: Cell<u64>,
    pub(super) timers: RefCell<BTreeSet<(Instant, u64)>>,
    pub(super) timer_at: RefCell<HashMap<u64, Instant>>,
    pub(super) inflight: RefCell<HashMap<u64, tokio::task::AbortHandle>>,

    pub(super) logs: RefCell<Vec<crate::engine::LogLine>>,
    pub(super) log_bytes: Cell<u64>,
    pub(super) egress_requests: Cell<u64>,
    pub(super) egress_bytes: Cell<u64>,
    pub(super) egress_denied: Cell<bool>,
    pub(super) fetch_inflight: Cell<u64>,
    pub(super) kv_ops: Cell<u64>,
    /// The band painted beyond the program's stack during an invocation.
    pub(super) stack_band: Cell<Option<crate::stackguard::Band>>,
}

impl State {
    pub(super) fn kill(&self, kind: ErrorKind, message: impl Into<String>) {
        let mut k = self.kill.borrow_mut();
        if k.is_none() {
            *k = Some(InvocationError::new(kind, message));
        }
    }

    pub(super) fn killed(&self) -> bool {
        self.kill.borrow().is_some()
    }

    /// Checked by the interrupt handler and between jobs.
    pub(super) fn over_time(&self) -> bool {
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
    pub(super) fn cpu(&self) -> Duration {
        crate::cputime::thread_cpu().saturating_sub(self.cpu_start.get())
    }

    pub(super) fn new_id(&self) -> u64 {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        id
    }

    pub(super) fn spawn<F>(&self, id: u64, fut: F)
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

    pub(super) fn count_kv(&self) -> Result<(), ()> {
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

pub(super) fn host_err(e: HostError) -> JsErr {
    JsErr { name: "Error".into(), message: e.to_string() }
}

pub(super) fn done(r: Result<Done, JsErr>) -> Completion {
    Completion { id: 0, result: r, egress: None }
}
