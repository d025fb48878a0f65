//! The few X.509 operations the simulated platform needs: P-256 keys, ECDSA-SHA256
//! certificate signatures, basic constraints and validity. Everything here works on
//! certificates this module issued or that the verifier supplied as the trust anchor.

use der::{Decode, DecodePem, Encode};
use p256::ecdsa::{Signature, VerifyingKey, signature::Verifier};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::BasicConstraints;

use crate::error::Error;

/// id-ecPublicKey
const ID_EC_PUBLIC_KEY: der::asn1::ObjectIdentifier = const_oid::db::rfc5912::ID_EC_PUBLIC_KEY;
/// secp256r1 (P-256)
const SECP256R1: der::asn1::ObjectIdentifier = const_oid::db::rfc5912::SECP_256_R_1;
/// ecdsa-with-SHA256
const ECDSA_WITH_SHA256: der::asn1::ObjectIdentifier = const_oid::db::rfc5912::ECDSA_WITH_SHA_256;

/// Parse one DER certificate; trailing data is an error.
pub(crate) fn parse_der(der: &[u8]) -> Result<Certificate, der::Error> {
    Certificate::from_der(der)
}

/// Parse a certificate given as PEM (one `CERTIFICATE` block) or DER.
pub(crate) fn parse_pem_or_der(bytes: &[u8]) -> Result<Certificate, der::Error> {
    let trimmed = trim_ascii_start(bytes);
    if trimmed.starts_with(b"-----BEGIN") {
        Certificate::from_pem(trimmed)
    } else {
        Certificate::from_der(bytes)
    }
}

fn trim_ascii_start(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// The certificate's P-256 public key; any other key type is an error (message returned).
pub(crate) fn p256_key(cert: &Certificate) -> Result<VerifyingKey, String> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != ID_EC_PUBLIC_KEY {
        return Err(format!("public key algorithm {} is not id-ecPublicKey", spki.algorithm.oid));
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok());
    if curve != Some(SECP256R1) {
        return Err("public key curve is not P-256".into());
    }
    VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
        .map_err(|_| "public key is not a valid P-256 point".to_string())
}

/// Check that `cert` is signed (ECDSA P-256 with SHA-256) by `issuer_key`.
pub(crate) fn check_issued_by(cert: &Certificate, issuer_key: &VerifyingKey) -> Result<(), Error> {
    if cert.signature_algorithm.oid != ECDSA_WITH_SHA256
        || cert.tbs_certificate.signature.oid != ECDSA_WITH_SHA256
    {
        return Err(Error::bad_chain("certificate is not signed with ecdsa-with-SHA256"));
    }
    let sig_bytes = cert
        .signature
        .as_bytes()
        .ok_or_else(|| Error::bad_chain("certificate signature has unused bits"))?;
    let sig = Signature::from_der(sig_bytes)
        .map_err(|_| Error::bad_chain("certificate signature is not a DER ECDSA signature"))?;
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(|e| Error::bad_chain(format!("cannot re-encode certificate: {e}")))?;
    issuer_key
        .verify(&tbs, &sig)
        .map_err(|_| Error::bad_chain("certificate signature does not verify with the development CA key"))
}

/// The `cA` flag of the basic-constraints extension (`false` when absent).
pub(crate) fn is_ca(cert: &Certificate) -> Result<bool, Error> {
    let Some(exts) = cert.tbs_certificate.extensions.as_ref() else {
        return Ok(false);
    };
    for ext in exts {
        if ext.extn_id == const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS {
            let bc = BasicConstraints::from_der(ext.extn_value.as_bytes())
                .map_err(|e| Error::bad_chain(format!("bad basicConstraints: {e}")))?;
            return Ok(bc.ca);
        }
    }
    Ok(false)
}

/// The certificate's validity as `[not_before, not_after]`.
pub(crate) fn validity(cert: &Certificate) -> Result<(OffsetDateTime, OffsetDateTime), Error> {
    let conv = |t: &x509_cert::time::Time| -> Result<OffsetDateTime, Error> {
        let secs = i64::try_from(t.to_unix_duration().as_secs())
            .map_err(|_| Error::bad_chain("certificate time out of range"))?;
        OffsetDateTime::from_unix_timestamp(secs).map_err(|_| Error::bad_chain("certificate time out of range"))
    };
    let v = &cert.tbs_certificate.validity;
    Ok((conv(&v.not_before)?, conv(&v.not_after)?))
}
