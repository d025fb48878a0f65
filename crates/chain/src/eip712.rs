//! EIP-712 messages the KMS committee signs for the Registry, computed in Rust so that the
//! KMS (and tests) produce exactly what `Registry.sol` recovers. The type strings are the
//! contract's (`WORKER_REGISTRATION_TYPEHASH`, `WORKER_REVOCATION_TYPEHASH`); the domain is
//! `EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)` with
//! name `"Pith Registry"`, version `"1"`. Integration tests compare these digests with the
//! contract's own `registrationDigest` / `revocationDigest` views.

use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct};

use crate::bindings::Registry::WorkerRegistration;
use crate::error::{Error, Result};

/// EIP-712 domain name of the Registry.
pub const REGISTRY_DOMAIN_NAME: &str = "Pith Registry";
/// EIP-712 domain version of the Registry.
pub const REGISTRY_DOMAIN_VERSION: &str = "1";
/// The registration type string (its keccak256 is the contract's typehash).
pub const WORKER_REGISTRATION_TYPE: &str = "WorkerRegistration(address worker,address operator,uint8 platform,bytes32 measurementHash,uint8 tcbStatus,bytes32 evidenceHash,uint64 expiry)";
/// The revocation type string.
pub const WORKER_REVOCATION_TYPE: &str = "WorkerRevocation(address worker,uint8 reason)";

alloy::sol! {
    /// A KMS revocation of a worker (for example after a TCB downgrade).
    #[derive(Debug, PartialEq, Eq)]
    struct WorkerRevocation {
        address worker;
        uint8 reason;
    }
}

/// The Registry's EIP-712 domain on `chain_id` at `registry`.
pub fn registry_domain(chain_id: u64, registry: Address) -> Eip712Domain {
    alloy::sol_types::eip712_domain! {
        name: REGISTRY_DOMAIN_NAME,
        version: REGISTRY_DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: registry,
    }
}

/// The registration typehash, from the Rust type definition.
pub fn registration_typehash() -> B256 {
    keccak256(WORKER_REGISTRATION_TYPE.as_bytes())
}

/// The digest a KMS member signs for a worker registration.
pub fn registration_digest(reg: &WorkerRegistration, chain_id: u64, registry: Address) -> B256 {
    reg.eip712_signing_hash(&registry_domain(chain_id, registry))
}

/// The digest a KMS member signs for a worker revocation.
pub fn revocation_digest(worker: Address, reason: u8, chain_id: u64, registry: Address) -> B256 {
    WorkerRevocation { worker, reason }.eip712_signing_hash(&registry_domain(chain_id, registry))
}

/// Sign `digest` with each KMS key and return the 65-byte signatures (`r ‖ s ‖ v`, v 27/28)
/// sorted by signer address, the order `Registry.checkKmsSignatures` requires.
pub fn sign_sorted(digest: B256, signers: &[&PrivateKeySigner]) -> Result<Vec<Bytes>> {
    let mut sigs = signers
        .iter()
        .map(|s| {
            let sig = s.sign_hash_sync(&digest).map_err(|e| Error::Key(e.to_string()))?;
            Ok((s.address(), Bytes::from(sig.as_bytes().to_vec())))
        })
        .collect::<Result<Vec<_>>>()?;
    sigs.sort_by_key(|(a, _)| *a);
    Ok(sigs.into_iter().map(|(_, s)| s).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_struct_type_matches_contract_type_string() {
        // The sol!-generated struct (from the artifact ABI) must hash the same type string
        // as the contract; a field reorder or rename in either would break signatures.
        assert_eq!(WorkerRegistration::eip712_encode_type(), WORKER_REGISTRATION_TYPE);
        assert_eq!(WorkerRevocation::eip712_encode_type(), WORKER_REVOCATION_TYPE);
    }

    #[test]
    fn signatures_sorted_and_recoverable() {
        let a = PrivateKeySigner::random();
        let b = PrivateKeySigner::random();
        let d = revocation_digest(a.address(), 1, 31337, Address::repeat_byte(7));
        let sigs = sign_sorted(d, &[&a, &b]).unwrap();
        let rec: Vec<Address> = sigs
            .iter()
            .map(|s| alloy::primitives::Signature::from_raw(s).unwrap().recover_address_from_prehash(&d).unwrap())
            .collect();
        assert!(rec[0] < rec[1]);
        // A different chain id gives a different digest (domain separation).
        assert_ne!(d, revocation_digest(a.address(), 1, 1, Address::repeat_byte(7)));
    }
}
