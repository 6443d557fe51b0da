//! A cluster and the counts of its hosts.

use serde::{Deserialize, Serialize};

use super::null_as_empty;
use super::{ClusterState, HostState, RollingDefaults};
use crate::{Model, ModelError, check_address, check_name};

/// Counts of a cluster's hosts, computed on `GET /api/v0/cluster/{NAME}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
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

impl Cluster {
    /// Whether a member host with `status` counts as available in the
    /// cluster's computed status. `active` always does. `disassociated`
    /// (bootstrapped, but not a node of a container manager) does only
    /// when the cluster has no container manager: there, that is what a
    /// healthy host is. With one, the original's rule stands: only `active`.
    pub fn counts_as_available(&self, status: HostState) -> bool {
        status == HostState::Active
            || (status == HostState::Disassociated && self.container_manager.is_empty())
    }

    /// The cluster's computed status from its members' statuses (`total`
    /// members, of which those with a record are `statuses`): `ok` when every
    /// member is available, `failed` when none is, else `degraded`; and how
    /// many are available.
    pub fn computed_status(
        &self,
        total: usize,
        statuses: impl IntoIterator<Item = HostState>,
    ) -> (ClusterState, usize) {
        let available = statuses
            .into_iter()
            .filter(|s| self.counts_as_available(*s))
            .count();
        let state = if available == total {
            ClusterState::Ok
        } else if available == 0 {
            ClusterState::Failed
        } else {
            ClusterState::Degraded
        };
        (state, available)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(container_manager: &str) -> Cluster {
        Cluster {
            name: "c".into(),
            container_manager: container_manager.into(),
            ..Cluster::default()
        }
    }

    #[test]
    fn without_a_container_manager_disassociated_hosts_are_healthy() {
        let c = cluster("");
        let statuses = [HostState::Disassociated, HostState::Active];
        assert_eq!(c.computed_status(2, statuses), (ClusterState::Ok, 2));
        let statuses = [HostState::Disassociated, HostState::Failed];
        assert_eq!(c.computed_status(2, statuses), (ClusterState::Degraded, 1));
    }

    #[test]
    fn with_a_container_manager_only_active_hosts_are_available() {
        let c = cluster("prod-kube");
        let statuses = [HostState::Disassociated, HostState::Disassociated];
        assert_eq!(c.computed_status(2, statuses), (ClusterState::Failed, 0));
        let statuses = [HostState::Disassociated, HostState::Active];
        assert_eq!(c.computed_status(2, statuses), (ClusterState::Degraded, 1));
    }

    #[test]
    fn members_without_a_record_are_unavailable_and_an_empty_cluster_is_ok() {
        let c = cluster("");
        assert_eq!(
            c.computed_status(2, [HostState::Active]),
            (ClusterState::Degraded, 1)
        );
        assert_eq!(c.computed_status(0, []), (ClusterState::Ok, 0));
    }
}
