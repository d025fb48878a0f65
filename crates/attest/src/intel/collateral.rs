//! Intel collateral files (corpus layout, Intel PCS response shapes) as inputs for
//! dcap-qvl and for our own pipeline.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::Collateral;
use crate::error::{Error, ErrorClass};

/// Split a PCS-shaped signed document (`{"<key>": {...}, "signature": "<hex>"}`) into the
/// exact signed text of the object and the 64-byte r‖s signature. The text is taken
/// byte-for-byte from the file (never re-serialized).
pub(crate) fn split_signed<'a>(file: &'a [u8], key: &str) -> Result<(&'a str, [u8; 64]), Error> {
    #[derive(Deserialize)]
    struct Doc<'a> {
        #[serde(borrow, rename = "tcbInfo")]
        tcb_info: Option<&'a RawValue>,
        #[serde(borrow, rename = "enclaveIdentity")]
        enclave_identity: Option<&'a RawValue>,
        #[serde(borrow, rename = "qeIdentity")]
        qe_identity: Option<&'a RawValue>,
        signature: String,
    }
    let text = std::str::from_utf8(file)
        .map_err(|_| Error::malformed(format!("{key} file is not UTF-8")))?;
    let doc: Doc<'_> = serde_json::from_str(text)
        .map_err(|e| Error::malformed(format!("{key} file is not a PCS response: {e}")))?;
    let body = match key {
        "tcbInfo" => doc.tcb_info,
        _ => doc.enclave_identity.or(doc.qe_identity),
    }
    .ok_or_else(|| Error::malformed(format!("{key} file has no {key} object")))?;
    let sig = hex::decode(doc.signature.trim())
        .map_err(|_| Error::malformed(format!("{key} signature is not hex")))?;
    let sig = <[u8; 64]>::try_from(sig.as_slice()).map_err(|_| {
        Error::malformed(format!(
            "{key} signature has {} bytes, expected 64",
            sig.len()
        ))
    })?;
    Ok((body.get(), sig))
}

/// Certificates of a PEM bundle, in order (DER).
pub(crate) fn pem_certs(bytes: &[u8], what: &str) -> Result<Vec<Vec<u8>>, Error> {
    let blocks =
        pem::parse_many(bytes).map_err(|e| Error::malformed(format!("{what}: bad PEM: {e}")))?;
    let certs: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect();
    if certs.is_empty() {
        return Err(Error::malformed(format!("{what}: no certificate")));
    }
    Ok(certs)
}

/// A CRL as DER; PEM (`X509 CRL`) and hex text are accepted too (PCCS answers in all three).
pub(crate) fn crl_der(bytes: &[u8], what: &str) -> Result<Vec<u8>, Error> {
    let trimmed = bytes.trim_ascii();
    if trimmed.starts_with(b"-----BEGIN") {
        let p =
            pem::parse(trimmed).map_err(|e| Error::malformed(format!("{what}: bad PEM: {e}")))?;
        return Ok(p.into_contents());
    }
    if !trimmed.is_empty() && trimmed.iter().all(u8::is_ascii_hexdigit) {
        return hex::decode(trimmed).map_err(|_| Error::malformed(format!("{what}: bad hex")));
    }
    Ok(bytes.to_vec())
}

/// The five Intel collateral pieces, split for verification. Absent pieces are `None`.
#[derive(Debug, Clone)]
pub(crate) struct Intel<'a> {
    pub tcb_info: (&'a str, [u8; 64]),
    pub qe_identity: Option<(&'a str, [u8; 64])>,
    /// TCB signing chain PEM text (leaf first).
    pub tcb_chain_pem: &'a [u8],
    pub pck_crl: Option<Vec<u8>>,
    pub root_ca_crl: Vec<u8>,
}

/// The names of the required Intel files that are absent.
pub(crate) fn absent(c: &Collateral) -> Vec<&'static str> {
    let mut out = Vec::new();
    if c.tcb_info.is_none() {
        out.push("tcb_info.json");
    }
    if c.qe_identity.is_none() {
        out.push("qe_identity.json");
    }
    if c.tcb_signing_chain.is_none() {
        out.push("tcb_signing_chain.pem");
    }
    if c.pck_crl.is_none() {
        out.push("pck_crl.der");
    }
    if c.root_ca_crl.is_none() {
        out.push("root_ca_crl.der");
    }
    out
}

impl<'a> Intel<'a> {
    /// Split the files present. TCB info, TCB signing chain and root CA CRL are always
    /// required; the caller decides whether an absent QE identity or PCK CRL is allowed.
    pub(crate) fn parse(c: &'a Collateral) -> Result<Self, Error> {
        let need = |v: &'a Option<Vec<u8>>, name: &str| {
            v.as_deref().ok_or_else(|| {
                Error::new(ErrorClass::MissingCollateral, format!("{name} is absent"))
            })
        };
        Ok(Self {
            tcb_info: split_signed(need(&c.tcb_info, "tcb_info.json")?, "tcbInfo")?,
            qe_identity: c
                .qe_identity
                .as_deref()
                .map(|b| split_signed(b, "enclaveIdentity"))
                .transpose()?,
            tcb_chain_pem: need(&c.tcb_signing_chain, "tcb_signing_chain.pem")?,
            pck_crl: c
                .pck_crl
                .as_deref()
                .map(|b| crl_der(b, "pck_crl.der"))
                .transpose()?,
            root_ca_crl: crl_der(need(&c.root_ca_crl, "root_ca_crl.der")?, "root_ca_crl.der")?,
        })
    }

    /// dcap-qvl's collateral struct; `None` when a piece dcap-qvl needs is absent.
    pub(crate) fn to_dcap(&self) -> Option<dcap_qvl::QuoteCollateralV3> {
        let (qe_text, qe_sig) = self.qe_identity?;
        let pck_crl = self.pck_crl.clone()?;
        let chain = String::from_utf8(self.tcb_chain_pem.to_vec()).ok()?;
        Some(dcap_qvl::QuoteCollateralV3 {
            pck_crl_issuer_chain: String::new(),
            root_ca_crl: self.root_ca_crl.clone(),
            pck_crl,
            tcb_info_issuer_chain: chain.clone(),
            tcb_info: self.tcb_info.0.to_owned(),
            tcb_info_signature: self.tcb_info.1.to_vec(),
            qe_identity_issuer_chain: chain,
            qe_identity: qe_text.to_owned(),
            qe_identity_signature: qe_sig.to_vec(),
            pck_certificate_chain: None,
        })
    }
}

/// The TCBInfo `version` without parsing the whole document.
pub(crate) fn tcb_info_version(text: &str) -> Result<u64, Error> {
    #[derive(Deserialize)]
    struct V {
        version: u64,
    }
    serde_json::from_str::<V>(text)
        .map(|v| v.version)
        .map_err(|e| Error::malformed(format!("TCBInfo: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signed_text_is_byte_exact() {
        let file = br#"{"tcbInfo":{"b":1, "a" : [2]},"signature":"0011"}"#;
        assert!(split_signed(file, "tcbInfo").is_err()); // short signature
        let sig = "ab".repeat(64);
        let file = format!(r#"{{"tcbInfo":{{"b":1, "a" : [2]}},"signature":"{sig}"}}"#);
        let (text, s) = split_signed(file.as_bytes(), "tcbInfo").unwrap();
        assert_eq!(text, r#"{"b":1, "a" : [2]}"#);
        assert_eq!(s, [0xab; 64]);
        assert!(split_signed(file.as_bytes(), "enclaveIdentity").is_err());
        assert!(split_signed(b"{\"tcbInfo\":", "tcbInfo").is_err());
    }

    #[test]
    fn crl_encodings() {
        assert_eq!(crl_der(b"3003", "x").unwrap(), vec![0x30, 0x03]);
        assert_eq!(
            crl_der(&[0x30, 0x01, 0x00], "x").unwrap(),
            vec![0x30, 0x01, 0x00]
        );
    }
}
