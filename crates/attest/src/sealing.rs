//! Sealing: state a TEE node (worker, KMS) keeps on the untrusted disk, encrypted and
//! authenticated under a key only the node's measured code can obtain.
//!
//! **The simulated platform's sealing key is a random file** `sealing.key` in the state
//! directory, labelled as simulated: it protects against nothing on the host. On a real TEE
//! the same [`Sealer`] is built from the platform's sealing key (SGX `EGETKEY`, TDX/SEV-SNP
//! derived keys) or a KMS-derived disk key bound to the measurement, so another binary or
//! machine cannot open the state.
//!
//! ```text
//! sealed = nonce(24) ‖ XChaCha20-Poly1305(sealing_key, nonce, plaintext,
//!                                          ad = domain ‖ 0x00 ‖ name)
//! ```
//! `domain` separates the users (`pith/v1/worker-state`, `pith/v1/kms-state`) and `name` is
//! the file name (or record name) so a sealed blob moved to another name does not open.

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

/// File name of the simulated sealing key.
pub const SEALING_KEY_FILE: &str = "sealing.key";
/// First line of the simulated sealing-key file (the rest is the hex key).
const SIMULATED_LABEL: &str = "# SIMULATED TEE sealing key: a real TEE derives this from the platform; not secret from the host";

/// Why sealing or unsealing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The file system failed.
    #[error("{path}: {detail}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What happened.
        detail: String,
    },
    /// The sealing key file is malformed.
    #[error("{path}: malformed sealing key: {detail}")]
    BadKey {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A sealed blob does not open: tampered, truncated, renamed, or sealed on another machine.
    #[error("{name}: does not open with this sealing key (tampered, or another machine's)")]
    Unseal {
        /// The file or record name.
        name: String,
    },
}

fn io(path: &Path, e: impl std::fmt::Display) -> SealError {
    SealError::Io {
        path: path.to_owned(),
        detail: e.to_string(),
    }
}

/// Write `bytes` to `path` readable by the owner only (mode 0600 on Unix).
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Seals and opens a node's state (files in its state directory, or blobs it stores elsewhere).
pub struct Sealer {
    key: Zeroizing<[u8; 32]>,
    dir: PathBuf,
    domain: &'static [u8],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// The simulated sealer of `dir` for `domain`: loads `dir/sealing.key`, creating it
    /// (mode 0600) on first start.
    pub fn simulated(dir: &Path, domain: &'static [u8]) -> Result<Self, SealError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let path = dir.join(SEALING_KEY_FILE);
        let key = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let hexkey = text
                    .lines()
                    .find(|l| !l.starts_with('#'))
                    .unwrap_or_default()
                    .trim();
                let raw = Zeroizing::new(hex::decode(hexkey).map_err(|e| SealError::BadKey {
                    path: path.clone(),
                    detail: e.to_string(),
                })?);
                let key: [u8; 32] = raw.as_slice().try_into().map_err(|_| SealError::BadKey {
                    path: path.clone(),
                    detail: "expected 32 bytes".into(),
                })?;
                Zeroizing::new(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = Zeroizing::new([0u8; 32]);
                OsRng.fill_bytes(key.as_mut());
                let text = Zeroizing::new(format!(
                    "{SIMULATED_LABEL}\n{}\n",
                    hex::encode(key.as_ref())
                ));
                write_private_file(&path, text.as_bytes()).map_err(|e| io(&path, e))?;
                key
            }
            Err(e) => return Err(io(&path, e)),
        };
        Ok(Self {
            key,
            dir: dir.to_owned(),
            domain,
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn ad(&self, name: &str) -> Vec<u8> {
        let mut ad = self.domain.to_vec();
        ad.push(0);
        ad.extend_from_slice(name.as_bytes());
        ad
    }

    /// Seal `plaintext` under `name` (bound as associated data).
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let cipher = XChaCha20Poly1305::new(self.key.as_ref().into());
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &self.ad(name),
                },
            )
            .map_err(|_| SealError::Unseal {
                name: name.to_owned(),
            })?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Open a blob sealed under `name`.
    pub fn unseal(&self, name: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let (nonce, ct) = sealed
            .split_first_chunk::<24>()
            .ok_or_else(|| SealError::Unseal {
                name: name.to_owned(),
            })?;
        let cipher = XChaCha20Poly1305::new(self.key.as_ref().into());
        cipher
            .decrypt(
                &XNonce::from(*nonce),
                Payload {
                    msg: ct,
                    aad: &self.ad(name),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Unseal {
                name: name.to_owned(),
            })
    }

    /// Seal `plaintext` as the state file `name` (relative to the state directory; written
    /// to a temporary file, then renamed).
    pub fn write(&self, name: &str, plaintext: &[u8]) -> Result<(), SealError> {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let out = self.seal(name, plaintext)?;
        let tmp = path.with_extension("tmp");
        write_private_file(&tmp, &out).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
    }

    /// Open the state file `name`; `None` when it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SealError> {
        let path = self.dir.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path, e)),
        };
        self.unseal(name, &bytes)
            .map(Some)
            .map_err(|_| SealError::Unseal {
                name: path.display().to_string(),
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_binding_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sealer::simulated(dir.path(), b"test-domain").unwrap();
        s.write("a", b"secret").unwrap();
        assert_eq!(s.read("a").unwrap().unwrap().as_slice(), b"secret");
        assert!(s.read("missing").unwrap().is_none());
        // the same key file reopens
        let s2 = Sealer::simulated(dir.path(), b"test-domain").unwrap();
        assert_eq!(s2.read("a").unwrap().unwrap().as_slice(), b"secret");
        // another domain, another name, a flipped byte, another machine: refused
        let other_domain = Sealer::simulated(dir.path(), b"other").unwrap();
        assert!(matches!(
            other_domain.read("a"),
            Err(SealError::Unseal { .. })
        ));
        std::fs::copy(dir.path().join("a"), dir.path().join("b")).unwrap();
        assert!(s.read("b").is_err());
        let mut t = std::fs::read(dir.path().join("a")).unwrap();
        t[30] ^= 1;
        std::fs::write(dir.path().join("a"), &t).unwrap();
        assert!(s.read("a").is_err());
        let blob = s.seal("rec", b"x").unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        assert!(
            Sealer::simulated(elsewhere.path(), b"test-domain")
                .unwrap()
                .unseal("rec", &blob)
                .is_err()
        );
        assert!(s.unseal("rec", &blob[..10]).is_err());
        let label = std::fs::read_to_string(dir.path().join(SEALING_KEY_FILE)).unwrap();
        assert!(label.starts_with("# SIMULATED"));
    }
}
