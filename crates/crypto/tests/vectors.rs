//! Cross-language test vectors shared with the TypeScript SDK (`sdk/js`), under
//! `testdata/vectors/` (provenance and regeneration: `testdata/vectors/README.md`).
//!
//! - `rust.json` is written by this test (`PITH_WRITE_VECTORS=1 cargo test -p pith-crypto
//!   --test vectors`): a request encapsulated by the Rust client to a program key derived
//!   from a fixed master key, the response the Rust server sealed on it, a receipt and a key
//!   certificate signed in Rust. Without the variable the test recomputes every
//!   deterministic field and fails when the committed file differs, so a change of the Rust
//!   format shows up here; `sdk/js/test/vectors.test.ts` decrypts and verifies the file.
//! - `ts.json` is written by the TypeScript generator (`npm run vectors` in `sdk/js`): a
//!   request encapsulated by the SDK to the same key, a receipt and a key certificate signed
//!   with viem. This test opens and verifies them, so a change of the TypeScript format
//!   fails here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::path::PathBuf;

use alloy_primitives::{Address, B256};
use k256::ecdsa::SigningKey;
use pith_crypto::certify::KeyCertificate;
use pith_crypto::envelope::{ClientSession, ProgramServer, Request, Response};
use pith_crypto::keccak256;
use pith_crypto::keytree::{MasterKey, ProgramId, ProgramKeys, address_of};
use pith_crypto::receipt::{Receipt, ReceiptFields, SignedReceipt};
use serde_json::{Value, json};

const CHAIN_ID: u64 = 31337;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors")
}

fn program_keys() -> ProgramKeys {
    MasterKey::from_bytes([0x11; 32], 1)
        .program_keys(&ProgramId([0x22; 32]))
        .unwrap()
}

fn registry() -> Address {
    Address::repeat_byte(0x42)
}

fn h(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

fn unhex(v: &Value) -> Vec<u8> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).unwrap()
}

fn request() -> Request {
    Request::new(
        "POST",
        "/v1/echo?x=1",
        vec![
            ("content-type".into(), "application/json".into()),
            ("x-vector".into(), "rust→ts ✓".into()),
        ],
        br#"{"hello":"world"}"#.to_vec(),
        [0x33; 16],
        1_800_000_000,
    )
}

fn response() -> Response {
    Response {
        status: 201,
        headers: vec![
            ("content-type".into(), "application/octet-stream".into()),
            ("x-a".into(), "b".into()),
        ],
        body: vec![0, 1, 2, 0xff, b'o', b'k'],
    }
}

fn request_json(r: &Request) -> Value {
    json!({
        "method": r.method(), "path": r.path(),
        "headers": r.headers().iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "body": h(r.body()), "nonce": h(r.nonce()), "expiry": r.expiry(),
    })
}

fn request_from_json(v: &Value) -> Request {
    let headers = v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let nonce: [u8; 16] = unhex(&v["nonce"]).try_into().unwrap();
    Request::new(
        v["method"].as_str().unwrap(),
        v["path"].as_str().unwrap(),
        headers,
        unhex(&v["body"]),
        nonce,
        v["expiry"].as_u64().unwrap(),
    )
}

/// Everything in `rust.json` that does not depend on randomness.
fn deterministic() -> Value {
    let keys = program_keys();
    let server = ProgramServer::new(&keys).unwrap();
    let ohttp_keys = server.encoded_key_configs().unwrap();
    let req = request();
    let req_bhttp = req.to_bhttp().unwrap();
    let res_bhttp = response().to_bhttp().unwrap();
    let worker = SigningKey::from_slice(&[0x07; 32]).unwrap();
    let receipt = SignedReceipt::sign(
        ReceiptFields {
            chain_id: CHAIN_ID,
            verifying_contract: registry(),
            receipt: Receipt {
                programId: B256::from(keys.program().0),
                codeHash: B256::repeat_byte(0x0c),
                requestHash: B256::from(keccak256(&req_bhttp)),
                responseHash: B256::from(keccak256(&res_bhttp)),
                modelHash: B256::ZERO,
                worker: address_of(&worker),
                timestamp: 1_800_000_001,
                cpuMicros: 187,
                wallMicros: 1_234,
                memoryBytes: 430_416,
                egressBytes: 9,
            },
        },
        &worker,
    )
    .unwrap();
    let kms = SigningKey::from_slice(&[0x09; 32]).unwrap();
    let cert = KeyCertificate::issue(
        &kms,
        CHAIN_ID,
        registry(),
        B256::from(keys.program().0),
        keys.epoch(),
        &ohttp_keys,
        keys.address(),
        1_900_000_000,
    )
    .unwrap();
    json!({
        "master_key": h(&[0x11; 32]), "epoch": keys.epoch(), "program_id": h(&keys.program().0),
        "encryption_ikm": h(keys.encryption_ikm()), "key_id": keys.epoch() % 256,
        "ohttp_keys": h(&ohttp_keys), "program_address": format!("{:#x}", keys.address()),
        "request": request_json(&req), "request_bhttp": h(&req_bhttp), "request_hash": h(&keccak256(&req_bhttp)),
        "response": {"status": 201, "headers": [["content-type", "application/octet-stream"], ["x-a", "b"]], "body": h(&response().body)},
        "response_bhttp": h(&res_bhttp), "response_hash": h(&keccak256(&res_bhttp)),
        "receipt": serde_json::to_value(&receipt).unwrap(), "receipt_worker": format!("{:#x}", address_of(&worker)),
        "receipt_signing_hash": format!("{}", receipt.signing_hash()),
        "key_certificate": serde_json::to_value(&cert).unwrap(), "kms": format!("{:#x}", address_of(&kms)),
    })
}

fn read(name: &str) -> Value {
    let path = dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (see testdata/vectors/README.md)", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn rust_vectors_are_current() {
    let mut want = deterministic();
    if std::env::var_os("PITH_WRITE_VECTORS").is_some() {
        let server = ProgramServer::new(&program_keys()).unwrap();
        let (wire, _session) =
            ClientSession::encapsulate(&unhex(&want["ohttp_keys"]), &request()).unwrap();
        let (_, reply) = server.decapsulate(&wire).unwrap();
        let (res_wire, _) = reply.encapsulate(&response()).unwrap();
        want["request_wire"] = json!(h(&wire));
        want["response_wire"] = json!(h(&res_wire));
        let text = serde_json::to_string_pretty(&want).unwrap() + "\n";
        std::fs::write(dir().join("rust.json"), text).unwrap();
    }
    let got = read("rust.json");
    for (k, v) in want.as_object().unwrap() {
        if k == "request_wire" || k == "response_wire" {
            continue;
        }
        assert_eq!(
            &got[k], v,
            "rust.json field {k} is not what pith-crypto produces now: regenerate (testdata/vectors/README.md)"
        );
    }
    // the docs' key-tree vector (docs/protocol.md "Key tree")
    assert_eq!(
        got["encryption_ikm"],
        "0xed0f8e3fba9d700e39d165d2d1b4e5c5e780cb3777f6f5456c42da9e14247278"
    );
    // the committed encapsulation (random ephemeral key) still opens to the request
    let server = ProgramServer::new(&program_keys()).unwrap();
    let wire = unhex(&got["request_wire"]);
    let (req, reply) = server.decapsulate(&wire).unwrap();
    assert_eq!(req, request());
    assert_eq!(h(&reply.request_hash()), got["request_hash"]);
    for i in [0, 1, 7, 8, 20, 39, 40, wire.len() / 2, wire.len() - 1] {
        let mut bad = wire.clone();
        bad[i] ^= 0x01;
        assert!(
            server.decapsulate(&bad).is_err(),
            "flipped byte {i} of rust.json request_wire accepted"
        );
    }
}

#[test]
fn typescript_request_opens_in_rust() {
    let ts = read("ts.json");
    let rust = read("rust.json");
    assert_eq!(
        ts["ohttp_keys"], rust["ohttp_keys"],
        "ts.json was made for another key configuration"
    );
    let server = ProgramServer::new(&program_keys()).unwrap();
    let wire = unhex(&ts["request_wire"]);
    let (req, reply) = server.decapsulate(&wire).unwrap();
    let expected = request_from_json(&ts["request"]);
    assert_eq!(req, expected);
    // the TypeScript Binary HTTP encoding is byte for byte the Rust one, so both sides hash alike
    let bhttp = expected.to_bhttp().unwrap();
    assert_eq!(h(&bhttp), ts["request_bhttp"]);
    assert_eq!(h(&reply.request_hash()), ts["request_hash"]);
    assert_eq!(
        Request::from_bhttp(&unhex(&ts["request_bhttp"])).unwrap(),
        expected
    );
    // and the SDK's response sealed on that request (its own server side) matches Rust's
    // reading of the Binary HTTP response it decodes
    assert_eq!(
        Response::from_bhttp(&unhex(&ts["response_bhttp"]))
            .unwrap()
            .status,
        ts["response"]["status"].as_u64().unwrap() as u16
    );
    for i in [0, 3, 8, 39, 40, wire.len() - 1] {
        let mut bad = wire.clone();
        bad[i] ^= 0x80;
        assert!(
            server.decapsulate(&bad).is_err(),
            "flipped byte {i} of ts.json request_wire accepted"
        );
    }
}

#[test]
fn typescript_receipt_and_certificate_verify_in_rust() {
    let ts = read("ts.json");
    let receipt: SignedReceipt = serde_json::from_value(ts["receipt"].clone()).unwrap();
    receipt.verify_signature().unwrap();
    assert_eq!(format!("{:#x}", receipt.worker), ts["receipt_worker"]);
    assert_eq!(
        format!("{}", receipt.signing_hash()),
        ts["receipt_signing_hash"]
    );
    let mut tampered = receipt.clone();
    tampered.cpu_micros += 1;
    assert!(tampered.verify_signature().is_err());
    let mut flipped = receipt;
    flipped.signature[10] ^= 1;
    assert!(flipped.verify_signature().is_err());

    let cert: KeyCertificate = serde_json::from_value(ts["key_certificate"].clone()).unwrap();
    let keys = unhex(&ts["ohttp_keys"]);
    let kms = cert.verify(&keys, cert.not_after - 1).unwrap();
    assert_eq!(format!("{kms:#x}"), ts["kms"]);
    let mut other = keys.clone();
    other[5] ^= 1;
    assert!(cert.verify(&other, cert.not_after - 1).is_err());
    assert!(cert.verify(&keys, cert.not_after + 1).is_err());
    let mut t = cert;
    t.epoch += 1;
    assert!(t.verify(&keys, t.not_after - 1).is_err());
}
