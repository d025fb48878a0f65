//! `pith verify RECEIPT_FILE|WORKER_ADDRESS`: the whole chain of trust (see
//! [`crate::trust`]) from facts read from the chain — the worker's evidence comes from the
//! calldata of its registration transaction, so the gateway is not trusted for it — or, with
//! `--offline`, from an archive written by `pith call --save DIR` / `pith verify --save DIR`.
//!
//! Archive layout: `receipt.json` (when a receipt was verified), `evidence.bin` (raw worker
//! evidence), `dev-ca.pem` (simulated platform) and/or `collateral/` (vendor collateral in the
//! corpus layout), `facts.json` ([`crate::trust::Facts`]: the Registry and Programs facts
//! used, with the block they were read at).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::{SolCall, SolEvent};
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use pith_chain::bindings::{Programs, Registry};
use pith_crypto::receipt::SignedReceipt;
use serde_json::json;

use crate::network::{NetOpts, Network, now_secs, route};
use crate::trust::{self, Check, Facts, ProgramFacts, WorkerRecord};

/// Registry role id of workers.
const ROLE_WORKER: u8 = 1;

/// Arguments of `pith verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A receipt file (the `receipt` object of `pith call --json`, or the whole output), a
    /// worker address, or with --offline an archive directory.
    pub target: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Verify from an archive alone (no network access).
    #[arg(long)]
    pub offline: bool,
    /// Archive the receipt, evidence, collateral and chain facts in DIR.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Development CA certificate for simulated evidence (default: the network's).
    #[arg(long)]
    pub dev_ca: Option<PathBuf>,
    /// Vendor collateral directory (corpus layout) for TEE evidence.
    #[arg(long)]
    pub collateral: Option<PathBuf>,
    #[command(flatten)]
    pub net: NetOpts,
}

/// Read a receipt from a file: either the receipt object or `pith call --json` output.
pub fn read_receipt(path: &Path) -> Result<SignedReceipt> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", path.display()))?;
    let r = if v.get("receipt").is_some() {
        v["receipt"].clone()
    } else {
        v
    };
    serde_json::from_value(r).with_context(|| format!("{}: not a Pith receipt", path.display()))
}

/// The evidence a worker registered with, from the calldata of its registration transaction.
pub async fn registered_evidence(
    net: &Network,
    worker: Address,
    evidence_hash: B256,
) -> Result<Option<(Vec<u8>, B256)>> {
    let provider = net.provider()?;
    let filter = Filter::new()
        .address(net.deployment.contracts.registry)
        .event_signature(Registry::WorkerRegistered::SIGNATURE_HASH)
        .topic1(worker.into_word())
        .from_block(net.deployment.deploy_block);
    let logs = provider
        .get_logs(&filter)
        .await
        .context("reading WorkerRegistered logs")?;
    for log in logs.iter().rev() {
        let Ok(ev) = Registry::WorkerRegistered::decode_log_data(log.data()) else {
            continue;
        };
        if ev.evidenceHash != evidence_hash {
            continue;
        }
        let Some(tx_hash) = log.transaction_hash else {
            continue;
        };
        let Some(tx) = provider.get_transaction_by_hash(tx_hash).await? else {
            continue;
        };
        use alloy::consensus::Transaction;
        let input = tx.inner.input();
        match Registry::registerWorkerCall::abi_decode(input) {
            Ok(call) => return Ok(Some((call.evidence.to_vec(), tx_hash))),
            Err(e) => tracing::debug!(
                "registration tx {tx_hash} is not a direct registerWorker call: {e}"
            ),
        }
    }
    Ok(None)
}

async fn program_facts(net: &Network, program_id: B256) -> Result<ProgramFacts> {
    let code_hash = crate::call::code_hash_of(net, program_id).await?;
    let provider = net.provider()?;
    let mut code_history = Vec::new();
    let filter = Filter::new()
        .address(net.deployment.contracts.programs)
        .event_signature(vec![
            Programs::ProgramRegistered::SIGNATURE_HASH,
            Programs::ProgramUpgraded::SIGNATURE_HASH,
        ])
        .topic1(program_id)
        .from_block(net.deployment.deploy_block);
    for log in provider
        .get_logs(&filter)
        .await
        .context("reading Programs logs")?
    {
        if let Ok(e) = Programs::ProgramRegistered::decode_log_data(log.data()) {
            code_history.push(e.codeHash);
        } else if let Ok(e) = Programs::ProgramUpgraded::decode_log_data(log.data()) {
            code_history.push(e.newCodeHash);
        }
    }
    Ok(ProgramFacts {
        program_id,
        code_hash,
        code_history,
    })
}

/// The worker's key-transport key, from the worker itself (its URL as the gateway lists it).
async fn enc_public_key(net: &Network, worker: Address) -> Option<String> {
    let entry: pith_api::gateway::WorkerEntry = net
        .http
        .get_json(&net.url(&route(
            pith_api::gateway::WORKER,
            "address",
            &format!("{worker}"),
        )))
        .await
        .ok()?;
    let url = entry.url?;
    let info: pith_api::worker::WorkerInfo = net
        .http
        .get_json(&format!(
            "{}{}",
            url.trim_end_matches('/'),
            pith_api::worker::INFO
        ))
        .await
        .ok()?;
    (info.address == worker).then(|| format!("0x{}", hex::encode(info.enc_public_key)))
}

/// Read every fact about `worker` (and the receipt's program) from the chain.
pub async fn gather(
    net: &Network,
    worker: Address,
    receipt: Option<&SignedReceipt>,
) -> Result<(Facts, Option<Vec<u8>>)> {
    let c = net.contracts()?;
    let w = c
        .registry
        .worker_info(worker)
        .await
        .context("Registry.workerInfo")?;
    let record = WorkerRecord {
        operator: w.operator,
        platform: w.platform,
        tcb_status: w.tcbStatus,
        expiry: w.expiry,
        revoked: w.revoked,
        measurement_hash: w.measurementHash,
        evidence_hash: w.evidenceHash,
    };
    let (evidence, registration_tx) =
        match registered_evidence(net, worker, record.evidence_hash).await? {
            Some((e, tx)) => (Some(e), Some(tx)),
            None => (None, None),
        };
    let measurement_allowed = c
        .registry
        .is_allowed_measurement(record.platform, ROLE_WORKER, record.measurement_hash)
        .await?;
    let pc = c.registry.platform_config(record.platform).await?;
    let block = c.provider().get_block_number().await?;
    let program = match receipt {
        Some(r) => Some(program_facts(net, r.program_id).await?),
        None => None,
    };
    let facts = Facts {
        chain_id: net.chain_id(),
        registry: net.deployment.contracts.registry,
        block,
        read_at: now_secs(),
        worker,
        record,
        registration_tx,
        measurement_allowed,
        platform_enabled: pc.enabled,
        max_tcb_status: pc.maxTcbStatus,
        enc_public_key: enc_public_key(net, worker).await,
        program,
    };
    Ok((facts, evidence))
}

/// Write an archive for `pith verify --offline`.
pub async fn save_archive(
    net: &Network,
    dir: &Path,
    receipt: Option<&SignedReceipt>,
    worker: Address,
) -> Result<()> {
    let (facts, evidence) = gather(net, worker, receipt).await?;
    write_archive(
        dir,
        receipt,
        evidence.as_deref(),
        net.dev_ca_pem().as_deref(),
        None,
        &facts,
    )
}

fn write_archive(
    dir: &Path,
    receipt: Option<&SignedReceipt>,
    evidence: Option<&[u8]>,
    dev_ca: Option<&[u8]>,
    collateral: Option<&Path>,
    facts: &Facts,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let w = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes)
            .with_context(|| format!("writing {}", dir.join(name).display()))
    };
    if let Some(r) = receipt {
        w("receipt.json", &serde_json::to_vec_pretty(r)?)?;
    }
    if let Some(e) = evidence {
        w("evidence.bin", e)?;
    }
    if let Some(ca) = dev_ca {
        w("dev-ca.pem", ca)?;
    }
    if let Some(src) = collateral {
        let dst = dir.join("collateral");
        std::fs::create_dir_all(&dst)?;
        for entry in std::fs::read_dir(src)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::copy(entry.path(), dst.join(entry.file_name()))?;
            }
        }
    }
    w("facts.json", &serde_json::to_vec_pretty(facts)?)?;
    Ok(())
}

fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("{}: {e}", path.display())),
    }
}

fn collateral_from(dir: Option<&Path>) -> Result<pith_attest::Collateral> {
    match dir {
        Some(d) if d.is_dir() => pith_attest::Collateral::from_dir(d)
            .map_err(|e| anyhow!("collateral {}: {e}", d.display())),
        _ => Ok(pith_attest::Collateral::default()),
    }
}

/// Result of a verification.
pub struct Verdict {
    /// Worker verified.
    pub worker: Address,
    /// The receipt, when one was verified.
    pub receipt: Option<SignedReceipt>,
    /// The checks.
    pub checks: Vec<Check>,
    /// Facts used.
    pub facts: Facts,
}

async fn verify_online(args: &VerifyArgs) -> Result<Verdict> {
    let net = args.net.resolve(false).await?;
    let (receipt, worker) = match args.target.parse::<Address>() {
        Ok(a) if args.target.starts_with("0x") && args.target.len() == 42 => (None, a),
        _ => {
            let r = read_receipt(Path::new(&args.target))?;
            let w = r.worker;
            (Some(r), w)
        }
    };
    let (facts, evidence) = gather(&net, worker, receipt.as_ref()).await?;
    let dev_ca = match &args.dev_ca {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("--dev-ca {}", p.display()))?),
        None => net.dev_ca_pem(),
    };
    let collateral = collateral_from(args.collateral.as_deref())?;
    let checks = trust::check_chain_of_trust(
        receipt.as_ref(),
        evidence.as_deref(),
        &collateral,
        dev_ca.clone(),
        &facts,
        time::OffsetDateTime::now_utc(),
    );
    if let Some(dir) = &args.save {
        write_archive(
            dir,
            receipt.as_ref(),
            evidence.as_deref(),
            dev_ca.as_deref(),
            args.collateral.as_deref(),
            &facts,
        )?;
    }
    Ok(Verdict {
        worker,
        receipt,
        checks,
        facts,
    })
}

/// Verify from an archive alone. The evidence is appraised as of the time the facts were
/// read (what the archive can prove), not the current time.
pub fn verify_offline(target: &Path) -> Result<Verdict> {
    let dir = if target.is_dir() {
        target.to_path_buf()
    } else {
        target.parent().unwrap_or(Path::new(".")).to_path_buf()
    };
    let facts: Facts = serde_json::from_slice(
        &std::fs::read(dir.join("facts.json"))
            .with_context(|| format!("{}: no facts.json (not an archive)", dir.display()))?,
    )
    .context("facts.json")?;
    let receipt = match read_opt(&dir.join("receipt.json"))? {
        Some(_) => Some(read_receipt(&dir.join("receipt.json"))?),
        None => None,
    };
    let evidence = read_opt(&dir.join("evidence.bin"))?;
    let dev_ca = read_opt(&dir.join("dev-ca.pem"))?;
    let collateral = collateral_from(Some(&dir.join("collateral")))?;
    let at =
        time::OffsetDateTime::from_unix_timestamp(i64::try_from(facts.read_at).unwrap_or(i64::MAX))
            .map_err(|e| anyhow!("facts.json read_at: {e}"))?;
    let checks = trust::check_chain_of_trust(
        receipt.as_ref(),
        evidence.as_deref(),
        &collateral,
        dev_ca,
        &facts,
        at,
    );
    Ok(Verdict {
        worker: facts.worker,
        receipt,
        checks,
        facts,
    })
}

async fn verify(args: VerifyArgs) -> Result<bool> {
    let v = if args.offline {
        if args.save.is_some() {
            bail!("--offline reads an archive; --save writes one: use one of them");
        }
        verify_offline(Path::new(&args.target))?
    } else {
        verify_online(&args).await?
    };
    let ok = trust::all_ok(&v.checks);
    if args.json {
        println!(
            "{}",
            json!({
                "verified": ok,
                "worker": v.worker,
                "receipt": v.receipt,
                "checks": v.checks,
                "facts": v.facts,
                "offline": args.offline,
            })
        );
    } else {
        for c in &v.checks {
            println!(
                "{} {:<18} {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        println!("{}", if ok { "verified" } else { "NOT verified" });
    }
    Ok(ok)
}

/// Run `pith verify`: exit 0 only when every check holds.
pub fn run(args: VerifyArgs) -> ExitCode {
    run_checked(verify(args))
}

/// Exit 0 when the future returns `Ok(true)`, 1 on `Ok(false)`, 2 on an error.
pub fn run_checked<F: Future<Output = Result<bool>>>(f: F) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(f) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
