//! The development CA of a local network: a P-256 key pair generated per network (never a
//! constant), stored as `dev-ca.pem` (self-signed certificate, public) and `dev-ca.key`
//! (PKCS#8 private key, mode 0600), and the attestation keys it certifies.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use der::{Encode, EncodePem};
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rand_core::{OsRng, RngCore};
use x509_cert::Certificate;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use crate::x509::{Cert, EcKey};

/// File name of the CA certificate (PEM) inside the CA directory.
pub const CERT_FILE: &str = "dev-ca.pem";
/// File name of the CA private key (PKCS#8 PEM, mode 0600) inside the CA directory.
pub const KEY_FILE: &str = "dev-ca.key";
/// Lock file serialising concurrent `init` calls on one directory.
const LOCK_FILE: &str = "dev-ca.lock";

/// How long a new development CA is valid: 10 years.
pub const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long an attestation key certificate is valid: 30 days (sources renew it).
pub const AK_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Certificates start this long before "now", to tolerate clock skew between processes.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// Errors creating, storing or loading the development CA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevCaError {
    /// A file could not be read, written or created.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The key file is readable by group or others.
    #[error(
        "{path}: private key has mode {mode:o}; it must not be accessible to group or others (chmod 600)"
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file is not a P-256 PKCS#8 key.
    #[error("{path}: not a P-256 PKCS#8 private key")]
    BadKey {
        /// The key file.
        path: PathBuf,
    },
    /// The certificate file is not a usable development CA certificate.
    #[error("{path}: {reason}")]
    BadCert {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Building or encoding a certificate failed.
    #[error("certificate encoding: {0}")]
    Encode(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DevCaError + '_ {
    move |source| DevCaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A development CA: its key and self-signed certificate.
pub struct DevCa {
    key: SigningKey,
    cert: Certificate,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("DevCa")
            .field("subject", &self.cert.tbs_certificate.subject.to_string())
            .finish()
    }
}

impl DevCa {
    /// Generate a new CA in memory with a fresh key from the OS RNG, valid from shortly
    /// before `now` for [`CA_LIFETIME`].
    pub fn generate(now: SystemTime) -> Result<Self, DevCaError> {
        Self::generate_named(now, None)
    }

    fn generate_named(now: SystemTime, subject: Option<Name>) -> Result<Self, DevCaError> {
        let key = SigningKey::random(&mut OsRng);
        let spki = spki_of(&key)?;
        let subject = match subject {
            Some(s) => s,
            None => {
                // A short key fingerprint in the name tells networks apart in error messages.
                use sha2::Digest;
                let h = sha2::Sha256::digest(spki.to_der().map_err(enc)?);
                let fp = hex::encode(h.get(..4).unwrap_or_default());
                Name::from_str(&format!(
                    "CN=Pith simulated development CA {fp},O=Pith (simulated; not a TEE)"
                ))
                .map_err(enc)?
            }
        };
        let validity = validity(now, CA_LIFETIME, None)?;
        let builder = CertificateBuilder::new(
            Profile::Root,
            random_serial()?,
            validity,
            subject,
            spki,
            &key,
        )
        .map_err(enc)?;
        let cert = builder.build::<DerSignature>().map_err(enc)?;
        let cert_der = cert.to_der().map_err(enc)?;
        Ok(Self {
            key,
            cert,
            cert_der,
        })
    }

    /// Load the CA stored in `dir` ([`CERT_FILE`], [`KEY_FILE`]). The key file must not be
    /// accessible to group or others, and must match the certificate.
    pub fn load(dir: &Path) -> Result<Self, DevCaError> {
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        let meta = fs::metadata(&key_path).map_err(io_err(&key_path))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(DevCaError::InsecurePermissions {
                path: key_path,
                mode,
            });
        }
        let key_pem =
            zeroize::Zeroizing::new(fs::read_to_string(&key_path).map_err(io_err(&key_path))?);
        let key = SigningKey::from_pkcs8_pem(&key_pem).map_err(|_| DevCaError::BadKey {
            path: key_path.clone(),
        })?;
        let cert_bytes = fs::read(&cert_path).map_err(io_err(&cert_path))?;
        let bad = |reason: String| DevCaError::BadCert {
            path: cert_path.clone(),
            reason,
        };
        let parsed = Cert::from_pem_or_der(&cert_bytes)
            .map_err(|e| bad(format!("not a certificate: {}", e.message())))?;
        if parsed.ec_key().ok() != Some(EcKey::P256(*key.verifying_key())) {
            return Err(bad(format!(
                "does not match the key in {}",
                key_path.display()
            )));
        }
        let cert_der = parsed.der().to_vec();
        let cert = <Certificate as der::Decode>::from_der(&cert_der).map_err(enc)?;
        Ok(Self {
            key,
            cert,
            cert_der,
        })
    }

    /// Load the CA in `dir`, creating the directory (mode 0700) and a new CA if there is none.
    /// Concurrent calls on the same directory (processes of one local network starting
    /// together) agree on one CA: creation happens under an exclusive lock on
    /// `dir/dev-ca.lock`, and each file is written to a temporary name and renamed.
    pub fn init(dir: &Path, now: SystemTime) -> Result<Self, DevCaError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        let result = if dir.join(KEY_FILE).exists() {
            Self::load(dir)
        } else {
            let ca = Self::generate(now)?;
            ca.store(dir).map(|()| ca)
        };
        drop(lock);
        result
    }

    /// Write the key (mode 0600) and certificate into `dir`, replacing existing files.
    pub fn store(&self, dir: &Path) -> Result<(), DevCaError> {
        let key_pem = self.key.to_pkcs8_pem(LineEnding::LF).map_err(enc)?;
        write_atomic(&dir.join(KEY_FILE), key_pem.as_bytes(), 0o600)?;
        write_atomic(&dir.join(CERT_FILE), self.cert_pem()?.as_bytes(), 0o644)?;
        tracing::info!(target: "pith_attest::simulated", dir = %dir.display(), "stored development CA");
        Ok(())
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> Result<String, DevCaError> {
        self.cert.to_pem(LineEnding::LF).map_err(enc)
    }

    /// Issue a new attestation key: a fresh P-256 key with a leaf certificate signed by this
    /// CA, valid from shortly before `now` for [`AK_LIFETIME`] (never beyond the CA).
    pub fn issue_attestation_key(&self, now: SystemTime) -> Result<AttestationKey, DevCaError> {
        let key = SigningKey::random(&mut OsRng);
        let spki = spki_of(&key)?;
        let subject =
            Name::from_str("CN=Pith simulated attestation key,O=Pith (simulated; not a TEE)")
                .map_err(enc)?;
        let ca_end = self
            .cert
            .tbs_certificate
            .validity
            .not_after
            .to_system_time();
        let validity = validity(now, AK_LIFETIME, Some(ca_end))?;
        let profile = Profile::Leaf {
            issuer: self.cert.tbs_certificate.subject.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
            include_subject_key_identifier: true,
        };
        let builder = CertificateBuilder::new(
            profile,
            random_serial()?,
            validity,
            subject,
            spki,
            &self.key,
        )
        .map_err(enc)?;
        let cert = builder.build::<DerSignature>().map_err(enc)?;
        let cert_der = cert.to_der().map_err(enc)?;
        let not_after = cert.tbs_certificate.validity.not_after.to_system_time();
        Ok(AttestationKey {
            key,
            cert_der,
            not_after,
        })
    }
}

#[cfg(test)]
impl DevCa {
    /// A CA with the same subject name as `self` but another key.
    pub(super) fn impostor(&self, now: SystemTime) -> Result<Self, DevCaError> {
        Self::generate_named(now, Some(self.cert.tbs_certificate.subject.clone()))
    }
    pub(super) fn key(&self) -> &SigningKey {
        &self.key
    }
}

#[cfg(test)]
impl AttestationKey {
    pub(super) fn for_tests(key: SigningKey, cert_der: Vec<u8>) -> Self {
        Self {
            key,
            cert_der,
            not_after: SystemTime::now(),
        }
    }
}

/// An attestation key certified by a [`DevCa`]; signs simulated evidence.
pub struct AttestationKey {
    pub(super) key: SigningKey,
    pub(super) cert_der: Vec<u8>,
    not_after: SystemTime,
}

impl std::fmt::Debug for AttestationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestationKey")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl AttestationKey {
    /// The certificate (DER) the CA issued for this key.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }
    /// End of the certificate's validity.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }
}

fn enc(e: impl std::fmt::Display) -> DevCaError {
    DevCaError::Encode(e.to_string())
}

fn spki_of(key: &SigningKey) -> Result<SubjectPublicKeyInfoOwned, DevCaError> {
    let der = key.verifying_key().to_public_key_der().map_err(enc)?;
    SubjectPublicKeyInfoOwned::try_from(der.as_bytes()).map_err(enc)
}

fn random_serial() -> Result<SerialNumber, DevCaError> {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    // Positive and without a leading zero octet: a canonical 16-byte INTEGER.
    if let Some(first) = bytes.first_mut() {
        *first = (*first & 0x7f) | 0x40;
    }
    SerialNumber::new(&bytes).map_err(enc)
}

fn validity(
    now: SystemTime,
    lifetime: Duration,
    cap: Option<SystemTime>,
) -> Result<Validity, DevCaError> {
    // Whole seconds: X.509 times have no fractions.
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(enc)?
        .as_secs();
    let now = SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .ok_or_else(|| enc("time out of range"))?;
    let start = now
        .checked_sub(BACKDATE)
        .ok_or_else(|| enc("time out of range"))?;
    let mut end = now
        .checked_add(lifetime)
        .ok_or_else(|| enc("time out of range"))?;
    if let Some(cap) = cap {
        end = end.min(cap);
    }
    Ok(Validity {
        not_before: Time::try_from(start).map_err(enc)?,
        not_after: Time::try_from(end).map_err(enc)?,
    })
}

fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), DevCaError> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f: File = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    // `mode` applies only on creation; force it for a left-over temporary file.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err(&tmp))?;
    f.write_all(data).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err(path))
}

#[cfg(test)]
/// `OffsetDateTime` of a `SystemTime` (whole seconds).
pub(crate) fn to_offset(t: SystemTime) -> Option<time::OffsetDateTime> {
    let secs = i64::try_from(t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs()).ok()?;
    time::OffsetDateTime::from_unix_timestamp(secs).ok()
}
