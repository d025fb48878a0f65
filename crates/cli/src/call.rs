//! `pith call PROGRAM_ID`: fetch the program's certified key configuration from the gateway,
//! check the certificate against the Registry's KMS committee, encrypt the request as
//! Oblivious HTTP, send it through the gateway, decrypt the answer and verify the receipt
//! against this exact exchange and the chain.

use std::path::PathBuf;
use std::process::ExitCode;

use alloy::primitives::{Address, B256};
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use pith_api::{gateway, headers, media};
use pith_crypto::certify::KeyCertificate;
use pith_crypto::envelope::{ClientSession, Request, Response};
use pith_crypto::receipt::SignedReceipt;
use serde_json::json;

use crate::network::{Http, NetOpts, Network, now_secs, route};
use crate::trust::{self, Check, Exchange};

/// Seconds a request stays valid (its `pith-expiry`).
pub const REQUEST_TTL_SECS: u64 = 60;

/// Arguments of `pith call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// Program id (decimal or 0x-hex).
    pub program_id: String,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Path and query.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Request header `'Name: value'` (repeatable).
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// Request body: a string, or @FILE to read a file.
    #[arg(long)]
    pub body: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Archive the receipt with the worker's evidence, collateral and the chain facts in DIR
    /// (for `pith verify --offline DIR`).
    #[arg(long)]
    pub save: Option<PathBuf>,
    #[command(flatten)]
    pub net: NetOpts,
}

/// Parse a program id: decimal (`7`) or 0x-hex (up to 32 bytes).
pub fn parse_program_id(s: &str) -> Result<B256> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x") {
        let bytes = hex::decode(if h.len() % 2 == 1 {
            format!("0{h}")
        } else {
            h.to_string()
        })
        .with_context(|| format!("program id {s:?} is not hex"))?;
        if bytes.len() > 32 {
            bail!("program id {s:?} is longer than 32 bytes");
        }
        let mut out = [0u8; 32];
        out[32 - bytes.len()..].copy_from_slice(&bytes);
        return Ok(B256::from(out));
    }
    let n: alloy::primitives::U256 = s
        .parse()
        .with_context(|| format!("program id {s:?} is not a number"))?;
    Ok(B256::from(n))
}

/// Program id as the hex the routes use.
pub fn id_hex(id: B256) -> String {
    format!("{id}")
}

/// A program's certified key configuration.
#[derive(Clone)]
pub struct ProgramKey {
    /// `application/ohttp-keys` body.
    pub ohttp_keys: Vec<u8>,
    /// Its certificate.
    pub certificate: KeyCertificate,
    /// The KMS member that signed it.
    pub kms: Address,
}

/// Fetch `/v1/programs/{id}/ohttp-keys` and check the certificate against the Registry's KMS
/// committee.
pub async fn fetch_program_key(net: &Network, program_id: B256) -> Result<ProgramKey> {
    let url = net.url(&route(
        gateway::PROGRAM_OHTTP_KEYS,
        "id",
        &id_hex(program_id),
    ));
    let answer = net.http.get(&url).await?;
    let cert_header = answer
        .header(headers::KEY_CERTIFICATE)
        .ok_or_else(|| anyhow!("{url}: no {} header", headers::KEY_CERTIFICATE))?;
    let certificate: KeyCertificate = serde_json::from_slice(&pith_api::from_b64url(cert_header)?)
        .with_context(|| format!("{url}: malformed key certificate"))?;
    let committee = net
        .contracts()?
        .registry
        .kms_members()
        .await
        .context("reading the KMS committee")?;
    let kms = trust::check_key_certificate(
        &certificate,
        &answer.body,
        program_id,
        net.chain_id(),
        net.deployment.contracts.registry,
        &committee,
        now_secs(),
    )
    .map_err(|e| anyhow!("program {program_id}: {e}"))?;
    Ok(ProgramKey {
        ohttp_keys: answer.body,
        certificate,
        kms,
    })
}

/// A random 16-byte nonce.
pub fn nonce() -> Result<[u8; 16]> {
    let mut n = [0u8; 16];
    getrandom::getrandom(&mut n).map_err(|e| anyhow!("no randomness: {e}"))?;
    Ok(n)
}

/// The outcome of one encrypted invocation.
pub struct CallOutcome {
    /// The decrypted response.
    pub response: Response,
    /// The receipt.
    pub receipt: SignedReceipt,
    /// Checks of the receipt against the exchange and the chain.
    pub checks: Vec<Check>,
}

/// Send one encrypted request and verify the receipt against it.
pub async fn invoke(
    net: &Network,
    program_id: B256,
    key: &ProgramKey,
    request: &Request,
) -> Result<CallOutcome> {
    let (wire, session) =
        ClientSession::encapsulate(&key.ohttp_keys, request).context("encrypting the request")?;
    let request_hash = B256::from(session.request_hash());
    let url = net.url(&route(gateway::PROGRAM_INVOKE, "id", &id_hex(program_id)));
    let answer = net
        .http
        .send_body(reqwest::Method::POST, &url, media::OHTTP_REQ, wire)
        .await?;
    let receipt_header = answer
        .header(headers::RECEIPT)
        .ok_or_else(|| anyhow!("{url}: the answer carries no {} header", headers::RECEIPT))?;
    let receipt: SignedReceipt = serde_json::from_slice(&pith_api::from_b64url(receipt_header)?)
        .with_context(|| format!("{url}: malformed receipt"))?;
    let worker_header = answer
        .header(headers::WORKER)
        .and_then(|w| w.parse::<Address>().ok());
    let (response, response_hash) = session
        .decapsulate(&answer.body)
        .context("decrypting the response (tampered with, or not from the program's key)")?;
    let x = Exchange {
        program_id,
        chain_id: net.chain_id(),
        registry: net.deployment.contracts.registry,
        request_hash,
        response_hash: B256::from(response_hash),
        worker_header,
    };
    let mut checks = trust::check_receipt_exchange(&receipt, &x);
    checks.extend(chain_checks(net, &receipt).await?);
    Ok(CallOutcome {
        response,
        receipt,
        checks,
    })
}

/// `Programs.codeHashOf(program_id)`: the program's current code hash on chain.
pub async fn code_hash_of(net: &Network, program_id: B256) -> Result<B256> {
    net.contracts()?
        .programs
        .raw()
        .codeHashOf(alloy::primitives::U256::from_be_bytes(program_id.0))
        .call()
        .await
        .context("Programs.codeHashOf")
}

/// The worker is active in the Registry and the code hash is the program's.
pub async fn chain_checks(net: &Network, r: &SignedReceipt) -> Result<Vec<Check>> {
    let c = net.contracts()?;
    let active = c.registry.is_active_worker(r.worker).await?;
    let code = code_hash_of(net, r.program_id).await?;
    Ok(vec![
        Check {
            name: "worker_registered".into(),
            ok: active,
            detail: format!("Registry.isActiveWorker({}) = {active}", r.worker),
        },
        Check {
            name: "code_hash".into(),
            ok: code == r.code_hash,
            detail: format!(
                "receipt code {} / Programs.codeHashOf = {code}",
                r.code_hash
            ),
        },
    ])
}

/// Build the plaintext request from the command-line pieces.
pub fn build_request(
    method: &str,
    path: &str,
    header_args: &[String],
    body: Option<&str>,
) -> Result<Request> {
    let mut headers = Vec::new();
    for h in header_args {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| anyhow!("--header {h:?}: expected 'Name: value'"))?;
        let k = k.trim().to_ascii_lowercase();
        if k.is_empty() || k.starts_with("pith-") {
            bail!("--header {h:?}: empty or reserved (pith-*) header name");
        }
        headers.push((k, v.trim().to_string()));
    }
    let body = match body {
        None => Vec::new(),
        Some(b) => match b.strip_prefix('@') {
            Some(file) => std::fs::read(file).with_context(|| format!("--body @{file}"))?,
            None => b.as_bytes().to_vec(),
        },
    };
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Ok(Request::new(
        &method.to_ascii_uppercase(),
        &path,
        headers,
        body,
        nonce()?,
        now_secs() + REQUEST_TTL_SECS,
    ))
}

/// The JSON `pith call --json` prints.
pub fn outcome_json(o: &CallOutcome) -> serde_json::Value {
    let headers: serde_json::Map<String, serde_json::Value> = o
        .response
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut v = json!({
        "status": o.response.status,
        "headers": headers,
        "receipt": o.receipt,
        "verified": trust::all_ok(&o.checks),
        "checks": o.checks,
    });
    match std::str::from_utf8(&o.response.body) {
        Ok(s) => v["body"] = json!(s),
        Err(_) => v["body_base64"] = json!(pith_api::b64url(&o.response.body)),
    }
    v
}

async fn call(args: CallArgs) -> Result<bool> {
    let net = args.net.resolve(false).await?;
    let program_id = parse_program_id(&args.program_id)?;
    let key = fetch_program_key(&net, program_id).await?;
    let request = build_request(
        &args.method,
        &args.path,
        &args.headers,
        args.body.as_deref(),
    )?;
    let outcome = invoke(&net, program_id, &key, &request).await?;
    let ok = trust::all_ok(&outcome.checks);
    if let Some(dir) = &args.save {
        crate::verify::save_archive(&net, dir, Some(&outcome.receipt), outcome.receipt.worker)
            .await?;
    }
    if args.json {
        println!("{}", outcome_json(&outcome));
    } else {
        println!("HTTP {}", outcome.response.status);
        for (k, v) in &outcome.response.headers {
            println!("{k}: {v}");
        }
        println!();
        match std::str::from_utf8(&outcome.response.body) {
            Ok(s) => print!(
                "{s}{}",
                if s.ends_with('\n') || s.is_empty() {
                    ""
                } else {
                    "\n"
                }
            ),
            Err(_) => println!("<{} bytes of binary body>", outcome.response.body.len()),
        }
        eprintln!(
            "receipt: worker {} code {} cpu {} us {}",
            outcome.receipt.worker,
            outcome.receipt.code_hash,
            outcome.receipt.cpu_micros,
            if ok { "verified" } else { "NOT VERIFIED" }
        );
        for c in outcome.checks.iter().filter(|c| !c.ok) {
            eprintln!("  failed {}: {}", c.name, c.detail);
        }
    }
    Ok(ok)
}

/// Run `pith call`: exit 0 when the receipt verified, 1 otherwise.
pub fn run(args: CallArgs) -> ExitCode {
    crate::verify::run_checked(call(args))
}

/// HTTP client for commands that do not resolve a full network.
pub fn http() -> Result<Http> {
    Http::new()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn program_ids() {
        assert_eq!(parse_program_id("1").unwrap(), B256::with_last_byte(1));
        assert_eq!(parse_program_id("0x1").unwrap(), B256::with_last_byte(1));
        assert_eq!(parse_program_id("0x0102").unwrap()[30..], [1, 2]);
        assert!(parse_program_id("x").is_err());
        assert!(parse_program_id(&format!("0x{}", "00".repeat(33))).is_err());
    }

    #[test]
    fn requests() {
        let r = build_request(
            "post",
            "echo?x=1",
            &["Content-Type: text/plain".into()],
            Some("hi"),
        )
        .unwrap();
        assert_eq!(r.method(), "POST");
        assert_eq!(r.path(), "/echo?x=1");
        assert_eq!(
            r.headers(),
            &[("content-type".to_string(), "text/plain".to_string())]
        );
        assert_eq!(r.body(), b"hi");
        assert!(build_request("GET", "/", &["nocolon".into()], None).is_err());
        assert!(build_request("GET", "/", &["pith-nonce: 1".into()], None).is_err());
        let a = build_request("GET", "/", &[], None).unwrap();
        let b = build_request("GET", "/", &[], None).unwrap();
        assert_ne!(a.nonce(), b.nonce());
    }
}
