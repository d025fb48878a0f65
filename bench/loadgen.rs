//! A small closed-loop HTTP/1.1 load generator for benchmark (d) (`bench/workerd-vs-pith-dev`):
//! `C` keep-alive connections each send `GET` requests back to back for a fixed time and
//! record each request's latency. Built as an example of pith-sandbox:
//! `cargo run --release -p pith-sandbox --example loadgen -- URL [--connections C]
//! [--duration SECS] [--warmup SECS]`. Prints one JSON line: requests, errors, req/s and
//! latency percentiles (µs). Responses must carry `content-length` or be chunked.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

struct Args {
    host: String,
    port: u16,
    path: String,
    connections: usize,
    duration: Duration,
    warmup: Duration,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut it = std::env::args().skip(1);
    let mut url = None;
    let (mut connections, mut duration, mut warmup) = (8usize, 10.0f64, 2.0f64);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--connections" => connections = it.next().context("--connections N")?.parse()?,
            "--duration" => duration = it.next().context("--duration SECS")?.parse()?,
            "--warmup" => warmup = it.next().context("--warmup SECS")?.parse()?,
            u if url.is_none() => url = Some(u.to_owned()),
            other => bail!("unexpected argument {other}"),
        }
    }
    let url =
        url.context("usage: loadgen URL [--connections C] [--duration SECS] [--warmup SECS]")?;
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let (host, port) = authority.rsplit_once(':').context("URL needs host:port")?;
    Ok(Args {
        host: host.to_owned(),
        port: port.parse()?,
        path,
        connections,
        duration: Duration::from_secs_f64(duration),
        warmup: Duration::from_secs_f64(warmup),
    })
}

/// Reads one response; returns its status.
async fn read_response(
    r: &mut BufReader<TcpStream>,
    line: &mut String,
    body: &mut Vec<u8>,
) -> anyhow::Result<u16> {
    line.clear();
    if r.read_line(line).await? == 0 {
        bail!("connection closed");
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .context("status line")?
        .parse()?;
    let (mut len, mut chunked) = (None, false);
    loop {
        line.clear();
        if r.read_line(line).await? == 0 {
            bail!("connection closed in headers");
        }
        let h = line.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = Some(v.trim().parse::<usize>()?);
            } else if k.eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            }
        }
    }
    if chunked {
        loop {
            line.clear();
            r.read_line(line).await?;
            let n = usize::from_str_radix(line.trim_end().split(';').next().unwrap_or(""), 16)?;
            body.resize(n + 2, 0);
            r.read_exact(body).await?;
            if n == 0 {
                break;
            }
        }
    } else {
        body.resize(len.context("response without content-length")?, 0);
        r.read_exact(body).await?;
    }
    Ok(status)
}

struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn connection(args: &Args, warm_until: Instant, stop_at: Instant) -> anyhow::Result<Tally> {
    let request = format!(
        "GET {} HTTP/1.1\r\nhost: {}:{}\r\naccept: */*\r\n\r\n",
        args.path, args.host, args.port
    );
    let stream = TcpStream::connect((args.host.as_str(), args.port)).await?;
    stream.set_nodelay(true)?;
    let mut r = BufReader::new(stream);
    let (mut line, mut body) = (String::new(), Vec::new());
    let mut tally = Tally {
        latencies_us: Vec::with_capacity(1 << 16),
        errors: 0,
    };
    loop {
        let start = Instant::now();
        if start >= stop_at {
            return Ok(tally);
        }
        r.get_mut().write_all(request.as_bytes()).await?;
        let status = read_response(&mut r, &mut line, &mut body).await?;
        if start >= warm_until {
            if status == 200 {
                tally
                    .latencies_us
                    .push(u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX));
            } else {
                tally.errors += 1;
            }
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (latencies, errors) = rt.block_on(async {
        let t0 = Instant::now();
        let (warm_until, stop_at) = (t0 + args.warmup, t0 + args.warmup + args.duration);
        let args = &args;
        let tasks: Vec<_> = (0..args.connections)
            .map(|_| connection(args, warm_until, stop_at))
            .collect();
        let mut all = Vec::new();
        let mut errors = 0u64;
        for t in futures_join(tasks).await {
            let t = t?;
            all.extend(t.latencies_us);
            errors += t.errors;
        }
        anyhow::Ok((all, errors))
    })?;
    let mut sorted = latencies;
    sorted.sort_unstable();
    let secs = args.duration.as_secs_f64();
    let out = serde_json::json!({
        "requests": sorted.len(),
        "errors": errors,
        "rps": sorted.len() as f64 / secs,
        "p50_us": percentile(&sorted, 0.50),
        "p90_us": percentile(&sorted, 0.90),
        "p99_us": percentile(&sorted, 0.99),
        "max_us": sorted.last().copied().unwrap_or(0),
        "connections": args.connections,
        "duration_s": secs,
    });
    println!("{out}");
    Ok(())
}

/// Runs the futures concurrently on the current thread and collects their outputs in order
/// (every future is polled on each wake-up; fine for a few dozen connections).
async fn futures_join<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut outs: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (f, out) in futs.iter_mut().zip(outs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outs.into_iter().flatten().collect()
}
