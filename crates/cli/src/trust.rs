//! The checks behind `pith call` and `pith verify`, as pure functions over facts (so that
//! `pith verify --offline` runs exactly the same checks on an archive as the online command
//! runs on facts read from the chain).
//!
//! Chain of trust of a receipt (docs/protocol.md, "Verifying a receipt"):
//! 1. the receipt's EIP-712 signature recovers the worker it names;
//! 2. the worker is registered in the Registry (not revoked; registration covered the
//!    receipt's time);
//! 3. the evidence posted with the registration hashes to the registered evidence hash;
//! 4. the evidence verifies to the platform vendor's root (or the network's development CA
//!    for the simulated platform);
//! 5. its measurement hash, platform and TCB status equal the registered ones, and the
//!    Registry allows the measurement for the worker role on an enabled platform;
//! 6. its `report_data` binds the worker's address (and key-transport key) to this chain
//!    and Registry;
//! 7. the receipt's code hash is (or was) the program's code hash in Programs.

use alloy::primitives::{Address, B256};
use pith_attest::{Evidence, Platform, VerifyOptions};
use pith_crypto::certify::KeyCertificate;
use pith_crypto::receipt::SignedReceipt;
use serde::{Deserialize, Serialize};

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable name.
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// What was compared, or why it failed.
    pub detail: String,
}

impl Check {
    fn new(name: &str, ok: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok,
            detail: detail.into(),
        }
    }
}

/// True when every check passed (and there is at least one).
pub fn all_ok(checks: &[Check]) -> bool {
    !checks.is_empty() && checks.iter().all(|c| c.ok)
}

/// Check a program key certificate: it covers exactly `ohttp_keys`, names this program,
/// chain and Registry, is unexpired, and is signed by a member of the KMS committee.
/// Returns the signing KMS address.
pub fn check_key_certificate(
    cert: &KeyCertificate,
    ohttp_keys: &[u8],
    program_id: B256,
    chain_id: u64,
    registry: Address,
    committee: &[Address],
    now: u64,
) -> Result<Address, String> {
    if cert.program_id != program_id {
        return Err(format!(
            "the key certificate is for program {}, not {program_id}",
            cert.program_id
        ));
    }
    if cert.chain_id != chain_id || cert.verifying_contract != registry {
        return Err(format!(
            "the key certificate is for chain {} / Registry {}, this network is chain {chain_id} / Registry {registry}",
            cert.chain_id, cert.verifying_contract
        ));
    }
    let signer = cert
        .verify(ohttp_keys, now)
        .map_err(|e| format!("the key certificate does not verify: {e}"))?;
    if !committee.contains(&signer) {
        return Err(format!(
            "the key certificate is signed by {signer}, which is not in the Registry's KMS committee"
        ));
    }
    Ok(signer)
}

/// What a caller knows about its own exchange, to hold a receipt against.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Program called.
    pub program_id: B256,
    /// Chain id.
    pub chain_id: u64,
    /// Registry.
    pub registry: Address,
    /// keccak256 of the Binary HTTP request the caller sent.
    pub request_hash: B256,
    /// keccak256 of the Binary HTTP response the caller decrypted.
    pub response_hash: B256,
    /// The worker the gateway said ran it (`pith-worker`), when given.
    pub worker_header: Option<Address>,
}

/// Check a receipt against the caller's own exchange (signature and binding to exactly this
/// request and response).
pub fn check_receipt_exchange(r: &SignedReceipt, x: &Exchange) -> Vec<Check> {
    let mut out = vec![receipt_signature(r)];
    out.push(Check::new(
        "receipt_program",
        r.program_id == x.program_id,
        format!("receipt program {} / called {}", r.program_id, x.program_id),
    ));
    out.push(Check::new(
        "receipt_domain",
        r.chain_id == x.chain_id && r.verifying_contract == x.registry,
        format!(
            "receipt chain {} Registry {} / network chain {} Registry {}",
            r.chain_id, r.verifying_contract, x.chain_id, x.registry
        ),
    ));
    out.push(Check::new(
        "request_hash",
        r.request_hash == x.request_hash,
        format!("receipt {} / sent {}", r.request_hash, x.request_hash),
    ));
    out.push(Check::new(
        "response_hash",
        r.response_hash == x.response_hash,
        format!("receipt {} / received {}", r.response_hash, x.response_hash),
    ));
    if let Some(w) = x.worker_header {
        out.push(Check::new(
            "receipt_worker",
            r.worker == w,
            format!("receipt {} / gateway says {w}", r.worker),
        ));
    }
    out
}

fn receipt_signature(r: &SignedReceipt) -> Check {
    match r.verify_signature() {
        Ok(()) => Check::new(
            "receipt_signature",
            true,
            format!("signed by worker {}", r.worker),
        ),
        Err(e) => Check::new("receipt_signature", false, e.to_string()),
    }
}

/// The Registry's record of a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// Operator (zero when unknown).
    pub operator: Address,
    /// Platform id.
    pub platform: u8,
    /// TCB status code.
    pub tcb_status: u8,
    /// Expiry, unix seconds.
    pub expiry: u64,
    /// Revoked.
    pub revoked: bool,
    /// Measurement hash.
    pub measurement_hash: B256,
    /// Evidence hash.
    pub evidence_hash: B256,
}

/// The program facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramFacts {
    /// Program id.
    pub program_id: B256,
    /// Current code hash.
    pub code_hash: B256,
    /// Every code hash the program has had (registration and upgrades), oldest first.
    pub code_history: Vec<B256>,
}

/// The chain facts a verification uses; `pith verify --save` archives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// Chain id.
    pub chain_id: u64,
    /// Registry.
    pub registry: Address,
    /// Block the facts were read at.
    pub block: u64,
    /// Unix time the facts were read.
    pub read_at: u64,
    /// The worker.
    pub worker: Address,
    /// Its Registry record.
    pub record: WorkerRecord,
    /// The registration transaction the evidence was taken from.
    pub registration_tx: Option<B256>,
    /// Registry.isAllowedMeasurement(platform, worker role, record.measurement_hash).
    pub measurement_allowed: bool,
    /// Registry.platformConfig(platform).enabled.
    pub platform_enabled: bool,
    /// Registry.platformConfig(platform).maxTcbStatus.
    pub max_tcb_status: u8,
    /// The worker's X25519 key-transport key (bound in its report_data), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enc_public_key: Option<String>,
    /// The program, when verifying a receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<ProgramFacts>,
}

/// Platform by on-chain id.
pub fn platform_of(id: u8) -> Option<Platform> {
    Platform::ALL.into_iter().find(|p| p.id() == id)
}

/// Run the chain-of-trust checks (see the module docs) on a receipt (optional: a bare
/// worker is verified without it), the worker's evidence bytes, collateral and facts.
pub fn check_chain_of_trust(
    receipt: Option<&SignedReceipt>,
    evidence: Option<&[u8]>,
    collateral: &pith_attest::Collateral,
    dev_ca: Option<Vec<u8>>,
    facts: &Facts,
    now: time::OffsetDateTime,
) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some(r) = receipt {
        out.push(receipt_signature(r));
        out.push(Check::new(
            "receipt_domain",
            r.chain_id == facts.chain_id
                && r.verifying_contract == facts.registry
                && r.worker == facts.worker,
            format!(
                "receipt chain {} Registry {} worker {} / facts chain {} Registry {} worker {}",
                r.chain_id,
                r.verifying_contract,
                r.worker,
                facts.chain_id,
                facts.registry,
                facts.worker
            ),
        ));
    }
    let rec = &facts.record;
    let known = rec.operator != Address::ZERO;
    let covered = match receipt {
        Some(r) => r.timestamp <= rec.expiry,
        None => facts.read_at <= rec.expiry,
    };
    out.push(Check::new(
        "worker_registered",
        known && !rec.revoked && covered,
        if !known {
            format!("{} is not a registered worker", facts.worker)
        } else if rec.revoked {
            format!("{} was revoked", facts.worker)
        } else if !covered {
            format!("registration of {} expired at {}", facts.worker, rec.expiry)
        } else {
            format!("operator {}, registered until {}", rec.operator, rec.expiry)
        },
    ));
    let Some(evidence) = evidence else {
        out.push(Check::new(
            "evidence_hash",
            false,
            "no evidence found for the worker's registration",
        ));
        return out;
    };
    let ev_hash = B256::from(pith_crypto::keccak256(evidence));
    out.push(Check::new(
        "evidence_hash",
        ev_hash == rec.evidence_hash,
        format!(
            "keccak256(evidence) {ev_hash} / registered {}",
            rec.evidence_hash
        ),
    ));
    let Some(platform) = platform_of(rec.platform) else {
        out.push(Check::new(
            "attestation",
            false,
            format!("unknown platform id {}", rec.platform),
        ));
        return out;
    };
    let options = {
        let mut o = VerifyOptions::default();
        o.dev_ca = dev_ca;
        o
    };
    let verified = match pith_attest::verify(
        &Evidence::new(platform, evidence.to_vec()),
        collateral,
        &options,
        now,
    ) {
        Ok(v) => v,
        Err(e) => {
            out.push(Check::new(
                "attestation",
                false,
                format!("{platform} evidence does not verify: {e}"),
            ));
            return out;
        }
    };
    out.push(Check::new(
        "attestation",
        true,
        if platform == Platform::Simulated {
            "simulated evidence verifies to the network's development CA (NOT a TEE)".to_string()
        } else {
            format!("{platform} evidence verifies to the vendor root")
        },
    ));
    let mh = B256::from(pith_attest::measurement_hash(&verified));
    // Platforms without a TCB notion (simulated, Nitro) register status 0 (up to date).
    let tcb = verified.tcb_status().map_or(0, |t| t.code());
    out.push(Check::new(
        "measurement",
        mh == rec.measurement_hash && tcb == rec.tcb_status,
        format!(
            "evidence {mh} tcb {tcb} / registered {} tcb {}",
            rec.measurement_hash, rec.tcb_status
        ),
    ));
    out.push(Check::new(
        "policy",
        facts.measurement_allowed
            && facts.platform_enabled
            && rec.tcb_status <= facts.max_tcb_status,
        format!(
            "measurement allowed: {}, platform {platform} enabled: {}, tcb {} <= {}",
            facts.measurement_allowed, facts.platform_enabled, rec.tcb_status, facts.max_tcb_status
        ),
    ));
    out.push(binding_check(&verified, facts));
    if let Some(r) = receipt.filter(|r| r.model_hash != B256::ZERO) {
        out.push(model_check(&verified, r));
    }
    if let Some(r) = receipt {
        out.push(match &facts.program {
            Some(p) if p.program_id == r.program_id => Check::new(
                "code_hash",
                p.code_hash == r.code_hash || p.code_history.contains(&r.code_hash),
                if p.code_hash == r.code_hash {
                    format!("program {} runs code {}", p.program_id, p.code_hash)
                } else {
                    format!(
                        "receipt code {} / program code {} (history {:?})",
                        r.code_hash, p.code_hash, p.code_history
                    )
                },
            ),
            _ => Check::new(
                "code_hash",
                false,
                format!("program {} not found", r.program_id),
            ),
        });
    }
    out
}

fn binding_check(verified: &pith_attest::Verified, facts: &Facts) -> Check {
    let Some(rd) = verified.report_data() else {
        return Check::new("binding", false, "the evidence carries no report_data");
    };
    let Some(enc) = facts.enc_public_key.as_deref() else {
        return Check::new(
            "binding",
            false,
            "the worker's key-transport key is unknown, so its report_data cannot be checked",
        );
    };
    let enc: [u8; 32] = match hex::decode(enc.trim_start_matches("0x"))
        .ok()
        .and_then(|b| b.try_into().ok())
    {
        Some(k) => k,
        None => return Check::new("binding", false, "malformed key-transport key"),
    };
    // Bytes 32..64 name the model the worker serves (zero: none); the rest binds identity.
    let model = pith_api::binding::bound_model_hash(rd);
    let want = pith_api::binding::report_data_with_model(
        pith_api::binding::WORKER_REPORT_TAG,
        facts.worker,
        &enc,
        facts.chain_id,
        facts.registry,
        model.as_ref(),
    );
    Check::new(
        "binding",
        rd == want.as_slice(),
        if rd == want.as_slice() {
            let serving = model.map_or_else(
                || "no model".to_owned(),
                |m| format!("model sha256 {}", hex::encode(m)),
            );
            format!(
                "report_data binds worker {} to chain {} / Registry {}, {serving}",
                facts.worker, facts.chain_id, facts.registry
            )
        } else {
            "report_data does not bind this worker, chain and Registry".to_string()
        },
    )
}

/// A receipt that names a model (`modelHash` non-zero) must come from a worker whose
/// evidence binds that model.
fn model_check(verified: &pith_attest::Verified, r: &SignedReceipt) -> Check {
    let bound = verified
        .report_data()
        .and_then(pith_api::binding::bound_model_hash)
        .map(B256::from);
    match bound {
        Some(m) if m == r.model_hash => Check::new(
            "model",
            true,
            format!("answered by model sha256 {m}, bound in the worker's evidence"),
        ),
        Some(m) => Check::new(
            "model",
            false,
            format!(
                "receipt names model {} / the worker's evidence binds {m}",
                r.model_hash
            ),
        ),
        None => Check::new(
            "model",
            false,
            format!(
                "receipt names model {} but the worker's evidence binds none",
                r.model_hash
            ),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use pith_crypto::envelope::{ClientSession, ProgramServer, Request, Response};
    use pith_crypto::keytree::{MasterKey, ProgramId, address_of};
    use pith_crypto::receipt::{Receipt, ReceiptFields};

    const REGISTRY: Address = Address::repeat_byte(0x42);

    /// A full exchange with pith-crypto: returns the receipt and the caller's view.
    fn exchange() -> (SignedReceipt, Exchange, k256::ecdsa::SigningKey) {
        let program = ProgramId([1; 32]);
        let keys = MasterKey::from_bytes([7; 32], 1)
            .program_keys(&program)
            .unwrap();
        let server = ProgramServer::new(&keys).unwrap();
        let cfg = server.encoded_key_configs().unwrap();
        let req = Request::new("GET", "/?name=x", vec![], vec![], [3; 16], 4_000_000_000);
        let (wire, session) = ClientSession::encapsulate(&cfg, &req).unwrap();
        let (_, reply) = server.decapsulate(&wire).unwrap();
        let request_hash = B256::from(reply.request_hash());
        let resp = Response {
            status: 200,
            headers: vec![],
            body: b"hello, x\n".to_vec(),
        };
        let (wire_res, response_hash) = reply.encapsulate(&resp).unwrap();
        let worker_key = k256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap();
        let worker = address_of(&worker_key);
        let receipt = SignedReceipt::sign(
            ReceiptFields {
                chain_id: 31337,
                verifying_contract: REGISTRY,
                receipt: Receipt {
                    programId: B256::from(program.0),
                    codeHash: B256::repeat_byte(9),
                    requestHash: request_hash,
                    responseHash: B256::from(response_hash),
                    modelHash: B256::ZERO,
                    worker,
                    timestamp: 1_800_000_000,
                    cpuMicros: 1,
                    wallMicros: 2,
                    memoryBytes: 3,
                    egressBytes: 0,
                },
            },
            &worker_key,
        )
        .unwrap();
        let (got, got_hash) = session.decapsulate(&wire_res).unwrap();
        assert_eq!(got.body, b"hello, x\n");
        let x = Exchange {
            program_id: B256::from(program.0),
            chain_id: 31337,
            registry: REGISTRY,
            request_hash: B256::from(pith_crypto::keccak256(&req.to_bhttp().unwrap())),
            response_hash: B256::from(got_hash),
            worker_header: Some(worker),
        };
        (receipt, x, worker_key)
    }

    #[test]
    fn a_genuine_exchange_passes_every_check() {
        let (r, x, _) = exchange();
        let checks = check_receipt_exchange(&r, &x);
        assert!(all_ok(&checks), "{checks:?}");
    }

    #[test]
    fn each_binding_fails_on_its_own() {
        let (r, x, _) = exchange();
        let fails = |x: &Exchange, r: &SignedReceipt| -> Vec<String> {
            check_receipt_exchange(r, x)
                .into_iter()
                .filter(|c| !c.ok)
                .map(|c| c.name)
                .collect()
        };
        let mut y = x.clone();
        y.response_hash = B256::repeat_byte(1);
        assert_eq!(fails(&y, &r), ["response_hash"]);
        let mut y = x.clone();
        y.request_hash = B256::repeat_byte(1);
        assert_eq!(fails(&y, &r), ["request_hash"]);
        let mut y = x.clone();
        y.program_id = B256::repeat_byte(2);
        assert_eq!(fails(&y, &r), ["receipt_program"]);
        let mut y = x.clone();
        y.registry = Address::repeat_byte(1);
        assert_eq!(fails(&y, &r), ["receipt_domain"]);
        let mut y = x.clone();
        y.worker_header = Some(Address::repeat_byte(1));
        assert_eq!(fails(&y, &r), ["receipt_worker"]);
        // A tampered receipt field breaks the signature.
        let mut t = r.clone();
        t.cpu_micros += 1;
        assert_eq!(fails(&x, &t), ["receipt_signature"]);
        assert!(!all_ok(&[]));
    }

    #[test]
    fn key_certificate_checks() {
        let kms = k256::ecdsa::SigningKey::from_slice(&[8; 32]).unwrap();
        let kms_addr = address_of(&kms);
        let pid = B256::repeat_byte(1);
        let keys = b"keys";
        let c = KeyCertificate::issue(
            &kms,
            31337,
            REGISTRY,
            pid,
            1,
            keys,
            Address::repeat_byte(4),
            100,
        )
        .unwrap();
        assert_eq!(
            check_key_certificate(&c, keys, pid, 31337, REGISTRY, &[kms_addr], 50),
            Ok(kms_addr)
        );
        assert!(
            check_key_certificate(&c, keys, pid, 31337, REGISTRY, &[Address::ZERO], 50)
                .unwrap_err()
                .contains("not in the Registry")
        );
        assert!(
            check_key_certificate(&c, keys, B256::ZERO, 31337, REGISTRY, &[kms_addr], 50).is_err()
        );
        assert!(
            check_key_certificate(&c, b"other", pid, 31337, REGISTRY, &[kms_addr], 50).is_err()
        );
        assert!(check_key_certificate(&c, keys, pid, 1, REGISTRY, &[kms_addr], 50).is_err());
        assert!(check_key_certificate(&c, keys, pid, 31337, REGISTRY, &[kms_addr], 101).is_err());
    }

    #[test]
    fn chain_of_trust_with_simulated_evidence() {
        use pith_attest::provider::EvidenceSource;
        use pith_attest::provider::{SimulatedOptions, SimulatedSource};
        let (r, _, worker_key) = exchange();
        let ca = pith_attest::simulated::DevCa::generate(std::time::SystemTime::now()).unwrap();
        let ca_der = ca.cert_der().to_vec();
        let src = SimulatedSource::new(
            ca,
            &SimulatedOptions {
                binary_sha384: Some([1; 48]),
                ..Default::default()
            },
        )
        .unwrap();
        let enc = [4u8; 32];
        let worker = address_of(&worker_key);
        let rd = pith_api::binding::report_data(
            pith_api::binding::WORKER_REPORT_TAG,
            worker,
            &enc,
            31337,
            REGISTRY,
        );
        let evidence = src.quote(&rd).unwrap();
        let verified = pith_attest::verify(
            &Evidence::new(Platform::Simulated, evidence.clone()),
            &Default::default(),
            &{
                let mut o = VerifyOptions::default();
                o.dev_ca = Some(ca_der.clone());
                o
            },
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        let facts = Facts {
            chain_id: 31337,
            registry: REGISTRY,
            block: 10,
            read_at: 1_800_000_000,
            worker,
            record: WorkerRecord {
                operator: Address::repeat_byte(3),
                platform: Platform::Simulated.id(),
                tcb_status: verified.tcb_status().map_or(0, |t| t.code()),
                expiry: 1_900_000_000,
                revoked: false,
                measurement_hash: B256::from(pith_attest::measurement_hash(&verified)),
                evidence_hash: B256::from(pith_crypto::keccak256(&evidence)),
            },
            registration_tx: None,
            measurement_allowed: true,
            platform_enabled: true,
            max_tcb_status: 0,
            enc_public_key: Some(hex::encode(enc)),
            program: Some(ProgramFacts {
                program_id: r.program_id,
                code_hash: r.code_hash,
                code_history: vec![r.code_hash],
            }),
        };
        let now = time::OffsetDateTime::now_utc();
        let run = |f: &Facts, ev: &[u8], ca: Option<Vec<u8>>, r: &SignedReceipt| -> Vec<String> {
            check_chain_of_trust(Some(r), Some(ev), &Default::default(), ca, f, now)
                .into_iter()
                .filter(|c| !c.ok)
                .map(|c| c.name)
                .collect()
        };
        assert!(run(&facts, &evidence, Some(ca_der.clone()), &r).is_empty());
        // Negatives, one at a time.
        let other_ca =
            pith_attest::simulated::DevCa::generate(std::time::SystemTime::now()).unwrap();
        assert_eq!(
            run(&facts, &evidence, Some(other_ca.cert_der().to_vec()), &r),
            ["attestation"]
        );
        let mut ev = evidence.clone();
        let last = ev.len() - 1;
        ev[last] ^= 1;
        assert!(run(&facts, &ev, Some(ca_der.clone()), &r).contains(&"evidence_hash".to_string()));
        let mut f = facts.clone();
        f.measurement_allowed = false;
        assert_eq!(run(&f, &evidence, Some(ca_der.clone()), &r), ["policy"]);
        let mut f = facts.clone();
        f.record.measurement_hash = B256::ZERO;
        assert_eq!(
            run(&f, &evidence, Some(ca_der.clone()), &r),
            ["measurement"]
        );
        let mut f = facts.clone();
        f.record.revoked = true;
        assert_eq!(
            run(&f, &evidence, Some(ca_der.clone()), &r),
            ["worker_registered"]
        );
        let mut f = facts.clone();
        f.enc_public_key = Some(hex::encode([5u8; 32]));
        assert_eq!(run(&f, &evidence, Some(ca_der.clone()), &r), ["binding"]);
        let mut f = facts.clone();
        f.program = Some(ProgramFacts {
            program_id: r.program_id,
            code_hash: B256::ZERO,
            code_history: vec![],
        });
        assert_eq!(run(&f, &evidence, Some(ca_der.clone()), &r), ["code_hash"]);
        // A receipt naming a model is checked against the model the evidence binds.
        let resign = |m: B256| {
            let mut t = r.clone();
            t.model_hash = m;
            t.signature = pith_crypto::receipt::sign_hash(&worker_key, &t.signing_hash())
                .unwrap()
                .to_vec();
            t
        };
        assert_eq!(
            run(
                &facts,
                &evidence,
                Some(ca_der.clone()),
                &resign(B256::repeat_byte(6))
            ),
            ["model"]
        );
        let rd_model = pith_api::binding::report_data_with_model(
            pith_api::binding::WORKER_REPORT_TAG,
            worker,
            &enc,
            31337,
            REGISTRY,
            Some(&[6; 32]),
        );
        let ev_model = src.quote(&rd_model).unwrap();
        let mut fm = facts.clone();
        fm.record.evidence_hash = B256::from(pith_crypto::keccak256(&ev_model));
        assert!(
            run(
                &fm,
                &ev_model,
                Some(ca_der.clone()),
                &resign(B256::repeat_byte(6))
            )
            .is_empty()
        );
        assert_eq!(
            run(
                &fm,
                &ev_model,
                Some(ca_der.clone()),
                &resign(B256::repeat_byte(7))
            ),
            ["model"]
        );
        // A model-serving worker's receipt for a call that used no model names none: fine.
        assert!(run(&fm, &ev_model, Some(ca_der.clone()), &r).is_empty());
        let mut t = r.clone();
        t.timestamp += 1;
        assert_eq!(
            run(&facts, &evidence, Some(ca_der), &t),
            ["receipt_signature"]
        );
    }
}
