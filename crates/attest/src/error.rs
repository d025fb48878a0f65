//! Errors: one type, classified by [`ErrorClass`] (the classes of the attestation corpus).

use std::fmt;

/// Why evidence did not verify. The class is stable (it is part of the CLI's JSON output
/// and of `docs/protocol.md`); the message is for humans.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// A signature over evidence or collateral does not verify (including the QE-report binding).
    BadSignature,
    /// A certificate chain does not lead to the pinned root, or a certificate has the wrong role.
    BadChain,
    /// Collateral belongs to another TEE type, CA, FMSPC, QE, chip or TCB.
    WrongCollateral,
    /// The platform is below every TCB level the vendor lists, or its level is revoked.
    NoMatchingTcbLevel,
    /// A TCB info, QE identity or CRL is past its nextUpdate.
    CollateralExpired,
    /// A certificate is past its notAfter.
    CertExpired,
    /// The verification time is before an issueDate, thisUpdate or notBefore.
    NotYetValid,
    /// A required collateral item is absent.
    MissingCollateral,
    /// Nitro PCRs differ from the expected ones.
    PcrMismatch,
    /// The nonce in the evidence differs from the verifier's.
    NonceMismatch,
    /// The bytes are not well-formed evidence or collateral of the claimed kind.
    Malformed,
    /// A certificate or key is revoked.
    Revoked,
    /// The evidence kind or version is not supported.
    Unsupported,
}

impl ErrorClass {
    /// The stable snake_case name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadSignature => "bad_signature",
            Self::BadChain => "bad_chain",
            Self::WrongCollateral => "wrong_collateral",
            Self::NoMatchingTcbLevel => "no_matching_tcb_level",
            Self::CollateralExpired => "collateral_expired",
            Self::CertExpired => "cert_expired",
            Self::NotYetValid => "not_yet_valid",
            Self::MissingCollateral => "missing_collateral",
            Self::PcrMismatch => "pcr_mismatch",
            Self::NonceMismatch => "nonce_mismatch",
            Self::Malformed => "malformed",
            Self::Revoked => "revoked",
            Self::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verification failure: a class and a human-readable explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {message}")]
pub struct Error {
    class: ErrorClass,
    message: String,
}

impl Error {
    /// A new error of `class`.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
        }
    }
    /// The error's class.
    pub fn class(&self) -> ErrorClass {
        self.class
    }
    /// The human-readable explanation.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// Shorthand for [`ErrorClass::Malformed`].
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Malformed, message)
    }
    /// Shorthand for [`ErrorClass::BadSignature`].
    pub fn bad_signature(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::BadSignature, message)
    }
    /// Shorthand for [`ErrorClass::BadChain`].
    pub fn bad_chain(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::BadChain, message)
    }
    /// Shorthand for [`ErrorClass::MissingCollateral`].
    pub fn missing(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::MissingCollateral, message)
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
