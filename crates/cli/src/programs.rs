//! `pith deploy PROGRAM` and `pith programs list|show|upgrade|logs|topup`: what a program
//! owner needs day to day.
//!
//! Deploy = upload the code to the gateway (content-addressed by sha256, checked here),
//! `Programs.register(codeHash, config)`, the program id from the `ProgramRegistered` event,
//! then optionally an encrypted secrets upload and a PHA deposit in Billing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::SignerSync;
use alloy::sol_types::SolEvent;
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use pith_api::gateway::{self, CodeUploaded, ProgramEntry};
use pith_api::{binding, headers, media};
use pith_chain::bindings::Programs;
use pith_crypto::envelope::{ClientSession, Request};
use serde_json::json;

use crate::call::{fetch_program_key, id_hex, nonce, parse_program_id};
use crate::chain::{block_on, format_pha, parse_pha};
use crate::network::{NetOpts, Network, now_secs, route};

/// Arguments of `pith deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The program: a JavaScript or WASM file, an inference manifest, or a directory with
    /// index.js (or inference.json).
    pub program: PathBuf,
    /// A secret `KEY=VALUE` for env.secrets (repeatable; sent encrypted to the program key).
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// Let the program's fetch() reach HOST or HOST:PORT (repeatable). The allow-list is
    /// owner-signed and sent with the secrets; without one the program has no egress.
    /// A host listed here may be reached even when it resolves to a private or loopback
    /// address.
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    pub allow_hosts: Vec<String>,
    /// Run as an agent on this schedule (cron with seconds, UTC: "*/10 * * * * *"; or the
    /// classic five fields).
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
    /// Run as an agent on each log of this event: ADDRESS:Name(type,...) (repeatable).
    #[arg(long = "on-event", value_name = "ADDRESS:SIGNATURE")]
    pub on_events: Vec<String>,
    /// PHA to deposit in Billing for the program's usage.
    #[arg(long)]
    pub deposit: Option<String>,
    /// ETH to send to the program's own address (for its transactions through env.chain).
    #[arg(long)]
    pub fund: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub net: NetOpts,
}

/// `pith programs ...`
#[derive(Debug, Subcommand)]
pub enum ProgramsCommand {
    /// List programs (all, or one owner's).
    List(ListArgs),
    /// Show one program.
    Show(ShowArgs),
    /// Change a program's code.
    Upgrade(UpgradeArgs),
    /// A program's recent logs (owner only; signed request).
    Logs(ShowArgs),
    /// Deposit more PHA for a program's usage.
    Topup(TopupArgs),
    /// Set (or clear) an agent's triggers: a cron schedule and on-chain events (owner only).
    Triggers(TriggersArgs),
}

/// `pith programs triggers ID [--cron EXPR] [--on-event ADDRESS:SIGNATURE]...`.
#[derive(Debug, Args)]
pub struct TriggersArgs {
    /// Program id.
    pub program_id: String,
    /// Cron schedule (with seconds, UTC, e.g. "*/10 * * * * *"; or the classic five fields).
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
    /// An event that fires the program, once per log: ADDRESS:Name(type,...) (repeatable).
    #[arg(long = "on-event", value_name = "ADDRESS:SIGNATURE")]
    pub on_events: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub net: NetOpts,
}

/// The triggers of `--cron` and `--on-event` values, validated.
pub fn parse_triggers(
    cron: Option<&str>,
    on_events: &[String],
) -> Result<pith_api::agent::Triggers> {
    let mut events = Vec::new();
    for e in on_events {
        let (addr, sig) = e
            .split_once(':')
            .ok_or_else(|| anyhow!("--on-event {e:?}: expected ADDRESS:Name(type,...)"))?;
        let address: Address = addr
            .parse()
            .with_context(|| format!("--on-event {e:?}: address"))?;
        events.push(pith_api::agent::EventTrigger {
            address,
            event: sig.to_owned(),
        });
    }
    let t = pith_api::agent::Triggers {
        cron: cron.map(str::to_owned),
        events,
    };
    t.validate().map_err(|e| anyhow!(e))?;
    Ok(t)
}

/// Sign `triggers` as the program's owner and upload them; returns the version.
pub async fn upload_triggers(
    net: &Network,
    program_id: B256,
    triggers: pith_api::agent::Triggers,
) -> Result<u64> {
    let signer = net
        .signer
        .as_ref()
        .ok_or_else(|| anyhow!("uploading triggers needs the owner's key"))?;
    // Versions only grow: milliseconds since the epoch.
    let version = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("clock")?
            .as_millis(),
    )
    .context("clock")?;
    let digest = pith_api::agent::SignedTriggers::digest(program_id, version, &triggers);
    let signed = pith_api::agent::SignedTriggers {
        program_id,
        version,
        triggers,
        signature: sign_hex(signer, &digest).context("signing the triggers")?,
    };
    let gw = pith_api::gateway::Client::new(&net.gateway).map_err(|e| anyhow!("{e}"))?;
    gw.put_triggers(&signed)
        .await
        .map_err(|e| anyhow!("uploading the triggers: {e}"))?;
    Ok(version)
}

async fn triggers(a: TriggersArgs) -> Result<()> {
    let t = parse_triggers(a.cron.as_deref(), &a.on_events)?;
    let net = a.net.resolve(true).await?;
    let id = parse_program_id(&a.program_id)?;
    let version = upload_triggers(&net, id, t.clone()).await?;
    if a.json {
        println!(
            "{}",
            json!({"program_id": id, "version": version, "triggers": t})
        );
    } else if t.cron.is_none() && t.events.is_empty() {
        println!("program {id}: triggers cleared (version {version}); it no longer runs by itself");
    } else {
        println!(
            "program {id} runs as an agent (version {version}): cron {:?}, {} event trigger(s)",
            t.cron,
            t.events.len()
        );
    }
    Ok(())
}

/// `pith programs list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only programs of this owner.
    #[arg(long)]
    pub owner: Option<Address>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub net: NetOpts,
}

/// `pith programs show|logs ID`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Program id.
    pub program_id: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub net: NetOpts,
}

/// `pith programs upgrade ID PROGRAM`.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Program id.
    pub program_id: String,
    /// The new code: a JavaScript file, or a directory with index.js.
    pub program: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub net: NetOpts,
}

/// `pith programs topup ID PHA`.
#[derive(Debug, Args)]
pub struct TopupArgs {
    /// Program id.
    pub program_id: String,
    /// PHA to deposit.
    pub amount: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub net: NetOpts,
}

/// Read a program's code: a file, or in a directory `index.js` (or `inference.json`, the
/// manifest of an inference program).
pub fn read_code(path: &Path) -> Result<Vec<u8>> {
    let file = if path.is_dir() {
        let manifest = path.join("inference.json");
        if !path.join("index.js").exists() && manifest.exists() {
            manifest
        } else {
            path.join("index.js")
        }
    } else {
        path.to_path_buf()
    };
    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))
}

/// Upload code to the gateway and check the hash it answers with.
pub async fn upload_code(net: &Network, code: &[u8]) -> Result<B256> {
    let want = B256::from(pith_crypto::sha256(code));
    let a = net
        .http
        .send_body(
            reqwest::Method::POST,
            &net.url(gateway::CODE),
            "application/octet-stream",
            code.to_vec(),
        )
        .await?;
    let up: CodeUploaded =
        serde_json::from_slice(&a.body).context("gateway: code upload answer")?;
    if up.code_hash != want {
        bail!(
            "the gateway stored code hash {} but the code's sha256 is {want}",
            up.code_hash
        );
    }
    Ok(want)
}

/// Parse `K=V` secrets.
pub fn parse_secrets(items: &[String]) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut m = serde_json::Map::new();
    for s in items {
        let (k, v) = s.split_once('=').ok_or_else(|| {
            anyhow!(
                "--secret {:?}: expected KEY=VALUE",
                s.split('=').next().unwrap_or("")
            )
        })?;
        if k.is_empty() {
            bail!("--secret with an empty name");
        }
        m.insert(k.to_string(), json!(v));
    }
    Ok(m)
}

/// Check one `--allow-host` value: a host name or IP, optionally with `:PORT`.
pub fn check_allow_host(h: &str) -> Result<()> {
    let (host, port) = match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => (host, Some(port)),
        _ => (h, None),
    };
    if let Some(p) = port {
        p.parse::<u16>()
            .map_err(|_| anyhow!("--allow-host {h:?}: the port is not a number"))?;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ok = !host.is_empty()
        && (host.parse::<std::net::IpAddr>().is_ok()
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
    if !ok || h.contains('/') {
        bail!("--allow-host {h:?}: expected HOST or HOST:PORT (no scheme, no path)");
    }
    Ok(())
}

/// The owner's signature header of a secrets upload (see `binding::SECRETS_TAG`).
pub fn secrets_signature(
    signer: &alloy::signers::local::PrivateKeySigner,
    program_id: B256,
    body: &[u8],
    version: u64,
) -> Result<String> {
    let body_hash = pith_crypto::keccak256(body);
    let digest = binding::message_digest(
        binding::SECRETS_TAG,
        &[program_id.as_slice(), &body_hash],
        version,
    );
    sign_hex(signer, &digest).context("signing the secrets")
}

/// The owner's 65-byte signature over `digest`, `0x`-hex.
fn sign_hex(signer: &alloy::signers::local::PrivateKeySigner, digest: &B256) -> Result<String> {
    let sig = signer.sign_hash_sync(digest)?;
    Ok(format!("0x{}", hex::encode(sig.as_bytes())))
}

/// Encrypt `secrets` and the egress allow-list to the program's certified key and upload
/// them through the gateway.
pub async fn upload_secrets(
    net: &Network,
    program_id: B256,
    secrets: serde_json::Map<String, serde_json::Value>,
    egress: &[String],
) -> Result<u64> {
    let signer = net
        .signer
        .as_ref()
        .ok_or_else(|| anyhow!("uploading secrets needs the owner's key"))?;
    let key = wait_program_key(net, program_id).await?;
    // Versions are strictly increasing per program: unix milliseconds.
    let version = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1);
    let body =
        serde_json::to_vec(&json!({"version": version, "secrets": secrets, "egress": egress}))?;
    let sig = secrets_signature(signer, program_id, &body, version)?;
    let req = Request::new(
        "PUT",
        "/.pith/secrets",
        vec![
            ("content-type".into(), media::JSON.into()),
            (headers::OWNER_SIGNATURE.into(), sig),
        ],
        body,
        nonce()?,
        now_secs() + crate::call::REQUEST_TTL_SECS,
    );
    let (wire, _session) =
        ClientSession::encapsulate(&key.ohttp_keys, &req).context("encrypting the secrets")?;
    let url = net.url(&route(gateway::PROGRAM_SECRETS, "id", &id_hex(program_id)));
    net.http
        .send_body(reqwest::Method::PUT, &url, media::OHTTP_REQ, wire)
        .await?;
    Ok(version)
}

/// The program key, retried for a few seconds (the KMS certifies it on first request).
async fn wait_program_key(net: &Network, program_id: B256) -> Result<crate::call::ProgramKey> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match fetch_program_key(net, program_id).await {
            Ok(k) => return Ok(k),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!("program key not ready: {e:#}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Approve and deposit PHA for a program in Billing.
pub async fn deposit(net: &Network, program_id: B256, amount: U256) -> Result<B256> {
    let c = net.contracts()?;
    let me = net.sender()?;
    if c.pha.allowance(me, c.billing.address()).await? < amount {
        c.pha.send_approve(c.billing.address(), amount).await?;
    }
    let r = c
        .billing
        .send(
            "deposit",
            c.billing
                .raw()
                .deposit(U256::from_be_bytes(program_id.0), amount),
        )
        .await?;
    Ok(r.transaction_hash)
}

async fn deploy(args: DeployArgs) -> Result<()> {
    let net = args.net.resolve(true).await?;
    let code = read_code(&args.program)?;
    let secrets = parse_secrets(&args.secrets)?;
    for h in &args.allow_hosts {
        check_allow_host(h)?;
    }
    let triggers = (args.cron.is_some() || !args.on_events.is_empty())
        .then(|| parse_triggers(args.cron.as_deref(), &args.on_events))
        .transpose()?;
    let deposit_amount = args.deposit.as_deref().map(parse_pha).transpose()?;
    let code_hash = upload_code(&net, &code).await?;
    let c = net.contracts()?;
    let r = c
        .programs
        .send(
            "register",
            c.programs
                .raw()
                .register(code_hash, Programs::Config::default()),
        )
        .await?;
    let program_id = r
        .inner
        .logs()
        .iter()
        .find_map(|l| Programs::ProgramRegistered::decode_log_data(l.data()).ok())
        .map(|e| B256::from(e.programId))
        .ok_or_else(|| {
            anyhow!(
                "register tx {} has no ProgramRegistered event",
                r.transaction_hash
            )
        })?;
    let mut out =
        json!({"program_id": program_id, "code_hash": code_hash, "tx": r.transaction_hash});
    if !secrets.is_empty() || !args.allow_hosts.is_empty() {
        let v = upload_secrets(&net, program_id, secrets, &args.allow_hosts).await?;
        out["secrets_version"] = json!(v);
    }
    if let Some(a) = deposit_amount {
        out["deposit_tx"] = json!(deposit(&net, program_id, a).await?);
    }
    if let Some(t) = triggers {
        out["triggers_version"] = json!(upload_triggers(&net, program_id, t).await?);
    }
    if let Some(eth) = &args.fund {
        let entry = wait_entry_address(&net, program_id).await?;
        let wei = alloy::primitives::utils::parse_ether(eth)
            .with_context(|| format!("--fund {eth:?}"))?;
        let p = net.provider()?;
        let tx = TransactionRequest::default().with_to(entry).with_value(wei);
        let pending = p
            .send_transaction(tx)
            .await
            .context("funding the program address")?;
        let receipt = pith_chain::client::wait_receipt(&p, *pending.tx_hash()).await?;
        out["program_address"] = json!(entry);
        out["fund_tx"] = json!(receipt.transaction_hash);
    }
    if args.json {
        println!("{out}");
    } else {
        println!(
            "program {program_id} (code {code_hash}) registered in tx {}",
            r.transaction_hash
        );
        if let Some(v) = out.get("secrets_version") {
            println!("secrets uploaded (version {v})");
        }
        if let Some(a) = deposit_amount {
            println!("deposited {} PHA", format_pha(a));
        }
        println!("try: pith call {program_id}");
    }
    Ok(())
}

/// The program's own address, as the gateway reports it (from its certified key).
async fn wait_entry_address(net: &Network, program_id: B256) -> Result<Address> {
    let url = net.url(&route(gateway::PROGRAM, "id", &id_hex(program_id)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(ProgramEntry {
            address: Some(a), ..
        }) = net.http.get_json::<ProgramEntry>(&url).await
        {
            return Ok(a);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the gateway does not know program {program_id}'s address yet");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn entry_line(e: &ProgramEntry) -> String {
    format!(
        "{} owner {} code {} deposit {} PHA calls {}{}",
        e.program_id,
        e.owner,
        e.code_hash,
        e.deposit
            .parse::<U256>()
            .map(format_pha)
            .unwrap_or_else(|_| e.deposit.clone()),
        e.calls,
        if e.key.is_some() {
            ""
        } else {
            " (no key certified yet)"
        }
    )
}

async fn list(a: ListArgs) -> Result<()> {
    let net = a.net.resolve(false).await?;
    let mut entries: Vec<ProgramEntry> = net.http.get_json(&net.url(gateway::PROGRAMS)).await?;
    if let Some(o) = a.owner {
        entries.retain(|e| e.owner == o);
    }
    if a.json {
        println!("{}", serde_json::to_string(&entries)?);
    } else {
        for e in &entries {
            println!("{}", entry_line(e));
        }
    }
    Ok(())
}

async fn show(a: ShowArgs) -> Result<()> {
    let net = a.net.resolve(false).await?;
    let id = parse_program_id(&a.program_id)?;
    let e: ProgramEntry = net
        .http
        .get_json(&net.url(&route(gateway::PROGRAM, "id", &id_hex(id))))
        .await?;
    // The chain is the authority on owner and code; say so when the gateway disagrees.
    let c = net.contracts()?;
    let p = c
        .programs
        .raw()
        .program(U256::from_be_bytes(id.0))
        .call()
        .await
        .context("Programs.program")?;
    let consistent = p.owner == e.owner && p.codeHash == e.code_hash;
    if a.json {
        let mut v = serde_json::to_value(&e)?;
        v["chain"] = json!({"owner": p.owner, "code_hash": p.codeHash, "code_admin": p.codeAdmin, "matches_gateway": consistent});
        println!("{v}");
    } else {
        println!("{}", entry_line(&e));
        if let Some(addr) = e.address {
            println!("address {addr}");
        }
        if !consistent {
            println!(
                "WARNING: the chain says owner {} code {}",
                p.owner, p.codeHash
            );
        }
    }
    Ok(())
}

async fn upgrade(a: UpgradeArgs) -> Result<()> {
    let net = a.net.resolve(true).await?;
    let id = parse_program_id(&a.program_id)?;
    let code = read_code(&a.program)?;
    let code_hash = upload_code(&net, &code).await?;
    let c = net.contracts()?;
    let r = c
        .programs
        .send(
            "upgrade",
            c.programs
                .raw()
                .upgrade(U256::from_be_bytes(id.0), code_hash),
        )
        .await?;
    if a.json {
        println!(
            "{}",
            json!({"program_id": id, "code_hash": code_hash, "tx": r.transaction_hash})
        );
    } else {
        println!(
            "program {id} now runs code {code_hash} (tx {})",
            r.transaction_hash
        );
    }
    Ok(())
}

async fn logs(a: ShowArgs) -> Result<()> {
    let net = a.net.resolve(true).await?;
    let id = parse_program_id(&a.program_id)?;
    let signer = net.signer.as_ref().ok_or_else(|| anyhow!("no signer"))?;
    let ts = now_secs();
    let digest = binding::message_digest(binding::LOGS_TAG, &[id.as_slice()], ts);
    let sig = signer
        .sign_hash_sync(&digest)
        .context("signing the logs request")?;
    let url = format!(
        "{}?timestamp={ts}&signature=0x{}",
        net.url(&route(gateway::PROGRAM_LOGS, "id", &id_hex(id))),
        hex::encode(sig.as_bytes())
    );
    let logs: pith_api::worker::ProgramLogs = net.http.get_json(&url).await?;
    if a.json {
        println!("{}", serde_json::to_string(&logs)?);
    } else {
        for e in &logs.entries {
            println!("{} {:<5} {} {}", e.time_ms, e.level, e.worker, e.message);
        }
    }
    Ok(())
}

async fn topup(a: TopupArgs) -> Result<()> {
    let net = a.net.resolve(true).await?;
    let id = parse_program_id(&a.program_id)?;
    let amount = parse_pha(&a.amount)?;
    let tx = deposit(&net, id, amount).await?;
    if a.json {
        println!(
            "{}",
            json!({"program_id": id, "amount": amount.to_string(), "tx": tx})
        );
    } else {
        println!(
            "deposited {} PHA for program {id} (tx {tx})",
            format_pha(amount)
        );
    }
    Ok(())
}

/// Run `pith deploy`.
pub fn run_deploy(args: DeployArgs) -> ExitCode {
    block_on(deploy(args))
}

/// Run `pith programs ...`.
pub fn run(cmd: ProgramsCommand) -> ExitCode {
    match cmd {
        ProgramsCommand::List(a) => block_on(list(a)),
        ProgramsCommand::Show(a) => block_on(show(a)),
        ProgramsCommand::Upgrade(a) => block_on(upgrade(a)),
        ProgramsCommand::Logs(a) => block_on(logs(a)),
        ProgramsCommand::Topup(a) => block_on(topup(a)),
        ProgramsCommand::Triggers(a) => block_on(triggers(a)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn allow_host_values() {
        for ok in [
            "api.example.com",
            "api.example.com:8443",
            "127.0.0.1:9000",
            "[::1]:80",
            "localhost",
        ] {
            check_allow_host(ok).unwrap();
        }
        for bad in [
            "",
            "https://api.example.com",
            "a.com/path",
            "a.com:http",
            "a b",
        ] {
            assert!(check_allow_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_parse() {
        let m = parse_secrets(&["A=1".into(), "B=x=y".into()]).unwrap();
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "x=y");
        assert!(parse_secrets(&["novalue".into()]).is_err());
        assert!(parse_secrets(&["=v".into()]).is_err());
    }

    #[test]
    fn secrets_signature_recovers_to_the_owner() {
        let signer = alloy::signers::local::PrivateKeySigner::from_slice(&[3u8; 32]).unwrap();
        let id = B256::with_last_byte(1);
        let sig = secrets_signature(&signer, id, b"{}", 7).unwrap();
        let bytes = hex::decode(sig.trim_start_matches("0x")).unwrap();
        let digest = binding::message_digest(
            binding::SECRETS_TAG,
            &[id.as_slice(), &pith_crypto::keccak256(b"{}")],
            7,
        );
        assert_eq!(
            pith_crypto::receipt::recover(&digest, &bytes).unwrap(),
            signer.address()
        );
        let other = binding::message_digest(
            binding::SECRETS_TAG,
            &[id.as_slice(), &pith_crypto::keccak256(b"{}")],
            8,
        );
        assert_ne!(
            pith_crypto::receipt::recover(&other, &bytes).unwrap(),
            signer.address()
        );
    }
}
