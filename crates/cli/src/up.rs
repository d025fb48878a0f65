//! `pith up [--dir DIR]`: one command for a whole local network on loopback.
//!
//! Order: anvil (state in DIR/chain, same port on every run) → development CA (DIR/dev-ca) →
//! the KMS (`pith kms`, a child process) → the contracts, deployed once with the KMS as the
//! committee (threshold 1), the simulated platform enabled and exactly the measurement of
//! this `pith` binary allowed for the kms and worker roles → ETH for the KMS, a stake pool
//! with the minimum stake for each of the two operators → the gateway and two workers
//! (`pith gateway`, `pith worker`) → wait until the KMS holds a master key and both workers
//! are registered on chain and healthy at the gateway → one line beginning with `ready`
//! (`ready gateway=URL explorer=URL/explorer/ rpc=URL ...`; the gateway gets the dev CA so its
//! explorer can verify simulated evidence) →
//! supervise in the foreground: a child that dies is restarted (same ports, same state);
//! SIGINT/SIGTERM stops every child (SIGTERM, wait, then SIGKILL), anvil last so it dumps
//! its state.
//!
//! A rerun with the same DIR resumes the same network: the deployment is reused (no
//! redeploy), the ports are the ones recorded in DIR/ports.json, and each node resumes from
//! its sealed state in its own directory.
//!
//! DIR layout: `network.json` (pith_api::network::NetworkFile), `deployment.json`,
//! `ports.json`, `processes.json` (child pids, for operators and the fault tests),
//! `keys/dev-N.key` (0600), `dev-ca/`, `chain/` (anvil state and log), `kms-0/`,
//! `worker-0/`, `worker-1/`, `gateway/` (each node's state), `storage.sqlite` (program
//! storage shared by the workers), `logs/NAME.log`.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use pith_api::network::{Account, Endpoint, NetworkFile};
use pith_chain::anvil::{Anvil, AnvilConfig, DevAccount};
use pith_chain::client::{PithContracts, read_provider, signing_provider};
use pith_chain::deploy::{DeployConfig, Measurement, PHA_UNIT, deploy, platform, role};
use pith_chain::keys;
use pith_chain::manifest::{Deployment, MANIFEST_FILE};
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

use crate::chain::{LOCAL_ALLOCATION_PHA, block_on};

/// Number of workers `pith up` starts.
pub const WORKERS: usize = 2;
/// Development account indexes and their roles.
pub const DEPLOYER: usize = 0;
/// The account `pith deploy` signs with by default.
pub const DEVELOPER: usize = 1;
/// Operator of worker i is account `OPERATOR_BASE + i`.
pub const OPERATOR_BASE: usize = 2;
/// ETH given to each KMS identity (it posts its evidence on chain).
const KMS_FUNDING_ETH: u64 = 10;
/// Stake pool commission of the local operators (basis points).
const OPERATOR_COMMISSION_BPS: u16 = 1_000;
/// Time allowed for the whole network to come up.
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// Grace between SIGTERM and SIGKILL when stopping a child.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Environment variable: seconds before a dead child is restarted (default 1).
pub const RESTART_DELAY_ENV: &str = "PITH_UP_RESTART_DELAY";

/// Arguments of `pith up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Network directory (created if absent; a rerun resumes the network in it).
    #[arg(long, default_value = crate::chain::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// The anvil binary (default: $PITH_ANVIL, PATH, then contracts/node_modules).
    #[arg(long)]
    pub anvil: Option<PathBuf>,
    /// Mine a block every N seconds as well as per transaction.
    #[arg(long, default_value_t = 1)]
    pub block_time: u64,
    /// GGUF model the workers serve to programs (`env.ai.chat`); bound in their evidence.
    /// `scripts/up` passes the default model that `scripts/install.d/model` installs.
    #[arg(long, env = "PITH_MODEL")]
    pub model: Option<PathBuf>,
}

/// Ports of the network, kept in DIR/ports.json so a rerun uses the same ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    /// anvil.
    pub anvil: u16,
    /// KMS.
    pub kms: u16,
    /// Gateway.
    pub gateway: u16,
    /// Workers.
    pub workers: Vec<u16>,
}

impl Ports {
    fn load_or_allocate(dir: &Path) -> Result<Self> {
        let path = dir.join("ports.json");
        if let Ok(bytes) = std::fs::read(&path) {
            let p: Ports =
                serde_json::from_slice(&bytes).with_context(|| format!("{}", path.display()))?;
            if p.workers.len() == WORKERS {
                return Ok(p);
            }
        }
        // Hold every listener until all are chosen so no two ports repeat.
        let mut held = Vec::new();
        let mut next = || -> Result<u16> {
            let l = std::net::TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
            let port = l.local_addr()?.port();
            held.push(l);
            Ok(port)
        };
        let p = Ports {
            anvil: next()?,
            kms: next()?,
            gateway: next()?,
            workers: (0..WORKERS).map(|_| next()).collect::<Result<_>>()?,
        };
        drop(held);
        std::fs::write(&path, serde_json::to_vec_pretty(&p)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(p)
    }
}

/// The measurement hash of simulated evidence produced by this very binary (its SHA-384 is
/// the simulated MRTD input): the one measurement `pith up` allows for kms and worker.
pub fn local_measurement() -> Result<B256> {
    Ok(B256::from(pith_attest::provider::local_measurement_hash()?))
}

/// Paths inside the network directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The directory (absolute).
    pub dir: PathBuf,
}

impl Layout {
    fn p(&self, s: &str) -> PathBuf {
        self.dir.join(s)
    }
    /// Dev CA directory.
    pub fn dev_ca(&self) -> PathBuf {
        self.p("dev-ca")
    }
    /// deployment.json.
    pub fn manifest(&self) -> PathBuf {
        self.p(MANIFEST_FILE)
    }
    /// A log file.
    pub fn log(&self, name: &str) -> PathBuf {
        self.p("logs").join(format!("{name}.log"))
    }
    /// The shared program store.
    pub fn storage(&self) -> PathBuf {
        self.p("storage.sqlite")
    }
}

/// One supervised child process.
struct Service {
    name: String,
    args: Vec<OsString>,
    log: PathBuf,
    child: Option<Child>,
    restart_at: Option<Instant>,
    restarts: u32,
}

impl Service {
    fn new(name: &str, args: Vec<OsString>, layout: &Layout) -> Self {
        Self {
            name: name.into(),
            args,
            log: layout.log(name),
            child: None,
            restart_at: None,
            restarts: 0,
        }
    }

    fn spawn(&mut self) -> Result<()> {
        let exe = std::env::current_exe().context("locating the pith executable")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("{}", self.log.display()))?;
        let log2 = log.try_clone()?;
        let mut cmd = Command::new(exe);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .env(
                "PITH_LOG",
                std::env::var("PITH_LOG").unwrap_or_else(|_| "info".into()),
            )
            // Own process group: a terminal's Ctrl-C reaches `pith up` only, which then stops
            // the children in order.
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.name))?;
        tracing::info!(service = %self.name, pid = ?child.id(), "started");
        self.child = Some(child);
        self.restart_at = None;
        Ok(())
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// SIGTERM, wait up to the grace period, then SIGKILL.
    async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        if let Some(pid) = child
            .id()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        if tokio::time::timeout(STOP_GRACE, child.wait())
            .await
            .is_err()
        {
            eprintln!(
                "{} ignored SIGTERM for {STOP_GRACE:?}; killing it",
                self.name
            );
            let _ = child.kill().await;
        }
    }
}

fn os(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    args.iter().map(|a| a.as_ref().to_os_string()).collect()
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The network explorer the gateway serves (`pith_gateway::explorer`).
fn explorer_url(gateway_port: u16) -> String {
    format!("{}/explorer/", url(gateway_port))
}

fn listen(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// The command lines of the services (the flags each service's module defines).
mod cmdline {
    use super::*;

    pub fn kms(l: &Layout, ports: &Ports, rpc: &str) -> Vec<OsString> {
        os(&[
            &"kms",
            &"--dir",
            &l.p("kms-0"),
            &"--listen",
            &listen(ports.kms),
            &"--rpc",
            &rpc,
            &"--deployment",
            &l.manifest(),
            &"--dev-ca",
            &l.dev_ca(),
        ])
    }

    pub fn gateway(l: &Layout, ports: &Ports, rpc: &str) -> Vec<OsString> {
        os(&[
            &"gateway",
            &"--dir",
            &l.p("gateway"),
            &"--listen",
            &listen(ports.gateway),
            &"--rpc",
            &rpc,
            &"--deployment",
            &l.manifest(),
            &"--kms",
            &url(ports.kms),
            &"--dev-ca",
            &l.dev_ca(),
        ])
    }

    pub fn worker(
        l: &Layout,
        ports: &Ports,
        rpc: &str,
        i: usize,
        model: Option<&Path>,
    ) -> Vec<OsString> {
        let mut args = os(&[
            &"worker",
            &"--dir",
            &l.p(&format!("worker-{i}")),
            &"--listen",
            &listen(ports.workers[i]),
            &"--rpc",
            &rpc,
            &"--deployment",
            &l.manifest(),
            &"--kms",
            &url(ports.kms),
            &"--gateway",
            &url(ports.gateway),
            &"--operator-key-file",
            &keys::dev_key_path(&l.dir, OPERATOR_BASE + i),
            &"--dev-ca",
            &l.dev_ca(),
            &"--storage",
            &l.storage(),
        ]);
        if let Some(m) = model {
            args.push("--model".into());
            args.push(m.as_os_str().to_owned());
        }
        args
    }
}

fn progress(msg: impl std::fmt::Display) {
    println!("{msg}");
    let _ = std::io::stdout().flush();
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

/// Wait for the KMS to answer /v1/kms/info and return its identity address.
async fn kms_address(
    http: &crate::network::Http,
    kms_url: &str,
    kms: &mut Service,
) -> Result<Address> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let info_url = format!("{kms_url}{}", pith_api::kms::INFO);
    loop {
        if let Ok(info) = http.get_json::<pith_api::kms::KmsInfo>(&info_url).await {
            return Ok(info.address);
        }
        if let Some(c) = kms.child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            bail!(
                "the KMS exited with {status} before answering; see {}",
                kms.log.display()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the KMS did not answer {info_url} within {READY_TIMEOUT:?}; see {}",
                kms.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn deploy_network(
    accounts: &[DevAccount],
    rpc: &str,
    kms: Address,
    measurement: B256,
) -> Result<Deployment> {
    let deployer = accounts
        .get(DEPLOYER)
        .ok_or_else(|| anyhow!("anvil has no accounts"))?;
    let mut cfg = DeployConfig::local(deployer.address, vec![kms]);
    cfg.kms_threshold = 1;
    cfg.platforms = vec![(platform::SIMULATED, 0)];
    cfg.measurements = vec![
        Measurement {
            platform: platform::SIMULATED,
            role: role::KMS,
            hash: measurement,
        },
        Measurement {
            platform: platform::SIMULATED,
            role: role::WORKER,
            hash: measurement,
        },
    ];
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
    let provider = signing_provider(rpc, signer)?;
    let mut d = deploy(&provider, deployer.address, rpc, &cfg)
        .await
        .context("deploying the contracts")?;
    d.extra
        .insert("kms_committee".into(), serde_json::json!(cfg.kms_committee));
    d.extra
        .insert("local_measurement".into(), serde_json::json!(measurement));
    Ok(d)
}

/// Send ETH from the deployer when `to` has less than `eth`.
async fn fund_eth(accounts: &[DevAccount], rpc: &str, to: Address, eth: u64) -> Result<()> {
    let deployer = accounts
        .get(DEPLOYER)
        .ok_or_else(|| anyhow!("anvil has no accounts"))?;
    let signer: PrivateKeySigner = deployer.private_key.parse().context("deployer key")?;
    let p = signing_provider(rpc, signer)?;
    let want = U256::from(eth) * U256::from(10u64).pow(U256::from(18));
    if p.get_balance(to).await? >= want / U256::from(2) {
        return Ok(());
    }
    let pending = p
        .send_transaction(TransactionRequest::default().with_to(to).with_value(want))
        .await?;
    pith_chain::client::wait_receipt(&p, *pending.tx_hash()).await?;
    Ok(())
}

/// Each operator: a stake pool with the minimum stake for one worker.
async fn operator_pools(accounts: &[DevAccount], d: &Deployment, rpc: &str) -> Result<()> {
    for i in 0..WORKERS {
        let acct = accounts
            .get(OPERATOR_BASE + i)
            .ok_or_else(|| anyhow!("anvil has too few accounts"))?;
        let signer: PrivateKeySigner = acct.private_key.parse().context("operator key")?;
        let c = PithContracts::new(d, signing_provider(rpc, signer)?);
        if !c.stake_pools.pool_exists(acct.address).await? {
            c.stake_pools
                .send_create_pool(OPERATOR_COMMISSION_BPS)
                .await?;
        }
        let min = c.stake_pools.params().await?.minStake;
        let pool = c.stake_pools.pool(acct.address).await?;
        if pool.totalStake < min {
            let need = min - pool.totalStake;
            if c.pha
                .allowance(acct.address, c.stake_pools.address())
                .await?
                < need
            {
                c.pha.send_approve(c.stake_pools.address(), need).await?;
            }
            c.stake_pools.send_deposit(acct.address, need).await?;
        }
        // Onboarding pays the one-time creation of the operator's oracle fee slot.
        if c.oracle_anchor.fees_owed(acct.address).await?.is_zero() {
            if c.pha
                .allowance(acct.address, c.oracle_anchor.address())
                .await?
                .is_zero()
            {
                c.pha
                    .send_approve(c.oracle_anchor.address(), U256::from(1))
                    .await?;
            }
            c.oracle_anchor.send_open_fee_account(acct.address).await?;
        }
    }
    Ok(())
}

/// Lock the minimum stake on each registered worker (once it is registered) so it can take
/// oracle work and earn; skipped when the worker's stake already runs.
async fn start_worker_stakes(
    accounts: &[DevAccount],
    d: &Deployment,
    rpc: &str,
    workers: &[Address],
) -> Result<()> {
    for (i, w) in workers.iter().enumerate() {
        let acct = accounts
            .get(OPERATOR_BASE + i)
            .ok_or_else(|| anyhow!("anvil has too few accounts"))?;
        let signer: PrivateKeySigner = acct.private_key.parse().context("operator key")?;
        let c = PithContracts::new(d, signing_provider(rpc, signer)?);
        if c.stake_pools.raw().canWork(*w).call().await? {
            continue;
        }
        let min = c.stake_pools.params().await?.minStake;
        if let Err(e) = c
            .stake_pools
            .send("startWorker", c.stake_pools.raw().startWorker(*w, min))
            .await
        {
            // The worker's own operator logic may have started it meanwhile.
            if !c.stake_pools.raw().canWork(*w).call().await? {
                return Err(e).context(format!("starting the stake of worker {w}"));
            }
        }
    }
    Ok(())
}

fn network_file(
    layout: &Layout,
    ports: &Ports,
    d: &Deployment,
    kms: Address,
    workers: &[Address],
    accounts: &[DevAccount],
) -> Result<NetworkFile> {
    let role = |i: usize| match i {
        DEPLOYER => "deployer".to_string(),
        DEVELOPER => "developer".to_string(),
        i if (OPERATOR_BASE..OPERATOR_BASE + WORKERS).contains(&i) => {
            format!("operator-{}", i - OPERATOR_BASE)
        }
        i => format!("dev-{i}"),
    };
    Ok(NetworkFile {
        version: 1,
        gateway_url: url(ports.gateway),
        explorer_url: Some(explorer_url(ports.gateway)),
        rpc_url: url(ports.anvil),
        chain_id: d.chain_id,
        deployment: serde_json::to_value(d)?,
        kms: vec![Endpoint {
            address: kms,
            url: url(ports.kms),
        }],
        workers: workers
            .iter()
            .zip(&ports.workers)
            .map(|(a, p)| Endpoint {
                address: *a,
                url: url(*p),
            })
            .collect(),
        accounts: accounts
            .iter()
            .enumerate()
            .take(10)
            .map(|(i, a)| Account {
                address: a.address,
                key_file: format!("keys/dev-{i}.key"),
                role: role(i),
            })
            .collect(),
        dev_ca: Some("dev-ca".into()),
    })
    .map(|f| {
        let _ = layout;
        f
    })
}

fn write_processes(layout: &Layout, anvil: &Anvil, services: &[Service]) {
    let mut m = serde_json::Map::new();
    m.insert("up".into(), serde_json::json!(std::process::id()));
    m.insert("anvil".into(), serde_json::json!(anvil.pid()));
    for s in services {
        m.insert(s.name.clone(), serde_json::json!(s.pid()));
    }
    let _ = std::fs::write(
        layout.p("processes.json.tmp"),
        serde_json::to_vec_pretty(&m).unwrap_or_default(),
    )
    .and_then(|()| std::fs::rename(layout.p("processes.json.tmp"), layout.p("processes.json")));
}

/// Wait until the KMS holds a master key and every worker is registered on chain, healthy
/// at the gateway, and staked. Returns the worker addresses (in service order).
async fn wait_ready(
    http: &crate::network::Http,
    ports: &Ports,
    d: &Deployment,
    rpc: &str,
    accounts: &[DevAccount],
    services: &mut [Service],
) -> Result<Vec<Address>> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let c = PithContracts::new(d, read_provider(rpc)?);
    let mut said = std::collections::BTreeSet::new();
    let mut say = |key: String, msg: String| {
        if said.insert(key) {
            progress(msg);
        }
    };
    loop {
        for s in services.iter_mut() {
            if let Some(ch) = s.child.as_mut()
                && let Ok(Some(status)) = ch.try_wait()
            {
                bail!(
                    "{} exited with {status} while the network was starting; see {}",
                    s.name,
                    s.log.display()
                );
            }
        }
        let kms: Option<pith_api::kms::KmsInfo> = http
            .get_json(&format!("{}{}", url(ports.kms), pith_api::kms::INFO))
            .await
            .ok();
        let kms_epoch = kms.as_ref().and_then(|k| k.epoch);
        let kms_ready = kms_epoch.is_some();
        if let Some(epoch) = kms_epoch {
            say(
                "kms".into(),
                format!(
                    "  kms        {} holds master key epoch {epoch}",
                    url(ports.kms)
                ),
            );
        }
        let mut workers = Vec::new();
        for (i, p) in ports.workers.iter().enumerate() {
            let info: Option<pith_api::worker::WorkerInfo> = http
                .get_json(&format!("{}{}", url(*p), pith_api::worker::INFO))
                .await
                .ok();
            let Some(info) = info else { continue };
            let active = c
                .registry
                .is_active_worker(info.address)
                .await
                .unwrap_or(false);
            if active {
                say(
                    format!("w{i}"),
                    format!("  worker-{i}   {} registered as {}", url(*p), info.address),
                );
                workers.push(info.address);
            }
        }
        let gw_ok = http
            .get(&format!(
                "{}{}",
                url(ports.gateway),
                pith_api::gateway::HEALTH
            ))
            .await
            .is_ok();
        if gw_ok {
            say("gw".into(), format!("  gateway    {}", url(ports.gateway)));
        }
        if kms_ready && gw_ok && workers.len() == WORKERS {
            let entries: Vec<pith_api::gateway::WorkerEntry> = http
                .get_json(&format!(
                    "{}{}",
                    url(ports.gateway),
                    pith_api::gateway::WORKERS
                ))
                .await
                .unwrap_or_default();
            let healthy = workers.iter().all(|w| {
                entries
                    .iter()
                    .any(|e| e.address == *w && e.healthy && e.registered)
            });
            if healthy {
                start_worker_stakes(accounts, d, rpc, &workers).await?;
                say(
                    "stake".into(),
                    "  stake      minimum stake running on both workers".into(),
                );
                return Ok(workers);
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the network did not become ready within {READY_TIMEOUT:?} (kms ready {kms_ready}, gateway {gw_ok}, {} of {WORKERS} workers registered); see {}",
                workers.len(),
                services
                    .first()
                    .map(|s| s
                        .log
                        .parent()
                        .unwrap_or(Path::new("."))
                        .display()
                        .to_string())
                    .unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn stop_all(services: &mut [Service], anvil: Anvil) {
    // Gateway first (no new traffic), then workers (drain), then the KMS, then the chain.
    for s in services.iter_mut().rev() {
        s.stop().await;
    }
    let _ = anvil.stop().await;
}

async fn up(args: UpArgs) -> Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let dir = std::fs::canonicalize(&args.dir)?;
    let layout = Layout { dir: dir.clone() };
    for sub in ["chain", "logs"] {
        std::fs::create_dir_all(layout.p(sub))?;
    }
    let ports = Ports::load_or_allocate(&dir)?;
    let previous = if layout.manifest().exists() {
        Some(Deployment::read(&layout.manifest())?)
    } else {
        None
    };

    progress(format!("pith up: network in {}", dir.display()));
    // Workers load the model themselves; an absolute path survives their working directory.
    let model = match &args.model {
        Some(m) => {
            let m = std::fs::canonicalize(m).with_context(|| format!("--model {}", m.display()))?;
            progress(format!(
                "workers serve the model {} to programs (env.ai.chat)",
                m.display()
            ));
            Some(m)
        }
        None => None,
    };
    let anvil_config = || {
        let mut c = AnvilConfig::new()
            .port(ports.anvil)
            .state_file(layout.p("chain/anvil-state.json"))
            .log_file(layout.log("anvil"))
            .block_time_secs(args.block_time);
        if let Some(a) = &args.anvil {
            c = c.binary(a);
        }
        c
    };
    let mut anvil = Anvil::start(anvil_config())
        .await
        .context("starting anvil")?;
    let rpc = anvil.url();
    progress(format!(
        "  chain      {rpc} (anvil, state in {})",
        layout.p("chain").display()
    ));
    let accounts = anvil.accounts().to_vec();
    let mut services: Vec<Service> = Vec::new();

    let result: Result<(Deployment, Address, Vec<Address>)> = async {
        keys::write_dev_keys(&dir, &accounts)?;
        pith_attest::simulated::DevCa::init(&layout.dev_ca(), std::time::SystemTime::now())
            .map_err(|e| anyhow!("development CA: {e}"))?;
        progress(format!("  dev CA     {} (simulated TEE platform: NOT a real TEE)", layout.dev_ca().display()));

        let http = crate::network::Http::new()?;
        let mut kms = Service::new("kms-0", cmdline::kms(&layout, &ports, &rpc), &layout);
        kms.spawn()?;
        services.push(kms);
        let kms_addr = kms_address(&http, &url(ports.kms), &mut services[0]).await?;
        progress(format!("  kms        identity {kms_addr}"));
        // ETH first: the KMS posts its evidence as soon as it sees the deployment.
        fund_eth(&accounts, &rpc, kms_addr, KMS_FUNDING_ETH).await?;

        let deployment = match previous {
            Some(d) if deployed(&d, &rpc).await? => {
                progress("  contracts  resuming the deployment in deployment.json");
                d
            }
            prev => {
                if prev.is_some() {
                    progress("  contracts  deployment.json names contracts this chain does not have; deploying again");
                }
                let m = local_measurement()?;
                progress(format!("  contracts  deploying (KMS committee [{kms_addr}], allowed measurement {m})"));
                let d = deploy_network(&accounts, &rpc, kms_addr, m).await?;
                d.write(&layout.manifest())?;
                d
            }
        };
        let committee = PithContracts::new(&deployment, read_provider(&rpc)?).registry.kms_members().await?;
        if !committee.contains(&kms_addr) {
            bail!("the KMS in {} ({kms_addr}) is not in the deployed committee {committee:?}", layout.p("kms-0").display());
        }
        operator_pools(&accounts, &deployment, &rpc).await?;
        progress("  stake      operator pools funded with the minimum stake");

        let mut gw = Service::new("gateway", cmdline::gateway(&layout, &ports, &rpc), &layout);
        gw.spawn()?;
        services.push(gw);
        for i in 0..WORKERS {
            let mut w = Service::new(&format!("worker-{i}"), cmdline::worker(&layout, &ports, &rpc, i, model.as_deref()), &layout);
            w.spawn()?;
            services.push(w);
        }
        write_processes(&layout, &anvil, &services);
        let workers = wait_ready(&http, &ports, &deployment, &rpc, &accounts, &mut services).await?;
        let nf = network_file(&layout, &ports, &deployment, kms_addr, &workers, &accounts)?;
        nf.write(&dir).map_err(|e| anyhow!("{e}"))?;
        Ok((deployment, kms_addr, workers))
    }
    .await;
    let (_deployment, _kms, _workers) = match result {
        Ok(v) => v,
        Err(e) => {
            stop_all(&mut services, anvil).await;
            return Err(e);
        }
    };
    write_processes(&layout, &anvil, &services);
    let mut signals = crate::network::Signals::install()?;
    let dir_arg = if args.dir == Path::new(crate::chain::DEFAULT_DIR) {
        String::new()
    } else {
        format!(" --dir {}", args.dir.display())
    };
    progress(format!(
        "ready gateway={} explorer={} rpc={rpc} kms={} workers={} dir={} | try: pith deploy examples/hello{dir_arg} && pith call 1{dir_arg}",
        url(ports.gateway),
        explorer_url(ports.gateway),
        url(ports.kms),
        ports
            .workers
            .iter()
            .map(|p| url(*p))
            .collect::<Vec<_>>()
            .join(","),
        dir.display()
    ));

    // Supervise until a signal.
    let restart_delay = Duration::from_secs_f64(
        std::env::var(RESTART_DELAY_ENV)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(1.0)
            .max(0.0),
    );
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            () = signals.recv() => break,
            status = anvil.exited() => {
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                progress(format!("anvil exited ({status}); restarting it from {}", layout.p("chain/anvil-state.json").display()));
                tokio::time::sleep(restart_delay).await;
                anvil = loop {
                    match Anvil::start(anvil_config()).await {
                        Ok(a) => break a,
                        Err(e) => {
                            progress(format!("anvil restart failed: {e}; retrying"));
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                };
                progress(format!("anvil back on {}", anvil.url()));
                write_processes(&layout, &anvil, &services);
            }
            _ = tick.tick() => {
                let mut changed = false;
                for s in services.iter_mut() {
                    if let Some(ch) = s.child.as_mut()
                        && let Ok(Some(status)) = ch.try_wait()
                    {
                        s.child = None;
                        s.restart_at = Some(Instant::now() + restart_delay);
                        progress(format!("{} exited ({status}); restarting in {restart_delay:?}", s.name));
                    }
                    if s.child.is_none() && s.restart_at.is_some_and(|t| Instant::now() >= t) {
                        s.restarts += 1;
                        match s.spawn() {
                            Ok(()) => progress(format!("{} restarted (pid {:?}, restart {})", s.name, s.pid(), s.restarts)),
                            Err(e) => {
                                progress(format!("{} restart failed: {e:#}", s.name));
                                s.restart_at = Some(Instant::now() + Duration::from_secs(2));
                            }
                        }
                        changed = true;
                    }
                }
                if changed {
                    write_processes(&layout, &anvil, &services);
                }
            }
        }
    }
    progress("stopping: gateway, workers, KMS, then anvil (its state is saved)");
    stop_all(&mut services, anvil).await;
    let _ = std::fs::remove_file(layout.p("processes.json"));
    progress("stopped");
    Ok(())
}

/// Run `pith up`.
pub fn run(args: UpArgs) -> ExitCode {
    block_on(up(args))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = Ports::load_or_allocate(d.path()).unwrap();
        let mut all = vec![p.anvil, p.kms, p.gateway];
        all.extend(&p.workers);
        let mut dedup = all.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), all.len());
        assert_eq!(Ports::load_or_allocate(d.path()).unwrap(), p);
    }

    #[test]
    fn local_measurement_is_stable_for_this_binary() {
        // Two independent dev CAs, same binary: same measurement.
        assert_eq!(local_measurement().unwrap(), local_measurement().unwrap());
    }

    #[test]
    fn network_file_roles_and_relative_key_paths() {
        let accounts: Vec<DevAccount> = (0..10u8)
            .map(|i| DevAccount {
                address: Address::repeat_byte(i + 1),
                private_key: format!("0x{}", hex::encode([i + 1; 32])),
            })
            .collect();
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "chain_id": 31337, "rpc_url": "http://127.0.0.1:1", "deploy_block": 1,
            "contracts": {"PHA": "0x0000000000000000000000000000000000000001", "Registry": "0x0000000000000000000000000000000000000002",
                "Programs": "0x0000000000000000000000000000000000000003", "StakePools": "0x0000000000000000000000000000000000000004",
                "Billing": "0x0000000000000000000000000000000000000005", "OracleAnchor": "0x0000000000000000000000000000000000000006",
                "Governor": "0x0000000000000000000000000000000000000007", "Timelock": "0x0000000000000000000000000000000000000008"}
        }))
        .unwrap();
        let ports = Ports {
            anvil: 1,
            kms: 2,
            gateway: 3,
            workers: vec![4, 5],
        };
        let l = Layout {
            dir: PathBuf::from("/x"),
        };
        let f = network_file(
            &l,
            &ports,
            &d,
            Address::repeat_byte(9),
            &[Address::repeat_byte(7), Address::repeat_byte(8)],
            &accounts,
        )
        .unwrap();
        assert_eq!(f.gateway_url, "http://127.0.0.1:3");
        assert_eq!(f.workers.len(), 2);
        let roles: Vec<&str> = f.accounts.iter().map(|a| a.role.as_str()).collect();
        assert_eq!(
            &roles[..4],
            ["deployer", "developer", "operator-0", "operator-1"]
        );
        assert!(
            f.accounts
                .iter()
                .all(|a| !Path::new(&a.key_file).is_absolute())
        );
        let back: Deployment = serde_json::from_value(f.deployment).unwrap();
        assert_eq!(back, d);
    }
}
