//! Integration tests against a real anvil: deployment, restart from the state file, worker
//! registration with KMS signatures made in Rust, a governance proposal end to end, and the
//! event watcher across confirmations, a reorg and a restart.
//!
//! anvil comes from `scripts/install.d/node-tools` (contracts/node_modules). When it is not
//! installed the tests print a SKIP line and pass; CI installs it.

use std::path::Path;

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use anyhow::Result;
use pith_chain::anvil::{Anvil, AnvilConfig};
use pith_chain::bindings::{Billing, PHA, Registry};
use pith_chain::client::{PithContracts, Proposal, ProposalState, read_provider, signing_provider};
use pith_chain::deploy::{DeployConfig, Measurement, PHA_UNIT, deploy, platform, role};
use pith_chain::eip712;
use pith_chain::watcher::{EventWatcher, WatchEvent, WatcherConfig};
use pith_chain::{Deployment, Error};

fn anvil_available() -> bool {
    match pith_chain::anvil::find_anvil(None) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("SKIP: anvil is not installed ({e}); run scripts/install.d/node-tools");
            false
        }
    }
}

const WORKER_MEASUREMENT: [u8; 32] = [0x11; 32];

fn signer(anvil: &Anvil, i: usize) -> PrivateKeySigner {
    anvil.accounts()[i].private_key.parse().unwrap()
}

/// Deploy the local profile with KMS members = accounts 8 and 9 (threshold 2) and the
/// simulated worker measurement allowed.
async fn deploy_local(anvil: &Anvil) -> Result<(Deployment, DynProvider)> {
    let deployer = signer(anvil, 0);
    let provider = signing_provider(&anvil.url(), deployer.clone())?;
    let mut cfg = DeployConfig::local(deployer.address(), vec![anvil.accounts()[8].address, anvil.accounts()[9].address]);
    cfg.kms_threshold = 2;
    cfg.measurements =
        vec![Measurement { platform: platform::SIMULATED, role: role::WORKER, hash: B256::from(WORKER_MEASUREMENT) }];
    cfg.allocations = vec![(anvil.accounts()[1].address, U256::from(1_000_000u64) * U256::from(PHA_UNIT))];
    let d = deploy(&provider, deployer.address(), &anvil.url(), &cfg).await?;
    Ok((d, provider))
}

async fn rpc<T: serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + Unpin + 'static>(p: &DynProvider, method: &'static str, params: serde_json::Value) -> T {
    p.raw_request(method.into(), params).await.unwrap()
}

#[tokio::test]
async fn deploy_reads_supply_and_hands_over_roles() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let anvil = Anvil::start(AnvilConfig::new()).await?;
    let (d, provider) = deploy_local(&anvil).await?;
    let c = PithContracts::new(&d, provider.clone());
    c.check_deployed(&d).await?;
    assert_eq!(d.chain_id, 31337);
    assert_eq!(d.rpc_url, anvil.url());
    assert!(d.deploy_block >= 1);

    let supply = c.pha.total_supply().await?;
    assert_eq!(supply, U256::from(1_000_000_000u64) * U256::from(PHA_UNIT));
    // Emissions moved into Billing; the allocation reached account 1.
    assert_eq!(c.pha.balance_of(d.contracts.billing).await?, U256::from(400_000_000u64) * U256::from(PHA_UNIT));
    assert_eq!(c.pha.balance_of(anvil.accounts()[1].address).await?, U256::from(1_000_000u64) * U256::from(PHA_UNIT));

    // The timelock holds the admin role; the deployer holds none; the governor proposes.
    let deployer = anvil.accounts()[0].address;
    let admin = B256::ZERO;
    assert!(c.registry.raw().hasRole(admin, d.contracts.timelock).call().await?);
    assert!(!c.registry.raw().hasRole(admin, deployer).call().await?);
    let proposer = c.timelock.raw().PROPOSER_ROLE().call().await?;
    assert!(c.timelock.raw().hasRole(proposer, d.contracts.governor).call().await?);
    // So the deployer can no longer configure anything.
    let err = c.registry.send("setPlatform", c.registry.raw().setPlatform(1, true, 0)).await.unwrap_err();
    assert!(matches!(err, Error::Contract { .. }), "{err}");

    // Initial configuration is in place.
    assert!(c.registry.platform_config(platform::SIMULATED).await?.enabled);
    assert!(!c.registry.platform_config(platform::TDX).await?.enabled);
    assert!(c.registry.is_allowed_measurement(platform::SIMULATED, role::WORKER, WORKER_MEASUREMENT.into()).await?);
    assert_eq!(c.registry.kms_threshold().await?, 2);
    assert_eq!(c.governor.voting_period().await?, U256::from(5));

    // Deterministic: a second chain from the same account gives the same addresses.
    let anvil2 = Anvil::start(AnvilConfig::new()).await?;
    let (d2, _) = deploy_local(&anvil2).await?;
    assert_eq!(d.contracts, d2.contracts);
    anvil2.stop().await?;
    anvil.stop().await?;
    Ok(())
}

#[tokio::test]
async fn restart_from_state_file_keeps_everything() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("state.json");
    let anvil = Anvil::start(AnvilConfig::new().state_file(&state)).await?;
    let port = anvil.port();
    let (d, provider) = deploy_local(&anvil).await?;
    let c = PithContracts::new(&d, provider);
    let to = Address::repeat_byte(0x42);
    c.pha.send_transfer(to, U256::from(12345)).await?;
    let head = c.provider().get_block_number().await?;
    let head_hash = c.provider().get_block_by_number(head.into()).await?.unwrap().header.hash;
    anvil.stop().await?;
    assert!(state.exists(), "anvil wrote no state file");

    let anvil = Anvil::start(AnvilConfig::new().state_file(&state).port(port)).await?;
    let c = PithContracts::new(&d, read_provider(&anvil.url())?);
    c.check_deployed(&d).await?;
    assert_eq!(c.pha.balance_of(to).await?, U256::from(12345));
    assert_eq!(c.pha.total_supply().await?, U256::from(1_000_000_000u64) * U256::from(PHA_UNIT));
    assert_eq!(c.provider().get_block_number().await?, head);
    let again = c.provider().get_block_by_number(head.into()).await?.unwrap().header.hash;
    assert_eq!(again, head_hash, "block hashes survive the restart");

    // Negative control: a fresh chain without the state file has none of it.
    let fresh = Anvil::start(AnvilConfig::new()).await?;
    let code = read_provider(&fresh.url())?.get_code_at(d.contracts.pha).await?;
    assert!(code.is_empty());
    fresh.stop().await?;
    anvil.stop().await?;
    Ok(())
}

#[tokio::test]
async fn worker_registration_with_rust_kms_signatures() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let anvil = Anvil::start(AnvilConfig::new()).await?;
    let (d, provider) = deploy_local(&anvil).await?;
    let c = PithContracts::new(&d, provider.clone());
    let kms_a = signer(&anvil, 8);
    let kms_b = signer(&anvil, 9);
    let outsider = signer(&anvil, 7);

    // The Rust type string hashes to the contract's typehash.
    let on_chain_typehash = c.registry.raw().WORKER_REGISTRATION_TYPEHASH().call().await?;
    assert_eq!(eip712::registration_typehash(), on_chain_typehash);
    let domain = eip712::registry_domain(d.chain_id, d.contracts.registry);
    assert_eq!(c.registry.domain_separator().await?, domain.separator());

    let worker = PrivateKeySigner::random().address();
    let operator = anvil.accounts()[1].address;
    let evidence = Bytes::from(b"simulated evidence bytes".to_vec());
    let now = provider.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest).await?.unwrap().header.timestamp;
    let mut reg = Registry::WorkerRegistration {
        worker,
        operator,
        platform: platform::SIMULATED,
        measurementHash: B256::from(WORKER_MEASUREMENT),
        tcbStatus: 0,
        evidenceHash: keccak256(&evidence),
        expiry: now + 3_600,
    };
    let digest = eip712::registration_digest(&reg, d.chain_id, d.contracts.registry);
    assert_eq!(digest, c.registry.registration_digest(&reg).await?, "Rust and Solidity EIP-712 digests differ");

    // Negative: one signature below the threshold of 2.
    let one = eip712::sign_sorted(digest, &[&kms_a])?;
    let e = c.registry.send_register_worker(reg.clone(), evidence.clone(), one).await.unwrap_err();
    assert!(e.to_string().contains("NotEnoughSignatures"), "{e}");
    // Negative: a non-member signs.
    let bad = eip712::sign_sorted(digest, &[&kms_a, &outsider])?;
    let e = c.registry.send_register_worker(reg.clone(), evidence.clone(), bad).await.unwrap_err();
    assert!(e.to_string().contains("NotKmsMember"), "{e}");
    // Negative: unsorted signatures.
    let mut unsorted = eip712::sign_sorted(digest, &[&kms_a, &kms_b])?;
    unsorted.reverse();
    let e = c.registry.send_register_worker(reg.clone(), evidence.clone(), unsorted).await.unwrap_err();
    assert!(e.to_string().contains("DuplicateOrUnsortedSigner"), "{e}");
    // Negative: signatures over another chain's domain recover to other addresses.
    let other_chain = eip712::registration_digest(&reg, 1, d.contracts.registry);
    let wrong = eip712::sign_sorted(other_chain, &[&kms_a, &kms_b])?;
    let e = c.registry.send_register_worker(reg.clone(), evidence.clone(), wrong).await.unwrap_err();
    assert!(e.to_string().contains("NotKmsMember") || e.to_string().contains("Unsorted"), "{e}");
    // Negative: evidence that does not hash to evidenceHash.
    let good = eip712::sign_sorted(digest, &[&kms_a, &kms_b])?;
    let e = c.registry.send_register_worker(reg.clone(), Bytes::from(b"other".to_vec()), good.clone()).await.unwrap_err();
    assert!(e.to_string().contains("EvidenceHashMismatch"), "{e}");

    assert!(!c.registry.is_active_worker(worker).await?);
    let receipt = c.registry.send_register_worker(reg.clone(), evidence.clone(), good.clone()).await?;
    assert!(c.registry.is_active_worker(worker).await?);
    let ev = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| Registry::WorkerRegistered::decode_log_data(l.data()).ok())
        .expect("WorkerRegistered event");
    assert_eq!(ev.evidenceHash, keccak256(&evidence));
    assert_eq!(c.registry.worker_info(worker).await?.operator, operator);

    // Replaying the same registration is stale.
    let e = c.registry.send_register_worker(reg.clone(), evidence.clone(), good).await.unwrap_err();
    assert!(e.to_string().contains("StaleRegistration"), "{e}");
    // A re-attestation with a later expiry is accepted.
    reg.expiry += 60;
    let digest = eip712::registration_digest(&reg, d.chain_id, d.contracts.registry);
    let sigs = eip712::sign_sorted(digest, &[&kms_b, &kms_a])?;
    c.registry.send_register_worker(reg, evidence, sigs).await?;
    anvil.stop().await?;
    Ok(())
}

#[tokio::test]
async fn governance_proposal_end_to_end_local_profile() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let anvil = Anvil::start(AnvilConfig::new()).await?;
    let (d, provider) = deploy_local(&anvil).await?;
    let c = PithContracts::new(&d, provider.clone());
    let billing = Billing::new(d.contracts.billing, &provider);
    assert_eq!(billing.withdrawDelay().call().await?, 60);

    let call = Billing::setWithdrawDelayCall { delay: 120 };
    let p = Proposal {
        targets: vec![d.contracts.billing],
        values: vec![U256::ZERO],
        calldatas: vec![alloy::sol_types::SolCall::abi_encode(&call).into()],
        description: "Raise the Billing withdrawal delay to 120 s".into(),
    };
    let id = c.governor.hash_proposal(&p).await?;
    c.governor.send_propose(&p).await?;
    assert_eq!(c.governor.state(id).await?, ProposalState::Pending);
    // Voting before the delay is rejected.
    assert!(c.governor.send_vote(id, 1).await.is_err());
    let _: serde_json::Value = rpc(&provider, "anvil_mine", serde_json::json!(["0x2"])).await;
    assert_eq!(c.governor.state(id).await?, ProposalState::Active);
    c.governor.send_vote(id, 1).await?;
    // Queue before the end of voting fails.
    assert!(c.governor.send_queue(&p).await.is_err());
    let _: serde_json::Value = rpc(&provider, "anvil_mine", serde_json::json!(["0x6"])).await;
    assert_eq!(c.governor.state(id).await?, ProposalState::Succeeded);
    c.governor.send_queue(&p).await?;
    assert_eq!(c.governor.state(id).await?, ProposalState::Queued);
    let _: serde_json::Value = rpc(&provider, "evm_increaseTime", serde_json::json!([2])).await;
    c.governor.send_execute(&p).await?;
    assert_eq!(c.governor.state(id).await?, ProposalState::Executed);
    assert_eq!(billing.withdrawDelay().call().await?, 120);
    // The proposal can be found again from its event (what `pith gov execute` does).
    assert_eq!(c.governor.find_proposal(id, d.deploy_block).await?, p);
    anvil.stop().await?;
    Ok(())
}

fn transfers(events: &[WatchEvent]) -> Vec<(bool, U256)> {
    events
        .iter()
        .map(|e| match e {
            WatchEvent::Log(l) => (true, PHA::Transfer::decode_log_data(l.data()).unwrap().value),
            WatchEvent::Removed(l) => (false, PHA::Transfer::decode_log_data(l.data()).unwrap().value),
        })
        .collect()
}

async fn transfer(c: &PithContracts, v: u64) -> Result<()> {
    c.pha.send_transfer(Address::repeat_byte(0x77), U256::from(v)).await?;
    Ok(())
}

fn watcher(provider: &DynProvider, d: &Deployment, from: u64, confirmations: u64, cursor: &Path) -> EventWatcher<DynProvider> {
    let filter = Filter::new().address(d.contracts.pha).event_signature(PHA::Transfer::SIGNATURE_HASH);
    EventWatcher::new(provider.clone(), filter, from, WatcherConfig::new().confirmations(confirmations).cursor_file(cursor))
        .unwrap()
}

#[tokio::test]
async fn watcher_confirmations_reorg_and_restart() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let anvil = Anvil::start(AnvilConfig::new()).await?;
    let (d, provider) = deploy_local(&anvil).await?;
    let c = PithContracts::new(&d, provider.clone());
    let dir = tempfile::tempdir()?;
    let cursor = dir.path().join("cursor.json");
    let start = provider.get_block_number().await? + 1;

    // Confirmations: a transfer is delivered only once 3 blocks include and follow it.
    let mut w = watcher(&provider, &d, start, 3, &cursor);
    transfer(&c, 1).await?;
    assert!(w.poll().await?.is_empty());
    let _: serde_json::Value = rpc(&provider, "anvil_mine", serde_json::json!(["0x1"])).await;
    assert!(w.poll().await?.is_empty());
    let _: serde_json::Value = rpc(&provider, "anvil_mine", serde_json::json!(["0x1"])).await;
    assert_eq!(transfers(&w.poll().await?), vec![(true, U256::from(1))]);
    w.save()?;

    // Reorg: with 1 confirmation, deliver two transfers, revert them, mine another branch.
    let mut w = watcher(&provider, &d, start, 1, &cursor);
    assert!(w.poll().await?.is_empty(), "resumed from the saved cursor");
    let snap: U256 = rpc(&provider, "evm_snapshot", serde_json::json!([])).await;
    transfer(&c, 2).await?;
    transfer(&c, 3).await?;
    assert_eq!(transfers(&w.poll().await?), vec![(true, U256::from(2)), (true, U256::from(3))]);
    let reverted: bool = rpc(&provider, "evm_revert", serde_json::json!([snap])).await;
    assert!(reverted);
    transfer(&c, 4).await?;
    let evs = transfers(&w.poll().await?);
    assert_eq!(evs, vec![(false, U256::from(3)), (false, U256::from(2)), (true, U256::from(4))]);
    w.save()?;

    // Restart: a new watcher on the same cursor file delivers only what is new.
    drop(w);
    let mut w = watcher(&provider, &d, start, 1, &cursor);
    assert!(w.poll().await?.is_empty());
    transfer(&c, 5).await?;
    assert_eq!(transfers(&w.poll().await?), vec![(true, U256::from(5))]);

    // Negative: without the saved cursor the same filter replays everything from `start`.
    let mut fresh = watcher(&provider, &d, start, 1, &dir.path().join("other.json"));
    let all: Vec<U256> = transfers(&fresh.poll().await?).into_iter().map(|(_, v)| v).collect();
    assert_eq!(all, vec![U256::from(1), U256::from(4), U256::from(5)]);
    anvil.stop().await?;
    Ok(())
}
