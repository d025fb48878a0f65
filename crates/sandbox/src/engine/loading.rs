//! Compiled module bytecode by code hash (shared by all instances of a process), the
//! prelude compiled once, and module loading (every import refused).

use super::*;

// ------------------------------------------------------------------------- bytecode cache

/// Compiled module bytecode by code hash, shared by all instances of a process.
/// Bounded: at most `capacity` programs, oldest evicted first.
#[derive(Debug, Clone)]
pub struct BytecodeCache {
    inner: Arc<Mutex<CacheInner>>,
}

#[derive(Debug)]
pub(super) struct CacheInner {
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
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn get(&self, hash: &[u8; 32]) -> Option<Arc<[u8]>> {
        let mut c = self.lock();
        let r = c.map.get(hash).cloned();
        if r.is_some() {
            c.hits += 1;
        } else {
            c.misses += 1;
        }
        r
    }

    pub(super) fn insert(&self, hash: [u8; 32], code: Vec<u8>) {
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

pub(super) fn prelude_bytecode() -> Result<&'static [u8], String> {
    static CODE: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    CODE.get_or_init(|| {
        let rt = Runtime::new().map_err(|e| e.to_string())?;
        let ctx = Context::full(&rt).map_err(|e| e.to_string())?;
        ctx.with(|ctx| {
            let m = Module::declare(ctx.clone(), "pith:prelude", PRELUDE_SRC)
                .map_err(|e| describe_rust(&ctx, e))?;
            m.write(WriteOptions::default()).map_err(|e| e.to_string())
        })
    })
    .as_ref()
    .map(Vec::as_slice)
    .map_err(Clone::clone)
}

pub(super) fn describe_rust(ctx: &Ctx<'_>, e: rquickjs::Error) -> String {
    if e.is_exception() {
        let v = ctx.catch();
        if let Some(ex) = v.as_exception() {
            return format!(
                "{}\n{}",
                ex.message().unwrap_or_default(),
                ex.stack().unwrap_or_default()
            );
        }
        return format!("{v:?}");
    }
    e.to_string()
}

/// Refuses every module import.
pub(super) struct NoImports;

impl rquickjs::loader::Resolver for NoImports {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        Err(rquickjs::Error::new_resolving_message(
            base,
            name,
            "imports are not supported: a program is a single module",
        ))
    }
}

impl rquickjs::loader::Loader for NoImports {
    fn load<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, rquickjs::module::Declared>> {
        Err(rquickjs::Error::new_loading_message(
            name,
            "imports are not supported",
        ))
    }
}
