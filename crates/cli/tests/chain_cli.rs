//! `pith chain up` as a process (ready line, deployment.json, SIGTERM, restart on the same
//! port with the same contracts and state), and `pith stake` / `pith gov` through the binary.
//! Skips with a message only when anvil is not installed (scripts/install.d/node-tools).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use pith_chain::Deployment;
use pith_chain::client::{PithContracts, read_provider};

fn pith() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pith"))
}

use pith_testkit::anvil_available;

/// A `pith chain up` process, sent SIGTERM when dropped (so a failing test leaves nothing).
struct Up(Option<Child>);

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            if let Some(pid) = rustix::process::Pid::from_raw(c.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let _ = c.wait();
        }
    }
}

/// Start `pith chain up --dir DIR`, wait for its `ready` line, return the child and the URL.
fn chain_up(dir: &Path) -> (Up, String) {
    let mut child = pith()
        .args(["chain", "up", "--dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn pith chain up");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("no ready line from pith chain up");
    assert!(line.starts_with("ready "), "first line: {line}");
    let url = line.split_whitespace().nth(1).unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    (Up(Some(child)), url)
}

fn sigterm_and_wait(mut up: Up) {
    let mut child = up.0.take().unwrap();
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "pith chain up exited with {status}");
}

fn run(args: &[&str], dir: &Path) -> Output {
    let out = pith().args(args).arg("--dir").arg(dir).output().unwrap();
    eprintln!(
        "$ pith {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(args: &[&str], dir: &Path) -> String {
    let out = run(args, dir);
    assert!(out.status.success(), "pith {} failed", args.join(" "));
    String::from_utf8(out.stdout).unwrap()
}

async fn rpc(url: &str, method: &'static str, params: serde_json::Value) {
    let p = read_provider(url).unwrap();
    let _: serde_json::Value = p.raw_request(method.into(), params).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn chain_up_stake_gov_and_restart() {
    if !anvil_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let (child, url) = chain_up(&dir);
    let d = Deployment::read(&dir.join("deployment.json")).unwrap();
    assert_eq!(d.rpc_url, url);
    assert_eq!(d.chain_id, 31337);

    // Status sees every contract.
    let status: serde_json::Value =
        serde_json::from_str(ok(&["chain", "status", "--json"], &dir).trim()).unwrap();
    assert_eq!(status["ok"], true);
    assert_eq!(status["pha_total_supply"], "1000000000000000000000000000");

    // Development keys are private files.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("keys/dev-1.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Staking: account 1 opens a pool, account 2 deposits, withdraws, and claims after unbonding.
    let provider = read_provider(&url).unwrap();
    let c = PithContracts::new(&d, provider.clone());
    let accounts: Vec<Address> = provider.get_accounts().await.unwrap();
    let (operator, staker) = (accounts[1], accounts[2]);
    let op = operator.to_string();

    // Negative: no pool yet.
    let out = run(
        &[
            "stake",
            "deposit",
            "--account",
            "2",
            "--operator",
            &op,
            "--amount",
            "100",
        ],
        &dir,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NoPool"));

    ok(
        &[
            "stake",
            "create-pool",
            "--account",
            "1",
            "--commission-bps",
            "500",
        ],
        &dir,
    );
    let before = c.pha.balance_of(staker).await.unwrap();
    let s = ok(
        &[
            "stake",
            "deposit",
            "--account",
            "2",
            "--operator",
            &op,
            "--amount",
            "100",
        ],
        &dir,
    );
    assert!(s.starts_with("deposited 100.000000000000000000 PHA"), "{s}");
    let hundred = U256::from(100u64) * U256::from(pith_chain::deploy::PHA_UNIT);
    assert_eq!(
        c.stake_pools.shares_of(operator, staker).await.unwrap(),
        hundred
    );
    assert_eq!(c.pha.balance_of(staker).await.unwrap(), before - hundred);

    ok(
        &["stake", "withdraw", "--account", "2", "--operator", &op],
        &dir,
    );
    assert_eq!(
        c.stake_pools
            .queued_shares_of(operator, staker)
            .await
            .unwrap(),
        hundred
    );
    // Before the unbonding period nothing is paid.
    let s = ok(
        &["stake", "claim", "--account", "2", "--operator", &op],
        &dir,
    );
    assert!(s.starts_with("paid 0 withdrawals"), "{s}");
    rpc(&url, "evm_increaseTime", serde_json::json!([61])).await;
    rpc(&url, "evm_mine", serde_json::json!([])).await;
    let s = ok(
        &["stake", "claim", "--account", "2", "--operator", &op],
        &dir,
    );
    assert!(s.starts_with("paid 1 withdrawals"), "{s}");
    assert_eq!(c.pha.balance_of(staker).await.unwrap(), before);

    // Governance through the CLI: propose, vote, (blocks pass), queue + execute.
    let out = ok(
        &[
            "gov",
            "propose",
            "--target",
            "Billing",
            "--function",
            "setWithdrawDelay(uint64)",
            "--arg",
            "300",
            "--description",
            "cli test: withdraw delay 300",
        ],
        &dir,
    );
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    // Negative: voting is not open yet.
    assert!(
        !run(&["gov", "vote", "--proposal", &id], &dir)
            .status
            .success()
    );
    rpc(&url, "anvil_mine", serde_json::json!(["0x2"])).await;
    ok(
        &["gov", "vote", "--proposal", &id, "--support", "for"],
        &dir,
    );
    // Negative: not executable while voting is open.
    assert!(
        !run(&["gov", "execute", "--proposal", &id], &dir)
            .status
            .success()
    );
    rpc(&url, "anvil_mine", serde_json::json!(["0x6"])).await;
    let s = ok(&["gov", "execute", "--proposal", &id], &dir);
    assert!(s.contains("executed proposal"), "{s}");
    assert_eq!(c.billing.raw().withdrawDelay().call().await.unwrap(), 300);
    // A struct argument: the price list, with the price per model token.
    let out = ok(
        &[
            "gov",
            "propose",
            "--target",
            "Billing",
            "--function",
            "setPrices((uint128,uint128,uint128,uint128))",
            "--arg",
            "(2000000000000000,1000000000000,1000000000,30000000000000)",
            "--description",
            "cli test: prices with a token price",
        ],
        &dir,
    );
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    rpc(&url, "anvil_mine", serde_json::json!(["0x2"])).await;
    ok(
        &["gov", "vote", "--proposal", &id, "--support", "for"],
        &dir,
    );
    rpc(&url, "anvil_mine", serde_json::json!(["0x6"])).await;
    ok(&["gov", "execute", "--proposal", &id], &dir);
    let p = c.billing.prices().await.unwrap();
    assert_eq!(
        (p.perRequest, p.perCpuMilli, p.perEgressByte, p.perAiToken),
        (
            2_000_000_000_000_000,
            1_000_000_000_000,
            1_000_000_000,
            30_000_000_000_000
        )
    );

    // Negative: --rpc without a key is refused; a world-readable key file is refused.
    let out = pith()
        .args([
            "stake",
            "claim",
            "--commission",
            "--rpc",
            &url,
            "--deployment",
        ])
        .arg(dir.join("deployment.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let key = dir.join("keys/dev-1.key");
    let loose = tmp.path().join("loose.key");
    std::fs::copy(&key, &loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = pith()
        .args([
            "stake",
            "claim",
            "--commission",
            "--rpc",
            &url,
            "--private-key-file",
        ])
        .arg(&loose)
        .arg("--deployment")
        .arg(dir.join("deployment.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("readable by group or others"));
    // The same key at mode 0600 with explicit --rpc works.
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = pith()
        .args([
            "stake",
            "claim",
            "--commission",
            "--rpc",
            &url,
            "--private-key-file",
        ])
        .arg(&loose)
        .arg("--deployment")
        .arg(dir.join("deployment.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let head = provider.get_block_number().await.unwrap();
    sigterm_and_wait(child);
    assert!(
        read_provider(&url)
            .unwrap()
            .get_block_number()
            .await
            .is_err(),
        "anvil still answers after SIGTERM"
    );

    // Restart: same port, same contracts, the chain's state kept, no second deployment.
    let (child, url2) = chain_up(&dir);
    assert_eq!(url2, url);
    let d2 = Deployment::read(&dir.join("deployment.json")).unwrap();
    assert_eq!(d2.contracts, d.contracts);
    assert_eq!(d2.deploy_block, d.deploy_block);
    let provider = read_provider(&url2).unwrap();
    assert!(provider.get_block_number().await.unwrap() >= head);
    let c = PithContracts::new(&d2, provider);
    assert!(c.stake_pools.pool_exists(operator).await.unwrap());
    assert_eq!(c.billing.raw().withdrawDelay().call().await.unwrap(), 300);
    sigterm_and_wait(child);
}
