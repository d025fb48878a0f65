//! Signing keys for transactions: a private-key file (hex, never on the command line), an
//! encrypted JSON keystore (Web3 Secret Storage), and the local network's development
//! accounts written as key files with mode 0600.

use std::io::Write;
use std::path::{Path, PathBuf};

use alloy::signers::local::PrivateKeySigner;

use crate::anvil::DevAccount;
use crate::error::{Error, Result};

/// Read a private key file: 32 bytes as hex (optionally `0x`-prefixed, surrounding
/// whitespace ignored). Refuses files readable by group or others.
pub fn signer_from_key_file(path: &Path) -> Result<PrivateKeySigner> {
    check_private(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let hex_str = text.trim();
    let hex_str = hex_str.strip_prefix("0x").unwrap_or(hex_str);
    let bytes = hex::decode(hex_str)
        .map_err(|_| Error::Key(format!("{}: not a hex private key", path.display())))?;
    if bytes.len() != 32 {
        return Err(Error::Key(format!(
            "{}: a private key is 32 bytes, found {}",
            path.display(),
            bytes.len()
        )));
    }
    PrivateKeySigner::from_slice(&bytes).map_err(|e| Error::Key(format!("{}: {e}", path.display())))
}

/// Decrypt a Web3 Secret Storage keystore file with `password`.
pub fn signer_from_keystore(path: &Path, password: &[u8]) -> Result<PrivateKeySigner> {
    PrivateKeySigner::decrypt_keystore(path, password)
        .map_err(|e| Error::Key(format!("{}: {e}", path.display())))
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::Key(format!(
            "{}: key file is readable by group or others (mode {:o}); chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<()> {
    Ok(())
}

/// Write a secret to a new file with mode 0600 (created with that mode, never wider).
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| Error::io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(path, e))?;
    }
    f.write_all(contents).map_err(|e| Error::io(path, e))
}

/// The key file of development account `index` under a network directory.
pub fn dev_key_path(dir: &Path, index: usize) -> PathBuf {
    dir.join("keys").join(format!("dev-{index}.key"))
}

/// Write the local development accounts as `DIR/keys/dev-N.key` (mode 0600) and return
/// their paths. These keys are public knowledge (anvil's default mnemonic): local only.
pub fn write_dev_keys(dir: &Path, accounts: &[DevAccount]) -> Result<Vec<PathBuf>> {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).map_err(|e| Error::io(&keys, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(&keys, e))?;
    }
    accounts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let p = dev_key_path(dir, i);
            write_private_file(&p, format!("{}\n", a.private_key).as_bytes())?;
            Ok(p)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    #[test]
    fn key_file_round_trip_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let acc = DevAccount {
            address: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
                .parse()
                .unwrap(),
            private_key: KEY0.into(),
        };
        let paths = write_dev_keys(dir.path(), std::slice::from_ref(&acc)).unwrap();
        let s = signer_from_key_file(&paths[0]).unwrap();
        assert_eq!(s.address(), acc.address);

        // Wider permissions are refused.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&paths[0], std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            signer_from_key_file(&paths[0]),
            Err(Error::Key(_))
        ));

        // Not hex, wrong length.
        for bad in ["zz", "0x0102"] {
            let p = dir.path().join("bad.key");
            write_private_file(&p, bad.as_bytes()).unwrap();
            assert!(matches!(signer_from_key_file(&p), Err(Error::Key(_))));
        }
    }
}
