//! The OpenAPI 3.1 description of `/api/v0`, served at
//! [`DOCUMENT_PATH`]: paths come from the `#[utoipa::path]` attributes on
//! the handlers in [`crate::routes`], registered through the same
//! [`utoipa_axum`] router that serves them (a route cannot be served
//! without being described); bodies and answers from the models' types and
//! from the request shapes below; what every route shares (Basic
//! authentication, the JSON error, 403 and 503) is added by [`document`].

use std::sync::LazyLock;

use axum::response::{IntoResponse, Response};
use commissaire_models::{ClusterHostCounts, ClusterState};
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, OpenApi as Document, PathItem, RefOr, Required, ResponseBuilder,
    SecurityRequirement,
};
use utoipa::{IntoParams, OpenApi, ToSchema};

/// Where the document is served (without authentication: it holds no secret).
pub const DOCUMENT_PATH: &str = "/api/v0/openapi.json";

/// The document's root: its title, version, tags and named schemas.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Commissaire",
        description = "Manages the hosts of Kubernetes/OpenShift clusters over SSH and Ansible: \
            host inventory, bootstrapping, and rolling restarts, upgrades and OSTree deploys. \
            Every answer is JSON; an error is `{\"error\": MESSAGE, \"field\": MEMBER?}`.",
        license(name = "GPL-3.0-or-later")
    ),
    tags(
        (name = "clusters", description = "Clusters and their members"),
        (name = "operations", description = "Rolling restarts, upgrades and deploys"),
        (name = "hosts", description = "Hosts, their credentials, keys and status"),
        (name = "configs", description = "Networks and container managers"),
        (name = "audit", description = "Who changed what"),
        (name = "meta", description = "This document")
    ),
    components(schemas(ErrorBody, ListPage, ClusterView, commissaire_models::Host))
)]
struct Root;

/// The JSON body of every error answer.
#[derive(ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// The request member or parameter at fault, when one is.
    pub field: Option<String>,
}

/// A list asked for with a query (filters, `limit` or `continue`).
#[derive(ToSchema)]
pub struct ListPage {
    /// The page's records (addresses or names for the member, network and
    /// container manager lists).
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
    /// How many records match the filters, on every page.
    pub total: u64,
    /// The token for the next page (`continue=`), absent on the last.
    #[schema(rename = "continue")]
    pub next: Option<String>,
}

/// A cluster as `GET /api/v0/cluster/{name}` answers it.
#[derive(ToSchema)]
pub struct ClusterView {
    /// The cluster's name.
    pub name: String,
    /// Computed from the members' statuses.
    pub status: ClusterState,
    /// The network the cluster uses.
    pub network: String,
    /// The container manager, `""` for none.
    pub container_manager: String,
    /// Counts of the members.
    pub hosts: ClusterHostCounts,
    /// The cluster's rolling defaults, when any is set.
    #[schema(value_type = Object)]
    pub rolling: Option<Value>,
}

/// `PUT /api/v0/cluster/{name}`.
#[derive(ToSchema)]
pub struct ClusterRequest {
    /// An existing network (default `default`).
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,253}$")]
    pub network: Option<String>,
    /// An existing container manager (default none).
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,253}$")]
    pub container_manager: Option<String>,
}

/// `PUT /api/v0/cluster/{name}/hosts`: a compare-and-swap of the members.
#[derive(ToSchema)]
pub struct MembersRequest {
    /// The member list as the client last saw it.
    pub old: Vec<String>,
    /// The list to store.
    pub new: Vec<String>,
}

/// A count, or a percent of the cluster's hosts such as `"25%"`.
pub struct Budget;

impl utoipa::PartialSchema for Budget {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .description(Some(
                "a count, or a percent of the cluster's hosts (`\"25%\"`)",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[0-9]{1,3}%$")),
            )
            .into()
    }
}

impl ToSchema for Budget {}

/// `PUT /api/v0/cluster/{name}/{restart|upgrade|deploy}` (the body may be empty).
#[derive(ToSchema)]
pub struct OperationRequest {
    /// The OSTree version (a deploy's, required there).
    pub version: Option<String>,
    /// Failed hosts tolerated before the roll stops.
    pub max_failures: Option<Budget>,
    /// Hosts worked on at once.
    pub batch_size: Option<Budget>,
    /// Members rolled first, in this order.
    pub order: Option<Vec<String>>,
    /// Members rolled last, in this order.
    pub last: Option<Vec<String>>,
    /// Health gates for this run (`{"commands": [...], "prometheus": {...}}`).
    #[schema(value_type = Object)]
    pub gates: Option<Value>,
    /// Answer the plan and write nothing.
    pub dry_run: Option<bool>,
}

/// `PUT /api/v0/cluster/{name}/rolling`: the defaults of the cluster's rolls.
#[derive(ToSchema)]
pub struct RollingRequest {
    /// Hosts worked on at once.
    pub batch_size: Option<Budget>,
    /// Failed hosts tolerated before a roll stops.
    pub max_failures: Option<Budget>,
    /// Hosts rolled last.
    pub last: Option<Vec<String>>,
    /// Past runs kept in an operation record's history (0 to 100).
    pub keep_runs: Option<u32>,
    /// Maintenance windows (`{"days", "start", "end", "timezone"}`).
    #[schema(value_type = Vec<Object>)]
    pub windows: Option<Vec<Value>>,
    /// Health gates.
    #[schema(value_type = Object)]
    pub gates: Option<Value>,
    /// The slots of the cluster's reboot lock (hosts out at once, by
    /// FleetLock or a roll; default 1).
    pub max_unavailable: Option<Budget>,
}

/// `PUT /api/v0/host/{address}` and `PUT /api/v0/host`.
#[derive(ToSchema)]
pub struct HostRequest {
    /// The base64 encoded SSH private key Commissaire logs in with.
    #[schema(pattern = r"^[A-Za-z0-9+/\s]+={0,2}\s*$")]
    pub ssh_priv_key: String,
    /// The SSH user (default `root`).
    #[schema(pattern = r"^\S{1,64}$")]
    pub remote_user: Option<String>,
    /// An existing cluster the host joins.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,253}$")]
    pub cluster: Option<String>,
}

/// `PUT /api/v0/host/{address}/hostkey` (the body may be empty).
#[derive(ToSchema)]
pub struct HostKeyRequest {
    /// The only key fingerprint to accept (`SHA256:...`).
    pub fingerprint: Option<String>,
}

/// `PUT /api/v0/network/{name}` and `PUT /api/v0/containermanager/{name}`.
#[derive(ToSchema)]
pub struct ConfigRequest {
    /// The type (`flannel_etcd` or `flannel_server`; `openshift` or `kubernetes`).
    #[schema(rename = "type")]
    pub kind: Option<String>,
    /// The type's options.
    #[schema(value_type = Object)]
    pub options: Option<Value>,
}

/// The list query of `GET /api/v0/hosts`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HostListQuery {
    /// Only hosts with this status.
    pub status: Option<commissaire_models::HostState>,
    /// Only members of this (existing) cluster.
    pub cluster: Option<String>,
    /// Only hosts of this operating system.
    pub os: Option<commissaire_models::Os>,
    /// Only hosts owned by this storage handler.
    pub source: Option<String>,
    /// At most this many records (1 to 10000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    /// The token of the page before.
    #[param(rename = "continue")]
    pub next: Option<String>,
}

/// The list query of `GET /api/v0/clusters`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClusterListQuery {
    /// Only clusters with this computed status.
    pub status: Option<ClusterState>,
    /// At most this many records (1 to 10000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    /// The token of the page before.
    #[param(rename = "continue")]
    pub next: Option<String>,
}

/// The list query of the lists without filters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many records (1 to 10000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    /// The token of the page before.
    #[param(rename = "continue")]
    pub next: Option<String>,
}

/// The query of `GET /api/v0/audit`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this user's changes.
    pub user: Option<String>,
    /// Only this kind (and the kinds under it).
    pub kind: Option<String>,
    /// Only changes naming this.
    pub name: Option<String>,
    /// Only changes at or after this UTC time (`YYYY-MM-DD[THH:MM[:SS]]`).
    pub since: Option<String>,
    /// At most this many entries.
    #[param(minimum = 1)]
    pub limit: Option<u32>,
}

/// The description of every route of `routes` (the router's own document),
/// with what every route shares added.
pub fn document(routes: Document) -> Document {
    let mut doc = Root::openapi();
    doc.merge(routes);
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "basic",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
    );
    doc.security = Some(vec![SecurityRequirement::new(
        "basic",
        Vec::<String>::new(),
    )]);
    let error = |why: &str| {
        ResponseBuilder::new()
            .description(why)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorBody",
                    ))))
                    .build(),
            )
            .build()
    };
    for item in doc.paths.paths.values_mut() {
        for operation in operations(item) {
            let responses = &mut operation.responses.responses;
            for (code, why) in [
                (
                    "403",
                    "the credentials were refused, or the caller's role does not allow this",
                ),
                (
                    "503",
                    "a backing service (the bus or the store) is unavailable; retry",
                ),
            ] {
                responses
                    .entry(code.into())
                    .or_insert_with(|| RefOr::T(error(why)));
            }
            let in_path = operation.parameters.iter().flatten().any(|p| {
                matches!(p, RefOr::T(p) if p.parameter_in == utoipa::openapi::path::ParameterIn::Path)
            });
            if in_path {
                responses.entry("400".into()).or_insert_with(|| {
                    RefOr::T(error("a name or address in the path is not valid"))
                });
            }
            if let Some(body) = &mut operation.request_body {
                // An empty body is an empty object to every handler (a
                // missing required member is then a 400 naming it).
                if let RefOr::T(body) = body {
                    body.required = Some(Required::False);
                }
                responses
                    .entry("413".into())
                    .or_insert_with(|| RefOr::T(error("the body exceeds 1 MiB")));
                responses.entry("400".into()).or_insert_with(|| {
                    RefOr::T(error("the body is not a JSON object, or a member is wrong"))
                });
            }
        }
    }
    doc
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
        item.head.as_mut(),
        item.options.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The served document, built once.
static SERVED: LazyLock<String> = LazyLock::new(|| {
    let (_, routes) = crate::routes::api_routes().split_for_parts();
    let mut doc = document(routes);
    let meta = utoipa::openapi::path::OperationBuilder::new()
        .tag("meta")
        .operation_id(Some("openapi"))
        .summary(Some("This document"))
        .security(SecurityRequirement::default())
        .response(
            "200",
            ResponseBuilder::new()
                .description("the OpenAPI document")
                .content("application/json", ContentBuilder::new().build())
                .build(),
        )
        .build();
    doc.paths
        .add_path_operation(DOCUMENT_PATH, vec![utoipa::openapi::HttpMethod::Get], meta);
    // Serializing plain structs of strings and maps cannot fail; were it
    // to, the answer says so instead of panicking.
    doc.to_pretty_json()
        .unwrap_or_else(|e| serde_json::json!({"error": format!("the document: {e}")}).to_string())
});

/// `GET /api/v0/openapi.json`.
pub async fn serve() -> Response {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        SERVED.as_str(),
    )
        .into_response()
}
