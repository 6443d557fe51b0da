//! The SSH pre-flight of a playbook run: before `ansible-playbook` starts,
//! each target's SSH control master is opened by a plain `ssh` call, so
//!
//! * a host that cannot be reached or refuses the key is reported with
//!   ssh's own words ("Connection refused", "Permission denied"). Through
//!   Ansible, with pipelining, that reason is lost whenever ssh dies while
//!   Ansible writes the module to its standard input: Ansible then waits
//!   1 ms for ssh to exit and, on a busy machine, reports "Data could not be
//!   sent ... Broken pipe" instead;
//! * Ansible's own connections multiplex over the master
//!   (`ansible_control_path`), without a handshake of their own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::Semaphore;

/// At most this many pre-flight connections are opened at once.
const CONCURRENCY: usize = 32;

/// ssh's `ConnectTimeout` (Ansible's default connection timeout).
const CONNECT_TIMEOUT_SECS: u64 = 10;

/// A pre-flight that has not ended after this long is given up (a host
/// that accepts the TCP connection and then says nothing).
const LIMIT: Duration = Duration::from_secs(30);

/// One host to open a master for.
#[derive(Debug, Clone)]
pub(crate) struct Preflight {
    /// The target's address.
    pub(crate) address: String,
    /// Its SSH user.
    pub(crate) user: String,
    /// The private key file.
    pub(crate) key: PathBuf,
    /// The control socket the master listens on (and Ansible uses).
    pub(crate) control_path: PathBuf,
    /// The host-key options (see [`host_key_args`]).
    pub(crate) host_key_args: String,
    /// Whether they verify a pinned key.
    pub(crate) pinned: bool,
}

/// The SSH options that verify a host's key: against the run's
/// `known_hosts` file when the key is pinned, else none (any key).
pub(crate) fn host_key_args(known_hosts: Option<&Path>) -> String {
    match known_hosts {
        Some(file) => format!(
            "-o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -o IdentitiesOnly=yes",
            file.display()
        ),
        None => "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes"
            .to_string(),
    }
}

/// Opens every host's master, at most [`CONCURRENCY`] at a time; returns,
/// in the hosts' order, `Ok(())` for a host whose master is up and
/// `Err(reason)` (ssh's error output) for one that could not be reached or
/// logged in to. `scratch` is a private directory for ssh's error output.
pub(crate) async fn open_masters(hosts: &[Preflight], scratch: &Path) -> Vec<Result<(), String>> {
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, host) in hosts.iter().enumerate() {
        let host = host.clone();
        let limit = limit.clone();
        let err_file = scratch.join(format!("preflight-{i}.err"));
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (i, open_master(&host, &err_file).await)
        });
    }
    let mut results: Vec<Result<(), String>> = vec![Ok(()); hosts.len()];
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((i, result)) => results[i] = result,
            Err(e) => tracing::warn!(error = %e, "an ssh pre-flight task ended abnormally"),
        }
    }
    results
}

/// One host's master: `ssh ... true` with `ControlPersist`, so the master
/// stays in the background (until the run's `ControlMasters` guard stops it)
/// and this call returns when the login has run `true`.
async fn open_master(host: &Preflight, err_file: &Path) -> Result<(), String> {
    // ssh's error output goes to a file, not a pipe: the master it leaves
    // behind would hold a pipe open.
    let err = std::fs::File::create(err_file)
        .map_err(|e| format!("cannot create {}: {e}", err_file.display()))?;
    let mut cmd = Command::new("ssh");
    cmd.arg("-i")
        .arg(&host.key)
        .args(host.host_key_args.split(' '))
        .args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-C"])
        .arg("-o")
        .arg(format!("ConnectTimeout={CONNECT_TIMEOUT_SECS}"))
        .args(["-o", "ControlMaster=auto", "-o", "ControlPersist=30s"])
        .arg("-o")
        .arg(format!("ControlPath={}", host.control_path.display()))
        .arg("-l")
        .arg(&host.user)
        .arg("--")
        .arg(&host.address)
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .kill_on_drop(true);
    let status = match cmd.spawn() {
        Ok(mut child) => match tokio::time::timeout(LIMIT, child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => return Err(format!("ssh failed: {e}")),
            Err(_) => {
                let _ = child.kill().await;
                return Err(format!(
                    "Failed to connect to the host via ssh: no login within {}s",
                    LIMIT.as_secs()
                ));
            }
        },
        Err(e) => return Err(format!("cannot run ssh: {e}")),
    };
    if status.success() {
        return Ok(());
    }
    let stderr = std::fs::read_to_string(err_file).unwrap_or_default();
    let stderr = stderr.trim();
    let classified = commissaire_ssh::SshError::from_connect(&host.address, &host.user, stderr);
    if matches!(classified, commissaire_ssh::SshError::HostKeyChanged { .. }) {
        return Err(classified.to_string());
    }
    Err(match (status.code(), stderr.is_empty()) {
        (_, false) => format!("Failed to connect to the host via ssh: {stderr}"),
        (Some(code), true) => {
            format!("Failed to connect to the host via ssh: ssh exited with {code}")
        }
        (None, true) => "Failed to connect to the host via ssh: ssh was killed".to_string(),
    })
}
