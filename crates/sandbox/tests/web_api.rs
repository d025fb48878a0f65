//! Web API behaviour inside the sandbox. Expected values follow the specifications
//! (and what workerd prints for the same code; see tests/conformance for the differential run).

mod common;
use common::*;
use pith_sandbox::{ErrorKind, Request};
use serde_json::{Value, json};

fn eval(expr: &str) -> Value {
    let o = run(&json_handler(expr));
    serde_json::from_str(&body(&o)).unwrap()
}

#[test]
fn hello_response() {
    let o = run(
        r#"export default { async fetch(req) { return new Response("hello " + new URL(req.url).pathname, { status: 201, headers: { "X-A": "1" } }); } }"#,
    );
    let r = o.result.unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.body, b"hello /");
    assert!(r.headers.contains(&("x-a".into(), "1".into())));
    assert!(
        r.headers
            .contains(&("content-type".into(), "text/plain;charset=UTF-8".into()))
    );
}

#[test]
fn request_fields_and_body() {
    let mut req = Request::get("http://localhost/p?q=1");
    req.method = "POST".into();
    req.headers = vec![
        ("content-type".into(), "application/json".into()),
        ("x-b".into(), "2".into()),
    ];
    req.body = br#"{"a":1}"#.to_vec();
    let o = run_program(
        program(
            r#"export default { async fetch(req) { const j = await req.json();
            return Response.json({ m: req.method, u: req.url, b: req.headers.get("X-B"), a: j.a, used: req.bodyUsed }); } }"#,
        ),
        req,
    );
    let v: Value = serde_json::from_str(&body(&o)).unwrap();
    assert_eq!(
        v,
        json!({"m": "POST", "u": "http://localhost/p?q=1", "b": "2", "a": 1, "used": true})
    );
    let r = o.result.unwrap();
    assert!(
        r.headers
            .contains(&("content-type".into(), "application/json".into()))
    );
}

#[test]
fn headers_semantics() {
    let v = eval(
        r#"const h = new Headers([["B", "2"], ["a", "1"]]); h.append("a", " 3 "); h.append("Set-Cookie", "x=1"); h.append("set-cookie", "y=2");
        let bad = null; try { h.set("bad name", "v"); } catch (e) { bad = e.name; }
        return { a: h.get("A"), entries: [...h], has: h.has("b"), none: h.get("zz"), cookies: h.getSetCookie(), bad };"#,
    );
    assert_eq!(
        v,
        json!({"a": "1, 3", "entries": [["a", "1, 3"], ["b", "2"], ["set-cookie", "x=1"], ["set-cookie", "y=2"]],
            "has": true, "none": null, "cookies": ["x=1", "y=2"], "bad": "TypeError"})
    );
}

#[test]
fn url_and_search_params() {
    let v = eval(
        r#"const u = new URL("../x/y?b=2&a=1#h", "https://user:pw@Example.COM:8443/p/q");
        u.searchParams.append("c", "d e"); u.searchParams.sort();
        const sp = new URLSearchParams("?a=1&a=2&b=%20x+y");
        let bad = null; try { new URL("nope"); } catch (e) { bad = e.name; }
        return { href: u.href, host: u.host, hostname: u.hostname, port: u.port, path: u.pathname, search: u.search, hash: u.hash,
            origin: u.origin, all: sp.getAll("a"), b: sp.get("b"), s: sp.toString(), bad, can: URL.canParse("http://a") };"#,
    );
    assert_eq!(
        v,
        json!({"href": "https://user:pw@example.com:8443/x/y?a=1&b=2&c=d+e#h", "host": "example.com:8443", "hostname": "example.com",
            "port": "8443", "path": "/x/y", "search": "?a=1&b=2&c=d+e", "hash": "#h", "origin": "https://example.com:8443",
            "all": ["1", "2"], "b": " x y", "s": "a=1&a=2&b=+x+y", "bad": "TypeError", "can": true})
    );
}

#[test]
fn text_codec_base64() {
    let v = eval(
        r#"const e = new TextEncoder().encode("héllo €");
        const d = new TextDecoder().decode(e);
        let fatal = null; try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xff])); } catch (x) { fatal = x.name; }
        let bad = null; try { atob("a"); } catch (x) { bad = x.name; }
        let wide = null; try { btoa("€"); } catch (x) { wide = x.name; }
        return { len: e.length, d, lossy: new TextDecoder().decode(new Uint8Array([0x61, 0xff])), fatal, b: btoa("hi\u00ff"), a: atob(" aGk= "), bad, wide };"#,
    );
    assert_eq!(
        v,
        json!({"len": 10, "d": "héllo €", "lossy": "a\u{fffd}", "fatal": "TypeError", "b": "aGn/", "a": "hi", "bad": "InvalidCharacterError", "wide": "InvalidCharacterError"})
    );
}

#[test]
fn crypto_apis() {
    let v = eval(
        r#"const a = crypto.getRandomValues(new Uint8Array(32)); const b = crypto.getRandomValues(new Uint8Array(32));
        const hex = (buf) => [...new Uint8Array(buf)].map((x) => x.toString(16).padStart(2, "0")).join("");
        const d256 = hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("abc")));
        const d384 = hex(await crypto.subtle.digest({ name: "SHA-384" }, new TextEncoder().encode("abc")));
        const d512 = hex(await crypto.subtle.digest("sha-512", new Uint8Array(0)));
        let quota = null; try { crypto.getRandomValues(new Uint8Array(65537)); } catch (e) { quota = e.name; }
        let flt = null; try { crypto.getRandomValues(new Float32Array(2)); } catch (e) { flt = e.name; }
        let unk = null; try { await crypto.subtle.digest("MD5", new Uint8Array(1)); } catch (e) { unk = e.name; }
        const id = crypto.randomUUID();
        return { differ: hex(a) !== hex(b), d256, d384, d512: d512.slice(0, 16), quota, flt, unk,
            uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id) };"#,
    );
    assert_eq!(
        v,
        json!({"differ": true,
            "d256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "d384": "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
            "d512": "cf83e1357eefb8bd", "quota": "QuotaExceededError", "flt": "TypeMismatchError", "unk": "NotSupportedError", "uuid": true})
    );
}

#[test]
fn console_is_captured() {
    let o = run(
        r#"export default { async fetch() { console.log("a", 1, { b: [2] }); console.warn("w"); console.error(new TypeError("boom")); return new Response("ok"); } }"#,
    );
    assert_eq!(body(&o), "ok");
    assert_eq!(o.logs.len(), 3);
    assert_eq!(o.logs[0].level, "log");
    assert_eq!(o.logs[0].message, "a 1 { b: [ 2 ] }");
    assert_eq!(o.logs[1].level, "warn");
    assert!(o.logs[2].message.starts_with("TypeError: boom"));
    assert_eq!(
        o.usage.log_bytes,
        o.logs.iter().map(|l| l.message.len() as u64).sum::<u64>()
    );
}

#[test]
fn timers_and_promises() {
    let v = eval(
        r#"const order = [];
        const t0 = Date.now();
        await new Promise((r) => setTimeout(() => { order.push("t20"); r(); }, 20));
        const id = setTimeout(() => order.push("never"), 5); clearTimeout(id);
        setTimeout((x) => order.push(x), 0, "arg");
        queueMicrotask(() => order.push("micro"));
        await new Promise((r) => setTimeout(r, 10));
        let n = 0; await new Promise((r) => { const iv = setInterval(() => { if (++n === 3) { clearInterval(iv); r(); } }, 1); });
        return { order, n, waited: Date.now() - t0 >= 20 };"#,
    );
    assert_eq!(
        v,
        json!({"order": ["t20", "micro", "arg"], "n": 3, "waited": true})
    );
}

#[test]
fn structured_clone() {
    let v = eval(
        r#"const o = { a: [1, { b: 2 }], d: new Date(5), m: new Map([[1, "x"]]), s: new Set([3]), u: new Uint8Array([1, 2]) };
        o.self = o;
        const c = structuredClone(o);
        let fn = null; try { structuredClone({ f() {} }); } catch (e) { fn = e.name; }
        return { deep: c.a[1].b === 2 && c.a !== o.a, cyc: c.self === c, d: c.d.getTime(), m: c.m.get(1), s: c.s.has(3), u: [...c.u], fn };"#,
    );
    assert_eq!(
        v,
        json!({"deep": true, "cyc": true, "d": 5, "m": "x", "s": true, "u": [1, 2], "fn": "DataCloneError"})
    );
}

#[test]
fn response_helpers() {
    let v = eval(
        r#"const r = Response.json({ x: 1 }, { status: 202 });
        const c = r.clone();
        const t = await r.text();
        let used = null; try { await r.text(); } catch (e) { used = e.name; }
        const red = Response.redirect("https://a.example/x", 301);
        const ab = await new Response(new Uint8Array([104, 105])).arrayBuffer();
        let st = null; try { new Response("x", { status: 99 }); } catch (e) { st = e.name; }
        return { t, s: r.status, ok: r.ok, ct: c.headers.get("content-type"), cj: await c.json(), used, loc: red.headers.get("location"), rs: red.status,
            ab: new TextDecoder().decode(ab), st };"#,
    );
    assert_eq!(
        v,
        json!({"t": "{\"x\":1}", "s": 202, "ok": true, "ct": "application/json", "cj": {"x": 1}, "used": "TypeError",
            "loc": "https://a.example/x", "rs": 301, "ab": "hi", "st": "RangeError"})
    );
}

#[test]
fn env_program_and_secrets() {
    let mut p = program(
        r#"export default { async fetch(req, env) { return Response.json({ id: env.program.id, h: env.program.codeHash.length, s: env.secrets.API, none: env.secrets.NOPE ?? null, frozen: Object.isFrozen(env.secrets) }); } }"#,
    );
    p.secrets.insert("API".into(), "k1".into());
    let o = run_program(p, Request::get("http://localhost/"));
    let v: Value = serde_json::from_str(&body(&o)).unwrap();
    assert_eq!(
        v,
        json!({"id": "test", "h": 66, "s": "k1", "none": null, "frozen": true})
    );
}

#[test]
fn kv_roundtrip() {
    let o = run(r#"export default { async fetch(req, env) {
        await env.kv.put("a", "1"); await env.kv.put("b/1", new Uint8Array([1,2])); await env.kv.put("b/2", "x"); await env.kv.put("j", JSON.stringify({ z: 1 }));
        const a = await env.kv.get("a"); const j = await env.kv.get("j", "json"); const bytes = [...await env.kv.get("b/1", "bytes")];
        const l1 = await env.kv.list({ prefix: "b/", limit: 1 }); const l2 = await env.kv.list({ prefix: "b/", cursor: l1.cursor });
        await env.kv.delete("a");
        return Response.json({ a, j, bytes, l1: l1.keys.map(k => k.name), c1: l1.list_complete, l2: l2.keys.map(k => k.name), c2: l2.list_complete, gone: await env.kv.get("a") }); } }"#);
    let v: Value = serde_json::from_str(&body(&o)).unwrap();
    assert_eq!(
        v,
        json!({"a": "1", "j": {"z": 1}, "bytes": [1, 2], "l1": ["b/1"], "c1": false, "l2": ["b/2"], "c2": true, "gone": null})
    );
    assert_eq!(o.usage.kv_ops, 11);
}

#[test]
fn keys_sign_and_recover() {
    let o = run(r#"export default { async fetch(req, env) {
        const k = await env.keys.derive("oracle/1"); const k2 = await env.keys.derive("oracle/2");
        const sig = await k.sign("hello");
        const td = { types: { Mail: [{ name: "contents", type: "string" }] }, primaryType: "Mail", domain: { name: "T", chainId: 1 }, message: { contents: "hi" } };
        const sig712 = await k.signTypedData(td);
        let bad = null; try { await k.signTypedData({ types: {}, primaryType: "X", message: {} }); } catch (e) { bad = e.name; }
        return Response.json({ pk: k.publicKey, addr: k.address, other: k2.address, sig, sig712, bad, secret: "secretKey" in k || "privateKey" in k }); } }"#);
    let v: Value = serde_json::from_str(&body(&o)).unwrap();
    assert_ne!(v["addr"], v["other"]);
    assert_eq!(v["secret"], json!(false));
    assert_eq!(v["bad"], json!("TypeError"));
    // Recover the signer from the EIP-191 signature and compare with the address.
    let sig = hex::decode(v["sig"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    let digest = pith_sandbox::eth::personal_message_hash(b"hello");
    let rs = k256::ecdsa::Signature::from_slice(&sig[..64]).unwrap();
    let rec = k256::ecdsa::RecoveryId::from_byte(sig[64] - 27).unwrap();
    let vk = k256::ecdsa::VerifyingKey::recover_from_prehash(&digest, &rs, rec).unwrap();
    assert_eq!(
        pith_sandbox::eth::checksum_address(&pith_sandbox::host::eth_address(&vk)),
        v["addr"].as_str().unwrap()
    );
    assert_eq!(
        format!("0x{}", hex::encode(vk.to_encoded_point(true).as_bytes())),
        v["pk"].as_str().unwrap()
    );
}

#[test]
fn chain_and_attestation_unavailable_locally() {
    let o = run(
        r#"export default { async fetch(req, env) { let c = null, a = null;
        try { await env.chain.call({ to: "0x00", data: "0x" }); } catch (e) { c = e.message; }
        try { await env.attestation(new Uint8Array(64)); } catch (e) { a = e.message; }
        return Response.json({ c, a }); } }"#,
    );
    let v: Value = serde_json::from_str(&body(&o)).unwrap();
    assert_eq!(
        v,
        json!({"c": "env.chain is not available in this host", "a": "env.attestation is not available in this host"})
    );
}

#[test]
fn invalid_programs() {
    assert_eq!(kind(&run("export default {")), ErrorKind::InvalidProgram);
    assert_eq!(kind(&run("export const x = 1;")), ErrorKind::InvalidProgram);
    assert_eq!(
        kind(&run("export default { fetch: 1 }")),
        ErrorKind::InvalidProgram
    );
    assert_eq!(
        kind(&run("throw new Error('top');")),
        ErrorKind::InvalidProgram
    );
    assert_eq!(
        kind(&run("import x from 'other'; export default { fetch() {} }")),
        ErrorKind::InvalidProgram
    );
}

#[test]
fn program_errors() {
    let o = run("export default { async fetch() { throw new TypeError('nope'); } }");
    assert_eq!(kind(&o), ErrorKind::ProgramError);
    assert!(o.result.unwrap_err().message.contains("TypeError: nope"));
    assert_eq!(
        kind(&run(
            "export default { async fetch() { return 'not a response'; } }"
        )),
        ErrorKind::ProgramError
    );
    assert_eq!(
        kind(&run(
            "export default { fetch() { return new Promise(() => {}); } }"
        )),
        ErrorKind::ProgramError
    );
    assert_eq!(
        kind(&run(
            "export default { async fetch() { setTimeout(() => { throw new Error('in timer'); }, 1); await new Promise(r => setTimeout(r, 50)); return new Response('x'); } }"
        )),
        ErrorKind::ProgramError
    );
}
