//! The `/api/v0` handlers. Each turns a request into calls on the bus:
//! `storage.*` for records, `jobs.*` for work, `container.*` for container
//! managers. Nothing here touches a store directly.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use base64::Engine;
use commissaire_bus::{Bus, codes};
use commissaire_models::*;
use commissaire_storage::client::{StorageCallError, StorageClient};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

/// How many times a compare-and-swap update is retried when another writer got there first.
const CAS_ATTEMPTS: usize = 16;

/// A JSON reply with a status.
pub type Reply = (StatusCode, Json<Value>);

fn ok(value: Value) -> ApiResult<Reply> {
    Ok((StatusCode::OK, Json(value)))
}

fn created(value: Value) -> ApiResult<Reply> {
    Ok((StatusCode::CREATED, Json(value)))
}

/// The cluster operations, by the last path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `restart`
    Restart,
    /// `upgrade`
    Upgrade,
    /// `deploy`
    Deploy,
}

impl Operation {
    /// The path segment and job method name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Restart => "restart",
            Operation::Upgrade => "upgrade",
            Operation::Deploy => "deploy",
        }
    }

    fn kind(self) -> ModelKind {
        match self {
            Operation::Restart => ModelKind::ClusterRestart,
            Operation::Upgrade => ModelKind::ClusterUpgrade,
            Operation::Deploy => ModelKind::ClusterDeploy,
        }
    }
}

/// Checks a name from the path or body (`[A-Za-z0-9_-]+`).
pub fn check_name(field: &str, value: &str) -> ApiResult<()> {
    if value.is_empty()
        || value.len() > 253
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ApiError::bad_request(format!(
            "{field} '{value}' is invalid: use 1 to 253 letters, digits, '_' or '-'"
        ))
        .field(field));
    }
    Ok(())
}

/// Checks a host address from the path or body.
pub fn check_address(field: &str, value: &str) -> ApiResult<()> {
    if value.is_empty()
        || value.len() > 253
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':'))
    {
        return Err(ApiError::bad_request(format!(
            "{field} '{value}' is not an IP address or host name"
        ))
        .field(field));
    }
    Ok(())
}

/// Parses a request body: empty means `{}`; anything but a JSON object is a 400.
pub fn parse_body(body: &[u8]) -> ApiResult<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

fn optional_string(body: &Map<String, Value>, field: &str) -> ApiResult<Option<String>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!("{field} must be a string")).field(field)),
    }
}

/// An optional whole number of at least `min` (`null` counts as absent).
fn optional_count(body: &Map<String, Value>, field: &str, min: u64) -> ApiResult<Option<u32>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n >= min && n <= u64::from(u32::MAX) => Ok(Some(n as u32)),
            _ => Err(ApiError::bad_request(format!(
                "{field} must be a whole number of at least {min}"
            ))
            .field(field)),
        },
    }
}

fn string_list(body: &Map<String, Value>, field: &str) -> ApiResult<Vec<String>> {
    let err =
        || ApiError::bad_request(format!("{field} must be a list of host addresses")).field(field);
    let items = body.get(field).and_then(Value::as_array).ok_or_else(err)?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let address = item.as_str().ok_or_else(err)?;
        check_address(field, address)?;
        out.push(address.to_string());
    }
    Ok(out)
}

/// The API: a storage client and the bus for jobs and container managers.
#[derive(Clone)]
pub struct Api {
    storage: StorageClient,
    bus: Bus,
    timeout: Duration,
}

impl Api {
    /// An API over `bus`, each bus call waiting up to `timeout`.
    pub fn new(bus: Bus, timeout: Duration) -> Self {
        Api {
            storage: StorageClient::new(bus.clone()).with_timeout(timeout),
            bus,
            timeout,
        }
    }

    /// Creates the `default` network if it does not exist yet.
    pub async fn ensure_default_network(&self) -> Result<(), StorageCallError> {
        match self.storage.swap(None, &Network::default_network()).await {
            Ok(_) => Ok(()),
            Err(StorageCallError::Bus(e)) if e.rpc().is_some_and(|r| r.code == codes::CONFLICT) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn get_opt<M: Model>(&self, key: Value) -> ApiResult<Option<M>> {
        match self.storage.get::<M>(key).await {
            Ok(m) => Ok(Some(m)),
            Err(StorageCallError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_cluster_record(&self, name: &str) -> ApiResult<Cluster> {
        check_name("name", name)?;
        self.get_opt::<Cluster>(json!({"name": name}))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("cluster '{name}' does not exist")))
    }

    async fn get_host_record(&self, address: &str) -> ApiResult<Host> {
        check_address("address", address)?;
        self.get_opt::<Host>(json!({"address": address}))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("host '{address}' does not exist")))
    }

    /// Updates a cluster with `change` using compare-and-swap, retrying when
    /// another writer changed it meanwhile. `change` returns `false` to leave
    /// the cluster as it is.
    async fn update_cluster(
        &self,
        name: &str,
        mut change: impl FnMut(&mut Cluster) -> ApiResult<bool>,
    ) -> ApiResult<Cluster> {
        for _ in 0..CAS_ATTEMPTS {
            let current = self.get_cluster_record(name).await?;
            let mut next = current.clone();
            if !change(&mut next)? {
                return Ok(current);
            }
            match self.storage.swap(Some(&current), &next).await {
                Ok(saved) => return Ok(saved),
                Err(StorageCallError::Bus(e))
                    if e.rpc().is_some_and(|r| r.code == codes::CONFLICT) =>
                {
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cluster '{name}' is being changed by others; try again"),
        ))
    }

    /// Changes the stored host by compare-and-swap (starting over while
    /// others write it).
    async fn update_host(
        &self,
        address: &str,
        mut change: impl FnMut(&mut Host),
    ) -> ApiResult<Host> {
        match self
            .storage
            .update(json!({"address": address}), CAS_ATTEMPTS, |h: &mut Host| {
                change(h);
                true
            })
            .await
        {
            Ok(h) => Ok(h),
            Err(e) if e.is_conflict() => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("host '{address}' is being changed by others; try again"),
            )),
            Err(StorageCallError::NotFound(_)) => Err(ApiError::not_found(format!(
                "host '{address}' does not exist"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn clusters(&self) -> ApiResult<Vec<Cluster>> {
        Ok(self.storage.list::<Cluster>().await?)
    }

    // ---- clusters -------------------------------------------------------

    /// `GET /clusters`: the cluster names.
    pub async fn list_clusters(&self) -> ApiResult<Reply> {
        let names: Vec<String> = self.clusters().await?.into_iter().map(|c| c.name).collect();
        ok(json!(names))
    }

    /// `GET /cluster/{name}`: the cluster with its computed status and host counts.
    pub async fn get_cluster(&self, name: &str) -> ApiResult<Reply> {
        check_name("name", name)?;
        // The cluster and its members' host records in one storage call.
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
        let total = cluster.hostset.len() as u64;
        let available = hosts
            .iter()
            .filter(|h| h.status == HostState::Active)
            .count() as u64;
        let status = if available == total {
            ClusterState::Ok
        } else if available == 0 {
            ClusterState::Failed
        } else {
            ClusterState::Degraded
        };
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
    pub async fn put_cluster(&self, name: &str, body: &[u8]) -> ApiResult<Reply> {
        check_name("name", name)?;
        let body = parse_body(body)?;
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
            Err(StorageCallError::Bus(e)) if e.rpc().is_some_and(|r| r.code == codes::CONFLICT) => {
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
    pub async fn delete_cluster(&self, name: &str) -> ApiResult<Reply> {
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
                    tracing::warn!(cluster = name, %address, error = %e, "could not remove a node from the container manager");
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
        ok(json!([]))
    }

    // ---- cluster members -----------------------------------------------

    /// `GET /cluster/{name}/hosts`: the member addresses.
    pub async fn list_members(&self, name: &str) -> ApiResult<Reply> {
        ok(json!(self.get_cluster_record(name).await?.hostset))
    }

    /// Checks that a host exists and may join a cluster (active or disassociated).
    async fn joinable(&self, address: &str) -> ApiResult<Host> {
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
    pub async fn put_members(&self, name: &str, body: &[u8]) -> ApiResult<Reply> {
        check_name("name", name)?;
        let body = parse_body(body)?;
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
                    self.register_member(&saved, address).await?;
                }
                ok(saved.to_json())
            }
            Err(StorageCallError::Bus(e)) if e.rpc().is_some_and(|r| r.code == codes::CONFLICT) => {
                Err(ApiError::conflict(
                    "the cluster's host list changed meanwhile; 'old' no longer matches",
                )
                .field("old"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `GET /cluster/{name}/hosts/{address}`: 200 if a member, else 404.
    pub async fn get_member(&self, name: &str, address: &str) -> ApiResult<Reply> {
        check_address("address", address)?;
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
    pub async fn put_member(&self, name: &str, address: &str) -> ApiResult<Reply> {
        check_address("address", address)?;
        let cluster = self.get_cluster_record(name).await?;
        if cluster.hostset.iter().any(|a| a == address) {
            // A join whose registration failed (503 while containermgr was
            // down) left the host a member that is still `disassociated`:
            // registering it now (idempotent) makes the client's retry
            // complete the join instead of answering 200 for a node that
            // the manager never got.
            if !cluster.container_manager.is_empty()
                && self
                    .get_opt::<Host>(json!({"address": address}))
                    .await?
                    .is_some_and(|h| h.status == HostState::Disassociated)
            {
                self.register_member(&cluster, address).await?;
            }
            return ok(json!([address]));
        }
        self.joinable(address).await?;
        let cluster = self
            .update_cluster(name, |c| {
                if c.hostset.iter().any(|a| a == address) {
                    return Ok(false);
                }
                c.hostset.push(address.to_string());
                Ok(true)
            })
            .await?;
        self.register_member(&cluster, address).await?;
        ok(json!([address]))
    }

    /// Registers a new member with the cluster's container manager, if the
    /// cluster has one; the host's status becomes `active`.
    async fn register_member(&self, cluster: &Cluster, address: &str) -> ApiResult<()> {
        if cluster.container_manager.is_empty() {
            return Ok(());
        }
        let params = json!([cluster.container_manager, address]);
        self.bus
            .request("container.register_node", params, self.timeout)
            .await?;
        let status = HostState::Active;
        for _ in 0..CAS_ATTEMPTS {
            let Some(host) = self.get_opt::<Host>(json!({"address": address})).await? else {
                return Ok(());
            };
            if host.status == status {
                return Ok(());
            }
            let mut next = host.clone();
            next.status = status;
            match self.storage.swap(Some(&host), &next).await {
                Ok(_) => return Ok(()),
                Err(StorageCallError::Bus(e))
                    if e.rpc().is_some_and(|r| r.code == codes::CONFLICT) =>
                {
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// `DELETE /cluster/{name}/hosts/{address}`: removes a member (idempotent).
    pub async fn delete_member(&self, name: &str, address: &str) -> ApiResult<Reply> {
        check_address("address", address)?;
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
                tracing::warn!(cluster = name, address, error = %e, "could not remove the node from the container manager");
            }
        }
        ok(json!([]))
    }

    // ---- cluster operations --------------------------------------------

    /// `GET /cluster/{name}/{restart|upgrade|deploy}`: the operation's record.
    pub async fn get_operation(&self, name: &str, op: Operation) -> ApiResult<Reply> {
        check_name("name", name)?;
        let params =
            json!({"model_type_name": op.kind().name(), "model_json_data": {"name": name}});
        match self.bus.request("storage.get", params, self.timeout).await {
            Ok(record) => ok(record),
            Err(e)
                if e.rpc()
                    .is_some_and(|r| r.code == codes::STORAGE_LOOKUP_ERROR) =>
            {
                Err(ApiError::not_found(format!(
                    "no {} was ever started on cluster '{name}'",
                    op.as_str()
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `PUT /cluster/{name}/{restart|upgrade|deploy}`: records a new operation
    /// (409 while one is in process) and asks clusterexec to run it.
    pub async fn put_operation(&self, name: &str, op: Operation, body: &[u8]) -> ApiResult<Reply> {
        let body = parse_body(body)?;
        let version = if op == Operation::Deploy {
            match optional_string(&body, "version")? {
                Some(v) if !v.trim().is_empty() => Some(v),
                _ => {
                    return Err(
                        ApiError::bad_request("a deploy needs a 'version'").field("version")
                    );
                }
            }
        } else {
            None
        };
        let max_failures = optional_count(&body, "max_failures", 0)?;
        let batch_size = optional_count(&body, "batch_size", 1)?;
        self.get_cluster_record(name).await?;
        let kind = op.kind();
        let key = json!({"name": name});
        let existing = match self
            .bus
            .request(
                "storage.get",
                json!({"model_type_name": kind.name(), "model_json_data": key}),
                self.timeout,
            )
            .await
        {
            Ok(v) => Some(v),
            Err(e)
                if e.rpc()
                    .is_some_and(|r| r.code == codes::STORAGE_LOOKUP_ERROR) =>
            {
                None
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(existing) = &existing
            && existing["status"] == "in_process"
        {
            return Err(ApiError::conflict(format!(
                "a {} of cluster '{name}' is already in process",
                op.as_str()
            )));
        }
        let done = match op {
            Operation::Restart => "restarted",
            Operation::Upgrade => "upgraded",
            Operation::Deploy => "deployed",
        };
        let mut record = json!({
            "name": name, "status": "in_process", done: [], "in_process": [],
            "started_at": now_iso(), "finished_at": "",
        });
        if let Some(v) = &version {
            record["version"] = json!(v);
        }
        if let Some(n) = max_failures {
            record["max_failures"] = json!(n);
        }
        if let Some(n) = batch_size {
            record["batch_size"] = json!(n);
        }
        let params = json!({"model_type_name": kind.name(), "expected": existing, "model_json_data": record});
        let saved = match self.bus.request("storage.swap", params, self.timeout).await {
            Ok(saved) => saved,
            Err(e) if e.rpc().is_some_and(|r| r.code == codes::CONFLICT) => {
                return Err(ApiError::conflict(format!(
                    "another {} of cluster '{name}' was started meanwhile",
                    op.as_str()
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let mut job = json!({"name": name});
        if let Some(v) = version {
            job["version"] = json!(v);
        }
        self.bus
            .notify(&format!("jobs.clusterexec.{}", op.as_str()), job)
            .await
            .map_err(ApiError::from)?;
        created(saved)
    }

    /// `DELETE /cluster/{name}/{restart|upgrade|deploy}`: asks clusterexec to
    /// stop the operation after the hosts it is working on (it sets
    /// `cancel_requested`; clusterexec ends the operation `cancelled`).
    /// 202 with the record; 404 if none was ever started; 409 if it is not in process.
    pub async fn cancel_operation(&self, name: &str, op: Operation) -> ApiResult<Reply> {
        check_name("name", name)?;
        let kind = op.kind();
        let key = json!({"model_type_name": kind.name(), "model_json_data": {"name": name}});
        for _ in 0..CAS_ATTEMPTS {
            let current = match self
                .bus
                .request("storage.get", key.clone(), self.timeout)
                .await
            {
                Ok(v) => v,
                Err(e)
                    if e.rpc()
                        .is_some_and(|r| r.code == codes::STORAGE_LOOKUP_ERROR) =>
                {
                    return Err(ApiError::not_found(format!(
                        "no {} was ever started on cluster '{name}'",
                        op.as_str()
                    )));
                }
                Err(e) => return Err(e.into()),
            };
            if current["status"] != "in_process" {
                return Err(ApiError::conflict(format!(
                    "the {} of cluster '{name}' is not in process (it is {})",
                    op.as_str(),
                    current["status"]
                )));
            }
            if current["cancel_requested"] == true {
                return Ok((StatusCode::ACCEPTED, Json(current)));
            }
            let mut next = current.clone();
            next["cancel_requested"] = json!(true);
            let params = json!({"model_type_name": kind.name(), "expected": current, "model_json_data": next});
            match self.bus.request("storage.swap", params, self.timeout).await {
                Ok(saved) => return Ok((StatusCode::ACCEPTED, Json(saved))),
                // clusterexec renews its lease in the record: read it again.
                Err(e) if e.rpc().is_some_and(|r| r.code == codes::CONFLICT) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the {} of cluster '{name}' is being changed by others; try again",
                op.as_str()
            ),
        ))
    }

    // ---- hosts -----------------------------------------------------------

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

    /// `GET /host/{address}`.
    pub async fn get_host(&self, address: &str) -> ApiResult<Reply> {
        ok(self.get_host_record(address).await?.to_safe_json())
    }

    /// `PUT /host/{address}` (and `PUT /host` with the peer's address): stores
    /// the host and its credentials and asks the investigator to bootstrap it.
    /// Re-creating it with the same key is a 201; with another key, a 409.
    pub async fn put_host(&self, address: &str, body: &[u8]) -> ApiResult<Reply> {
        check_address("address", address)?;
        let body = parse_body(body)?;
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
        };
        let host = Host {
            address: address.to_string(),
            status: HostState::Investigating,
            ..Host::default()
        };
        self.storage.save(&creds).await?;
        let host = match self.storage.swap(None, &host).await {
            Ok(h) => h,
            Err(StorageCallError::Bus(e)) if e.rpc().is_some_and(|r| r.code == codes::CONFLICT) => {
                let existing = self.get_host_record(address).await?;
                return self.recreate_host(existing, &key, cluster.as_ref()).await;
            }
            Err(e) => return Err(e.into()),
        };
        let mut cluster_data = json!({});
        if let Some(name) = &cluster_name {
            let joined = self
                .update_cluster(name, |c| {
                    if c.hostset.iter().any(|a| a == address) {
                        return Ok(false);
                    }
                    c.hostset.push(address.to_string());
                    Ok(true)
                })
                .await?;
            cluster_data = joined.to_json();
        }
        self.request_investigation(address, cluster_name.as_deref().unwrap_or(""), cluster_data)
            .await?;
        created(host.to_safe_json())
    }

    /// Stores the host's [`Investigation`] record (the job itself: an
    /// investigator takes it up from storage even if the announcement
    /// below is lost), then announces `jobs.investigate`.
    async fn request_investigation(
        &self,
        address: &str,
        cluster: &str,
        cluster_data: Value,
    ) -> ApiResult<()> {
        let record = Investigation {
            address: address.to_string(),
            cluster: cluster.to_string(),
            requested_at: now_iso(),
            ..Investigation::default()
        };
        self.storage.save(&record).await?;
        if let Err(e) = self
            .bus
            .notify(
                "jobs.investigate",
                json!({"address": address, "cluster_data": cluster_data}),
            )
            .await
        {
            tracing::warn!(address, error = %e, "could not announce the investigation; an investigator's scan will find it");
        }
        Ok(())
    }

    async fn recreate_host(
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
        self.request_investigation(&address, &cluster_name, cluster_data)
            .await?;
        created(host.to_safe_json())
    }

    /// `DELETE /host/{address}`: removes the host, its credentials and its
    /// cluster memberships (and its node from the cluster's container manager).
    pub async fn delete_host(&self, address: &str) -> ApiResult<Reply> {
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
                let _removed = self.delete_member(&cluster.name, address).await?;
            }
        }
        ok(json!([]))
    }

    /// `GET /host/{address}/creds`: the SSH credentials.
    pub async fn get_creds(&self, address: &str) -> ApiResult<Reply> {
        check_address("address", address)?;
        let creds = self
            .get_opt::<HostCreds>(json!({"address": address}))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no credentials for host '{address}'")))?;
        ok(json!({"ssh_priv_key": creds.ssh_priv_key, "remote_user": creds.remote_user}))
    }

    /// `GET /host/{address}/status`: the host's status and, when its cluster
    /// has a container manager, the node's status as the manager reports it.
    pub async fn get_host_status(&self, address: &str) -> ApiResult<Reply> {
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

    // ---- networks and container managers --------------------------------

    /// `GET /networks`: the network names.
    pub async fn list_networks(&self) -> ApiResult<Reply> {
        self.list_names::<Network>().await
    }

    /// `GET /network/{name}`.
    pub async fn get_network(&self, name: &str) -> ApiResult<Reply> {
        self.get_named::<Network>(name, "network").await
    }

    /// `PUT /network/{name}`: 201 when created or identical, 409 when it differs.
    pub async fn put_network(&self, name: &str, body: &[u8]) -> ApiResult<Reply> {
        self.put_named::<Network>(name, body, "network").await
    }

    /// `DELETE /network/{name}`: refused (409) while a cluster uses it.
    pub async fn delete_network(&self, name: &str) -> ApiResult<Reply> {
        self.delete_named::<Network>(name, "network", |c| c.network == name)
            .await
    }

    /// `GET /containermanagers`: the container manager names.
    pub async fn list_container_managers(&self) -> ApiResult<Reply> {
        self.list_names::<ContainerManagerConfig>().await
    }

    /// `GET /containermanager/{name}`.
    pub async fn get_container_manager(&self, name: &str) -> ApiResult<Reply> {
        self.get_named::<ContainerManagerConfig>(name, "container manager")
            .await
    }

    /// `PUT /containermanager/{name}`: 201 when created or identical, 409 when it differs.
    pub async fn put_container_manager(&self, name: &str, body: &[u8]) -> ApiResult<Reply> {
        self.put_named::<ContainerManagerConfig>(name, body, "container manager")
            .await
    }

    /// `DELETE /containermanager/{name}`: refused (409) while a cluster uses it.
    pub async fn delete_container_manager(&self, name: &str) -> ApiResult<Reply> {
        self.delete_named::<ContainerManagerConfig>(name, "container manager", |c| {
            c.container_manager == name
        })
        .await
    }

    /// The names of every record of a named configuration kind.
    async fn list_names<M: Model>(&self) -> ApiResult<Reply> {
        let names: Vec<String> = self
            .storage
            .list::<M>()
            .await?
            .iter()
            .map(Model::primary_key)
            .collect();
        ok(json!(names))
    }

    /// One named configuration record.
    async fn get_named<M: Model>(&self, name: &str, what: &str) -> ApiResult<Reply> {
        check_name("name", name)?;
        let record = self
            .get_opt::<M>(json!({"name": name}))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("{what} '{name}' does not exist")))?;
        ok(record.to_safe_json())
    }

    /// Creates a named configuration record from a request body.
    async fn put_named<M: Model + PartialEq>(
        &self,
        name: &str,
        body: &[u8],
        what: &str,
    ) -> ApiResult<Reply> {
        check_name("name", name)?;
        let mut body = parse_body(body)?;
        body.insert("name".into(), json!(name));
        let record = M::from_json(Value::Object(body))?;
        self.create_config(record, what).await
    }

    /// Deletes a named configuration record unless a cluster uses it (409).
    async fn delete_named<M: Model>(
        &self,
        name: &str,
        what: &str,
        used_by: impl Fn(&Cluster) -> bool,
    ) -> ApiResult<Reply> {
        check_name("name", name)?;
        if let Some(c) = self.clusters().await?.into_iter().find(|c| used_by(c)) {
            return Err(ApiError::conflict(format!(
                "{what} '{name}' is used by cluster '{}'",
                c.name
            )));
        }
        self.storage.delete::<M>(json!({"name": name})).await?;
        ok(json!([]))
    }

    /// Creates a named configuration record; identical re-creation is a 201, a different one a 409.
    async fn create_config<M: Model + PartialEq>(&self, record: M, what: &str) -> ApiResult<Reply> {
        match self.storage.swap(None, &record).await {
            Ok(saved) => created(saved.to_safe_json()),
            Err(StorageCallError::Bus(e)) if e.rpc().is_some_and(|r| r.code == codes::CONFLICT) => {
                let existing: M = self
                    .storage
                    .get(json!({"name": record.primary_key()}))
                    .await?;
                if existing == record {
                    created(existing.to_safe_json())
                } else {
                    Err(ApiError::conflict(format!(
                        "{what} '{}' already exists with other settings",
                        record.primary_key()
                    )))
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The address a self-registering host is known by: the peer's IP (an
/// IPv4-mapped IPv6 address is given as IPv4).
pub fn peer_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}
