//! A cluster and the counts of its hosts.

use serde::{Deserialize, Serialize};

use super::null_as_empty;
use super::{ClusterState, RollingDefaults};
use crate::{Model, ModelError, check_address, check_name};

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
    /// Defaults of the cluster's rolling operations
    /// (`/api/v0/cluster/{NAME}/rolling`); absent when none are set.
    #[serde(skip_serializing_if = "RollingDefaults::is_empty")]
    pub rolling: RollingDefaults,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            name: String::new(),
            status: ClusterState::Unknown,
            network: "default".into(),
            container_manager: String::new(),
            hostset: Vec::new(),
            rolling: RollingDefaults::default(),
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
        self.rolling.check().map_err(|(field, why)| {
            ModelError::invalid(Self::NAME, format!("rolling.{field}"), why)
        })?;
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
