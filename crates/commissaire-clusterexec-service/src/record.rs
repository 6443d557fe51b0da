//! The three operation records (ClusterRestart, ClusterUpgrade,
//! ClusterDeploy) seen through one struct.

use commissaire_ansible::Playbook;
use commissaire_models::{Budget, DATE_FORMAT, OperationStatus, RollDetails, now_iso};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ExecError;

/// A cluster operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// A rolling restart (`ClusterRestart`, `restart.yaml`).
    Restart,
    /// A rolling upgrade (`ClusterUpgrade`, `upgrade.yaml`).
    Upgrade,
    /// A rolling deploy of a tree version (`ClusterDeploy`, `deploy.yaml`).
    Deploy,
}

impl OpKind {
    /// Every operation.
    pub const ALL: [OpKind; 3] = [OpKind::Restart, OpKind::Upgrade, OpKind::Deploy];

    /// The method / path segment: `restart`, `upgrade`, `deploy`.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Restart => "restart",
            OpKind::Upgrade => "upgrade",
            OpKind::Deploy => "deploy",
        }
    }

    /// The record's model type name.
    pub fn model_name(self) -> &'static str {
        match self {
            OpKind::Restart => "ClusterRestart",
            OpKind::Upgrade => "ClusterUpgrade",
            OpKind::Deploy => "ClusterDeploy",
        }
    }

    /// The record member listing the hosts done: `restarted`, `upgraded`, `deployed`.
    pub fn done_member(self) -> &'static str {
        match self {
            OpKind::Restart => "restarted",
            OpKind::Upgrade => "upgraded",
            OpKind::Deploy => "deployed",
        }
    }

    /// The playbook run on each host.
    pub fn playbook(self) -> Playbook {
        match self {
            OpKind::Restart => Playbook::Restart,
            OpKind::Upgrade => Playbook::Upgrade,
            OpKind::Deploy => Playbook::Deploy,
        }
    }
}

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operation record, the done list (`restarted`, `upgraded`,
/// `deployed`) under the name `done`. Converted from and to the stored JSON
/// with [`OpRecord::from_value`] and [`OpRecord::to_value`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OpRecord {
    /// The cluster.
    pub name: String,
    /// Where the operation is.
    pub status: OperationStatus,
    /// The tree version (deploy only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Hosts done.
    pub done: Vec<String>,
    /// Hosts being worked on (or, once `failed`, the hosts of the step that failed).
    pub in_process: Vec<String>,
    /// When the operation started.
    pub started_at: String,
    /// When it ended; empty while running.
    pub finished_at: String,
    /// Hosts whose step failed.
    pub failed_hosts: Vec<String>,
    /// Why hosts failed or the operation was cancelled.
    pub reason: String,
    /// Failed hosts tolerated before the roll stops (none: the cluster's
    /// default, else the service's setting).
    pub max_failures: Option<Budget>,
    /// Hosts per step (none: the cluster's default, else the service's setting).
    pub batch_size: Option<Budget>,
    /// The operator asked to stop.
    pub cancel_requested: bool,
    /// The replica running it.
    pub owner: String,
    /// Until when the owner's claim holds.
    pub lease_expires_at: String,
    /// Who started it, order, pause, the hosts' timeline, events, past runs.
    #[serde(flatten)]
    pub details: RollDetails,
}

impl OpRecord {
    /// Reads a stored record of `kind`.
    pub fn from_value(kind: OpKind, mut value: Value) -> Result<OpRecord, ExecError> {
        let decode = |reason: String| ExecError::Decode {
            model: kind.model_name(),
            reason,
        };
        if !value.is_object() {
            return Err(decode(format!("expected an object, got {value}")));
        }
        let map = value.as_object_mut().expect("an object");
        if let Some(done) = map.remove(kind.done_member()) {
            map.insert("done".into(), done);
        }
        // The models accept null for some members (`"finished_at": null`):
        // absent members take their defaults here.
        map.retain(|_, v| !v.is_null());
        serde_json::from_value(value).map_err(|e| decode(e.to_string()))
    }

    /// The JSON to store for `kind`.
    pub fn to_value(&self, kind: OpKind) -> Value {
        let mut value = serde_json::to_value(self).expect("records serialise");
        let map = value.as_object_mut().expect("an object");
        if let Some(done) = map.remove("done") {
            map.insert(kind.done_member().into(), done);
        }
        if kind != OpKind::Deploy {
            map.remove("version");
        }
        for member in ["failed_hosts"] {
            if map
                .get(member)
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            {
                map.remove(member);
            }
        }
        for member in ["reason", "owner", "lease_expires_at"] {
            if map.get(member).and_then(Value::as_str) == Some("") {
                map.remove(member);
            }
        }
        for member in ["max_failures", "batch_size"] {
            if map.get(member).is_some_and(Value::is_null) {
                map.remove(member);
            }
        }
        if map.get("cancel_requested") == Some(&Value::Bool(false)) {
            map.remove("cancel_requested");
        }
        value
    }

    /// Whether the lease has passed at `now` (an unreadable or missing
    /// expiry counts as passed).
    pub fn lease_expired(&self, now: chrono::NaiveDateTime) -> bool {
        match chrono::NaiveDateTime::parse_from_str(&self.lease_expires_at, DATE_FORMAT) {
            Ok(expires) => expires <= now,
            Err(_) => true,
        }
    }

    /// Ends the operation with `status` now; `note` is added to `reason`.
    pub fn end(&mut self, status: OperationStatus, note: Option<&str>) {
        self.status = status;
        self.finished_at = now_iso();
        if let Some(note) = note {
            self.add_reason(note);
        }
    }

    /// Adds a line to `reason` unless it is there already (updates may be applied twice).
    pub fn add_reason(&mut self, line: &str) {
        if !self.reason.split("; ").any(|l| l == line) {
            if !self.reason.is_empty() {
                self.reason.push_str("; ");
            }
            self.reason.push_str(line);
        }
    }
}

/// Adds `item` to `list` unless it is there already.
pub(crate) fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commissaire_models::{ClusterDeploy, ClusterRestart, Model};
    use serde_json::json;

    #[test]
    fn round_trips_through_the_models() {
        let stored = json!({"name": "c", "status": "in_process", "restarted": ["a"],
            "in_process": ["b"], "started_at": "2024-01-01T00:00:00.000000", "finished_at": ""});
        let rec = OpRecord::from_value(OpKind::Restart, stored.clone()).unwrap();
        assert_eq!(rec.done, vec!["a"]);
        let back = rec.to_value(OpKind::Restart);
        assert_eq!(back, stored, "the documented shape is unchanged");
        assert_eq!(
            ClusterRestart::from_json(back.clone()).unwrap().to_json(),
            back
        );

        let mut rec = OpRecord::from_value(
            OpKind::Deploy,
            json!({"name": "c", "status": "in_process", "version": "7", "deployed": [], "in_process": [],
                "started_at": "x", "finished_at": null}),
        )
        .unwrap();
        rec.owner = "r1".into();
        rec.lease_expires_at = now_iso();
        rec.failed_hosts = vec!["h".into()];
        rec.add_reason("h: down");
        rec.add_reason("h: down");
        rec.max_failures = Some(Budget::Percent(20));
        rec.details.started_by = "ops".into();
        rec.details.host_mut("h").failed_phase = "run".into();
        let v = rec.to_value(OpKind::Deploy);
        assert_eq!(v["reason"], "h: down");
        assert_eq!(v["version"], "7");
        let model = ClusterDeploy::from_json(v.clone()).unwrap();
        assert_eq!(model.to_json(), v, "the model keeps every member");
        assert_eq!(model.owner, "r1");
        assert_eq!(v["max_failures"], "20%");
        assert_eq!(v["timeline"][0]["failed_phase"], "run");
        assert_eq!(model.details.started_by, "ops");
    }

    #[test]
    fn lease_expiry() {
        let now = chrono::Utc::now().naive_utc();
        let mut rec = OpRecord::default();
        assert!(rec.lease_expired(now));
        rec.lease_expires_at = (now + chrono::Duration::seconds(5))
            .format(DATE_FORMAT)
            .to_string();
        assert!(!rec.lease_expired(now));
        assert!(rec.lease_expired(now + chrono::Duration::seconds(6)));
    }
}
