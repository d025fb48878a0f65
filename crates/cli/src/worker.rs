//! `pith worker`: run a worker node (see `pith-worker`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use tokio_util::sync::CancellationToken;

/// `pith worker` flags.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// State directory: sealed identity, sealed program keys, oracle cursor.
    #[arg(
        long = "dir",
        value_name = "STATE_DIR",
        default_value = ".pith/worker-0"
    )]
    pub dir: PathBuf,
    /// Listen address (loopback by default; a non-loopback address must be given explicitly).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8701")]
    pub listen: SocketAddr,
    /// URL announced to the gateway (default `http://` + the bound address).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Chain RPC URL.
    #[arg(long, value_name = "URL")]
    pub rpc: String,
    /// Deployment manifest (deployment.json).
    #[arg(long, value_name = "FILE")]
    pub deployment: PathBuf,
    /// KMS base URL (repeatable; tried in order).
    #[arg(long = "kms", value_name = "URL")]
    pub kms: Vec<String>,
    /// Gateway base URL (code, secrets, announcements).
    #[arg(long, value_name = "URL")]
    pub gateway: Option<String>,
    /// Operator account key file (hex): sends registerWorker, submitUsage and oracle fulfilments.
    #[arg(long, value_name = "FILE")]
    pub operator_key_file: Option<PathBuf>,
    /// Program storage: `sqlite:PATH` or a path (one SQLite file shared by the machine's workers).
    #[arg(
        long,
        value_name = "sqlite:PATH",
        default_value = ".pith/storage.sqlite"
    )]
    pub storage: String,
    /// Development CA directory (simulated platform).
    #[arg(long, value_name = "DIR")]
    pub dev_ca: Option<PathBuf>,
    /// Seconds between heartbeats (announcement + registration check).
    #[arg(long, default_value_t = 2)]
    pub heartbeat_secs: u64,
    /// Seconds between usage batches.
    #[arg(long, default_value_t = 3)]
    pub usage_secs: u64,
    /// GGUF model that answers programs' `env.ai.chat` (its SHA-256 is bound in the
    /// worker's evidence and named by receipts of invocations that use it).
    #[arg(long, env = "PITH_WORKER_MODEL")]
    pub model: Option<PathBuf>,
    /// Refuse to start unless the model file's SHA-256 is this (hex).
    #[arg(long, requires = "model")]
    pub model_sha256: Option<String>,
    /// TEST ONLY: attest as a binary with this SHA-384 (hex), i.e. a measurement the chain
    /// does not allow (negative end-to-end tests).
    #[arg(long, hide = true, env = "PITH_DANGER_ATTEST_BINARY_SHA384")]
    pub danger_attest_binary_sha384: Option<String>,
}

fn config(args: WorkerArgs) -> Result<pith_worker::Config> {
    let deployment = pith_chain::Deployment::read(&args.deployment).map_err(|e| anyhow!("{e}"))?;
    let operator = match &args.operator_key_file {
        Some(f) => Some(pith_chain::keys::signer_from_key_file(f).map_err(|e| anyhow!("{e}"))?),
        None => None,
    };
    let storage = PathBuf::from(
        args.storage
            .strip_prefix("sqlite:")
            .unwrap_or(&args.storage),
    );
    if let Some(parent) = storage.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("{}", parent.display()))?;
    }
    let danger = match &args.danger_attest_binary_sha384 {
        Some(h) => {
            let raw = hex::decode(h.trim_start_matches("0x"))
                .context("--danger-attest-binary-sha384 is not hex")?;
            Some(
                <[u8; 48]>::try_from(raw.as_slice())
                    .map_err(|_| anyhow!("--danger-attest-binary-sha384 must be 48 bytes"))?,
            )
        }
        None => None,
    };
    let model = match &args.model {
        Some(path) => {
            let pin = match &args.model_sha256 {
                Some(h) => {
                    let raw = hex::decode(h.trim_start_matches("0x"))
                        .context("--model-sha256 is not hex")?;
                    Some(
                        <[u8; 32]>::try_from(raw.as_slice())
                            .map_err(|_| anyhow!("--model-sha256 must be 32 bytes"))?,
                    )
                }
                None => None,
            };
            Some(pith_worker::ai::ModelAi::load(path, pin.as_ref()).map_err(|e| anyhow!("{e}"))?)
        }
        None => None,
    };
    if args.heartbeat_secs == 0 || args.usage_secs == 0 {
        bail!("--heartbeat-secs and --usage-secs must be at least 1");
    }
    Ok(pith_worker::Config {
        state_dir: args.dir,
        listen: args.listen,
        public_url: args.public_url,
        rpc_url: args.rpc,
        deployment,
        kms_urls: args.kms,
        gateway_url: args.gateway,
        operator,
        storage,
        dev_ca_dir: args.dev_ca,
        collateral: crate::attest::collateral_source()?,
        danger_binary_sha384: danger,
        heartbeat: Duration::from_secs(args.heartbeat_secs),
        usage_interval: Duration::from_secs(args.usage_secs),
        pool: pith_sandbox::pool::PoolConfig::default(),
        model,
    })
}

async fn serve(args: WorkerArgs) -> Result<()> {
    let config = config(args)?;
    let signals = crate::network::Signals::install()?;
    let shutdown = CancellationToken::new();
    let running = pith_worker::start(config, shutdown.clone())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    println!(
        "pith worker {:#x} listening on http://{}",
        running.node.address(),
        running.addr
    );
    crate::network::serve_until_signal(signals, shutdown, running.done).await
}

/// Run `pith worker`.
pub fn run(args: WorkerArgs) -> ExitCode {
    crate::chain::block_on(serve(args))
}
