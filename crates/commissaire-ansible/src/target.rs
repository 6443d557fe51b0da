//! Hosts to manage and the hygiene of their private keys on disk.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use crate::AnsibleError;

/// A host to run a playbook on (or gather facts from) over SSH.
///
/// `Debug` never prints the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The host's address (IP or name); also its inventory name and the key
    /// of its outcome in a [`PlaybookReport`](crate::PlaybookReport).
    pub address: String,
    /// The SSH user (`HostCreds.remote_user`, usually `root`).
    pub remote_user: String,
    /// The SSH private key (OpenSSH/PEM text), base64 encoded as in
    /// `HostCreds.ssh_priv_key`.
    pub ssh_priv_key_b64: String,
    /// The host's pinned SSH host key (`known_hosts` lines, as
    /// `HostCreds.host_key`): every connection of the run verifies it.
    /// `None`: the host is not verified (any key is accepted).
    pub known_hosts: Option<String>,
    /// The control socket of a master connection to the host that is up
    /// (a lease of `commissaire-ssh`'s session pool): Ansible
    /// multiplexes over it instead of logging in again, and connects by
    /// itself (verifying `known_hosts`) only if it is gone.
    pub control_path: Option<PathBuf>,
}

impl Target {
    /// A target from an address, a user and a base64-encoded private key.
    pub fn new(
        address: impl Into<String>,
        remote_user: impl Into<String>,
        ssh_priv_key_b64: impl Into<String>,
    ) -> Self {
        Self {
            address: address.into(),
            remote_user: remote_user.into(),
            ssh_priv_key_b64: ssh_priv_key_b64.into(),
            known_hosts: None,
            control_path: None,
        }
    }

    /// A target from an address, a user and the private key's text (it is
    /// base64 encoded here).
    pub fn with_private_key(
        address: impl Into<String>,
        remote_user: impl Into<String>,
        private_key: &[u8],
    ) -> Self {
        Self::new(address, remote_user, STANDARD.encode(private_key))
    }

    /// The decoded private key, with a final newline (OpenSSH rejects keys
    /// without one).
    pub(crate) fn decoded_key(&self) -> Result<Vec<u8>, AnsibleError> {
        let compact: String = self
            .ssh_priv_key_b64
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        // The decoder's error messages quote offending symbols: describe
        // the problem without them.
        let mut key = STANDARD
            .decode(&compact)
            .or_else(|_| STANDARD_NO_PAD.decode(&compact))
            .map_err(|_| AnsibleError::KeyFile {
                address: self.address.clone(),
                reason: "the key is not valid base64".into(),
            })?;
        if key.iter().all(u8::is_ascii_whitespace) {
            return Err(AnsibleError::KeyFile {
                address: self.address.clone(),
                reason: "the key is empty".into(),
            });
        }
        if key.last() != Some(&b'\n') {
            key.push(b'\n');
        }
        Ok(key)
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("address", &self.address)
            .field("remote_user", &self.remote_user)
            .field("ssh_priv_key_b64", &"<redacted>")
            .field("known_hosts", &self.known_hosts.is_some())
            .field("control_path", &self.control_path)
            .finish()
    }
}

/// A file holding secret material (a private key, extra vars that may
/// contain tokens): created with mode 0600, removed when dropped — on
/// success, error, timeout and when the future owning it is cancelled.
#[derive(Debug)]
pub(crate) struct SecretFile {
    path: PathBuf,
}

impl SecretFile {
    /// Creates `path` (which must not exist) with mode 0600 and writes
    /// `content` into it.
    pub(crate) fn create(path: PathBuf, content: &[u8]) -> std::io::Result<Self> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        // From here on the guard owns the file, so a failed write removes it.
        let guard = Self { path };
        file.write_all(content)?;
        file.sync_all()?;
        Ok(guard)
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove secret file");
        }
    }
}

/// A private per-run directory (mode 0700) under a base directory, removed
/// with everything in it when dropped.
#[derive(Debug)]
pub(crate) struct RunDir {
    dir: tempfile::TempDir,
}

/// Run directories are named `commissaire-ansible-<pid>-XXXXXX`.
const RUN_DIR_PREFIX: &str = "commissaire-ansible-";

/// Removes the run directories (and the key copies in them) that processes
/// killed without a chance to clean up (`kill -9`, a crash) left in `base`:
/// those whose process id is no longer alive. Done once per process and base.
fn sweep_orphans(base: &Path) {
    static SWEPT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
        if swept.iter().any(|b| b == base) {
            return;
        }
        swept.push(base.to_path_buf());
    }
    for (dir, pid) in commissaire_ssh::orphaned_dirs(base, RUN_DIR_PREFIX) {
        match fs::remove_dir_all(&dir) {
            Ok(()) => {
                tracing::info!(path = %dir.display(), pid, "removed the run directory of a process that is gone")
            }
            Err(e) => {
                tracing::debug!(path = %dir.display(), error = %e, "cannot remove an orphaned run directory")
            }
        }
    }
}

impl RunDir {
    /// Creates `<base>/commissaire-ansible-<pid>-XXXXXX`, first removing the
    /// ones of processes that died without cleaning up.
    pub(crate) fn new(base: &Path) -> Result<Self, AnsibleError> {
        sweep_orphans(base);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{RUN_DIR_PREFIX}{}-", std::process::id()))
            .tempdir_in(base)
            .map_err(|source| AnsibleError::TempFile {
                path: base.to_path_buf(),
                source,
            })?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).map_err(|source| {
            AnsibleError::TempFile {
                path: dir.path().to_path_buf(),
                source,
            }
        })?;
        Ok(Self { dir })
    }

    /// The directory's path.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a target's key into `<run dir>/<name>` (mode 0600).
    pub(crate) fn key_file(&self, target: &Target, name: &str) -> Result<SecretFile, AnsibleError> {
        let key = target.decoded_key()?;
        SecretFile::create(self.path().join(name), &key).map_err(|e| AnsibleError::KeyFile {
            address: target.address.clone(),
            reason: format!("cannot write the key file: {e}"),
        })
    }

    /// Writes a secret file `<run dir>/<name>` (mode 0600).
    pub(crate) fn secret_file(
        &self,
        name: &str,
        content: &[u8],
    ) -> Result<SecretFile, AnsibleError> {
        let path = self.path().join(name);
        SecretFile::create(path.clone(), content)
            .map_err(|source| AnsibleError::TempFile { path, source })
    }

    /// Creates a subdirectory (mode 0700).
    pub(crate) fn subdir(&self, name: &str) -> Result<PathBuf, AnsibleError> {
        let path = self.path().join(name);
        fs::create_dir(&path)
            .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o700)))
            .map_err(|source| AnsibleError::TempFile {
                path: path.clone(),
                source,
            })?;
        Ok(path)
    }
}

/// Kills a child's whole process group (the child was started as a group
/// leader) when dropped while armed: `ansible-playbook` forks workers and
/// `ssh` processes that `kill_on_drop` alone would leave behind.
#[derive(Debug)]
pub(crate) struct ProcessGroupGuard {
    pgid: Option<i32>,
}

impl ProcessGroupGuard {
    /// Guards the process group led by `pid` (if known).
    pub(crate) fn new(pid: Option<u32>) -> Self {
        Self {
            pgid: pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1),
        }
    }

    /// The child exited normally: leave the group alone.
    pub(crate) fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for ProcessGroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // SAFETY: killpg has no memory-safety preconditions; pgid > 1
            // is the group this crate created for its own child.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_key() {
        let t = Target::with_private_key("10.0.0.1", "root", b"-----BEGIN SECRET-----");
        let s = format!("{t:?}");
        assert!(s.contains("10.0.0.1") && s.contains("root"), "{s}");
        assert!(!s.contains(&t.ssh_priv_key_b64), "{s}");
        assert!(!s.contains("SECRET"), "{s}");
    }

    #[test]
    fn key_decoding() {
        let t = Target::with_private_key("h", "root", b"KEY");
        assert_eq!(t.decoded_key().unwrap(), b"KEY\n");
        let t = Target::new("h", "root", "S0VZ\n"); // "KEY" with a line break
        assert_eq!(t.decoded_key().unwrap(), b"KEY\n");
        let t = Target::new("h", "root", "S0VZCg"); // no padding
        assert_eq!(t.decoded_key().unwrap(), b"KEY\n");
        let e = Target::new("h", "root", "not base64 %%%")
            .decoded_key()
            .unwrap_err();
        assert!(matches!(e, AnsibleError::KeyFile { .. }));
        assert!(!e.to_string().contains('%'), "{e}");
        let e = Target::new("h", "root", "").decoded_key().unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }

    #[test]
    fn secret_files_are_0600_and_removed_on_drop() {
        let base = tempfile::tempdir().unwrap();
        let run = RunDir::new(base.path()).unwrap();
        let mode = fs::metadata(run.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let f = run.secret_file("k", b"secret").unwrap();
        let mode = fs::metadata(f.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let p = f.path().to_path_buf();
        drop(f);
        assert!(!p.exists());
        drop(run);
        assert_eq!(fs::read_dir(base.path()).unwrap().count(), 0);
    }

    #[test]
    fn run_dirs_of_dead_processes_are_removed() {
        let base = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let orphan = base.path().join(format!("{RUN_DIR_PREFIX}{dead}-abc123"));
        fs::create_dir(&orphan).unwrap();
        fs::write(orphan.join("key-0"), b"secret").unwrap();
        // pid 1 is alive: its directory is left alone, as is anything else.
        let alive = base.path().join(format!("{RUN_DIR_PREFIX}1-def456"));
        fs::create_dir(&alive).unwrap();
        let other = base.path().join("something-else");
        fs::create_dir(&other).unwrap();
        let run = RunDir::new(base.path()).unwrap();
        assert!(!orphan.exists(), "the dead process's key copy is gone");
        assert!(alive.exists() && other.exists());
        let name = run
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            name.starts_with(&format!("{RUN_DIR_PREFIX}{}-", std::process::id())),
            "{name}"
        );
    }
}
