//! The records of a cluster's rolling operations: restart, upgrade, deploy.

use serde::{Deserialize, Serialize};

use super::null_as_empty;
use super::{Budget, OperationStatus, RollDetails};
use crate::{Model, ModelError, check_name};

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
            /// How many failed hosts the roll tolerates before it stops, a
            /// count or a percent of the cluster's hosts (absent: the
            /// cluster's default, else the clusterexec service's setting, by default 0).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub max_failures: Option<Budget>,
            /// How many hosts are worked on at once, a count or a percent of
            /// the cluster's hosts (absent: the cluster's default, else the
            /// clusterexec service's setting, by default 1).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub batch_size: Option<Budget>,
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
            /// Who started it, the order asked for, pause, each host's
            /// phases, events and past runs.
            #[serde(flatten)]
            pub details: RollDetails,
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
