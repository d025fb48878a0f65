//! The file operations the providers need, behind a trait so tests can emulate the kernel
//! (configfs-tsm) or Gramine side effects over a real temporary directory.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::Path;

/// File operations on interface files. Implementations must be usable from several threads.
pub trait Fs: Send + Sync + std::fmt::Debug {
    /// Create one directory (not recursive; fails if it exists).
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Remove one empty directory (configfs entries count as empty).
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Read a whole attribute file, looping over short reads until end of file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Write `data` to an existing attribute file (no create, no truncate), all of it.
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
    /// Whether `path` is a directory.
    fn is_dir(&self, path: &Path) -> bool;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsFs;

impl Fs for OsFs {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut f = std::fs::File::open(path)?;
        let mut out = Vec::new();
        f.read_to_end(&mut out)?;
        Ok(out)
    }
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        // configfs and sysfs attributes take the value in one write; no O_CREAT/O_TRUNC.
        let mut f = OpenOptions::new().write(true).open(path)?;
        f.write_all(data)?;
        f.flush()
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
}
