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
use alloy::sol_types::{SolEvent, SolInterface};

use crate::bindings::{
    Billing, OracleAnchor, PHA, PithGovernor, Programs, Registry, StakePools, Timelock,
};
use crate::error::{Error, Result};
use crate::manifest::Deployment;

/// A read-only provider for `url` (plain HTTP).
pub fn read_provider(url: &str) -> Result<DynProvider> {
    let url = url
        .parse()
        .map_err(|e| Error::Rpc(format!("bad RPC URL {url}: {e}")))?;
    Ok(ProviderBuilder::new().connect_http(url).erased())
}

/// A provider that signs and sends transactions with `signer` (nonce, gas and fees filled in).
///
/// The nonce is asked from the node for every transaction (alloy's default caches it, and a
/// transaction that fails gas estimation then leaves a gap that stalls every later one).
pub fn signing_provider(url: &str, signer: PrivateKeySigner) -> Result<DynProvider> {
    let url = url
        .parse()
        .map_err(|e| Error::Rpc(format!("bad RPC URL {url}: {e}")))?;
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
    Error::Contract {
        contract,
        function,
        message,
    }
}

/// How long [`wait_receipt`] waits for a transaction to be mined.
pub const RECEIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Poll for a transaction's receipt every 50 ms, up to [`RECEIPT_TIMEOUT`], so a
/// transaction that is never mined ends in an error instead of a wait without end.
pub async fn wait_receipt<P: Provider<Ethereum> + ?Sized>(
    provider: &P,
    tx: B256,
) -> Result<TransactionReceipt> {
    let deadline = tokio::time::Instant::now() + RECEIPT_TIMEOUT;
    loop {
        if let Some(r) = provider
            .get_transaction_receipt(tx)
            .await
            .map_err(Error::rpc)?
        {
            return Ok(r);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Rpc(format!(
                "transaction {tx} not mined after {RECEIPT_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Wait for transaction `tx` to be mined and require that it succeeded; `what` names the
/// step (`"Registry.setPlatform"`, `"deploy PHA"`) in the [`Error::Reverted`] it fails with.
pub async fn confirm<P: Provider<Ethereum> + ?Sized>(
    provider: &P,
    tx: B256,
    what: impl FnOnce() -> String,
) -> Result<TransactionReceipt> {
    let receipt = wait_receipt(provider, tx).await?;
    if !receipt.status() {
        return Err(Error::Reverted {
            tx: receipt.transaction_hash.to_string(),
            what: what(),
        });
    }
    Ok(receipt)
}

/// The one send path of the crate: send a prepared `sol!` call, wait for its receipt and
/// require success. A revert found while estimating gas is decoded with `E`, the contract's
/// custom errors, into [`Error::Contract`]; a mined revert is [`Error::Reverted`].
pub async fn send_call<P, D, E>(
    contract: &'static str,
    function: &'static str,
    call: CallBuilder<P, D, Ethereum>,
) -> Result<TransactionReceipt>
where
    P: Provider<Ethereum>,
    D: CallDecoder,
    E: SolInterface + std::fmt::Debug,
{
    let pending = call
        .send()
        .await
        .map_err(|e| contract_error::<E>(contract, function, e))?;
    confirm(pending.provider(), *pending.tx_hash(), || {
        format!("{contract}.{function}")
    })
    .await
}

/// Every `E` event that the contract at `address` emitted in `receipt`, in log order.
pub fn events_in<E: SolEvent>(receipt: &TransactionReceipt, address: Address) -> Vec<E> {
    receipt
        .inner
        .logs()
        .iter()
        .filter(|l| l.address() == address)
        .filter_map(|l| E::decode_log_data(l.data()).ok())
        .collect()
}

/// The single `E` event of `address` in `receipt`; an error when there is none.
pub fn event_in<E: SolEvent>(receipt: &TransactionReceipt, address: Address) -> Result<E> {
    events_in::<E>(receipt, address)
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::State(format!(
                "transaction {} emitted no {}",
                receipt.transaction_hash,
                E::SIGNATURE
            ))
        })
}

macro_rules! call_view {
    ($errs:ty, $name:literal, $call:expr) => {
        $call
            .call()
            .await
            .map_err(|e| contract_error::<$errs>(Self::NAME, $name, e))
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
                send_call::<_, D, $module::$errs>($name, function, call).await
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
        call_view!(
            PHA::PHAErrors,
            "allowance",
            self.inner.allowance(owner, spender)
        )
    }
    /// Send: transfer `amount` to `to`.
    pub async fn send_transfer(&self, to: Address, amount: U256) -> Result<TransactionReceipt> {
        self.send("transfer", self.inner.transfer(to, amount)).await
    }
    /// Send: approve `spender` for `amount`.
    pub async fn send_approve(&self, spender: Address, amount: U256) -> Result<TransactionReceipt> {
        self.send("approve", self.inner.approve(spender, amount))
            .await
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
        call_view!(
            Registry::RegistryErrors,
            "isActiveWorker",
            self.inner.isActiveWorker(worker)
        )
    }
    /// The registration record of `worker`.
    pub async fn worker_info(&self, worker: Address) -> Result<Registry::Worker> {
        call_view!(
            Registry::RegistryErrors,
            "workerInfo",
            self.inner.workerInfo(worker)
        )
    }
    /// The current KMS committee.
    pub async fn kms_members(&self) -> Result<Vec<Address>> {
        call_view!(
            Registry::RegistryErrors,
            "kmsMembers",
            self.inner.kmsMembers()
        )
    }
    /// The KMS signature threshold.
    pub async fn kms_threshold(&self) -> Result<u8> {
        call_view!(
            Registry::RegistryErrors,
            "kmsThreshold",
            self.inner.kmsThreshold()
        )
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
        call_view!(
            Registry::RegistryErrors,
            "platformConfig",
            self.inner.platformConfig(platform)
        )
    }
    /// The EIP-712 digest the contract computes for a registration.
    pub async fn registration_digest(&self, reg: &Registry::WorkerRegistration) -> Result<B256> {
        call_view!(
            Registry::RegistryErrors,
            "registrationDigest",
            self.inner.registrationDigest(reg.clone())
        )
    }
    /// The contract's EIP-712 domain separator.
    pub async fn domain_separator(&self) -> Result<B256> {
        call_view!(
            Registry::RegistryErrors,
            "domainSeparator",
            self.inner.domainSeparator()
        )
    }
    /// Send: register or re-attest a worker with KMS signatures (sorted by signer address).
    pub async fn send_register_worker(
        &self,
        reg: Registry::WorkerRegistration,
        evidence: Bytes,
        signatures: Vec<Bytes>,
    ) -> Result<TransactionReceipt> {
        self.send(
            "registerWorker",
            self.inner.registerWorker(reg, evidence, signatures),
        )
        .await
    }
    /// The EIP-712 digest the contract computes for a KMS revocation.
    pub async fn revocation_digest(&self, worker: Address, reason: u8) -> Result<B256> {
        call_view!(
            Registry::RegistryErrors,
            "revocationDigest",
            self.inner.revocationDigest(worker, reason)
        )
    }
    /// Whether `account` is in the current KMS committee.
    pub async fn is_kms_member(&self, account: Address) -> Result<bool> {
        call_view!(
            Registry::RegistryErrors,
            "isKmsMember",
            self.inner.isKmsMember(account)
        )
    }
    /// The KMS master-key epoch governance has ordered (0 until the first rotation).
    pub async fn kms_key_epoch(&self) -> Result<u32> {
        call_view!(
            Registry::RegistryErrors,
            "kmsKeyEpoch",
            self.inner.kmsKeyEpoch()
        )
    }
    /// Send: a KMS member (the provider's signer) posts its own evidence; the measurement must
    /// be allowed for the KMS role on `platform`. The event carries keccak256 of `evidence`.
    pub async fn send_post_kms_evidence(
        &self,
        platform: u8,
        measurement_hash: B256,
        tcb_status: u8,
        evidence: Bytes,
    ) -> Result<TransactionReceipt> {
        self.send(
            "postKmsEvidence",
            self.inner
                .postKmsEvidence(platform, measurement_hash, tcb_status, evidence),
        )
        .await
    }
    /// Send: revoke `worker` with KMS signatures over `WorkerRevocation(worker, reason)`
    /// ([`crate::eip712::revocation_digest`], sorted by signer). Anyone may submit.
    pub async fn send_revoke_worker_by_kms(
        &self,
        worker: Address,
        reason: u8,
        signatures: Vec<Bytes>,
    ) -> Result<TransactionReceipt> {
        self.send(
            "revokeWorkerByKms",
            self.inner.revokeWorkerByKms(worker, reason, signatures),
        )
        .await
    }
    /// Send: order a KMS master-key rotation. Admin only, so after deployment only the
    /// timelock can (a governance proposal whose action is [`Self::rotate_kms_key_calldata`]).
    /// Returns the new epoch from the `KmsKeyRotationOrdered` event.
    pub async fn send_rotate_kms_key(&self) -> Result<(u32, TransactionReceipt)> {
        let receipt = self.send("rotateKmsKey", self.inner.rotateKmsKey()).await?;
        let epochs = self.kms_key_rotations_in(&receipt);
        let epoch = epochs
            .first()
            .copied()
            .ok_or_else(|| Error::State("rotateKmsKey emitted no KmsKeyRotationOrdered".into()))?;
        Ok((epoch, receipt))
    }
    /// Calldata of `rotateKmsKey()`, for a governance proposal targeting the Registry.
    pub fn rotate_kms_key_calldata() -> Bytes {
        alloy::sol_types::SolCall::abi_encode(&Registry::rotateKmsKeyCall {}).into()
    }
    /// The epochs of the `KmsKeyRotationOrdered` events of this Registry in `receipt`.
    pub fn kms_key_rotations_in(&self, receipt: &TransactionReceipt) -> Vec<u32> {
        events_in::<Registry::KmsKeyRotationOrdered>(receipt, self.address())
            .into_iter()
            .map(|e| e.epoch)
            .collect()
    }
    /// Every rotation ordered from block `from_block` on: `(block, epoch)`, oldest first.
    /// (For a confirmed, reorg-safe stream use [`crate::watcher::EventWatcher`] with
    /// `Registry::KmsKeyRotationOrdered::SIGNATURE_HASH`.)
    pub async fn kms_key_rotations(&self, from_block: u64) -> Result<Vec<(u64, u32)>> {
        let events = self
            .inner
            .KmsKeyRotationOrdered_filter()
            .from_block(from_block)
            .query()
            .await
            .map_err(|e| {
                contract_error::<Registry::RegistryErrors>(Self::NAME, "KmsKeyRotationOrdered", e)
            })?;
        Ok(events
            .into_iter()
            .map(|(ev, log)| (log.block_number.unwrap_or_default(), ev.epoch))
            .collect())
    }
}

// ------------------------------------------------------------------------- Programs

impl ProgramsClient {
    /// Number of programs registered (ids run from 1 to this).
    pub async fn program_count(&self) -> Result<U256> {
        call_view!(
            Programs::ProgramsErrors,
            "programCount",
            self.inner.programCount()
        )
    }
    /// Whether program `id` exists.
    pub async fn exists(&self, id: U256) -> Result<bool> {
        call_view!(Programs::ProgramsErrors, "exists", self.inner.exists(id))
    }
    /// The owner of program `id` (zero when unknown).
    pub async fn owner_of(&self, id: U256) -> Result<Address> {
        call_view!(Programs::ProgramsErrors, "ownerOf", self.inner.ownerOf(id))
    }
    /// The current code hash of program `id` (zero when unknown).
    pub async fn code_hash_of(&self, id: U256) -> Result<B256> {
        call_view!(
            Programs::ProgramsErrors,
            "codeHashOf",
            self.inner.codeHashOf(id)
        )
    }
    /// The whole record of program `id`: owner, code admin, code hash, configuration.
    pub async fn program(&self, id: U256) -> Result<Programs::Program> {
        call_view!(Programs::ProgramsErrors, "program", self.inner.program(id))
    }
    /// Code hash and platform mask in one call (what a worker checks before running it).
    pub async fn run_info(&self, id: U256) -> Result<(B256, U256)> {
        let r = call_view!(Programs::ProgramsErrors, "runInfo", self.inner.runInfo(id))?;
        Ok((r.codeHash, r.platformMask))
    }
    /// Whether `code_hash` is on program `id`'s upgrade allow-list.
    pub async fn is_allowed_code(&self, id: U256, code_hash: B256) -> Result<bool> {
        call_view!(
            Programs::ProgramsErrors,
            "isAllowedCode",
            self.inner.isAllowedCode(id, code_hash)
        )
    }
    /// Whether workers of `platform` may run program `id`.
    pub async fn platform_allowed(&self, id: U256, platform: u8) -> Result<bool> {
        call_view!(
            Programs::ProgramsErrors,
            "platformAllowed",
            self.inner.platformAllowed(id, platform)
        )
    }
    /// Send: register a program owned by the signer. Returns the new id (from the
    /// `ProgramRegistered` event) and the receipt.
    pub async fn send_register(
        &self,
        code_hash: B256,
        config: Programs::Config,
    ) -> Result<(U256, TransactionReceipt)> {
        let receipt = self
            .send("register", self.inner.register(code_hash, config))
            .await?;
        let id = self.registered_id(&receipt)?;
        Ok((id, receipt))
    }
    /// The program id of the `ProgramRegistered` event of this contract in `receipt`.
    pub fn registered_id(&self, receipt: &TransactionReceipt) -> Result<U256> {
        Ok(event_in::<Programs::ProgramRegistered>(receipt, self.address())?.programId)
    }
    /// Send: replace program `id`'s configuration (owner only).
    pub async fn send_set_config(
        &self,
        id: U256,
        config: Programs::Config,
    ) -> Result<TransactionReceipt> {
        self.send("setConfig", self.inner.setConfig(id, config))
            .await
    }
    /// Send: change program `id`'s code hash (owner; or, under a code admin, owner or admin
    /// to an allow-listed hash).
    pub async fn send_upgrade(&self, id: U256, new_code_hash: B256) -> Result<TransactionReceipt> {
        self.send("upgrade", self.inner.upgrade(id, new_code_hash))
            .await
    }
    /// Send: hand program `id` to `new_owner`.
    pub async fn send_transfer_ownership(
        &self,
        id: U256,
        new_owner: Address,
    ) -> Result<TransactionReceipt> {
        self.send(
            "transferOwnership",
            self.inner.transferOwnership(id, new_owner),
        )
        .await
    }
    /// Send: set (or lift, with zero) the code admin of program `id`.
    pub async fn send_set_code_admin(
        &self,
        id: U256,
        admin: Address,
    ) -> Result<TransactionReceipt> {
        self.send("setCodeAdmin", self.inner.setCodeAdmin(id, admin))
            .await
    }
    /// Send: add or remove `code_hash` on program `id`'s allow-list.
    pub async fn send_set_allowed_code(
        &self,
        id: U256,
        code_hash: B256,
        allowed: bool,
    ) -> Result<TransactionReceipt> {
        self.send(
            "setAllowedCode",
            self.inner.setAllowedCode(id, code_hash, allowed),
        )
        .await
    }
}

// ------------------------------------------------------------------------- Billing

/// A program's announced withdrawal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingWithdrawal {
    /// PHA (wei) announced.
    pub amount: U256,
    /// Unix time from which `withdraw` pays it.
    pub ready_at: u64,
}

impl BillingClient {
    /// PHA (wei) deposited for program `id` and not yet charged or withdrawn.
    pub async fn deposit_of(&self, id: U256) -> Result<U256> {
        call_view!(Billing::BillingErrors, "deposits", self.inner.deposits(id))
    }
    /// The announced withdrawal of program `id` (amount zero when none).
    pub async fn pending_withdrawal(&self, id: U256) -> Result<PendingWithdrawal> {
        let r = call_view!(
            Billing::BillingErrors,
            "pendingWithdrawals",
            self.inner.pendingWithdrawals(id)
        )?;
        Ok(PendingWithdrawal {
            amount: U256::from(r.amount),
            ready_at: r.readyAt,
        })
    }
    /// The smallest usage nonce `worker` may submit next.
    pub async fn next_usage_nonce(&self, worker: Address) -> Result<u64> {
        call_view!(
            Billing::BillingErrors,
            "nextUsageNonce",
            self.inner.nextUsageNonce(worker)
        )
    }
    /// The governance price list.
    pub async fn prices(&self) -> Result<Billing::Prices> {
        let r = call_view!(Billing::BillingErrors, "prices", self.inner.prices())?;
        Ok(Billing::Prices {
            perRequest: r.perRequest,
            perCpuMilli: r.perCpuMilli,
            perEgressByte: r.perEgressByte,
            perAiToken: r.perAiToken,
        })
    }
    /// The treasury's fee on usage, in basis points.
    pub async fn treasury_fee_bps(&self) -> Result<u16> {
        call_view!(
            Billing::BillingErrors,
            "treasuryFeeBps",
            self.inner.treasuryFeeBps()
        )
    }
    /// Treasury fees accrued and not yet swept.
    pub async fn treasury_accrued(&self) -> Result<U256> {
        call_view!(
            Billing::BillingErrors,
            "treasuryAccrued",
            self.inner.treasuryAccrued()
        )
    }
    /// The current emission epoch.
    pub async fn current_epoch(&self) -> Result<U256> {
        call_view!(
            Billing::BillingErrors,
            "currentEpoch",
            self.inner.currentEpoch()
        )
    }
    /// Epoch length in seconds.
    pub async fn epoch_length(&self) -> Result<u64> {
        call_view!(
            Billing::BillingErrors,
            "epochLength",
            self.inner.epochLength()
        )
    }
    /// The schedule's emission budget of `epoch`.
    pub async fn scheduled_budget(&self, epoch: U256) -> Result<U256> {
        call_view!(
            Billing::BillingErrors,
            "scheduledBudget",
            self.inner.scheduledBudget(epoch)
        )
    }
    /// PHA earned by `operator`'s workers in `epoch` (its emission weight).
    pub async fn work_of(&self, epoch: U256, operator: Address) -> Result<U256> {
        call_view!(
            Billing::BillingErrors,
            "workOf",
            self.inner.workOf(epoch, operator)
        )
    }
    /// PHA earned by all workers in `epoch`.
    pub async fn work_done(&self, epoch: U256) -> Result<U256> {
        call_view!(
            Billing::BillingErrors,
            "workDone",
            self.inner.workDone(epoch)
        )
    }
    /// PHA held for emissions and not yet committed to an epoch.
    pub async fn emission_reserve(&self) -> Result<U256> {
        call_view!(
            Billing::BillingErrors,
            "emissionReserve",
            self.inner.emissionReserve()
        )
    }
    /// Whether `operator` claimed its emission of `epoch`.
    pub async fn emission_claimed(&self, epoch: U256, operator: Address) -> Result<bool> {
        call_view!(
            Billing::BillingErrors,
            "emissionClaimed",
            self.inner.emissionClaimed(epoch, operator)
        )
    }
    /// The digest the contract computes for `batch` (compare [`crate::eip712::usage_digest`]).
    pub async fn usage_digest(&self, batch: &Billing::UsageBatch) -> Result<B256> {
        call_view!(
            Billing::BillingErrors,
            "usageDigest",
            self.inner.usageDigest(batch.clone())
        )
    }
    /// Send: deposit `amount` PHA (already approved to Billing) for program `id`.
    pub async fn send_deposit(&self, id: U256, amount: U256) -> Result<TransactionReceipt> {
        self.send("deposit", self.inner.deposit(id, amount)).await
    }
    /// Send: announce a withdrawal of `amount` from program `id`'s deposit (owner only);
    /// it replaces any earlier one. `amount` must fit in 192 bits.
    pub async fn send_request_withdrawal(
        &self,
        id: U256,
        amount: U256,
    ) -> Result<TransactionReceipt> {
        let amount = alloy::primitives::Uint::<192, 3>::checked_from_limbs_slice(amount.as_limbs())
            .ok_or_else(|| {
                Error::State(format!(
                    "withdrawal amount {amount} does not fit in uint192"
                ))
            })?;
        self.send(
            "requestWithdrawal",
            self.inner.requestWithdrawal(id, amount),
        )
        .await
    }
    /// Send: pay the announced, matured withdrawal of program `id` to `to` (owner only).
    pub async fn send_withdraw(&self, id: U256, to: Address) -> Result<TransactionReceipt> {
        self.send("withdraw", self.inner.withdraw(id, to)).await
    }
    /// Send: settle a usage batch signed by its worker ([`crate::eip712::usage_digest`]).
    pub async fn send_submit_usage(
        &self,
        batch: Billing::UsageBatch,
        signature: Bytes,
    ) -> Result<TransactionReceipt> {
        self.send("submitUsage", self.inner.submitUsage(batch, signature))
            .await
    }
    /// Send: pay `operator`'s share of finished `epoch`'s emission into its pool. Returns the
    /// amount from the `EmissionClaimed` event.
    pub async fn send_claim_emission(
        &self,
        epoch: U256,
        operator: Address,
    ) -> Result<(U256, TransactionReceipt)> {
        let receipt = self
            .send("claimEmission", self.inner.claimEmission(epoch, operator))
            .await?;
        let amount = event_in::<Billing::EmissionClaimed>(&receipt, self.address())?.amount;
        Ok((amount, receipt))
    }
    /// Send: add `amount` PHA (approved) to the emission reserve.
    pub async fn send_fund_emission(&self, amount: U256) -> Result<TransactionReceipt> {
        self.send("fundEmission", self.inner.fundEmission(amount))
            .await
    }
    /// Send: move the accrued treasury fees to the treasury.
    pub async fn send_sweep_treasury(&self) -> Result<TransactionReceipt> {
        self.send("sweepTreasury", self.inner.sweepTreasury()).await
    }
}

// ------------------------------------------------------------------------- OracleAnchor

impl OracleAnchorClient {
    /// A request's record (requester zero once fulfilled or refunded, or when unknown).
    pub async fn request_info(&self, request_id: U256) -> Result<OracleAnchor::Request> {
        call_view!(
            OracleAnchor::OracleAnchorErrors,
            "requestInfo",
            self.inner.requestInfo(request_id)
        )
    }
    /// Number of requests made (ids run from 1 to this).
    pub async fn request_count(&self) -> Result<U256> {
        call_view!(
            OracleAnchor::OracleAnchorErrors,
            "requestCount",
            self.inner.requestCount()
        )
    }
    /// The digest the contract computes for a result (compare
    /// [`crate::eip712::oracle_result_digest`]).
    pub async fn result_digest(
        &self,
        request_id: U256,
        program_id: U256,
        code_hash: B256,
        result_hash: B256,
    ) -> Result<B256> {
        call_view!(
            OracleAnchor::OracleAnchorErrors,
            "resultDigest",
            self.inner
                .resultDigest(request_id, program_id, code_hash, result_hash)
        )
    }
    /// Fees earned by `operator`'s workers and not yet swept into its pool.
    pub async fn fees_owed(&self, operator: Address) -> Result<U256> {
        call_view!(
            OracleAnchor::OracleAnchorErrors,
            "feesOwed",
            self.inner.feesOwed(operator)
        )
    }
    /// Seconds a request stays open.
    pub async fn timeout(&self) -> Result<u64> {
        call_view!(
            OracleAnchor::OracleAnchorErrors,
            "timeout",
            self.inner.timeout()
        )
    }
    /// The smallest fee a request must escrow.
    pub async fn min_fee(&self) -> Result<u128> {
        call_view!(
            OracleAnchor::OracleAnchorErrors,
            "minFee",
            self.inner.minFee()
        )
    }
    /// The largest callback gas limit a request may ask for.
    pub async fn max_callback_gas(&self) -> Result<u32> {
        call_view!(
            OracleAnchor::OracleAnchorErrors,
            "maxCallbackGas",
            self.inner.maxCallbackGas()
        )
    }
    /// Send: ask program `program_id` to process `payload`, escrowing `fee` PHA (approved).
    /// Returns the `OracleRequested` event (request id, deadline, ...) and the receipt.
    pub async fn send_request(
        &self,
        program_id: U256,
        payload: Bytes,
        callback_gas_limit: u32,
        fee: u128,
    ) -> Result<(OracleAnchor::OracleRequested, TransactionReceipt)> {
        let receipt = self
            .send(
                "request",
                self.inner
                    .request(program_id, payload, callback_gas_limit, fee),
            )
            .await?;
        let ev = event_in::<OracleAnchor::OracleRequested>(&receipt, self.address())?;
        Ok((ev, receipt))
    }
    /// The `OracleRequested` events of this contract in `receipt`.
    pub fn requests_in(&self, receipt: &TransactionReceipt) -> Vec<OracleAnchor::OracleRequested> {
        events_in(receipt, self.address())
    }
    /// Decode one log as an `OracleRequested` event of this contract (what a worker does with
    /// the logs an [`crate::watcher::EventWatcher`] delivers); `None` for any other log.
    pub fn decode_request(
        &self,
        log: &alloy::rpc::types::Log,
    ) -> Option<OracleAnchor::OracleRequested> {
        if log.address() != self.address() {
            return None;
        }
        OracleAnchor::OracleRequested::decode_log_data(log.data()).ok()
    }
    /// Every `OracleRequested` event from block `from_block` on, oldest first.
    pub async fn requests_since(
        &self,
        from_block: u64,
    ) -> Result<Vec<OracleAnchor::OracleRequested>> {
        let events = self
            .inner
            .OracleRequested_filter()
            .from_block(from_block)
            .query()
            .await
            .map_err(|e| {
                contract_error::<OracleAnchor::OracleAnchorErrors>(Self::NAME, "OracleRequested", e)
            })?;
        Ok(events.into_iter().map(|(ev, _)| ev).collect())
    }
    /// Send: deliver `result` for `request_id` with the worker's signature
    /// ([`crate::eip712::oracle_result_digest`]). Anyone may relay. Returns the
    /// `OracleFulfilled` event (worker, result hash, whether the callback succeeded).
    pub async fn send_fulfil(
        &self,
        request_id: U256,
        result: Bytes,
        signature: Bytes,
    ) -> Result<(OracleAnchor::OracleFulfilled, TransactionReceipt)> {
        let receipt = self
            .send("fulfil", self.inner.fulfil(request_id, result, signature))
            .await?;
        let ev = event_in::<OracleAnchor::OracleFulfilled>(&receipt, self.address())?;
        Ok((ev, receipt))
    }
    /// Send: refund an expired, unfulfilled request to its requester. Anyone may call.
    pub async fn send_refund(&self, request_id: U256) -> Result<TransactionReceipt> {
        self.send("refund", self.inner.refund(request_id)).await
    }
    /// Open `operator`'s fee account (the caller pays one wei of PHA, approved first) so
    /// that its first fulfilment costs no more than the later ones. A no-op when open.
    pub async fn send_open_fee_account(&self, operator: Address) -> Result<TransactionReceipt> {
        self.send("openFeeAccount", self.inner.openFeeAccount(operator))
            .await
    }
    /// Send: pay the fees owed to `operator` into its pool. Anyone may call.
    pub async fn send_sweep_fees(&self, operator: Address) -> Result<TransactionReceipt> {
        self.send("sweepFees", self.inner.sweepFees(operator)).await
    }
}

// ------------------------------------------------------------------------- StakePools

impl StakePoolsClient {
    /// Whether `operator` has a pool.
    pub async fn pool_exists(&self, operator: Address) -> Result<bool> {
        call_view!(
            StakePools::StakePoolsErrors,
            "poolExists",
            self.inner.poolExists(operator)
        )
    }
    /// The pool of `operator`.
    pub async fn pool(&self, operator: Address) -> Result<StakePools::Pool> {
        call_view!(
            StakePools::StakePoolsErrors,
            "pool",
            self.inner.pool(operator)
        )
    }
    /// Active shares of `staker` in `operator`'s pool.
    pub async fn shares_of(&self, operator: Address, staker: Address) -> Result<U256> {
        call_view!(
            StakePools::StakePoolsErrors,
            "sharesOf",
            self.inner.sharesOf(operator, staker)
        )
    }
    /// Queued (withdrawing) shares of `staker` in `operator`'s pool.
    pub async fn queued_shares_of(&self, operator: Address, staker: Address) -> Result<U256> {
        call_view!(
            StakePools::StakePoolsErrors,
            "queuedSharesOf",
            self.inner.queuedSharesOf(operator, staker)
        )
    }
    /// PHA value of `shares` of `operator`'s pool.
    pub async fn value_of(&self, operator: Address, shares: U256) -> Result<U256> {
        call_view!(
            StakePools::StakePoolsErrors,
            "valueOf",
            self.inner.valueOf(operator, shares)
        )
    }
    /// The pool parameters (minimum stake, unbonding period, ...).
    pub async fn params(&self) -> Result<StakePools::paramsReturn> {
        call_view!(StakePools::StakePoolsErrors, "params", self.inner.params())
    }
    /// Send: create the sender's pool with a commission in basis points.
    pub async fn send_create_pool(&self, commission_bps: u16) -> Result<TransactionReceipt> {
        self.send("createPool", self.inner.createPool(commission_bps))
            .await
    }
    /// Send: deposit `amount` PHA (already approved) into `operator`'s pool.
    pub async fn send_deposit(
        &self,
        operator: Address,
        amount: U256,
    ) -> Result<TransactionReceipt> {
        self.send("deposit", self.inner.deposit(operator, amount))
            .await
    }
    /// Send: queue `shares` for withdrawal.
    pub async fn send_request_withdraw(
        &self,
        operator: Address,
        shares: U256,
    ) -> Result<TransactionReceipt> {
        self.send(
            "requestWithdraw",
            self.inner.requestWithdraw(operator, shares),
        )
        .await
    }
    /// Send: pay up to `max` matured, funded withdrawals of `operator`'s queue.
    pub async fn send_process_withdrawals(
        &self,
        operator: Address,
        max: U256,
    ) -> Result<TransactionReceipt> {
        self.send(
            "processWithdrawals",
            self.inner.processWithdrawals(operator, max),
        )
        .await
    }
    /// Whether `worker` may receive work now, with its operator and platform (registered and
    /// active in the Registry, running with at least the minimum stake locked).
    pub async fn work_status(&self, worker: Address) -> Result<(bool, Address, u8)> {
        let r = call_view!(
            StakePools::StakePoolsErrors,
            "workStatus",
            self.inner.workStatus(worker)
        )?;
        Ok((r.ok, r.operator, r.platform))
    }
    /// Send: the operator (signer) locks `amount` of its pool's free stake on `worker`.
    pub async fn send_start_worker(
        &self,
        worker: Address,
        amount: U256,
    ) -> Result<TransactionReceipt> {
        self.send("startWorker", self.inner.startWorker(worker, amount))
            .await
    }
    /// Send: the operator (signer) stops `worker` and frees its stake.
    pub async fn send_stop_worker(&self, worker: Address) -> Result<TransactionReceipt> {
        self.send("stopWorker", self.inner.stopWorker(worker)).await
    }
    /// Send: the operator claims its accumulated commission.
    pub async fn send_claim_commission(&self) -> Result<TransactionReceipt> {
        self.send("claimCommission", self.inner.claimCommission())
            .await
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
            self.inner.hashProposal(
                p.targets.clone(),
                p.values.clone(),
                p.calldatas.clone(),
                p.description_hash()
            )
        )
    }
    /// A proposal's state.
    pub async fn state(&self, id: U256) -> Result<ProposalState> {
        let v: u8 = call_view!(
            PithGovernor::PithGovernorErrors,
            "state",
            self.inner.state(id)
        )?;
        ProposalState::from_u8(v)
    }
    /// The block at which voting ends.
    pub async fn proposal_deadline(&self, id: U256) -> Result<U256> {
        call_view!(
            PithGovernor::PithGovernorErrors,
            "proposalDeadline",
            self.inner.proposalDeadline(id)
        )
    }
    /// The voting-power snapshot block.
    pub async fn proposal_snapshot(&self, id: U256) -> Result<U256> {
        call_view!(
            PithGovernor::PithGovernorErrors,
            "proposalSnapshot",
            self.inner.proposalSnapshot(id)
        )
    }
    /// Voting delay (blocks).
    pub async fn voting_delay(&self) -> Result<U256> {
        call_view!(
            PithGovernor::PithGovernorErrors,
            "votingDelay",
            self.inner.votingDelay()
        )
    }
    /// Voting period (blocks).
    pub async fn voting_period(&self) -> Result<U256> {
        call_view!(
            PithGovernor::PithGovernorErrors,
            "votingPeriod",
            self.inner.votingPeriod()
        )
    }
    /// Votes of `who` at block `timepoint`.
    pub async fn votes_at(&self, who: Address, timepoint: U256) -> Result<U256> {
        call_view!(
            PithGovernor::PithGovernorErrors,
            "getVotes",
            self.inner.getVotes(who, timepoint)
        )
    }
    /// Send: create a proposal.
    pub async fn send_propose(&self, p: &Proposal) -> Result<TransactionReceipt> {
        self.send(
            "propose",
            self.inner.propose(
                p.targets.clone(),
                p.values.clone(),
                p.calldatas.clone(),
                p.description.clone(),
            ),
        )
        .await
    }
    /// Send: vote (0 against, 1 for, 2 abstain).
    pub async fn send_vote(&self, id: U256, support: u8) -> Result<TransactionReceipt> {
        self.send("castVote", self.inner.castVote(id, support))
            .await
    }
    /// Send: queue a succeeded proposal in the timelock.
    pub async fn send_queue(&self, p: &Proposal) -> Result<TransactionReceipt> {
        self.send(
            "queue",
            self.inner.queue(
                p.targets.clone(),
                p.values.clone(),
                p.calldatas.clone(),
                p.description_hash(),
            ),
        )
        .await
    }
    /// Send: execute a queued proposal whose timelock delay has passed.
    pub async fn send_execute(&self, p: &Proposal) -> Result<TransactionReceipt> {
        self.send(
            "execute",
            self.inner.execute(
                p.targets.clone(),
                p.values.clone(),
                p.calldatas.clone(),
                p.description_hash(),
            ),
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
            .map_err(|e| {
                contract_error::<PithGovernor::PithGovernorErrors>(Self::NAME, "ProposalCreated", e)
            })?;
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
            return Err(Error::State(format!(
                "node has chain id {id}, deployment.json says {}",
                deployment.chain_id
            )));
        }
        for (name, addr) in deployment.contracts.named() {
            let code = self.provider.get_code_at(addr).await.map_err(Error::rpc)?;
            if code.is_empty() {
                return Err(Error::State(format!(
                    "{name} at {addr} has no code on this chain"
                )));
            }
        }
        Ok(())
    }
}
