//! What the probes and `/metrics` ask of the services: whether storage
//! answers and holds the default network, and the fleet's counts. Asked
//! now, never from the read cache.

use std::collections::BTreeMap;
use std::time::Duration;

use commissaire_models::{Cluster, ClusterDeploy, ClusterRestart, ClusterUpgrade, Host, Network};
use commissaire_storage_client::{StorageCallError, StorageClient};
use futures::StreamExt;
use serde_json::json;

use super::Api;

/// What storage said about the default network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageState {
    /// Storage answered and the default network exists.
    Ready,
    /// Storage answered; the default network does not exist (yet).
    NoDefaultNetwork,
    /// Storage did not answer usefully: why.
    Unavailable(String),
}

/// Hosts by status and operation records by kind and status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetCounts {
    /// Host status (`new` for the empty status) → hosts.
    pub hosts: BTreeMap<&'static str, u64>,
    /// (`restart` | `upgrade` | `deploy`, status) → records.
    pub operations: BTreeMap<(&'static str, &'static str), u64>,
}

impl Api {
    /// Whether the bus is connected now.
    pub fn bus_connected(&self) -> bool {
        self.bus.connection_epoch().is_some()
    }

    fn storage_within(&self, timeout: Duration) -> StorageClient {
        StorageClient::new(self.bus.clone())
            .with_timeout(timeout)
            .impatient()
    }

    /// Asks storage for the default network, waiting up to `timeout`.
    pub async fn storage_state(&self, timeout: Duration) -> StorageState {
        match self
            .storage_within(timeout)
            .get::<Network>(json!({"name": Network::default_network().name}))
            .await
        {
            Ok(_) => StorageState::Ready,
            Err(StorageCallError::NotFound(_)) => StorageState::NoDefaultNetwork,
            Err(e) => StorageState::Unavailable(e.to_string()),
        }
    }

    /// Counts hosts by status and operations by status, waiting up to
    /// `timeout` for each storage call.
    pub async fn fleet_counts(&self, timeout: Duration) -> Result<FleetCounts, StorageCallError> {
        let storage = self.storage_within(timeout);
        let mut counts = FleetCounts::default();
        for status in commissaire_models::HostState::ALL {
            counts.hosts.insert(host_label(status), 0);
        }
        for host in storage.list::<Host>().await? {
            *counts
                .hosts
                .entry(host_label(host.status.as_str()))
                .or_default() += 1;
        }
        for kind in ["restart", "upgrade", "deploy"] {
            for status in commissaire_models::OperationStatus::ALL {
                counts.operations.insert((kind, operation_label(status)), 0);
            }
        }
        // Operation records live under their cluster: read each cluster's,
        // a few clusters at a time.
        let clusters = storage.list::<Cluster>().await?;
        let records = futures::stream::iter(clusters.into_iter().map(|c| {
            let storage = storage.clone();
            let key = json!({"name": c.name});
            async move {
                let restart = optional(storage.get::<ClusterRestart>(key.clone()).await)?;
                let upgrade = optional(storage.get::<ClusterUpgrade>(key.clone()).await)?;
                let deploy = optional(storage.get::<ClusterDeploy>(key).await)?;
                Ok::<_, StorageCallError>([
                    ("restart", restart.map(|r| r.status.as_str())),
                    ("upgrade", upgrade.map(|r| r.status.as_str())),
                    ("deploy", deploy.map(|r| r.status.as_str())),
                ])
            }
        }))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
        for found in records {
            for (kind, status) in found? {
                if let Some(status) = status {
                    *counts
                        .operations
                        .entry((kind, operation_label(status)))
                        .or_default() += 1;
                }
            }
        }
        Ok(counts)
    }
}

/// `Ok(None)` for a record that does not exist.
fn optional<M>(found: Result<M, StorageCallError>) -> Result<Option<M>, StorageCallError> {
    match found {
        Ok(m) => Ok(Some(m)),
        Err(StorageCallError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A host status as a label value: Prometheus reads an empty value as no
/// label, so the new host's `""` is `new`.
fn host_label(status: &'static str) -> &'static str {
    if status.is_empty() { "new" } else { status }
}

/// An operation status as a label value (`""` is `unknown`).
fn operation_label(status: &'static str) -> &'static str {
    if status.is_empty() { "unknown" } else { status }
}
