//! `/cluster/NAME/hosts[/ADDRESS]`: a cluster's member list, and a host
//! joining or leaving a cluster (registered with its container manager).

use std::collections::HashSet;

use commissaire_models::*;
use commissaire_storage_client::StorageCallError;
use serde_json::{Map, Value, json};

use super::input::*;
use super::list_query::ListQuery;
use super::{Api, Reply, ok};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Address, Name};

impl Api {
    /// `GET /cluster/{name}/hosts`: the member addresses.
    pub async fn list_members(&self, name: &Name) -> ApiResult<Reply> {
        ok(json!(self.get_cluster_record(name).await?.hostset))
    }

    /// `GET /cluster/{name}/hosts?limit=...`: the member addresses, as the
    /// plain list or a page.
    pub async fn list_members_matching(&self, name: &Name, query: &ListQuery) -> ApiResult<Reply> {
        let items = self
            .get_cluster_record(name)
            .await?
            .hostset
            .into_iter()
            .map(|a| (a.clone(), json!(a)))
            .collect();
        ok(query.answer(items))
    }

    /// Checks that a host exists and may join a cluster (active or disassociated).
    pub(super) async fn joinable(&self, address: &str) -> ApiResult<Host> {
        let host = self
            .get_opt::<Host>(json!({"address": address}))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("host '{address}' does not exist")))?;
        if !matches!(host.status, HostState::Active | HostState::Disassociated) {
            return Err(ApiError::conflict(format!(
                "host '{address}' cannot join a cluster while its status is '{}'; it must be active or disassociated",
                host.status
            )));
        }
        Ok(host)
    }

    /// `PUT /cluster/{name}/hosts` with `{"old": [...], "new": [...]}`: replaces
    /// the member list if it still is `old` (atomically), else 409.
    pub async fn put_members(&self, name: &Name, body: Map<String, Value>) -> ApiResult<Reply> {
        let old = string_list(&body, "old")?;
        let mut new = Vec::new();
        for address in string_list(&body, "new")? {
            if !new.contains(&address) {
                new.push(address);
            }
        }
        let current = self.get_cluster_record(name).await?;
        let old_set: HashSet<&String> = old.iter().collect();
        if old_set != current.hostset.iter().collect::<HashSet<_>>() {
            return Err(
                ApiError::conflict("'old' does not match the cluster's current host list")
                    .field("old"),
            );
        }
        for address in new.iter().filter(|a| !current.hostset.contains(a)) {
            self.joinable(address).await?;
        }
        let mut next = current.clone();
        next.hostset = new;
        match self.storage.swap(Some(&current), &next).await {
            Ok(saved) => {
                for address in saved
                    .hostset
                    .iter()
                    .filter(|a| !current.hostset.contains(a))
                {
                    self.request_join(&saved, address).await?;
                }
                ok(saved.to_json())
            }
            Err(StorageCallError::Conflict { .. }) => Err(ApiError::conflict(
                "the cluster's host list changed meanwhile; 'old' no longer matches",
            )
            .field("old")),
            Err(e) => Err(e.into()),
        }
    }

    /// `GET /cluster/{name}/hosts/{address}`: 200 if a member, else 404.
    pub async fn get_member(&self, name: &Name, address: &Address) -> ApiResult<Reply> {
        let cluster = self.get_cluster_record(name).await?;
        if cluster.hostset.iter().any(|a| a == address) {
            ok(json!([address]))
        } else {
            Err(ApiError::not_found(format!(
                "host '{address}' is not a member of cluster '{name}'"
            )))
        }
    }

    /// `PUT /cluster/{name}/hosts/{address}`: adds a member (idempotent).
    pub async fn put_member(&self, name: &Name, address: &Address) -> ApiResult<Reply> {
        let cluster = self.get_cluster_record(name).await?;
        if cluster.hostset.iter().any(|a| a == address) {
            // A member that is still `disassociated` with no join pending
            // has not joined: asking again queues its join anew.
            if !cluster.container_manager.is_empty()
                && self
                    .get_opt::<Host>(json!({"address": address}))
                    .await?
                    .is_some_and(|h| h.status == HostState::Disassociated)
                && self
                    .get_opt::<Investigation>(json!({"address": address}))
                    .await?
                    .is_none()
            {
                self.request_join(&cluster, address).await?;
            }
            return ok(json!([address]));
        }
        self.joinable(address).await?;
        let cluster = self.add_to_hostset(name, address).await?;
        self.request_join(&cluster, address).await?;
        ok(json!([address]))
    }

    /// Hands a new member's join to an investigator when the cluster has a
    /// container manager (a durable job, as an investigation: the node is
    /// registered and the host becomes `active` once the node is Ready, or
    /// `failed` saying why). The server does not wait for it.
    pub(super) async fn request_join(&self, cluster: &Cluster, address: &str) -> ApiResult<()> {
        if cluster.container_manager.is_empty() {
            return Ok(());
        }
        self.request_investigation(address, &cluster.name, cluster.to_json(), true)
            .await
    }

    /// `DELETE /cluster/{name}/hosts/{address}`: removes a member (idempotent).
    pub async fn delete_member(&self, name: &Name, address: &Address) -> ApiResult<Reply> {
        let cluster = self
            .update_cluster(name, |c| {
                let before = c.hostset.len();
                c.hostset.retain(|a| a != address);
                Ok(c.hostset.len() != before)
            })
            .await?;
        if !cluster.container_manager.is_empty() {
            let params = json!([cluster.container_manager, address]);
            if let Err(e) = self
                .bus
                .request("container.remove_node", params, self.timeout)
                .await
            {
                tracing::warn!(cluster = %name, %address, error = %e, "could not remove the node from the container manager");
            }
        }
        ok(json!([]))
    }
}
