//! The clusterexec service's settings.

use std::path::PathBuf;
use std::time::Duration;

use std::num::NonZeroU32;

use commissaire_host_access::SshSettings;
use commissaire_service::{Seconds, parse_members};
use serde_json::{Map, Value};

use crate::ExecError;
use crate::wait::RestartVia;

/// The clusterexec settings: members of the service's configuration
/// document (`/etc/commissaire/clusterexec.conf`, `-c`, or etcd), which the
/// binary's command line and environment override.
///
/// | member | default | meaning |
/// | --- | --- | --- |
/// | `playbook_dir` | `$COMMISSAIRE_PLAYBOOK_DIR` or `/usr/share/commissaire/playbooks` | where `restart.yaml`, `upgrade.yaml`, `deploy.yaml` are |
/// | `ansible_vars` | `{}` | `commissaire_*` variables over the per-OS defaults (e.g. `commissaire_restart_command`); `null` removes one |
/// | `lease_seconds` | 30 | how long a replica's claim on an operation holds without renewal (renewed every third of it) |
/// | `scan_seconds` | `lease_seconds / 2` | how often operation records are checked for expired leases and unclaimed operations |
/// | `max_failures` | 0 | failed hosts tolerated before a roll stops (a request's `max_failures` wins) |
/// | `batch_size` | 1 | hosts worked on at once (a request's `batch_size` wins) |
/// | `playbook_timeout_seconds` | 3600 | time limit of one host's playbook run |
/// | `drain_timeout_seconds` | 600 | time limit of draining one node |
/// | `container_timeout_seconds` | 30 | time limit of a cordon or uncordon call |
/// | `storage_retry_timeout` | 300 | how long a storage read a roll needs (the cluster, a host, its credentials) is retried while storage is unavailable, before the host fails |
/// | `replica_id` | `<hostname>-<pid>-<random>` | this replica's name in `owner` |
/// | `restart_via` | `"playbook"` | `"playbook"`: `restart.yaml` runs the restart command; `"ssh"`: clusterexec runs `commissaire_restart_command` itself over the host's session (no `ansible-playbook` per host; only `{{ inventory_hostname }}` is rendered) |
/// | `ssh` | `{}` | the SSH session pool (restarted hosts are waited for over it) |
#[derive(Debug, Clone)]
pub struct ClusterExecConfig {
    /// Directory holding the playbooks.
    pub playbook_dir: PathBuf,
    /// Ansible variable overrides.
    pub ansible_vars: Map<String, Value>,
    /// Lease duration.
    pub lease: Duration,
    /// Interval of the expired-lease scan.
    pub scan_interval: Duration,
    /// Failed hosts tolerated before a roll stops.
    pub max_failures: u32,
    /// Hosts per step.
    pub batch_size: u32,
    /// Time limit of one host's playbook run.
    pub playbook_timeout: Duration,
    /// Time limit of draining a node.
    pub drain_timeout: Duration,
    /// Time limit of cordon and uncordon calls.
    pub container_timeout: Duration,
    /// How long storage reads are retried while storage is unavailable.
    pub storage_retry_timeout: Duration,
    /// This replica's identity.
    pub replica_id: String,
    /// How a restart's command is run.
    pub restart_via: RestartVia,
    /// The session pool's limits.
    pub ssh: SshSettings,
}

/// A replica identity unique across hosts and restarts.
pub fn default_replica_id() -> String {
    commissaire_service::replica_id("clusterexec")
}

impl Default for ClusterExecConfig {
    fn default() -> Self {
        let lease = Duration::from_secs(30);
        ClusterExecConfig {
            playbook_dir: commissaire_ansible::default_playbook_dir(),
            ansible_vars: Map::new(),
            lease,
            scan_interval: lease / 2,
            max_failures: 0,
            batch_size: 1,
            playbook_timeout: Duration::from_secs(3600),
            drain_timeout: Duration::from_secs(600),
            container_timeout: Duration::from_secs(30),
            storage_retry_timeout: Duration::from_secs(300),
            replica_id: default_replica_id(),
            restart_via: RestartVia::Playbook,
            ssh: SshSettings::default(),
        }
    }
}

/// The clusterexec service's own members of its document, typed.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Members {
    playbook_dir: Option<PathBuf>,
    ansible_vars: Option<Map<String, Value>>,
    lease_seconds: Option<Seconds>,
    scan_seconds: Option<Seconds>,
    max_failures: Option<u32>,
    batch_size: Option<NonZeroU32>,
    playbook_timeout_seconds: Option<Seconds>,
    drain_timeout_seconds: Option<Seconds>,
    container_timeout_seconds: Option<Seconds>,
    storage_retry_timeout: Option<Seconds>,
    replica_id: Option<String>,
    restart_via: Option<RestartVia>,
    ssh: Option<SshSettings>,
}

impl ClusterExecConfig {
    /// Reads the settings from a configuration document; absent members
    /// keep their defaults; an unknown member or one of the wrong type is
    /// [`ExecError::Config`] naming it.
    pub fn from_config(config: &Map<String, Value>) -> Result<Self, ExecError> {
        let m: Members = parse_members("clusterexec", config).map_err(|e| {
            let member = if e.member.is_empty() {
                "(member)"
            } else {
                &e.member
            };
            ExecError::config(member, e.reason)
        })?;
        let mut c = ClusterExecConfig::default();
        if let Some(dir) = m.playbook_dir {
            if dir.as_os_str().is_empty() {
                return Err(ExecError::config(
                    "playbook_dir",
                    "must be a directory path",
                ));
            }
            c.playbook_dir = dir;
        }
        if let Some(vars) = m.ansible_vars {
            c.ansible_vars = vars;
        }
        if let Some(Seconds(lease)) = m.lease_seconds {
            c.lease = lease;
            c.scan_interval = lease / 2;
        }
        if let Some(Seconds(scan)) = m.scan_seconds {
            c.scan_interval = scan;
        }
        c.max_failures = m.max_failures.unwrap_or(c.max_failures);
        c.batch_size = m.batch_size.map_or(c.batch_size, NonZeroU32::get);
        let secs = |v: Option<Seconds>, default: Duration| v.map_or(default, |s| s.0);
        c.playbook_timeout = secs(m.playbook_timeout_seconds, c.playbook_timeout);
        c.drain_timeout = secs(m.drain_timeout_seconds, c.drain_timeout);
        c.container_timeout = secs(m.container_timeout_seconds, c.container_timeout);
        c.storage_retry_timeout = secs(m.storage_retry_timeout, c.storage_retry_timeout);
        match m.replica_id {
            None => {}
            Some(id) if !id.trim().is_empty() => c.replica_id = id.trim().to_string(),
            Some(_) => {
                return Err(ExecError::config(
                    "replica_id",
                    "must be a non-empty string",
                ));
            }
        }
        c.ssh = m.ssh.unwrap_or_default();
        c.restart_via = m.restart_via.unwrap_or_default();
        if c.lease < Duration::from_secs(1) {
            return Err(ExecError::config("lease_seconds", "must be at least 1"));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_members() {
        let c = ClusterExecConfig::from_config(&Map::new()).unwrap();
        assert_eq!((c.lease.as_secs(), c.scan_interval.as_secs()), (30, 15));
        assert_eq!((c.max_failures, c.batch_size), (0, 1));
        let v = json!({"lease_seconds": 6, "max_failures": 2, "batch_size": 3, "replica_id": "r",
            "ansible_vars": {"commissaire_restart_command": "true"}, "playbook_dir": "/p",
            "playbook_timeout_seconds": 1.5});
        let c = ClusterExecConfig::from_config(v.as_object().unwrap()).unwrap();
        assert_eq!((c.lease.as_secs(), c.scan_interval.as_secs()), (6, 3));
        assert_eq!(
            (c.max_failures, c.batch_size, c.replica_id.as_str()),
            (2, 3, "r")
        );
        assert_eq!(c.playbook_timeout, Duration::from_millis(1500));
        assert_eq!(c.playbook_dir, PathBuf::from("/p"));
        assert_eq!(c.ansible_vars["commissaire_restart_command"], "true");
        for bad in [
            json!({"batch_size": 0}),
            json!({"lease_seconds": "x"}),
            json!({"ansible_vars": []}),
            json!({"batch_sise": 2}),
        ] {
            let e = ClusterExecConfig::from_config(bad.as_object().unwrap()).unwrap_err();
            assert!(matches!(e, ExecError::Config { .. }), "{e}");
        }
    }
}
