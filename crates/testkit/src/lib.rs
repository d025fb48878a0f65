//! Test support for the integration tests of the KMS, the worker and the CLI (a
//! dev-dependency only, never of a library): a real anvil chain with the contracts deployed
//! for the simulated platform ([`ChainNet`]), the measurement of this test binary's simulated
//! evidence, and small waiting helpers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use anyhow::Result;
use pith_chain::anvil::{Anvil, AnvilConfig};
use pith_chain::client::{PithContracts, read_provider, signing_provider};
use pith_chain::deploy::{DeployConfig, Measurement, deploy, platform, role};
use pith_chain::manifest::Deployment;

/// The default inference model (`scripts/install.d/model`): `None` (with a printed SKIPPED
/// line) when it is absent; under CI its absence is a failure.
pub use pith_infer::installed::model_for_tests as model_path;

/// Whether anvil is installed; prints why a test is skipped when it is not.
pub fn anvil_available() -> bool {
    match pith_chain::anvil::find_anvil(None) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("SKIP: anvil is not installed ({e}); run scripts/install.d/node-tools");
            false
        }
    }
}

/// Unix seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The measurement hash of simulated evidence from this test binary (what a KMS or worker
/// started in this process attests), to allow at deployment.
pub fn local_measurement() -> B256 {
    B256::from(pith_attest::provider::local_measurement_hash().unwrap())
}

/// Poll `f` every 100 ms until it holds; panic after 20 s.
pub async fn wait_for<F: Fn() -> bool>(what: &str, f: F) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A real anvil chain, a temporary directory with a development CA, and (after
/// [`ChainNet::deploy`]) the Pith contracts with this binary's simulated measurement allowed
/// for the worker and KMS roles, the manifest at `manifest`.
pub struct ChainNet {
    /// The chain.
    pub anvil: Anvil,
    /// State directory of the test's nodes.
    pub dir: tempfile::TempDir,
    /// Development CA directory (the simulated platform's root).
    pub dev_ca: PathBuf,
    /// Where [`ChainNet::deploy`] writes deployment.json.
    pub manifest: PathBuf,
    /// [`local_measurement`].
    pub measurement: B256,
}

impl ChainNet {
    /// Start anvil and create the directory and development CA.
    pub async fn new() -> Result<Self> {
        let anvil = Anvil::start(AnvilConfig::new()).await?;
        let dir = tempfile::tempdir()?;
        let dev_ca = dir.path().join("dev-ca");
        pith_attest::simulated::DevCa::init(&dev_ca, std::time::SystemTime::now())?;
        let manifest = dir.path().join("deployment.json");
        Ok(Self {
            anvil,
            dir,
            dev_ca,
            manifest,
            measurement: local_measurement(),
        })
    }

    /// Development account `i` of anvil.
    pub fn signer(&self, i: usize) -> PrivateKeySigner {
        self.anvil.accounts()[i].private_key.parse().unwrap()
    }

    /// Deploy the contracts with `committee` as the KMS committee (threshold 1, each member
    /// funded with 100 ETH) and write the manifest.
    pub async fn deploy(&self, committee: Vec<Address>) -> Result<Deployment> {
        let deployer = self.signer(0);
        let provider = signing_provider(&self.anvil.url(), deployer.clone())?;
        for m in &committee {
            let _: serde_json::Value = provider
                .raw_request(
                    "anvil_setBalance".into(),
                    serde_json::json!([m, "0x56BC75E2D63100000"]),
                )
                .await?;
        }
        let mut cfg = DeployConfig::local(deployer.address(), committee);
        cfg.kms_threshold = 1;
        cfg.measurements = vec![
            Measurement {
                platform: platform::SIMULATED,
                role: role::WORKER,
                hash: self.measurement,
            },
            Measurement {
                platform: platform::SIMULATED,
                role: role::KMS,
                hash: self.measurement,
            },
        ];
        let d = deploy(&provider, deployer.address(), &self.anvil.url(), &cfg).await?;
        d.write(&self.manifest)?;
        Ok(d)
    }

    /// The contracts of `d`, signing as account `i`.
    pub fn contracts(&self, d: &Deployment, i: usize) -> Result<PithContracts> {
        Ok(PithContracts::new(
            d,
            signing_provider(&self.anvil.url(), self.signer(i))?,
        ))
    }

    /// A read-only provider.
    pub async fn provider(&self) -> Result<DynProvider> {
        Ok(read_provider(&self.anvil.url())?)
    }
}

impl ChainNet {
    /// Governance (the deployer holds the local allocation's votes) orders a KMS master-key
    /// rotation: propose, vote, queue, execute, mining and warping as needed. Returns the
    /// Registry's new `kmsKeyEpoch`.
    pub async fn rotate_kms_key(&self, d: &Deployment) -> Result<u32> {
        use alloy::primitives::U256;
        let gov = self.contracts(d, 0)?;
        let p = pith_chain::client::Proposal {
            targets: vec![d.contracts.registry],
            values: vec![U256::ZERO],
            calldatas: vec![pith_chain::client::RegistryClient::rotate_kms_key_calldata()],
            description: format!("Rotate the KMS master key {}", now()),
        };
        let provider = self.provider().await?;
        let id = gov.governor.hash_proposal(&p).await?;
        gov.governor.send_propose(&p).await?;
        let _: serde_json::Value = provider
            .raw_request("anvil_mine".into(), serde_json::json!(["0x2"]))
            .await?;
        gov.governor.send_vote(id, 1).await?;
        let _: serde_json::Value = provider
            .raw_request("anvil_mine".into(), serde_json::json!(["0x6"]))
            .await?;
        gov.governor.send_queue(&p).await?;
        let _: serde_json::Value = provider
            .raw_request("evm_increaseTime".into(), serde_json::json!([2]))
            .await?;
        gov.governor.send_execute(&p).await?;
        Ok(gov.registry.kms_key_epoch().await?)
    }
}
