//! `pith stake create-pool|deposit|withdraw|claim`: stake PHA in a worker operator's pool.

use std::process::ExitCode;

use alloy::primitives::{Address, U256};
use alloy::sol_types::SolEvent;
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use pith_chain::bindings::StakePools;

use crate::chain::{NetArgs, block_on, format_pha, parse_pha};

/// `pith stake ...`
#[derive(Debug, Subcommand)]
pub enum StakeCommand {
    /// Create the signer's own pool (worker operators).
    CreatePool(CreatePoolArgs),
    /// Deposit PHA into an operator's pool for shares (approves the pool contract first).
    Deposit(DepositArgs),
    /// Queue shares for withdrawal; they are paid by `claim` after the unbonding period.
    Withdraw(WithdrawArgs),
    /// Pay matured withdrawals of an operator's queue, or (with --commission) the operator's
    /// own commission.
    Claim(ClaimArgs),
}

/// `pith stake create-pool`
#[derive(Debug, Args)]
pub struct CreatePoolArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Operator commission in basis points.
    #[arg(long, default_value_t = 1000)]
    pub commission_bps: u16,
}

/// `pith stake deposit`
#[derive(Debug, Args)]
pub struct DepositArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// The pool's operator.
    #[arg(long)]
    pub operator: Address,
    /// PHA to deposit (decimal, e.g. 100 or 2.5).
    #[arg(long)]
    pub amount: String,
}

/// `pith stake withdraw`
#[derive(Debug, Args)]
pub struct WithdrawArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// The pool's operator.
    #[arg(long)]
    pub operator: Address,
    /// Shares to withdraw (wei units of shares); default: all active shares.
    #[arg(long)]
    pub shares: Option<U256>,
}

/// `pith stake claim`
#[derive(Debug, Args)]
pub struct ClaimArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// The pool's operator.
    #[arg(long)]
    pub operator: Option<Address>,
    /// At most this many queue entries.
    #[arg(long, default_value_t = 16)]
    pub max: u64,
    /// Claim the signer's operator commission instead.
    #[arg(long)]
    pub commission: bool,
}

/// Run a stake command.
pub fn run(cmd: StakeCommand) -> ExitCode {
    block_on(async move {
        match cmd {
            StakeCommand::CreatePool(a) => create_pool(a).await,
            StakeCommand::Deposit(a) => deposit(a).await,
            StakeCommand::Withdraw(a) => withdraw(a).await,
            StakeCommand::Claim(a) => claim(a).await,
        }
    })
}

async fn create_pool(a: CreatePoolArgs) -> Result<()> {
    let net = a.net.resolve(true)?;
    let c = net.contracts()?;
    let r = c.stake_pools.send_create_pool(a.commission_bps).await?;
    println!(
        "pool {} created (commission {} bps) tx {}",
        net.sender()?,
        a.commission_bps,
        r.transaction_hash
    );
    Ok(())
}

async fn deposit(a: DepositArgs) -> Result<()> {
    let net = a.net.resolve(true)?;
    let c = net.contracts()?;
    let me = net.sender()?;
    let amount = parse_pha(&a.amount)?;
    if c.pha.allowance(me, c.stake_pools.address()).await? < amount {
        c.pha.send_approve(c.stake_pools.address(), amount).await?;
    }
    let r = c.stake_pools.send_deposit(a.operator, amount).await?;
    let minted = r
        .inner
        .logs()
        .iter()
        .find_map(|l| StakePools::Deposited::decode_log_data(l.data()).ok())
        .map(|e| e.shares)
        .unwrap_or_default();
    println!(
        "deposited {} PHA into pool {} for {minted} shares tx {}",
        format_pha(amount),
        a.operator,
        r.transaction_hash
    );
    Ok(())
}

async fn withdraw(a: WithdrawArgs) -> Result<()> {
    let net = a.net.resolve(true)?;
    let c = net.contracts()?;
    let me = net.sender()?;
    let shares = match a.shares {
        Some(s) => s,
        None => c.stake_pools.shares_of(a.operator, me).await?,
    };
    if shares.is_zero() {
        bail!("no active shares in pool {}", a.operator);
    }
    let r = c
        .stake_pools
        .send_request_withdraw(a.operator, shares)
        .await?;
    let index = r
        .inner
        .logs()
        .iter()
        .find_map(|l| StakePools::WithdrawalRequested::decode_log_data(l.data()).ok())
        .map(|e| e.index)
        .unwrap_or_default();
    println!(
        "withdrawal {index} of {shares} shares queued in pool {} tx {}",
        a.operator, r.transaction_hash
    );
    Ok(())
}

async fn claim(a: ClaimArgs) -> Result<()> {
    let net = a.net.resolve(true)?;
    let c = net.contracts()?;
    let me = net.sender()?;
    if a.commission {
        let r = c.stake_pools.send_claim_commission().await?;
        let amount = r
            .inner
            .logs()
            .iter()
            .find_map(|l| StakePools::CommissionClaimed::decode_log_data(l.data()).ok())
            .map(|e| e.amount)
            .unwrap_or_default();
        println!(
            "claimed {} PHA commission tx {}",
            format_pha(amount),
            r.transaction_hash
        );
        return Ok(());
    }
    let Some(operator) = a.operator else {
        bail!("--operator is required (or --commission)")
    };
    let r = c
        .stake_pools
        .send_process_withdrawals(operator, U256::from(a.max))
        .await?;
    let mut mine = U256::ZERO;
    let mut paid = 0u32;
    for l in r.inner.logs() {
        if let Ok(e) = StakePools::Withdrawn::decode_log_data(l.data()) {
            paid += 1;
            if e.staker == me {
                mine += e.amount;
            }
        }
    }
    println!(
        "paid {paid} withdrawals from pool {operator}; {} PHA to {me} tx {}",
        format_pha(mine),
        r.transaction_hash
    );
    Ok(())
}
