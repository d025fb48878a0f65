#![allow(dead_code)]
//! Shared helpers: run a program once on its own thread with a local host.

use std::sync::{Arc, OnceLock};

use pith_sandbox::{BytecodeCache, ErrorKind, Host, Instance, Limits, Outcome, Program, Request};

pub fn tokio() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

pub fn program(src: &str) -> Program {
    Program::new("test", src.to_owned())
}

pub fn run_program(p: Program, req: Request) -> Outcome {
    run_with_host(p, req, Host::local(b"test-seed".to_vec()))
}

pub fn run_with_host(p: Program, req: Request, host: Host) -> Outcome {
    let stack = p.limits.stack_bytes() + 4 * 1024 * 1024;
    let handle = tokio().handle().clone();
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || {
            let mut i = Instance::new(Arc::new(p), host, handle, BytecodeCache::default())
                .expect("instance");
            i.invoke(&req)
        })
        .unwrap()
        .join()
        .unwrap()
}

pub fn run(src: &str) -> Outcome {
    run_program(program(src), Request::get("http://localhost/"))
}

pub fn run_limits(src: &str, f: impl FnOnce(&mut Limits)) -> Outcome {
    let mut p = program(src);
    f(&mut p.limits);
    run_program(p, Request::get("http://localhost/"))
}

/// Body text of a successful outcome (panics with the error otherwise).
pub fn body(o: &Outcome) -> String {
    match &o.result {
        Ok(r) => String::from_utf8(r.body.clone()).unwrap(),
        Err(e) => panic!("invocation failed: {e}\nlogs: {:?}", o.logs),
    }
}

pub fn kind(o: &Outcome) -> ErrorKind {
    match &o.result {
        Ok(r) => panic!(
            "expected an error, got status {} body {:?}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ),
        Err(e) => e.kind,
    }
}

/// Wrap a body expression into a handler returning its JSON.
pub fn json_handler(expr: &str) -> String {
    format!(
        "export default {{ async fetch(request, env, ctx) {{ const v = await (async () => {{ {expr} }})(); return new Response(JSON.stringify(v)); }} }}"
    )
}

/// A tiny HTTP/1.1 server on 127.0.0.1 for egress tests: `respond(path)` gives
/// (status line, extra headers, body). Returns the port.
pub fn serve(
    respond: impl Fn(&str) -> (String, Vec<(String, String)>, Vec<u8>) + Send + Sync + 'static,
) -> u16 {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let respond = Arc::new(respond);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let respond = respond.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                let (status, headers, body) = respond(&path);
                let mut out = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let _ = stream.write_all(out.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    port
}
