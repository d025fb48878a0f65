//! EIP-712 messages signed off-chain and recovered by the contracts, computed in Rust so that
//! the KMS, the workers (and tests) produce exactly what the contracts recover:
//!
//! - Registry (domain name `"Pith Registry"`): the KMS committee's `WorkerRegistration` and
//!   `WorkerRevocation`;
//! - Billing (`"Pith Billing"`): a worker's `UsageBatch` of `UsageEntry`s;
//! - OracleAnchor (`"Pith OracleAnchor"`): a worker's `OracleResult`.
//!
//! Every domain is `EIP712Domain(string name,string version,uint256 chainId,address
//! verifyingContract)` with version `"1"`. The type strings are the contracts' typehash
//! preimages; unit tests check the `sol!` types against them and integration tests compare
//! each digest with the contract's own digest view (`registrationDigest`, `usageDigest`,
//! `resultDigest`).

use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct};

use crate::bindings::Billing::UsageBatch;
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

/// EIP-712 domain name of Billing.
pub const BILLING_DOMAIN_NAME: &str = "Pith Billing";
/// EIP-712 domain name of OracleAnchor.
pub const ORACLE_DOMAIN_NAME: &str = "Pith OracleAnchor";
/// The usage batch type string (`Billing.USAGE_BATCH_TYPEHASH`'s preimage).
pub const USAGE_BATCH_TYPE: &str = "UsageBatch(address worker,uint64 nonce,UsageEntry[] entries)UsageEntry(uint256 programId,uint64 requests,uint64 cpuMillis,uint64 egressBytes,uint64 aiTokens)";
/// The oracle result type string (`OracleAnchor.ORACLE_RESULT_TYPEHASH`'s preimage).
pub const ORACLE_RESULT_TYPE: &str =
    "OracleResult(uint256 requestId,uint256 programId,bytes32 codeHash,bytes32 resultHash)";

alloy::sol! {
    /// A KMS revocation of a worker (for example after a TCB downgrade).
    #[derive(Debug, PartialEq, Eq)]
    struct WorkerRevocation {
        address worker;
        uint8 reason;
    }

    /// A worker's signed oracle result; `resultHash` is keccak256 of the result bytes.
    #[derive(Debug, PartialEq, Eq)]
    struct OracleResult {
        uint256 requestId;
        uint256 programId;
        bytes32 codeHash;
        bytes32 resultHash;
    }
}

fn domain(name: &'static str, chain_id: u64, contract: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some(name.into()),
        Some(REGISTRY_DOMAIN_VERSION.into()),
        Some(alloy::primitives::U256::from(chain_id)),
        Some(contract),
        None,
    )
}

/// The Registry's EIP-712 domain on `chain_id` at `registry`.
pub fn registry_domain(chain_id: u64, registry: Address) -> Eip712Domain {
    domain(REGISTRY_DOMAIN_NAME, chain_id, registry)
}

/// Billing's EIP-712 domain on `chain_id` at `billing`.
pub fn billing_domain(chain_id: u64, billing: Address) -> Eip712Domain {
    domain(BILLING_DOMAIN_NAME, chain_id, billing)
}

/// OracleAnchor's EIP-712 domain on `chain_id` at `anchor`.
pub fn oracle_domain(chain_id: u64, anchor: Address) -> Eip712Domain {
    domain(ORACLE_DOMAIN_NAME, chain_id, anchor)
}

/// The digest a worker signs for a usage batch (`Billing.usageDigest`).
pub fn usage_digest(batch: &UsageBatch, chain_id: u64, billing: Address) -> B256 {
    batch.eip712_signing_hash(&billing_domain(chain_id, billing))
}

/// The digest a worker signs for an oracle result (`OracleAnchor.resultDigest`): the
/// request, the program and the code hash it ran (`Programs.codeHashOf` at fulfilment), and
/// keccak256 of the result bytes.
pub fn oracle_result_digest(
    request_id: alloy::primitives::U256,
    program_id: alloy::primitives::U256,
    code_hash: B256,
    result: &[u8],
    chain_id: u64,
    anchor: Address,
) -> B256 {
    OracleResult {
        requestId: request_id,
        programId: program_id,
        codeHash: code_hash,
        resultHash: keccak256(result),
    }
    .eip712_signing_hash(&oracle_domain(chain_id, anchor))
}

/// Sign `digest` with one key: 65 bytes `r ‖ s ‖ v` (v 27/28), what `ECDSA.recover` takes.
pub fn sign_digest(digest: B256, signer: &PrivateKeySigner) -> Result<Bytes> {
    let sig = signer
        .sign_hash_sync(&digest)
        .map_err(|e| Error::Key(e.to_string()))?;
    Ok(Bytes::from(sig.as_bytes().to_vec()))
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
        .map(|s| Ok((s.address(), sign_digest(digest, s)?)))
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
        assert_eq!(
            WorkerRegistration::eip712_encode_type(),
            WORKER_REGISTRATION_TYPE
        );
        assert_eq!(
            WorkerRevocation::eip712_encode_type(),
            WORKER_REVOCATION_TYPE
        );
        assert_eq!(UsageBatch::eip712_encode_type(), USAGE_BATCH_TYPE);
        assert_eq!(OracleResult::eip712_encode_type(), ORACLE_RESULT_TYPE);
    }

    #[test]
    fn domains_are_separated() {
        let a = Address::repeat_byte(1);
        let names: Vec<B256> = [
            registry_domain(1, a),
            billing_domain(1, a),
            oracle_domain(1, a),
        ]
        .iter()
        .map(|d| d.separator())
        .collect();
        assert_ne!(names[0], names[1]);
        assert_ne!(names[1], names[2]);
        let r = oracle_result_digest(
            alloy::primitives::U256::from(1),
            alloy::primitives::U256::from(2),
            B256::ZERO,
            b"x",
            1,
            a,
        );
        assert_ne!(
            r,
            oracle_result_digest(
                alloy::primitives::U256::from(1),
                alloy::primitives::U256::from(2),
                B256::ZERO,
                b"y",
                1,
                a
            )
        );
    }

    #[test]
    fn signatures_sorted_and_recoverable() {
        let a = PrivateKeySigner::random();
        let b = PrivateKeySigner::random();
        let d = revocation_digest(a.address(), 1, 31337, Address::repeat_byte(7));
        let sigs = sign_sorted(d, &[&a, &b]).unwrap();
        let rec: Vec<Address> = sigs
            .iter()
            .map(|s| {
                alloy::primitives::Signature::from_raw(s)
                    .unwrap()
                    .recover_address_from_prehash(&d)
                    .unwrap()
            })
            .collect();
        assert!(rec[0] < rec[1]);
        // A different chain id gives a different digest (domain separation).
        assert_ne!(
            d,
            revocation_digest(a.address(), 1, 1, Address::repeat_byte(7))
        );
    }
}
