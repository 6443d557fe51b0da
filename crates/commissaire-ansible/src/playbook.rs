//! The playbooks Commissaire runs, and what a run of one reports: an
//! outcome per host, the readable log, the exit code.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Target;

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

/// Counter of playbook runs, by `playbook` and `result` (documented with
/// the other metric names in `commissaire_service::metrics::names`).
pub const PLAYBOOK_RUNS: &str = "commissaire_playbook_runs_total";

/// Histogram of playbook run seconds, by `playbook`.
pub const PLAYBOOK_SECONDS: &str = "commissaire_playbook_duration_seconds";

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
    pub(crate) fn with_unreachable(
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
