//! `pith status [--json]`: the chain, the KMS nodes, the workers and the gateway.
//!
//! JSON: `{"chain": {"rpc_url", "chain_id", "block"}, "kms": [{"address", "platform",
//! "registered"}], "workers": [{"address", "platform", "registered", "healthy"}],
//! "gateway": {"url", "healthy"}}`. "registered" comes from the chain (KMS: a committee member
//! that posted its evidence; worker: active in the Registry), "healthy" from the gateway's
//! health checks.

use std::process::ExitCode;

use alloy::primitives::Address;
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use anyhow::Result;
use clap::Args;
use pith_api::gateway::{self, WorkerEntry};
use pith_chain::bindings::Registry;
use serde_json::json;

use crate::chain::block_on;
use crate::network::{NetOpts, Network};

/// Arguments of `pith status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub net: NetOpts,
}

/// KMS members that posted evidence (KmsEvidencePosted) since the deployment.
async fn kms_with_evidence(net: &Network) -> Result<Vec<Address>> {
    let p = net.provider()?;
    let f = Filter::new()
        .address(net.deployment.contracts.registry)
        .event_signature(Registry::KmsEvidencePosted::SIGNATURE_HASH)
        .from_block(net.deployment.deploy_block);
    let mut out = Vec::new();
    for l in p.get_logs(&f).await? {
        if let Ok(e) = Registry::KmsEvidencePosted::decode_log_data(l.data()) {
            out.push(e.member);
        }
    }
    Ok(out)
}

/// Gather the status object.
pub async fn status_json(net: &Network) -> Result<serde_json::Value> {
    let c = net.contracts()?;
    let p = c.provider();
    let chain_id = p.get_chain_id().await?;
    let block = p.get_block_number().await?;
    let members = c.registry.kms_members().await?;
    let posted = kms_with_evidence(net).await?;

    // KMS nodes: network.json's, else the gateway's list, else the committee.
    let kms_endpoints: Vec<pith_api::network::Endpoint> = match &net.file {
        Some(f) => f.kms.clone(),
        None => match net
            .http
            .get_json::<gateway::NetworkInfo>(&net.url(gateway::NETWORK))
            .await
        {
            Ok(info) => info.kms,
            Err(_) => Vec::new(),
        },
    };
    let mut kms = Vec::new();
    let mut seen = Vec::new();
    for ep in &kms_endpoints {
        let info: Option<pith_api::kms::KmsInfo> = net
            .http
            .get_json(&format!(
                "{}{}",
                ep.url.trim_end_matches('/'),
                pith_api::kms::INFO
            ))
            .await
            .ok();
        let address = info.as_ref().map_or(ep.address, |i| i.address);
        seen.push(address);
        kms.push(json!({
            "address": address,
            "url": ep.url,
            "platform": info.as_ref().map(|i| i.platform.clone()),
            "registered": members.contains(&address) && posted.contains(&address),
            "healthy": info.is_some(),
        }));
    }
    for m in members.iter().filter(|m| !seen.contains(m)) {
        kms.push(json!({"address": m, "platform": null, "registered": posted.contains(m), "healthy": false}));
    }

    let gw_health = net.http.get(&net.url(gateway::HEALTH)).await.is_ok();
    let entries: Vec<WorkerEntry> = net
        .http
        .get_json(&net.url(gateway::WORKERS))
        .await
        .unwrap_or_default();
    let mut workers = Vec::new();
    for w in &entries {
        let active = c.registry.is_active_worker(w.address).await?;
        workers.push(json!({
            "address": w.address,
            "url": w.url,
            "platform": w.platform,
            "registered": active,
            "healthy": w.healthy && gw_health,
        }));
    }
    Ok(json!({
        "chain": {"rpc_url": net.rpc, "chain_id": chain_id, "block": block},
        "kms": kms,
        "workers": workers,
        "gateway": {"url": net.gateway, "healthy": gw_health},
    }))
}

async fn status(args: StatusArgs) -> Result<()> {
    let net = args.net.resolve(false).await?;
    let v = status_json(&net).await?;
    if args.json {
        println!("{v}");
        return Ok(());
    }
    let yes = |b: &serde_json::Value| {
        if b.as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        }
    };
    println!(
        "chain    {} chain id {} block {}",
        v["chain"]["rpc_url"].as_str().unwrap_or("?"),
        v["chain"]["chain_id"],
        v["chain"]["block"]
    );
    println!(
        "gateway  {} healthy {}",
        v["gateway"]["url"].as_str().unwrap_or("?"),
        yes(&v["gateway"]["healthy"])
    );
    for k in v["kms"].as_array().into_iter().flatten() {
        println!(
            "kms      {} {} registered {}",
            k["address"].as_str().unwrap_or("?"),
            k["platform"].as_str().unwrap_or("?"),
            yes(&k["registered"])
        );
    }
    for w in v["workers"].as_array().into_iter().flatten() {
        println!(
            "worker   {} {} registered {} healthy {}",
            w["address"].as_str().unwrap_or("?"),
            w["platform"].as_str().unwrap_or("?"),
            yes(&w["registered"]),
            yes(&w["healthy"])
        );
    }
    Ok(())
}

/// Run `pith status`.
pub fn run(args: StatusArgs) -> ExitCode {
    block_on(status(args))
}
