//! The deployment manifest, `deployment.json`: which chain, where, from which block, and
//! the address of every contract. Other components and other languages read it, so the
//! key names are fixed (more keys may be added, none renamed):
//!
//! ```json
//! {"chain_id": 31337, "rpc_url": "http://127.0.0.1:PORT", "deploy_block": 1,
//!  "contracts": {"PHA": "0x..", "Registry": "0x..", "Programs": "0x..", "StakePools": "0x..",
//!                "Billing": "0x..", "OracleAnchor": "0x..", "Governor": "0x..", "Timelock": "0x.."}}
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The file name of the manifest inside a network directory.
pub const MANIFEST_FILE: &str = "deployment.json";

/// The addresses of the deployed contracts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contracts {
    /// The PHA token (ERC20Votes).
    #[serde(rename = "PHA")]
    pub pha: Address,
    /// TEE platforms, measurements, KMS committee, workers.
    #[serde(rename = "Registry")]
    pub registry: Address,
    /// Program code hashes, owners, configuration.
    #[serde(rename = "Programs")]
    pub programs: Address,
    /// Stake pools per worker operator.
    #[serde(rename = "StakePools")]
    pub stake_pools: Address,
    /// Program deposits, usage settlement, emission.
    #[serde(rename = "Billing")]
    pub billing: Address,
    /// Oracle requests and fulfilments.
    #[serde(rename = "OracleAnchor")]
    pub oracle_anchor: Address,
    /// The Governor (proposals and votes on PHA).
    #[serde(rename = "Governor")]
    pub governor: Address,
    /// The TimelockController holding every admin role.
    #[serde(rename = "Timelock")]
    pub timelock: Address,
    /// Any further contracts (kept on round trips).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Address>,
}

impl Contracts {
    /// The eight named contracts as `(name, address)`.
    pub fn named(&self) -> [(&'static str, Address); 8] {
        [
            ("PHA", self.pha),
            ("Registry", self.registry),
            ("Programs", self.programs),
            ("StakePools", self.stake_pools),
            ("Billing", self.billing),
            ("OracleAnchor", self.oracle_anchor),
            ("Governor", self.governor),
            ("Timelock", self.timelock),
        ]
    }
}

/// `deployment.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// JSON-RPC endpoint.
    pub rpc_url: String,
    /// The block of the first deployment transaction (watchers start here).
    pub deploy_block: u64,
    /// Contract addresses.
    pub contracts: Contracts,
    /// Further keys (profile, accounts, ...), kept on round trips.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Deployment {
    /// Read and check a manifest: every named contract must have a non-zero address.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let d: Deployment = serde_json::from_slice(&bytes).map_err(|e| Error::json(path, e))?;
        for (name, addr) in d.contracts.named() {
            if addr == Address::ZERO {
                return Err(Error::Manifest(format!(
                    "{}: {name} has the zero address",
                    path.display()
                )));
            }
        }
        Ok(d)
    }

    /// Write the manifest atomically (temporary file, then rename), pretty-printed.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::json(path, e))?;
        bytes.push(b'\n');
        write_atomic(path, &bytes)
    }
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename, so
/// readers never see a half-written file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Deployment {
        let a = |n: u8| Address::repeat_byte(n);
        Deployment {
            chain_id: 31337,
            rpc_url: "http://127.0.0.1:8545".into(),
            deploy_block: 1,
            contracts: Contracts {
                pha: a(1),
                registry: a(2),
                programs: a(3),
                stake_pools: a(4),
                billing: a(5),
                oracle_anchor: a(6),
                governor: a(7),
                timelock: a(8),
                extra: BTreeMap::new(),
            },
            extra: serde_json::Map::new(),
        }
    }

    #[test]
    fn exact_key_names_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(MANIFEST_FILE);
        let mut d = sample();
        d.extra.insert("profile".into(), "local".into());
        d.write(&p).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        for k in [
            "chain_id",
            "rpc_url",
            "deploy_block",
            "contracts",
            "profile",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        let c = v["contracts"].as_object().unwrap();
        let mut keys: Vec<_> = c.keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "Billing",
                "Governor",
                "OracleAnchor",
                "PHA",
                "Programs",
                "Registry",
                "StakePools",
                "Timelock"
            ]
        );
        assert_eq!(Deployment::read(&p).unwrap(), d);
    }

    #[test]
    fn zero_address_and_missing_contract_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(MANIFEST_FILE);
        let mut d = sample();
        d.contracts.billing = Address::ZERO;
        d.write(&p).unwrap();
        assert!(matches!(Deployment::read(&p), Err(Error::Manifest(_))));

        let mut v = serde_json::to_value(sample()).unwrap();
        v["contracts"].as_object_mut().unwrap().remove("Timelock");
        std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(matches!(Deployment::read(&p), Err(Error::Json { .. })));
    }
}
