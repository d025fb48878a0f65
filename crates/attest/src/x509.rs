//! Shared X.509 helpers: certificate parsing (DER / PEM), validity at an instant, ECDSA
//! P-256/P-384 signature checks and chain verification against pinned roots.
//!
//! Every platform verifier uses these so that the time semantics are the same everywhere:
//! `now` before `notBefore` is [`ErrorClass::NotYetValid`], `now` after `notAfter` is
//! [`ErrorClass::CertExpired`], both bounds inclusive, and every certificate used narrows the
//! reported [`Window`].
//!
//! Certificates are parsed with the `x509-cert` crate's permissive profile: serial numbers
//! that are zero, negative or longer than 20 bytes occur in real device certificates (some
//! AMD VCEKs) and are accepted. Signature algorithms other than ECDSA (for example AMD's
//! RSA-PSS) are left to the caller through [`Cert::tbs_der`], [`Cert::signature`] and
//! [`Cert::signature_algorithm`].

use std::fmt;

use const_oid::ObjectIdentifier;
use der::{Decode, Encode, Reader, SliceReader};
use sha2::{Digest, Sha256, Sha384, Sha512};
use time::OffsetDateTime;
use x509_cert::certificate::{CertificateInner, Raw};

use crate::error::{Error, ErrorClass, Result};
use crate::report::Window;

/// `ecdsa-with-SHA256` (RFC 5758).
pub const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// `ecdsa-with-SHA384` (RFC 5758).
pub const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// `ecdsa-with-SHA512` (RFC 5758).
pub const ECDSA_WITH_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
/// `id-ecPublicKey` (RFC 5480).
pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1` / P-256.
pub const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// `secp384r1` / P-384.
pub const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// `basicConstraints` extension.
pub const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");

/// A parsed certificate together with its exact DER encoding.
#[derive(Clone)]
pub struct Cert {
    der: Vec<u8>,
    tbs_range: std::ops::Range<usize>,
    cert: CertificateInner<Raw>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl fmt::Debug for Cert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cert")
            .field("subject", &self.subject())
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish()
    }
}

impl PartialEq for Cert {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}
impl Eq for Cert {}

/// An ECDSA verifying key of a supported curve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EcKey {
    /// NIST P-256.
    P256(p256::ecdsa::VerifyingKey),
    /// NIST P-384.
    P384(p384::ecdsa::VerifyingKey),
}

/// Hash function named by a signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// Digest of `msg`.
    pub fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(msg).to_vec(),
            Self::Sha384 => Sha384::digest(msg).to_vec(),
            Self::Sha512 => Sha512::digest(msg).to_vec(),
        }
    }
}

impl EcKey {
    /// Parse an uncompressed or compressed SEC1 point for `curve` (an OID from
    /// [`SECP256R1`] / [`SECP384R1`]).
    pub fn from_sec1(curve: ObjectIdentifier, point: &[u8]) -> Result<Self> {
        if curve == SECP256R1 {
            p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map(Self::P256)
                .map_err(|_| Error::bad_chain("invalid P-256 public key"))
        } else if curve == SECP384R1 {
            p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map(Self::P384)
                .map_err(|_| Error::bad_chain("invalid P-384 public key"))
        } else {
            Err(Error::bad_chain(format!("unsupported EC curve {curve}")))
        }
    }

    /// P-384 key from a SEC1 point.
    pub fn p384(point: &[u8]) -> Result<Self> {
        Self::from_sec1(SECP384R1, point)
    }

    /// P-256 key from a SEC1 point.
    pub fn p256(point: &[u8]) -> Result<Self> {
        Self::from_sec1(SECP256R1, point)
    }

    /// The key as an uncompressed SEC1 point (`04 ‖ x ‖ y`).
    pub fn sec1_uncompressed(&self) -> Vec<u8> {
        match self {
            Self::P256(k) => k.to_encoded_point(false).as_bytes().to_vec(),
            Self::P384(k) => k.to_encoded_point(false).as_bytes().to_vec(),
        }
    }

    /// The `ring` algorithm for this curve and `hash` with DER (`asn1`) or fixed `r ‖ s`
    /// signatures, when `ring` has one (see [`EcKey::verify_der`]).
    fn ring_alg(
        &self,
        hash: HashAlg,
        asn1: bool,
    ) -> Option<&'static ring::signature::EcdsaVerificationAlgorithm> {
        use ring::signature as rs;
        match (self, hash, asn1) {
            (Self::P256(_), HashAlg::Sha256, true) => Some(&rs::ECDSA_P256_SHA256_ASN1),
            (Self::P256(_), HashAlg::Sha384, true) => Some(&rs::ECDSA_P256_SHA384_ASN1),
            (Self::P256(_), HashAlg::Sha256, false) => Some(&rs::ECDSA_P256_SHA256_FIXED),
            (Self::P384(_), HashAlg::Sha256, true) => Some(&rs::ECDSA_P384_SHA256_ASN1),
            (Self::P384(_), HashAlg::Sha384, true) => Some(&rs::ECDSA_P384_SHA384_ASN1),
            (Self::P384(_), HashAlg::Sha384, false) => Some(&rs::ECDSA_P384_SHA384_FIXED),
            _ => None,
        }
    }

    /// Verify with `ring` when it supports the combination; `None` when it does not.
    fn verify_ring(&self, hash: HashAlg, asn1: bool, msg: &[u8], sig: &[u8]) -> Option<bool> {
        let alg = self.ring_alg(hash, asn1)?;
        let key = ring::signature::UnparsedPublicKey::new(alg, self.sec1_uncompressed());
        Some(key.verify(msg, sig).is_ok())
    }

    /// Verify a DER-encoded ECDSA signature over `msg` hashed with `hash`.
    /// A signature that does not parse or verify is [`ErrorClass::BadSignature`].
    ///
    /// Backend (docs/adr/0090-certificate-link-cache.md): `ring` for P-256 and P-384 with
    /// SHA-256/SHA-384 (several times faster than the pure-Rust crates for P-384), the
    /// RustCrypto `p256`/`p384` crates for the other combinations (SHA-512, P-256 with
    /// SHA-384 in fixed form). Both implement the same ECDSA verification; the choice
    /// changes speed only.
    pub fn verify_der(&self, hash: HashAlg, msg: &[u8], sig_der: &[u8]) -> Result<()> {
        use ecdsa::signature::hazmat::PrehashVerifier;
        if let Some(ok) = self.verify_ring(hash, true, msg, sig_der) {
            return if ok {
                Ok(())
            } else {
                Err(Error::bad_signature("ECDSA signature does not verify"))
            };
        }
        let digest = hash.digest(msg);
        let ok = match self {
            Self::P256(k) => p256::ecdsa::Signature::from_der(sig_der)
                .ok()
                .is_some_and(|s| k.verify_prehash(&digest, &s).is_ok()),
            Self::P384(k) => p384::ecdsa::Signature::from_der(sig_der)
                .ok()
                .is_some_and(|s| k.verify_prehash(&digest, &s).is_ok()),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::bad_signature("ECDSA signature does not verify"))
        }
    }

    /// Verify a fixed-size `r ‖ s` (big-endian, each the curve's field size) ECDSA
    /// signature over `msg` hashed with `hash`. A wrong length is [`ErrorClass::Malformed`].
    pub fn verify_raw(&self, hash: HashAlg, msg: &[u8], sig: &[u8]) -> Result<()> {
        use ecdsa::signature::hazmat::PrehashVerifier;
        match (self, sig.len()) {
            (Self::P256(_), 64) | (Self::P384(_), 96) => {}
            (Self::P256(_), _) => return Err(Error::malformed("P-256 signature must be 64 bytes")),
            (Self::P384(_), _) => return Err(Error::malformed("P-384 signature must be 96 bytes")),
        }
        if let Some(ok) = self.verify_ring(hash, false, msg, sig) {
            return if ok {
                Ok(())
            } else {
                Err(Error::bad_signature("ECDSA signature does not verify"))
            };
        }
        let digest = hash.digest(msg);
        let ok = match self {
            Self::P256(k) => p256::ecdsa::Signature::from_slice(sig)
                .ok()
                .is_some_and(|s| k.verify_prehash(&digest, &s).is_ok()),
            Self::P384(k) => p384::ecdsa::Signature::from_slice(sig)
                .ok()
                .is_some_and(|s| k.verify_prehash(&digest, &s).is_ok()),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::bad_signature("ECDSA signature does not verify"))
        }
    }
}

fn to_offset(t: x509_cert::time::Time) -> Result<OffsetDateTime> {
    let secs = i64::try_from(t.to_unix_duration().as_secs())
        .map_err(|_| Error::malformed("certificate time out of range"))?;
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| Error::malformed("certificate time out of range"))
}

impl Cert {
    /// Parse one DER certificate; the input must be exactly one certificate.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let cert = CertificateInner::<Raw>::from_der(der)
            .map_err(|e| Error::malformed(format!("certificate does not parse: {e}")))?;
        // The signed bytes are the TBSCertificate exactly as encoded, not a re-encoding.
        let tbs_range = tbs_range(der)
            .map_err(|e| Error::malformed(format!("certificate does not parse: {e}")))?;
        let validity = &cert.tbs_certificate.validity;
        let not_before = to_offset(validity.not_before)?;
        let not_after = to_offset(validity.not_after)?;
        Ok(Self {
            der: der.to_vec(),
            tbs_range,
            cert,
            not_before,
            not_after,
        })
    }

    /// Parse one PEM `CERTIFICATE` block (or DER, detected by the leading SEQUENCE tag).
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self> {
        let mut all = parse_certs(bytes)?;
        if all.len() != 1 {
            return Err(Error::malformed(format!(
                "expected one certificate, found {}",
                all.len()
            )));
        }
        all.pop().ok_or_else(|| Error::malformed("no certificate"))
    }

    /// The exact DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// The DER of the TBSCertificate (the signed bytes), as found in the encoding.
    pub fn tbs_der(&self) -> &[u8] {
        self.der.get(self.tbs_range.clone()).unwrap_or_default()
    }
    /// The outer signature algorithm OID.
    pub fn signature_algorithm(&self) -> ObjectIdentifier {
        self.cert.signature_algorithm.oid
    }
    /// The outer signature algorithm parameters, DER-encoded (for RSA-PSS), if any.
    pub fn signature_algorithm_params(&self) -> Option<Vec<u8>> {
        self.cert
            .signature_algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.to_der().ok())
    }
    /// The signature bytes (content of the BIT STRING).
    pub fn signature(&self) -> &[u8] {
        self.cert.signature.raw_bytes()
    }
    /// The SubjectPublicKeyInfo algorithm OID.
    pub fn public_key_algorithm(&self) -> ObjectIdentifier {
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .algorithm
            .oid
    }
    /// The SubjectPublicKeyInfo, DER-encoded.
    pub fn spki_der(&self) -> Result<Vec<u8>> {
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| Error::malformed(format!("SPKI: {e}")))
    }
    /// The subject public key bytes (content of the BIT STRING).
    pub fn public_key_bytes(&self) -> &[u8] {
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
    }
    /// The subject's ECDSA key, if it is a P-256 or P-384 key.
    pub fn ec_key(&self) -> Result<EcKey> {
        let spki = &self.cert.tbs_certificate.subject_public_key_info;
        if spki.algorithm.oid != EC_PUBLIC_KEY {
            return Err(Error::bad_chain(format!(
                "not an EC public key: {}",
                spki.algorithm.oid
            )));
        }
        let curve: ObjectIdentifier = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as().ok())
            .ok_or_else(|| Error::bad_chain("EC public key without named curve"))?;
        EcKey::from_sec1(curve, spki.subject_public_key.raw_bytes())
    }
    /// notBefore.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }
    /// notAfter.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }
    /// The subject name (RFC 4514 string).
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }
    /// The issuer name (RFC 4514 string).
    pub fn issuer(&self) -> String {
        self.cert.tbs_certificate.issuer.to_string()
    }
    /// Serial number bytes as encoded (two's complement, may be non-positive).
    pub fn serial(&self) -> &[u8] {
        self.cert.tbs_certificate.serial_number.as_bytes()
    }
    /// Whether the subject and issuer names are equal (DER comparison).
    pub fn is_self_issued(&self) -> bool {
        self.cert.tbs_certificate.subject == self.cert.tbs_certificate.issuer
    }
    /// Whether this certificate's issuer name equals `issuer`'s subject name.
    pub fn issued_by_name(&self, issuer: &Cert) -> bool {
        self.cert.tbs_certificate.issuer == issuer.cert.tbs_certificate.subject
    }
    /// The value (content of the OCTET STRING) of the extension `oid`, if present.
    pub fn extension(&self, oid: ObjectIdentifier) -> Option<&[u8]> {
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    }
    /// `Some(true)` if basicConstraints says CA, `Some(false)` if it says not a CA,
    /// `None` if the extension is absent or unreadable.
    pub fn is_ca(&self) -> Option<bool> {
        let bc =
            x509_cert::ext::pkix::BasicConstraints::from_der(self.extension(BASIC_CONSTRAINTS)?)
                .ok()?;
        Some(bc.ca)
    }

    /// Check validity at `now` (both bounds inclusive): before notBefore is
    /// `not_yet_valid`, after notAfter is `cert_expired`.
    pub fn check_valid_at(&self, now: OffsetDateTime) -> Result<()> {
        if now < self.not_before {
            return Err(Error::new(
                ErrorClass::NotYetValid,
                format!(
                    "certificate {} not valid before {}",
                    self.subject(),
                    self.not_before
                ),
            ));
        }
        if now > self.not_after {
            return Err(Error::new(
                ErrorClass::CertExpired,
                format!(
                    "certificate {} expired at {}",
                    self.subject(),
                    self.not_after
                ),
            ));
        }
        Ok(())
    }

    /// Narrow `window` to this certificate's validity.
    pub fn narrow(&self, window: &mut Window) {
        window.narrow(self.not_before, self.not_after);
    }

    /// Verify this certificate's ECDSA signature with `issuer`'s key. Failure is
    /// [`ErrorClass::BadChain`] (a chain that does not verify).
    ///
    /// Successful checks are remembered in the process-wide [`link_cache`] (keyed by both
    /// certificates' exact DER), so a link seen before costs a hash instead of a signature
    /// verification. Only the signature is cached; validity times are the caller's and are
    /// checked on every call.
    pub fn verify_signed_by(&self, issuer: &Cert) -> Result<()> {
        link_cache::verify_cached(link_cache::Kind::Ecdsa, issuer.der(), self.der(), || {
            self.verify_signed_by_uncached(issuer)
        })
    }

    fn verify_signed_by_uncached(&self, issuer: &Cert) -> Result<()> {
        let key = issuer.ec_key()?;
        let hash = match self.signature_algorithm() {
            a if a == ECDSA_WITH_SHA256 => HashAlg::Sha256,
            a if a == ECDSA_WITH_SHA384 => HashAlg::Sha384,
            a if a == ECDSA_WITH_SHA512 => HashAlg::Sha512,
            other => {
                return Err(Error::bad_chain(format!(
                    "unsupported certificate signature algorithm {other}"
                )));
            }
        };
        key.verify_der(hash, self.tbs_der(), self.signature())
            .map_err(|_| {
                Error::bad_chain(format!(
                    "certificate {} is not signed by {}",
                    self.subject(),
                    issuer.subject()
                ))
            })
    }
}

/// A bounded, process-wide cache of verified certificate links (docs/adr/0090-certificate-link-cache.md).
///
/// An entry records that the signature of one certificate (the subject, exact DER) verified
/// with the key of another (the issuer, exact DER) under one signature scheme ([`Kind`]).
/// The key is SHA-256 over the scheme tag, the issuer DER's length (8 bytes, big-endian),
/// the issuer DER and the subject DER, so a hit requires byte-identical certificates that
/// were verified before; since the signature, its algorithm, the signed TBSCertificate and
/// the issuer's public key are all inside those bytes, the cached result is the result the
/// verification would give again. Only successes are stored (a failing link is verified
/// afresh every time, so a forged certificate cannot make the cache do anything). Nothing
/// time-dependent is stored: callers check validity windows on every call. The cache holds
/// at most [`CAPACITY`] entries and evicts the least recently used.
pub mod link_cache {
    use std::collections::HashMap;
    use std::sync::{Mutex, MutexGuard, OnceLock};

    use sha2::{Digest, Sha256};

    use crate::error::Result;

    /// Most entries kept (32-byte key + 8-byte counter each: about 160 KiB at most with the
    /// map's overhead).
    pub const CAPACITY: usize = 4096;

    /// The signature scheme a link was verified under; part of the key, so a link verified
    /// by one check never satisfies another check with different rules.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Kind {
        /// ECDSA (P-256 / P-384 keys, SHA-256/384/512), [`super::Cert::verify_signed_by`].
        Ecdsa,
        /// AMD's RSASSA-PSS (SHA-384, MGF1-SHA-384, salt 48), the SEV-SNP VCEK/VLEK check.
        AmdRsaPss,
    }

    impl Kind {
        fn tag(self) -> u8 {
            match self {
                Self::Ecdsa => 1,
                Self::AmdRsaPss => 2,
            }
        }
    }

    type Key = [u8; 32];

    #[derive(Default)]
    struct Lru {
        /// Entry -> last use (a counter).
        entries: HashMap<Key, u64>,
        clock: u64,
    }

    impl Lru {
        fn touch(&mut self, key: &Key) -> bool {
            self.clock = self.clock.wrapping_add(1);
            let now = self.clock;
            match self.entries.get_mut(key) {
                Some(used) => {
                    *used = now;
                    true
                }
                None => false,
            }
        }

        fn insert(&mut self, key: Key) {
            self.clock = self.clock.wrapping_add(1);
            if self.entries.len() >= CAPACITY && !self.entries.contains_key(&key) {
                // O(n) eviction, only on a miss that verified (which just cost a signature
                // verification, far more than scanning the map).
                if let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, used)| **used)
                    .map(|(k, _)| *k)
                {
                    self.entries.remove(&oldest);
                }
            }
            self.entries.insert(key, self.clock);
        }
    }

    fn cache() -> MutexGuard<'static, Lru> {
        static CACHE: OnceLock<Mutex<Lru>> = OnceLock::new();
        // A panic while holding the lock cannot leave the map inconsistent (every update is
        // a single insert/remove), so a poisoned lock is used as is.
        CACHE
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn key(kind: Kind, issuer_der: &[u8], subject_der: &[u8]) -> Key {
        let len = u64::try_from(issuer_der.len()).unwrap_or(u64::MAX);
        let mut h = Sha256::new();
        h.update([kind.tag()]);
        h.update(len.to_be_bytes());
        h.update(issuer_der);
        h.update(subject_der);
        h.finalize().into()
    }

    /// Run `verify` (the signature check of `subject_der` by `issuer_der` under `kind`)
    /// unless the same link verified before; remember it when it succeeds.
    pub fn verify_cached(
        kind: Kind,
        issuer_der: &[u8],
        subject_der: &[u8],
        verify: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let k = key(kind, issuer_der, subject_der);
        if cache().touch(&k) {
            return Ok(());
        }
        verify()?;
        cache().insert(k);
        Ok(())
    }

    /// Number of cached links.
    pub fn len() -> usize {
        cache().entries.len()
    }

    #[cfg(test)]
    mod tests {
        #![allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]

        use super::*;
        use crate::error::Error;

        /// Unique certificate stand-ins per test, so tests sharing the global cache (under
        /// `cargo test`) do not see each other's entries.
        fn der(test: &str, n: usize) -> Vec<u8> {
            format!("{test}/{n}").into_bytes()
        }

        #[test]
        fn success_is_cached_failure_is_not() {
            let (i, s) = (der("cached", 0), der("cached", 1));
            let mut calls = 0;
            let mut run = |ok: bool| {
                verify_cached(Kind::Ecdsa, &i, &s, || {
                    calls += 1;
                    if ok {
                        Ok(())
                    } else {
                        Err(Error::bad_chain("no"))
                    }
                })
            };
            // A failure is returned and not remembered.
            assert!(run(false).is_err());
            assert!(run(false).is_err());
            // The first success runs the check; later calls are hits.
            assert!(run(true).is_ok());
            assert!(run(false).is_ok());
            assert_eq!(calls, 3);
        }

        #[test]
        fn key_separates_kind_order_and_boundaries() {
            let (i, s) = (der("sep", 0), der("sep", 1));
            verify_cached(Kind::Ecdsa, &i, &s, || Ok(())).unwrap();
            let fail = || Err(Error::bad_chain("not cached"));
            // Same bytes under another scheme, swapped roles, or a shifted boundary between
            // issuer and subject: all misses.
            assert!(verify_cached(Kind::AmdRsaPss, &i, &s, fail).is_err());
            assert!(verify_cached(Kind::Ecdsa, &s, &i, fail).is_err());
            let mut joined = i.clone();
            joined.extend_from_slice(&s);
            let (a, b) = joined.split_at(i.len() + 1);
            assert!(verify_cached(Kind::Ecdsa, a, b, fail).is_err());
            assert!(verify_cached(Kind::Ecdsa, &i, &s, fail).is_ok());
        }

        #[test]
        fn lru_is_bounded_and_keeps_recent_entries() {
            let mut lru = Lru::default();
            let k = |n: usize| key(Kind::Ecdsa, b"lru", &n.to_be_bytes());
            for n in 0..CAPACITY {
                lru.insert(k(n));
            }
            assert_eq!(lru.entries.len(), CAPACITY);
            // Use entry 0 so that entry 1 is now the least recently used.
            assert!(lru.touch(&k(0)));
            lru.insert(k(CAPACITY));
            assert_eq!(lru.entries.len(), CAPACITY);
            assert!(lru.touch(&k(0)));
            assert!(!lru.touch(&k(1)));
            assert!(lru.touch(&k(CAPACITY)));
            for n in CAPACITY + 1..3 * CAPACITY {
                lru.insert(k(n));
            }
            assert_eq!(lru.entries.len(), CAPACITY);
        }

        #[test]
        fn clear_forgets() {
            let (i, s) = (der("clear", 0), der("clear", 1));
            verify_cached(Kind::Ecdsa, &i, &s, || Ok(())).unwrap();
            clear_cache();
            assert!(
                verify_cached(Kind::Ecdsa, &i, &s, || Err(Error::bad_chain(
                    "checked again"
                )))
                .is_err()
            );
        }
    }

    /// Forget every cached link (for cold-cache benchmarks and tests).
    #[doc(hidden)]
    pub fn clear_cache() {
        let mut c = cache();
        c.entries.clear();
        c.clock = 0;
    }
}

/// Forget every cached certificate link ([`link_cache`]); for cold-cache benchmarks.
#[doc(hidden)]
pub fn clear_cache() {
    link_cache::clear_cache();
}

/// Byte range of the TBSCertificate TLV inside a DER Certificate.
fn tbs_range(der: &[u8]) -> der::Result<std::ops::Range<usize>> {
    let mut outer = SliceReader::new(der)?;
    let header = der::Header::decode(&mut outer)?;
    let start = usize::try_from(outer.position())?;
    let _ = header;
    let tbs = outer.tlv_bytes()?;
    let end = start
        .checked_add(tbs.len())
        .ok_or(der::ErrorKind::Overflow)?;
    Ok(start..end)
}

/// Parse every certificate in `bytes`: a PEM bundle (`-----BEGIN CERTIFICATE-----` blocks,
/// in file order, other text between blocks ignored) or a single DER certificate.
pub fn parse_certs(bytes: &[u8]) -> Result<Vec<Cert>> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    if bytes.first() == Some(&0x30) {
        return Ok(vec![Cert::from_der(bytes)?]);
    }
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(b) = find(rest, BEGIN) {
        let after = rest
            .get(b.saturating_add(BEGIN.len())..)
            .unwrap_or_default();
        let e =
            find(after, END).ok_or_else(|| Error::malformed("PEM certificate without END line"))?;
        let body = after.get(..e).unwrap_or_default();
        let der = decode_pem_body(body)?;
        out.push(Cert::from_der(&der)?);
        rest = after.get(e.saturating_add(END.len())..).unwrap_or_default();
    }
    if out.is_empty() {
        return Err(Error::malformed("no certificate found"));
    }
    Ok(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn decode_pem_body(body: &[u8]) -> Result<Vec<u8>> {
    use base64::Engine as _;
    let clean: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(&clean)
        .map_err(|e| Error::malformed(format!("PEM base64: {e}")))
}

/// Verify a chain, leaf first, to one of the pinned `roots`, at `now`.
///
/// `chain` may end with the root itself (which must then be DER-equal to a pinned root) or
/// with a certificate issued by a pinned root. Every link is name-chained and
/// ECDSA-verified; every certificate that issues another must not be marked as a non-CA;
/// every certificate (including the pinned root) must be valid at `now` and narrows
/// `window`. Errors: [`ErrorClass::BadChain`], [`ErrorClass::NotYetValid`],
/// [`ErrorClass::CertExpired`]. Structural (signature / root) failures are reported before
/// time failures, so an expired chain that would not verify anyway is `bad_chain`.
pub fn verify_chain(
    chain: &[Cert],
    roots: &[&Cert],
    now: OffsetDateTime,
    window: &mut Window,
) -> Result<()> {
    let leaf = chain
        .first()
        .ok_or_else(|| Error::bad_chain("empty certificate chain"))?;
    let last = chain.last().unwrap_or(leaf);
    // Full path: the given chain plus the pinned root if the chain does not end with it.
    let root = if let Some(r) = roots.iter().find(|r| r.der() == last.der()) {
        (*r).clone()
    } else {
        let r = roots
            .iter()
            .find(|r| last.issued_by_name(r) && last.verify_signed_by(r).is_ok())
            .ok_or_else(|| {
                Error::bad_chain(format!(
                    "chain does not lead to a pinned root (ends at {})",
                    last.subject()
                ))
            })?;
        (*r).clone()
    };
    let mut path: Vec<&Cert> = chain.iter().collect();
    if path.last().map(|c| c.der()) != Some(root.der()) {
        path.push(&root);
    }
    for pair in path.windows(2) {
        let (child, parent) = match pair {
            [c, p] => (*c, *p),
            _ => continue,
        };
        if !child.issued_by_name(parent) {
            return Err(Error::bad_chain(format!(
                "issuer of {} is {}, next certificate is {}",
                child.subject(),
                child.issuer(),
                parent.subject()
            )));
        }
        if parent.is_ca() == Some(false) {
            return Err(Error::bad_chain(format!(
                "{} is not a CA",
                parent.subject()
            )));
        }
        child.verify_signed_by(parent)?;
    }
    if !root.is_self_issued() || root.verify_signed_by(&root).is_err() {
        return Err(Error::bad_chain("pinned root is not self-signed"));
    }
    for cert in &path {
        cert.narrow(window);
    }
    // Report the earliest-failing time check: not-yet-valid first, then expiry.
    let mut expired = None;
    for cert in &path {
        match cert.check_valid_at(now) {
            Ok(()) => {}
            Err(e) if e.class() == ErrorClass::NotYetValid => return Err(e),
            Err(e) => {
                expired.get_or_insert(e);
            }
        }
    }
    expired.map_or(Ok(()), Err)
}

/// Check that `cert` is DER-equal to `pinned`.
pub fn require_pinned(cert: &Cert, pinned: &Cert) -> Result<()> {
    if cert.der() == pinned.der() {
        Ok(())
    } else {
        Err(Error::bad_chain(format!(
            "{} is not the pinned root",
            cert.subject()
        )))
    }
}

/// SHA-256 of `bytes` (for pinned-root fingerprints).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )]

    use super::*;
    use time::macros::datetime;

    fn corpus(path: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../../testdata/attestation/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn nvidia_root() -> Cert {
        Cert::from_pem_or_der(&corpus("roots/nvidia/NVIDIA_Device_Identity_CA.pem")).unwrap()
    }

    #[test]
    fn pem_chain_parses_in_order() {
        let chain = parse_certs(&corpus("nvidia-v1-hopper/collateral/cert_chain.pem")).unwrap();
        assert_eq!(chain.len(), 5);
        assert_eq!(chain.last().unwrap(), &nvidia_root());
        assert!(chain[0].issued_by_name(&chain[1]));
    }

    #[test]
    fn chain_verifies_and_narrows_window() {
        let chain = parse_certs(&corpus("nvidia-v1-hopper/collateral/cert_chain.pem")).unwrap();
        let root = nvidia_root();
        let mut w = Window::unbounded();
        verify_chain(&chain, &[&root], datetime!(2026-01-15 0:00 UTC), &mut w).unwrap();
        assert!(w.start >= root.not_before());
        assert!(w.end <= chain[0].not_after());
        // Without the root at the end, the pinned root completes the path.
        let mut w2 = Window::unbounded();
        verify_chain(
            &chain[..chain.len() - 1],
            &[&root],
            datetime!(2026-01-15 0:00 UTC),
            &mut w2,
        )
        .unwrap();
        assert_eq!(w, w2);
    }

    #[test]
    fn chain_errors() {
        let chain = parse_certs(&corpus("nvidia-v1-hopper/collateral/cert_chain.pem")).unwrap();
        let root = nvidia_root();
        let aws =
            Cert::from_pem_or_der(&corpus("roots/aws/aws_nitro_enclaves_root_G1.pem")).unwrap();
        let at = datetime!(2026-01-15 0:00 UTC);
        let mut w = Window::unbounded();
        // Wrong pinned root.
        let e = verify_chain(&chain, &[&aws], at, &mut w).unwrap_err();
        assert_eq!(e.class(), ErrorClass::BadChain);
        // Missing intermediate.
        let mut gap = chain.clone();
        gap.remove(1);
        assert_eq!(
            verify_chain(&gap, &[&root], at, &mut w)
                .unwrap_err()
                .class(),
            ErrorClass::BadChain
        );
        // Swapped order.
        let mut swapped = chain.clone();
        swapped.swap(0, 1);
        assert_eq!(
            verify_chain(&swapped, &[&root], at, &mut w)
                .unwrap_err()
                .class(),
            ErrorClass::BadChain
        );
        // Empty.
        assert_eq!(
            verify_chain(&[], &[&root], at, &mut w).unwrap_err().class(),
            ErrorClass::BadChain
        );
        // Time: before the root's notBefore and after the leaf's notAfter.
        let e = verify_chain(&chain, &[&root], datetime!(2020-01-01 0:00 UTC), &mut w).unwrap_err();
        assert_eq!(e.class(), ErrorClass::NotYetValid);
    }

    #[test]
    fn p256_chain_and_expiry() {
        // Intel TCB signing chain: P-256 / ecdsa-with-SHA256, finite validity.
        let chain = parse_certs(&corpus(
            "sgx-s1-confsw-hardening/collateral/tcb_signing_chain.pem",
        ))
        .unwrap();
        let root = Cert::from_pem_or_der(&corpus("roots/intel/Intel_SGX_Root_CA.der")).unwrap();
        let end = chain.iter().map(Cert::not_after).min().unwrap();
        let start = chain.iter().map(Cert::not_before).max().unwrap();
        let mut w = Window::unbounded();
        verify_chain(&chain, &[&root], end, &mut w).unwrap();
        assert_eq!((w.start, w.end), (start, end));
        let e =
            verify_chain(&chain, &[&root], end + time::Duration::seconds(1), &mut w).unwrap_err();
        assert_eq!(e.class(), ErrorClass::CertExpired);
        let e =
            verify_chain(&chain, &[&root], start - time::Duration::seconds(1), &mut w).unwrap_err();
        assert_eq!(e.class(), ErrorClass::NotYetValid);
        verify_chain(&chain, &[&root], start, &mut w).unwrap();
    }

    #[test]
    fn tampered_certificate_fails_chain() {
        let chain = parse_certs(&corpus("nvidia-v1-hopper/collateral/cert_chain.pem")).unwrap();
        let root = nvidia_root();
        let mut der = chain[1].der().to_vec();
        // Flip a byte well inside the TBS (in the public key / extensions area).
        let i = der.len() / 2;
        der[i] ^= 1;
        if let Ok(bad) = Cert::from_der(&der) {
            let mut c = chain.clone();
            c[1] = bad;
            let mut w = Window::unbounded();
            assert!(verify_chain(&c, &[&root], datetime!(2026-01-15 0:00 UTC), &mut w).is_err());
        }
    }

    #[test]
    fn cached_links_still_check_time_and_bytes() {
        let chain = parse_certs(&corpus("nvidia-v1-hopper/collateral/cert_chain.pem")).unwrap();
        let root = nvidia_root();
        let mut w = Window::unbounded();
        verify_chain(&chain, &[&root], datetime!(2026-01-15 0:00 UTC), &mut w).unwrap();
        // Every link is now cached; validity is still checked on each call.
        let e = verify_chain(&chain, &[&root], datetime!(2020-01-01 0:00 UTC), &mut w).unwrap_err();
        assert_eq!(e.class(), ErrorClass::NotYetValid);
        // A changed certificate is a different key: its signature is checked (and fails).
        let sig_at = chain[1].der().len() - 3;
        let mut der = chain[1].der().to_vec();
        der[sig_at] ^= 1;
        let mut c = chain.clone();
        c[1] = Cert::from_der(&der).unwrap();
        let e = verify_chain(&c, &[&root], datetime!(2026-01-15 0:00 UTC), &mut w).unwrap_err();
        assert_eq!(e.class(), ErrorClass::BadChain);
        verify_chain(&chain, &[&root], datetime!(2026-01-15 0:00 UTC), &mut w).unwrap();
    }

    #[test]
    fn non_positive_serials_parse() {
        let der = corpus("snp-n1-milan/collateral/vcek.der");
        let cert = Cert::from_der(&der).unwrap();
        assert_eq!(cert.serial(), &[0]);
        // Same certificate with serial -1 (02 01 ff): still parses (signature aside).
        let pos = der
            .windows(3)
            .position(|w| w == [0x02, 0x01, 0x00])
            .unwrap();
        let mut neg = der.clone();
        neg[pos + 2] = 0xff;
        assert_eq!(Cert::from_der(&neg).unwrap().serial(), &[0xff]);
    }

    #[test]
    fn garbage_is_malformed() {
        assert_eq!(
            parse_certs(b"hello").unwrap_err().class(),
            ErrorClass::Malformed
        );
        assert_eq!(
            parse_certs(&[0x30, 0x03, 1]).unwrap_err().class(),
            ErrorClass::Malformed
        );
        assert_eq!(
            parse_certs(b"-----BEGIN CERTIFICATE-----\nAAAA\n")
                .unwrap_err()
                .class(),
            ErrorClass::Malformed
        );
    }

    /// `ring` (P-256/P-384 with SHA-256/384) and the RustCrypto fallback (other hashes)
    /// accept exactly the valid signatures, in DER and fixed form.
    #[test]
    fn ecdsa_backends_agree() {
        use ecdsa::signature::hazmat::PrehashSigner;
        let msg = b"pith x509 backend check".to_vec();
        let k384 = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let k256 = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let keys = [
            (EcKey::P384(*k384.verifying_key()), true),
            (EcKey::P256(*k256.verifying_key()), false),
        ];
        for (key, is384) in keys {
            for hash in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
                let digest = hash.digest(&msg);
                let (der, fixed): (Vec<u8>, Vec<u8>) = if is384 {
                    let s: p384::ecdsa::Signature = k384.sign_prehash(&digest).unwrap();
                    (s.to_der().as_bytes().to_vec(), s.to_bytes().to_vec())
                } else {
                    let s: p256::ecdsa::Signature = k256.sign_prehash(&digest).unwrap();
                    (s.to_der().as_bytes().to_vec(), s.to_bytes().to_vec())
                };
                key.verify_der(hash, &msg, &der).unwrap();
                key.verify_raw(hash, &msg, &fixed).unwrap();
                let mut other = msg.clone();
                other[0] ^= 1;
                assert_eq!(
                    key.verify_der(hash, &other, &der).unwrap_err().class(),
                    ErrorClass::BadSignature
                );
                assert_eq!(
                    key.verify_raw(hash, &other, &fixed).unwrap_err().class(),
                    ErrorClass::BadSignature
                );
                for i in [0, fixed.len() / 2, fixed.len() - 1] {
                    let mut bad = fixed.clone();
                    bad[i] ^= 0x80;
                    assert!(key.verify_raw(hash, &msg, &bad).is_err());
                }
                let mut bad = der.clone();
                let last = bad.len() - 1;
                bad[last] ^= 1;
                assert!(key.verify_der(hash, &msg, &bad).is_err());
                // The other hash never verifies.
                let wrong = if hash == HashAlg::Sha256 {
                    HashAlg::Sha384
                } else {
                    HashAlg::Sha256
                };
                assert!(key.verify_der(wrong, &msg, &der).is_err());
            }
            // Zero scalars are rejected, not a panic.
            let zeros = vec![0u8; if is384 { 96 } else { 64 }];
            assert_eq!(
                key.verify_raw(HashAlg::Sha384, &msg, &zeros)
                    .unwrap_err()
                    .class(),
                ErrorClass::BadSignature
            );
            // The point handed to ring is the uncompressed SEC1 form.
            let point = key.sec1_uncompressed();
            assert_eq!(point.first(), Some(&4));
        }
    }

    #[test]
    fn raw_signature_lengths() {
        let root = nvidia_root();
        let key = root.ec_key().unwrap();
        assert_eq!(
            key.verify_raw(HashAlg::Sha384, b"x", &[0; 95])
                .unwrap_err()
                .class(),
            ErrorClass::Malformed
        );
        assert_eq!(
            key.verify_raw(HashAlg::Sha384, b"x", &[1; 96])
                .unwrap_err()
                .class(),
            ErrorClass::BadSignature
        );
    }
}
