//! A stand-in Kubernetes API server, kept for what the test bed's real
//! one (v1.20.2, `kube_api`) cannot show: a server that serves policy/v1
//! Evictions, as Kubernetes 1.21 and later do (`KubeState::policy_versions`).
//! It serves the real node, pod, eviction and `policy` discovery paths,
//! checks the bearer token, and can be told a node is Ready, NotReady or
//! missing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// A node in the stand-in.
#[derive(Debug, Clone, Default)]
pub struct FakeNode {
    /// Ready condition.
    pub ready: bool,
    /// spec.unschedulable
    pub unschedulable: bool,
}

/// A pod in the stand-in.
#[derive(Debug, Clone)]
pub struct FakePod {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The node it runs on.
    pub node: String,
    /// Owned by a DaemonSet (not evicted by a drain).
    pub daemonset: bool,
}

/// The stand-in's state, shared with the test.
#[derive(Debug, Default)]
pub struct KubeState {
    /// Nodes by name.
    pub nodes: BTreeMap<String, FakeNode>,
    /// Pods.
    pub pods: Vec<FakePod>,
    /// Nodes registered from now on become Ready at once (else NotReady until the test says).
    pub ready_on_register: bool,
    /// Every request seen: "METHOD PATH".
    pub requests: Vec<String>,
    /// The versions of the `policy` group it serves (empty: `v1` and
    /// `v1beta1`, as Kubernetes 1.21 to 1.24); an Eviction of another is a 404.
    pub policy_versions: Vec<String>,
}

impl KubeState {
    fn policy_versions(&self) -> Vec<String> {
        if self.policy_versions.is_empty() {
            vec!["v1".into(), "v1beta1".into()]
        } else {
            self.policy_versions.clone()
        }
    }
}

/// A running stand-in API server.
pub struct StandInKube {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The token it accepts.
    pub token: String,
    /// Its state.
    pub state: Arc<Mutex<KubeState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandInKube {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = (Arc<Mutex<KubeState>>, String);

fn status(code: StatusCode, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code.as_u16()});
    (code, axum::Json(body)).into_response()
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {token}"))
}

fn node_json(name: &str, node: &FakeNode) -> Value {
    json!({
        "kind": "Node", "apiVersion": "v1",
        "metadata": {"name": name},
        "spec": {"unschedulable": node.unschedulable},
        "status": {"conditions": [{"type": "Ready", "status": if node.ready { "True" } else { "False" },
                                   "reason": if node.ready { "KubeletReady" } else { "KubeletNotReady" }}]}
    })
}

async fn create_node(
    State((state, token)): State<Shared>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> Response {
    if !authorized(&headers, &token) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let mut s = state.lock().unwrap();
    s.requests.push("POST /api/v1/nodes".into());
    let Some(name) = body["metadata"]["name"].as_str() else {
        return status(StatusCode::BAD_REQUEST, "metadata.name is required");
    };
    if body["kind"] != "Node" {
        return status(StatusCode::BAD_REQUEST, "kind must be Node");
    }
    if s.nodes.contains_key(name) {
        return status(
            StatusCode::CONFLICT,
            &format!("nodes \"{name}\" already exists"),
        );
    }
    let node = FakeNode {
        ready: s.ready_on_register,
        unschedulable: false,
    };
    let out = node_json(name, &node);
    s.nodes.insert(name.to_string(), node);
    (StatusCode::CREATED, axum::Json(out)).into_response()
}

async fn node(
    State((state, token)): State<Shared>,
    method: axum::http::Method,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if !authorized(&headers, &token) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let mut s = state.lock().unwrap();
    s.requests.push(format!("{method} /api/v1/nodes/{name}"));
    let not_found = || {
        status(
            StatusCode::NOT_FOUND,
            &format!("nodes \"{name}\" not found"),
        )
    };
    match method.as_str() {
        "GET" => match s.nodes.get(&name) {
            Some(n) => axum::Json(node_json(&name, n)).into_response(),
            None => not_found(),
        },
        "DELETE" => match s.nodes.remove(&name) {
            Some(_) => axum::Json(json!({"kind": "Status", "status": "Success"})).into_response(),
            None => not_found(),
        },
        "PATCH" => {
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if content_type != "application/merge-patch+json" {
                return status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "use a merge patch");
            }
            let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            match s.nodes.get_mut(&name) {
                Some(n) => {
                    if let Some(u) = patch["spec"]["unschedulable"].as_bool() {
                        n.unschedulable = u;
                    }
                    let out = node_json(&name, n);
                    axum::Json(out).into_response()
                }
                None => not_found(),
            }
        }
        _ => status(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}

async fn pods(
    State((state, token)): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if !authorized(&headers, &token) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let mut s = state.lock().unwrap();
    s.requests.push("GET /api/v1/pods".into());
    let node = query
        .get("fieldSelector")
        .and_then(|f| f.strip_prefix("spec.nodeName="))
        .unwrap_or("");
    let items: Vec<Value> = s
        .pods
        .iter()
        .filter(|p| node.is_empty() || p.node == node)
        .map(|p| {
            let owners = if p.daemonset { json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "1"}]) } else { json!([]) };
            json!({"metadata": {"name": p.name, "namespace": p.namespace, "ownerReferences": owners}, "spec": {"nodeName": p.node}})
        })
        .collect();
    axum::Json(json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}))
        .into_response()
}

async fn evict(
    State((state, token)): State<Shared>,
    headers: HeaderMap,
    Path((namespace, name)): Path<(String, String)>,
    body: axum::Json<Value>,
) -> Response {
    if !authorized(&headers, &token) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let mut s = state.lock().unwrap();
    let served = s
        .policy_versions()
        .iter()
        .any(|v| body["apiVersion"] == format!("policy/{v}"));
    if body["kind"] != "Eviction" || !served {
        return status(
            StatusCode::NOT_FOUND,
            &format!(
                "the server could not find the requested resource ({})",
                body["apiVersion"]
            ),
        );
    }
    s.requests.push(format!(
        "POST /api/v1/namespaces/{namespace}/pods/{name}/eviction {}",
        body["apiVersion"].as_str().unwrap_or("")
    ));
    let before = s.pods.len();
    s.pods
        .retain(|p| !(p.namespace == namespace && p.name == name));
    if s.pods.len() == before {
        return status(StatusCode::NOT_FOUND, "pod not found");
    }
    (
        StatusCode::CREATED,
        axum::Json(json!({"kind": "Status", "status": "Success"})),
    )
        .into_response()
}

/// The `policy` group's discovery document.
async fn policy_group(State((state, token)): State<Shared>, headers: HeaderMap) -> Response {
    if !authorized(&headers, &token) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let versions: Vec<Value> = state
        .lock()
        .unwrap()
        .policy_versions()
        .iter()
        .map(|v| json!({"groupVersion": format!("policy/{v}"), "version": v}))
        .collect();
    axum::Json(
        json!({"kind": "APIGroup", "apiVersion": "v1", "name": "policy",
        "versions": versions, "preferredVersion": versions[0]}),
    )
    .into_response()
}

impl StandInKube {
    /// Starts a stand-in accepting `token`.
    pub async fn start(token: &str) -> StandInKube {
        let state = Arc::new(Mutex::new(KubeState::default()));
        let shared: Shared = (state.clone(), token.to_string());
        let app = Router::new()
            .route("/api/v1/nodes", post(create_node))
            .route("/api/v1/nodes/{name}", get(node).delete(node).patch(node))
            .route("/api/v1/pods", get(pods))
            .route("/apis/policy", get(policy_group))
            .route(
                "/api/v1/namespaces/{namespace}/pods/{name}/eviction",
                post(evict),
            )
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        StandInKube {
            url,
            token: token.to_string(),
            state,
            task,
        }
    }

    /// Sets a node's Ready condition.
    pub fn set_ready(&self, name: &str, ready: bool) {
        if let Some(n) = self.state.lock().unwrap().nodes.get_mut(name) {
            n.ready = ready;
        }
    }
}
