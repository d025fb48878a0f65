//! `pith chain up` and `pith chain status`, and the network options shared by the chain
//! commands (`--dir`, `--rpc`, `--private-key-file`, `--keystore`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use pith_chain::anvil::{Anvil, AnvilConfig};
use pith_chain::client::{PithContracts, read_provider, signing_provider};
use pith_chain::deploy::{DeployConfig, Measurement, PHA_UNIT, deploy};
use pith_chain::keys;
use pith_chain::manifest::{Deployment, MANIFEST_FILE};

/// Default network directory.
pub const DEFAULT_DIR: &str = ".pith";
/// Environment variable holding the keystore password (otherwise it is prompted for).
pub const KEYSTORE_PASSWORD_ENV: &str = "PITH_KEYSTORE_PASSWORD";
/// Local development account used as the first KMS member when `--kms` is not given.
pub const LOCAL_KMS_ACCOUNT: usize = 9;
/// PHA given to each local development account 1..=8 at deployment.
pub const LOCAL_ALLOCATION_PHA: u128 = 1_000_000;

/// `pith chain ...`
#[derive(Debug, Subcommand)]
pub enum ChainCommand {
    /// Start a local chain (anvil), deploy the contracts once, print `ready <RPC URL>`, and run
    /// until SIGINT or SIGTERM. A restart with the same DIR keeps the chain and its port.
    Up(UpArgs),
    /// Show the chain and the deployed contracts.
    Status(StatusArgs),
}

/// Arguments of `pith chain up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Network directory (deployment.json, anvil state, dev keys).
    #[arg(long, default_value = DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Loopback port (default: the port of an earlier run in DIR, else a free one).
    #[arg(long)]
    pub port: Option<u16>,
    /// First KMS committee member (repeatable; default: development account 9).
    #[arg(long)]
    pub kms: Vec<Address>,
    /// KMS signature threshold.
    #[arg(long, default_value_t = 1)]
    pub kms_threshold: u8,
    /// Allowed measurement `PLATFORM:ROLE:0xHASH` (platform id, role kms|worker), repeatable;
    /// for the local binaries' measurements.
    #[arg(long = "measurement")]
    pub measurements: Vec<String>,
    /// Mine a block every N seconds as well as per transaction (default: per transaction).
    #[arg(long)]
    pub block_time: Option<u64>,
    /// The anvil binary (default: PATH, then contracts/node_modules).
    #[arg(long)]
    pub anvil: Option<PathBuf>,
}

/// Arguments of `pith chain status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Where the chain is and who signs: `--dir DIR` (deployment.json, RPC URL and local dev keys
/// from DIR), or explicit `--rpc URL` with `--private-key-file FILE` or `--keystore FILE`.
/// A key is never taken from the command line itself.
#[derive(Debug, Clone, Args)]
pub struct NetArgs {
    /// Network directory written by `pith chain up`.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The deployment manifest (default: DIR/deployment.json).
    #[arg(long)]
    pub deployment: Option<PathBuf>,
    /// JSON-RPC URL (default: the manifest's rpc_url).
    #[arg(long)]
    pub rpc: Option<String>,
    /// File holding the signing key as hex (mode 0600).
    #[arg(long, conflicts_with = "keystore")]
    pub private_key_file: Option<PathBuf>,
    /// Encrypted JSON keystore; password from $PITH_KEYSTORE_PASSWORD or a prompt.
    #[arg(long)]
    pub keystore: Option<PathBuf>,
    /// Local development account to sign with (DIR/keys/dev-N.key) when no key is given.
    #[arg(long, default_value_t = 0)]
    pub account: usize,
}

/// A resolved network: manifest, RPC URL, and (when signing) a signer.
pub struct Net {
    pub deployment: Deployment,
    pub rpc: String,
    pub signer: Option<PrivateKeySigner>,
}

impl NetArgs {
    fn dir(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
    }

    /// Read the manifest and RPC URL; load a signer when `signing`.
    pub fn resolve(&self, signing: bool) -> Result<Net> {
        let manifest = self
            .deployment
            .clone()
            .unwrap_or_else(|| self.dir().join(MANIFEST_FILE));
        let deployment = Deployment::read(&manifest)
            .with_context(|| format!("reading {} (run `pith chain up`?)", manifest.display()))?;
        let rpc = self
            .rpc
            .clone()
            .unwrap_or_else(|| deployment.rpc_url.clone());
        let signer = if signing { Some(self.signer()?) } else { None };
        Ok(Net {
            deployment,
            rpc,
            signer,
        })
    }

    fn signer(&self) -> Result<PrivateKeySigner> {
        if let Some(f) = &self.private_key_file {
            return Ok(keys::signer_from_key_file(f)?);
        }
        if let Some(ks) = &self.keystore {
            let password = match std::env::var(KEYSTORE_PASSWORD_ENV) {
                Ok(p) => p,
                Err(_) => rpassword::prompt_password(format!("password for {}: ", ks.display()))
                    .context("reading the keystore password")?,
            };
            return Ok(keys::signer_from_keystore(ks, password.as_bytes())?);
        }
        if self.rpc.is_some() && self.dir.is_none() {
            bail!("--rpc needs --private-key-file or --keystore to sign");
        }
        let path = keys::dev_key_path(&self.dir(), self.account);
        keys::signer_from_key_file(&path)
            .with_context(|| format!("development key {}", path.display()))
    }
}

impl Net {
    /// Clients through a provider that signs with this network's signer (or read-only).
    pub fn contracts(&self) -> Result<PithContracts> {
        let provider = self.provider()?;
        Ok(PithContracts::new(&self.deployment, provider))
    }
    /// The provider.
    pub fn provider(&self) -> Result<DynProvider> {
        Ok(match &self.signer {
            Some(s) => signing_provider(&self.rpc, s.clone())?,
            None => read_provider(&self.rpc)?,
        })
    }
    /// The signer's address.
    pub fn sender(&self) -> Result<Address> {
        self.signer
            .as_ref()
            .map(|s| s.address())
            .ok_or_else(|| anyhow!("no signer"))
    }
}

/// Parse a PHA amount (`1.5`, `1000`) into wei.
pub fn parse_pha(s: &str) -> Result<U256> {
    let v = alloy::primitives::utils::parse_units(s, 18)
        .with_context(|| format!("bad PHA amount {s:?}"))?;
    Ok(v.get_absolute())
}

/// Format wei as PHA.
pub fn format_pha(v: U256) -> String {
    alloy::primitives::utils::format_units(v, 18).unwrap_or_else(|_| v.to_string())
}

/// Run a future on a fresh multi-threaded runtime.
pub fn block_on<F: std::future::Future<Output = Result<()>>>(f: F) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(f) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Run a chain command.
pub fn run(cmd: ChainCommand) -> ExitCode {
    match cmd {
        ChainCommand::Up(args) => block_on(up(args)),
        ChainCommand::Status(args) => block_on(status(args)),
    }
}

fn parse_measurement(s: &str) -> Result<Measurement> {
    let mut parts = s.splitn(3, ':');
    let (Some(p), Some(r), Some(h)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("--measurement {s:?}: expected PLATFORM:ROLE:0xHASH");
    };
    let platform: u8 = p
        .parse()
        .with_context(|| format!("--measurement {s:?}: platform id"))?;
    let role = match r {
        "kms" | "0" => pith_chain::deploy::role::KMS,
        "worker" | "1" => pith_chain::deploy::role::WORKER,
        other => bail!("--measurement {s:?}: role {other:?} is not kms or worker"),
    };
    let hash: B256 = h
        .parse()
        .with_context(|| format!("--measurement {s:?}: hash"))?;
    Ok(Measurement {
        platform,
        role,
        hash,
    })
}

fn port_of(rpc_url: &str) -> Option<u16> {
    rpc_url
        .rsplit(':')
        .next()?
        .trim_end_matches('/')
        .parse()
        .ok()
}

async fn up(args: UpArgs) -> Result<()> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir.join("chain"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let manifest_path = dir.join(MANIFEST_FILE);
    let previous = if manifest_path.exists() {
        Some(Deployment::read(&manifest_path)?)
    } else {
        None
    };
    let measurements = args
        .measurements
        .iter()
        .map(|m| parse_measurement(m))
        .collect::<Result<Vec<_>>>()?;

    // The port of --port, else the one the chain had, else a free one that Anvil::start
    // picks (and picks again if another process takes it first).
    let port = args
        .port
        .or_else(|| previous.as_ref().and_then(|d| port_of(&d.rpc_url)));
    let mut config = AnvilConfig::new()
        .state_file(dir.join("chain/anvil-state.json"))
        .log_file(dir.join("chain/anvil.log"));
    if let Some(port) = port {
        config = config.port(port);
    }
    if let Some(bt) = args.block_time {
        config = config.block_time_secs(bt);
    }
    if let Some(a) = &args.anvil {
        config = config.binary(a);
    }
    let mut anvil = Anvil::start(config).await.context("starting anvil")?;
    let url = anvil.url();
    let result = async {
        keys::write_dev_keys(dir, anvil.accounts())?;
        let deployment = match previous {
            Some(mut d) if deployed(&d, &url).await? => {
                d.rpc_url = url.clone();
                d
            }
            prev => {
                if prev.is_some() {
                    tracing::warn!(
                        "deployment.json names contracts this chain does not have; deploying again"
                    );
                }
                deploy_local(&anvil, &url, &args, measurements).await?
            }
        };
        deployment.write(&manifest_path)?;
        Ok::<_, anyhow::Error>(deployment)
    }
    .await;
    let deployment = match result {
        Ok(d) => d,
        Err(e) => {
            let _ = anvil.stop().await;
            return Err(e);
        }
    };

    let mut signals = crate::network::Signals::install()?;
    println!(
        "ready {url} chain_id={} deployment={}",
        deployment.chain_id,
        manifest_path.display()
    );
    let _ = std::io::stdout().flush();

    tokio::select! {
        () = signals.recv() => {}
        status = anvil.exited() => {
            bail!("anvil exited unexpectedly ({:?}); see {}", status?, dir.join("chain/anvil.log").display());
        }
    }
    eprintln!(
        "stopping anvil (state saved to {})",
        dir.join("chain/anvil-state.json").display()
    );
    anvil.stop().await?;
    Ok(())
}

async fn deployed(d: &Deployment, url: &str) -> Result<bool> {
    let provider = read_provider(url)?;
    if provider.get_chain_id().await? != d.chain_id {
        return Ok(false);
    }
    for (_, addr) in d.contracts.named() {
        if provider.get_code_at(addr).await?.is_empty() {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn deploy_local(
    anvil: &Anvil,
    url: &str,
    args: &UpArgs,
    measurements: Vec<Measurement>,
) -> Result<Deployment> {
    let accounts = anvil.accounts();
    let deployer = accounts
        .first()
        .ok_or_else(|| anyhow!("anvil has no accounts"))?;
    let kms = if args.kms.is_empty() {
        vec![
            accounts
                .get(LOCAL_KMS_ACCOUNT)
                .ok_or_else(|| anyhow!("anvil has too few accounts"))?
                .address,
        ]
    } else {
        args.kms.clone()
    };
    let mut cfg = DeployConfig::local(deployer.address, kms);
    cfg.kms_threshold = args.kms_threshold;
    cfg.measurements = measurements;
    cfg.allocations = accounts
        .iter()
        .skip(1)
        .take(8)
        .map(|a| {
            (
                a.address,
                U256::from(LOCAL_ALLOCATION_PHA) * U256::from(PHA_UNIT),
            )
        })
        .collect();
    let signer: PrivateKeySigner = deployer.private_key.parse().context("deployer key")?;
    let provider = signing_provider(url, signer)?;
    let mut d = deploy(&provider, deployer.address, url, &cfg)
        .await
        .context("deploying the contracts")?;
    d.extra
        .insert("kms_committee".into(), serde_json::json!(cfg.kms_committee));
    Ok(d)
}

async fn status(args: StatusArgs) -> Result<()> {
    let net = args.net.resolve(false)?;
    let c = net.contracts()?;
    let p = c.provider();
    let chain_id = p
        .get_chain_id()
        .await
        .with_context(|| format!("connecting to {}", net.rpc))?;
    let head = p.get_block_number().await?;
    let mut contracts = serde_json::Map::new();
    for (name, addr) in net.deployment.contracts.named() {
        let code = p.get_code_at(addr).await?;
        contracts.insert(
            name.into(),
            serde_json::json!({"address": addr, "code_bytes": code.len()}),
        );
    }
    let supply = c.pha.total_supply().await?;
    let kms = c.registry.kms_members().await?;
    let threshold = c.registry.kms_threshold().await?;
    let vd = c.governor.voting_delay().await?;
    let vp = c.governor.voting_period().await?;
    let ok = chain_id == net.deployment.chain_id
        && contracts
            .values()
            .all(|v| v["code_bytes"].as_u64() != Some(0));
    if args.json {
        let v = serde_json::json!({
            "ok": ok,
            "rpc_url": net.rpc,
            "chain_id": chain_id,
            "head_block": head,
            "deploy_block": net.deployment.deploy_block,
            "contracts": contracts,
            "pha_total_supply": supply.to_string(),
            "kms_committee": kms,
            "kms_threshold": threshold,
            "governor": {"voting_delay": vd.to_string(), "voting_period": vp.to_string()},
        });
        println!("{v}");
    } else {
        println!(
            "chain      {} (chain id {chain_id}, head block {head}, deployed at {})",
            net.rpc, net.deployment.deploy_block
        );
        for (name, v) in &contracts {
            println!(
                "{name:<12} {} ({} bytes of code)",
                v["address"].as_str().unwrap_or("?"),
                v["code_bytes"]
            );
        }
        println!("PHA supply {} PHA", format_pha(supply));
        println!("KMS        {} of {:?}", threshold, kms);
        println!("governor   voting delay {vd} blocks, period {vp} blocks");
    }
    if !ok {
        bail!("the chain does not match deployment.json");
    }
    Ok(())
}

/// Check that `path` is inside a network directory (used by tests and `pith up`).
pub fn manifest_path(dir: &Path) -> PathBuf {
    dir.join(MANIFEST_FILE)
}
