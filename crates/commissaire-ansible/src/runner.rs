//! Running the Commissaire playbooks with `ansible-playbook`.

use std::collections::{BTreeMap, HashSet};

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::events::{EventLog, Redactor};
use crate::playbook::{PLAYBOOK_RUNS, PLAYBOOK_SECONDS, Playbook, PlaybookReport};
use crate::preflight::{self, Preflight};
use crate::target::{ProcessGroupGuard, RunDir, SecretFile};
use crate::{AnsibleError, Target};

/// Environment variable naming the playbook directory.
pub const PLAYBOOK_DIR_ENV: &str = "COMMISSAIRE_PLAYBOOK_DIR";

/// Where the playbooks are installed when [`PLAYBOOK_DIR_ENV`] is not set.
pub const DEFAULT_PLAYBOOK_DIR: &str = "/usr/share/commissaire/playbooks";

/// The playbook directory: `$COMMISSAIRE_PLAYBOOK_DIR` if set (and not
/// empty), else [`DEFAULT_PLAYBOOK_DIR`] when it exists, else the source
/// tree's `playbooks/` when the binary runs from a checkout (`cargo run`).
pub fn default_playbook_dir() -> PathBuf {
    match std::env::var_os(PLAYBOOK_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let installed = PathBuf::from(DEFAULT_PLAYBOOK_DIR);
            let source = source_playbook_dir();
            if !installed.exists() && source.join("bootstrap.yaml").exists() {
                source
            } else {
                installed
            }
        }
    }
}

/// The `playbooks/` directory of this source tree (for tests and
/// development runs).
pub fn source_playbook_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../playbooks"))
}

/// Runs Commissaire playbooks against [`Target`]s with `ansible-playbook`.
///
/// Per run, a private directory (mode 0700) under the temporary directory
/// holds the inventory, the extra vars and one 0600 key file per target; it
/// is removed when the run ends however it ends — success, error, timeout,
/// or the future being dropped (the `ansible-playbook` process group is then
/// killed first).
#[derive(Debug, Clone)]
pub struct PlaybookRunner {
    playbook_dir: PathBuf,
    timeout: Duration,
    temp_dir: PathBuf,
    program: PathBuf,
}

impl PlaybookRunner {
    /// Default time limit of a run.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

    /// A runner for the playbooks in `playbook_dir` (see
    /// [`default_playbook_dir`]), with a one hour time limit, the system
    /// temporary directory and `ansible-playbook` from `PATH`.
    pub fn new(playbook_dir: PathBuf) -> Self {
        Self {
            playbook_dir,
            timeout: Self::DEFAULT_TIMEOUT,
            temp_dir: std::env::temp_dir(),
            program: PathBuf::from("ansible-playbook"),
        }
    }

    /// Sets the time limit of a whole run (all hosts); when it is hit,
    /// `run` kills Ansible and returns [`AnsibleError::Timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the directory under which each run creates its private
    /// directory (key files, inventory, extra vars, Ansible's local temp and
    /// SSH control sockets).
    pub fn with_temp_dir(mut self, temp_dir: PathBuf) -> Self {
        self.temp_dir = temp_dir;
        self
    }

    /// Sets the `ansible-playbook` executable.
    pub fn with_program(mut self, program: PathBuf) -> Self {
        self.program = program;
        self
    }

    /// The playbook directory.
    pub fn playbook_dir(&self) -> &Path {
        &self.playbook_dir
    }

    /// The time limit of a run.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `playbook` on `targets` with `vars` as extra vars (highest
    /// precedence; see [`merged_vars`](crate::merged_vars)).
    ///
    /// Returns a report with an outcome per target when Ansible got to run
    /// the play (failed and unreachable hosts are outcomes, not errors).
    /// Errors: [`AnsibleError::NoTargets`], [`AnsibleError::PlaybookNotFound`],
    /// [`AnsibleError::KeyFile`], [`AnsibleError::TempFile`],
    /// [`AnsibleError::Spawn`], [`AnsibleError::Timeout`], and
    /// [`AnsibleError::Playbook`] when `ansible-playbook` failed before
    /// reporting any host (syntax error, ...).
    pub async fn run(
        &self,
        playbook: Playbook,
        targets: &[Target],
        vars: Map<String, Value>,
    ) -> Result<PlaybookReport, AnsibleError> {
        let started = Instant::now();
        let result = self.run_playbook(playbook, targets, vars).await;
        let outcome = match &result {
            Err(_) => "error",
            Ok(r) if r.exit_code == 4 => "unreachable",
            Ok(r) if r.exit_code != 0 => "failed",
            Ok(_) => "ok",
        };
        let name = playbook.file_name();
        metrics::counter!(PLAYBOOK_RUNS, "playbook" => name, "result" => outcome).increment(1);
        metrics::histogram!(PLAYBOOK_SECONDS, "playbook" => name)
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn run_playbook(
        &self,
        playbook: Playbook,
        targets: &[Target],
        vars: Map<String, Value>,
    ) -> Result<PlaybookReport, AnsibleError> {
        if targets.is_empty() {
            return Err(AnsibleError::NoTargets);
        }
        let playbook_path = self.playbook_dir.join(playbook.file_name());
        if !playbook_path.is_file() {
            return Err(AnsibleError::PlaybookNotFound {
                path: playbook_path,
            });
        }
        let started = Instant::now();
        let redactor = Redactor::from_vars(&vars);

        // Everything secret lives in run_dir; the guards below are dropped
        // (files removed) before it, and after the process group is killed.
        let run_dir = RunDir::new(&self.temp_dir)?;
        let local_temp = run_dir.subdir("tmp")?;
        let control_dir = run_dir.subdir("cp")?;
        // Declared after the directories: dropped (masters stopped) before
        // the key files, while the sockets exist.
        let mut keys: Vec<SecretFile> = Vec::with_capacity(targets.len());
        let mut preflights = Vec::with_capacity(targets.len());
        // The hosts with a master of their caller's (a session lease):
        // Ansible multiplexes over it, no pre-flight needed.
        let mut leased = HashSet::new();
        let mut seen = HashSet::new();
        let pinned: String = targets
            .iter()
            .filter_map(|t| t.known_hosts.as_deref())
            .map(|lines| format!("{}\n", lines.trim()))
            .collect();
        let known_hosts = if pinned.is_empty() {
            None
        } else {
            Some(run_dir.secret_file("known_hosts", pinned.as_bytes())?)
        };
        for (i, t) in targets.iter().enumerate() {
            if !seen.insert(t.address.as_str()) {
                continue;
            }
            let key = run_dir.key_file(t, &format!("key-{i}"))?;
            let verify = known_hosts
                .as_ref()
                .filter(|_| t.known_hosts.is_some())
                .map(SecretFile::path);
            if t.control_path.is_some() {
                leased.insert(t.address.clone());
            }
            preflights.push(Preflight {
                address: t.address.clone(),
                user: t.remote_user.clone(),
                key: key.path().to_path_buf(),
                control_path: t
                    .control_path
                    .clone()
                    .unwrap_or_else(|| control_dir.join(format!("m{i}"))),
                host_key_args: preflight::host_key_args(verify),
                pinned: verify.is_some(),
            });
            keys.push(key);
        }
        let masters = ControlMasters(control_dir.clone());
        let to_open: Vec<Preflight> = preflights
            .iter()
            .filter(|p| !leased.contains(&p.address))
            .cloned()
            .collect();
        let mut opened = preflight::open_masters(&to_open, &local_temp)
            .await
            .into_iter();
        let reached: Vec<Result<(), String>> = preflights
            .iter()
            .map(|p| {
                if leased.contains(&p.address) {
                    Ok(())
                } else {
                    opened.next().unwrap_or(Ok(()))
                }
            })
            .collect();
        let mut unreachable = BTreeMap::new();
        // Built by hand: serde_json's Map sorts its keys, but the hosts must
        // keep the targets' order (serial playbooks go through them in order).
        let mut entries = Vec::with_capacity(targets.len());
        for (host, result) in preflights.iter().zip(reached) {
            match result {
                Err(msg) => {
                    unreachable.insert(host.address.clone(), msg);
                }
                // A serial playbook stops at its first unreachable host:
                // the hosts after it are not run.
                Ok(()) if playbook.is_serial() && !unreachable.is_empty() => {}
                Ok(()) => {
                    // The host-key options first: ssh takes the first value
                    // of an option, and Ansible adds its own after these.
                    let master = if leased.contains(&host.address) {
                        // The caller's master; without it, a direct login.
                        "-o ControlMaster=no"
                    } else {
                        "-C -o ControlMaster=auto -o ControlPersist=30s"
                    };
                    let host_vars = json!({
                        "ansible_host": host.address,
                        "ansible_user": host.user,
                        "ansible_ssh_private_key_file": host.key,
                        "ansible_ssh_args": format!("{} {master}", host.host_key_args),
                        "ansible_host_key_checking": host.pinned,
                        "ansible_control_path": host.control_path,
                        "ansible_python_interpreter": "/usr/bin/python3",
                    });
                    entries.push(format!(
                        "{}:{}",
                        Value::String(host.address.clone()),
                        host_vars
                    ));
                }
            }
        }
        if entries.is_empty() {
            // Nobody to run Ansible on.
            drop(masters);
            drop(keys);
            drop(run_dir);
            let report =
                EventLog::new(redactor).into_report(playbook, &[], 0, started.elapsed())?;
            return Ok(report.with_unreachable(targets, unreachable));
        }
        let inventory = format!("{{\"all\":{{\"hosts\":{{{}}}}}}}", entries.join(","));
        let inventory_file = run_dir.secret_file("inventory.json", inventory.as_bytes())?;
        let vars_file = run_dir.secret_file(
            "extra-vars.json",
            Value::Object(vars).to_string().as_bytes(),
        )?;

        let mut cmd = Command::new(&self.program);
        cmd.arg("-i")
            .arg(inventory_file.path())
            .arg("--extra-vars")
            .arg(format!("@{}", vars_file.path().display()))
            .arg(&playbook_path)
            // No ansible.cfg from the caller's working directory.
            .current_dir(run_dir.path())
            .env("ANSIBLE_STDOUT_CALLBACK", "ansible.posix.jsonl")
            .env("ANSIBLE_HOST_KEY_CHECKING", "False")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "False")
            .env("ANSIBLE_LOCAL_TEMP", &local_temp)
            .env("ANSIBLE_SSH_CONTROL_PATH_DIR", &control_dir)
            .env(
                "ANSIBLE_SSH_ARGS",
                "-C -o ControlMaster=auto -o ControlPersist=30s",
            )
            .env("ANSIBLE_PIPELINING", "True")
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_FORCE_COLOR", "0")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);

        tracing::debug!(%playbook, hosts = targets.len(), "running ansible-playbook");
        let mut child = cmd.spawn().map_err(|source| AnsibleError::Spawn {
            program: self.program.display().to_string(),
            source,
        })?;
        let mut group = ProcessGroupGuard::new(child.id());
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");

        let mut events = EventLog::new(redactor);
        let outcome = tokio::time::timeout(
            self.timeout,
            collect(&mut child, stdout, stderr, &mut events),
        )
        .await;

        let status = match outcome {
            Ok(Ok(status)) => {
                group.disarm();
                status
            }
            Ok(Err(source)) => {
                return Err(AnsibleError::Spawn {
                    program: self.program.display().to_string(),
                    source,
                });
            }
            Err(_) => {
                tracing::warn!(%playbook, timeout = ?self.timeout, "ansible-playbook timed out");
                // `group` kills the process group on return.
                return Err(AnsibleError::Timeout {
                    what: format!("playbook {}", playbook.file_name()),
                    after: self.timeout,
                    output: events.output,
                });
            }
        };
        drop(group);
        drop(masters);
        drop(keys);
        drop(known_hosts);
        drop(inventory_file);
        drop(vars_file);
        drop(run_dir);

        // A signal-killed ansible-playbook has no exit code.
        let exit_code = status.code().unwrap_or(-1);
        let report = events
            .into_report(playbook, targets, exit_code, started.elapsed())?
            .with_unreachable(targets, unreachable);
        tracing::debug!(%playbook, exit_code, failed = ?report.failed_hosts(), "ansible-playbook done");
        Ok(report)
    }
}

/// How long the output is still read after `ansible-playbook` exited: stray
/// holders of its pipes (SSH control masters) must not hold the run up.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Reads both output streams into `events`, in arrival order, until they
/// close, or until [`DRAIN_GRACE`] after the child exited; returns the
/// child's exit status.
async fn collect(
    child: &mut tokio::process::Child,
    stdout: tokio::process::ChildStdout,
    stderr: tokio::process::ChildStderr,
    events: &mut EventLog,
) -> std::io::Result<std::process::ExitStatus> {
    let mut out_lines = BufReader::new(stdout).lines();
    let mut err_lines = BufReader::new(stderr).lines();
    let (mut out_open, mut err_open) = (true, true);
    let mut status = None;
    let grace = tokio::time::sleep(Duration::from_secs(365 * 86_400));
    tokio::pin!(grace);
    while out_open || err_open {
        tokio::select! {
            line = out_lines.next_line(), if out_open => match line {
                Ok(Some(l)) => events.stdout_line(&l),
                _ => out_open = false,
            },
            line = err_lines.next_line(), if err_open => match line {
                Ok(Some(l)) => events.stderr_line(&l),
                _ => err_open = false,
            },
            s = child.wait(), if status.is_none() => {
                status = Some(s);
                grace.as_mut().reset(tokio::time::Instant::now() + DRAIN_GRACE);
            }
            () = &mut grace, if status.is_some() => break,
        }
    }
    match status {
        Some(s) => s,
        None => child.wait().await,
    }
}

/// Stops the SSH control masters (`ControlPersist`) of a run when dropped:
/// they detach from `ansible-playbook`'s process group and would otherwise
/// keep their sessions open for a while after the run, or after it was
/// killed.
struct ControlMasters(PathBuf);

impl Drop for ControlMasters {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return;
        };
        for socket in entries.flatten() {
            let _ = std::process::Command::new("ssh")
                .arg("-o")
                .arg(format!("ControlPath={}", socket.path().display()))
                .args(["-O", "exit", "commissaire-control-master"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playbook_files_exist() {
        for p in Playbook::ALL {
            let path = source_playbook_dir().join(p.file_name());
            assert!(path.is_file(), "{} missing", path.display());
        }
        assert_eq!(
            Playbook::CheckHostAvailability.to_string(),
            "check_host_availability"
        );
    }
}
