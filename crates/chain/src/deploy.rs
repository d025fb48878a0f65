//! The deployer: deploys the eight contracts from the checked-in artifacts in a fixed order
//! from one account (so the addresses follow from the deployer's address and nonce), sets
//! the initial configuration, funds emissions, wires the governor into the timelock and
//! then hands every admin role to the timelock, renouncing the deployer's. The order and
//! constructor arguments are those of `contracts/README.md` ("Deployment").
//!
//! Two parameter sets: [`DeployConfig::local`] (short governance delays so a whole proposal
//! runs in seconds on anvil) and [`DeployConfig::production`] (the documented L2 values).

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionReceipt;
use serde_json::json;

use crate::bindings::{
    Billing, OracleAnchor, PHA, PithGovernor, Programs, Registry, StakePools, Timelock,
};
use crate::client::{confirm, contract_error, send_call};
use crate::error::{Error, Result};
use crate::manifest::{Contracts, Deployment};

/// One PHA in wei.
pub const PHA_UNIT: u128 = 1_000_000_000_000_000_000;

fn pha(n: u128) -> U256 {
    U256::from(n) * U256::from(PHA_UNIT)
}

/// Platform ids (docs/protocol.md; shared with pith-attest and the KMS).
pub mod platform {
    /// Intel SGX.
    pub const SGX: u8 = 1;
    /// Intel TDX.
    pub const TDX: u8 = 2;
    /// AMD SEV-SNP.
    pub const SEV_SNP: u8 = 3;
    /// AWS Nitro.
    pub const NITRO: u8 = 4;
    /// NVIDIA GPU.
    pub const NVIDIA_GPU: u8 = 5;
    /// The simulated development platform (local networks only).
    pub const SIMULATED: u8 = 255;
}

/// Measurement roles of the Registry's allow-lists.
pub mod role {
    /// A KMS node.
    pub const KMS: u8 = 0;
    /// A worker.
    pub const WORKER: u8 = 1;
}

/// An allowed measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    /// Platform id.
    pub platform: u8,
    /// [`role::KMS`] or [`role::WORKER`].
    pub role: u8,
    /// The measurement hash (docs/protocol.md).
    pub hash: B256,
}

/// Everything the deployer sets. Field names follow the contracts' parameters.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// `"local"` or `"production"` (written to the manifest as `profile`).
    pub profile: String,
    /// Receives the treasury allocation and the protocol fees.
    pub treasury: Address,
    /// PHA minted to the treasury.
    pub treasury_amount: U256,
    /// PHA minted to the deployer and moved into Billing's emission budget.
    pub emission_amount: U256,
    /// Registry: longest registration validity (s).
    pub max_registration_ttl: u64,
    /// StakePools parameters.
    pub stake_params: StakePools::Params,
    /// Billing epoch length (s).
    pub epoch_length: u64,
    /// Billing price list.
    pub prices: Billing::Prices,
    /// Billing treasury fee (bps).
    pub treasury_fee_bps: u16,
    /// Billing withdrawal delay (s).
    pub withdraw_delay: u64,
    /// Emission budget of the first epoch (wei).
    pub initial_epoch_budget: U256,
    /// Per-epoch decay factor of the budget (1e18 = no decay).
    pub decay_wad: U256,
    /// OracleAnchor: request timeout (s).
    pub oracle_timeout: u64,
    /// OracleAnchor: largest callback gas limit.
    pub max_callback_gas: u32,
    /// OracleAnchor: minimum fee (wei).
    pub min_fee: u128,
    /// Timelock minimum delay (s).
    pub timelock_delay: U256,
    /// Governor voting delay (blocks).
    pub voting_delay: u64,
    /// Governor voting period (blocks).
    pub voting_period: u32,
    /// Governor proposal threshold (wei of votes).
    pub proposal_threshold: U256,
    /// Governor quorum (percent of supply).
    pub quorum_percent: U256,
    /// Enabled platforms and the worst TCB status each accepts.
    pub platforms: Vec<(u8, u8)>,
    /// Allowed measurements.
    pub measurements: Vec<Measurement>,
    /// The first KMS committee.
    pub kms_committee: Vec<Address>,
    /// Signatures needed from the committee.
    pub kms_threshold: u8,
    /// PHA moved from the treasury to these accounts before the hand-over (local networks:
    /// the development accounts, so they can stake and vote). Requires treasury = deployer.
    pub allocations: Vec<(Address, U256)>,
    /// The deployer delegates its votes to itself (local: it is also the treasury and so the
    /// largest voter).
    pub deployer_self_delegate: bool,
}

impl DeployConfig {
    /// The local profile of `contracts/README.md`: treasury = deployer, the simulated
    /// platform enabled, one KMS member, 1 s timelock, 1-block voting delay, 5-block period.
    pub fn local(deployer: Address, kms_committee: Vec<Address>) -> Self {
        Self {
            profile: "local".into(),
            treasury: deployer,
            treasury_amount: pha(600_000_000),
            emission_amount: pha(400_000_000),
            max_registration_ttl: 86_400,
            stake_params: StakePools::Params {
                minStake: pha(1_000),
                minDeposit: pha(1),
                unbondingPeriod: 60,
                gracePeriod: 60,
                slashWindow: 86_400,
                slashCapBps: 1_000,
                offlineSlashBps: 100,
                maxCommissionBps: 5_000,
            },
            epoch_length: 60,
            prices: Billing::Prices {
                perRequest: 1_000_000_000_000_000,
                perCpuMilli: 1_000_000_000_000,
                perEgressByte: 1_000_000_000,
                // 1e-5 PHA (prompt and completion tokens alike): 100 tokens cost as much as a
                // request, a token as much as 10 CPU milliseconds, about what a small model
                // spends per generated token on one core. env.ai.chat runs the model outside the
                // program's CPU time, so for sandboxed programs the tokens are what pays for it.
                perAiToken: 10_000_000_000_000,
            },
            treasury_fee_bps: 500,
            withdraw_delay: 60,
            initial_epoch_budget: pha(100_000),
            decay_wad: U256::from(999_900_000_000_000_000u128),
            oracle_timeout: 60,
            max_callback_gas: 500_000,
            min_fee: 0,
            timelock_delay: U256::from(1),
            voting_delay: 1,
            voting_period: 5,
            proposal_threshold: U256::ZERO,
            quorum_percent: U256::from(4),
            platforms: vec![(platform::SIMULATED, 0)],
            measurements: Vec::new(),
            kms_threshold: 1,
            kms_committee,
            allocations: Vec::new(),
            deployer_self_delegate: true,
        }
    }

    /// The production profile of `contracts/README.md` (an L2 with ~2 s blocks). Platforms,
    /// measurements, the KMS committee and prices are deployment inputs.
    pub fn production(treasury: Address, kms_committee: Vec<Address>, kms_threshold: u8) -> Self {
        Self {
            profile: "production".into(),
            treasury,
            max_registration_ttl: 604_800,
            stake_params: StakePools::Params {
                minStake: pha(50_000),
                minDeposit: pha(10),
                unbondingPeriod: 1_209_600,
                gracePeriod: 259_200,
                slashWindow: 2_592_000,
                slashCapBps: 1_000,
                offlineSlashBps: 100,
                maxCommissionBps: 5_000,
            },
            epoch_length: 86_400,
            withdraw_delay: 86_400,
            initial_epoch_budget: pha(200_000),
            decay_wad: U256::from(999_000_000_000_000_000u128),
            oracle_timeout: 3_600,
            timelock_delay: U256::from(172_800),
            voting_delay: 43_200,
            voting_period: 302_400,
            proposal_threshold: pha(100_000),
            platforms: Vec::new(),
            kms_committee,
            kms_threshold,
            deployer_self_delegate: false,
            ..Self::local(treasury, Vec::new())
        }
    }
}

/// Send a deployment transaction and return the new contract's address and receipt.
async fn deploy_one(
    name: &'static str,
    provider: &DynProvider,
    tx: alloy::rpc::types::TransactionRequest,
) -> Result<(Address, TransactionReceipt)> {
    let pending = provider
        .send_transaction(tx)
        .await
        .map_err(|e| Error::Contract {
            contract: name,
            function: "constructor",
            message: e.to_string(),
        })?;
    let receipt = confirm(provider, *pending.tx_hash(), || format!("deploy {name}")).await?;
    let addr = receipt.contract_address.ok_or_else(|| {
        Error::State(format!("deploy {name}: receipt without a contract address"))
    })?;
    tracing::info!(target: "pith_chain::deploy", contract = name, address = %addr, "deployed");
    Ok((addr, receipt))
}

/// Deploy and configure everything with the provider's signer (`deployer`), hand the roles
/// to the timelock, and return the manifest (not yet written). `rpc_url` is recorded in it.
pub async fn deploy(
    provider: &DynProvider,
    deployer: Address,
    rpc_url: &str,
    cfg: &DeployConfig,
) -> Result<Deployment> {
    let chain_id = provider.get_chain_id().await.map_err(Error::rpc)?;
    if cfg.kms_committee.is_empty() {
        return Err(Error::State("the first KMS committee is empty".into()));
    }

    // 1-8: contracts, in the README's order.
    let (pha_addr, first) = deploy_one(
        "PHA",
        provider,
        PHA::deploy_builder(
            provider,
            cfg.treasury,
            cfg.treasury_amount,
            deployer,
            cfg.emission_amount,
        )
        .into_transaction_request(),
    )
    .await?;
    let deploy_block = first
        .block_number
        .ok_or_else(|| Error::State("deploy receipt without a block number".into()))?;
    let (registry_addr, _) = deploy_one(
        "Registry",
        provider,
        Registry::deploy_builder(provider, deployer, cfg.max_registration_ttl)
            .into_transaction_request(),
    )
    .await?;
    let (programs_addr, _) = deploy_one(
        "Programs",
        provider,
        Programs::deploy_builder(provider).into_transaction_request(),
    )
    .await?;
    let (pools_addr, _) = deploy_one(
        "StakePools",
        provider,
        StakePools::deploy_builder(
            provider,
            deployer,
            pha_addr,
            registry_addr,
            cfg.treasury,
            cfg.stake_params.clone(),
        )
        .into_transaction_request(),
    )
    .await?;
    let (billing_addr, _) = deploy_one(
        "Billing",
        provider,
        Billing::deploy_builder(
            provider,
            deployer,
            pha_addr,
            registry_addr,
            programs_addr,
            pools_addr,
            cfg.treasury,
            cfg.epoch_length,
        )
        .into_transaction_request(),
    )
    .await?;
    let (oracle_addr, _) = deploy_one(
        "OracleAnchor",
        provider,
        OracleAnchor::deploy_builder(
            provider,
            deployer,
            pha_addr,
            registry_addr,
            programs_addr,
            pools_addr,
            cfg.oracle_timeout,
            cfg.max_callback_gas,
            cfg.min_fee,
        )
        .into_transaction_request(),
    )
    .await?;
    let (timelock_addr, _) = deploy_one(
        "Timelock",
        provider,
        Timelock::deploy_builder(
            provider,
            cfg.timelock_delay,
            Vec::new(),
            vec![Address::ZERO],
            deployer,
        )
        .into_transaction_request(),
    )
    .await?;
    let voting_delay = alloy::primitives::Uint::<48, 1>::from(cfg.voting_delay);
    let (governor_addr, _) = deploy_one(
        "Governor",
        provider,
        PithGovernor::deploy_builder(
            provider,
            pha_addr,
            pools_addr,
            timelock_addr,
            voting_delay,
            cfg.voting_period,
            cfg.proposal_threshold,
            cfg.quorum_percent,
        )
        .into_transaction_request(),
    )
    .await?;

    let pha = PHA::new(pha_addr, provider);
    let registry = Registry::new(registry_addr, provider);
    let pools = StakePools::new(pools_addr, provider);
    let billing = Billing::new(billing_addr, provider);
    let oracle = OracleAnchor::new(oracle_addr, provider);
    let timelock = Timelock::new(timelock_addr, provider);

    // Each configuration transaction is awaited (send_call waits for its receipt) so the
    // nonce order, and so the whole deployment, is the same on every run.

    // 9: initial configuration.
    for &(id, max_tcb) in &cfg.platforms {
        send_call::<_, _, Registry::RegistryErrors>(
            "Registry",
            "setPlatform",
            registry.setPlatform(id, true, max_tcb),
        )
        .await?;
    }
    for m in &cfg.measurements {
        send_call::<_, _, Registry::RegistryErrors>(
            "Registry",
            "setMeasurement",
            registry.setMeasurement(m.platform, m.role, m.hash, true),
        )
        .await?;
    }
    send_call::<_, _, Registry::RegistryErrors>(
        "Registry",
        "setKmsCommittee",
        registry.setKmsCommittee(cfg.kms_committee.clone(), cfg.kms_threshold),
    )
    .await?;
    send_call::<_, _, Billing::BillingErrors>(
        "Billing",
        "setPrices",
        billing.setPrices(cfg.prices.clone()),
    )
    .await?;
    send_call::<_, _, Billing::BillingErrors>(
        "Billing",
        "setTreasuryFeeBps",
        billing.setTreasuryFeeBps(cfg.treasury_fee_bps),
    )
    .await?;
    send_call::<_, _, Billing::BillingErrors>(
        "Billing",
        "setWithdrawDelay",
        billing.setWithdrawDelay(cfg.withdraw_delay),
    )
    .await?;
    send_call::<_, _, Billing::BillingErrors>(
        "Billing",
        "setEmissionSchedule",
        billing.setEmissionSchedule(cfg.initial_epoch_budget, cfg.decay_wad),
    )
    .await?;

    // 10: emissions.
    send_call::<_, _, PHA::PHAErrors>(
        "PHA",
        "approve",
        pha.approve(billing_addr, cfg.emission_amount),
    )
    .await?;
    send_call::<_, _, Billing::BillingErrors>(
        "Billing",
        "fundEmission",
        billing.fundEmission(cfg.emission_amount),
    )
    .await?;

    // Local allocations and vote delegation (before the hand-over; they need no role).
    for (to, amount) in &cfg.allocations {
        send_call::<_, _, PHA::PHAErrors>("PHA", "transfer", pha.transfer(*to, *amount)).await?;
    }
    if cfg.deployer_self_delegate {
        send_call::<_, _, PHA::PHAErrors>("PHA", "delegate", pha.delegate(deployer)).await?;
    }

    // 11: the governor proposes and cancels through the timelock.
    let proposer =
        timelock.PROPOSER_ROLE().call().await.map_err(|e| {
            contract_error::<Timelock::TimelockErrors>("Timelock", "PROPOSER_ROLE", e)
        })?;
    let canceller =
        timelock.CANCELLER_ROLE().call().await.map_err(|e| {
            contract_error::<Timelock::TimelockErrors>("Timelock", "CANCELLER_ROLE", e)
        })?;
    send_call::<_, _, Timelock::TimelockErrors>(
        "Timelock",
        "grantRole",
        timelock.grantRole(proposer, governor_addr),
    )
    .await?;
    send_call::<_, _, Timelock::TimelockErrors>(
        "Timelock",
        "grantRole",
        timelock.grantRole(canceller, governor_addr),
    )
    .await?;

    // 12: hand-over.
    let admin = B256::ZERO; // DEFAULT_ADMIN_ROLE
    send_call::<_, _, Registry::RegistryErrors>(
        "Registry",
        "grantRole",
        registry.grantRole(admin, timelock_addr),
    )
    .await?;
    send_call::<_, _, Registry::RegistryErrors>(
        "Registry",
        "renounceRole",
        registry.renounceRole(admin, deployer),
    )
    .await?;
    send_call::<_, _, StakePools::StakePoolsErrors>(
        "StakePools",
        "grantRole",
        pools.grantRole(admin, timelock_addr),
    )
    .await?;
    send_call::<_, _, StakePools::StakePoolsErrors>(
        "StakePools",
        "renounceRole",
        pools.renounceRole(admin, deployer),
    )
    .await?;
    send_call::<_, _, Billing::BillingErrors>(
        "Billing",
        "grantRole",
        billing.grantRole(admin, timelock_addr),
    )
    .await?;
    send_call::<_, _, Billing::BillingErrors>(
        "Billing",
        "renounceRole",
        billing.renounceRole(admin, deployer),
    )
    .await?;
    send_call::<_, _, OracleAnchor::OracleAnchorErrors>(
        "OracleAnchor",
        "grantRole",
        oracle.grantRole(admin, timelock_addr),
    )
    .await?;
    send_call::<_, _, OracleAnchor::OracleAnchorErrors>(
        "OracleAnchor",
        "renounceRole",
        oracle.renounceRole(admin, deployer),
    )
    .await?;
    send_call::<_, _, Timelock::TimelockErrors>(
        "Timelock",
        "renounceRole",
        timelock.renounceRole(admin, deployer),
    )
    .await?;

    // Check the hand-over took: the deployer holds no admin role anywhere.
    let checks = [
        ("Registry", registry.hasRole(admin, deployer).call().await),
        ("StakePools", pools.hasRole(admin, deployer).call().await),
        ("Billing", billing.hasRole(admin, deployer).call().await),
        ("OracleAnchor", oracle.hasRole(admin, deployer).call().await),
        ("Timelock", timelock.hasRole(admin, deployer).call().await),
    ];
    for (name, r) in checks {
        if r.map_err(Error::rpc)? {
            return Err(Error::State(format!(
                "deployer still holds DEFAULT_ADMIN_ROLE on {name}"
            )));
        }
    }

    let mut extra = serde_json::Map::new();
    extra.insert("profile".into(), json!(cfg.profile));
    extra.insert("deployer".into(), json!(deployer));
    extra.insert("treasury".into(), json!(cfg.treasury));
    Ok(Deployment {
        chain_id,
        rpc_url: rpc_url.to_string(),
        deploy_block,
        contracts: Contracts {
            pha: pha_addr,
            registry: registry_addr,
            programs: programs_addr,
            stake_pools: pools_addr,
            billing: billing_addr,
            oracle_anchor: oracle_addr,
            governor: governor_addr,
            timelock: timelock_addr,
            extra: Default::default(),
        },
        extra,
    })
}
