//! The hostile-program suite: every program ends with the expected error kind, and the
//! sandbox's own usage figures show it stopped within 1.2x of the limit. No wall-clock
//! assertions: only the sandbox's accounting is checked.

mod common;
use common::*;
use pith_sandbox::{ErrorKind, Outcome};

fn handler(body: &str) -> String {
    format!("export default {{ async fetch(request, env, ctx) {{ {body} }} }}")
}

fn within(used: u64, limit: u64) -> bool {
    used as f64 <= limit as f64 * 1.2
}

/// The CPU budget of the CPU-bound hostile programs. Thread CPU time on a VM also counts
/// kernel work done for the thread and time stolen by the hypervisor, in slices the
/// sandbox cannot interrupt; at a 100 ms budget one such 28 ms slice on a loaded 2-core CI
/// machine broke the 1.2x bar (timer_flood used 128 ms). At 400 ms the bar leaves 80 ms.
const CPU_MS: u64 = 400;

fn expect_cpu(o: &Outcome, limit_ms: u64) {
    assert_eq!(kind(o), ErrorKind::CpuLimit, "{o:?}");
    assert!(
        o.usage.cpu_ms >= limit_ms,
        "stopped before the limit: {:?}",
        o.usage
    );
    assert!(
        within(o.usage.cpu_ms, limit_ms),
        "cpu {} ms over 1.2x of {limit_ms}",
        o.usage.cpu_ms
    );
}

#[test]
fn infinite_loop() {
    let o = run_limits(&handler("for (;;) {}"), |l| l.cpu_ms = CPU_MS);
    expect_cpu(&o, CPU_MS);
}

#[test]
fn infinite_loop_catching_everything() {
    let o = run_limits(
        &handler("for (;;) { try { for (;;) {} } catch (e) {} }"),
        |l| l.cpu_ms = CPU_MS,
    );
    expect_cpu(&o, CPU_MS);
}

#[test]
fn infinite_loop_at_top_level() {
    let o = run_limits("for (;;) {} export default { fetch() {} }", |l| {
        l.cpu_ms = CPU_MS
    });
    expect_cpu(&o, CPU_MS);
}

#[test]
fn catastrophic_regex() {
    let o = run_limits(
        &handler(r#"/^(a+)+$/.test("a".repeat(40) + "!"); return new Response("done");"#),
        |l| l.cpu_ms = CPU_MS,
    );
    expect_cpu(&o, CPU_MS);
}

#[test]
fn promise_flood() {
    // Each job queues the next: the microtask queue never drains, memory stays flat.
    let o = run_limits(
        &handler(
            "const f = () => { Promise.resolve().then(f); }; f(); await new Promise(() => {});",
        ),
        |l| l.cpu_ms = CPU_MS,
    );
    expect_cpu(&o, CPU_MS);
}

#[test]
fn promise_chain_flood_that_retains_memory_hits_memory_limit() {
    // `then(f)` resolved with f's own promise: each level adopts the next, so the chain is
    // never collected. It grows by hundreds of MB a second and meets the memory limit
    // long before the CPU budget (at a 100 ms budget it met the CPU limit first).
    let o = run_limits(
        &handler("const f = () => Promise.resolve().then(f); f(); await new Promise(() => {});"),
        |l| {
            l.cpu_ms = 5_000;
            l.memory_mb = 32;
        },
    );
    assert_eq!(kind(&o), ErrorKind::MemoryLimit, "{o:?}");
    assert!(within(o.usage.memory_bytes, 32 << 20), "{:?}", o.usage);
}

#[test]
fn timer_flood() {
    let o = run_limits(
        &handler(
            "const f = () => { setTimeout(f, 0); setTimeout(f, 0); }; f(); await new Promise(() => {});",
        ),
        |l| {
            l.cpu_ms = CPU_MS;
        },
    );
    expect_cpu(&o, CPU_MS);
}

#[test]
fn waiting_forever_hits_wall_time() {
    let o = run_limits(
        &handler("await new Promise((r) => setTimeout(r, 60000)); return new Response('x');"),
        |l| l.wall_ms = 200,
    );
    assert_eq!(kind(&o), ErrorKind::WallTimeLimit);
    assert!(
        o.usage.wall_ms >= 200 && within(o.usage.wall_ms, 200),
        "{:?}",
        o.usage
    );
    assert!(o.usage.cpu_ms < 200);
}

#[test]
fn deep_recursion() {
    let o = run_limits(&handler("const f = (n) => f(n + 1) + 1; f(0);"), |l| {
        l.stack_kb = 256
    });
    assert_eq!(kind(&o), ErrorKind::StackLimit);
}

#[test]
fn deep_recursion_caught_still_ends_as_stack_limit() {
    // Recursion that allocates at each level; the program catches the engine's RangeError
    // and answers normally.
    let o = run_limits(
        &handler(
            "const f = (n) => [n].concat(f(n + 1)); let r = 'none'; try { f(0); } catch (e) { r = e.name; } return new Response(r);",
        ),
        |l| l.stack_kb = 256,
    );
    assert_eq!(kind(&o), ErrorKind::StackLimit, "{o:?}");
    // Caught, then keeps computing: stopped at the next interrupt check, not by the CPU limit.
    let o = run_limits(
        &handler("const f = (n) => ({ n, next: f(n + 1) }); for (;;) { try { f(0); } catch {} }"),
        |l| {
            l.stack_kb = 256;
            l.cpu_ms = 5_000;
        },
    );
    assert_eq!(kind(&o), ErrorKind::StackLimit, "{o:?}");
    assert!(
        o.usage.cpu_ms < 5_000,
        "not stopped at the stack limit: {:?}",
        o.usage
    );
    // Caught inside an async function, after an await, with string building.
    let o = run_limits(
        &handler(
            "await null; const g = (s) => g(s + 'x'); try { g(''); } catch {} return new Response('ok');",
        ),
        |l| l.stack_kb = 256,
    );
    assert_eq!(kind(&o), ErrorKind::StackLimit, "{o:?}");
}

#[test]
fn deep_recursion_that_allocates_nothing_caught_still_ends_as_stack_limit() {
    // Pure calls: the engine raises its RangeError without a call to the host's allocator,
    // and the program catches it at the deepest level and returns normally.
    let o = run_limits(
        &handler(
            "let d = 0; const f = (n) => { try { return f(n + 1) + 1; } catch (e) { d = n; return 0; } }; f(0); return new Response(String(d));",
        ),
        |l| l.stack_kb = 256,
    );
    assert_eq!(kind(&o), ErrorKind::StackLimit, "{o:?}");
    // Caught at the top instead.
    let o = run_limits(
        &handler(
            "const f = (n) => f(n + 1) + 1; try { f(0); } catch {} return new Response('ok');",
        ),
        |l| l.stack_kb = 256,
    );
    assert_eq!(kind(&o), ErrorKind::StackLimit, "{o:?}");
    // Caught, then computing forever: stopped at the next interrupt check.
    let o = run_limits(
        &handler("const f = (n) => f(n + 1) + 1; try { f(0); } catch {} for (;;) {}"),
        |l| {
            l.stack_kb = 256;
            l.cpu_ms = 5_000;
        },
    );
    assert_eq!(kind(&o), ErrorKind::StackLimit, "{o:?}");
    assert!(
        o.usage.cpu_ms < 5_000,
        "not stopped at the stack limit: {:?}",
        o.usage
    );
}

#[test]
fn one_long_native_operation_still_ends_as_cpu_limit() {
    // BigInt-to-decimal at the engine's 1 Mbit cap is one quadratic native call (about
    // 1.3 s idle): the engine checks its interrupt handler only between operations, so
    // the invocation stops after the call, over its budget by that call's length; the
    // limit is still the one named. (docs/adr/0010-sandbox-isolation.md: known overshoot.)
    let o = run_limits(
        &handler("const x = (1n << 1000000n) - 1n; const s = x.toString(); for (;;) {}"),
        |l| l.cpu_ms = 100,
    );
    assert_eq!(kind(&o), ErrorKind::CpuLimit, "{o:?}");
    assert!(o.usage.cpu_ms >= 100, "{:?}", o.usage);
}

#[test]
fn the_stack_limit_is_what_stack_kb_says() {
    // The same recursion (a few hundred bytes of native stack a level) fails under 128 KiB
    // and fits in 1 MiB: the engine's limit is measured from each invocation's frame, not
    // from wherever the instance was created.
    let src = handler(
        "const f = (n) => n === 0 ? 0 : f(n - 1) + 1; return new Response(String(f(600)));",
    );
    let o = run_limits(&src, |l| l.stack_kb = 128);
    assert_eq!(kind(&o), ErrorKind::StackLimit, "{o:?}");
    let o = run_limits(&src, |l| l.stack_kb = 1024);
    assert_eq!(body(&o), "600");
}

#[test]
fn recursion_below_the_stack_limit_is_fine() {
    // Negative case: recursion well inside the limit that allocates at every level.
    let o = run_limits(
        &handler(
            "const f = (n) => n === 0 ? [] : [String(n)].concat(f(n - 1)); return new Response(String(f(300).length));",
        ),
        |l| l.stack_kb = 256,
    );
    assert_eq!(body(&o), "300");
}

fn expect_memory(o: &Outcome, mb: u64) {
    assert_eq!(kind(o), ErrorKind::MemoryLimit, "{o:?}");
    let limit = mb * 1024 * 1024;
    assert!(
        o.usage.memory_bytes <= limit,
        "peak {} above the limit",
        o.usage.memory_bytes
    );
}

#[test]
fn memory_bomb_array() {
    let o = run_limits(
        &handler("const a = []; for (;;) a.push({ x: a.length, y: [1, 2, 3] });"),
        |l| l.memory_mb = 16,
    );
    expect_memory(&o, 16);
    // Small allocations: the peak gets close to the limit.
    assert!(
        o.usage.memory_bytes as f64 >= 16.0 * 1024.0 * 1024.0 / 1.2,
        "{:?}",
        o.usage
    );
}

#[test]
fn memory_bomb_string() {
    let o = run_limits(&handler("let s = 'x'; for (;;) s = s.repeat(2);"), |l| {
        l.memory_mb = 16
    });
    expect_memory(&o, 16);
}

#[test]
fn memory_bomb_typed_arrays() {
    let o = run_limits(
        &handler("const keep = []; for (;;) keep.push(new Uint8Array(1 << 20));"),
        |l| l.memory_mb = 16,
    );
    expect_memory(&o, 16);
}

#[test]
fn memory_bomb_caught() {
    let o = run_limits(
        &handler(
            "const keep = []; for (let i = 0; i < 100; i++) { try { keep.push(new Uint8Array(4 << 20)); } catch (e) { keep.length = 0; } } return new Response('survived');",
        ),
        |l| l.memory_mb = 16,
    );
    expect_memory(&o, 16);
}

#[test]
fn huge_response() {
    let o = run_limits(
        &handler("return new Response('x'.repeat(2 * 1024 * 1024));"),
        |l| l.output_bytes = 1024 * 1024,
    );
    assert_eq!(kind(&o), ErrorKind::OutputLimit);
}

#[test]
fn huge_response_bytes() {
    let o = run_limits(
        &handler("return new Response(new Uint8Array(2 * 1024 * 1024));"),
        |l| l.output_bytes = 1024 * 1024,
    );
    assert_eq!(kind(&o), ErrorKind::OutputLimit);
}

#[test]
fn huge_logs() {
    let o = run_limits(
        &handler("for (;;) { try { console.log('y'.repeat(1000)); } catch (e) {} }"),
        |l| l.log_bytes = 64 * 1024,
    );
    assert_eq!(kind(&o), ErrorKind::LogLimit);
    assert!(o.usage.log_bytes <= 64 * 1024 && within(o.usage.log_bytes, 64 * 1024));
    assert!(o.usage.log_bytes >= 60 * 1024);
}

#[test]
fn kv_flood() {
    let o = run_limits(
        &handler("for (let i = 0; ; i++) { try { await env.kv.put('k' + i, 'v'); } catch (e) {} }"),
        |l| l.kv_ops = 50,
    );
    assert_eq!(kind(&o), ErrorKind::KvLimit);
    assert_eq!(o.usage.kv_ops, 50);
}

#[test]
fn tampering_stays_in_the_instance() {
    let tamper = handler(
        "Object.prototype.polluted = 1; Array.prototype.map = () => 'owned'; JSON.stringify = () => 'owned';
         Response.prototype.text = () => 'owned'; globalThis.fetch = () => 'owned'; Headers.prototype.get = () => 'owned';
         Promise.prototype.then = function () { return 'owned'; };
         return new Response('tampered');",
    );
    let o = run(&tamper);
    // The host reads the response through internal slots, not through the tampered methods.
    assert_eq!(body(&o), "tampered");
    // A fresh instance (and any other program) sees pristine globals.
    let check = json_handler(
        "return { polluted: ({}).polluted === undefined, map: [1].map((x) => x + 1)[0], json: JSON.stringify({ a: 1 }),
           fetch: typeof fetch, then: typeof Promise.prototype.then };",
    );
    let o = run(&check);
    assert_eq!(
        body(&o),
        r#"{"polluted":true,"map":2,"json":"{\"a\":1}","fetch":"function","then":"function"}"#
    );
}

#[test]
fn host_internals_are_unreachable() {
    let o = run(&json_handler(
        "const names = Object.getOwnPropertyNames(globalThis).filter((n) => n.startsWith('__'));
         let imp = null; try { await import('pith:prelude'); imp = 'loaded'; } catch (e) { imp = e.name; }
         return { names, imp: imp === 'loaded' ? 'loaded' : 'refused', req: typeof require, proc: typeof process, std: typeof std, os: typeof os };",
    ));
    assert_eq!(
        body(&o),
        r#"{"names":[],"imp":"refused","req":"undefined","proc":"undefined","std":"undefined","os":"undefined"}"#
    );
}
