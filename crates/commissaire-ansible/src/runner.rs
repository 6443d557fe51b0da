//! Running the Commissaire playbooks with `ansible-playbook`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

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

/// The playbooks Commissaire runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Playbook {
    /// Prepare a new host: packages, flannel/docker/kubernetes configuration, services.
    Bootstrap,
    /// Restart hosts one at a time, waiting for each to come back.
    Restart,
    /// Upgrade hosts one at a time (`rpm-ostree upgrade` on Atomic hosts).
    Upgrade,
    /// Deploy tree version `commissaire_deploy_version` on hosts one at a time.
    Deploy,
    /// Check that hosts are reachable and can run a module.
    CheckHostAvailability,
}

impl Playbook {
    /// All playbooks.
    pub const ALL: [Playbook; 5] = [
        Playbook::Bootstrap,
        Playbook::Restart,
        Playbook::Upgrade,
        Playbook::Deploy,
        Playbook::CheckHostAvailability,
    ];

    /// The playbook's file name in the playbook directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Playbook::Bootstrap => "bootstrap.yaml",
            Playbook::Restart => "restart.yaml",
            Playbook::Upgrade => "upgrade.yaml",
            Playbook::Deploy => "deploy.yaml",
            Playbook::CheckHostAvailability => "check_host_availability.yaml",
        }
    }
}

impl Playbook {
    /// Whether the playbook goes through its hosts one at a time
    /// (`serial: 1`), stopping at the first one that fails.
    pub fn is_serial(self) -> bool {
        matches!(
            self,
            Playbook::Restart | Playbook::Upgrade | Playbook::Deploy
        )
    }
}

impl fmt::Display for Playbook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name().trim_end_matches(".yaml"))
    }
}

/// How a playbook run went for one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum HostOutcome {
    /// Every task succeeded (or was skipped).
    Ok,
    /// A task failed on the host.
    Failed {
        /// Name of the failed task.
        task: String,
        /// Ansible's message, with the command's exit code and error output
        /// when there is one.
        msg: String,
    },
    /// The host could not be reached over SSH.
    Unreachable {
        /// SSH's reason, as reported by Ansible.
        msg: String,
    },
    /// The playbook never got to the host, e.g. a `serial` playbook that
    /// stopped at an earlier host's failure.
    NotRun,
}

impl HostOutcome {
    /// Whether this is [`HostOutcome::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, HostOutcome::Ok)
    }
}

/// The result of one playbook run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybookReport {
    /// The playbook that ran.
    pub playbook: Playbook,
    /// Outcome per target address (every target has one).
    pub hosts: BTreeMap<String, HostOutcome>,
    /// A readable log of the run (plays, tasks, per-host results, command
    /// output, warnings) for the operation log.  Values of secret-looking
    /// variables (`*_token`, `*password*`, `*secret*`) are masked.
    pub output: String,
    /// Exit code of `ansible-playbook`: 0 all OK, 2 a task failed, 4 a host
    /// was unreachable (4 wins over 2).
    pub exit_code: i32,
    /// Wall-clock time of the run.
    pub duration: Duration,
}

impl PlaybookReport {
    /// Adds the hosts the SSH pre-flight could not reach (address -> ssh's
    /// reason); in a serial playbook, the hosts after the first of them
    /// were not run. The exit code becomes Ansible's "unreachable" (4)
    /// where Ansible itself did not fail otherwise.
    fn with_unreachable(
        mut self,
        targets: &[Target],
        unreachable: BTreeMap<String, String>,
    ) -> Self {
        if unreachable.is_empty() {
            return self;
        }
        let mut cut = false;
        for t in targets {
            if let Some(msg) = unreachable.get(&t.address) {
                self.output
                    .push_str(&format!("{}: UNREACHABLE: {msg}\n", t.address));
                self.hosts.insert(
                    t.address.clone(),
                    HostOutcome::Unreachable { msg: msg.clone() },
                );
                cut |= self.playbook.is_serial();
            } else if cut || !self.hosts.contains_key(&t.address) {
                self.hosts.insert(t.address.clone(), HostOutcome::NotRun);
            }
        }
        if matches!(self.exit_code, 0 | 2 | 4) {
            self.exit_code = 4;
        }
        self
    }

    /// Addresses whose outcome is `Failed` or `Unreachable`.
    pub fn failed_hosts(&self) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|(_, o)| {
                matches!(
                    o,
                    HostOutcome::Failed { .. } | HostOutcome::Unreachable { .. }
                )
            })
            .map(|(h, _)| h.as_str())
            .collect()
    }

    /// Why the run did not succeed for `address`, in words; `None` if it did.
    pub fn failure_reason(&self, address: &str) -> Option<String> {
        match self.hosts.get(address) {
            Some(HostOutcome::Ok) if self.exit_code == 0 => None,
            Some(HostOutcome::Ok) => {
                Some(format!("ansible-playbook exited with {}", self.exit_code))
            }
            Some(HostOutcome::Failed { task, msg }) => Some(format!("task '{task}' failed: {msg}")),
            Some(HostOutcome::Unreachable { msg }) => Some(format!("unreachable: {msg}")),
            Some(HostOutcome::NotRun) | None => Some("the playbook did not run on the host".into()),
        }
    }

    /// Whether every host is `Ok` and `ansible-playbook` exited with 0.
    pub fn is_success(&self) -> bool {
        self.exit_code == 0 && self.hosts.values().all(HostOutcome::is_ok)
    }
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
        let mut seen = HashSet::new();
        for (i, t) in targets.iter().enumerate() {
            if !seen.insert(t.address.as_str()) {
                continue;
            }
            let key = run_dir.key_file(t, &format!("key-{i}"))?;
            preflights.push(Preflight {
                address: t.address.clone(),
                user: t.remote_user.clone(),
                key: key.path().to_path_buf(),
                control_path: control_dir.join(format!("m{i}")),
            });
            keys.push(key);
        }
        let masters = ControlMasters(control_dir.clone());
        let reached = preflight::open_masters(&preflights, &local_temp).await;
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
                    let host_vars = json!({
                        "ansible_host": host.address,
                        "ansible_user": host.user,
                        "ansible_ssh_private_key_file": host.key,
                        "ansible_ssh_common_args": preflight::SSH_COMMON_ARGS,
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
        let outcome = tokio::time::timeout(self.timeout, async {
            let mut out_lines = BufReader::new(stdout).lines();
            let mut err_lines = BufReader::new(stderr).lines();
            let (mut out_open, mut err_open) = (true, true);
            let mut status = None;
            // Read both streams in arrival order until the child has exited;
            // then drain what is left, without waiting for stray holders of
            // the pipes (e.g. SSH control masters) beyond a short grace.
            while status.is_none() && (out_open || err_open) {
                tokio::select! {
                    line = out_lines.next_line(), if out_open => match line {
                        Ok(Some(l)) => events.stdout_line(&l),
                        _ => out_open = false,
                    },
                    line = err_lines.next_line(), if err_open => match line {
                        Ok(Some(l)) => events.stderr_line(&l),
                        _ => err_open = false,
                    },
                    s = child.wait() => status = Some(s),
                }
            }
            let drain = async {
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
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
            match status {
                Some(s) => s,
                None => child.wait().await,
            }
        })
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

/// Masks the values of secret-looking variables in the output.
#[derive(Debug, Default)]
struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    fn from_vars(vars: &Map<String, Value>) -> Self {
        let mut secrets: Vec<String> = vars
            .iter()
            .filter(|(k, _)| {
                let k = k.to_ascii_lowercase();
                k.ends_with("_token")
                    || k.contains("password")
                    || k.contains("secret")
                    || k.contains("passphrase")
            })
            .filter_map(|(_, v)| v.as_str())
            .filter(|s| s.len() >= 4)
            .map(str::to_string)
            .collect();
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    fn redact(&self, s: &str) -> String {
        let mut s = s.to_string();
        for secret in &self.secrets {
            if s.contains(secret.as_str()) {
                s = s.replace(secret.as_str(), "********");
            }
        }
        s
    }
}

/// Per-host facts from the event stream.
#[derive(Debug, Default)]
struct HostEvents {
    failed: Option<(String, String)>,
    unreachable: Option<String>,
}

/// Parses the `ansible.posix.jsonl` stream into host outcomes and a
/// readable log.
#[derive(Debug)]
struct EventLog {
    redactor: Redactor,
    output: String,
    hosts: BTreeMap<String, HostEvents>,
    stats: Option<Map<String, Value>>,
    logged_tasks: HashSet<String>,
    stderr_tail: Vec<String>,
}

const MAX_FIELD: usize = 4000;

fn truncate(s: &str) -> &str {
    if s.len() <= MAX_FIELD {
        return s;
    }
    let mut end = MAX_FIELD;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl EventLog {
    fn new(redactor: Redactor) -> Self {
        Self {
            redactor,
            output: String::new(),
            hosts: BTreeMap::new(),
            stats: None,
            logged_tasks: HashSet::new(),
            stderr_tail: Vec::new(),
        }
    }

    fn log(&mut self, line: &str) {
        let line = self.redactor.redact(line);
        self.output.push_str(&line);
        self.output.push('\n');
    }

    fn stderr_line(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        self.log(line);
        self.stderr_tail.push(self.redactor.redact(line));
        if self.stderr_tail.len() > 20 {
            self.stderr_tail.remove(0);
        }
    }

    fn stdout_line(&mut self, line: &str) {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return;
        }
        let ev = match serde_json::from_str::<Value>(trimmed) {
            Ok(ev @ Value::Object(_)) => ev,
            _ => {
                self.log(line);
                return;
            }
        };
        let event = ev.get("_event").and_then(Value::as_str).unwrap_or_default();
        let task_name = ev
            .pointer("/task/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match event {
            "v2_playbook_on_play_start" => {
                let name = ev
                    .pointer("/play/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                // With `serial`, every batch is a play of its own (same task ids).
                self.logged_tasks.clear();
                self.log(&format!("PLAY [{name}]"));
            }
            "v2_playbook_on_task_start"
            | "v2_playbook_on_handler_task_start"
            | "v2_runner_on_start" => {
                let id = ev
                    .pointer("/task/id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if self.logged_tasks.insert(id.to_string()) {
                    self.log(&format!("TASK [{task_name}]"));
                }
            }
            "v2_runner_on_ok"
            | "v2_runner_on_failed"
            | "v2_runner_on_unreachable"
            | "v2_runner_on_skipped" => {
                let Some(Value::Object(results)) = ev.get("hosts") else {
                    return;
                };
                for (host, result) in results {
                    self.host_result(event, &task_name, host, result);
                }
            }
            "v2_playbook_on_stats" => {
                if let Some(Value::Object(stats)) = ev.get("stats") {
                    self.log("PLAY RECAP");
                    for (host, s) in stats {
                        let n = |k: &str| s.get(k).and_then(Value::as_i64).unwrap_or(0);
                        self.log(&format!(
                            "{host}: ok={} changed={} unreachable={} failed={} skipped={} rescued={} ignored={}",
                            n("ok"),
                            n("changed"),
                            n("unreachable"),
                            n("failures"),
                            n("skipped"),
                            n("rescued"),
                            n("ignored")
                        ));
                    }
                    self.stats = Some(stats.clone());
                }
            }
            _ => {}
        }
    }

    fn host_result(&mut self, event: &str, task: &str, host: &str, r: &Value) {
        let text = |k: &str| {
            r.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let msg = text("msg");
        let rc = r.get("rc").and_then(Value::as_i64);
        let (stdout, stderr) = (text("stdout"), text("stderr"));
        let changed = r.get("changed").and_then(Value::as_bool).unwrap_or(false);
        match event {
            "v2_runner_on_ok" => {
                self.log(&format!(
                    "{}: [{host}]",
                    if changed { "changed" } else { "ok" }
                ));
            }
            "v2_runner_on_skipped" => self.log(&format!("skipping: [{host}]")),
            "v2_runner_on_unreachable" => {
                self.log(&format!("unreachable: [{host}] => {msg}"));
                self.hosts.entry(host.to_string()).or_default().unreachable = Some(msg.clone());
            }
            _ => {
                let mut full = if msg.is_empty() {
                    "task failed".to_string()
                } else {
                    msg.clone()
                };
                if let Some(rc) = rc {
                    full.push_str(&format!(" (rc={rc})"));
                }
                if !stderr.is_empty() {
                    full.push_str(": ");
                    full.push_str(truncate(&stderr));
                } else if !stdout.is_empty() && rc.is_some() {
                    full.push_str(": ");
                    full.push_str(truncate(&stdout));
                }
                let full = self.redactor.redact(&full);
                self.log(&format!("failed: [{host}] => {full}"));
                self.hosts.entry(host.to_string()).or_default().failed =
                    Some((task.to_string(), full));
                return;
            }
        }
        // Command output of successful tasks, indented.
        if event == "v2_runner_on_ok" {
            for (label, s) in [("stdout", &stdout), ("stderr", &stderr)] {
                if !s.is_empty() {
                    self.log(&format!(
                        "    {label}: {}",
                        truncate(s).replace('\n', "\n    ")
                    ));
                }
            }
        }
    }

    fn into_report(
        self,
        playbook: Playbook,
        targets: &[Target],
        exit_code: i32,
        duration: Duration,
    ) -> Result<PlaybookReport, AnsibleError> {
        if self.stats.is_none() && self.hosts.is_empty() && exit_code != 0 {
            let msg = if self.stderr_tail.is_empty() {
                "no output".to_string()
            } else {
                self.stderr_tail.join("\n")
            };
            return Err(AnsibleError::Playbook {
                playbook: playbook.file_name().into(),
                exit_code,
                msg,
                output: self.output,
            });
        }
        let stats = self.stats.unwrap_or_default();
        let mut hosts = BTreeMap::new();
        for t in targets {
            let ev = self.hosts.get(&t.address);
            let count = |k: &str| {
                stats
                    .get(&t.address)
                    .and_then(|s| s.get(k))
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            };
            let unreachable = ev.and_then(|e| e.unreachable.clone());
            let failed = ev.and_then(|e| e.failed.clone());
            let outcome = if stats.contains_key(&t.address) {
                if count("unreachable") > 0 {
                    HostOutcome::Unreachable {
                        msg: unreachable.unwrap_or_else(|| "unreachable".into()),
                    }
                } else if count("failures") > 0 {
                    let (task, msg) =
                        failed.unwrap_or_else(|| (String::new(), "task failed".into()));
                    HostOutcome::Failed { task, msg }
                } else {
                    HostOutcome::Ok
                }
            } else if let Some(msg) = unreachable {
                HostOutcome::Unreachable { msg }
            } else if let Some((task, msg)) = failed {
                HostOutcome::Failed { task, msg }
            } else {
                HostOutcome::NotRun
            };
            hosts.insert(t.address.clone(), outcome);
        }
        Ok(PlaybookReport {
            playbook,
            hosts,
            output: self.output,
            exit_code,
            duration,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(lines: &[&str]) -> EventLog {
        let mut vars = Map::new();
        vars.insert(
            "commissaire_kubernetes_bearer_token".into(),
            "s3cr3t-token".into(),
        );
        let mut log = EventLog::new(Redactor::from_vars(&vars));
        for l in lines {
            log.stdout_line(l);
        }
        log
    }

    fn targets(addrs: &[&str]) -> Vec<Target> {
        addrs
            .iter()
            .map(|a| Target::new(*a, "root", "S0VZ"))
            .collect()
    }

    #[test]
    fn outcomes_from_events_and_stats() {
        let log = log_of(&[
            r#"{"_event":"v2_playbook_on_play_start","play":{"name":"upgrade","id":"p"}}"#,
            r#"{"_event":"v2_playbook_on_task_start","task":{"name":"Upgrade","id":"t1"},"hosts":{}}"#,
            r#"{"_event":"v2_runner_on_ok","task":{"name":"Upgrade","id":"t1"},"hosts":{"a":{"changed":true,"rc":0,"stdout":"done"}}}"#,
            r#"{"_event":"v2_runner_on_failed","task":{"name":"Upgrade","id":"t1"},"hosts":{"b":{"failed":true,"rc":3,"msg":"non-zero return code","stderr":"boom s3cr3t-token"}}}"#,
            r#"{"_event":"v2_runner_on_unreachable","task":{"name":"Upgrade","id":"t1"},"hosts":{"c":{"unreachable":true,"msg":"Failed to connect to the host via ssh: Connection refused"}}}"#,
            r#"{"_event":"v2_playbook_on_stats","stats":{"a":{"ok":1,"changed":1,"failures":0,"unreachable":0},"b":{"ok":0,"failures":1,"unreachable":0},"c":{"unreachable":1,"failures":0}}}"#,
        ]);
        let r = log
            .into_report(
                Playbook::Upgrade,
                &targets(&["a", "b", "c", "d"]),
                4,
                Duration::ZERO,
            )
            .unwrap();
        assert_eq!(r.hosts["a"], HostOutcome::Ok);
        assert_eq!(
            r.hosts["b"],
            HostOutcome::Failed {
                task: "Upgrade".into(),
                msg: "non-zero return code (rc=3): boom ********".into()
            }
        );
        assert!(
            matches!(&r.hosts["c"], HostOutcome::Unreachable { msg } if msg.contains("refused"))
        );
        assert_eq!(r.hosts["d"], HostOutcome::NotRun);
        assert_eq!(r.failed_hosts(), vec!["b", "c"]);
        assert!(!r.is_success());
        assert!(r.output.contains("PLAY [upgrade]"), "{}", r.output);
        assert!(r.output.contains("TASK [Upgrade]"));
        assert!(r.output.contains("changed: [a]"));
        assert!(r.output.contains("    stdout: done"));
        assert!(!r.output.contains("s3cr3t"), "{}", r.output);
    }

    #[test]
    fn ignored_failures_do_not_count() {
        let log = log_of(&[
            r#"{"_event":"v2_runner_on_failed","task":{"name":"Probe","id":"t1"},"hosts":{"a":{"failed":true,"msg":"ignored"}}}"#,
            r#"{"_event":"v2_playbook_on_stats","stats":{"a":{"ok":2,"failures":0,"unreachable":0,"ignored":1}}}"#,
        ]);
        let r = log
            .into_report(Playbook::Restart, &targets(&["a"]), 0, Duration::ZERO)
            .unwrap();
        assert!(r.is_success());
    }

    #[test]
    fn early_failure_is_an_error() {
        let mut log = log_of(&[]);
        log.stderr_line("ERROR! A malformed block was encountered");
        let e = log
            .into_report(Playbook::Bootstrap, &targets(&["a"]), 4, Duration::ZERO)
            .unwrap_err();
        assert!(
            matches!(e, AnsibleError::Playbook { exit_code: 4, ref msg, .. } if msg.contains("malformed"))
        );
    }

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
