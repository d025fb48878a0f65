//! Warm instances: reuse per program, the isolation rule, the bound, the bytecode cache.

mod common;
use std::sync::Arc;

use common::*;
use pith_sandbox::pool::{Pool, PoolConfig};
use pith_sandbox::{BytecodeCache, Host, Program, Request};

const COUNTER: &str = "let n = 0; export default { async fetch() { n += 1; globalThis.leak = (globalThis.leak ?? 0) + 1; return new Response(String(n)); } }";
const PEEK: &str =
    "export default { async fetch() { return new Response(String(globalThis.leak)); } }";

fn pool(max: usize) -> Pool {
    Pool::new(
        Host::local(b"s".to_vec()),
        tokio().handle().clone(),
        BytecodeCache::default(),
        PoolConfig {
            max_instances: max,
            max_invocations_per_instance: 10_000,
        },
    )
}

fn get() -> Request {
    Request::get("http://localhost/")
}

#[test]
fn warm_instance_keeps_module_state_of_its_program_only() {
    let pool = pool(4);
    let a = Arc::new(Program::new("a", COUNTER));
    let b = Arc::new(Program::new("b", PEEK));
    assert_eq!(body(&pool.invoke(&a, get())), "1");
    assert_eq!(body(&pool.invoke(&a, get())), "2");
    // Program b never sees a's global.
    assert_eq!(body(&pool.invoke(&b, get())), "undefined");
    assert_eq!(pool.stats().1, 2, "one instance per program");
    // Bytecode compiled once per code hash.
    let (hits, misses) = pool.cache().stats();
    assert_eq!(misses, 2);
    assert_eq!(hits, 0);
}

#[test]
fn failed_invocation_discards_the_instance() {
    let pool = pool(4);
    let p = Arc::new(Program::new(
        "f",
        "let n = 0; export default { async fetch(req) { n += 1; if (new URL(req.url).pathname === '/boom') throw new Error('x'); return new Response(String(n)); } }",
    ));
    assert_eq!(body(&pool.invoke(&p, get())), "1");
    assert!(
        pool.invoke(&p, Request::get("http://localhost/boom"))
            .result
            .is_err()
    );
    // A fresh instance: the counter starts again, the bytecode comes from the cache.
    assert_eq!(body(&pool.invoke(&p, get())), "1");
    assert_eq!(pool.stats().1, 2);
    assert_eq!(pool.cache().stats(), (1, 1));
}

#[test]
fn pool_is_bounded_and_evicts_idle_instances() {
    let pool = pool(2);
    for i in 0..5 {
        let p = Arc::new(Program::new(format!("p{i}"), COUNTER));
        assert_eq!(body(&pool.invoke(&p, get())), "1");
        assert!(pool.stats().0 <= 2);
    }
    // Concurrent callers beyond the bound wait instead of creating more instances.
    let p = Arc::new(Program::new(
        "busy",
        "export default { async fetch() { await new Promise(r => setTimeout(r, 30)); return new Response('ok'); } }",
    ));
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let pool = pool.clone();
            let p = p.clone();
            std::thread::spawn(move || body(&pool.invoke(&p, get())))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), "ok");
    }
    assert!(pool.stats().0 <= 2);
}
