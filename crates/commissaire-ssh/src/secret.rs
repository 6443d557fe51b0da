//! Files that hold secrets: written 0600 in the pool's private directory,
//! removed when dropped.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A file holding a secret (a private key); removed when dropped.
#[derive(Debug)]
pub(crate) struct SecretFile(PathBuf);

impl SecretFile {
    /// Writes `content` to a new file `path` (0600, never an existing one).
    pub fn write(path: PathBuf, content: &[u8]) -> std::io::Result<SecretFile> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        let file_guard = SecretFile(path);
        file.write_all(content)?;
        if !content.ends_with(b"\n") {
            file.write_all(b"\n")?;
        }
        Ok(file_guard)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
