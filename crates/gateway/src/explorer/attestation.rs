//! A worker's attestation for the explorer's "verify" button: the evidence it registered
//! with (from the `registerWorker` calldata), the Intel collateral the page needs to verify
//! a quote in the browser, and gateway-side verification (`pith-attest`) of evidence the
//! browser cannot check. Nothing here is trusted by the page beyond what it verifies.

use super::*;

/// `GET /explorer/api/workers/{address}/attestation`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attestation {
    /// The worker.
    pub worker: Address,
    /// Platform text id (from the Registry record).
    pub platform: String,
    /// Platform numeric id.
    pub platform_id: u8,
    /// The evidence bytes posted with the registration (from the `registerWorker` calldata,
    /// keccak-checked against the registered hash), `0x`-hex.
    pub evidence: String,
    /// Registered `keccak256(evidence)`.
    pub evidence_hash: B256,
    /// Registered measurement hash.
    pub measurement_hash: B256,
    /// Registered TCB status code.
    pub tcb_status: u8,
    /// The network's development CA certificate (PEM) for simulated evidence, when the
    /// gateway was given it. It comes from the gateway, so a check against it trusts the
    /// gateway for the CA (the simulated platform is never a TEE in any case).
    pub dev_ca_pem: Option<String>,
    /// The worker's X25519 key-transport public key, `0x`-hex, as the worker reports it at
    /// `/v1/worker/info` (`null` when it has no URL or does not answer in 2 s). Untrusted: the
    /// page checks it through the evidence's `report_data` binding (docs/protocol.md
    /// "Identity binding"), which no other key satisfies.
    pub enc_public_key: Option<String>,
    /// Chain id and Registry address, so the page can read the record itself.
    pub chain_id: u64,
    /// The Registry.
    pub registry: Address,
}

/// `POST /explorer/api/verify-evidence` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyRequest {
    /// Platform text id; detected from the bytes when absent.
    pub platform: Option<String>,
    /// The evidence, `0x`-hex.
    pub evidence: String,
}

/// Why evidence did not verify.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VerdictError {
    /// pith-attest error class (docs/protocol.md, "Error classes").
    pub class: String,
    /// Explanation.
    pub message: String,
}

/// `POST /explorer/api/verify-evidence` answer (a verdict, `200` for valid and invalid alike).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewayVerdict {
    /// Valid.
    pub ok: bool,
    /// Platform text id, `null` when not recognised.
    pub platform: Option<String>,
    /// Always `gateway`: the page labels the result so.
    pub verified_by: String,
    /// Measurement hash of valid evidence.
    pub measurement_hash: Option<B256>,
    /// `report_data` of valid evidence, `0x`-hex.
    pub report_data: Option<String>,
    /// Intel TCB status name of valid evidence.
    pub tcb_status: Option<String>,
    /// Why invalid evidence failed.
    pub error: Option<VerdictError>,
    /// Unix seconds of the verification instant.
    pub at: u64,
}

fn dev_ca_pem(bytes: &[u8]) -> String {
    if bytes.starts_with(b"-----BEGIN") {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// A worker's registry record and the evidence it registered with.
async fn registered(
    state: &AppState,
    address: &str,
) -> Result<(Address, crate::chain::ChainWorker, Vec<u8>), Failure> {
    let address: Address = address
        .parse()
        .map_err(|_| bad("not a 20-byte 0x-hex address"))?;
    let cw = state.chain.worker(address).await?;
    if cw.operator == Address::ZERO {
        return Err(Failure::new(
            ErrorKind::NotFound,
            format!("worker {address} was never registered"),
        ));
    }
    let Some(evidence) = state
        .chain
        .registered_evidence(address, cw.evidence_hash)
        .await?
    else {
        return Err(Failure::new(
            ErrorKind::NotFound,
            format!(
                "no registerWorker call with evidence hash {} found for {address}",
                cw.evidence_hash
            ),
        ));
    };
    Ok((address, cw, evidence))
}

/// `GET /explorer/api/workers/{address}/collateral`: the Intel collateral (PCS files) for a
/// worker's registered SGX/TDX evidence, from the gateway's collateral source, so the page
/// can verify the quote in the browser. The collateral is signed by Intel; the gateway is
/// not trusted for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntelCollateralFiles {
    /// PCS `tcb` response (`{"tcbInfo":..,"signature":..}`), as served.
    pub tcb_info: String,
    /// PCS `qe/identity` response, as served.
    pub qe_identity: String,
    /// TCB signing certificate then root (PEM).
    pub tcb_signing_chain: String,
    /// PCK CRL (DER, 0x-hex).
    pub pck_crl: String,
    /// PCK CRL issuer chain (PEM), when known.
    pub pck_crl_issuer_chain: Option<String>,
    /// Root CA CRL (DER, 0x-hex).
    pub root_ca_crl: String,
}

pub(crate) async fn collateral(
    State(state): S,
    Path(address): Path<String>,
) -> Result<Response, Failure> {
    let (address, _, evidence) = registered(&state, &address).await?;
    let platform = pith_attest::detect::platform(&evidence)
        .filter(|p| matches!(p, pith_attest::Platform::Sgx | pith_attest::Platform::Tdx))
        .ok_or_else(|| {
            Failure::new(
                ErrorKind::NotFound,
                format!("worker {address}'s evidence is not an Intel quote"),
            )
        })?;
    let source = state.config.collateral.clone();
    let now = time::OffsetDateTime::now_utc();
    let c = tokio::task::spawn_blocking(move || {
        source.collateral(&pith_attest::Evidence::new(platform, evidence), now)
    })
    .await?
    .map_err(|e| {
        Failure::new(
            ErrorKind::NotFound,
            format!("no collateral for worker {address}: {e}"),
        )
    })?;
    let text = |b: Option<Vec<u8>>, what: &str| -> Result<String, Failure> {
        let b = b.ok_or_else(|| {
            Failure::new(
                ErrorKind::NotFound,
                format!("the collateral source has no {what}"),
            )
        })?;
        String::from_utf8(b)
            .map_err(|_| Failure::new(ErrorKind::NotFound, format!("{what} is not text")))
    };
    let der = |b: Option<Vec<u8>>, what: &str| -> Result<String, Failure> {
        b.map(|b| format!("0x{}", hex::encode(b))).ok_or_else(|| {
            Failure::new(
                ErrorKind::NotFound,
                format!("the collateral source has no {what}"),
            )
        })
    };
    let files = IntelCollateralFiles {
        tcb_info: text(c.tcb_info, "TCB info")?,
        qe_identity: text(c.qe_identity, "QE identity")?,
        tcb_signing_chain: text(c.tcb_signing_chain, "TCB signing chain")?,
        pck_crl: der(c.pck_crl, "PCK CRL")?,
        pck_crl_issuer_chain: c
            .pck_crl_issuer_chain
            .and_then(|b| String::from_utf8(b).ok()),
        root_ca_crl: der(c.root_ca_crl, "root CA CRL")?,
    };
    Ok(axum::Json(files).into_response())
}

pub(crate) async fn attestation(
    State(state): S,
    Path(address): Path<String>,
) -> Result<Response, Failure> {
    let (address, cw, evidence) = registered(&state, &address).await?;
    let d = state.chain.deployment();
    let enc_public_key = match state.workers.entry(address).and_then(|e| e.url) {
        Some(url) => worker_enc_key(&state, address, &url).await,
        None => None,
    };
    Ok(axum::Json(Attestation {
        worker: address,
        platform: crate::workers::platform_name(cw.platform).to_string(),
        platform_id: cw.platform,
        evidence: format!("0x{}", hex::encode(evidence)),
        evidence_hash: cw.evidence_hash,
        measurement_hash: cw.measurement_hash,
        tcb_status: cw.tcb_status,
        dev_ca_pem: state.config.dev_ca.as_deref().map(dev_ca_pem),
        enc_public_key,
        chain_id: d.chain_id,
        registry: d.contracts.registry,
    })
    .into_response())
}

/// The X25519 key a worker reports at `/v1/worker/info`, when its answer names it.
async fn worker_enc_key(state: &AppState, address: Address, url: &str) -> Option<String> {
    let u = format!("{}{}", url.trim_end_matches('/'), pith_api::worker::INFO);
    let resp = state
        .http
        .get(&u)
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let info: pith_api::worker::WorkerInfo =
        serde_json::from_slice(&resp.bytes().await.ok()?).ok()?;
    (info.address == address).then(|| format!("0x{}", hex::encode(info.enc_public_key)))
}

pub(crate) async fn verify_evidence(
    State(state): S,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Failure> {
    // Hex doubles the size; allow the JSON around it.
    let max_body = MAX_EVIDENCE_BYTES.saturating_mul(2).saturating_add(1024);
    let bytes = crate::routes::read_body(&headers, body, max_body).await?;
    let req: VerifyRequest =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("verify-evidence JSON: {e}")))?;
    let hex_str = req
        .evidence
        .strip_prefix("0x")
        .ok_or_else(|| bad("evidence must be 0x-hex"))?;
    let evidence = hex::decode(hex_str).map_err(|_| bad("evidence is not hex"))?;
    if evidence.is_empty() {
        return Err(bad("empty evidence"));
    }
    if evidence.len() > MAX_EVIDENCE_BYTES {
        return Err(Failure::new(
            ErrorKind::TooLarge,
            format!("evidence larger than {MAX_EVIDENCE_BYTES} bytes"),
        ));
    }
    let platform = match req.platform.as_deref() {
        Some(p) => Some(
            p.parse::<pith_attest::Platform>()
                .map_err(|_| bad(format!("unknown platform {p:?}")))?,
        ),
        None => pith_attest::detect::platform(&evidence),
    };
    let dev_ca = state.config.dev_ca.clone();
    let source = state.config.collateral.clone();
    let now = time::OffsetDateTime::now_utc();
    let at = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    let verdict = tokio::task::spawn_blocking(move || {
        let Some(platform) = platform else {
            return GatewayVerdict {
                ok: false,
                platform: None,
                verified_by: "gateway".into(),
                measurement_hash: None,
                report_data: None,
                tcb_status: None,
                error: Some(VerdictError {
                    class: "malformed".into(),
                    message: "the evidence format is not recognised".into(),
                }),
                at,
            };
        };
        let mut options = pith_attest::VerifyOptions::default();
        options.dev_ca = dev_ca;
        let ev = pith_attest::Evidence::new(platform, evidence);
        // Without collateral from the source, Intel and AMD evidence is `missing_collateral`.
        let collateral = source.collateral(&ev, now).unwrap_or_default();
        match pith_attest::verify(&ev, &collateral, &options, now) {
            Ok(v) => GatewayVerdict {
                ok: true,
                platform: Some(platform.as_str().into()),
                verified_by: "gateway".into(),
                measurement_hash: Some(B256::from(pith_attest::measurement_hash(&v))),
                report_data: v.report_data().map(|r| format!("0x{}", hex::encode(r))),
                tcb_status: v.tcb_status().map(|t| t.as_str().to_string()),
                error: None,
                at,
            },
            Err(r) => GatewayVerdict {
                ok: false,
                platform: r.platform.map(|p| p.as_str().to_string()),
                verified_by: "gateway".into(),
                measurement_hash: None,
                report_data: None,
                tcb_status: None,
                error: Some(VerdictError {
                    class: r.error.class().as_str().into(),
                    message: r.error.message().into(),
                }),
                at,
            },
        }
    })
    .await?;
    Ok(axum::Json(verdict).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_dev_ca_becomes_pem() {
        let pem = dev_ca_pem(&[1, 2, 3]);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\nAQID\n"));
        assert_eq!(
            dev_ca_pem(b"-----BEGIN CERTIFICATE-----\nX\n"),
            "-----BEGIN CERTIFICATE-----\nX\n"
        );
    }
}
