//! The model structs and their enumerations.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::{Model, ModelError, check_address, check_name};

/// Accepts `null` where a string is expected (the docs show `"finished_at": null`).
fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every accepted value, as written in JSON.
            pub const ALL: &'static [&'static str] = &[$($text),+];

            /// The value as written in JSON.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("'{other}' is not one of {}", Self::ALL.join(", "))),
                }
            }
        }

    };
}

string_enum!(
    /// Where a host is in its life cycle (the docs' "Host Statuses").
    HostState {
        /// Not looked at yet.
        #[default]
        New => "",
        /// Commissaire is gathering facts about the host.
        Investigating => "investigating",
        /// The bootstrap playbook is running.
        Bootstrapping => "bootstrapping",
        /// Part of the cluster and registered with the container manager.
        Active => "active",
        /// Bootstrapped but not registered with a container manager.
        Disassociated => "disassociated",
        /// Unreachable or a step failed.
        Failed => "failed",
    }
);

string_enum!(
    /// Operating systems Commissaire knows command sets for (the docs' "OS's", plus Debian and Ubuntu).
    Os {
        /// Not known yet.
        #[default]
        Unknown => "",
        /// Project Atomic host (OSTree).
        Atomic => "atomic",
        /// Red Hat Enterprise Linux.
        Rhel => "rhel",
        /// CentOS.
        Centos => "centos",
        /// Fedora.
        Fedora => "fedora",
        /// Debian.
        Debian => "debian",
        /// Ubuntu.
        Ubuntu => "ubuntu",
    }
);

string_enum!(
    /// A cluster's computed health (the docs' "Cluster Statuses").
    ClusterState {
        /// Not computed.
        #[default]
        Unknown => "",
        /// Every host is active.
        Ok => "ok",
        /// Some hosts are not active.
        Degraded => "degraded",
        /// No host is active.
        Failed => "failed",
    }
);

string_enum!(
    /// State of a cluster operation (the docs' "Upgrade Statuses").
    OperationStatus {
        /// Not started.
        #[default]
        Unknown => "",
        /// Running.
        InProcess => "in_process",
        /// Every host done.
        Finished => "finished",
        /// Stopped on a failure.
        Failed => "failed",
        /// Stopped by an operator.
        Cancelled => "cancelled",
    }
);

string_enum!(
    /// How flannel gets its configuration (the docs' network types).
    NetworkType {
        /// flannel reads its configuration from etcd.
        #[default]
        FlannelEtcd => "flannel_etcd",
        /// flannel in client/server mode; options need `address` (`host:port`).
        FlannelServer => "flannel_server",
    }
);

string_enum!(
    /// Kinds of container manager (the docs' "ContainerManager Types").
    ContainerManagerType {
        /// An OpenShift compatible API.
        #[default]
        Openshift => "openshift",
        /// A Kubernetes API.
        Kubernetes => "kubernetes",
        /// Always succeeds; for tests and clusters without a real manager.
        Trivial => "trivial",
    }
);

/// A managed host (`/api/v0/host/{IP}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Host {
    /// IP address (or resolvable name) of the host.
    pub address: String,
    /// Life-cycle status.
    pub status: HostState,
    /// Operating system.
    pub os: Os,
    /// Number of CPUs.
    pub cpus: i64,
    /// Memory in kilobytes.
    pub memory: i64,
    /// Disk space in kilobytes.
    pub space: i64,
    /// When the host was last checked ([`crate::DATE_FORMAT`]).
    #[serde(deserialize_with = "null_as_empty")]
    pub last_check: String,
    /// Name of the storage handler that owns this record (CPD-61); empty for the default.
    #[serde(deserialize_with = "null_as_empty")]
    pub source: String,
    /// Why the host is `failed` (absent otherwise).
    #[serde(
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub reason: String,
}

impl Model for Host {
    const NAME: &'static str = "Host";
    fn primary_key(&self) -> String {
        self.address.clone()
    }
    fn validate(&self) -> Result<(), ModelError> {
        check_address(Self::NAME, &self.address)?;
        for (field, value) in [
            ("cpus", self.cpus),
            ("memory", self.memory),
            ("space", self.space),
        ] {
            if value < 0 {
                return Err(ModelError::invalid(
                    Self::NAME,
                    field,
                    "must not be negative",
                ));
            }
        }
        Ok(())
    }
}

/// The SSH credentials of a host (`/api/v0/host/{IP}/creds`). A secret model.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostCreds {
    /// Address of the host these credentials open.
    pub address: String,
    /// Base64 encoded SSH private key.
    pub ssh_priv_key: String,
    /// SSH user (default `root`).
    pub remote_user: String,
}

impl Default for HostCreds {
    fn default() -> Self {
        HostCreds {
            address: String::new(),
            ssh_priv_key: String::new(),
            remote_user: "root".into(),
        }
    }
}

impl std::fmt::Debug for HostCreds {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCreds")
            .field("address", &self.address)
            .field("ssh_priv_key", &"<redacted>")
            .field("remote_user", &self.remote_user)
            .finish()
    }
}

impl Model for HostCreds {
    const NAME: &'static str = "HostCreds";
    fn primary_key(&self) -> String {
        self.address.clone()
    }
    fn validate(&self) -> Result<(), ModelError> {
        check_address(Self::NAME, &self.address)?;
        if self.remote_user.is_empty() {
            return Err(ModelError::invalid(
                Self::NAME,
                "remote_user",
                "must not be empty",
            ));
        }
        Ok(())
    }
}

/// A host's status as shown by `/api/v0/host/{IP}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct HostStatus {
    /// `host_only` when the host has no container manager, else the manager type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Status members of the host record (`status`, `last_check`).
    pub host: Map<String, Value>,
    /// The node's status as the container manager reports it.
    pub container_manager: Map<String, Value>,
}

impl Model for HostStatus {
    const NAME: &'static str = "HostStatus";
    fn primary_key(&self) -> String {
        String::new()
    }
}

/// Counts of a cluster's hosts, computed on `GET /api/v0/cluster/{NAME}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ClusterHostCounts {
    /// Members of the cluster.
    pub total: u64,
    /// Members whose status is `active`.
    pub available: u64,
    /// The other members.
    pub unavailable: u64,
}

/// A cluster (`/api/v0/cluster/{NAME}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cluster {
    /// Name of the cluster.
    pub name: String,
    /// Computed health.
    pub status: ClusterState,
    /// Name of the network the cluster uses.
    pub network: String,
    /// Name of the container manager, empty for none.
    #[serde(deserialize_with = "null_as_empty")]
    pub container_manager: String,
    /// Addresses of the member hosts (hidden from users; see `/hosts`).
    pub hostset: Vec<String>,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            name: String::new(),
            status: ClusterState::Unknown,
            network: "default".into(),
            container_manager: String::new(),
            hostset: Vec::new(),
        }
    }
}

impl Model for Cluster {
    const NAME: &'static str = "Cluster";
    const HIDDEN: &'static [&'static str] = &["hostset"];
    fn primary_key(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), ModelError> {
        check_name(Self::NAME, "name", &self.name)?;
        check_name(Self::NAME, "network", &self.network)?;
        if !self.container_manager.is_empty() {
            check_name(Self::NAME, "container_manager", &self.container_manager)?;
        }
        for (i, address) in self.hostset.iter().enumerate() {
            check_address(Self::NAME, address).map_err(|_| {
                ModelError::invalid(
                    Self::NAME,
                    format!("hostset[{i}]"),
                    format!("'{address}' is not a host address"),
                )
            })?;
        }
        Ok(())
    }
}

macro_rules! cluster_operation {
    ($(#[$meta:meta])* $name:ident, $done:ident, $done_text:literal $(, $(#[$extra_meta:meta])* $extra:ident)?) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
        #[serde(default)]
        pub struct $name {
            /// Name of the cluster.
            pub name: String,
            /// Where the operation is.
            pub status: OperationStatus,
            $($(#[$extra_meta])* pub $extra: String,)?
            #[doc = concat!("Hosts already ", $done_text, ".")]
            pub $done: Vec<String>,
            /// Hosts being worked on now (or the host that failed).
            pub in_process: Vec<String>,
            /// When the operation started.
            #[serde(deserialize_with = "null_as_empty")]
            pub started_at: String,
            /// When it ended; empty while running.
            #[serde(deserialize_with = "null_as_empty")]
            pub finished_at: String,
            /// Hosts whose step failed (absent when none did).
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub failed_hosts: Vec<String>,
            /// Why the operation failed or was cancelled, host by host (absent otherwise).
            #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
            pub reason: String,
            /// How many failed hosts the roll tolerates before it stops
            /// (absent: the clusterexec service's setting, by default 0).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub max_failures: Option<u32>,
            /// How many hosts are worked on at once (absent: the clusterexec
            /// service's setting, by default 1).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub batch_size: Option<u32>,
            /// Set by `DELETE` on the operation: stop after the current hosts.
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            pub cancel_requested: bool,
            /// The clusterexec replica running the operation (absent when none does).
            #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
            pub owner: String,
            /// Until when `owner`'s claim holds unless renewed ([`crate::DATE_FORMAT`], UTC);
            /// another replica takes the operation over once it has passed.
            #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
            pub lease_expires_at: String,
        }

        impl Model for $name {
            const NAME: &'static str = stringify!($name);
            fn primary_key(&self) -> String {
                self.name.clone()
            }
            fn validate(&self) -> Result<(), ModelError> {
                check_name(Self::NAME, "name", &self.name)?;
                $(if self.$extra.is_empty() {
                    return Err(ModelError::invalid(Self::NAME, stringify!($extra), "must not be empty"));
                })?
                Ok(())
            }
        }
    };
}

cluster_operation!(
    /// A rolling OSTree deployment of a cluster (`/api/v0/cluster/{NAME}/deploy`).
    ClusterDeploy, deployed, "deployed",
    /// The OSTree version being deployed.
    version
);
cluster_operation!(
    /// A rolling restart of a cluster (`/api/v0/cluster/{NAME}/restart`).
    ClusterRestart, restarted, "restarted"
);
cluster_operation!(
    /// A rolling upgrade of a cluster (`/api/v0/cluster/{NAME}/upgrade`).
    ClusterUpgrade, upgraded, "upgraded"
);

/// A network configuration (`/api/v0/network/{NAME}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Network {
    /// Name of the network.
    pub name: String,
    /// How flannel is configured.
    #[serde(rename = "type")]
    pub kind: NetworkType,
    /// Type-specific options.
    pub options: Map<String, Value>,
}

impl Network {
    /// The network every installation starts with: `default`, `flannel_etcd`.
    pub fn default_network() -> Network {
        Network {
            name: "default".into(),
            kind: NetworkType::FlannelEtcd,
            options: Map::new(),
        }
    }
}

impl Model for Network {
    const NAME: &'static str = "Network";
    fn primary_key(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), ModelError> {
        check_name(Self::NAME, "name", &self.name)?;
        if self.kind == NetworkType::FlannelServer {
            match self.options.get("address") {
                Some(Value::String(a)) if a.contains(':') => {}
                _ => {
                    return Err(ModelError::invalid(
                        Self::NAME,
                        "options.address",
                        "flannel_server networks need options.address as 'host:port'",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A container manager configuration (`/api/v0/containermanager/{NAME}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ContainerManagerConfig {
    /// Name of the configuration.
    pub name: String,
    /// Kind of manager.
    #[serde(rename = "type")]
    pub kind: ContainerManagerType,
    /// Type-specific options (`server_url`, `token`, ...).
    pub options: Map<String, Value>,
}

impl Model for ContainerManagerConfig {
    const NAME: &'static str = "ContainerManagerConfig";
    fn primary_key(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), ModelError> {
        check_name(Self::NAME, "name", &self.name)
    }
}

/// A watcher's note of when a host was last checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct WatcherRecord {
    /// Address of the host.
    pub address: String,
    /// When it was last checked.
    pub last_check: String,
    /// The host's status before the watcher marked it `failed`, restored when it answers again.
    #[serde(
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub previous_status: String,
}

impl Model for WatcherRecord {
    const NAME: &'static str = "WatcherRecord";
    fn primary_key(&self) -> String {
        self.address.clone()
    }
    fn validate(&self) -> Result<(), ModelError> {
        check_address(Self::NAME, &self.address)?;
        if !self.last_check.is_empty() && crate::parse_iso(&self.last_check).is_none() {
            return Err(ModelError::invalid(
                Self::NAME,
                "last_check",
                "must be a date as YYYY-MM-DDTHH:MM:SS.ffffff",
            ));
        }
        Ok(())
    }
}

/// A host investigation that has been asked for and not yet finished: the
/// record is the job. The server writes it before announcing
/// `jobs.investigate`; an investigator claims it with a lease (`owner`,
/// `lease_expires_at`, renewed while it works) and deletes it when the host
/// has reached a final status. Records that no live investigator owns are
/// found by every investigator's scan, so a lost or never-delivered message
/// only delays the work. Internal: not part of the REST API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Investigation {
    /// Address of the host.
    pub address: String,
    /// The cluster the host joins, if any (empty: look it up).
    #[serde(deserialize_with = "null_as_empty")]
    pub cluster: String,
    /// When the investigation was asked for.
    #[serde(deserialize_with = "null_as_empty")]
    pub requested_at: String,
    /// The investigator replica working on it (empty: nobody yet).
    #[serde(deserialize_with = "null_as_empty")]
    pub owner: String,
    /// Until when `owner`'s claim holds without renewal.
    #[serde(deserialize_with = "null_as_empty")]
    pub lease_expires_at: String,
    /// How many times an investigator has started it.
    pub attempts: u32,
}

impl Investigation {
    /// Whether `owner`'s lease has run out at `now` (or nobody owns it).
    pub fn unowned_at(&self, now: chrono::NaiveDateTime) -> bool {
        self.owner.is_empty()
            || crate::parse_iso(&self.lease_expires_at).is_none_or(|until| until <= now)
    }
}

impl Model for Investigation {
    const NAME: &'static str = "Investigation";
    fn primary_key(&self) -> String {
        self.address.clone()
    }
    fn validate(&self) -> Result<(), ModelError> {
        check_address(Self::NAME, &self.address)?;
        for (field, value) in [
            ("requested_at", &self.requested_at),
            ("lease_expires_at", &self.lease_expires_at),
        ] {
            if !value.is_empty() && crate::parse_iso(value).is_none() {
                return Err(ModelError::invalid(
                    Self::NAME,
                    field,
                    "must be a date as YYYY-MM-DDTHH:MM:SS.ffffff",
                ));
            }
        }
        Ok(())
    }
}

macro_rules! list_model {
    ($(#[$meta:meta])* $name:ident, $field:ident, $item:ty) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
        #[serde(default)]
        pub struct $name {
            /// The records.
            pub $field: Vec<$item>,
        }

        impl Model for $name {
            const NAME: &'static str = stringify!($name);
            fn primary_key(&self) -> String {
                String::new()
            }
            fn validate(&self) -> Result<(), ModelError> {
                self.$field.iter().try_for_each(|m| m.validate())
            }
        }
    };
}

list_model!(
    /// Every host (`/api/v0/hosts`).
    Hosts, hosts, Host
);
list_model!(
    /// Every cluster (`/api/v0/clusters`).
    Clusters, clusters, Cluster
);
list_model!(
    /// Every network (`/api/v0/networks`).
    Networks, networks, Network
);
list_model!(
    /// Every container manager configuration (`/api/v0/containermanagers`).
    ContainerManagerConfigs, container_managers, ContainerManagerConfig
);
