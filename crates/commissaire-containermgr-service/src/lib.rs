//! The container manager service (`container.*`): talks to the Kubernetes or
//! OpenShift API of a cluster's container manager — register a host as a
//! node, report its status, remove it, and cordon / drain / uncordon it
//! around cluster operations. Managers are built from the stored
//! ContainerManagerConfig records (looked up on each call, so new and
//! changed configurations apply at once; the original only knew those
//! created after it started).
//!
//! | method | params | result |
//! |---|---|---|
//! | `register_node` | `[cm, address]` | `{"registered": true}` |
//! | `node_registered` | `[cm, address]` | `{"registered": bool, "ready": bool}` |
//! | `get_node_status` | `[cm, address]` | the node's status as the manager reports it (-20001 if not registered) |
//! | `remove_node` | `[cm, address]` | `null` |
//! | `cordon` / `uncordon` | `[cm, address]` | `null` |
//! | `drain` | `[cm, address, timeout_seconds?]` | `{"evicted": n}` |
//! | `list_pods` | `[cm, address]` | `{"pods": ["namespace/name", ...]}`: what a drain would evict now (not DaemonSet or mirror pods) |
//!
//! Failures are JSON-RPC -20001 errors whose `data.status` is the API's HTTP
//! status (absent when it could not be reached).

mod kubernetes;
mod trivial;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use commissaire_bus::{Bus, RpcError, codes};
use commissaire_models::{ContainerManagerConfig, ContainerManagerType, Model};
use commissaire_service::{Methods, Service};
use commissaire_storage_client::{StorageCallError, StorageClient};
use serde_json::{Value, json};
use tokio::sync::Mutex;

pub use kubernetes::KubernetesManager;
pub use trivial::TrivialManager;

/// A container manager failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct CmError {
    /// The API's HTTP status, if it answered.
    pub status: Option<u16>,
    /// What went wrong.
    pub message: String,
}

impl CmError {
    /// A bad configuration.
    pub fn config(message: impl Into<String>) -> Self {
        CmError {
            status: None,
            message: format!("container manager configuration: {}", message.into()),
        }
    }
    /// The API could not be reached.
    pub fn unreachable(message: impl Into<String>) -> Self {
        CmError {
            status: None,
            message: message.into(),
        }
    }
    /// The API answered with an error status.
    pub fn api(status: u16, message: impl Into<String>) -> Self {
        CmError {
            status: Some(status),
            message: message.into(),
        }
    }
}

impl From<CmError> for RpcError {
    fn from(e: CmError) -> Self {
        RpcError::new(codes::CONTAINER_MANAGER_ERROR, e.message)
            .with_data(json!({"status": e.status}))
    }
}

/// A node as the manager sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeState {
    /// The node exists.
    pub registered: bool,
    /// Its `Ready` condition is `True`.
    pub ready: bool,
    /// It is cordoned.
    pub unschedulable: bool,
    /// Condition type -> status.
    pub conditions: BTreeMap<String, String>,
    /// The manager's full status document.
    pub status: Value,
}

/// What every kind of container manager does.
#[async_trait]
pub trait ContainerManager: Send + Sync {
    /// Registers `address` as a node (idempotent).
    async fn register_node(&self, address: &str) -> Result<(), CmError>;
    /// The node's state (not registered: `registered == false`).
    async fn node_state(&self, address: &str) -> Result<NodeState, CmError>;
    /// Removes the node (idempotent).
    async fn remove_node(&self, address: &str) -> Result<(), CmError>;
    /// Marks the node unschedulable.
    async fn cordon(&self, address: &str) -> Result<(), CmError>;
    /// Marks the node schedulable again.
    async fn uncordon(&self, address: &str) -> Result<(), CmError>;
    /// Evicts the node's pods and waits until they are gone; returns how many were evicted.
    async fn drain(&self, address: &str, timeout: Duration) -> Result<usize, CmError>;
    /// The pods a drain would evict now (`namespace/name`), for a dry run.
    async fn evictable_pods(&self, address: &str) -> Result<Vec<String>, CmError>;
}

/// Builds the manager a configuration describes.
pub fn build(config: &ContainerManagerConfig) -> Result<Arc<dyn ContainerManager>, CmError> {
    Ok(match config.kind {
        ContainerManagerType::Trivial => Arc::new(TrivialManager::default()),
        ContainerManagerType::Kubernetes | ContainerManagerType::Openshift => {
            Arc::new(KubernetesManager::from_options(&config.options)?)
        }
    })
}

/// A manager and the configuration (JSON) it was built from.
type BuiltManager = (Value, Arc<dyn ContainerManager>);

/// The container manager service.
pub struct ContainerManagerService {
    storage: StorageClient,
    /// Managers by name, with the configuration they were built from.
    managers: Mutex<HashMap<String, BuiltManager>>,
}

impl ContainerManagerService {
    /// A service reading configurations through `bus`.
    pub fn new(bus: Bus) -> Self {
        ContainerManagerService {
            storage: StorageClient::new(bus),
            managers: Mutex::new(HashMap::new()),
        }
    }

    /// The manager named `name`, (re)built when its configuration changed.
    async fn manager(&self, name: &str) -> Result<Arc<dyn ContainerManager>, RpcError> {
        let config: ContainerManagerConfig = match self.storage.get(json!({"name": name})).await {
            Ok(c) => c,
            Err(StorageCallError::NotFound(_)) => {
                return Err(RpcError::new(
                    codes::CONTAINER_MANAGER_ERROR,
                    format!("no container manager named '{name}'"),
                ));
            }
            Err(e) => return Err(RpcError::unavailable(e.to_string())),
        };
        let json = config.to_json();
        let mut managers = self.managers.lock().await;
        if let Some((seen, manager)) = managers.get(name)
            && *seen == json
        {
            return Ok(manager.clone());
        }
        let manager = build(&config)?;
        managers.insert(name.to_string(), (json, manager.clone()));
        Ok(manager)
    }
}

/// The params of every method: `[container_manager, address, timeout]` or
/// `{"container_manager" (or "name"), "address", "timeout"}`; `timeout`
/// (seconds) only matters to `drain`.
#[derive(Debug, serde::Deserialize)]
struct NodeParams {
    /// The container manager's name.
    #[serde(alias = "name")]
    container_manager: String,
    /// The host (node) address.
    address: String,
    /// How long a drain may take, in seconds (default 300).
    #[serde(default)]
    timeout: Option<f64>,
}

impl Service for ContainerManagerService {
    fn name(&self) -> &str {
        "containermgr"
    }

    fn bindings(&self) -> Vec<String> {
        vec!["container.*".into()]
    }

    fn methods() -> Methods<Self> {
        Methods::new()
            .method("register_node", |me: Arc<Self>, p: NodeParams| async move {
                me.manager(&p.container_manager).await?.register_node(&p.address).await?;
                Ok(json!({"registered": true}))
            })
            .method("node_registered", |me: Arc<Self>, p: NodeParams| async move {
                let state = me.manager(&p.container_manager).await?.node_state(&p.address).await?;
                Ok(json!({"registered": state.registered, "ready": state.ready}))
            })
            .method("get_node_status", |me: Arc<Self>, p: NodeParams| async move {
                let state = me.manager(&p.container_manager).await?.node_state(&p.address).await?;
                if !state.registered {
                    return Err(CmError::api(
                        404,
                        format!(
                            "node {} is not registered with '{}'",
                            p.address, p.container_manager
                        ),
                    )
                    .into());
                }
                Ok(json!({
                    "registered": true, "ready": state.ready, "unschedulable": state.unschedulable,
                    "conditions": state.conditions, "status": state.status,
                }))
            })
            .method("remove_node", |me: Arc<Self>, p: NodeParams| async move {
                me.manager(&p.container_manager).await?.remove_node(&p.address).await?;
                Ok(Value::Null)
            })
            .method("cordon", |me: Arc<Self>, p: NodeParams| async move {
                me.manager(&p.container_manager).await?.cordon(&p.address).await?;
                Ok(Value::Null)
            })
            .method("uncordon", |me: Arc<Self>, p: NodeParams| async move {
                me.manager(&p.container_manager).await?.uncordon(&p.address).await?;
                Ok(Value::Null)
            })
            .method("list_pods", |me: Arc<Self>, p: NodeParams| async move {
                let pods = me.manager(&p.container_manager).await?.evictable_pods(&p.address).await?;
                Ok(json!({"pods": pods}))
            })
            .method("drain", |me: Arc<Self>, p: NodeParams| async move {
                let timeout =
                    Duration::from_secs_f64(p.timeout.unwrap_or(300.0).clamp(1.0, 86_400.0));
                let evicted = me.manager(&p.container_manager).await?.drain(&p.address, timeout).await?;
                Ok(json!({"evicted": evicted}))
            })
    }
}
