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
use pith_chain::bindings::{Billing, PHA, Programs, Registry};
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
const KMS_MEASUREMENT: [u8; 32] = [0x22; 32];

fn signer(anvil: &Anvil, i: usize) -> PrivateKeySigner {
    anvil.accounts()[i].private_key.parse().unwrap()
}

/// Deploy the local profile with KMS members = accounts 8 and 9 (threshold 2) and the
/// simulated worker measurement allowed.
async fn deploy_local(anvil: &Anvil) -> Result<(Deployment, DynProvider)> {
    let deployer = signer(anvil, 0);
    let provider = signing_provider(&anvil.url(), deployer.clone())?;
    let mut cfg = DeployConfig::local(
        deployer.address(),
        vec![anvil.accounts()[8].address, anvil.accounts()[9].address],
    );
    cfg.kms_threshold = 2;
    cfg.measurements = vec![
        Measurement {
            platform: platform::SIMULATED,
            role: role::WORKER,
            hash: B256::from(WORKER_MEASUREMENT),
        },
        Measurement {
            platform: platform::SIMULATED,
            role: role::KMS,
            hash: B256::from(KMS_MEASUREMENT),
        },
    ];
    cfg.allocations = vec![(
        anvil.accounts()[1].address,
        U256::from(1_000_000u64) * U256::from(PHA_UNIT),
    )];
    let d = deploy(&provider, deployer.address(), &anvil.url(), &cfg).await?;
    Ok((d, provider))
}

async fn rpc<T: serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + Unpin + 'static>(
    p: &DynProvider,
    method: &'static str,
    params: serde_json::Value,
) -> T {
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
    assert_eq!(
        c.pha.balance_of(d.contracts.billing).await?,
        U256::from(400_000_000u64) * U256::from(PHA_UNIT)
    );
    assert_eq!(
        c.pha.balance_of(anvil.accounts()[1].address).await?,
        U256::from(1_000_000u64) * U256::from(PHA_UNIT)
    );

    // The timelock holds the admin role; the deployer holds none; the governor proposes.
    let deployer = anvil.accounts()[0].address;
    let admin = B256::ZERO;
    assert!(
        c.registry
            .raw()
            .hasRole(admin, d.contracts.timelock)
            .call()
            .await?
    );
    assert!(!c.registry.raw().hasRole(admin, deployer).call().await?);
    let proposer = c.timelock.raw().PROPOSER_ROLE().call().await?;
    assert!(
        c.timelock
            .raw()
            .hasRole(proposer, d.contracts.governor)
            .call()
            .await?
    );
    // So the deployer can no longer configure anything.
    let err = c
        .registry
        .send("setPlatform", c.registry.raw().setPlatform(1, true, 0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Contract { .. }), "{err}");

    // Initial configuration is in place.
    assert!(
        c.registry
            .platform_config(platform::SIMULATED)
            .await?
            .enabled
    );
    assert!(!c.registry.platform_config(platform::TDX).await?.enabled);
    assert!(
        c.registry
            .is_allowed_measurement(platform::SIMULATED, role::WORKER, WORKER_MEASUREMENT.into())
            .await?
    );
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
    let head_hash = c
        .provider()
        .get_block_by_number(head.into())
        .await?
        .unwrap()
        .header
        .hash;
    anvil.stop().await?;
    assert!(state.exists(), "anvil wrote no state file");

    let anvil = Anvil::start(AnvilConfig::new().state_file(&state).port(port)).await?;
    let c = PithContracts::new(&d, read_provider(&anvil.url())?);
    c.check_deployed(&d).await?;
    assert_eq!(c.pha.balance_of(to).await?, U256::from(12345));
    assert_eq!(
        c.pha.total_supply().await?,
        U256::from(1_000_000_000u64) * U256::from(PHA_UNIT)
    );
    assert_eq!(c.provider().get_block_number().await?, head);
    let again = c
        .provider()
        .get_block_by_number(head.into())
        .await?
        .unwrap()
        .header
        .hash;
    assert_eq!(again, head_hash, "block hashes survive the restart");

    // Negative control: a fresh chain without the state file has none of it.
    let fresh = Anvil::start(AnvilConfig::new()).await?;
    let code = read_provider(&fresh.url())?
        .get_code_at(d.contracts.pha)
        .await?;
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
    let on_chain_typehash = c
        .registry
        .raw()
        .WORKER_REGISTRATION_TYPEHASH()
        .call()
        .await?;
    assert_eq!(eip712::registration_typehash(), on_chain_typehash);
    let domain = eip712::registry_domain(d.chain_id, d.contracts.registry);
    assert_eq!(c.registry.domain_separator().await?, domain.separator());

    let worker = PrivateKeySigner::random().address();
    let operator = anvil.accounts()[1].address;
    let evidence = Bytes::from(b"simulated evidence bytes".to_vec());
    let now = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .unwrap()
        .header
        .timestamp;
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
    assert_eq!(
        digest,
        c.registry.registration_digest(&reg).await?,
        "Rust and Solidity EIP-712 digests differ"
    );

    // Negative: one signature below the threshold of 2.
    let one = eip712::sign_sorted(digest, &[&kms_a])?;
    let e = c
        .registry
        .send_register_worker(reg.clone(), evidence.clone(), one)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotEnoughSignatures"), "{e}");
    // Negative: a non-member signs.
    let bad = eip712::sign_sorted(digest, &[&kms_a, &outsider])?;
    let e = c
        .registry
        .send_register_worker(reg.clone(), evidence.clone(), bad)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotKmsMember"), "{e}");
    // Negative: unsorted signatures.
    let mut unsorted = eip712::sign_sorted(digest, &[&kms_a, &kms_b])?;
    unsorted.reverse();
    let e = c
        .registry
        .send_register_worker(reg.clone(), evidence.clone(), unsorted)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("DuplicateOrUnsortedSigner"), "{e}");
    // Negative: signatures over another chain's domain recover to other addresses.
    let other_chain = eip712::registration_digest(&reg, 1, d.contracts.registry);
    let wrong = eip712::sign_sorted(other_chain, &[&kms_a, &kms_b])?;
    let e = c
        .registry
        .send_register_worker(reg.clone(), evidence.clone(), wrong)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("NotKmsMember") || e.to_string().contains("Unsorted"),
        "{e}"
    );
    // Negative: evidence that does not hash to evidenceHash.
    let good = eip712::sign_sorted(digest, &[&kms_a, &kms_b])?;
    let e = c
        .registry
        .send_register_worker(reg.clone(), Bytes::from(b"other".to_vec()), good.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("EvidenceHashMismatch"), "{e}");

    assert!(!c.registry.is_active_worker(worker).await?);
    let receipt = c
        .registry
        .send_register_worker(reg.clone(), evidence.clone(), good.clone())
        .await?;
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
    let e = c
        .registry
        .send_register_worker(reg.clone(), evidence.clone(), good)
        .await
        .unwrap_err();
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
            WatchEvent::Log(l) => (
                true,
                PHA::Transfer::decode_log_data(l.data()).unwrap().value,
            ),
            WatchEvent::Removed(l) => (
                false,
                PHA::Transfer::decode_log_data(l.data()).unwrap().value,
            ),
        })
        .collect()
}

async fn transfer(c: &PithContracts, v: u64) -> Result<()> {
    c.pha
        .send_transfer(Address::repeat_byte(0x77), U256::from(v))
        .await?;
    Ok(())
}

fn watcher(
    provider: &DynProvider,
    d: &Deployment,
    from: u64,
    confirmations: u64,
    cursor: &Path,
) -> EventWatcher<DynProvider> {
    let filter = Filter::new()
        .address(d.contracts.pha)
        .event_signature(PHA::Transfer::SIGNATURE_HASH);
    EventWatcher::new(
        provider.clone(),
        filter,
        from,
        WatcherConfig::new()
            .confirmations(confirmations)
            .cursor_file(cursor),
    )
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
    assert_eq!(
        transfers(&w.poll().await?),
        vec![(true, U256::from(2)), (true, U256::from(3))]
    );
    let reverted: bool = rpc(&provider, "evm_revert", serde_json::json!([snap])).await;
    assert!(reverted);
    transfer(&c, 4).await?;
    let evs = transfers(&w.poll().await?);
    assert_eq!(
        evs,
        vec![
            (false, U256::from(3)),
            (false, U256::from(2)),
            (true, U256::from(4))
        ]
    );
    w.save()?;

    // Restart: a new watcher on the same cursor file delivers only what is new.
    drop(w);
    let mut w = watcher(&provider, &d, start, 1, &cursor);
    assert!(w.poll().await?.is_empty());
    transfer(&c, 5).await?;
    assert_eq!(transfers(&w.poll().await?), vec![(true, U256::from(5))]);

    // Negative: without the saved cursor the same filter replays everything from `start`.
    let mut fresh = watcher(&provider, &d, start, 1, &dir.path().join("other.json"));
    let all: Vec<U256> = transfers(&fresh.poll().await?)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(all, vec![U256::from(1), U256::from(4), U256::from(5)]);
    anvil.stop().await?;
    Ok(())
}

// ------------------------------------------------------------------------- typed clients

/// The same clients with another account's key.
fn clients_as(anvil: &Anvil, d: &Deployment, account: usize) -> Result<PithContracts> {
    Ok(PithContracts::new(
        d,
        signing_provider(&anvil.url(), signer(anvil, account))?,
    ))
}

async fn now(p: &DynProvider) -> Result<u64> {
    Ok(p.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .unwrap()
        .header
        .timestamp)
}

async fn advance(p: &DynProvider, seconds: u64) {
    let _: serde_json::Value = rpc(p, "evm_increaseTime", serde_json::json!([seconds])).await;
    let _: serde_json::Value = rpc(p, "anvil_mine", serde_json::json!(["0x1"])).await;
}

/// Register a fresh worker of operator account 1 with both KMS signatures.
async fn register_worker(
    anvil: &Anvil,
    d: &Deployment,
    c: &PithContracts,
) -> Result<PrivateKeySigner> {
    let worker = PrivateKeySigner::random();
    let evidence = Bytes::from(b"simulated evidence".to_vec());
    let reg = Registry::WorkerRegistration {
        worker: worker.address(),
        operator: anvil.accounts()[1].address,
        platform: platform::SIMULATED,
        measurementHash: B256::from(WORKER_MEASUREMENT),
        tcbStatus: 0,
        evidenceHash: keccak256(&evidence),
        expiry: now(c.provider()).await? + 3_600,
    };
    let digest = eip712::registration_digest(&reg, d.chain_id, d.contracts.registry);
    let sigs = eip712::sign_sorted(digest, &[&signer(anvil, 8), &signer(anvil, 9)])?;
    c.registry.send_register_worker(reg, evidence, sigs).await?;
    Ok(worker)
}

/// A worker that can receive work: registered, its operator (account 1) has a pool with
/// the minimum stake locked on it.
async fn running_worker(
    anvil: &Anvil,
    d: &Deployment,
    c: &PithContracts,
) -> Result<PrivateKeySigner> {
    let worker = register_worker(anvil, d, c).await?;
    let op = clients_as(anvil, d, 1)?;
    let stake = op.stake_pools.params().await?.minStake;
    op.stake_pools.send_create_pool(1_000).await?;
    op.pha.send_approve(d.contracts.stake_pools, stake).await?;
    op.stake_pools
        .send_deposit(anvil.accounts()[1].address, stake)
        .await?;
    op.stake_pools
        .send_start_worker(worker.address(), stake)
        .await?;
    let (ok, operator, plat) = op.stake_pools.work_status(worker.address()).await?;
    assert!(ok);
    assert_eq!(
        (operator, plat),
        (anvil.accounts()[1].address, platform::SIMULATED)
    );
    Ok(worker)
}

fn config(platform_mask: U256) -> Programs::Config {
    Programs::Config {
        memoryMib: 64,
        cpuMillis: 1_000,
        wallMillis: 5_000,
        egressCount: 4,
        egressBytes: 1 << 20,
        outputBytes: 1 << 16,
        platformMask: platform_mask,
        egressAllowListHash: B256::repeat_byte(0xee),
    }
}

#[tokio::test]
async fn programs_client_register_configure_upgrade() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let anvil = Anvil::start(AnvilConfig::new()).await?;
    let (d, _) = deploy_local(&anvil).await?;
    let owner = clients_as(&anvil, &d, 2)?;
    let other = clients_as(&anvil, &d, 3)?;
    let code = B256::repeat_byte(0xc1);

    let (id, receipt) = owner
        .programs
        .send_register(code, config(U256::ZERO))
        .await?;
    assert_eq!(id, U256::from(1));
    assert_eq!(owner.programs.registered_id(&receipt)?, id);
    let (id2, _) = other
        .programs
        .send_register(B256::repeat_byte(0xc2), config(U256::ZERO))
        .await?;
    assert_eq!(
        id2,
        U256::from(2),
        "ids are read from each receipt's own event"
    );
    assert_eq!(owner.programs.program_count().await?, U256::from(2));
    assert!(owner.programs.exists(id).await?);
    assert!(!owner.programs.exists(U256::from(9)).await?);
    assert_eq!(
        owner.programs.owner_of(id).await?,
        anvil.accounts()[2].address
    );
    assert_eq!(owner.programs.code_hash_of(id).await?, code);
    assert_eq!(owner.programs.program(id).await?.config, config(U256::ZERO));
    // Negative: a zero code hash.
    let e = owner
        .programs
        .send_register(B256::ZERO, config(U256::ZERO))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ZeroCodeHash"), "{e}");

    // Configuration: only the owner; the platform mask shows in runInfo / platformAllowed.
    let mask = U256::from(1u8) << platform::SIMULATED as usize;
    let e = other
        .programs
        .send_set_config(id, config(mask))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotOwner"), "{e}");
    owner.programs.send_set_config(id, config(mask)).await?;
    assert_eq!(owner.programs.run_info(id).await?, (code, mask));
    assert!(
        owner
            .programs
            .platform_allowed(id, platform::SIMULATED)
            .await?
    );
    assert!(!owner.programs.platform_allowed(id, platform::TDX).await?);

    // Upgrades: the owner, freely while no code admin is set.
    let v2 = B256::repeat_byte(0xc3);
    let e = other.programs.send_upgrade(id, v2).await.unwrap_err();
    assert!(e.to_string().contains("NotOwner"), "{e}");
    owner.programs.send_upgrade(id, v2).await?;
    assert_eq!(owner.programs.code_hash_of(id).await?, v2);
    // Under a code admin (account 3), only allow-listed hashes.
    let v3 = B256::repeat_byte(0xc4);
    owner.programs.send_set_allowed_code(id, v3, true).await?;
    owner
        .programs
        .send_set_code_admin(id, anvil.accounts()[3].address)
        .await?;
    assert!(owner.programs.is_allowed_code(id, v3).await?);
    let e = owner
        .programs
        .send_upgrade(id, B256::repeat_byte(0xc5))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("CodeNotAllowed"), "{e}");
    other.programs.send_upgrade(id, v3).await?;
    assert_eq!(owner.programs.run_info(id).await?.0, v3);
    // The owner can no longer edit the list; the admin can.
    let e = owner
        .programs
        .send_set_allowed_code(id, v2, true)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotAuthorized"), "{e}");
    // Ownership transfer.
    owner
        .programs
        .send_transfer_ownership(id, anvil.accounts()[4].address)
        .await?;
    assert_eq!(
        owner.programs.owner_of(id).await?,
        anvil.accounts()[4].address
    );
    anvil.stop().await?;
    Ok(())
}

#[tokio::test]
async fn billing_client_deposit_usage_withdraw_emission() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let anvil = Anvil::start(AnvilConfig::new()).await?;
    let (d, provider) = deploy_local(&anvil).await?;
    let c = PithContracts::new(&d, provider.clone());
    let worker = running_worker(&anvil, &d, &c).await?;
    let operator = anvil.accounts()[1].address;
    let owner_addr = anvil.accounts()[2].address;
    let owner = clients_as(&anvil, &d, 2)?;
    let stranger = clients_as(&anvil, &d, 3)?;
    clients_as(&anvil, &d, 1)?
        .pha
        .send_transfer(owner_addr, U256::from(1_000u64) * U256::from(PHA_UNIT))
        .await?;
    let (id, _) = owner
        .programs
        .send_register(B256::repeat_byte(0xb1), config(U256::ZERO))
        .await?;

    // Deposit.
    let amount = U256::from(100u64) * U256::from(PHA_UNIT);
    owner.pha.send_approve(d.contracts.billing, amount).await?;
    owner.billing.send_deposit(id, amount).await?;
    assert_eq!(owner.billing.deposit_of(id).await?, amount);
    let e = owner
        .billing
        .send_deposit(U256::from(99), U256::from(1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("UnknownProgram"), "{e}");

    // Usage, signed by the worker in Rust; the contract computes the same digest.
    let batch = Billing::UsageBatch {
        worker: worker.address(),
        nonce: 0,
        entries: vec![Billing::UsageEntry {
            programId: id,
            requests: 10,
            cpuMillis: 250,
            egressBytes: 4_096,
            aiTokens: 1_500,
        }],
    };
    let digest = eip712::usage_digest(&batch, d.chain_id, d.contracts.billing);
    assert_eq!(
        digest,
        c.billing.usage_digest(&batch).await?,
        "Rust and Solidity usage digests differ"
    );
    let p = c.billing.prices().await?;
    let cost = U256::from(10u64) * U256::from(p.perRequest)
        + U256::from(250u64) * U256::from(p.perCpuMilli)
        + U256::from(4_096u64) * U256::from(p.perEgressByte)
        + U256::from(1_500u64) * U256::from(p.perAiToken);
    assert!(p.perAiToken > 0, "the local profile prices model tokens");
    // Negative: signed by another key.
    let forged = eip712::sign_digest(digest, &PrivateKeySigner::random())?;
    let e = stranger
        .billing
        .send_submit_usage(batch.clone(), forged)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("BadSignature"), "{e}");
    let sig = eip712::sign_digest(digest, &worker)?;
    let receipt = stranger
        .billing
        .send_submit_usage(batch.clone(), sig.clone())
        .await?;
    assert_eq!(c.billing.deposit_of(id).await?, amount - cost);
    assert_eq!(c.billing.next_usage_nonce(worker.address()).await?, 1);
    // The epoch of the settling block (not of "now": the test may cross an epoch boundary).
    let mined = provider
        .get_block_by_number(receipt.block_number.unwrap().into())
        .await?
        .unwrap()
        .header
        .timestamp;
    let genesis = c.billing.raw().genesis().call().await?;
    let epoch = U256::from((mined - genesis) / c.billing.epoch_length().await?);
    assert_eq!(
        c.billing.work_of(epoch, operator).await?,
        cost,
        "work counts the gross charge"
    );
    assert_eq!(
        c.billing.treasury_accrued().await?,
        cost * U256::from(500) / U256::from(10_000)
    );
    // Negative: the same batch again.
    let e = stranger
        .billing
        .send_submit_usage(batch, sig)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("UsageReplayed"), "{e}");

    // Withdrawal: owner only, after the delay.
    let e = stranger
        .billing
        .send_request_withdrawal(id, U256::from(1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotProgramOwner"), "{e}");
    let e = owner
        .billing
        .send_request_withdrawal(id, U256::MAX)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("uint192"), "{e}");
    owner.billing.send_request_withdrawal(id, amount).await?;
    let pending = owner.billing.pending_withdrawal(id).await?;
    assert_eq!(pending.amount, amount);
    assert!(pending.ready_at > now(&provider).await?);
    let e = owner
        .billing
        .send_withdraw(id, owner_addr)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotReady"), "{e}");
    advance(&provider, 61).await;
    let before = c.pha.balance_of(owner_addr).await?;
    owner.billing.send_withdraw(id, owner_addr).await?;
    assert_eq!(
        c.pha.balance_of(owner_addr).await?,
        before + amount - cost,
        "pays at most what is left"
    );
    assert_eq!(owner.billing.deposit_of(id).await?, U256::ZERO);

    // Emission of the epoch the work was done in, once it is over.
    let e = stranger
        .billing
        .send_claim_emission(c.billing.current_epoch().await?, operator)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("EpochNotOver"), "{e}");
    advance(&provider, c.billing.epoch_length().await?).await;
    assert!(c.billing.current_epoch().await? > epoch);
    let budget = c.billing.scheduled_budget(epoch).await?;
    let (paid, _) = stranger
        .billing
        .send_claim_emission(epoch, operator)
        .await?;
    assert_eq!(
        paid, budget,
        "the only operator with work gets the whole budget"
    );
    assert!(c.billing.emission_claimed(epoch, operator).await?);
    let e = stranger
        .billing
        .send_claim_emission(epoch, operator)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("AlreadyClaimed"), "{e}");
    anvil.stop().await?;
    Ok(())
}

#[tokio::test]
async fn oracle_client_request_fulfil_refund() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let anvil = Anvil::start(AnvilConfig::new()).await?;
    let (d, provider) = deploy_local(&anvil).await?;
    let c = PithContracts::new(&d, provider.clone());
    let worker = running_worker(&anvil, &d, &c).await?;
    let operator = anvil.accounts()[1].address;
    let requester = clients_as(&anvil, &d, 1)?;
    let relayer = clients_as(&anvil, &d, 3)?;
    let code = B256::repeat_byte(0xa1);
    let (program, _) = requester
        .programs
        .send_register(code, config(U256::ZERO))
        .await?;
    let fee = 5 * PHA_UNIT as u128;
    requester
        .pha
        .send_approve(d.contracts.oracle_anchor, U256::from(2 * fee))
        .await?;

    let payload = Bytes::from(b"{\"pair\":\"ETH/USD\"}".to_vec());
    let (req, receipt) = requester
        .oracle_anchor
        .send_request(program, payload.clone(), 0, fee)
        .await?;
    assert_eq!(req.requestId, U256::from(1));
    assert_eq!(
        (req.programId, req.requester, req.payload.clone(), req.fee),
        (program, operator, payload, fee)
    );
    assert_eq!(
        requester.oracle_anchor.requests_in(&receipt),
        vec![req.clone()]
    );
    let decoded: Vec<_> = receipt
        .inner
        .logs()
        .iter()
        .filter_map(|l| c.oracle_anchor.decode_request(l))
        .collect();
    assert_eq!(decoded, vec![req.clone()]);
    assert_eq!(
        c.oracle_anchor.request_info(req.requestId).await?.requester,
        operator
    );
    assert_eq!(c.oracle_anchor.request_count().await?, U256::from(1));
    // Negative: unknown program.
    let e = requester
        .oracle_anchor
        .send_request(U256::from(77), Bytes::new(), 0, fee)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("UnknownProgram"), "{e}");

    let result = b"{\"price\":3150.25}";
    let digest = eip712::oracle_result_digest(
        req.requestId,
        program,
        code,
        result,
        d.chain_id,
        d.contracts.oracle_anchor,
    );
    assert_eq!(
        digest,
        c.oracle_anchor
            .result_digest(req.requestId, program, code, keccak256(result))
            .await?,
        "Rust and Solidity result digests differ"
    );
    // Negative: a signer that is not a running worker; a result other than the signed one.
    let outsider = eip712::sign_digest(digest, &PrivateKeySigner::random())?;
    let e = relayer
        .oracle_anchor
        .send_fulfil(req.requestId, Bytes::from_static(result), outsider)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("WorkerNotAllowed"), "{e}");
    let sig = eip712::sign_digest(digest, &worker)?;
    let e = relayer
        .oracle_anchor
        .send_fulfil(
            req.requestId,
            Bytes::from_static(b"{\"price\":1}"),
            sig.clone(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("WorkerNotAllowed"), "{e}");
    let (done, _) = relayer
        .oracle_anchor
        .send_fulfil(req.requestId, Bytes::from_static(result), sig.clone())
        .await?;
    assert_eq!(
        (done.worker, done.resultHash, done.callbackOk),
        (worker.address(), keccak256(result), true)
    );
    assert_eq!(
        c.oracle_anchor.request_info(req.requestId).await?.requester,
        Address::ZERO
    );
    assert_eq!(c.oracle_anchor.fees_owed(operator).await?, U256::from(fee));
    // Opening an account that is already open is a no-op; a fresh one costs the payer 1 wei.
    relayer
        .oracle_anchor
        .send_open_fee_account(operator)
        .await?;
    assert_eq!(c.oracle_anchor.fees_owed(operator).await?, U256::from(fee));
    let fresh = Address::repeat_byte(0x5e);
    let e = relayer
        .oracle_anchor
        .send_open_fee_account(fresh)
        .await
        .unwrap_err();
    assert!(!e.to_string().is_empty());
    requester
        .pha
        .send_transfer(signer(&anvil, 3).address(), U256::from(10))
        .await?;
    relayer
        .pha
        .send_approve(d.contracts.oracle_anchor, U256::from(1))
        .await?;
    relayer.oracle_anchor.send_open_fee_account(fresh).await?;
    assert_eq!(c.oracle_anchor.fees_owed(fresh).await?, U256::from(1));
    let e = relayer
        .oracle_anchor
        .send_fulfil(req.requestId, Bytes::from_static(result), sig)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("UnknownRequest"), "{e}");

    // Timeout and refund.
    let (req2, _) = requester
        .oracle_anchor
        .send_request(program, Bytes::new(), 0, fee)
        .await?;
    let e = relayer
        .oracle_anchor
        .send_refund(req2.requestId)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotExpired"), "{e}");
    advance(&provider, c.oracle_anchor.timeout().await? + 1).await;
    let digest2 = eip712::oracle_result_digest(
        req2.requestId,
        program,
        code,
        b"late",
        d.chain_id,
        d.contracts.oracle_anchor,
    );
    let e = relayer
        .oracle_anchor
        .send_fulfil(
            req2.requestId,
            Bytes::from_static(b"late"),
            eip712::sign_digest(digest2, &worker)?,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("RequestExpired"), "{e}");
    let before = c.pha.balance_of(operator).await?;
    relayer.oracle_anchor.send_refund(req2.requestId).await?;
    assert_eq!(c.pha.balance_of(operator).await?, before + U256::from(fee));
    let e = relayer
        .oracle_anchor
        .send_refund(req2.requestId)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("UnknownRequest"), "{e}");

    let all = c.oracle_anchor.requests_since(d.deploy_block).await?;
    assert_eq!(
        all.iter().map(|r| r.requestId).collect::<Vec<_>>(),
        vec![U256::from(1), U256::from(2)]
    );
    anvil.stop().await?;
    Ok(())
}

#[tokio::test]
async fn registry_kms_evidence_revocation_and_key_rotation() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let anvil = Anvil::start(AnvilConfig::new()).await?;
    let (d, provider) = deploy_local(&anvil).await?;
    let c = PithContracts::new(&d, provider.clone());
    let kms = clients_as(&anvil, &d, 8)?;
    let stranger = clients_as(&anvil, &d, 3)?;

    // A KMS member posts its evidence; the event carries its hash.
    assert!(
        c.registry
            .is_kms_member(anvil.accounts()[8].address)
            .await?
    );
    let evidence = Bytes::from(b"kms quote".to_vec());
    let e = stranger
        .registry
        .send_post_kms_evidence(
            platform::SIMULATED,
            KMS_MEASUREMENT.into(),
            0,
            evidence.clone(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotKmsMember"), "{e}");
    let e = kms
        .registry
        .send_post_kms_evidence(
            platform::SIMULATED,
            WORKER_MEASUREMENT.into(),
            0,
            evidence.clone(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("MeasurementNotAllowed"), "{e}");
    let receipt = kms
        .registry
        .send_post_kms_evidence(
            platform::SIMULATED,
            KMS_MEASUREMENT.into(),
            0,
            evidence.clone(),
        )
        .await?;
    let ev = pith_chain::client::event_in::<Registry::KmsEvidencePosted>(
        &receipt,
        d.contracts.registry,
    )?;
    assert_eq!(
        (ev.member, ev.evidenceHash),
        (anvil.accounts()[8].address, keccak256(&evidence))
    );

    // Revocation by the KMS committee.
    let worker = register_worker(&anvil, &d, &c).await?.address();
    assert!(c.registry.is_active_worker(worker).await?);
    let digest = eip712::revocation_digest(worker, 3, d.chain_id, d.contracts.registry);
    assert_eq!(digest, c.registry.revocation_digest(worker, 3).await?);
    let one = eip712::sign_sorted(digest, &[&signer(&anvil, 8)])?;
    let e = stranger
        .registry
        .send_revoke_worker_by_kms(worker, 3, one)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotEnoughSignatures"), "{e}");
    let wrong_reason = eip712::sign_sorted(
        eip712::revocation_digest(worker, 4, d.chain_id, d.contracts.registry),
        &[&signer(&anvil, 8), &signer(&anvil, 9)],
    )?;
    let e = stranger
        .registry
        .send_revoke_worker_by_kms(worker, 3, wrong_reason)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("NotKmsMember") || e.to_string().contains("Unsorted"),
        "{e}"
    );
    let both = eip712::sign_sorted(digest, &[&signer(&anvil, 8), &signer(&anvil, 9)])?;
    stranger
        .registry
        .send_revoke_worker_by_kms(worker, 3, both.clone())
        .await?;
    assert!(!c.registry.is_active_worker(worker).await?);
    assert!(c.registry.worker_info(worker).await?.revoked);
    let e = stranger
        .registry
        .send_revoke_worker_by_kms(worker, 3, both)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("WorkerIsRevoked"), "{e}");

    // Key rotation: not by the deployer (roles handed over), not by a KMS member; by governance.
    assert_eq!(c.registry.kms_key_epoch().await?, 0);
    let e = c.registry.send_rotate_kms_key().await.unwrap_err();
    assert!(
        e.to_string().contains("AccessControlUnauthorizedAccount"),
        "{e}"
    );
    let e = kms.registry.send_rotate_kms_key().await.unwrap_err();
    assert!(
        e.to_string().contains("AccessControlUnauthorizedAccount"),
        "{e}"
    );
    let p = Proposal {
        targets: vec![d.contracts.registry],
        values: vec![U256::ZERO],
        calldatas: vec![pith_chain::client::RegistryClient::rotate_kms_key_calldata()],
        description: "Rotate the KMS master key".into(),
    };
    let id = c.governor.hash_proposal(&p).await?;
    c.governor.send_propose(&p).await?;
    let _: serde_json::Value = rpc(&provider, "anvil_mine", serde_json::json!(["0x2"])).await;
    c.governor.send_vote(id, 1).await?;
    let _: serde_json::Value = rpc(&provider, "anvil_mine", serde_json::json!(["0x6"])).await;
    c.governor.send_queue(&p).await?;
    let _: serde_json::Value = rpc(&provider, "evm_increaseTime", serde_json::json!([2])).await;
    let receipt = c.governor.send_execute(&p).await?;
    assert_eq!(c.registry.kms_key_rotations_in(&receipt), vec![1]);
    assert_eq!(c.registry.kms_key_epoch().await?, 1);
    let rotations = c.registry.kms_key_rotations(d.deploy_block).await?;
    assert_eq!(rotations, vec![(receipt.block_number.unwrap(), 1)]);
    anvil.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_port_held_by_another_anvil_is_not_taken_for_ours() -> Result<()> {
    if !anvil_available() {
        return Ok(());
    }
    let first = Anvil::start(AnvilConfig::new()).await?;
    // Same port, same chain id: the other anvil answers eth_chainId, but ours never started.
    let err = Anvil::start(AnvilConfig::new().port(first.port()))
        .await
        .expect_err("a second anvil on a held port must not pass for started");
    assert!(
        err.to_string().contains("port"),
        "the error names the port: {err}"
    );
    // Without a fixed port, a start always finds a port of its own.
    let second = Anvil::start(AnvilConfig::new()).await?;
    assert_ne!(second.port(), first.port());
    Ok(())
}
