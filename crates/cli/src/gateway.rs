//! `pith gateway`: run the public gateway of a network (see `pith_gateway`).
//!
//! ```text
//! pith gateway --dir .pith/gateway --rpc http://127.0.0.1:8545 --deployment .pith/deployment.json \
//!              --kms http://127.0.0.1:8600 [--listen 127.0.0.1:8700] [--rate-limit 100]
//! ```
//! The network explorer is served at `/explorer/` (pass `--dev-ca` so it can verify simulated
//! evidence).
//! Prints `gateway listening on http://ADDR` once it serves, runs until SIGINT or SIGTERM,
//! then stops cleanly (in-flight requests finish, queued receipts are written).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use pith_chain::manifest::Deployment;
use pith_gateway::{Gateway, GatewayConfig};

/// Arguments of `pith gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// State directory (gateway.redb: code, receipts, secrets; the watcher cursor).
    #[arg(long, default_value = ".pith/gateway")]
    pub dir: PathBuf,
    /// Listen address (loopback by default; a non-loopback address exposes the gateway).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Chain RPC URL (default: the deployment's `rpc_url`).
    #[arg(long)]
    pub rpc: Option<String>,
    /// The deployment manifest (deployment.json).
    #[arg(long)]
    pub deployment: PathBuf,
    /// KMS base URL (repeatable; tried in order).
    #[arg(long = "kms")]
    pub kms: Vec<String>,
    /// Requests per second per client IP (0 = no limit, the default).
    #[arg(long, default_value_t = 0.0)]
    pub rate_limit: f64,
    /// Milliseconds between health checks of each worker.
    #[arg(long, default_value_t = 1000)]
    pub health_interval_ms: u64,
    /// Failed health checks in a row before a worker is taken out of routing.
    #[arg(long, default_value_t = 2)]
    pub unhealthy_after: u32,
    /// Largest code upload, bytes.
    #[arg(long, default_value_t = pith_api::gateway::MAX_CODE_BYTES)]
    pub max_code_bytes: usize,
    /// Largest invocation body, bytes.
    #[arg(long, default_value_t = pith_gateway::MAX_INVOKE_BYTES)]
    pub max_invoke_bytes: usize,
    /// The network's development CA: its certificate file (PEM or DER) or the CA directory
    /// holding `dev-ca.pem`. The explorer verifies simulated evidence with it and gives it to
    /// the page (only the public certificate is read).
    #[arg(long)]
    pub dev_ca: Option<PathBuf>,
}

/// Run `pith gateway`.
pub fn run(args: GatewayArgs) -> ExitCode {
    crate::chain::block_on(serve(args))
}

async fn serve(args: GatewayArgs) -> Result<()> {
    let deployment = Deployment::read(&args.deployment)
        .with_context(|| format!("reading {}", args.deployment.display()))?;
    if !(args.rate_limit >= 0.0 && args.rate_limit.is_finite()) {
        bail!("--rate-limit must be a non-negative number");
    }
    let rpc = args
        .rpc
        .clone()
        .unwrap_or_else(|| deployment.rpc_url.clone());
    let mut cfg = GatewayConfig::new(&args.dir, rpc, deployment);
    cfg.listen = args.listen;
    cfg.kms_urls = args.kms.clone();
    cfg.rate_limit = (args.rate_limit > 0.0).then_some(args.rate_limit);
    cfg.health_interval = Duration::from_millis(args.health_interval_ms.max(50));
    cfg.unhealthy_after = args.unhealthy_after;
    cfg.max_code_bytes = args.max_code_bytes;
    cfg.max_invoke_bytes = args.max_invoke_bytes;
    cfg.collateral = crate::attest::collateral_source()?;
    if let Some(p) = &args.dev_ca {
        let file = if p.is_dir() {
            p.join("dev-ca.pem")
        } else {
            p.clone()
        };
        cfg.dev_ca =
            Some(std::fs::read(&file).with_context(|| format!("--dev-ca {}", file.display()))?);
    }
    let mut signals = crate::network::Signals::install()?;
    let gateway = Gateway::start(cfg).await.context("starting the gateway")?;
    println!("gateway listening on {}", gateway.url());
    let cancel = gateway.cancel_token();
    tokio::spawn(async move {
        signals.recv().await;
        cancel.cancel();
    });
    gateway.wait().await;
    Ok(())
}
