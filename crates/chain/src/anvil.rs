//! The local-chain launcher: finds `anvil`, starts it on a loopback port with its state
//! persisted to a file, waits until it answers `eth_chainId`, and stops it cleanly
//! (SIGTERM, which makes anvil dump its state, then SIGKILL after a grace period).
//!
//! Restarting with the same state file brings back every block, transaction and account:
//! anvil's `--state FILE` loads the file when it exists and dumps to it on exit; a
//! `--state-interval` also dumps periodically so a crash loses at most that interval.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use alloy::primitives::Address;
use alloy::providers::{Provider, ProviderBuilder};
use serde::Deserialize;
use tokio::process::{Child, Command};

use crate::error::{Error, Result};

/// The chain id of a local anvil chain.
pub const LOCAL_CHAIN_ID: u64 = 31337;

/// Environment variable that names the anvil binary explicitly.
pub const ANVIL_ENV: &str = "PITH_ANVIL";

/// Where the `@foundry-rs/anvil` npm package puts the native binary, relative to a
/// `node_modules` directory (the platform package; `.bin/anvil` is a Node wrapper that
/// would sit between us and anvil's signal handling, so the native file is preferred).
fn node_modules_candidates(node_modules: &Path) -> Vec<PathBuf> {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    vec![
        node_modules.join(format!("@foundry-rs/anvil-{os}-{arch}/bin/anvil")),
        node_modules.join(".bin/anvil"),
    ]
}

/// Find anvil: `$PITH_ANVIL`, then `anvil` on `PATH`, then `contracts/node_modules` (and
/// `node_modules`) under `project_root` and each of its ancestors.
pub fn find_anvil(project_root: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(ANVIL_ENV) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join("anvil");
            if c.is_file() {
                return Ok(c);
            }
        }
    }
    let mut searched = Vec::new();
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(r) = project_root {
        roots.push(r.to_path_buf());
    }
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    // The crate's own location finds the workspace when run from `cargo test`.
    roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    for root in roots {
        for dir in root.ancestors() {
            for nm in [dir.join("contracts/node_modules"), dir.join("node_modules")] {
                for c in node_modules_candidates(&nm) {
                    if c.is_file() {
                        return Ok(c);
                    }
                    searched.push(c.display().to_string());
                }
            }
        }
    }
    searched.dedup();
    Err(Error::AnvilNotFound {
        searched: searched.into_iter().take(4).collect::<Vec<_>>().join(", "),
    })
}

/// Ask the OS for a free loopback port. The port is released before anvil binds it, so
/// another process could take it in between; [`Anvil::start`] then fails and reports it.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(Error::Process)?;
    let port = l.local_addr().map_err(Error::Process)?.port();
    Ok(port)
}

/// How to start anvil. Defaults: a free loopback port, chain id 31337, no state file
/// (an ephemeral chain), instant mining, a 30 s start timeout, output discarded.
#[derive(Debug, Clone)]
pub struct AnvilConfig {
    binary: Option<PathBuf>,
    project_root: Option<PathBuf>,
    port: Option<u16>,
    chain_id: u64,
    state_file: Option<PathBuf>,
    state_interval_secs: u64,
    block_time_secs: Option<u64>,
    log_file: Option<PathBuf>,
    start_timeout: Duration,
}

impl Default for AnvilConfig {
    fn default() -> Self {
        Self {
            binary: None,
            project_root: None,
            port: None,
            chain_id: LOCAL_CHAIN_ID,
            state_file: None,
            state_interval_secs: 2,
            block_time_secs: None,
            log_file: None,
            start_timeout: Duration::from_secs(30),
        }
    }
}

impl AnvilConfig {
    /// A configuration with the defaults above.
    pub fn new() -> Self {
        Self::default()
    }
    /// Use this anvil binary instead of searching (default: [`find_anvil`]).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }
    /// Where to look for `contracts/node_modules` (default: the current directory and the
    /// crate's workspace).
    pub fn project_root(mut self, path: impl Into<PathBuf>) -> Self {
        self.project_root = Some(path.into());
        self
    }
    /// Listen on this loopback port (default: a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
    /// Chain id (default 31337).
    pub fn chain_id(mut self, id: u64) -> Self {
        self.chain_id = id;
        self
    }
    /// Persist the chain to this file: loaded at start when it exists, dumped on a clean
    /// stop and every `state_interval` seconds (default: no persistence).
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }
    /// Periodic state dump interval in seconds (default 2; only with a state file).
    pub fn state_interval_secs(mut self, secs: u64) -> Self {
        self.state_interval_secs = secs;
        self
    }
    /// Also mine a block every `secs` seconds (default: only one block per transaction).
    /// Transactions are still mined at once (anvil's `--mixed-mining`); the interval makes
    /// block numbers and timestamps advance without traffic.
    pub fn block_time_secs(mut self, secs: u64) -> Self {
        self.block_time_secs = Some(secs);
        self
    }
    /// Append anvil's stdout and stderr to this file (default: discarded).
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_file = Some(path.into());
        self
    }
    /// How long to wait for `eth_chainId` to answer (default 30 s).
    pub fn start_timeout(mut self, t: Duration) -> Self {
        self.start_timeout = t;
        self
    }
}

/// A funded development account of the local chain (anvil's default mnemonic accounts).
#[derive(Clone)]
pub struct DevAccount {
    /// The account's address.
    pub address: Address,
    /// The account's secret key, `0x`-prefixed hex. Never log it.
    pub private_key: String,
}

impl std::fmt::Debug for DevAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevAccount")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ConfigOut {
    available_accounts: Vec<Address>,
    private_keys: Vec<String>,
}

/// A running anvil. Stop it with [`Anvil::stop`]; dropping it also sends SIGTERM and waits
/// (bounded) so the state file is written.
#[derive(Debug)]
pub struct Anvil {
    child: Option<Child>,
    port: u16,
    chain_id: u64,
    accounts: Vec<DevAccount>,
    state_file: Option<PathBuf>,
    _config_dir: ConfigDir,
}

/// A private directory for anvil's `--config-out` file, removed on drop.
#[derive(Debug)]
struct ConfigDir(PathBuf);

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How many free ports [`Anvil::start`] tries when none is configured.
pub const PORT_ATTEMPTS: u32 = 4;

/// Grace period between SIGTERM and SIGKILL when stopping anvil.
const STOP_GRACE: Duration = Duration::from_secs(10);

impl Anvil {
    /// Start anvil and wait until it answers `eth_chainId` with the configured chain id.
    ///
    /// With no port configured, a free one is picked; if another process takes it before
    /// anvil binds it (many tests starting chains at once), anvil is started again on another
    /// free port, up to [`PORT_ATTEMPTS`] times.
    pub async fn start(config: AnvilConfig) -> Result<Self> {
        let binary = match &config.binary {
            Some(b) => b.clone(),
            None => find_anvil(config.project_root.as_deref())?,
        };
        if let Some(port) = config.port {
            return Self::start_on(&config, &binary, port).await;
        }
        let mut attempt = 1;
        loop {
            match Self::start_on(&config, &binary, free_port()?).await {
                Err(Error::AnvilNotReady(why)) if attempt < PORT_ATTEMPTS => {
                    tracing::warn!(target: "pith_chain::anvil", attempt, "anvil did not start ({why}); trying another port");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn start_on(config: &AnvilConfig, binary: &Path, port: u16) -> Result<Self> {
        static STARTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let config_dir =
            std::env::temp_dir().join(format!("pith-anvil-{}-{port}-{n}", std::process::id()));
        std::fs::create_dir_all(&config_dir).map_err(|e| Error::io(&config_dir, e))?;
        let config_dir = ConfigDir(config_dir);
        let config_out = config_dir.0.join("config.json");

        let mut cmd = Command::new(binary);
        cmd.arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(port.to_string())
            .arg("--chain-id")
            .arg(config.chain_id.to_string())
            .arg("--config-out")
            .arg(&config_out)
            .arg("--silent");
        if let Some(state) = &config.state_file {
            if let Some(parent) = state.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            cmd.arg("--state")
                .arg(state)
                .arg("--preserve-historical-states");
            if config.state_interval_secs > 0 {
                cmd.arg("--state-interval")
                    .arg(config.state_interval_secs.to_string());
            }
        }
        if let Some(bt) = config.block_time_secs {
            // Without --mixed-mining anvil holds every transaction until the next interval
            // block: deploying the contracts took ~40 s at one block per second.
            cmd.arg("--block-time")
                .arg(bt.to_string())
                .arg("--mixed-mining");
        }
        match &config.log_file {
            Some(log) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .map_err(|e| Error::io(log, e))?;
                let f2 = f.try_clone().map_err(|e| Error::io(log, e))?;
                cmd.stdout(Stdio::from(f)).stderr(Stdio::from(f2));
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        cmd.stdin(Stdio::null()).kill_on_drop(true);
        tracing::debug!(target: "pith_chain::anvil", binary = %binary.display(), port, "starting anvil");
        let child = cmd.spawn().map_err(Error::Process)?;
        let mut anvil = Anvil {
            child: Some(child),
            port,
            chain_id: config.chain_id,
            accounts: Vec::new(),
            state_file: config.state_file.clone(),
            _config_dir: config_dir,
        };
        anvil.wait_ready(config.start_timeout).await?;
        // The answer must have come from our anvil, not from another one that already held
        // the port (then ours has exited, or never wrote its config).
        if let Some(child) = anvil.child.as_mut()
            && let Some(status) = child.try_wait().map_err(Error::Process)?
        {
            return Err(Error::AnvilNotReady(format!(
                "anvil exited with {status}; port {port} answers for another process"
            )));
        }
        anvil.accounts = read_config_out(&config_out).map_err(|e| {
            Error::AnvilNotReady(format!("port {port}: no config from our anvil ({e})"))
        })?;
        tracing::info!(target: "pith_chain::anvil", port, chain_id = anvil.chain_id, "anvil ready");
        Ok(anvil)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let url = self.url();
        let provider = ProviderBuilder::new().connect_http(url.parse().map_err(Error::rpc)?);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_err;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().map_err(Error::Process)? {
                    return Err(Error::AnvilNotReady(format!(
                        "anvil exited with {status} before answering (port {} taken?)",
                        self.port
                    )));
                }
            }
            match provider.get_chain_id().await {
                Ok(id) if id == self.chain_id => {
                    // Another anvil with the same chain id may hold the port (ours then fails
                    // to bind and exits): the listening socket must be our child's.
                    let pid = self.child.as_ref().and_then(tokio::process::Child::id);
                    if let Some(pid) = pid
                        && listener_owner_is(pid, self.port) == Some(false)
                    {
                        self.kill_now().await;
                        return Err(Error::AnvilNotReady(format!(
                            "port {} is held by another process",
                            self.port
                        )));
                    }
                    return Ok(());
                }
                Ok(id) => {
                    return Err(Error::AnvilNotReady(format!(
                        "port {} answers with chain id {id}, expected {}",
                        self.port, self.chain_id
                    )));
                }
                Err(e) => last_err = e.to_string(),
            }
            if tokio::time::Instant::now() >= deadline {
                self.kill_now().await;
                return Err(Error::AnvilNotReady(format!(
                    "timeout after {timeout:?}: {last_err}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The JSON-RPC URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// The port anvil listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }
    /// The state file, when the chain is persisted.
    pub fn state_file(&self) -> Option<&Path> {
        self.state_file.as_deref()
    }
    /// The funded development accounts, in anvil's order (account 0 deploys).
    pub fn accounts(&self) -> &[DevAccount] {
        &self.accounts
    }
    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Wait until anvil exits on its own (it should not): returns its exit status.
    pub async fn exited(&mut self) -> Result<std::process::ExitStatus> {
        match self.child.as_mut() {
            Some(child) => child.wait().await.map_err(Error::Process),
            None => std::future::pending().await,
        }
    }

    /// Stop anvil: SIGTERM (anvil dumps its state and exits), then SIGKILL if it is still
    /// running after a grace period. Waits for the process to exit.
    pub async fn stop(mut self) -> Result<()> {
        self.stop_inner().await
    }

    async fn stop_inner(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait().map_err(Error::Process)?.is_some() {
            return Ok(());
        }
        if let Some(pid) = child
            .id()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        match tokio::time::timeout(STOP_GRACE, child.wait()).await {
            Ok(r) => {
                r.map_err(Error::Process)?;
            }
            Err(_) => {
                tracing::warn!(target: "pith_chain::anvil", "anvil ignored SIGTERM; killing it");
                child.kill().await.map_err(Error::Process)?;
            }
        }
        tracing::info!(target: "pith_chain::anvil", port = self.port, "anvil stopped");
        Ok(())
    }

    async fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        // Best effort from a synchronous context: SIGTERM, poll for exit, then SIGKILL
        // (kill_on_drop) so neither a test failure nor a panic leaves anvil running.
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if let Some(pid) = child
            .id()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = std::time::Instant::now() + STOP_GRACE;
            while std::time::Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Whether the socket listening on 127.0.0.1:`port` belongs to process `pid` (Linux `/proc`:
/// the LISTEN entry's inode among the process's file descriptors). `None` when it cannot be
/// told (no `/proc`, no such listener yet).
fn listener_owner_is(pid: u32, port: u16) -> Option<bool> {
    let tcp = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let suffix = format!(":{port:04X}");
    let inode = tcp.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (local, state, inode) = (f.get(1)?, f.get(3)?, f.get(9)?);
        (local.ends_with(&suffix) && *state == "0A").then(|| (*inode).to_owned())
    })?;
    let target = format!("socket:[{inode}]");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == target)),
    )
}

fn read_config_out(path: &Path) -> Result<Vec<DevAccount>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let cfg: ConfigOut = serde_json::from_slice(&bytes).map_err(|e| Error::json(path, e))?;
    if cfg.available_accounts.len() != cfg.private_keys.len() {
        return Err(Error::AnvilNotReady(
            "anvil config: accounts and keys differ in number".into(),
        ));
    }
    Ok(cfg
        .available_accounts
        .into_iter()
        .zip(cfg.private_keys)
        .map(|(address, private_key)| DevAccount {
            address,
            private_key,
        })
        .collect())
}
