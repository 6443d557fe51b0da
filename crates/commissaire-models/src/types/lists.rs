//! The list models of the REST API (`/api/v0/hosts`, ...).

use serde::{Deserialize, Serialize};

use super::{Cluster, ContainerManagerConfig, Host, Network};
use crate::{Model, ModelError};

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
