//! Typed clients, one per contract. Reads and writes are separate on purpose:
//!
//! - methods named after a view (`total_supply`, `is_active_worker`, ...) are `eth_call`s:
//!   free, no signer needed, nothing changes;
//! - methods under `send_*` build a transaction, have it signed by the provider's wallet,
//!   wait for the receipt and fail with [`Error::Reverted`] if it reverted (a revert found
//!   while estimating gas fails with [`Error::Contract`] and the decoded custom error).
//!
//! Every client also exposes the generated `sol!` instance (`.raw()`) for the functions
//! without a wrapper here.

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::network::Ethereum;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolInterface;

use crate::bindings::{Billing, OracleAnchor, PHA, PithGovernor, Programs, Registry, StakePools, Timelock};
use crate::error::{Error, Result};
use crate::manifest::Deployment;

/// A read-only provider for `url` (plain HTTP).
pub fn read_provider(url: &str) -> Result<DynProvider> {
    let url = url.parse().map_err(|e| Error::Rpc(format!("bad RPC URL {url}: {e}")))?;
    Ok(ProviderBuilder::new().connect_http(url).erased())
}

/// A provider that signs and sends transactions with `signer` (nonce, gas and fees filled in).
///
/// The nonce is asked from the node for every transaction (alloy's default caches it, and a
/// transaction that fails gas estimation then leaves a gap that stalls every later one).
pub fn signing_provider(url: &str, signer: PrivateKeySigner) -> Result<DynProvider> {
    let url = url.parse().map_err(|e| Error::Rpc(format!("bad RPC URL {url}: {e}")))?;
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(signer)
        .connect_http(url)
        .erased())
}

/// Decode a contract error into `E` (the contract's custom errors) when possible.
pub(crate) fn contract_error<E: SolInterface + std::fmt::Debug>(
    contract: &'static str,
    function: &'static str,
    e: alloy::contract::Error,
) -> Error {
    let message = match e.as_decoded_interface_error::<E>() {
        Some(decoded) => format!("reverted: {decoded:?}"),
        None => match e.as_revert_data() {
            Some(data) => format!("reverted with data {data}"),
            None => e.to_string(),
        },
    };
    Error::Contract { contract, function, message }
}

/// How long [`wait_receipt`] waits for a transaction to be mined.
pub const RECEIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Poll for a transaction's receipt every 50 ms, up to [`RECEIPT_TIMEOUT`], so a
/// transaction that is never mined ends in an error instead of a wait without end.
pub async fn wait_receipt<P: Provider<Ethereum> + ?Sized>(provider: &P, tx: B256) -> Result<TransactionReceipt> {
    let deadline = tokio::time::Instant::now() + RECEIPT_TIMEOUT;
    loop {
        if let Some(r) = provider.get_transaction_receipt(tx).await.map_err(Error::rpc)? {
            return Ok(r);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Rpc(format!("transaction {tx} not mined after {RECEIPT_TIMEOUT:?}")));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Send a prepared call, wait for its receipt, and require success.
pub(crate) async fn send_call<D: CallDecoder, E: SolInterface + std::fmt::Debug>(
    contract: &'static str,
    function: &'static str,
    call: CallBuilder<&DynProvider, D, Ethereum>,
) -> Result<TransactionReceipt> {
    let pending = call.send().await.map_err(|e| contract_error::<E>(contract, function, e))?;
    let receipt = wait_receipt(pending.provider(), *pending.tx_hash()).await?;
    if !receipt.status() {
        return Err(Error::Reverted { tx: receipt.transaction_hash.to_string(), what: format!("{contract}.{function}") });
    }
    Ok(receipt)
}

macro_rules! call_view {
    ($errs:ty, $name:literal, $call:expr) => {
        $call.call().await.map_err(|e| contract_error::<$errs>(Self::NAME, $name, e))
    };
}

/// Common plumbing of the typed clients.
macro_rules! typed_client {
    ($(#[$doc:meta])* $client:ident, $module:ident, $instance:ident, $errs:ident, $name:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $client {
            inner: $module::$instance<DynProvider>,
        }

        impl $client {
            /// The contract's name in `deployment.json`.
            pub const NAME: &'static str = $name;

            /// A client for the contract at `address`.
            pub fn new(address: Address, provider: DynProvider) -> Self {
                Self { inner: $module::new(address, provider) }
            }
            /// The contract address.
            pub fn address(&self) -> Address {
                *self.inner.address()
            }
            /// The generated `sol!` instance, for functions without a wrapper.
            pub fn raw(&self) -> &$module::$instance<DynProvider> {
                &self.inner
            }
            /// Send a call built on [`Self::raw`] and wait for a successful receipt.
            pub async fn send<D: CallDecoder>(
                &self,
                function: &'static str,
                call: CallBuilder<&DynProvider, D, Ethereum>,
            ) -> Result<TransactionReceipt> {
                send_call::<D, $module::$errs>($name, function, call).await
            }
        }
    };
}

typed_client!(
    /// The PHA token.
    PhaClient, PHA, PHAInstance, PHAErrors, "PHA"
);
typed_client!(
    /// The Registry of platforms, measurements, the KMS committee and workers.
    RegistryClient, Registry, RegistryInstance, RegistryErrors, "Registry"
);
typed_client!(
    /// Programs: code hash, owner, configuration.
    ProgramsClient, Programs, ProgramsInstance, ProgramsErrors, "Programs"
);
typed_client!(
    /// Stake pools.
    StakePoolsClient, StakePools, StakePoolsInstance, StakePoolsErrors, "StakePools"
);
typed_client!(
    /// Billing: deposits, usage, emissions.
    BillingClient, Billing, BillingInstance, BillingErrors, "Billing"
);
typed_client!(
    /// The oracle anchor.
    OracleAnchorClient, OracleAnchor, OracleAnchorInstance, OracleAnchorErrors, "OracleAnchor"
);
typed_client!(
    /// The Governor.
    GovernorClient, PithGovernor, PithGovernorInstance, PithGovernorErrors, "Governor"
);
typed_client!(
    /// The TimelockController.
    TimelockClient, Timelock, TimelockInstance, TimelockErrors, "Timelock"
);

// ------------------------------------------------------------------------- PHA

impl PhaClient {
    /// Total supply (wei).
    pub async fn total_supply(&self) -> Result<U256> {
        call_view!(PHA::PHAErrors, "totalSupply", self.inner.totalSupply())
    }
    /// Balance of `who` (wei).
    pub async fn balance_of(&self, who: Address) -> Result<U256> {
        call_view!(PHA::PHAErrors, "balanceOf", self.inner.balanceOf(who))
    }
    /// Current votes of `who`.
    pub async fn votes(&self, who: Address) -> Result<U256> {
        call_view!(PHA::PHAErrors, "getVotes", self.inner.getVotes(who))
    }
    /// Allowance from `owner` to `spender`.
    pub async fn allowance(&self, owner: Address, spender: Address) -> Result<U256> {
        call_view!(PHA::PHAErrors, "allowance", self.inner.allowance(owner, spender))
    }
    /// Send: transfer `amount` to `to`.
    pub async fn send_transfer(&self, to: Address, amount: U256) -> Result<TransactionReceipt> {
        self.send("transfer", self.inner.transfer(to, amount)).await
    }
    /// Send: approve `spender` for `amount`.
    pub async fn send_approve(&self, spender: Address, amount: U256) -> Result<TransactionReceipt> {
        self.send("approve", self.inner.approve(spender, amount)).await
    }
    /// Send: delegate the sender's votes to `to`.
    pub async fn send_delegate(&self, to: Address) -> Result<TransactionReceipt> {
        self.send("delegate", self.inner.delegate(to)).await
    }
}

// ------------------------------------------------------------------------- Registry

impl RegistryClient {
    /// Whether `worker` is registered, unexpired, unrevoked and within policy.
    pub async fn is_active_worker(&self, worker: Address) -> Result<bool> {
        call_view!(Registry::RegistryErrors, "isActiveWorker", self.inner.isActiveWorker(worker))
    }
    /// The registration record of `worker`.
    pub async fn worker_info(&self, worker: Address) -> Result<Registry::Worker> {
        call_view!(Registry::RegistryErrors, "workerInfo", self.inner.workerInfo(worker))
    }
    /// The current KMS committee.
    pub async fn kms_members(&self) -> Result<Vec<Address>> {
        call_view!(Registry::RegistryErrors, "kmsMembers", self.inner.kmsMembers())
    }
    /// The KMS signature threshold.
    pub async fn kms_threshold(&self) -> Result<u8> {
        call_view!(Registry::RegistryErrors, "kmsThreshold", self.inner.kmsThreshold())
    }
    /// Whether a measurement is allowed for a platform and role.
    pub async fn is_allowed_measurement(&self, platform: u8, role: u8, hash: B256) -> Result<bool> {
        call_view!(
            Registry::RegistryErrors,
            "isAllowedMeasurement",
            self.inner.isAllowedMeasurement(platform, role, hash)
        )
    }
    /// A platform's configuration.
    pub async fn platform_config(&self, platform: u8) -> Result<Registry::PlatformConfig> {
        call_view!(Registry::RegistryErrors, "platformConfig", self.inner.platformConfig(platform))
    }
    /// The EIP-712 digest the contract computes for a registration.
    pub async fn registration_digest(&self, reg: &Registry::WorkerRegistration) -> Result<B256> {
        call_view!(Registry::RegistryErrors, "registrationDigest", self.inner.registrationDigest(reg.clone()))
    }
    /// The contract's EIP-712 domain separator.
    pub async fn domain_separator(&self) -> Result<B256> {
        call_view!(Registry::RegistryErrors, "domainSeparator", self.inner.domainSeparator())
    }
    /// Send: register or re-attest a worker with KMS signatures (sorted by signer address).
    pub async fn send_register_worker(
        &self,
        reg: Registry::WorkerRegistration,
        evidence: Bytes,
        signatures: Vec<Bytes>,
    ) -> Result<TransactionReceipt> {
        self.send("registerWorker", self.inner.registerWorker(reg, evidence, signatures)).await
    }
}

// ------------------------------------------------------------------------- StakePools

impl StakePoolsClient {
    /// Whether `operator` has a pool.
    pub async fn pool_exists(&self, operator: Address) -> Result<bool> {
        call_view!(StakePools::StakePoolsErrors, "poolExists", self.inner.poolExists(operator))
    }
    /// The pool of `operator`.
    pub async fn pool(&self, operator: Address) -> Result<StakePools::Pool> {
        call_view!(StakePools::StakePoolsErrors, "pool", self.inner.pool(operator))
    }
    /// Active shares of `staker` in `operator`'s pool.
    pub async fn shares_of(&self, operator: Address, staker: Address) -> Result<U256> {
        call_view!(StakePools::StakePoolsErrors, "sharesOf", self.inner.sharesOf(operator, staker))
    }
    /// Queued (withdrawing) shares of `staker` in `operator`'s pool.
    pub async fn queued_shares_of(&self, operator: Address, staker: Address) -> Result<U256> {
        call_view!(StakePools::StakePoolsErrors, "queuedSharesOf", self.inner.queuedSharesOf(operator, staker))
    }
    /// PHA value of `shares` of `operator`'s pool.
    pub async fn value_of(&self, operator: Address, shares: U256) -> Result<U256> {
        call_view!(StakePools::StakePoolsErrors, "valueOf", self.inner.valueOf(operator, shares))
    }
    /// The pool parameters (minimum stake, unbonding period, ...).
    pub async fn params(&self) -> Result<StakePools::paramsReturn> {
        call_view!(StakePools::StakePoolsErrors, "params", self.inner.params())
    }
    /// Send: create the sender's pool with a commission in basis points.
    pub async fn send_create_pool(&self, commission_bps: u16) -> Result<TransactionReceipt> {
        self.send("createPool", self.inner.createPool(commission_bps)).await
    }
    /// Send: deposit `amount` PHA (already approved) into `operator`'s pool.
    pub async fn send_deposit(&self, operator: Address, amount: U256) -> Result<TransactionReceipt> {
        self.send("deposit", self.inner.deposit(operator, amount)).await
    }
    /// Send: queue `shares` for withdrawal.
    pub async fn send_request_withdraw(&self, operator: Address, shares: U256) -> Result<TransactionReceipt> {
        self.send("requestWithdraw", self.inner.requestWithdraw(operator, shares)).await
    }
    /// Send: pay up to `max` matured, funded withdrawals of `operator`'s queue.
    pub async fn send_process_withdrawals(&self, operator: Address, max: U256) -> Result<TransactionReceipt> {
        self.send("processWithdrawals", self.inner.processWithdrawals(operator, max)).await
    }
    /// Send: the operator claims its accumulated commission.
    pub async fn send_claim_commission(&self) -> Result<TransactionReceipt> {
        self.send("claimCommission", self.inner.claimCommission()).await
    }
}

// ------------------------------------------------------------------------- Governor

/// OpenZeppelin's `ProposalState`, in its numeric order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalState {
    /// Waiting for the voting delay.
    Pending,
    /// Voting open.
    Active,
    /// Cancelled.
    Canceled,
    /// Failed (quorum or majority).
    Defeated,
    /// Passed, not queued yet.
    Succeeded,
    /// Queued in the timelock.
    Queued,
    /// Past its deadline without execution.
    Expired,
    /// Executed.
    Executed,
}

impl ProposalState {
    fn from_u8(v: u8) -> Result<Self> {
        Ok(match v {
            0 => Self::Pending,
            1 => Self::Active,
            2 => Self::Canceled,
            3 => Self::Defeated,
            4 => Self::Succeeded,
            5 => Self::Queued,
            6 => Self::Expired,
            7 => Self::Executed,
            other => return Err(Error::State(format!("unknown proposal state {other}"))),
        })
    }
}

/// A governance proposal's actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Called contracts.
    pub targets: Vec<Address>,
    /// ETH sent with each call.
    pub values: Vec<U256>,
    /// Calldata of each call.
    pub calldatas: Vec<Bytes>,
    /// Free text; its keccak256 is part of the proposal id.
    pub description: String,
}

impl Proposal {
    /// keccak256 of the description (what `queue` and `execute` take).
    pub fn description_hash(&self) -> B256 {
        alloy::primitives::keccak256(self.description.as_bytes())
    }
}

impl GovernorClient {
    /// The proposal id the Governor derives from the actions and description.
    pub async fn hash_proposal(&self, p: &Proposal) -> Result<U256> {
        call_view!(
            PithGovernor::PithGovernorErrors,
            "hashProposal",
            self.inner.hashProposal(p.targets.clone(), p.values.clone(), p.calldatas.clone(), p.description_hash())
        )
    }
    /// A proposal's state.
    pub async fn state(&self, id: U256) -> Result<ProposalState> {
        let v: u8 = call_view!(PithGovernor::PithGovernorErrors, "state", self.inner.state(id))?;
        ProposalState::from_u8(v)
    }
    /// The block at which voting ends.
    pub async fn proposal_deadline(&self, id: U256) -> Result<U256> {
        call_view!(PithGovernor::PithGovernorErrors, "proposalDeadline", self.inner.proposalDeadline(id))
    }
    /// The voting-power snapshot block.
    pub async fn proposal_snapshot(&self, id: U256) -> Result<U256> {
        call_view!(PithGovernor::PithGovernorErrors, "proposalSnapshot", self.inner.proposalSnapshot(id))
    }
    /// Voting delay (blocks).
    pub async fn voting_delay(&self) -> Result<U256> {
        call_view!(PithGovernor::PithGovernorErrors, "votingDelay", self.inner.votingDelay())
    }
    /// Voting period (blocks).
    pub async fn voting_period(&self) -> Result<U256> {
        call_view!(PithGovernor::PithGovernorErrors, "votingPeriod", self.inner.votingPeriod())
    }
    /// Votes of `who` at block `timepoint`.
    pub async fn votes_at(&self, who: Address, timepoint: U256) -> Result<U256> {
        call_view!(PithGovernor::PithGovernorErrors, "getVotes", self.inner.getVotes(who, timepoint))
    }
    /// Send: create a proposal.
    pub async fn send_propose(&self, p: &Proposal) -> Result<TransactionReceipt> {
        self.send(
            "propose",
            self.inner.propose(p.targets.clone(), p.values.clone(), p.calldatas.clone(), p.description.clone()),
        )
        .await
    }
    /// Send: vote (0 against, 1 for, 2 abstain).
    pub async fn send_vote(&self, id: U256, support: u8) -> Result<TransactionReceipt> {
        self.send("castVote", self.inner.castVote(id, support)).await
    }
    /// Send: queue a succeeded proposal in the timelock.
    pub async fn send_queue(&self, p: &Proposal) -> Result<TransactionReceipt> {
        self.send(
            "queue",
            self.inner.queue(p.targets.clone(), p.values.clone(), p.calldatas.clone(), p.description_hash()),
        )
        .await
    }
    /// Send: execute a queued proposal whose timelock delay has passed.
    pub async fn send_execute(&self, p: &Proposal) -> Result<TransactionReceipt> {
        self.send(
            "execute",
            self.inner.execute(p.targets.clone(), p.values.clone(), p.calldatas.clone(), p.description_hash()),
        )
        .await
    }

    /// Find a proposal's actions from its `ProposalCreated` event (searching from
    /// `from_block`), so `queue`/`execute` need only the id.
    pub async fn find_proposal(&self, id: U256, from_block: u64) -> Result<Proposal> {
        let events = self
            .inner
            .ProposalCreated_filter()
            .from_block(from_block)
            .query()
            .await
            .map_err(|e| contract_error::<PithGovernor::PithGovernorErrors>(Self::NAME, "ProposalCreated", e))?;
        events
            .into_iter()
            .map(|(ev, _)| ev)
            .find(|ev| ev.proposalId == id)
            .map(|ev| Proposal {
                targets: ev.targets,
                values: ev.values,
                calldatas: ev.calldatas,
                description: ev.description,
            })
            .ok_or_else(|| Error::State(format!("no ProposalCreated event for proposal {id}")))
    }
}

// ------------------------------------------------------------------------- all contracts

/// Clients for every contract of a deployment, sharing one provider.
#[derive(Debug, Clone)]
pub struct PithContracts {
    /// The PHA token.
    pub pha: PhaClient,
    /// The Registry.
    pub registry: RegistryClient,
    /// Programs.
    pub programs: ProgramsClient,
    /// StakePools.
    pub stake_pools: StakePoolsClient,
    /// Billing.
    pub billing: BillingClient,
    /// OracleAnchor.
    pub oracle_anchor: OracleAnchorClient,
    /// The Governor.
    pub governor: GovernorClient,
    /// The Timelock.
    pub timelock: TimelockClient,
    provider: DynProvider,
}

impl PithContracts {
    /// Clients for the contracts of `deployment` through `provider`.
    pub fn new(deployment: &Deployment, provider: DynProvider) -> Self {
        let c = &deployment.contracts;
        Self {
            pha: PhaClient::new(c.pha, provider.clone()),
            registry: RegistryClient::new(c.registry, provider.clone()),
            programs: ProgramsClient::new(c.programs, provider.clone()),
            stake_pools: StakePoolsClient::new(c.stake_pools, provider.clone()),
            billing: BillingClient::new(c.billing, provider.clone()),
            oracle_anchor: OracleAnchorClient::new(c.oracle_anchor, provider.clone()),
            governor: GovernorClient::new(c.governor, provider.clone()),
            timelock: TimelockClient::new(c.timelock, provider.clone()),
            provider,
        }
    }
    /// The shared provider.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }
    /// Check that the node serves the deployment's chain and that every contract has code.
    pub async fn check_deployed(&self, deployment: &Deployment) -> Result<()> {
        let id = self.provider.get_chain_id().await.map_err(Error::rpc)?;
        if id != deployment.chain_id {
            return Err(Error::State(format!("node has chain id {id}, deployment.json says {}", deployment.chain_id)));
        }
        for (name, addr) in deployment.contracts.named() {
            let code = self.provider.get_code_at(addr).await.map_err(Error::rpc)?;
            if code.is_empty() {
                return Err(Error::State(format!("{name} at {addr} has no code on this chain")));
            }
        }
        Ok(())
    }
}
