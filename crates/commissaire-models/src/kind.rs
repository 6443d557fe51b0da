//! [`ModelKind`]: the model types by name, for code that handles records as JSON.

use serde_json::Value;

use crate::*;

/// Every model type Commissaire knows, by its bus name (`Host`, `Clusters`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// [`Host`]
    Host,
    /// [`HostCreds`] (secret)
    HostCreds,
    /// [`HostStatus`]
    HostStatus,
    /// [`Cluster`]
    Cluster,
    /// [`ClusterDeploy`]
    ClusterDeploy,
    /// [`ClusterRestart`]
    ClusterRestart,
    /// [`ClusterUpgrade`]
    ClusterUpgrade,
    /// [`Network`]
    Network,
    /// [`ContainerManagerConfig`]
    ContainerManagerConfig,
    /// [`WatcherRecord`]
    WatcherRecord,
    /// [`Investigation`] (internal)
    Investigation,
    /// [`AuditEntry`]
    AuditEntry,
    /// [`ClusterLock`]
    ClusterLock,
    /// [`Hosts`] (list of [`Host`])
    Hosts,
    /// [`Clusters`] (list of [`Cluster`])
    Clusters,
    /// [`Networks`] (list of [`Network`])
    Networks,
    /// [`ContainerManagerConfigs`] (list of [`ContainerManagerConfig`])
    ContainerManagerConfigs,
}

macro_rules! dispatch {
    ($kind:expr, $t:ident => $body:expr) => {
        match $kind {
            ModelKind::Host => {
                type $t = Host;
                $body
            }
            ModelKind::HostCreds => {
                type $t = HostCreds;
                $body
            }
            ModelKind::HostStatus => {
                type $t = HostStatus;
                $body
            }
            ModelKind::Cluster => {
                type $t = Cluster;
                $body
            }
            ModelKind::ClusterDeploy => {
                type $t = ClusterDeploy;
                $body
            }
            ModelKind::ClusterRestart => {
                type $t = ClusterRestart;
                $body
            }
            ModelKind::ClusterUpgrade => {
                type $t = ClusterUpgrade;
                $body
            }
            ModelKind::Network => {
                type $t = Network;
                $body
            }
            ModelKind::ContainerManagerConfig => {
                type $t = ContainerManagerConfig;
                $body
            }
            ModelKind::WatcherRecord => {
                type $t = WatcherRecord;
                $body
            }
            ModelKind::Investigation => {
                type $t = Investigation;
                $body
            }
            ModelKind::AuditEntry => {
                type $t = AuditEntry;
                $body
            }
            ModelKind::ClusterLock => {
                type $t = ClusterLock;
                $body
            }
            ModelKind::Hosts => {
                type $t = Hosts;
                $body
            }
            ModelKind::Clusters => {
                type $t = Clusters;
                $body
            }
            ModelKind::Networks => {
                type $t = Networks;
                $body
            }
            ModelKind::ContainerManagerConfigs => {
                type $t = ContainerManagerConfigs;
                $body
            }
        }
    };
}

impl ModelKind {
    /// Every kind.
    pub const ALL: &'static [ModelKind] = &[
        ModelKind::Host,
        ModelKind::HostCreds,
        ModelKind::HostStatus,
        ModelKind::Cluster,
        ModelKind::ClusterDeploy,
        ModelKind::ClusterRestart,
        ModelKind::ClusterUpgrade,
        ModelKind::Network,
        ModelKind::ContainerManagerConfig,
        ModelKind::WatcherRecord,
        ModelKind::Investigation,
        ModelKind::AuditEntry,
        ModelKind::ClusterLock,
        ModelKind::Hosts,
        ModelKind::Clusters,
        ModelKind::Networks,
        ModelKind::ContainerManagerConfigs,
    ];

    /// The kind's bus name.
    pub fn name(self) -> &'static str {
        dispatch!(self, T => T::NAME)
    }

    /// Looks a kind up by its bus name.
    pub fn from_name(name: &str) -> Result<ModelKind, ModelError> {
        ModelKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == name)
            .ok_or_else(|| ModelError::UnknownModel(name.to_string()))
    }

    /// For a list kind (`Hosts`), the kind of its items (`Host`).
    pub fn item_kind(self) -> Option<ModelKind> {
        match self {
            ModelKind::Hosts => Some(ModelKind::Host),
            ModelKind::Clusters => Some(ModelKind::Cluster),
            ModelKind::Networks => Some(ModelKind::Network),
            ModelKind::ContainerManagerConfigs => Some(ModelKind::ContainerManagerConfig),
            _ => None,
        }
    }

    /// For a list kind, the JSON member holding the items (`hosts`).
    pub fn list_field(self) -> Option<&'static str> {
        match self {
            ModelKind::Hosts => Some("hosts"),
            ModelKind::Clusters => Some("clusters"),
            ModelKind::Networks => Some("networks"),
            ModelKind::ContainerManagerConfigs => Some("container_managers"),
            _ => None,
        }
    }

    /// Whether records of this kind are secrets (never logged nor published).
    pub fn is_secret(self) -> bool {
        matches!(self, ModelKind::HostCreds)
    }

    /// Whether records of this kind are kept in a store (list kinds and
    /// computed kinds are not).
    pub fn is_storable(self) -> bool {
        !matches!(
            self,
            ModelKind::HostStatus
                | ModelKind::Hosts
                | ModelKind::Clusters
                | ModelKind::Networks
                | ModelKind::ContainerManagerConfigs
        )
    }

    /// Members hidden from users.
    pub fn hidden(self) -> &'static [&'static str] {
        dispatch!(self, T => T::HIDDEN)
    }

    /// Validates `value` and returns it with defaults filled in and unknown
    /// members dropped: the full (stored) form.
    pub fn normalize(self, value: Value) -> Result<Value, ModelError> {
        if !value.is_object() {
            return Err(ModelError::invalid(
                self.name(),
                ".",
                "must be a JSON object",
            ));
        }
        dispatch!(self, T => T::from_json(value).map(|m| m.to_json()))
    }

    /// The primary key of a (normalised or partial) JSON record.
    pub fn primary_key(self, value: &Value) -> Result<String, ModelError> {
        let field = match self {
            ModelKind::Host
            | ModelKind::HostCreds
            | ModelKind::WatcherRecord
            | ModelKind::Investigation => "address",
            ModelKind::Cluster
            | ModelKind::ClusterDeploy
            | ModelKind::ClusterRestart
            | ModelKind::ClusterUpgrade
            | ModelKind::Network
            | ModelKind::ClusterLock
            | ModelKind::ContainerManagerConfig => "name",
            ModelKind::AuditEntry => "id",
            _ => {
                return Err(ModelError::invalid(self.name(), ".", "has no primary key"));
            }
        };
        match value.get(field) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(ModelError::invalid(self.name(), field, "is required")),
        }
    }

    /// `value` with the hidden members removed and, for networks and container
    /// managers, secret options masked (what users and notifications see).
    pub fn safe(self, mut value: Value) -> Value {
        if let Some(map) = value.as_object_mut() {
            for hidden in self.hidden() {
                map.remove(*hidden);
            }
            if matches!(self, ModelKind::ContainerManagerConfig | ModelKind::Network)
                && let Some(Value::Object(options)) = map.get_mut("options")
            {
                crate::mask_secret_options(options);
            }
        }
        value
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ModelKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        ModelKind::from_name(s)
    }
}
