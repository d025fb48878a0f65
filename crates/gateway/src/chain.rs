//! What the gateway reads from the chain: the Registry (workers, KMS committee), Programs,
//! Billing deposits, StakePools, and registration evidence from transaction calldata.

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::{SolCall, SolEvent};
use pith_chain::bindings::{Programs, Registry};
use pith_chain::client::PithContracts;
use pith_chain::{Deployment, Error};

/// A worker's registration as the Registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainWorker {
    /// Operator.
    pub operator: Address,
    /// Platform id.
    pub platform: u8,
    /// TCB status code.
    pub tcb_status: u8,
    /// Expiry, unix seconds.
    pub expiry: u64,
    /// Revoked.
    pub revoked: bool,
    /// Measurement hash.
    pub measurement_hash: B256,
    /// keccak256 of the registered evidence.
    pub evidence_hash: B256,
    /// `Registry.isActiveWorker`.
    pub active: bool,
}

/// A program as Programs and Billing hold it.
#[derive(Debug, Clone)]
pub struct ChainProgram {
    /// Id.
    pub id: U256,
    /// Owner.
    pub owner: Address,
    /// Current code hash.
    pub code_hash: B256,
    /// Config.
    pub config: Programs::Config,
    /// Billing deposit (wei).
    pub deposit: U256,
}

/// Typed reads of one deployment.
#[derive(Debug, Clone)]
pub struct ChainView {
    contracts: PithContracts,
    deployment: Deployment,
}

impl ChainView {
    /// Reads of `deployment` through `provider`.
    pub fn new(deployment: Deployment, provider: DynProvider) -> Self {
        Self {
            contracts: PithContracts::new(&deployment, provider),
            deployment,
        }
    }

    /// The deployment.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The typed contract clients.
    pub fn contracts(&self) -> &PithContracts {
        &self.contracts
    }

    /// The provider.
    pub fn provider(&self) -> &DynProvider {
        self.contracts.provider()
    }

    /// A worker's registration (all zero when unknown) and whether it is active.
    pub async fn worker(&self, worker: Address) -> Result<ChainWorker, Error> {
        let (info, active) = tokio::try_join!(
            self.contracts.registry.worker_info(worker),
            self.contracts.registry.is_active_worker(worker)
        )?;
        Ok(ChainWorker {
            operator: info.operator,
            platform: info.platform,
            tcb_status: info.tcbStatus,
            expiry: info.expiry,
            revoked: info.revoked,
            measurement_hash: info.measurementHash,
            evidence_hash: info.evidenceHash,
            active,
        })
    }

    /// Whether `worker` is active in the Registry.
    pub async fn is_active_worker(&self, worker: Address) -> Result<bool, Error> {
        self.contracts.registry.is_active_worker(worker).await
    }

    /// The current KMS committee.
    pub async fn kms_members(&self) -> Result<Vec<Address>, Error> {
        self.contracts.registry.kms_members().await
    }

    /// Total stake in `operator`'s pool (wei); zero without a pool.
    pub async fn stake(&self, operator: Address) -> Result<U256, Error> {
        if operator == Address::ZERO || !self.contracts.stake_pools.pool_exists(operator).await? {
            return Ok(U256::ZERO);
        }
        Ok(self.contracts.stake_pools.pool(operator).await?.totalStake)
    }

    /// Number of programs ever registered (ids are `1..=count`).
    pub async fn program_count(&self) -> Result<U256, Error> {
        self.contracts
            .programs
            .raw()
            .programCount()
            .call()
            .await
            .map_err(|e| Error::Contract {
                contract: "Programs",
                function: "programCount",
                message: e.to_string(),
            })
    }

    /// A program, or `None` when no program has this id.
    pub async fn program(&self, id: U256) -> Result<Option<ChainProgram>, Error> {
        let p = self
            .contracts
            .programs
            .raw()
            .program(id)
            .call()
            .await
            .map_err(|e| Error::Contract {
                contract: "Programs",
                function: "program",
                message: e.to_string(),
            })?;
        if p.owner == Address::ZERO {
            return Ok(None);
        }
        let deposit = self
            .contracts
            .billing
            .raw()
            .deposits(id)
            .call()
            .await
            .map_err(|e| Error::Contract {
                contract: "Billing",
                function: "deposits",
                message: e.to_string(),
            })?;
        Ok(Some(ChainProgram {
            id,
            owner: p.owner,
            code_hash: p.codeHash,
            config: p.config,
            deposit,
        }))
    }

    /// The evidence bytes of `worker`'s current registration, read from the calldata of the
    /// `registerWorker` transaction whose event carries the registered evidence hash, and
    /// checked: `keccak256(bytes) == evidence_hash`. `None` when no such transaction is found
    /// (or it did not call the Registry directly, e.g. through a multisig).
    pub async fn registered_evidence(
        &self,
        worker: Address,
        evidence_hash: B256,
    ) -> Result<Option<Vec<u8>>, Error> {
        let filter = Filter::new()
            .address(self.deployment.contracts.registry)
            .event_signature(Registry::WorkerRegistered::SIGNATURE_HASH)
            .topic1(worker.into_word())
            .from_block(self.deployment.deploy_block);
        let logs = self
            .provider()
            .get_logs(&filter)
            .await
            .map_err(|e| Error::Rpc(e.to_string()))?;
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
            let Some(tx) = self
                .provider()
                .get_transaction_by_hash(tx_hash)
                .await
                .map_err(|e| Error::Rpc(e.to_string()))?
            else {
                continue;
            };
            let input = alloy::consensus::Transaction::input(&tx);
            let Ok(call) = Registry::registerWorkerCall::abi_decode(input) else {
                continue;
            };
            if call.reg.worker == worker && keccak256(&call.evidence) == evidence_hash {
                return Ok(Some(call.evidence.to_vec()));
            }
        }
        Ok(None)
    }
}
