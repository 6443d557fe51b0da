//! The clusterexec service's settings.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::ExecError;

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
        }
    }
}

fn seconds(config: &Map<String, Value>, field: &str) -> Result<Option<Duration>, ExecError> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(s) if s > 0.0 && s.is_finite() && s < 1e9 => Ok(Some(Duration::from_secs_f64(s))),
            _ => Err(ExecError::config(
                field,
                "must be a positive number of seconds",
            )),
        },
    }
}

fn count(config: &Map<String, Value>, field: &str, min: u64) -> Result<Option<u32>, ExecError> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n >= min && n <= u64::from(u32::MAX) => Ok(Some(n as u32)),
            _ => Err(ExecError::config(
                field,
                format!("must be a whole number of at least {min}"),
            )),
        },
    }
}

impl ClusterExecConfig {
    /// Reads the settings from a configuration document; absent members keep their defaults.
    pub fn from_config(config: &Map<String, Value>) -> Result<Self, ExecError> {
        let mut c = ClusterExecConfig::default();
        match config.get("playbook_dir") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if !s.is_empty() => c.playbook_dir = PathBuf::from(s),
            Some(_) => {
                return Err(ExecError::config(
                    "playbook_dir",
                    "must be a directory path",
                ));
            }
        }
        match config.get("ansible_vars") {
            None | Some(Value::Null) => {}
            Some(Value::Object(vars)) => c.ansible_vars = vars.clone(),
            Some(_) => return Err(ExecError::config("ansible_vars", "must be an object")),
        }
        if let Some(lease) = seconds(config, "lease_seconds")? {
            c.lease = lease;
            c.scan_interval = lease / 2;
        }
        if let Some(scan) = seconds(config, "scan_seconds")? {
            c.scan_interval = scan;
        }
        if let Some(n) = count(config, "max_failures", 0)? {
            c.max_failures = n;
        }
        if let Some(n) = count(config, "batch_size", 1)? {
            c.batch_size = n;
        }
        if let Some(t) = seconds(config, "playbook_timeout_seconds")? {
            c.playbook_timeout = t;
        }
        if let Some(t) = seconds(config, "drain_timeout_seconds")? {
            c.drain_timeout = t;
        }
        if let Some(t) = seconds(config, "container_timeout_seconds")? {
            c.container_timeout = t;
        }
        if let Some(t) = seconds(config, "storage_retry_timeout")? {
            c.storage_retry_timeout = t;
        }
        match config.get("replica_id") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if !s.trim().is_empty() => c.replica_id = s.trim().to_string(),
            Some(_) => {
                return Err(ExecError::config(
                    "replica_id",
                    "must be a non-empty string",
                ));
            }
        }
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
        ] {
            let e = ClusterExecConfig::from_config(bad.as_object().unwrap()).unwrap_err();
            assert!(matches!(e, ExecError::Config { .. }), "{e}");
        }
    }
}
