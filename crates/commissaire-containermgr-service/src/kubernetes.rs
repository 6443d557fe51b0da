//! The Kubernetes / OpenShift manager: the real node API over HTTPS, with
//! k8s-openapi types.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::List;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::Eviction; // v1beta1's body is the same shape
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value, json};

use crate::{CmError, ContainerManager, NodeState};

/// A Kubernetes (or OpenShift) API server.
pub struct KubernetesManager {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

fn option_str<'a>(options: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    options
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

impl KubernetesManager {
    /// Builds a client from a ContainerManagerConfig's options: `server_url`
    /// (required), `token` (bearer), `certificate_path` + `certificate_key_path`
    /// (client certificate), `certificate_ca_path` (CA), `insecure` (skip TLS
    /// verification; opt-in only).
    pub fn from_options(options: &Map<String, Value>) -> Result<Self, CmError> {
        let server = option_str(options, "server_url")
            .ok_or_else(|| CmError::config("options.server_url is required"))?;
        let base = server
            .trim_end_matches('/')
            .trim_end_matches("/api")
            .to_string();
        let read =
            |path: &str| std::fs::read(path).map_err(|e| CmError::config(format!("{path}: {e}")));
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5));
        if let Some(ca) = option_str(options, "certificate_ca_path") {
            let cert = reqwest::Certificate::from_pem(&read(ca)?)
                .map_err(|e| CmError::config(format!("{ca}: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        match (
            option_str(options, "certificate_path"),
            option_str(options, "certificate_key_path"),
        ) {
            (Some(cert), Some(key)) => {
                let pem = [read(cert)?, read(key)?].concat();
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    CmError::config(format!("client certificate: {}", with_sources(&e)))
                })?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => {
                return Err(CmError::config(
                    "certificate_path and certificate_key_path go together",
                ));
            }
        }
        let insecure = matches!(options.get("insecure"), Some(Value::Bool(true)))
            || option_str(options, "insecure") == Some("true");
        if insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        Ok(KubernetesManager {
            client: builder
                .build()
                .map_err(|e| CmError::config(with_sources(&e)))?,
            base,
            token: option_str(options, "token").map(str::to_string),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<reqwest::Response, CmError> {
        request
            .send()
            .await
            .map_err(|e| CmError::unreachable(format!("{what}: cannot reach {}: {e}", self.base)))
    }

    async fn fail(response: reqwest::Response, what: &str) -> CmError {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let message = body["message"].as_str().unwrap_or("").to_string();
        CmError::api(
            status,
            format!("{what}: the API server answered {status} {message}"),
        )
    }

    async fn get_node(&self, address: &str) -> Result<Option<Node>, CmError> {
        let what = format!("get node {address}");
        let response = self
            .send(
                self.request(reqwest::Method::GET, &format!("/api/v1/nodes/{address}")),
                &what,
            )
            .await?;
        match response.status().as_u16() {
            200 => response
                .json()
                .await
                .map(Some)
                .map_err(|e| CmError::api(200, format!("{what}: {e}"))),
            404 => Ok(None),
            _ => Err(Self::fail(response, &what).await),
        }
    }

    async fn set_unschedulable(&self, address: &str, value: bool) -> Result<(), CmError> {
        let what = format!(
            "{} node {address}",
            if value { "cordon" } else { "uncordon" }
        );
        let request = self
            .request(reqwest::Method::PATCH, &format!("/api/v1/nodes/{address}"))
            .header("content-type", "application/merge-patch+json")
            .body(json!({"spec": {"unschedulable": value}}).to_string());
        let response = self.send(request, &what).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Self::fail(response, &what).await)
        }
    }

    async fn pods_on(&self, address: &str) -> Result<Vec<Pod>, CmError> {
        let what = format!("list pods on {address}");
        let request = self
            .request(reqwest::Method::GET, "/api/v1/pods")
            .query(&[("fieldSelector", format!("spec.nodeName={address}"))]);
        let response = self.send(request, &what).await?;
        if !response.status().is_success() {
            return Err(Self::fail(response, &what).await);
        }
        let list: List<Pod> = response
            .json()
            .await
            .map_err(|e| CmError::api(200, format!("{what}: {e}")))?;
        // DaemonSet pods and mirror (static) pods are not evicted, as kubectl drain.
        Ok(list
            .items
            .into_iter()
            .filter(|p| {
                let owned_by_daemonset = p
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.kind == "DaemonSet");
                let mirror = p
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
                !owned_by_daemonset && !mirror
            })
            .collect())
    }

    /// The Eviction API version the server serves, found as kubectl does
    /// (its discovery document of the `policy` group): `policy/v1` where
    /// served (Kubernetes 1.21 and later), else `policy/v1beta1`.
    async fn eviction_version(&self) -> Result<&'static str, CmError> {
        let what = "discover the policy API group";
        let response = self
            .send(self.request(reqwest::Method::GET, "/apis/policy"), what)
            .await?;
        if !response.status().is_success() {
            return Err(Self::fail(response, what).await);
        }
        let group: Value = response
            .json()
            .await
            .map_err(|e| CmError::api(200, format!("{what}: {e}")))?;
        let served = |v: &str| {
            group["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|g| g["version"] == v)
        };
        if served("v1") {
            Ok("policy/v1")
        } else if served("v1beta1") {
            Ok("policy/v1beta1")
        } else {
            Err(CmError::api(
                404,
                format!("{what}: the API server serves no Eviction API (policy/v1 or v1beta1)"),
            ))
        }
    }
}

/// Why an eviction was refused (429), from the API's answer: the
/// disruption budgets it names (`The disruption budget web needs 1 healthy
/// pods and has 1 currently`), else its message.
fn budget_refusal(body: &Value) -> String {
    let causes: Vec<&str> = body["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["message"].as_str())
        .collect();
    if !causes.is_empty() {
        return causes.join("; ");
    }
    match body["message"].as_str() {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => "a disruption budget forbids it (429)".into(),
    }
}

/// An error and its sources, `outer: inner: ...` (reqwest's own text is
/// only its outermost, e.g. "builder error").
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A duration as `90 s` or `1.5 s`.
fn humanize(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

#[async_trait]
impl ContainerManager for KubernetesManager {
    async fn register_node(&self, address: &str) -> Result<(), CmError> {
        let node = Node {
            metadata: ObjectMeta {
                name: Some(address.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut body = serde_json::to_value(&node).map_err(|e| CmError::config(e.to_string()))?;
        body["kind"] = json!("Node");
        body["apiVersion"] = json!("v1");
        let what = format!("register node {address}");
        let response = self
            .send(
                self.request(reqwest::Method::POST, "/api/v1/nodes")
                    .json(&body),
                &what,
            )
            .await?;
        match response.status().as_u16() {
            200 | 201 | 202 | 409 => Ok(()), // 409: already registered (the kubelet may have done it)
            _ => Err(Self::fail(response, &what).await),
        }
    }

    async fn node_state(&self, address: &str) -> Result<NodeState, CmError> {
        let Some(node) = self.get_node(address).await? else {
            return Ok(NodeState::default());
        };
        let status = node.status.unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let unschedulable = node.spec.and_then(|s| s.unschedulable).unwrap_or(false);
        let mut conditions = BTreeMap::new();
        for c in status.conditions.iter().flatten() {
            conditions.insert(c.type_.clone(), c.status.clone());
        }
        Ok(NodeState {
            registered: true,
            ready,
            unschedulable,
            conditions,
            status: serde_json::to_value(&status).unwrap_or(Value::Null),
        })
    }

    async fn remove_node(&self, address: &str) -> Result<(), CmError> {
        let what = format!("remove node {address}");
        let response = self
            .send(
                self.request(reqwest::Method::DELETE, &format!("/api/v1/nodes/{address}")),
                &what,
            )
            .await?;
        match response.status().as_u16() {
            200 | 202 | 404 => Ok(()),
            _ => Err(Self::fail(response, &what).await),
        }
    }

    async fn cordon(&self, address: &str) -> Result<(), CmError> {
        self.set_unschedulable(address, true).await
    }

    async fn uncordon(&self, address: &str) -> Result<(), CmError> {
        self.set_unschedulable(address, false).await
    }

    async fn evictable_pods(&self, address: &str) -> Result<Vec<String>, CmError> {
        Ok(self
            .pods_on(address)
            .await?
            .into_iter()
            .filter_map(|p| Some(format!("{}/{}", p.metadata.namespace?, p.metadata.name?)))
            .collect())
    }

    async fn drain(&self, address: &str, timeout: Duration) -> Result<usize, CmError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let pods = self.pods_on(address).await?;
        if pods.is_empty() {
            return Ok(0);
        }
        let api_version = self.eviction_version().await?;
        let mut evicted = 0;
        for pod in &pods {
            let (Some(name), Some(namespace)) = (&pod.metadata.name, &pod.metadata.namespace)
            else {
                continue;
            };
            let eviction = Eviction {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(namespace.clone()),
                    ..Default::default()
                },
                ..Default::default()
            };
            let mut body =
                serde_json::to_value(&eviction).map_err(|e| CmError::config(e.to_string()))?;
            body["kind"] = json!("Eviction");
            body["apiVersion"] = json!(api_version);
            let what = format!("evict pod {namespace}/{name}");
            loop {
                let path = format!("/api/v1/namespaces/{namespace}/pods/{name}/eviction");
                let response = self
                    .send(
                        self.request(reqwest::Method::POST, &path).json(&body),
                        &what,
                    )
                    .await?;
                match response.status().as_u16() {
                    200 | 201 | 404 => {
                        evicted += 1;
                        break;
                    }
                    // 429: a disruption budget forbids it now; retry until the time limit.
                    429 => {
                        let body: Value = response.json().await.unwrap_or(Value::Null);
                        if tokio::time::Instant::now() >= deadline {
                            return Err(CmError::api(
                                429,
                                format!(
                                    "drain {address}: pod {namespace}/{name} could not be evicted within {}: {}",
                                    humanize(timeout),
                                    budget_refusal(&body)
                                ),
                            ));
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await
                    }
                    _ => return Err(Self::fail(response, &what).await),
                }
            }
        }
        // Wait for the evicted pods to be gone.
        loop {
            if self.pods_on(address).await?.is_empty() {
                return Ok(evicted);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CmError::api(
                    408,
                    format!("drain {address}: pods still running after {timeout:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
