//! `pith kms`: run a KMS node (see `pith_kms`).
//!
//! ```text
//! pith kms --dir .pith/kms-0 --listen 127.0.0.1:8600 --rpc http://127.0.0.1:8545 \
//!          --deployment .pith/deployment.json [--dev-ca .pith/dev-ca] [--peer URL]...
//! ```
//! Answers `GET /v1/kms/info` as soon as it holds its identity and master key, before the
//! deployment manifest exists (`pith up` deploys the contracts with this node in the
//! committee afterwards); it then polls for the manifest, binds its evidence to the network
//! and posts it on chain. Runs until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use tokio_util::sync::CancellationToken;

/// `pith kms` flags.
#[derive(Debug, Args)]
pub struct KmsArgs {
    /// State directory: sealed identity, kms.redb (sealed master keys).
    #[arg(long = "dir", value_name = "STATE_DIR", default_value = ".pith/kms-0")]
    pub dir: PathBuf,
    /// Listen address (loopback by default; a non-loopback address must be given explicitly).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8600")]
    pub listen: SocketAddr,
    /// Chain RPC URL.
    #[arg(long, value_name = "URL")]
    pub rpc: String,
    /// Deployment manifest (deployment.json); may appear after the KMS starts.
    #[arg(long, value_name = "FILE")]
    pub deployment: PathBuf,
    /// Development CA directory (simulated platform).
    #[arg(long, value_name = "DIR")]
    pub dev_ca: Option<PathBuf>,
    /// Another KMS node to replicate the master keys from (repeatable; tried in order).
    #[arg(long = "peer", value_name = "URL")]
    pub peers: Vec<String>,
    /// Join an existing committee: never generate a first master key, only replicate one.
    #[arg(long)]
    pub join: bool,
    /// Lifetime of the worker registrations it signs, in seconds (capped by the Registry).
    #[arg(long, default_value_t = 24 * 3600)]
    pub registration_ttl_secs: u64,
    /// Seconds between chain polls (deployment, evidence, key epoch).
    #[arg(long, default_value_t = 1)]
    pub poll_secs: u64,
    /// TEST ONLY: attest as a binary with this SHA-384 (hex), i.e. a measurement the chain
    /// does not allow (negative end-to-end tests).
    #[arg(long, hide = true, env = "PITH_DANGER_ATTEST_BINARY_SHA384")]
    pub danger_attest_binary_sha384: Option<String>,
}

fn config(args: KmsArgs) -> Result<pith_kms::Config> {
    if args.poll_secs == 0 || args.registration_ttl_secs < 120 {
        bail!("--poll-secs must be at least 1 and --registration-ttl-secs at least 120");
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
    let mut c = pith_kms::Config::new(args.dir, args.listen, args.rpc, args.deployment);
    c.dev_ca_dir = args.dev_ca;
    c.collateral = crate::attest::collateral_source()?;
    c.peers = args.peers;
    c.bootstrap = !args.join;
    c.registration_ttl = Duration::from_secs(args.registration_ttl_secs);
    c.poll = Duration::from_secs(args.poll_secs);
    c.danger_binary_sha384 = danger;
    Ok(c)
}

async fn serve(args: KmsArgs) -> Result<()> {
    let config = config(args)?;
    let signals = crate::network::Signals::install()?;
    let shutdown = CancellationToken::new();
    let running = pith_kms::start(config, shutdown.clone())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    println!(
        "pith kms {:#x} listening on http://{} (master key epochs {:?})",
        running.kms.address(),
        running.addr,
        running.kms.epochs()
    );
    crate::network::serve_until_signal(signals, shutdown, running.done).await
}

/// Run `pith kms`.
pub fn run(args: KmsArgs) -> ExitCode {
    crate::chain::block_on(serve(args))
}
