//! `/hosts` and `/host/ADDRESS[/creds|/status]`: the host inventory, host
//! creation (the stored investigation, then its announcement), credentials
//! and the live status.

use base64::Engine;
use commissaire_bus::codes;
use commissaire_models::*;
use commissaire_storage_client::StorageCallError;
use serde_json::{Map, Value, json};

use super::input::*;
use super::list_query::{FilterSpec, ListQuery};
use super::{Api, Reply, created, ok};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Address, Name};

/// The filters of `GET /hosts`.
pub const HOST_FILTERS: &[FilterSpec] = &[
    FilterSpec::one_of("status", HostState::ALL),
    FilterSpec::any("cluster"),
    FilterSpec::one_of("os", Os::ALL),
    FilterSpec::any("source"),
];

impl Api {
    /// `GET /hosts`: every host.
    pub async fn list_hosts(&self) -> ApiResult<Reply> {
        // The storage service validated every record; pass them through.
        let params = json!({"model_type_name": "Hosts"});
        let hosts = match self
            .bus
            .request("storage.list", params, self.timeout)
            .await?
        {
            Value::Array(items) => items.into_iter().map(|h| ModelKind::Host.safe(h)).collect(),
            _ => Vec::new(),
        };
        ok(Value::Array(hosts))
    }

    /// `GET /hosts?...`: the hosts that pass the filters ([`HOST_FILTERS`]:
    /// `status`, `cluster` (members of it), `os`, `source`), as the plain
    /// list or a page ([`ListQuery`]).
    pub async fn list_hosts_matching(&self, query: &ListQuery) -> ApiResult<Reply> {
        let members: Option<std::collections::BTreeSet<String>> = match query.filter("cluster") {
            None => None,
            Some(names) => {
                let mut members = std::collections::BTreeSet::new();
                for name in names {
                    let cluster = self
                        .get_opt::<Cluster>(json!({"name": name}))
                        .await?
                        .ok_or_else(|| {
                            ApiError::bad_request(format!("cluster: '{name}' does not exist"))
                                .field("cluster")
                        })?;
                    members.extend(cluster.hostset);
                }
                Some(members)
            }
        };
        let params = json!({"model_type_name": "Hosts"});
        let hosts = match self
            .bus
            .request("storage.list", params, self.timeout)
            .await?
        {
            Value::Array(items) => items,
            _ => Vec::new(),
        };
        let text = |h: &Value, k: &str| h.get(k).and_then(Value::as_str).map(str::to_string);
        let items = hosts
            .into_iter()
            .filter_map(|h| {
                let address = text(&h, "address")?;
                let passes = query.passes("status", text(&h, "status").as_deref())
                    && query.passes("os", text(&h, "os").as_deref())
                    && query.passes("source", text(&h, "source").as_deref())
                    && members.as_ref().is_none_or(|m| m.contains(&address));
                passes.then(|| (address, ModelKind::Host.safe(h)))
            })
            .collect();
        ok(query.answer(items))
    }

    /// `GET /host/{address}`.
    pub async fn get_host(&self, address: &Address) -> ApiResult<Reply> {
        ok(self.get_host_record(address).await?.to_safe_json())
    }

    /// `PUT /host/{address}` (and `PUT /host` with the peer's address): stores
    /// the host and its credentials and asks the investigator to bootstrap it.
    /// Re-creating it with the same key is a 201; with another key, a 409.
    pub async fn put_host(&self, address: &Address, body: Map<String, Value>) -> ApiResult<Reply> {
        let key = optional_string(&body, "ssh_priv_key")?
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| {
                ApiError::bad_request("ssh_priv_key (base64 encoded private key) is required")
                    .field("ssh_priv_key")
            })?;
        if base64::engine::general_purpose::STANDARD
            .decode(key.trim())
            .is_err()
        {
            return Err(
                ApiError::bad_request("ssh_priv_key must be base64 encoded").field("ssh_priv_key")
            );
        }
        let remote_user = optional_string(&body, "remote_user")?.unwrap_or_else(|| "root".into());
        if remote_user.is_empty()
            || remote_user.len() > 64
            || remote_user
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(
                ApiError::bad_request("remote_user must be a user name").field("remote_user")
            );
        }
        let cluster_name = optional_string(&body, "cluster")?.filter(|c| !c.is_empty());
        let cluster = match &cluster_name {
            Some(name) => {
                check_name("cluster", name)?;
                Some(
                    self.get_opt::<Cluster>(json!({"name": name}))
                        .await?
                        .ok_or_else(|| {
                            ApiError::conflict(format!("cluster '{name}' does not exist"))
                                .field("cluster")
                        })?,
                )
            }
            None => None,
        };
        if let Some(existing) = self.get_opt::<Host>(json!({"address": address})).await? {
            return self.recreate_host(existing, &key, cluster.as_ref()).await;
        }
        let creds = HostCreds {
            address: address.to_string(),
            ssh_priv_key: key.clone(),
            remote_user,
            ..HostCreds::default()
        };
        let host = Host {
            address: address.to_string(),
            status: HostState::Investigating,
            ..Host::default()
        };
        self.storage.save(&creds).await?;
        let host = match self.storage.swap(None, &host).await {
            Ok(h) => h,
            Err(StorageCallError::Conflict { .. }) => {
                let existing = self.get_host_record(address).await?;
                return self.recreate_host(existing, &key, cluster.as_ref()).await;
            }
            Err(e) => return Err(e.into()),
        };
        let mut cluster_data = json!({});
        if let Some(name) = &cluster_name {
            let joined = self.add_to_hostset(name, address).await?;
            cluster_data = joined.to_json();
        }
        self.request_investigation(
            address,
            cluster_name.as_deref().unwrap_or(""),
            cluster_data,
            false,
        )
        .await?;
        created(host.to_safe_json())
    }

    /// Stores the host's [`Investigation`] record (the job itself: an
    /// investigator takes it up from storage even if the announcement
    /// below is lost), then announces `jobs.investigate`. `join`: the host
    /// is bootstrapped already and only joins `cluster`.
    pub(super) async fn request_investigation(
        &self,
        address: &str,
        cluster: &str,
        cluster_data: Value,
        join: bool,
    ) -> ApiResult<()> {
        let record = Investigation {
            address: address.to_string(),
            cluster: cluster.to_string(),
            requested_at: now_iso(),
            join,
            ..Investigation::default()
        };
        self.storage.save(&record).await?;
        if let Err(e) = self
            .bus
            .notify(
                "jobs.investigate",
                json!({"address": address, "cluster_data": cluster_data, "join": join}),
            )
            .await
        {
            tracing::warn!(address, error = %e, "could not announce the investigation; an investigator's scan will find it");
        }
        Ok(())
    }

    pub(super) async fn recreate_host(
        &self,
        existing: Host,
        key: &str,
        cluster: Option<&Cluster>,
    ) -> ApiResult<Reply> {
        let address = existing.address.clone();
        let creds = self
            .get_opt::<HostCreds>(json!({"address": address}))
            .await?;
        if creds.map(|c| c.ssh_priv_key) != Some(key.to_string()) {
            return Err(ApiError::conflict(format!(
                "host '{address}' already exists with other credentials"
            )));
        }
        if let Some(cluster) = cluster
            && !cluster.hostset.contains(&address)
        {
            return Err(ApiError::conflict(format!(
                "host '{address}' already exists and is not a member of cluster '{}'",
                cluster.name
            ))
            .field("cluster"));
        }
        if matches!(
            existing.status,
            HostState::Active | HostState::Disassociated
        ) {
            return created(existing.to_safe_json());
        }
        // Failed, or still investigating/bootstrapping: unless an
        // investigator is on it (or it is queued), ask again.
        let pending = self
            .get_opt::<Investigation>(json!({"address": address}))
            .await?;
        if existing.status != HostState::Failed && pending.is_some() {
            return created(existing.to_safe_json());
        }
        let host = self.investigate_again(existing, cluster).await?;
        created(host.to_safe_json())
    }

    /// `PUT /host/{address}/retry`: investigates a `failed` host again (or
    /// one left `investigating`/`bootstrapping` with nobody on it), with
    /// the credentials it has; 202 with the host. 409 when there is nothing
    /// to retry: it is `active` or `disassociated`, or an investigator has
    /// it (or it is queued).
    pub async fn retry_host(&self, address: &Address) -> ApiResult<Reply> {
        let existing = self.get_host_record(address).await?;
        if matches!(
            existing.status,
            HostState::Active | HostState::Disassociated
        ) {
            return Err(ApiError::conflict(format!(
                "host '{address}' is {}: there is nothing to retry",
                existing.status
            )));
        }
        let pending = self
            .get_opt::<Investigation>(json!({"address": address.to_string()}))
            .await?;
        if existing.status != HostState::Failed && pending.is_some() {
            return Err(ApiError::conflict(format!(
                "host '{address}' is {} and an investigator has it (or it is queued): \
                 there is nothing to retry yet",
                existing.status
            )));
        }
        let host = self.investigate_again(existing, None).await?;
        Ok((
            axum::http::StatusCode::ACCEPTED,
            axum::Json(host.to_safe_json()),
        ))
    }

    /// Marks `existing` `investigating` again and asks for its
    /// investigation (in `cluster`, else the cluster it is a member of).
    async fn investigate_again(
        &self,
        existing: Host,
        cluster: Option<&Cluster>,
    ) -> ApiResult<Host> {
        let address = existing.address.clone();
        let cluster_name = match cluster {
            Some(c) => c.name.clone(),
            None => self
                .clusters()
                .await?
                .into_iter()
                .find(|c| c.hostset.contains(&address))
                .map(|c| c.name)
                .unwrap_or_default(),
        };
        let cluster_data = if cluster_name.is_empty() {
            json!({})
        } else {
            json!({"name": cluster_name})
        };
        tracing::info!(address, status = %existing.status, "host sent again: investigating it again");
        // The status first: written after the request, it could overwrite
        // the outcome of an investigation that already ran. (A crash between
        // the two leaves the host `investigating` with no record: sending it
        // again then asks again.)
        let host = self
            .update_host(&address, |h| {
                h.status = HostState::Investigating;
                h.reason.clear();
            })
            .await?;
        self.request_investigation(&address, &cluster_name, cluster_data, false)
            .await?;
        Ok(host)
    }

    /// `DELETE /host/{address}`: removes the host, its credentials and its
    /// cluster memberships (and its node from the cluster's container manager).
    pub async fn delete_host(&self, address: &Address) -> ApiResult<Reply> {
        self.get_host_record(address).await?;
        self.storage
            .delete::<Host>(json!({"address": address}))
            .await?;
        for kind in ["HostCreds", "WatcherRecord", "Investigation"] {
            let params = json!({"model_type_name": kind, "model_json_data": {"address": address}});
            match self
                .bus
                .request("storage.delete", params, self.timeout)
                .await
            {
                Ok(_) => {}
                Err(e)
                    if e.rpc()
                        .is_some_and(|r| r.code == codes::STORAGE_LOOKUP_ERROR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for cluster in self.clusters().await? {
            if cluster.hostset.iter().any(|a| a == address) {
                let name = Name::parse("cluster", cluster.name.clone())?;
                let _removed = self.delete_member(&name, address).await?;
            }
        }
        ok(json!([]))
    }

    /// `GET /host/{address}/creds`: the SSH credentials.
    pub async fn get_creds(&self, address: &Address) -> ApiResult<Reply> {
        let creds = self
            .get_opt::<HostCreds>(json!({"address": address}))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no credentials for host '{address}'")))?;
        ok(json!({"ssh_priv_key": creds.ssh_priv_key, "remote_user": creds.remote_user}))
    }

    /// `GET /host/{address}/status`: the host's status and, when its cluster
    /// has a container manager, the node's status as the manager reports it.
    pub async fn get_host_status(&self, address: &Address) -> ApiResult<Reply> {
        let host = self.get_host_record(address).await?;
        let cluster = self
            .clusters()
            .await?
            .into_iter()
            .find(|c| c.hostset.contains(&host.address));
        let mut status = HostStatus {
            kind: "host_only".into(),
            ..HostStatus::default()
        };
        status
            .host
            .insert("last_check".into(), json!(host.last_check));
        status.host.insert("status".into(), json!(host.status));
        if !host.reason.is_empty() {
            status.host.insert("reason".into(), json!(host.reason));
        }
        if let Some(cluster) = cluster.filter(|c| !c.container_manager.is_empty()) {
            status.kind = match self
                .get_opt::<ContainerManagerConfig>(json!({"name": cluster.container_manager}))
                .await?
            {
                Some(cm) => cm.kind.as_str().to_string(),
                None => "container_manager".into(),
            };
            let params = json!([cluster.container_manager, address]);
            match self
                .bus
                .request("container.get_node_status", params, self.timeout)
                .await
            {
                Ok(Value::Object(node)) => status.container_manager = node,
                Ok(other) => {
                    status.container_manager.insert("status".into(), other);
                }
                Err(e) => {
                    status
                        .container_manager
                        .insert("error".into(), json!(e.to_string()));
                }
            }
        }
        ok(status.to_json())
    }
}
