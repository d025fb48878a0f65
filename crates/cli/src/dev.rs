//! `pith dev PROGRAM.js|PROGRAM.wasm [--port N]`: serve a program on 127.0.0.1 for local
//! development, reloading it when the file changes (JavaScript or WASM, as `pith run`).
//!
//! The server speaks plain HTTP/1.1 (keep-alive, `content-length` bodies; chunked request
//! bodies are refused with 411). Each request runs through the warm-instance pool; a
//! changed file is a new code hash, so the next request runs the new code in a fresh
//! instance. Local wiring as for `pith run` (in-memory kv kept while the server runs).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use clap::Args;
use pith_sandbox::pool::{Pool, PoolConfig};
use pith_sandbox::{BytecodeCache, Program, Request};

/// Arguments of `pith dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// The program to serve.
    pub program: PathBuf,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Secret `K=V` for `env.secrets` (repeatable).
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// Allow egress to HOST or HOST:PORT (repeatable).
    #[arg(long = "allow-host")]
    pub allow_hosts: Vec<String>,
    /// Override a limit, `NAME=VALUE` (repeatable).
    #[arg(long = "limit")]
    pub limits: Vec<String>,
}

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

struct Loaded {
    mtime: Option<SystemTime>,
    program: Arc<Program>,
}

struct Server {
    path: PathBuf,
    template: Program,
    loaded: Mutex<Loaded>,
    pool: Pool,
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl Server {
    /// The current program, reloaded if the file changed.
    fn program(&self) -> Result<Arc<Program>, String> {
        let mut l = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = mtime(&self.path);
        if now != l.mtime {
            let mut p = crate::run::load_program(&self.path).map_err(|crate::run::Usage(m)| m)?;
            p.id = self.template.id.clone();
            p.secrets = self.template.secrets.clone();
            p.egress = self.template.egress.clone();
            p.limits = self.template.limits;
            if p.code_hash != l.program.code_hash {
                eprintln!(
                    "pith dev: reloaded {} ({})",
                    self.path.display(),
                    p.code_hash_hex()
                );
            }
            l.program = Arc::new(p);
            l.mtime = now;
        }
        Ok(l.program.clone())
    }
}

/// `pith dev`.
pub fn run(args: DevArgs) -> ExitCode {
    let usage = |m: String| {
        eprintln!("pith dev: {m}");
        ExitCode::from(crate::EXIT_USAGE)
    };
    let limits = match crate::run::parse_limits(&args.limits) {
        Ok(l) => l,
        Err(crate::run::Usage(m)) => return usage(m),
    };
    let secrets = match crate::run::parse_secrets(&args.secrets) {
        Ok(s) => s,
        Err(crate::run::Usage(m)) => return usage(m),
    };
    let mut template = match crate::run::load_program(&args.program) {
        Ok(p) => p,
        Err(crate::run::Usage(m)) => return usage(m),
    };
    template.limits = limits;
    template.secrets = secrets;
    template.egress.allow_hosts = args.allow_hosts.clone();
    let tokio = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(t) => t,
        Err(e) => return usage(format!("cannot start the I/O runtime: {e}")),
    };
    let pool = Pool::new(
        crate::run::local_host(),
        tokio.handle().clone(),
        BytecodeCache::default(),
        PoolConfig::default(),
    );
    let listener = match TcpListener::bind(("127.0.0.1", args.port)) {
        Ok(l) => l,
        Err(e) => return usage(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)),
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let server = Arc::new(Server {
        path: args.program.clone(),
        loaded: Mutex::new(Loaded {
            mtime: mtime(&args.program),
            program: Arc::new(template.clone()),
        }),
        template,
        pool,
    });
    println!("ready http://{addr}/ serving {}", args.program.display());
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let server = server.clone();
        let _ = std::thread::Builder::new()
            .name("pith-dev-conn".into())
            .spawn(move || {
                let _ = serve_conn(&server, stream);
            });
    }
    ExitCode::SUCCESS
}

fn serve_conn(server: &Server, stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target), Some(version)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return respond_plain(&mut out, 400, "bad request line", false);
        };
        let (method, target) = (method.to_owned(), target.to_owned());
        let mut keep_alive = version == "HTTP/1.1";
        let mut headers = Vec::new();
        let mut len = 0usize;
        let mut chunked = false;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let Some((k, v)) = h.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
            match k.as_str() {
                "content-length" => len = v.parse().unwrap_or(0),
                "transfer-encoding" => chunked = true,
                "connection" => keep_alive = !v.eq_ignore_ascii_case("close"),
                _ => {}
            }
            headers.push((k, v));
        }
        if chunked {
            return respond_plain(
                &mut out,
                411,
                "chunked request bodies are not supported",
                false,
            );
        }
        if len > MAX_BODY {
            return respond_plain(&mut out, 413, "request body too large", false);
        }
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        let program = match server.program() {
            Ok(p) => p,
            Err(m) => {
                respond_plain(&mut out, 500, &m, keep_alive)?;
                continue;
            }
        };
        let host = headers
            .iter()
            .find(|(k, _)| k == "host")
            .map_or("localhost", |(_, v)| v.as_str())
            .to_owned();
        let req = Request {
            method,
            url: format!("http://{host}{target}"),
            headers,
            body,
        };
        let outcome = server.pool.invoke(&program, req);
        for l in &outcome.logs {
            eprintln!("[{}] {}", l.level, l.message);
        }
        match outcome.result {
            Ok(r) => {
                let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
                for (k, v) in &r.headers {
                    if k == "content-length" || k == "connection" || k == "transfer-encoding" {
                        continue;
                    }
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str(&format!("content-length: {}\r\n", r.body.len()));
                if !keep_alive {
                    head.push_str("connection: close\r\n");
                }
                head.push_str("\r\n");
                out.write_all(head.as_bytes())?;
                out.write_all(&r.body)?;
            }
            Err(e) => {
                eprintln!("pith dev: {}: {}", e.kind, e.message);
                respond_plain(
                    &mut out,
                    500,
                    &format!("{}: {}", e.kind, e.message),
                    keep_alive,
                )?;
            }
        }
        if !keep_alive {
            return Ok(());
        }
    }
}

fn respond_plain(
    out: &mut TcpStream,
    status: u16,
    msg: &str,
    keep_alive: bool,
) -> std::io::Result<()> {
    let body = format!("{msg}\n");
    let conn = if keep_alive {
        ""
    } else {
        "connection: close\r\n"
    };
    write!(
        out,
        "HTTP/1.1 {status} {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{conn}\r\n{body}",
        reason(status),
        body.len()
    )
}

fn reason(s: u16) -> &'static str {
    match s {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        411 => "Length Required",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "",
    }
}
