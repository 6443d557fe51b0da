//! Errors of the Ansible / SSH layer.

use std::path::PathBuf;
use std::time::Duration;

/// What can go wrong while running a playbook or gathering facts.
///
/// No variant ever carries the private key or its base64 text: key problems
/// are described, never quoted.
#[derive(Debug, thiserror::Error)]
pub enum AnsibleError {
    /// `ansible-playbook` or `ssh` could not be started (not installed, not
    /// executable, ...).
    #[error("failed to start {program}: {source}")]
    Spawn {
        /// The program that was to be started.
        program: String,
        /// Why it could not be started.
        #[source]
        source: std::io::Error,
    },

    /// The run did not finish within its time limit; the child process (and
    /// its process group) was killed and the temporary files removed.
    #[error("{what} timed out after {}s", after.as_secs_f64())]
    Timeout {
        /// What timed out, e.g. `playbook restart.yaml` or `fact gathering on 10.0.0.1`.
        what: String,
        /// The time limit that was hit.
        after: Duration,
        /// The (redacted) output collected until the timeout, for the operation log.
        output: String,
    },

    /// A target's private key could not be turned into a key file (bad
    /// base64, empty key, file could not be written).
    #[error("SSH private key of {address}: {reason}")]
    KeyFile {
        /// The target whose key is unusable.
        address: String,
        /// What is wrong with it (never the key itself).
        reason: String,
    },

    /// A temporary file or directory (inventory, extra vars, run directory)
    /// could not be created or written.
    #[error("temporary file {}: {source}", path.display())]
    TempFile {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The host could not be reached over SSH (connection refused, timed
    /// out, authentication failed, ...).
    #[error("host {address} is unreachable: {msg}")]
    Unreachable {
        /// The host's address.
        address: String,
        /// SSH's reason.
        msg: String,
    },

    /// A remote command run over SSH failed (fact gathering).
    #[error("command on {address} failed with exit code {exit_code}: {stderr}")]
    Command {
        /// The host's address.
        address: String,
        /// Exit code of the remote command.
        exit_code: i32,
        /// Its standard error (trimmed).
        stderr: String,
    },

    /// Output could not be understood (facts, or Ansible's event stream).
    #[error("cannot parse {what}: {reason}")]
    Parse {
        /// What was being parsed.
        what: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The host runs an operating system Commissaire has no command set for.
    #[error("unsupported operating system {os_id:?} on {address}")]
    UnsupportedOs {
        /// The host's address.
        address: String,
        /// `ID` from its `/etc/os-release`.
        os_id: String,
    },

    /// The playbook file does not exist in the playbook directory.
    #[error("playbook {} not found", path.display())]
    PlaybookNotFound {
        /// The missing file.
        path: PathBuf,
    },

    /// `ansible-playbook` failed before reporting on any host (syntax error,
    /// bad option, unreadable inventory, ...).
    #[error("ansible-playbook {playbook} failed with exit code {exit_code}: {msg}")]
    Playbook {
        /// The playbook file name.
        playbook: String,
        /// Exit code of `ansible-playbook`.
        exit_code: i32,
        /// The last lines of its error output.
        msg: String,
        /// The whole (redacted) output, for the operation log.
        output: String,
    },

    /// `run` was called without any target.
    #[error("no target hosts given")]
    NoTargets,
}
