//! `pith gov propose|vote|execute`: governance through the Governor and the Timelock.

use std::process::ExitCode;
use std::time::Duration;

use alloy::dyn_abi::{DynSolType, DynSolValue, JsonAbiExt, Specifier};
use alloy::json_abi::Function;
use alloy::primitives::{Address, Bytes, U256};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use pith_chain::client::{Proposal, ProposalState};

use crate::chain::{NetArgs, block_on};

/// `pith gov ...`
#[derive(Debug, Subcommand)]
pub enum GovCommand {
    /// Propose one call (`--target` with `--function` and `--arg`s, or `--calldata`).
    Propose(ProposeArgs),
    /// Vote on a proposal.
    Vote(VoteArgs),
    /// Queue a succeeded proposal in the timelock, wait out the delay, and execute it.
    Execute(ExecuteArgs),
}

/// `pith gov propose`
#[derive(Debug, Args)]
pub struct ProposeArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Contract to call: an address or a deployment name (Registry, Billing, ...).
    #[arg(long)]
    pub target: String,
    /// Solidity signature, e.g. `setWithdrawDelay(uint64)`; structs are tuples, e.g. the price
    /// list `setPrices((uint128,uint128,uint128,uint128))` with `--arg "(perRequest,perCpuMilli,
    /// perEgressByte,perAiToken)"`.
    #[arg(long, conflicts_with = "calldata")]
    pub function: Option<String>,
    /// Argument of --function (repeatable, in order).
    #[arg(long = "arg")]
    pub args: Vec<String>,
    /// Raw calldata (hex).
    #[arg(long)]
    pub calldata: Option<Bytes>,
    /// ETH value (wei) sent with the call.
    #[arg(long, default_value_t = U256::ZERO)]
    pub value: U256,
    /// Proposal text.
    #[arg(long)]
    pub description: String,
}

/// `pith gov vote`
#[derive(Debug, Args)]
pub struct VoteArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Proposal id (decimal or 0x-hex).
    #[arg(long)]
    pub proposal: U256,
    /// for, against or abstain.
    #[arg(long, default_value = "for")]
    pub support: String,
}

/// `pith gov execute`
#[derive(Debug, Args)]
pub struct ExecuteArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Proposal id.
    #[arg(long)]
    pub proposal: U256,
    /// Longest wait for the timelock delay, in seconds.
    #[arg(long, default_value_t = 120)]
    pub max_wait: u64,
}

/// Run a governance command.
pub fn run(cmd: GovCommand) -> ExitCode {
    block_on(async move {
        match cmd {
            GovCommand::Propose(a) => propose(a).await,
            GovCommand::Vote(a) => vote(a).await,
            GovCommand::Execute(a) => execute(a).await,
        }
    })
}

/// Encode `function(args...)` calldata from a signature and string arguments.
pub fn encode_call(signature: &str, args: &[String]) -> Result<Bytes> {
    let f = Function::parse(signature)
        .with_context(|| format!("bad function signature {signature:?}"))?;
    if f.inputs.len() != args.len() {
        bail!(
            "{signature} takes {} arguments, {} given",
            f.inputs.len(),
            args.len()
        );
    }
    let values = f
        .inputs
        .iter()
        .zip(args)
        .map(|(p, a)| {
            // resolve(), not the bare `ty` string: a struct parameter's `ty` is "tuple" and its
            // fields are in the components.
            let ty: DynSolType = p
                .resolve()
                .with_context(|| format!("type {}", p.selector_type()))?;
            ty.coerce_str(a)
                .with_context(|| format!("argument {a:?} as {}", p.selector_type()))
        })
        .collect::<Result<Vec<DynSolValue>>>()?;
    Ok(f.abi_encode_input(&values)
        .context("encoding the call")?
        .into())
}

async fn propose(a: ProposeArgs) -> Result<()> {
    let net = a.net.resolve(true)?;
    let c = net.contracts()?;
    let target: Address = match net
        .deployment
        .contracts
        .named()
        .iter()
        .find(|(n, _)| *n == a.target)
    {
        Some((_, addr)) => *addr,
        None => a
            .target
            .parse()
            .with_context(|| format!("--target {:?}: not an address or contract name", a.target))?,
    };
    let calldata = match (&a.function, &a.calldata) {
        (Some(f), _) => encode_call(f, &a.args)?,
        (None, Some(d)) => d.clone(),
        (None, None) => bail!("give --function (with --arg) or --calldata"),
    };
    let p = Proposal {
        targets: vec![target],
        values: vec![a.value],
        calldatas: vec![calldata],
        description: a.description,
    };
    let id = c.governor.hash_proposal(&p).await?;
    let r = c.governor.send_propose(&p).await?;
    println!("proposal {id} tx {}", r.transaction_hash);
    Ok(())
}

async fn vote(a: VoteArgs) -> Result<()> {
    let support = match a.support.as_str() {
        "against" | "0" => 0u8,
        "for" | "1" => 1,
        "abstain" | "2" => 2,
        other => bail!("--support {other:?}: expected for, against or abstain"),
    };
    let net = a.net.resolve(true)?;
    let c = net.contracts()?;
    let state = c.governor.state(a.proposal).await?;
    if state != ProposalState::Active {
        bail!("proposal {} is {state:?}, not Active", a.proposal);
    }
    let r = c.governor.send_vote(a.proposal, support).await?;
    println!(
        "voted {} on proposal {} tx {}",
        a.support, a.proposal, r.transaction_hash
    );
    Ok(())
}

async fn execute(a: ExecuteArgs) -> Result<()> {
    let net = a.net.resolve(true)?;
    let c = net.contracts()?;
    let p = c
        .governor
        .find_proposal(a.proposal, net.deployment.deploy_block)
        .await?;
    let mut state = c.governor.state(a.proposal).await?;
    if state == ProposalState::Succeeded {
        let r = c.governor.send_queue(&p).await?;
        println!("queued proposal {} tx {}", a.proposal, r.transaction_hash);
        state = c.governor.state(a.proposal).await?;
    }
    if state != ProposalState::Queued {
        bail!(
            "proposal {} is {state:?}; only a Succeeded or Queued proposal can be executed",
            a.proposal
        );
    }
    // The timelock accepts the execution once a block's timestamp reaches the proposal's
    // eta; on a chain that mines per transaction that is the next block after the delay, so
    // retry (bounded) while the proposal stays queued.
    let eta: U256 = c.governor.raw().proposalEta(a.proposal).call().await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(a.max_wait);
    let r = loop {
        match c.governor.send_execute(&p).await {
            Ok(r) => break r,
            Err(e) => {
                if std::time::Instant::now() >= deadline
                    || c.governor.state(a.proposal).await? != ProposalState::Queued
                {
                    return Err(e).with_context(|| {
                        format!("executing proposal {} (timelock eta {eta})", a.proposal)
                    });
                }
                tracing::debug!(error = %e, "timelock not ready yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    println!("executed proposal {} tx {}", a.proposal, r.transaction_hash);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloy::sol_types::SolCall;
    use pith_chain::bindings::Billing;

    #[test]
    fn price_proposal_encodes_every_price() {
        let got = encode_call(
            "setPrices((uint128,uint128,uint128,uint128))",
            &["(1000000000000000,1000000000000,1000000000,10000000000000)".to_owned()],
        )
        .unwrap();
        let want = Billing::setPricesCall {
            p: Billing::Prices {
                perRequest: 1_000_000_000_000_000,
                perCpuMilli: 1_000_000_000_000,
                perEgressByte: 1_000_000_000,
                perAiToken: 10_000_000_000_000,
            },
        }
        .abi_encode();
        assert_eq!(got.to_vec(), want);
        // The price list without the token price is another function (and a wrong tuple).
        assert!(
            encode_call(
                "setPrices((uint128,uint128,uint128,uint128))",
                &["(1,2,3)".to_owned()]
            )
            .is_err()
        );
        assert_ne!(
            encode_call(
                "setPrices((uint128,uint128,uint128))",
                &["(1,2,3)".to_owned()]
            )
            .unwrap()[..4],
            want[..4]
        );
    }
}
