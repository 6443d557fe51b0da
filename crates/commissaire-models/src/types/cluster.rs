//! A cluster and the counts of its hosts.

use serde::{Deserialize, Serialize};

use super::ClusterState;
use super::null_as_empty;
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
