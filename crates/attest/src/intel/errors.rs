//! Mapping dcap-qvl 0.7.1 errors (anyhow, with webpki errors inside) to our
//! [`ErrorClass`]es.
//!
//! dcap-qvl reports failures as `anyhow::Error` built from fixed message strings and
//! `webpki::Error` values (wrapped with `anyhow::Error::msg`, which keeps them
//! downcastable). The certificate-path errors are classified from the typed webpki error;
//! everything else from dcap-qvl's own messages, studied in its `verify.rs`, `utils.rs`,
//! `quote.rs` and `tcb_info.rs` (0.7.1). An unknown message maps to `malformed` with the
//! full text kept, never to a success.

use crate::error::{Error, ErrorClass};

/// Attribute checks dcap-qvl 0.7 applies after every cryptographic check has passed
/// (`validate_attrs`): they are policy questions for us, reported as claims.
const POLICY_MESSAGES: &[&str] = &[
    "SEPT_VE_DISABLE is not enabled",
    "TD migration is enabled",
    "Reserved bits in TD attributes are set",
    "SERVTD_EXT is enabled",
    "Invalid MR service TD",
    "TD profiling is enabled",
    "Debug mode is enabled",
];

/// What a dcap-qvl failure means for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mapped {
    /// A real verification failure.
    Failure(Error),
    /// A policy check dcap-qvl makes after all verification succeeded: re-run the
    /// verification with our own pipeline, which reports the property instead.
    PolicyOnly(String),
}

/// Classify a webpki error from a certificate path or CRL.
pub(crate) fn webpki_class(e: &webpki::Error) -> ErrorClass {
    use webpki::Error as W;
    match e {
        W::CertExpired { .. } => ErrorClass::CertExpired,
        W::CertNotValidYet { .. } => ErrorClass::NotYetValid,
        W::CrlExpired { .. } => ErrorClass::CollateralExpired,
        W::CertRevoked => ErrorClass::Revoked,
        // The PCK CRL is not from the PCK's issuer (for example a Processor-CA CRL for a
        // Platform-CA PCK): collateral for another CA.
        W::UnknownRevocationStatus | W::IssuerNotCrlSigner => ErrorClass::WrongCollateral,
        W::InvalidCrlSignatureForPublicKey => ErrorClass::BadSignature,
        W::BadDer
        | W::BadDerTime
        | W::TrailingData(_)
        | W::MalformedExtensions
        | W::InvalidCertValidity => ErrorClass::Malformed,
        W::UnsupportedCrlVersion
        | W::UnsupportedDeltaCrl
        | W::UnsupportedIndirectCrl
        | W::UnsupportedCrlIssuingDistributionPoint
        | W::UnsupportedRevocationReason
        | W::InvalidCrlNumber => ErrorClass::Malformed,
        // Unknown issuer, bad signature on a certificate, wrong algorithm, CA used as
        // end entity, path/EKU/constraint violations: the chain does not lead to the root.
        _ => ErrorClass::BadChain,
    }
}

/// Map a dcap-qvl error.
pub(crate) fn map(err: &anyhow::Error) -> Mapped {
    let full = format!("{err:#}");
    if let Some(w) = err.chain().find_map(|e| e.downcast_ref::<webpki::Error>()) {
        return Mapped::Failure(Error::new(webpki_class(w), format!("dcap-qvl: {full}")));
    }
    // anyhow::Error::msg(webpki::Error) is downcastable through `err.downcast_ref`, which
    // `chain()` does not always expose; try that too.
    if let Some(w) = err.downcast_ref::<webpki::Error>() {
        return Mapped::Failure(Error::new(webpki_class(w), format!("dcap-qvl: {full}")));
    }
    let outer = err.to_string();
    if POLICY_MESSAGES.iter().any(|m| outer == *m) {
        return Mapped::PolicyOnly(outer);
    }
    Mapped::Failure(Error::new(
        class_of_message(&full),
        format!("dcap-qvl: {full}"),
    ))
}

/// Classify by dcap-qvl's message text (`full` is the `{:#}` rendering, outer context
/// first). Order matters: more specific phrases first.
pub(crate) fn class_of_message(full: &str) -> ErrorClass {
    use ErrorClass::*;
    let has = |s: &str| full.contains(s);
    // Time.
    if has("issue date is in the future") {
        return NotYetValid;
    }
    if has("TCBInfo expired") || has("QE Identity expired") {
        return CollateralExpired;
    }
    // Signatures (quote, QE report binding, collateral).
    if has("Signature is invalid for qe_report")
        || has("QE report hash mismatch")
        || has("ISV enclave report signature is invalid")
        || has("Signature is invalid for tcb_info")
        || has("Signature is invalid for qe_identity")
        || has("Failed to parse root CA CRL")
    {
        // "Failed to parse root CA CRL" without a webpki error inside is DER trouble.
        if has("Failed to parse root CA CRL") {
            return Malformed;
        }
        return BadSignature;
    }
    // Chains.
    if has("must be issued directly by the root CA")
        || has("Certificate chain is too short")
        || has("Failed to load root ca")
        || has("Too many intermediate certificates")
        || has("Intel extension not found")
    {
        return BadChain;
    }
    // Collateral for something else.
    if has("Fmspc mismatch")
        || has("non-TDX TCB info")
        || has("non-SGX TCB info")
        || has("Unsupported QE Identity id/version")
        || has("QE MRSIGNER mismatch")
        || has("QE ISVPRODID mismatch")
        || has("QE MISCSELECT mismatch")
        || has("QE ATTRIBUTES mismatch")
        || has("QE report validation failed")
        || has("TDX module MRSIGNER mismatch")
        || has("SEAMATTRIBUTES")
        || has("missing tdxModule field")
        || has("No TDX module identity with id")
    {
        return WrongCollateral;
    }
    // TCB levels.
    if has("No matching TCB level found")
        || has("is below minimum required")
        || has("TCB status is invalid: Revoked")
    {
        return NoMatchingTcbLevel;
    }
    if has("Unsupported DCAP PCK cert format") {
        return Unsupported;
    }
    // Everything else: quote/collateral that does not parse (decode failures, bad
    // header fields, component count mismatches, unknown statuses, bad hex...).
    Malformed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn class(msg: &'static str) -> ErrorClass {
        match map(&anyhow::anyhow!(msg)) {
            Mapped::Failure(e) => e.class(),
            Mapped::PolicyOnly(_) => panic!("policy: {msg}"),
        }
    }

    #[test]
    fn every_dcap_qvl_message_has_a_class() {
        use ErrorClass::*;
        let table: &[(&'static str, ErrorClass)] = &[
            ("TCBInfo issue date is in the future", NotYetValid),
            ("QE Identity issue date is in the future", NotYetValid),
            ("TCBInfo expired", CollateralExpired),
            ("QE Identity expired", CollateralExpired),
            ("Signature is invalid for qe_report in quote", BadSignature),
            ("QE report hash mismatch", BadSignature),
            ("ISV enclave report signature is invalid", BadSignature),
            (
                "Signature is invalid for tcb_info in quote_collateral",
                BadSignature,
            ),
            (
                "Signature is invalid for qe_identity in quote_collateral",
                BadSignature,
            ),
            (
                "TCB Info signer must be issued directly by the root CA",
                BadChain,
            ),
            ("Certificate chain is too short in quote", BadChain),
            ("Intel extension not found", BadChain),
            ("Fmspc mismatch", WrongCollateral),
            (
                "TDX quote with non-TDX TCB info in the collateral",
                WrongCollateral,
            ),
            (
                "SGX quote with non-SGX TCB info in the collateral",
                WrongCollateral,
            ),
            (
                "Unsupported QE Identity id/version for the quote TEE type: QE version 2",
                WrongCollateral,
            ),
            ("QE MRSIGNER mismatch: expected A, got B", WrongCollateral),
            ("QE ISVPRODID mismatch: expected 1, got 2", WrongCollateral),
            ("QE MISCSELECT mismatch", WrongCollateral),
            ("QE ATTRIBUTES mismatch at byte 0", WrongCollateral),
            (
                "TDX module MRSIGNER mismatch: expected A, got B",
                WrongCollateral,
            ),
            (
                "TDX module SEAMATTRIBUTES mismatch at byte 1",
                WrongCollateral,
            ),
            (
                "No TDX module identity with id TDX_03 found in TCB Info",
                WrongCollateral,
            ),
            ("No matching TCB level found", NoMatchingTcbLevel),
            (
                "QE ISVSVN 1 is below minimum required 2 from QE Identity",
                NoMatchingTcbLevel,
            ),
            (
                "TDX module ISVSVN 1 is below minimum required from TDX module TCB levels",
                NoMatchingTcbLevel,
            ),
            ("TCB status is invalid: Revoked", NoMatchingTcbLevel),
            ("Failed to decode quote", Malformed),
            ("Unsupported DCAP quote version", Malformed),
            ("Unknown QE vendor ID", Malformed),
            ("Failed to decode TcbInfo", Malformed),
            ("Unrecognized TCB status Revoked in TCB Info", Malformed),
            (
                "Unsupported DCAP PCK cert format: 3. Use get_collateral()",
                Unsupported,
            ),
        ];
        for (msg, want) in table {
            assert_eq!(class(msg), *want, "{msg}");
        }
    }

    #[test]
    fn context_does_not_hide_the_cause() {
        let e = anyhow::anyhow!("No matching TCB level found")
            .context("Failed to evaluate the current TDX TCB");
        assert!(
            matches!(map(&e), Mapped::Failure(x) if x.class() == ErrorClass::NoMatchingTcbLevel)
        );
    }

    #[test]
    fn webpki_errors_are_typed() {
        use webpki::Error as W;
        let cases = [
            (
                W::CertExpired {
                    time: pki_time(2),
                    not_after: pki_time(1),
                },
                ErrorClass::CertExpired,
            ),
            (
                W::CertNotValidYet {
                    time: pki_time(1),
                    not_before: pki_time(2),
                },
                ErrorClass::NotYetValid,
            ),
            (
                W::CrlExpired {
                    time: pki_time(2),
                    next_update: pki_time(1),
                },
                ErrorClass::CollateralExpired,
            ),
            (W::CertRevoked, ErrorClass::Revoked),
            (W::UnknownRevocationStatus, ErrorClass::WrongCollateral),
            (W::UnknownIssuer, ErrorClass::BadChain),
            (W::InvalidSignatureForPublicKey, ErrorClass::BadChain),
            (W::BadDer, ErrorClass::Malformed),
        ];
        for (w, want) in cases {
            let e = anyhow::Error::msg(w.clone()).context("Failed to verify certificate chain");
            match map(&e) {
                Mapped::Failure(x) => assert_eq!(x.class(), want, "{w:?}"),
                Mapped::PolicyOnly(_) => panic!("{w:?}"),
            }
        }
    }

    fn pki_time(s: u64) -> rustls_pki_types::UnixTime {
        rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(s))
    }

    #[test]
    fn policy_messages_are_not_failures() {
        for m in POLICY_MESSAGES {
            assert!(
                matches!(map(&anyhow::Error::msg(*m)), Mapped::PolicyOnly(_)),
                "{m}"
            );
        }
        // But only as the outermost message, exactly.
        assert!(matches!(
            map(&anyhow::anyhow!(
                "QE report validation failed: Debug mode is enabled"
            )),
            Mapped::Failure(_)
        ));
    }
}
