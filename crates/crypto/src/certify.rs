//! The KMS's certificate over a program's OHTTP key configuration.
//!
//! ```text
//! EIP712Domain(name = "Pith KMS", version = "1", chainId, verifyingContract = Registry)
//! ProgramKey(bytes32 programId,uint32 epoch,bytes32 keyConfigHash,address programAddress,uint64 notAfter)
//!   keyConfigHash  = keccak256(application/ohttp-keys body)
//!   programAddress = the program's own Ethereum address (its signing key) in `epoch`
//! ```
//! A client accepts a key configuration only when this signature recovers to a KMS
//! address that the Registry lists, and `notAfter` is in the future.

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::{Eip712Domain, SolStruct, sol};
use k256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};

use crate::error::{CryptoError, Result};
use crate::receipt::{recover, sign_hash};
use crate::{domain, keccak256};

sol! {
    /// The EIP-712 struct of a program key certificate.
    #[derive(Debug, PartialEq, Eq)]
    struct ProgramKey {
        bytes32 programId;
        uint32 epoch;
        bytes32 keyConfigHash;
        address programAddress;
        uint64 notAfter;
    }
}

/// The EIP-712 domain of KMS statements.
pub fn kms_domain(chain_id: u64, registry: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some(domain::CERTIFY_DOMAIN_NAME.into()),
        Some(domain::EIP712_VERSION.into()),
        Some(U256::from(chain_id)),
        Some(registry),
        None,
    )
}

/// A certified key configuration, as served at `/v1/programs/{id}/ohttp-keys` metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyCertificate {
    /// Chain id.
    pub chain_id: u64,
    /// Registry address.
    pub verifying_contract: Address,
    /// Program id.
    pub program_id: B256,
    /// Key epoch.
    pub epoch: u32,
    /// keccak256 of the `application/ohttp-keys` body.
    pub key_config_hash: B256,
    /// The program's own Ethereum address (its signing key) in `epoch`.
    pub program_address: Address,
    /// Unix seconds after which the certificate is no longer valid.
    pub not_after: u64,
    /// The KMS signer's address.
    pub kms: Address,
    /// 65-byte signature, hex.
    pub signature: String,
}

impl KeyCertificate {
    fn typed(&self) -> ProgramKey {
        ProgramKey {
            programId: self.program_id,
            epoch: self.epoch,
            keyConfigHash: self.key_config_hash,
            programAddress: self.program_address,
            notAfter: self.not_after,
        }
    }

    fn hash(&self) -> B256 {
        self.typed()
            .eip712_signing_hash(&kms_domain(self.chain_id, self.verifying_contract))
    }

    /// Certify `ohttp_keys` and the program's address for `program_id` with the KMS key.
    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        kms_key: &SigningKey,
        chain_id: u64,
        registry: Address,
        program_id: B256,
        epoch: u32,
        ohttp_keys: &[u8],
        program_address: Address,
        not_after: u64,
    ) -> Result<Self> {
        let mut c = Self {
            chain_id,
            verifying_contract: registry,
            program_id,
            epoch,
            key_config_hash: B256::from(keccak256(ohttp_keys)),
            program_address,
            not_after,
            kms: crate::keytree::address_of(kms_key),
            signature: String::new(),
        };
        c.signature = format!("0x{}", hex::encode(sign_hash(kms_key, &c.hash())?));
        Ok(c)
    }

    /// Check the certificate against the served key configuration and the time; returns the
    /// KMS address that signed it (the caller checks it against the Registry's KMS set).
    pub fn verify(&self, ohttp_keys: &[u8], now: u64) -> Result<Address> {
        if B256::from(keccak256(ohttp_keys)) != self.key_config_hash {
            return Err(CryptoError::BadSignature(
                "key configuration does not match its certificate".into(),
            ));
        }
        if now > self.not_after {
            return Err(CryptoError::Expired(format!(
                "key certificate expired at {}",
                self.not_after
            )));
        }
        let sig = hex::decode(self.signature.strip_prefix("0x").unwrap_or(&self.signature))
            .map_err(|_| CryptoError::malformed("key certificate", "signature is not hex"))?;
        let signer = recover(&self.hash(), &sig)?;
        if signer != self.kms {
            return Err(CryptoError::BadSignature(format!(
                "signed by {signer}, certificate names {}",
                self.kms
            )));
        }
        Ok(signer)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn issue_verify_and_negatives() {
        let kms = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let cfg = b"config-bytes";
        let c = KeyCertificate::issue(
            &kms,
            1,
            Address::repeat_byte(1),
            B256::repeat_byte(2),
            3,
            cfg,
            Address::repeat_byte(5),
            100,
        )
        .unwrap();
        assert_eq!(c.verify(cfg, 50).unwrap(), crate::keytree::address_of(&kms));
        assert!(c.verify(b"other", 50).is_err());
        assert!(c.verify(cfg, 101).is_err());
        let mut t = c.clone();
        t.epoch = 4;
        assert!(t.verify(cfg, 50).is_err());
        let mut t = c.clone();
        t.program_address = Address::repeat_byte(6);
        assert!(t.verify(cfg, 50).is_err());
        let mut t = c.clone();
        t.kms = Address::repeat_byte(7);
        assert!(t.verify(cfg, 50).is_err());
        let mut t = c;
        t.signature = "0xzz".into();
        assert!(t.verify(cfg, 50).is_err());
    }
}
