//! The axum router: paths, methods, authentication, body limits, and JSON
//! answers for unknown paths (404) and wrong methods (405).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{Api, ListQuery, Operation, Reply, peer_address};
use crate::auth::roles::Role;
use crate::auth::throttle::FailureThrottle;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Address, JsonObject, Member, Name, User};
use crate::peer::PeerInfo;
use crate::probes::{ProbePaths, Startup};
use crate::read_cache::ReadCache;
use commissaire_models::ModelKind;

/// The largest request body accepted (larger ones get 413).
pub const MAX_BODY: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The API handlers.
    pub api: Api,
    /// Authentication (replaced whole by a reload).
    pub auth: crate::reload::SharedAuth,
    /// Answers of the busiest GETs.
    pub cache: Arc<ReadCache>,
    /// Refused credentials per client address.
    pub throttle: Arc<FailureThrottle>,
    /// Whether the server has finished starting.
    pub startup: Arc<Startup>,
    /// The audit entries this server wrote.
    pub audit: Arc<crate::audit::AuditCounter>,
    /// The FleetLock endpoints' settings.
    pub fleetlock: crate::fleetlock::FleetLockSettings,
}

type S = State<AppState>;

/// A cached list (`name`: its cache key, of records of `kind`): the plain
/// answer without a query, else the one `matching` gives for it, which
/// also depends on `other.1` when the query uses filter `other.0`.
async fn cached_list<P, M>(
    s: &AppState,
    raw: Option<String>,
    filters: &[crate::api::list_query::FilterSpec],
    (name, kind): (&str, ModelKind),
    other: (&str, ModelKind),
    plain: P,
    matching: impl FnOnce(ListQuery) -> M,
) -> Response
where
    P: std::future::Future<Output = ApiResult<Reply>>,
    M: std::future::Future<Output = ApiResult<Reply>>,
{
    let query = match ListQuery::parse(raw.as_deref(), filters) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    if query.is_plain() {
        return s.cache.serve(name.into(), &[kind], plain).await;
    }
    let both = [kind, other.1];
    let kinds: &[ModelKind] = if query.filter(other.0).is_some() {
        &both
    } else {
        &both[..1]
    };
    let key = format!("{name}?{}", query.canonical());
    s.cache.serve(key, kinds, matching(query)).await
}

#[utoipa::path(get, path = "/api/v0/clusters", tag = "clusters", summary = "List the clusters", params(crate::openapi::ClusterListQuery), responses((status = 200, description = "the names, or a page of cluster records when a query is given", body = Vec<String>), (status = 400, description = "a bad filter, limit or continue token", body = crate::openapi::ErrorBody)))]
async fn list_clusters(State(s): S, RawQuery(raw): RawQuery) -> Response {
    let api = s.api.clone();
    cached_list(
        &s,
        raw,
        crate::api::CLUSTER_FILTERS,
        ("clusters", ModelKind::Cluster),
        ("status", ModelKind::Host),
        s.api.list_clusters(),
        |q| async move { api.list_clusters_matching(&q).await },
    )
    .await
}
#[utoipa::path(get, operation_id = "list_clusters_alias", path = "/api/v0/cluster", tag = "clusters", summary = "List the clusters (the original's path; prefer /api/v0/clusters)", params(crate::openapi::ClusterListQuery), responses((status = 200, description = "the names, or a page of cluster records when a query is given", body = Vec<String>), (status = 400, description = "a bad filter, limit or continue token", body = crate::openapi::ErrorBody)))]
async fn list_clusters_alias(state: S, raw: RawQuery) -> Response {
    list_clusters(state, raw).await
}
#[utoipa::path(get, path = "/api/v0/cluster/{name}", tag = "clusters", summary = "Get a cluster with its host counts", params(("name" = String, Path, description = "the cluster (letters, digits, _ or -)", pattern = r"^[A-Za-z0-9_-]{1,253}$")), responses((status = 200, description = "the cluster", body = crate::openapi::ClusterView), (status = 400, description = "bad name", body = crate::openapi::ErrorBody), (status = 404, description = "no such cluster", body = crate::openapi::ErrorBody)))]
async fn get_cluster(State(s): S, name: Name) -> Response {
    let load = s.api.get_cluster(&name);
    s.cache
        .serve(
            format!("cluster/{name}"),
            &[ModelKind::Cluster, ModelKind::Host],
            load,
        )
        .await
}
#[utoipa::path(put, path = "/api/v0/cluster/{name}", tag = "clusters", summary = "Create a cluster", params(("name" = String, Path, description = "the cluster (letters, digits, _ or -)", pattern = r"^[A-Za-z0-9_-]{1,253}$")), request_body = crate::openapi::ClusterRequest, responses((status = 201, description = "created, or it exists with the same settings", body = Object), (status = 409, description = "it exists with other settings", body = crate::openapi::ErrorBody)))]
async fn put_cluster(State(s): S, name: Name, JsonObject(body): JsonObject) -> ApiResult<Reply> {
    s.api.put_cluster(&name, body).await
}
#[utoipa::path(delete, path = "/api/v0/cluster/{name}", tag = "clusters", summary = "Delete a cluster", params(("name" = String, Path, description = "the cluster (letters, digits, _ or -)", pattern = r"^[A-Za-z0-9_-]{1,253}$")), responses((status = 200, description = "deleted", body = Object), (status = 404, description = "no such cluster", body = crate::openapi::ErrorBody)))]
async fn delete_cluster(State(s): S, name: Name) -> ApiResult<Reply> {
    s.api.delete_cluster(&name).await
}
#[utoipa::path(get, path = "/api/v0/cluster/{name}/hosts", tag = "clusters", summary = "List a cluster's members", params(("name" = String, Path, description = "the cluster (letters, digits, _ or -)", pattern = r"^[A-Za-z0-9_-]{1,253}$"), crate::openapi::PageQuery), responses((status = 200, description = "the addresses", body = Vec<String>), (status = 400, description = "a bad name, limit or continue token", body = crate::openapi::ErrorBody), (status = 404, description = "no such cluster", body = crate::openapi::ErrorBody)))]
async fn list_members(State(s): S, name: Name, RawQuery(raw): RawQuery) -> ApiResult<Reply> {
    let query = ListQuery::parse(raw.as_deref(), &[])?;
    if query.is_plain() {
        return s.api.list_members(&name).await;
    }
    s.api.list_members_matching(&name, &query).await
}
#[utoipa::path(put, path = "/api/v0/cluster/{name}/hosts", tag = "clusters", summary = "Replace a cluster's members if they are still `old`", params(("name" = String, Path, description = "the cluster (letters, digits, _ or -)", pattern = r"^[A-Za-z0-9_-]{1,253}$")), request_body = crate::openapi::MembersRequest, responses((status = 200, description = "replaced", body = Object), (status = 404, description = "no such cluster or host", body = crate::openapi::ErrorBody), (status = 409, description = "`old` is not the current list, or a new host is not ready", body = crate::openapi::ErrorBody)))]
async fn put_members(State(s): S, name: Name, JsonObject(body): JsonObject) -> ApiResult<Reply> {
    s.api.put_members(&name, body).await
}
#[utoipa::path(get, path = "/api/v0/cluster/{name}/hosts/{address}", tag = "clusters", summary = "Whether a host is a member", params(("name" = String, Path, description = "the cluster (letters, digits, _ or -)", pattern = r"^[A-Za-z0-9_-]{1,253}$"), ("address" = String, Path, description = "the host's IP address or name", pattern = r"^[A-Za-z0-9_.:-]{1,253}$")), responses((status = 200, description = "it is a member", body = Vec<String>), (status = 404, description = "it is not, or no such cluster", body = crate::openapi::ErrorBody)))]
async fn get_member(State(s): S, Member { name, address }: Member) -> ApiResult<Reply> {
    s.api.get_member(&name, &address).await
}
#[utoipa::path(put, path = "/api/v0/cluster/{name}/hosts/{address}", tag = "clusters", summary = "Add a host to a cluster", params(("name" = String, Path, description = "the cluster (letters, digits, _ or -)", pattern = r"^[A-Za-z0-9_-]{1,253}$"), ("address" = String, Path, description = "the host's IP address or name", pattern = r"^[A-Za-z0-9_.:-]{1,253}$")), responses((status = 200, description = "added, or already a member", body = Vec<String>), (status = 404, description = "no such cluster or host", body = crate::openapi::ErrorBody), (status = 409, description = "the host is not active or disassociated", body = crate::openapi::ErrorBody)))]
async fn put_member(State(s): S, Member { name, address }: Member) -> ApiResult<Reply> {
    s.api.put_member(&name, &address).await
}
#[utoipa::path(delete, path = "/api/v0/cluster/{name}/hosts/{address}", tag = "clusters", summary = "Remove a host from a cluster", params(("name" = String, Path, description = "the cluster (letters, digits, _ or -)", pattern = r"^[A-Za-z0-9_-]{1,253}$"), ("address" = String, Path, description = "the host's IP address or name", pattern = r"^[A-Za-z0-9_.:-]{1,253}$")), responses((status = 200, description = "removed, or was not a member", body = Vec<String>), (status = 404, description = "no such cluster", body = crate::openapi::ErrorBody)))]
async fn delete_member(State(s): S, Member { name, address }: Member) -> ApiResult<Reply> {
    s.api.delete_member(&name, &address).await
}
#[utoipa::path(get, path = "/api/v0/cluster/{name}/rolling", tag = "clusters", summary = "Get a cluster's rolling defaults", params(("name" = String, Path, description = "the cluster (letters, digits, _ or -)", pattern = r"^[A-Za-z0-9_-]{1,253}$")), responses((status = 200, description = "the defaults", body = Object), (status = 404, description = "no such cluster", body = crate::openapi::ErrorBody)))]
async fn get_rolling(State(s): S, name: Name) -> ApiResult<Reply> {
    s.api.get_rolling(&name).await
}
#[utoipa::path(put, path = "/api/v0/cluster/{name}/rolling", tag = "clusters", summary = "Replace a cluster's rolling defaults", params(("name" = String, Path, description = "the cluster (letters, digits, _ or -)", pattern = r"^[A-Za-z0-9_-]{1,253}$")), request_body = crate::openapi::RollingRequest, responses((status = 200, description = "stored", body = Object), (status = 404, description = "no such cluster", body = crate::openapi::ErrorBody)))]
async fn put_rolling(State(s): S, name: Name, JsonObject(body): JsonObject) -> ApiResult<Reply> {
    s.api.put_rolling(&name, body).await
}
#[utoipa::path(get, path = "/api/v0/cluster/{name}/lock", tag = "clusters", summary = "Get a cluster's reboot lock: its slots and who holds them", params(("name" = String, Path, description = "the cluster (letters, digits, _ or -)", pattern = r"^[A-Za-z0-9_-]{1,253}$")), responses((status = 200, description = "the lock", body = Object), (status = 404, description = "no such cluster", body = crate::openapi::ErrorBody)))]
async fn get_lock(State(s): S, name: Name) -> ApiResult<Reply> {
    s.api.get_lock(&name).await
}
#[utoipa::path(delete, path = "/api/v0/cluster/{name}/lock/holders/{id}", tag = "clusters", summary = "Release a holder's slots of a cluster's reboot lock", params(("name" = String, Path, description = "the cluster (letters, digits, _ or -)", pattern = r"^[A-Za-z0-9_-]{1,253}$"), ("id" = String, Path, description = "the holder: a FleetLock client id, or restart, upgrade, deploy", pattern = r"^[^\x00-\x1f/]{1,253}$")), responses((status = 200, description = "released (the lock)", body = Object), (status = 404, description = "no such cluster, or the id holds no slot", body = crate::openapi::ErrorBody)))]
async fn release_lock_holder(
    State(s): S,
    axum::extract::Path(params): axum::extract::Path<std::collections::HashMap<String, String>>,
) -> ApiResult<Reply> {
    let name = Name::parse("name", params.get("name").cloned().unwrap_or_default())?;
    let id = params.get("id").map(String::as_str).unwrap_or_default();
    if id.is_empty() || id.len() > 253 || id.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!("id '{id}' is not a holder id")).field("id"));
    }
    s.api.release_lock_holder(&name, id).await
}
#[utoipa::path(put, path = "/api/v0/cluster/{name}/lock/token", tag = "clusters", summary = "Make a new FleetLock token for a cluster's hosts (admins)", params(("name" = String, Path, description = "the cluster (letters, digits, _ or -)", pattern = r"^[A-Za-z0-9_-]{1,253}$")), responses((status = 200, description = "the token (shown this once)", body = Object), (status = 404, description = "no such cluster", body = crate::openapi::ErrorBody)))]
async fn new_lock_token(State(s): S, name: Name) -> ApiResult<Reply> {
    s.api.new_lock_token(&name).await
}
/// Whether an operation request gives command gates of its own.
fn gives_command_gates(body: &serde_json::Map<String, serde_json::Value>) -> bool {
    body.get("gates")
        .and_then(|g| g.get("commands"))
        .and_then(|c| c.as_array())
        .is_some_and(|c| !c.is_empty())
}

macro_rules! operation_handlers {
    ($op:expr, $what:tt, $path:tt, $pause_path:tt, $resume_path:tt,
     $get:ident, $put:ident, $delete:ident, $pause:ident, $resume:ident) => {
        #[utoipa::path(get, path = $path, tag = "operations",
            summary = concat!("Get a cluster's ", $what, " record"),
            params(("name" = String, Path, description = "the cluster", pattern = r"^[A-Za-z0-9_-]{1,253}$")),
            responses((status = 200, description = "the record", body = Object),
                (status = 404, description = "no such cluster, or none ran", body = crate::openapi::ErrorBody)))]
        async fn $get(State(s): S, name: Name) -> ApiResult<Reply> {
            s.api.get_operation(&name, $op).await
        }
        #[utoipa::path(put, path = $path, tag = "operations",
            summary = concat!("Start a rolling ", $what, " of a cluster"),
            params(("name" = String, Path, description = "the cluster", pattern = r"^[A-Za-z0-9_-]{1,253}$")),
            request_body = crate::openapi::OperationRequest,
            responses((status = 201, description = "started (the record)", body = Object),
                (status = 200, description = "a dry run's plan", body = Object),
                (status = 404, description = "no such cluster", body = crate::openapi::ErrorBody),
                (status = 409, description = "one is running already", body = crate::openapi::ErrorBody)))]
        async fn $put(
            State(s): S,
            name: Name,
            user: User,
            caller: Option<Extension<crate::auth::Identity>>,
            JsonObject(body): JsonObject,
        ) -> Result<Reply, Response> {
            // Command gates run commands on the hosts: an admin's to give.
            let role = caller.map_or(Role::Admin, |c| c.0.role);
            if role < Role::Admin && gives_command_gates(&body) {
                return Err(crate::guards::forbidden_role(&user.0, role, Role::Admin));
            }
            s.api
                .put_operation(&name, $op, &user, body)
                .await
                .map_err(IntoResponse::into_response)
        }
        #[utoipa::path(delete, path = $path, tag = "operations",
            summary = concat!("Cancel a cluster's running ", $what),
            params(("name" = String, Path, description = "the cluster", pattern = r"^[A-Za-z0-9_-]{1,253}$")),
            responses((status = 202, description = "the cancel is recorded (the record)", body = Object),
                (status = 404, description = "no such cluster, or none ran", body = crate::openapi::ErrorBody),
                (status = 409, description = "it is not running", body = crate::openapi::ErrorBody)))]
        async fn $delete(State(s): S, name: Name, user: User) -> ApiResult<Reply> {
            s.api.cancel_operation(&name, $op, &user).await
        }
        #[utoipa::path(put, path = $pause_path, tag = "operations",
            summary = concat!("Pause a cluster's running ", $what),
            params(("name" = String, Path, description = "the cluster", pattern = r"^[A-Za-z0-9_-]{1,253}$")),
            responses((status = 202, description = "the pause is recorded (the record)", body = Object),
                (status = 404, description = "no such cluster, or none ran", body = crate::openapi::ErrorBody),
                (status = 409, description = "it is not running", body = crate::openapi::ErrorBody)))]
        async fn $pause(State(s): S, name: Name, user: User) -> ApiResult<Reply> {
            s.api.pause_operation(&name, $op, &user, true).await
        }
        #[utoipa::path(put, path = $resume_path, tag = "operations",
            summary = concat!("Resume a cluster's paused ", $what),
            params(("name" = String, Path, description = "the cluster", pattern = r"^[A-Za-z0-9_-]{1,253}$")),
            responses((status = 202, description = "the resume is recorded (the record)", body = Object),
                (status = 404, description = "no such cluster, or none ran", body = crate::openapi::ErrorBody),
                (status = 409, description = "it is not running", body = crate::openapi::ErrorBody)))]
        async fn $resume(State(s): S, name: Name, user: User) -> ApiResult<Reply> {
            s.api.pause_operation(&name, $op, &user, false).await
        }
    };
}
operation_handlers!(
    Operation::Restart,
    "restart",
    "/api/v0/cluster/{name}/restart",
    "/api/v0/cluster/{name}/restart/pause",
    "/api/v0/cluster/{name}/restart/resume",
    get_restart,
    put_restart,
    cancel_restart,
    pause_restart,
    resume_restart
);
operation_handlers!(
    Operation::Upgrade,
    "upgrade",
    "/api/v0/cluster/{name}/upgrade",
    "/api/v0/cluster/{name}/upgrade/pause",
    "/api/v0/cluster/{name}/upgrade/resume",
    get_upgrade,
    put_upgrade,
    cancel_upgrade,
    pause_upgrade,
    resume_upgrade
);
operation_handlers!(
    Operation::Deploy,
    "deploy",
    "/api/v0/cluster/{name}/deploy",
    "/api/v0/cluster/{name}/deploy/pause",
    "/api/v0/cluster/{name}/deploy/resume",
    get_deploy,
    put_deploy,
    cancel_deploy,
    pause_deploy,
    resume_deploy
);

#[utoipa::path(get, path = "/api/v0/hosts", tag = "hosts", summary = "List the hosts", params(crate::openapi::HostListQuery), responses((status = 200, description = "every host record, or a page when a query is given", body = Vec<commissaire_models::Host>), (status = 400, description = "a bad filter, limit or continue token", body = crate::openapi::ErrorBody)))]
async fn list_hosts(State(s): S, RawQuery(raw): RawQuery) -> Response {
    let api = s.api.clone();
    cached_list(
        &s,
        raw,
        crate::api::HOST_FILTERS,
        ("hosts", ModelKind::Host),
        ("cluster", ModelKind::Cluster),
        s.api.list_hosts(),
        |q| async move { api.list_hosts_matching(&q).await },
    )
    .await
}
#[utoipa::path(get, path = "/api/v0/host/{address}", tag = "hosts", summary = "Get a host", params(("address" = String, Path, description = "the host's IP address or name", pattern = r"^[A-Za-z0-9_.:-]{1,253}$")), responses((status = 200, description = "the host", body = commissaire_models::Host), (status = 400, description = "bad address", body = crate::openapi::ErrorBody), (status = 404, description = "no such host", body = crate::openapi::ErrorBody)))]
async fn get_host(State(s): S, address: Address) -> Response {
    let load = s.api.get_host(&address);
    s.cache
        .serve(format!("host/{address}"), &[ModelKind::Host], load)
        .await
}
#[utoipa::path(put, path = "/api/v0/host/{address}", tag = "hosts", summary = "Register a host (investigated, then bootstrapped)", params(("address" = String, Path, description = "the host's IP address or name", pattern = r"^[A-Za-z0-9_.:-]{1,253}$")), request_body = crate::openapi::HostRequest, responses((status = 201, description = "registered", body = commissaire_models::Host), (status = 409, description = "it exists with other settings, or the cluster does not exist", body = crate::openapi::ErrorBody)))]
async fn put_host(State(s): S, address: Address, JsonObject(body): JsonObject) -> ApiResult<Reply> {
    s.api.put_host(&address, body).await
}
#[utoipa::path(put, path = "/api/v0/host", tag = "hosts", summary = "Register the calling host (self-registration)", request_body = crate::openapi::HostRequest, responses((status = 201, description = "registered", body = commissaire_models::Host), (status = 409, description = "it exists with other settings, or the cluster does not exist", body = crate::openapi::ErrorBody)))]
async fn put_host_from_peer(
    State(s): S,
    peer: Option<Extension<PeerInfo>>,
    JsonObject(body): JsonObject,
) -> ApiResult<Reply> {
    let peer = peer.ok_or_else(|| ApiError::bad_request("the client's address is unknown"))?;
    let address = Address::parse("address", peer_address(peer.addr.ip()))?;
    s.api.put_host(&address, body).await
}
#[utoipa::path(delete, path = "/api/v0/host/{address}", tag = "hosts", summary = "Delete a host", params(("address" = String, Path, description = "the host's IP address or name", pattern = r"^[A-Za-z0-9_.:-]{1,253}$")), responses((status = 200, description = "deleted", body = Object), (status = 404, description = "no such host", body = crate::openapi::ErrorBody)))]
async fn delete_host(State(s): S, address: Address) -> ApiResult<Reply> {
    s.api.delete_host(&address).await
}
#[utoipa::path(put, path = "/api/v0/host/{address}/retry", tag = "hosts", summary = "Investigate a failed host again", params(("address" = String, Path, description = "the host's IP address or name", pattern = r"^[A-Za-z0-9_.:-]{1,253}$")), responses((status = 202, description = "the investigation will run again", body = commissaire_models::Host), (status = 404, description = "no such host", body = crate::openapi::ErrorBody), (status = 409, description = "the host is not failed", body = crate::openapi::ErrorBody)))]
async fn retry_host(State(s): S, address: Address) -> ApiResult<Reply> {
    s.api.retry_host(&address).await
}
#[utoipa::path(get, path = "/api/v0/host/{address}/creds", tag = "hosts", summary = "Get a host's SSH credentials (admins)", params(("address" = String, Path, description = "the host's IP address or name", pattern = r"^[A-Za-z0-9_.:-]{1,253}$")), responses((status = 200, description = "the credentials", body = Object), (status = 404, description = "no credentials for that host", body = crate::openapi::ErrorBody)))]
async fn get_creds(State(s): S, address: Address) -> ApiResult<Reply> {
    s.api.get_creds(&address).await
}
#[utoipa::path(get, path = "/api/v0/host/{address}/hostkey", tag = "hosts", summary = "Get a host's recorded SSH host key", params(("address" = String, Path, description = "the host's IP address or name", pattern = r"^[A-Za-z0-9_.:-]{1,253}$")), responses((status = 200, description = "the key", body = Object), (status = 404, description = "no such host", body = crate::openapi::ErrorBody)))]
async fn get_host_key(State(s): S, address: Address) -> ApiResult<Reply> {
    s.api.get_host_key(&address).await
}
#[utoipa::path(put, path = "/api/v0/host/{address}/hostkey", tag = "hosts", summary = "Accept a new SSH host key", params(("address" = String, Path, description = "the host's IP address or name", pattern = r"^[A-Za-z0-9_.:-]{1,253}$")), request_body = crate::openapi::HostKeyRequest, responses((status = 200, description = "the key will be recorded at the next connection", body = Object), (status = 404, description = "no such host", body = crate::openapi::ErrorBody)))]
async fn accept_host_key(
    State(s): S,
    address: Address,
    JsonObject(body): JsonObject,
) -> ApiResult<Reply> {
    s.api.accept_host_key(&address, body).await
}
#[utoipa::path(get, path = "/api/v0/host/{address}/status", tag = "hosts", summary = "Get a host's status and its node's", params(("address" = String, Path, description = "the host's IP address or name", pattern = r"^[A-Za-z0-9_.:-]{1,253}$")), responses((status = 200, description = "the status", body = commissaire_models::HostStatus), (status = 404, description = "no such host", body = crate::openapi::ErrorBody)))]
async fn get_host_status(State(s): S, address: Address) -> ApiResult<Reply> {
    s.api.get_host_status(&address).await
}
#[utoipa::path(get, path = "/api/v0/audit", tag = "audit", summary = "List audit entries, newest first (admins)", params(crate::openapi::AuditQuery), responses((status = 200, description = "the entries", body = Vec<commissaire_models::AuditEntry>), (status = 400, description = "a bad parameter", body = crate::openapi::ErrorBody)))]
async fn list_audit(
    State(s): S,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> ApiResult<Reply> {
    let filter = crate::api::AuditFilter::from_query(&query)?;
    s.api.list_audit(&filter).await
}
#[utoipa::path(get, path = "/api/v0/networks", tag = "configs", summary = "List the networks", params(crate::openapi::PageQuery), responses((status = 200, description = "the names, or a page", body = Vec<String>), (status = 400, description = "a bad limit or continue token", body = crate::openapi::ErrorBody)))]
async fn list_networks(State(s): S, RawQuery(raw): RawQuery) -> ApiResult<Reply> {
    let query = ListQuery::parse(raw.as_deref(), &[])?;
    if query.is_plain() {
        return s.api.list_networks().await;
    }
    s.api.list_networks_matching(&query).await
}
#[utoipa::path(get, path = "/api/v0/network/{name}", tag = "configs", summary = "Get a network", params(("name" = String, Path, description = "the configuration's name", pattern = r"^[A-Za-z0-9_-]{1,253}$")), responses((status = 200, description = "the network", body = commissaire_models::Network), (status = 404, description = "no such network", body = crate::openapi::ErrorBody)))]
async fn get_network(State(s): S, name: Name) -> ApiResult<Reply> {
    s.api.get_network(&name).await
}
#[utoipa::path(put, path = "/api/v0/network/{name}", tag = "configs", summary = "Create a network", params(("name" = String, Path, description = "the configuration's name", pattern = r"^[A-Za-z0-9_-]{1,253}$")), request_body = crate::openapi::ConfigRequest, responses((status = 201, description = "created", body = commissaire_models::Network), (status = 409, description = "it exists with other settings", body = crate::openapi::ErrorBody)))]
async fn put_network(State(s): S, name: Name, JsonObject(body): JsonObject) -> ApiResult<Reply> {
    s.api.put_network(&name, body).await
}
#[utoipa::path(delete, path = "/api/v0/network/{name}", tag = "configs", summary = "Delete a network", params(("name" = String, Path, description = "the configuration's name", pattern = r"^[A-Za-z0-9_-]{1,253}$")), responses((status = 200, description = "deleted", body = Object), (status = 404, description = "no such network", body = crate::openapi::ErrorBody), (status = 409, description = "a cluster uses it", body = crate::openapi::ErrorBody)))]
async fn delete_network(State(s): S, name: Name) -> ApiResult<Reply> {
    s.api.delete_network(&name).await
}
#[utoipa::path(get, path = "/api/v0/containermanagers", tag = "configs", summary = "List the container managers", params(crate::openapi::PageQuery), responses((status = 200, description = "the names, or a page", body = Vec<String>), (status = 400, description = "a bad limit or continue token", body = crate::openapi::ErrorBody)))]
async fn list_container_managers(State(s): S, RawQuery(raw): RawQuery) -> ApiResult<Reply> {
    let query = ListQuery::parse(raw.as_deref(), &[])?;
    if query.is_plain() {
        return s.api.list_container_managers().await;
    }
    s.api.list_container_managers_matching(&query).await
}
#[utoipa::path(get, path = "/api/v0/containermanager/{name}", tag = "configs", summary = "Get a container manager", params(("name" = String, Path, description = "the configuration's name", pattern = r"^[A-Za-z0-9_-]{1,253}$")), responses((status = 200, description = "the container manager", body = commissaire_models::ContainerManagerConfig), (status = 404, description = "no such container manager", body = crate::openapi::ErrorBody)))]
async fn get_container_manager(State(s): S, name: Name) -> ApiResult<Reply> {
    s.api.get_container_manager(&name).await
}
#[utoipa::path(put, path = "/api/v0/containermanager/{name}", tag = "configs", summary = "Create a container manager", params(("name" = String, Path, description = "the configuration's name", pattern = r"^[A-Za-z0-9_-]{1,253}$")), request_body = crate::openapi::ConfigRequest, responses((status = 201, description = "created", body = commissaire_models::ContainerManagerConfig), (status = 409, description = "it exists with other settings", body = crate::openapi::ErrorBody)))]
async fn put_container_manager(
    State(s): S,
    name: Name,
    JsonObject(body): JsonObject,
) -> ApiResult<Reply> {
    s.api.put_container_manager(&name, body).await
}
#[utoipa::path(delete, path = "/api/v0/containermanager/{name}", tag = "configs", summary = "Delete a container manager", params(("name" = String, Path, description = "the configuration's name", pattern = r"^[A-Za-z0-9_-]{1,253}$")), responses((status = 200, description = "deleted", body = Object), (status = 404, description = "no such container manager", body = crate::openapi::ErrorBody), (status = 409, description = "a cluster uses it", body = crate::openapi::ErrorBody)))]
async fn delete_container_manager(State(s): S, name: Name) -> ApiResult<Reply> {
    s.api.delete_container_manager(&name).await
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", request.uri().path()))
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}

/// The whole API, and the unauthenticated probes at `probes`' paths.
pub fn router(state: AppState, probes: &ProbePaths) -> Router {
    let api = api_router(state.clone());
    let mut open = Router::new();
    if let Some(path) = &probes.health {
        open = open.route(path, get(crate::probes::healthz));
    }
    if let Some(path) = &probes.ready {
        open = open.route(path, get(crate::probes::readyz));
    }
    if let Some(path) = &probes.version {
        open = open.route(path, get(crate::probes::version));
    }
    if let Some(path) = &probes.metrics {
        open = open.route(path, get(crate::metrics::scrape));
    }
    open = open.route(crate::openapi::DOCUMENT_PATH, get(crate::openapi::serve));
    let fleetlock = &state.fleetlock;
    if !fleetlock.prefix.is_empty() {
        open = open.merge(crate::fleetlock::router(
            &fleetlock.prefix,
            fleetlock.drain_wait(),
        ));
    }
    open.with_state(state)
        .merge(api)
        .layer(middleware::from_fn(crate::metrics::track))
        .layer(middleware::from_fn(crate::access_log::access_log))
        .layer(compression())
}

/// gzip or brotli, as the client's `Accept-Encoding` asks, for answers of
/// 1 KiB or more, at level 4 of both (brotli's default of 11 costs ten
/// times the CPU of gzip for large JSON lists).
fn compression() -> tower_http::compression::CompressionLayer<
    tower_http::compression::predicate::And<
        tower_http::compression::DefaultPredicate,
        tower_http::compression::predicate::SizeAbove,
    >,
> {
    use tower_http::compression::predicate::{Predicate, SizeAbove};
    tower_http::compression::CompressionLayer::new()
        .quality(tower_http::CompressionLevel::Precise(4))
        .compress_when(tower_http::compression::DefaultPredicate::new().and(SizeAbove::new(1024)))
}

/// The `/api/v0` routes with their descriptions ([`crate::openapi`]): a
/// route is registered here with the `#[utoipa::path]` of its handlers, so
/// the served document and the served routes are one list.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_clusters))
        .routes(routes!(list_clusters_alias))
        .routes(routes!(get_cluster, put_cluster, delete_cluster))
        .routes(routes!(get_rolling, put_rolling))
        .routes(routes!(get_lock))
        .routes(routes!(release_lock_holder))
        .routes(routes!(new_lock_token))
        .routes(routes!(list_members, put_members))
        .routes(routes!(get_member, put_member, delete_member))
        .routes(routes!(get_restart, put_restart, cancel_restart))
        .routes(routes!(pause_restart))
        .routes(routes!(resume_restart))
        .routes(routes!(get_upgrade, put_upgrade, cancel_upgrade))
        .routes(routes!(pause_upgrade))
        .routes(routes!(resume_upgrade))
        .routes(routes!(get_deploy, put_deploy, cancel_deploy))
        .routes(routes!(pause_deploy))
        .routes(routes!(resume_deploy))
        .routes(routes!(list_hosts))
        .routes(routes!(put_host_from_peer))
        .routes(routes!(get_host, put_host, delete_host))
        .routes(routes!(get_creds))
        .routes(routes!(retry_host))
        .routes(routes!(get_host_status))
        .routes(routes!(get_host_key, accept_host_key))
        .routes(routes!(list_audit))
        .routes(routes!(list_networks))
        .routes(routes!(get_network, put_network, delete_network))
        .routes(routes!(list_container_managers))
        .routes(routes!(
            get_container_manager,
            put_container_manager,
            delete_container_manager
        ))
}

/// The `/api/v0` routes, behind authentication and the start-up gate.
fn api_router(state: AppState) -> Router {
    let (routes, _) = api_routes().split_for_parts();
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(crate::etag::etag))
        .layer(middleware::from_fn(crate::guards::authorize))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::audit::audit,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::probes::require_started,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(crate::guards::body_too_large))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::guards::authenticate,
        ))
        .with_state(state)
}

/// Strips trailing slashes (`/api/v0/clusters/` is `/api/v0/clusters`), as the original allowed.
pub fn trim_trailing_slash(mut request: http::Request<Body>) -> http::Request<Body> {
    let path = request.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let rebuilt = match request.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_string(),
        };
        if let Ok(uri) = rebuilt.parse() {
            *request.uri_mut() = uri;
        }
    }
    request
}
