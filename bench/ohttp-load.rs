//! Pith's own closed-loop load generator: it speaks Oblivious HTTP, so it can drive encrypted
//! invocations through the gateway and a worker, and it drives a plain HTTP server (workerd)
//! with the same loop, client and accounting, for side-by-side figures.
//!
//! ```text
//! ohttp-load pith  --dir DIR --program ID  [--concurrency C] [--duration S] [--warmup S] [--path P]
//! ohttp-load plain --url URL               [--concurrency C] [--duration S] [--warmup S]
//! ```
//! `pith` mode, per request: a fresh nonce and expiry, Binary HTTP + HPKE encapsulation to the
//! program's KMS-certified key (fetched and checked once), POST to the gateway, decapsulation
//! of the response, and the receipt check a client does (worker signature, request and
//! response hashes). `plain` mode: GET over the same HTTP/1.1 keep-alive client.
//!
//! Prints one JSON line: mode, concurrency, requests, errors, rps, p50/p90/p99/max in ms.
//! Built as an example of the `pith` crate:
//! `cargo build --release -p pith --example ohttp-load`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use pith::call::{ProgramKey, fetch_program_key, nonce, parse_program_id};
use pith::network::{NetOpts, now_secs, route};
use pith_crypto::envelope::{ClientSession, Request};
use pith_crypto::receipt::SignedReceipt;

struct Args {
    mode: String,
    dir: Option<String>,
    program: Option<String>,
    url: Option<String>,
    path: String,
    concurrency: usize,
    duration: Duration,
    warmup: Duration,
}

fn parse() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().context("usage: ohttp-load pith|plain ...")?;
    let mut a = Args {
        mode,
        dir: None,
        program: None,
        url: None,
        path: "/?name=bench".into(),
        concurrency: 64,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
    };
    while let Some(k) = it.next() {
        let mut v = || it.next().with_context(|| format!("{k} needs a value"));
        match k.as_str() {
            "--dir" => a.dir = Some(v()?),
            "--program" => a.program = Some(v()?),
            "--url" => a.url = Some(v()?),
            "--path" => a.path = v()?,
            "--concurrency" => a.concurrency = v()?.parse()?,
            "--duration" => a.duration = Duration::from_secs_f64(v()?.parse()?),
            "--warmup" => a.warmup = Duration::from_secs_f64(v()?.parse()?),
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

/// What one request needs.
enum Target {
    Pith {
        client: reqwest::Client,
        invoke_url: String,
        key: Arc<ProgramKey>,
        path: String,
        chain_id: u64,
    },
    Plain {
        client: reqwest::Client,
        url: String,
    },
}

impl Target {
    async fn one(&self) -> Result<()> {
        match self {
            Target::Plain { client, url } => {
                let r = client.get(url).send().await?;
                let ok = r.status().is_success();
                let _ = r.bytes().await?;
                if !ok {
                    bail!("HTTP status");
                }
                Ok(())
            }
            Target::Pith {
                client,
                invoke_url,
                key,
                path,
                chain_id,
            } => {
                let req = Request::new("GET", path, vec![], vec![], nonce()?, now_secs() + 60);
                let (wire, session) = ClientSession::encapsulate(&key.ohttp_keys, &req)?;
                let request_hash = session.request_hash();
                let r = client
                    .post(invoke_url)
                    .header(reqwest::header::CONTENT_TYPE, pith_api::media::OHTTP_REQ)
                    .body(wire)
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("HTTP {}", r.status());
                }
                let receipt = r
                    .headers()
                    .get(pith_api::headers::RECEIPT)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| anyhow!("no receipt"))?
                    .to_string();
                let body = r.bytes().await?;
                let (resp, response_hash) = session.decapsulate(&body)?;
                let receipt: SignedReceipt =
                    serde_json::from_slice(&pith_api::from_b64url(&receipt)?)?;
                receipt.verify_signature()?;
                if receipt.request_hash.0 != request_hash
                    || receipt.response_hash.0 != response_hash
                    || receipt.chain_id != *chain_id
                {
                    bail!("receipt does not match the exchange");
                }
                if resp.status != 200 {
                    bail!("program answered {}", resp.status);
                }
                Ok(())
            }
        }
    }
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let a = parse()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .http1_only()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let target = match a.mode.as_str() {
        "pith" => {
            let opts = NetOpts {
                dir: a.dir.clone().map(Into::into),
                gateway: None,
                rpc: None,
                private_key_file: None,
                keystore: None,
            };
            let net = opts.resolve(false).await?;
            let id = parse_program_id(a.program.as_deref().context("--program ID")?)?;
            let key = Arc::new(fetch_program_key(&net, id).await?);
            let invoke_url = net.url(&route(
                pith_api::gateway::PROGRAM_INVOKE,
                "id",
                &format!("{id}"),
            ));
            Target::Pith {
                client,
                invoke_url,
                key,
                path: a.path.clone(),
                chain_id: net.chain_id(),
            }
        }
        "plain" => Target::Plain {
            client,
            url: a.url.clone().context("--url URL")?,
        },
        other => bail!("mode {other:?} is not pith or plain"),
    };
    let target = Arc::new(target);
    let start = Instant::now();
    let measure_from = start + a.warmup;
    let end = measure_from + a.duration;
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let t = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<u32> = Vec::with_capacity(4096);
            let mut errors = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let r = t.one().await;
                let t1 = Instant::now();
                if t0 >= measure_from && t1 <= end {
                    match r {
                        Ok(()) => {
                            lat.push(u32::try_from((t1 - t0).as_micros()).unwrap_or(u32::MAX))
                        }
                        Err(e) => {
                            if errors == 0 {
                                eprintln!("error: {e:#}");
                            }
                            errors += 1;
                        }
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    let secs = a.duration.as_secs_f64();
    let out = serde_json::json!({
        "mode": a.mode,
        "concurrency": a.concurrency,
        "requests": all.len(),
        "errors": errors,
        "rps": all.len() as f64 / secs,
        "p50_ms": pct(&all, 0.50),
        "p90_ms": pct(&all, 0.90),
        "p99_ms": pct(&all, 0.99),
        "max_ms": all.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
    });
    println!("{out}");
    Ok(())
}
