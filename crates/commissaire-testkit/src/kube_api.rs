//! The real Kubernetes API server of the test bed (`TESTBED_KUBE=1`:
//! kube-apiserver v1.20.2 from Debian's sources, with its own etcd; see
//! `scripts/testbed-kube.sh`), and what a lone API server lacks, done
//! through the API as the missing parts would do it: [`Kubelet`] marks
//! the test's nodes Ready once registered and finishes the pods evicted
//! from them (no kubelet can run here), and a PodDisruptionBudget's
//! status is set by the test (no controller-manager runs).
//!
//! Each [`RealKube`] works in a namespace of its own; nodes are
//! cluster-wide, so a test names its nodes and [`RealKube::connect`]
//! deletes any left by an earlier run.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: the test bed has no Kubernetes API server; run the tests through scripts/test.sh (TESTBED_KUBE=1, the default there)")
    })
}

/// The test bed's API server, as its admin, in a fresh namespace.
#[derive(Clone)]
pub struct RealKube {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The admin's bearer token (group `system:masters`).
    pub token: String,
    /// A token whose user RBAC lets read nodes and nothing else.
    pub restricted_token: String,
    /// The CA of the server's certificate.
    pub ca: PathBuf,
    /// A client certificate (CN `commissaire-cert`, group `system:masters`).
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// This test's namespace.
    pub namespace: String,
    client: reqwest::Client,
}

/// Whether a node's Ready condition is `True`.
pub fn is_ready(node: &Value) -> bool {
    node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

impl RealKube {
    /// Connects as the admin, makes a namespace of its own (with its
    /// `default` ServiceAccount, which pods need), and deletes `nodes`
    /// if an earlier test left them.
    pub async fn connect(nodes: &[&str]) -> RealKube {
        let ca = PathBuf::from(var("COMMISSAIRE_TEST_KUBE_CA"));
        let pem = std::fs::read(&ca).expect("the API server's CA");
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("a PEM CA"))
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let kube = RealKube {
            url: var("COMMISSAIRE_TEST_KUBE_URL"),
            token: var("COMMISSAIRE_TEST_KUBE_TOKEN"),
            restricted_token: var("COMMISSAIRE_TEST_KUBE_RESTRICTED_TOKEN"),
            ca,
            client_cert: PathBuf::from(var("COMMISSAIRE_TEST_KUBE_CLIENT_CERT")),
            client_key: PathBuf::from(var("COMMISSAIRE_TEST_KUBE_CLIENT_KEY")),
            namespace: format!("t-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            client,
        };
        kube.call(
            "POST",
            "/api/v1/namespaces",
            Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": kube.namespace}})),
        )
        .await
        .expect("a namespace");
        kube.call(
            "POST",
            &format!("/api/v1/namespaces/{}/serviceaccounts", kube.namespace),
            Some(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})),
        )
        .await
        .expect("the namespace's default ServiceAccount");
        for node in nodes {
            kube.delete_node(node).await;
        }
        kube
    }

    /// A container manager's `options` for this server with the admin's
    /// bearer token, its certificate checked against the CA.
    pub fn options(&self) -> Value {
        json!({"server_url": self.url, "token": self.token, "certificate_ca_path": self.ca})
    }

    /// A request as the admin: the JSON answer of a 2xx, else `Err((status, body))`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, (u16, Value)> {
        self.call_typed(method, path, body, "application/json")
            .await
    }

    async fn call_typed(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        content_type: &str,
    ) -> Result<Value, (u16, Value)> {
        let mut request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", content_type)
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err((status, body))
        }
    }

    async fn merge_patch(&self, path: &str, patch: Value) -> Result<Value, (u16, Value)> {
        self.call_typed("PATCH", path, Some(patch), "application/merge-patch+json")
            .await
    }

    /// The node, if it exists.
    pub async fn node(&self, name: &str) -> Option<Value> {
        match self
            .call("GET", &format!("/api/v1/nodes/{name}"), None)
            .await
        {
            Ok(node) => Some(node),
            Err((404, _)) => None,
            Err(e) => panic!("get node {name}: {e:?}"),
        }
    }

    /// Whether the node is cordoned (`spec.unschedulable`).
    pub async fn unschedulable(&self, name: &str) -> bool {
        let node = self
            .node(name)
            .await
            .unwrap_or_else(|| panic!("node {name}"));
        node["spec"]["unschedulable"] == true
    }

    /// Cordons (`true`) or uncordons the node, as an operator would.
    pub async fn set_unschedulable(&self, name: &str, value: bool) {
        self.merge_patch(
            &format!("/api/v1/nodes/{name}"),
            json!({"spec": {"unschedulable": value}}),
        )
        .await
        .unwrap_or_else(|e| panic!("set node {name} unschedulable={value}: {e:?}"));
    }

    /// The node's `metadata.resourceVersion`: it changes with every write
    /// of the node.
    pub async fn node_version(&self, name: &str) -> String {
        let node = self
            .node(name)
            .await
            .unwrap_or_else(|| panic!("node {name}"));
        node["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Sets the node's Ready condition, as its kubelet would.
    pub async fn set_ready(&self, name: &str, ready: bool) {
        let (status, reason) = if ready {
            ("True", "KubeletReady")
        } else {
            ("False", "KubeletNotReady")
        };
        let now = chrono_now();
        let patch = json!({"status": {"conditions": [{
            "type": "Ready", "status": status, "reason": reason,
            "message": format!("set by the test's kubelet stand-in"),
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        }]}});
        self.merge_patch(&format!("/api/v1/nodes/{name}/status"), patch)
            .await
            .unwrap_or_else(|e| panic!("set node {name} Ready={ready}: {e:?}"));
    }

    /// Deletes the node (no matter whether it exists).
    pub async fn delete_node(&self, name: &str) {
        match self
            .call("DELETE", &format!("/api/v1/nodes/{name}"), None)
            .await
        {
            Ok(_) | Err((404, _)) => {}
            Err(e) => panic!("delete node {name}: {e:?}"),
        }
    }

    /// Creates pod `name` in this test's namespace, bound to `node`, with
    /// `labels`; `daemonset`: owned by a DaemonSet (a drain leaves it).
    pub async fn create_pod(&self, name: &str, node: &str, labels: Value, daemonset: bool) {
        let mut metadata = json!({"name": name, "labels": labels});
        if daemonset {
            metadata["ownerReferences"] = json!([{
                "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                "uid": "00000000-0000-0000-0000-000000000001", "controller": true,
            }]);
        }
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {
                "nodeName": node,
                "automountServiceAccountToken": false,
                "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
            },
        });
        self.call(
            "POST",
            &format!("/api/v1/namespaces/{}/pods", self.namespace),
            Some(pod),
        )
        .await
        .unwrap_or_else(|e| panic!("create pod {name}: {e:?}"));
        // Running and Ready, as its kubelet would report it once started
        // (a Pending pod is evicted whatever its disruption budget says).
        let now = chrono_now();
        self.merge_patch(
            &format!("/api/v1/namespaces/{}/pods/{name}/status", self.namespace),
            json!({"status": {"phase": "Running", "startTime": now, "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": now}]}}),
        )
        .await
        .unwrap_or_else(|e| panic!("set pod {name} Running: {e:?}"));
    }

    /// The names of this namespace's pods on `node`, terminating ones too.
    pub async fn pods_on(&self, node: &str) -> Vec<String> {
        let list = self
            .call(
                "GET",
                &format!(
                    "/api/v1/namespaces/{}/pods?fieldSelector=spec.nodeName%3D{node}",
                    self.namespace
                ),
                None,
            )
            .await
            .expect("list pods");
        let mut names: Vec<String> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names
    }

    /// Creates PodDisruptionBudget `name` (policy/v1beta1, the only one
    /// v1.20 serves) over the pods labelled `selector`, and sets its
    /// status as the disruption controller would: `allowed` disruptions.
    pub async fn create_pdb(&self, name: &str, selector: Value, allowed: i32) {
        let pdb = json!({
            "apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": selector}},
        });
        self.call(
            "POST",
            &format!(
                "/apis/policy/v1beta1/namespaces/{}/poddisruptionbudgets",
                self.namespace
            ),
            Some(pdb),
        )
        .await
        .unwrap_or_else(|e| panic!("create PodDisruptionBudget {name}: {e:?}"));
        self.set_pdb_allowed(name, allowed).await;
    }

    /// Sets how many disruptions budget `name` allows now, as the
    /// disruption controller would (its status, for its generation).
    pub async fn set_pdb_allowed(&self, name: &str, allowed: i32) {
        let path = format!(
            "/apis/policy/v1beta1/namespaces/{}/poddisruptionbudgets/{name}",
            self.namespace
        );
        let pdb = self.call("GET", &path, None).await.expect("the budget");
        let generation = pdb["metadata"]["generation"].as_i64().unwrap_or(1);
        let status = json!({"status": {
            "observedGeneration": generation, "disruptionsAllowed": allowed,
            "currentHealthy": 1 + allowed, "desiredHealthy": 1, "expectedPods": 1 + allowed,
        }});
        self.merge_patch(&format!("{path}/status"), status)
            .await
            .unwrap_or_else(|e| panic!("set the status of budget {name}: {e:?}"));
    }

    /// Starts a kubelet stand-in for `nodes` (see [`Kubelet`]).
    pub fn kubelet(&self, nodes: &[&str]) -> Kubelet {
        let state = Arc::new(Mutex::new(KubeletState {
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            ready_on_register: true,
        }));
        let (kube, shared) = (self.clone(), state.clone());
        let task = tokio::spawn(async move {
            loop {
                let (nodes, ready) = {
                    let s = shared.lock().unwrap();
                    (s.nodes.clone(), s.ready_on_register)
                };
                for node in nodes {
                    kube.kubelet_pass(&node, ready).await;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Kubelet { state, task }
    }

    /// One pass of the kubelet stand-in over `node`.
    async fn kubelet_pass(&self, node: &str, ready_on_register: bool) {
        let Ok(found) = self
            .call("GET", &format!("/api/v1/nodes/{node}"), None)
            .await
        else {
            return;
        };
        if ready_on_register
            && found["status"]["conditions"]
                .as_array()
                .is_none_or(Vec::is_empty)
        {
            let _ = self
                .merge_patch(
                    &format!("/api/v1/nodes/{node}/status"),
                    json!({"status": {"conditions": [{"type": "Ready", "status": "True",
                        "reason": "KubeletReady", "lastHeartbeatTime": chrono_now(),
                        "lastTransitionTime": chrono_now()}]}}),
                )
                .await;
        }
        // Evicted pods are deleted gracefully: without a kubelet they would
        // stay Terminating for ever. Finish them as the kubelet does once
        // their containers have stopped.
        let Ok(pods) = self
            .call(
                "GET",
                &format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{node}"),
                None,
            )
            .await
        else {
            return;
        };
        for pod in pods["items"].as_array().into_iter().flatten() {
            let meta = &pod["metadata"];
            if meta["deletionTimestamp"].is_string()
                && let (Some(ns), Some(name)) = (meta["namespace"].as_str(), meta["name"].as_str())
            {
                let _ = self
                    .call(
                        "DELETE",
                        &format!("/api/v1/namespaces/{ns}/pods/{name}"),
                        Some(json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})),
                    )
                    .await;
            }
        }
    }
}

/// What the kubelet stand-in does.
#[derive(Debug)]
pub struct KubeletState {
    /// The nodes it runs on.
    pub nodes: BTreeSet<String>,
    /// A registered node without conditions is marked Ready.
    pub ready_on_register: bool,
}

/// A kubelet stand-in (no kubelet can run here) for a test's nodes, every
/// 200 ms through the API: a registered node that has no conditions yet
/// becomes Ready, and a pod on it being deleted (evicted) is finished
/// (deleted with no grace). Stops when dropped.
pub struct Kubelet {
    /// What it does, changeable by the test.
    pub state: Arc<Mutex<KubeletState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Now, as Kubernetes writes times (RFC 3339, seconds, UTC).
fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
