//! Certified program keys from the KMS: fetched from `GET /v1/kms/programs/{id}/key`, checked
//! (the certificate matches the key configuration, names this program, this chain and this
//! Registry, is unexpired, and recovers to a current member of the Registry's KMS
//! committee), then cached until [`KEY_CACHE_SECS`] pass or the certificate expires.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use pith_api::kms::{KmsInfo, ProgramKeyInfo};
use pith_api::{ApiError, ErrorBody, ErrorKind};
use pith_crypto::{Address, B256};

use crate::chain::ChainView;

/// How long a checked key is served from the cache before it is fetched again (so a key
/// rotation reaches clients within this time).
pub const KEY_CACHE_SECS: u64 = 60;

/// Keys and KMS identities, from the configured KMS URLs.
#[derive(Debug)]
pub struct KmsKeys {
    urls: Vec<String>,
    http: reqwest::Client,
    cache: Mutex<HashMap<B256, (ProgramKeyInfo, u64)>>,
    infos: Mutex<HashMap<String, Address>>,
}

/// Check a key answer from a KMS against the chain. Returns the KMS address that signed it.
pub fn check_key(
    info: &ProgramKeyInfo,
    program: B256,
    chain_id: u64,
    registry: Address,
    members: &[Address],
    now: u64,
) -> Result<Address, ApiError> {
    let cert = &info.certificate;
    if info.program_id != program || cert.program_id != program {
        return Err(ApiError::new(
            ErrorKind::Unauthorized,
            "key certificate names another program",
        ));
    }
    if cert.chain_id != chain_id || cert.verifying_contract != registry {
        return Err(ApiError::new(
            ErrorKind::Unauthorized,
            "key certificate is for another chain or Registry",
        ));
    }
    let signer = cert.verify(&info.ohttp_keys, now).map_err(|e| {
        ApiError::new(
            ErrorKind::Unauthorized,
            format!("key certificate does not verify: {e}"),
        )
    })?;
    if !members.contains(&signer) {
        return Err(ApiError::new(
            ErrorKind::Unauthorized,
            format!("key certificate signer {signer} is not a KMS committee member"),
        ));
    }
    Ok(signer)
}

impl KmsKeys {
    /// Keys from the KMS nodes at `urls` (tried in order).
    pub fn new(urls: Vec<String>, http: reqwest::Client) -> Self {
        Self {
            urls,
            http,
            cache: Mutex::new(HashMap::new()),
            infos: Mutex::new(HashMap::new()),
        }
    }

    /// The configured KMS URLs.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The checked key of `program`, from the cache or the KMS.
    pub async fn key(
        &self,
        program: B256,
        chain: &ChainView,
        now: u64,
    ) -> Result<ProgramKeyInfo, ApiError> {
        if let Some(k) = self.cached(program, now) {
            return Ok(k);
        }
        if self.urls.is_empty() {
            return Err(ApiError::new(
                ErrorKind::Unavailable,
                "the gateway has no KMS configured",
            ));
        }
        let members = chain
            .kms_members()
            .await
            .map_err(|e| ApiError::new(ErrorKind::Unavailable, format!("chain RPC: {e}")))?;
        let d = chain.deployment();
        let mut last = ApiError::new(ErrorKind::Unavailable, "no KMS answered");
        for url in &self.urls {
            let path = pith_api::kms::PROGRAM_KEY.replace("{id}", &program.to_string());
            match self.fetch(url, &path).await {
                Ok(info) => match check_key(
                    &info,
                    program,
                    d.chain_id,
                    d.contracts.registry,
                    &members,
                    now,
                ) {
                    Ok(_) => {
                        let until = now
                            .saturating_add(KEY_CACHE_SECS)
                            .min(info.certificate.not_after);
                        if let Ok(mut c) = self.cache.lock() {
                            c.insert(program, (info.clone(), until));
                        }
                        return Ok(info);
                    }
                    Err(e) => {
                        tracing::warn!(target: "pith_gateway::kms", kms = %url, program = %program, error = %e, "KMS served a key that does not check");
                        last = e;
                    }
                },
                Err(e) => {
                    // An unknown program is the same answer from every KMS.
                    if matches!(e.kind, ErrorKind::UnknownProgram | ErrorKind::NotFound) {
                        return Err(e);
                    }
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// A still-valid cached key.
    pub fn cached(&self, program: B256, now: u64) -> Option<ProgramKeyInfo> {
        let c = self.cache.lock().ok()?;
        c.get(&program)
            .filter(|(_, until)| now < *until)
            .map(|(k, _)| k.clone())
    }

    async fn fetch(&self, base: &str, path: &str) -> Result<ProgramKeyInfo, ApiError> {
        let url = format!("{}{}", base.trim_end_matches('/'), path);
        let resp = self
            .http
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| ApiError::new(ErrorKind::Unavailable, format!("KMS {base}: {e}")))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ApiError::new(ErrorKind::Unavailable, format!("KMS {base}: {e}")))?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(b) => b.error,
                Err(_) => ApiError::new(
                    ErrorKind::Unavailable,
                    format!("KMS {base} answered {status}"),
                ),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                ErrorKind::Unavailable,
                format!("KMS {base}: bad key answer: {e}"),
            )
        })
    }

    /// The KMS nodes' addresses (`GET /v1/kms/info`, remembered once known); nodes that do
    /// not answer are left out.
    pub async fn endpoints(&self) -> Vec<pith_api::network::Endpoint> {
        let mut out = Vec::new();
        for url in &self.urls {
            let known = self.infos.lock().ok().and_then(|m| m.get(url).copied());
            let address = match known {
                Some(a) => Some(a),
                None => {
                    let u = format!("{}{}", url.trim_end_matches('/'), pith_api::kms::INFO);
                    let info = async {
                        let r = self
                            .http
                            .get(&u)
                            .timeout(Duration::from_secs(2))
                            .send()
                            .await
                            .ok()?;
                        if !r.status().is_success() {
                            return None;
                        }
                        let b = r.bytes().await.ok()?;
                        serde_json::from_slice::<KmsInfo>(&b).ok()
                    }
                    .await;
                    if let Some(i) = &info {
                        if let Ok(mut m) = self.infos.lock() {
                            m.insert(url.clone(), i.address);
                        }
                    }
                    info.map(|i| i.address)
                }
            };
            if let Some(address) = address {
                out.push(pith_api::network::Endpoint {
                    address,
                    url: url.clone(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use pith_crypto::certify::KeyCertificate;

    #[test]
    fn key_checks_and_their_negatives() {
        let kms = k256::ecdsa::SigningKey::from_slice(&[5u8; 32]).unwrap();
        let kms_addr = pith_crypto::keytree::address_of(&kms);
        let registry = Address::repeat_byte(0x42);
        let program = B256::repeat_byte(1);
        let keys = b"ohttp-keys".to_vec();
        let cert = KeyCertificate::issue(
            &kms,
            31337,
            registry,
            program,
            1,
            &keys,
            Address::repeat_byte(3),
            1_000,
        )
        .unwrap();
        let info = ProgramKeyInfo {
            program_id: program,
            ohttp_keys: keys.clone(),
            certificate: cert,
        };
        assert_eq!(
            check_key(&info, program, 31337, registry, &[kms_addr], 10).unwrap(),
            kms_addr
        );
        // Not a committee member.
        let e = check_key(
            &info,
            program,
            31337,
            registry,
            &[Address::repeat_byte(9)],
            10,
        )
        .unwrap_err();
        assert!(e.message.contains("not a KMS committee member"), "{e}");
        // Another program.
        assert!(
            check_key(
                &info,
                B256::repeat_byte(2),
                31337,
                registry,
                &[kms_addr],
                10
            )
            .is_err()
        );
        // Another chain / registry.
        assert!(check_key(&info, program, 1, registry, &[kms_addr], 10).is_err());
        assert!(
            check_key(
                &info,
                program,
                31337,
                Address::repeat_byte(1),
                &[kms_addr],
                10
            )
            .is_err()
        );
        // Expired.
        assert!(check_key(&info, program, 31337, registry, &[kms_addr], 1_001).is_err());
        // Key configuration swapped under the certificate.
        let mut swapped = info.clone();
        swapped.ohttp_keys = b"other".to_vec();
        assert!(check_key(&swapped, program, 31337, registry, &[kms_addr], 10).is_err());
        // Signature by another key under the member's name.
        let other = k256::ecdsa::SigningKey::from_slice(&[6u8; 32]).unwrap();
        let mut forged = KeyCertificate::issue(
            &other,
            31337,
            registry,
            program,
            1,
            &keys,
            Address::repeat_byte(3),
            1_000,
        )
        .unwrap();
        forged.kms = kms_addr;
        let forged = ProgramKeyInfo {
            program_id: program,
            ohttp_keys: keys,
            certificate: forged,
        };
        assert!(check_key(&forged, program, 31337, registry, &[kms_addr], 10).is_err());
    }
}
