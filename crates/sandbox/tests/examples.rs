//! The example programs under examples/, each run as a user would.

mod common;
use std::sync::Arc;

use common::*;
use pith_sandbox::pool::{Pool, PoolConfig};
use pith_sandbox::{BytecodeCache, Host, Program, Request};
use serde_json::Value;

fn example(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
        .join("index.js");
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn hello() {
    let o = run_program(
        Program::new("hello", example("hello")),
        Request::get("http://localhost/?name=pith"),
    );
    assert_eq!(body(&o), "hello, pith\n");
    let o = run_program(
        Program::new("hello", example("hello")),
        Request::get("http://localhost/"),
    );
    assert_eq!(body(&o), "hello, world\n");
}

#[test]
fn price_oracle_signs_what_it_fetched() {
    let port = serve(|_| {
        (
            "200 OK".into(),
            vec![("content-type".into(), "application/json".into())],
            br#"{"data":{"base":"ETH","currency":"USD","amount":"3141.5926"}}"#.to_vec(),
        )
    });
    let mut p = Program::new("oracle", example("price-oracle"));
    p.secrets.insert(
        "PRICE_URL".into(),
        format!("http://127.0.0.1:{port}/v2/prices/ETH-USD/spot"),
    );
    p.egress.allow_hosts = vec![format!("127.0.0.1:{port}")];
    let o = run_program(p.clone(), Request::get("http://localhost/"));
    let v: Value = serde_json::from_str(&body(&o)).unwrap();
    assert_eq!(v["report"]["pair"], "ETH-USD");
    assert_eq!(v["report"]["price"], "314159260000");
    assert_eq!(o.usage.egress_requests, 1);
    // Recover the signer of the EIP-712 digest and compare with the reported address.
    let td = serde_json::json!({
        "types": {"PriceReport": [{"name": "pair", "type": "string"}, {"name": "price", "type": "uint256"}, {"name": "timestamp", "type": "uint256"}]},
        "primaryType": "PriceReport", "domain": v["domain"], "message": v["report"]});
    let digest = pith_sandbox::eip712::typed_data_hash(&td).unwrap();
    let sig = hex::decode(v["signature"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    let rs = k256::ecdsa::Signature::from_slice(&sig[..64]).unwrap();
    let vk = k256::ecdsa::VerifyingKey::recover_from_prehash(
        &digest,
        &rs,
        k256::ecdsa::RecoveryId::from_byte(sig[64] - 27).unwrap(),
    )
    .unwrap();
    assert_eq!(
        pith_sandbox::eth::checksum_address(&pith_sandbox::host::eth_address(&vk)),
        v["signer"].as_str().unwrap()
    );
    // A tampered report does not recover to the signer.
    let mut tampered = td.clone();
    tampered["message"]["price"] = serde_json::json!("1");
    let d2 = pith_sandbox::eip712::typed_data_hash(&tampered).unwrap();
    let vk2 = k256::ecdsa::VerifyingKey::recover_from_prehash(
        &d2,
        &rs,
        k256::ecdsa::RecoveryId::from_byte(sig[64] - 27).unwrap(),
    )
    .unwrap();
    assert_ne!(vk2, vk);
    // Without the allow-list entry the fetch is refused.
    p.egress.allow_hosts.clear();
    assert_eq!(
        kind(&run_program(p, Request::get("http://localhost/"))),
        pith_sandbox::ErrorKind::EgressDenied
    );
}

#[test]
fn secrets_kv_counts_across_invocations() {
    let pool = Pool::new(
        Host::local(b"seed".to_vec()),
        tokio().handle().clone(),
        BytecodeCache::default(),
        PoolConfig::default(),
    );
    let mut p = Program::new("counter", example("secrets-kv"));
    p.secrets.insert("TOKEN".into(), "t0k".into());
    let p = Arc::new(p);
    let req = |method: &str, path: &str, auth: bool| {
        let mut r = Request::get(format!("http://localhost{path}"));
        r.method = method.into();
        if auth {
            r.headers
                .push(("authorization".into(), "Bearer t0k".into()));
        }
        r
    };
    let o = pool.invoke(&p, req("GET", "/count/alice", false));
    assert_eq!(o.result.as_ref().unwrap().status, 401);
    for n in 1..=3 {
        let o = pool.invoke(&p, req("GET", "/count/alice", true));
        assert_eq!(body(&o), format!("{{\"name\":\"alice\",\"count\":{n}}}"));
    }
    pool.invoke(&p, req("GET", "/count/bob", true));
    assert_eq!(
        body(&pool.invoke(&p, req("GET", "/list", true))),
        r#"{"names":["alice","bob"]}"#
    );
    assert_eq!(
        pool.invoke(&p, req("DELETE", "/count/alice", true))
            .result
            .unwrap()
            .status,
        204
    );
    assert_eq!(
        body(&pool.invoke(&p, req("GET", "/list", true))),
        r#"{"names":["bob"]}"#
    );
    // Another program does not see this program's keys.
    let mut other = Program::new("other", example("secrets-kv"));
    other.secrets.insert("TOKEN".into(), "t0k".into());
    assert_eq!(
        body(&pool.invoke(&Arc::new(other), req("GET", "/list", true))),
        r#"{"names":[]}"#
    );
}

/// Answers every chat with a fixed text; remembers the requests.
struct Says(
    &'static str,
    std::sync::Mutex<Vec<pith_sandbox::host::AiChatRequest>>,
);

impl pith_sandbox::host::AiProvider for Says {
    fn chat<'a>(
        &'a self,
        _: &'a pith_sandbox::host::ProgramRef,
        request: pith_sandbox::host::AiChatRequest,
        _: std::time::Instant,
    ) -> pith_sandbox::host::BoxFuture<
        'a,
        Result<pith_sandbox::host::AiChatReply, pith_sandbox::host::HostError>,
    > {
        Box::pin(async move {
            self.1.lock().unwrap().push(request);
            Ok(pith_sandbox::host::AiChatReply {
                content: self.0.to_owned(),
                finish_reason: "stop".into(),
                prompt_tokens: 40,
                completion_tokens: 2,
                model: "scripted".into(),
                model_hash: [3; 32],
            })
        })
    }
}

#[test]
fn ai_classify_takes_the_model_label_or_falls_back_to_the_rule() {
    let run_with = |says: &'static str, text: &str| {
        let model = Arc::new(Says(says, std::sync::Mutex::new(Vec::new())));
        let mut host = Host::local(b"examples".to_vec());
        host.ai = model.clone();
        let url = format!("http://localhost/?text={}", text.replace(' ', "%20"));
        let o = run_with_host(
            Program::new("classify", example("ai-classify")),
            Request::get(&url),
            host,
        );
        let v: Value = serde_json::from_str(&body(&o)).unwrap();
        (v, model.1.lock().unwrap().clone())
    };
    // The model names one label: it decides (even against the keywords).
    let (v, asked) = run_with("Negative.", "I love this");
    assert_eq!(
        (v["label"].as_str(), v["decided_by"].as_str()),
        (Some("negative"), Some("model")),
        "{v}"
    );
    assert_eq!(v["model_hash"], format!("0x{}", "03".repeat(32)));
    assert_eq!(asked[0].max_tokens, 4);
    assert_eq!(asked[0].temperature, 0.0, "greedy by default");
    assert_eq!(asked[0].messages[1].content, "I love this");
    // No label, or two: the keyword rule decides.
    for says in ["I am not sure.", "positive or negative"] {
        let (v, _) = run_with(says, "a great and wonderful day");
        assert_eq!(
            (v["label"].as_str(), v["decided_by"].as_str()),
            (Some("positive"), Some("rule")),
            "{v}"
        );
        let (v, _) = run_with(says, "broken and awful");
        assert_eq!(v["label"], "negative", "{v}");
        let (v, _) = run_with(says, "the train leaves at noon");
        assert_eq!(v["label"], "neutral", "{v}");
    }
    // No text: 400 before the model is asked.
    let model = Arc::new(Says("positive", std::sync::Mutex::new(Vec::new())));
    let mut host = Host::local(b"examples".to_vec());
    host.ai = model.clone();
    let o = run_with_host(
        Program::new("classify", example("ai-classify")),
        Request::get("http://localhost/"),
        host,
    );
    assert_eq!(o.result.as_ref().unwrap().status, 400);
    assert!(model.1.lock().unwrap().is_empty());
}
