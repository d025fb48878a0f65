//! `pith run PROGRAM.js|PROGRAM.wasm`: one invocation of a program in the local sandbox.
//! A file starting with the WebAssembly magic bytes is a WASM program (a WASI 0.2
//! component exporting `wasi:http/incoming-handler`); anything else is JavaScript.
//!
//! Local wiring: real HTTP egress limited to `--allow-host`, an in-memory kv store (empty
//! at start, gone at exit), keys derived from a random seed made for this process (so
//! addresses differ between runs), no chain and no attestation provider, and `env.ai` only
//! with `--model FILE.gguf` (the same engine a worker uses).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use base64::Engine as _;
use clap::Args;
use pith_sandbox::{AnyInstance, Host, Limits, Outcome, Program, Request};
use serde_json::json;

/// Arguments of `pith run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The program: an ES module with `export default { async fetch(request, env, ctx) }`,
    /// or a WASM component exporting `wasi:http/incoming-handler`.
    pub program: PathBuf,
    /// Request method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Request path (and query).
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Request header `K: V` (repeatable).
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// Request body: a string, or `@FILE` to read a file.
    #[arg(long)]
    pub body: Option<String>,
    /// Secret `K=V` for `env.secrets` (repeatable).
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// Allow egress to HOST or HOST:PORT (repeatable).
    #[arg(long = "allow-host")]
    pub allow_hosts: Vec<String>,
    /// Override a limit, `NAME=VALUE` (repeatable): memory_mb, stack_kb, cpu_ms, wall_ms,
    /// egress_requests, egress_bytes, output_bytes, log_bytes, kv_ops, ai_tokens.
    #[arg(long = "limit")]
    pub limits: Vec<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// GGUF model that answers `env.ai.chat` (default: none, and env.ai is unavailable).
    #[arg(long)]
    pub model: Option<PathBuf>,
}

/// A usage error (exit 2).
#[derive(Debug)]
pub struct Usage(pub String);

/// Build the program and request from the arguments.
pub fn prepare(args: &RunArgs) -> Result<(Program, Request), Usage> {
    let mut program = load_program(&args.program)?;
    program.limits = parse_limits(&args.limits)?;
    program.secrets = parse_secrets(&args.secrets)?;
    for h in &args.allow_hosts {
        crate::programs::check_allow_host(h).map_err(|e| Usage(e.to_string()))?;
    }
    program.egress.allow_hosts = args.allow_hosts.clone();
    Ok((
        program,
        build_request(
            &args.method,
            &args.path,
            &args.headers,
            args.body.as_deref(),
        )?,
    ))
}

/// Read a program file: WASM when it starts with the WebAssembly magic bytes, else a
/// JavaScript module (UTF-8).
pub fn load_program(path: &Path) -> Result<Program, Usage> {
    let bytes =
        std::fs::read(path).map_err(|e| Usage(format!("cannot read {}: {e}", path.display())))?;
    if bytes.starts_with(b"\0asm") {
        return Ok(Program::from_wasm("local", bytes));
    }
    let source = String::from_utf8(bytes).map_err(|_| {
        Usage(format!(
            "{} is neither UTF-8 JavaScript nor WASM",
            path.display()
        ))
    })?;
    Ok(Program::new("local", source))
}

/// Parse `--limit NAME=VALUE` flags over the defaults.
pub fn parse_limits(pairs: &[String]) -> Result<Limits, Usage> {
    let mut limits = Limits::default();
    for l in pairs {
        limits.set_pair(l).map_err(|e| Usage(e.to_string()))?;
    }
    Ok(limits)
}

/// Parse `--secret K=V` flags.
pub fn parse_secrets(pairs: &[String]) -> Result<BTreeMap<String, String>, Usage> {
    let mut out = BTreeMap::new();
    for s in pairs {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| Usage(format!("--secret needs K=V, got `{s}`")))?;
        if k.is_empty() {
            return Err(Usage(format!("--secret needs a name, got `{s}`")));
        }
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

/// The request `pith run` sends.
pub fn build_request(
    method: &str,
    path: &str,
    headers: &[String],
    body: Option<&str>,
) -> Result<Request, Usage> {
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let mut hs = Vec::new();
    for h in headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| Usage(format!("--header needs 'K: V', got `{h}`")))?;
        let k = k.trim();
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Usage(format!("bad header name in `{h}`")));
        }
        hs.push((k.to_ascii_lowercase(), v.trim().to_owned()));
    }
    let body = match body {
        None => Vec::new(),
        Some(b) => match b.strip_prefix('@') {
            Some(file) => std::fs::read(Path::new(file))
                .map_err(|e| Usage(format!("cannot read body file {file}: {e}")))?,
            None => b.as_bytes().to_vec(),
        },
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(Usage(format!("bad method `{method}`")));
    }
    Ok(Request {
        method: method.to_owned(),
        url: format!("http://localhost{path}"),
        headers: hs,
        body,
    })
}

/// A host for local runs: real egress, in-memory kv, keys from a fresh random seed.
pub fn local_host() -> Host {
    let mut seed = [0u8; 32];
    pith_sandbox::host::Randomness::fill(&pith_sandbox::host::OsRandom, &mut seed);
    Host::local(seed.to_vec())
}

/// The JSON object `pith run --json` prints.
pub fn outcome_json(outcome: &Outcome, limits: &Limits) -> serde_json::Value {
    let logs: Vec<_> = outcome
        .logs
        .iter()
        .map(|l| json!({"level": l.level, "message": l.message}))
        .collect();
    let mut v = json!({
        "status": null,
        "headers": {},
        "body": null,
        "logs": logs,
        "usage": outcome.usage,
        "limits": limits,
        "error": null,
    });
    match &outcome.result {
        Ok(r) => {
            let mut headers: BTreeMap<String, String> = BTreeMap::new();
            for (k, val) in &r.headers {
                let k = k.to_ascii_lowercase();
                match headers.get_mut(&k) {
                    Some(existing) => {
                        existing.push_str(", ");
                        existing.push_str(val);
                    }
                    None => {
                        headers.insert(k, val.clone());
                    }
                }
            }
            v["status"] = json!(r.status);
            v["headers"] = json!(headers);
            match std::str::from_utf8(&r.body) {
                Ok(s) => v["body"] = json!(s),
                Err(_) => {
                    v["body_base64"] =
                        json!(base64::engine::general_purpose::STANDARD.encode(&r.body))
                }
            }
        }
        Err(e) => v["error"] = json!({"kind": e.kind.as_str(), "message": e.message}),
    }
    v
}

/// Run one invocation of `program` on a dedicated thread (sized for the stack limit).
pub fn run_once(program: Program, request: Request, host: Host) -> Outcome {
    let stack = program.limits.stack_bytes().saturating_add(4 * 1024 * 1024);
    let tokio = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(t) => t,
        Err(e) => return failed(format!("cannot start the I/O runtime: {e}")),
    };
    let handle = tokio.handle().clone();
    let joined = std::thread::Builder::new()
        .name("pith-run".into())
        .stack_size(stack)
        .spawn(move || {
            match AnyInstance::new(
                Arc::new(program),
                host,
                handle,
                pith_sandbox::BytecodeCache::default(),
            ) {
                Ok(mut i) => i.invoke(&request),
                Err(e) => Outcome {
                    result: Err(e),
                    usage: Default::default(),
                    logs: Vec::new(),
                },
            }
        });
    let outcome = match joined {
        Ok(j) => j
            .join()
            .unwrap_or_else(|_| failed("the sandbox thread panicked".into())),
        Err(e) => failed(format!("cannot start the sandbox thread: {e}")),
    };
    tokio.shutdown_background();
    outcome
}

fn failed(m: String) -> Outcome {
    Outcome {
        result: Err(pith_sandbox::InvocationError {
            kind: pith_sandbox::ErrorKind::ProgramError,
            message: m,
        }),
        usage: Default::default(),
        logs: Vec::new(),
    }
}

/// `pith run`.
pub fn run(args: RunArgs) -> ExitCode {
    let (program, request) = match prepare(&args) {
        Ok(x) => x,
        Err(Usage(m)) => {
            eprintln!("pith run: {m}");
            return ExitCode::from(crate::EXIT_USAGE);
        }
    };
    let limits = program.limits;
    let mut host = local_host();
    if let Some(path) = &args.model {
        match pith_worker::ai::ModelAi::load(path, None) {
            Ok(m) => host.ai = Arc::new(m),
            Err(e) => {
                eprintln!("pith run: --model: {e}");
                return ExitCode::from(crate::EXIT_USAGE);
            }
        }
    }
    let outcome = run_once(program, request, host);
    let code = if outcome.result.is_ok() { 0 } else { 1 };
    if args.json {
        println!("{}", outcome_json(&outcome, &limits));
    } else {
        for l in &outcome.logs {
            eprintln!("[{}] {}", l.level, l.message);
        }
        match &outcome.result {
            Ok(r) => {
                println!("HTTP {}", r.status);
                for (k, v) in &r.headers {
                    println!("{k}: {v}");
                }
                println!();
                use std::io::Write as _;
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&r.body);
                if !r.body.ends_with(b"\n") {
                    let _ = out.write_all(b"\n");
                }
            }
            Err(e) => eprintln!("error: {}: {}", e.kind, e.message),
        }
        let u = &outcome.usage;
        eprintln!(
            "usage: cpu {} ms, wall {} ms, memory {} bytes, egress {} req / {} bytes, logs {} bytes, kv {} ops",
            u.cpu_ms,
            u.wall_ms,
            u.memory_bytes,
            u.egress_requests,
            u.egress_bytes,
            u.log_bytes,
            u.kv_ops
        );
    }
    ExitCode::from(code)
}
