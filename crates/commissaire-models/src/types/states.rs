//! The string enumerations of the models: host, cluster and operation states, network and container manager types.

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema)]
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
