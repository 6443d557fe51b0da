//! `/clusters` and `/cluster/NAME`: listing, reading (with the computed
//! status of its hosts), creating and deleting clusters.

use axum::http::StatusCode;
use commissaire_bus::codes;
use commissaire_models::*;
use commissaire_storage_client::StorageCallError;
use serde_json::{Map, Value, json};

use super::input::*;
use super::list_query::{FilterSpec, ListQuery};
use super::{Api, Reply, created, ok};
use crate::error::{ApiError, ApiResult};
use crate::extract::Name;

/// The filters of `GET /clusters`.
pub const CLUSTER_FILTERS: &[FilterSpec] = &[FilterSpec::one_of("status", ClusterState::ALL)];

impl Api {
    pub(super) async fn clusters(&self) -> ApiResult<Vec<Cluster>> {
        Ok(self.storage.list::<Cluster>().await?)
    }

    /// `GET /clusters`: the cluster names.
    pub async fn list_clusters(&self) -> ApiResult<Reply> {
        let names: Vec<String> = self.clusters().await?.into_iter().map(|c| c.name).collect();
        ok(json!(names))
    }

    /// `GET /clusters?...`: the names of the clusters whose computed status
    /// passes the `status` filter, as the plain list or a page.
    pub async fn list_clusters_matching(&self, query: &ListQuery) -> ApiResult<Reply> {
        let clusters = self.clusters().await?;
        let statuses: std::collections::HashMap<String, HostState> =
            if query.filter("status").is_some() {
                self.storage
                    .list::<Host>()
                    .await?
                    .into_iter()
                    .map(|h| (h.address, h.status))
                    .collect()
            } else {
                Default::default()
            };
        let items = clusters
            .into_iter()
            .filter(|c| {
                query.filter("status").is_none() || {
                    let (state, _) = c.computed_status(
                        c.hostset.len(),
                        c.hostset.iter().filter_map(|a| statuses.get(a).copied()),
                    );
                    query.passes("status", Some(state.as_str()))
                }
            })
            .map(|c| (c.name.clone(), json!(c.name)))
            .collect();
        ok(query.answer(items))
    }

    /// The cluster and its members' host records, in one storage call
    /// (members without a record are left out).
    pub(super) async fn cluster_with_hosts(&self, name: &Name) -> ApiResult<(Cluster, Vec<Host>)> {
        let params = json!({
            "model_type_name": "Cluster", "model_json_data": {"name": name},
            "member": "hostset", "member_type_name": "Host",
        });
        let expanded = match self
            .bus
            .request("storage.expand", params, self.timeout)
            .await
        {
            Ok(v) => v,
            Err(e)
                if e.rpc()
                    .is_some_and(|r| r.code == codes::STORAGE_LOOKUP_ERROR) =>
            {
                return Err(ApiError::not_found(format!(
                    "cluster '{name}' does not exist"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let cluster = Cluster::from_json(expanded["record"].clone())
            .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))?;
        let hosts: Vec<Host> = match &expanded["members"] {
            Value::Array(items) => items
                .iter()
                .filter_map(|h| Host::from_json(h.clone()).ok())
                .collect(),
            _ => Vec::new(),
        };
        Ok((cluster, hosts))
    }

    /// `GET /cluster/{name}`: the cluster with its computed status and host counts.
    pub async fn get_cluster(&self, name: &Name) -> ApiResult<Reply> {
        let (cluster, hosts) = self.cluster_with_hosts(name).await?;
        let total = cluster.hostset.len();
        let (status, available) = cluster.computed_status(total, hosts.iter().map(|h| h.status));
        let (total, available) = (total as u64, available as u64);
        let mut body = cluster.to_safe_json();
        body["status"] = json!(status);
        body["hosts"] = json!(ClusterHostCounts {
            total,
            available,
            unavailable: total - available,
        });
        ok(body)
    }

    /// `PUT /cluster/{name}`: creates a cluster; re-creating it with the same
    /// settings is a 201, with other settings a 409.
    pub async fn put_cluster(&self, name: &Name, body: Map<String, Value>) -> ApiResult<Reply> {
        let network = optional_string(&body, "network")?.unwrap_or_else(|| "default".into());
        let container_manager = optional_string(&body, "container_manager")?.unwrap_or_default();
        check_name("network", &network)?;
        if self
            .get_opt::<Network>(json!({"name": network}))
            .await?
            .is_none()
        {
            return Err(
                ApiError::bad_request(format!("network '{network}' does not exist"))
                    .field("network"),
            );
        }
        if !container_manager.is_empty() {
            check_name("container_manager", &container_manager)?;
            if self
                .get_opt::<ContainerManagerConfig>(json!({"name": container_manager}))
                .await?
                .is_none()
            {
                return Err(ApiError::bad_request(format!(
                    "container manager '{container_manager}' does not exist"
                ))
                .field("container_manager"));
            }
        }
        let cluster = Cluster {
            name: name.to_string(),
            network,
            container_manager,
            ..Cluster::default()
        };
        match self.storage.swap(None, &cluster).await {
            Ok(saved) => created(saved.to_safe_json()),
            Err(StorageCallError::Conflict { .. }) => {
                let existing = self.get_cluster_record(name).await?;
                if existing.network == cluster.network
                    && existing.container_manager == cluster.container_manager
                {
                    created(existing.to_safe_json())
                } else {
                    Err(ApiError::conflict(format!(
                        "cluster '{name}' already exists with network '{}' and container manager '{}'",
                        existing.network, existing.container_manager
                    )))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `DELETE /cluster/{name}`.
    pub async fn delete_cluster(&self, name: &Name) -> ApiResult<Reply> {
        let cluster = self.get_cluster_record(name).await?;
        if !cluster.container_manager.is_empty() {
            // Only the cluster's own nodes leave the container manager.
            for address in &cluster.hostset {
                let params = json!([cluster.container_manager, address]);
                if let Err(e) = self
                    .bus
                    .request("container.remove_node", params, self.timeout)
                    .await
                {
                    tracing::warn!(cluster = %name, %address, error = %e, "could not remove a node from the container manager");
                }
            }
        }
        self.storage
            .delete::<Cluster>(json!({"name": name}))
            .await?;
        for op in [
            ModelKind::ClusterRestart,
            ModelKind::ClusterUpgrade,
            ModelKind::ClusterDeploy,
        ] {
            let params = json!({"model_type_name": op.name(), "model_json_data": {"name": name}});
            let _ = self
                .bus
                .request("storage.delete", params, self.timeout)
                .await;
        }
        if let Err(e) = self.reboot_lock().delete(name).await {
            tracing::warn!(cluster = %name, error = %e, "could not delete the cluster's reboot lock");
        }
        ok(json!([]))
    }
}
