//! The example programs under examples/, each run as a user would.

mod common;
use std::sync::Arc;

use common::*;
use pith_sandbox::pool::{Pool, PoolConfig};
use pith_sandbox::{BytecodeCache, Host, Program, Request};
use serde_json::Value;

fn example(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name).join("index.js");
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn hello() {
    let o = run_program(Program::new("hello", example("hello")), Request::get("http://localhost/?name=pith"));
    assert_eq!(body(&o), "hello, pith\n");
    let o = run_program(Program::new("hello", example("hello")), Request::get("http://localhost/"));
    assert_eq!(body(&o), "hello, world\n");
}

#[test]
fn price_oracle_signs_what_it_fetched() {
    let port = serve(|_| {
        ("200 OK".into(), vec![("content-type".into(), "application/json".into())],
            br#"{"data":{"base":"ETH","currency":"USD","amount":"3141.5926"}}"#.to_vec())
    });
    let mut p = Program::new("oracle", example("price-oracle"));
    p.secrets.insert("PRICE_URL".into(), format!("http://127.0.0.1:{port}/v2/prices/ETH-USD/spot"));
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
    let vk = k256::ecdsa::VerifyingKey::recover_from_prehash(&digest, &rs, k256::ecdsa::RecoveryId::from_byte(sig[64] - 27).unwrap()).unwrap();
    assert_eq!(pith_sandbox::eth::checksum_address(&pith_sandbox::host::eth_address(&vk)), v["signer"].as_str().unwrap());
    // A tampered report does not recover to the signer.
    let mut tampered = td.clone();
    tampered["message"]["price"] = serde_json::json!("1");
    let d2 = pith_sandbox::eip712::typed_data_hash(&tampered).unwrap();
    let vk2 = k256::ecdsa::VerifyingKey::recover_from_prehash(&d2, &rs, k256::ecdsa::RecoveryId::from_byte(sig[64] - 27).unwrap()).unwrap();
    assert_ne!(vk2, vk);
    // Without the allow-list entry the fetch is refused.
    p.egress.allow_hosts.clear();
    assert_eq!(kind(&run_program(p, Request::get("http://localhost/"))), pith_sandbox::ErrorKind::EgressDenied);
}

#[test]
fn secrets_kv_counts_across_invocations() {
    let pool = Pool::new(Host::local(b"seed".to_vec()), tokio().handle().clone(), BytecodeCache::default(), PoolConfig::default());
    let mut p = Program::new("counter", example("secrets-kv"));
    p.secrets.insert("TOKEN".into(), "t0k".into());
    let p = Arc::new(p);
    let req = |method: &str, path: &str, auth: bool| {
        let mut r = Request::get(format!("http://localhost{path}"));
        r.method = method.into();
        if auth {
            r.headers.push(("authorization".into(), "Bearer t0k".into()));
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
    assert_eq!(body(&pool.invoke(&p, req("GET", "/list", true))), r#"{"names":["alice","bob"]}"#);
    assert_eq!(pool.invoke(&p, req("DELETE", "/count/alice", true)).result.unwrap().status, 204);
    assert_eq!(body(&pool.invoke(&p, req("GET", "/list", true))), r#"{"names":["bob"]}"#);
    // Another program does not see this program's keys.
    let mut other = Program::new("other", example("secrets-kv"));
    other.secrets.insert("TOKEN".into(), "t0k".into());
    assert_eq!(body(&pool.invoke(&Arc::new(other), req("GET", "/list", true))), r#"{"names":[]}"#);
}
