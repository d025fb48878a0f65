//! The example agent on a whole local network (`pith up`, the workers serving the default
//! model when it is installed — always under CI): `pith deploy examples/agent`, an
//! AgentInbox contract whose only decider is the agent's own address, the agent's triggers
//! (`Posted` events and a 3-second sweep) set with `pith programs triggers`. Posts get one
//! decision each, on chain, from the agent's address; after `kill -9` of a worker the other
//! worker carries on, and no post is ever decided twice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use common::{GUARD, Net, eventually, rt};
use pith_chain::client::signing_provider;

alloy::sol!(
    #[sol(rpc)]
    #[allow(missing_docs)]
    AgentInbox,
    "../../contracts/artifacts/AgentInbox.json"
);

#[test]
fn agent_decides_each_post_once_and_survives_a_worker() {
    if !pith_testkit::anvil_available() {
        eprintln!("skipped: anvil is not installed (scripts/install-tools)");
        return;
    }
    let model = pith_testkit::model_path();
    let net = match &model {
        Some(m) => Net::up_with_model(m),
        None => Net::up(),
    };
    let rt = rt();

    // The agent, funded for its transactions.
    let dep = net.pith_json(&["deploy", "examples/agent", "--deposit", "10", "--fund", "1"]);
    let pid = dep["program_id"].as_str().unwrap().to_owned();
    let agent: Address = dep["program_address"].as_str().unwrap().parse().unwrap();

    // The inbox it watches, deciding only through the agent's address.
    let user = signing_provider(&net.rpc(), net.signer(1)).unwrap();
    let inbox = rt.block_on(async { AgentInbox::deploy(user.clone(), agent).await.unwrap() });
    let inbox_addr = *inbox.address();
    let t = net.pith_json(&[
        "programs",
        "triggers",
        &pid,
        "--cron",
        "*/3 * * * * *",
        "--on-event",
        &format!("{inbox_addr}:Posted(uint256,address,string)"),
    ]);
    assert!(t["version"].as_u64().is_some(), "{t}");

    let post = |text: &str| -> u64 {
        rt.block_on(async {
            let r = inbox
                .post(text.to_owned())
                .send()
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap();
            assert!(r.status());
            r.block_number.unwrap()
        })
    };
    let decision = |id: u64| -> u8 {
        rt.block_on(async { inbox.decision(U256::from(id)).call().await.unwrap() })
    };
    let decided = |ids: &[u64]| ids.iter().all(|&i| decision(i) != 0).then_some(());

    // Two posts: each decided on chain by the agent, within a few seconds.
    post("I love this, it is wonderful");
    post("This is terrible and broken");
    eventually("the agent decides posts 1 and 2", GUARD, || {
        decided(&[1, 2])
    });
    for id in [1, 2] {
        assert!(
            (1..=3).contains(&decision(id)),
            "post {id}: {}",
            decision(id)
        );
    }

    // kill -9 a worker: the other one carries on with the next posts.
    let network = net.network();
    let survivor: Address = network["workers"][1]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    net.kill9("worker-0");
    let b3 = post("great work, happy with it");
    let b4 = post("the worst, I hate it");
    eventually(
        "the agent decides posts 3 and 4 after the kill",
        GUARD,
        || decided(&[3, 4]),
    );

    // Each post decided exactly once, by the agent (the inbox reverts a second decision, and
    // each firing ran on one worker: no second attempt shows up as a Decided log either).
    let logs = rt.block_on(async {
        user.get_logs(
            &Filter::new()
                .address(inbox_addr)
                .event_signature(AgentInbox::Decided::SIGNATURE_HASH)
                .from_block(0),
        )
        .await
        .unwrap()
    });
    let mut ids: Vec<u64> = logs
        .iter()
        .map(|l| {
            l.log_decode::<AgentInbox::Decided>()
                .unwrap()
                .inner
                .data
                .id
                .to::<u64>()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 3, 4], "one decision per post");
    for l in &logs {
        let tx = rt.block_on(async {
            user.get_transaction_by_hash(l.transaction_hash.unwrap())
                .await
                .unwrap()
                .unwrap()
        });
        assert_eq!(
            tx.inner.signer(),
            agent,
            "decided from the agent's own address"
        );
    }

    // The firings of posts 3 and 4 ran on the surviving worker (its log names each firing with
    // its receipt); worker-0 was down when they were posted.
    let program_logs = net.pith_json(&["programs", "logs", &pid]);
    let entries = program_logs["entries"].as_array().unwrap();
    for block in [b3, b4] {
        let line = entries
            .iter()
            .find(|e| {
                let m = e["message"].as_str().unwrap_or_default();
                m.starts_with(&format!("agent firing event:{block}:")) && m.contains("status 200")
            })
            .unwrap_or_else(|| {
                panic!("no firing logged for the post in block {block}: {program_logs}")
            });
        let by: Address = line["worker"].as_str().unwrap().parse().unwrap();
        assert_eq!(by, survivor, "{line}");
        assert!(
            line["message"].as_str().unwrap().contains("receipt {"),
            "{line}"
        );
    }
    // The sweep runs on its schedule too (every 3 s on whichever worker claims the tick; the
    // logs of a killed worker are gone with it, so wait for one the live workers logged).
    eventually("a cron firing in the program's logs", GUARD, || {
        let logs = net.pith_json(&["programs", "logs", &pid]);
        logs["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| {
                e["message"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("agent firing cron:")
            })
            .then_some(())
    });
    // Anyone can ask the agent what it has done.
    let c = net.pith_json(&["call", &pid]);
    assert_eq!(c["verified"], true, "{c}");
    let state: serde_json::Value = serde_json::from_str(c["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        state["inbox"].as_str().unwrap().to_ascii_lowercase(),
        format!("{inbox_addr:#x}"),
        "{state}"
    );
}
