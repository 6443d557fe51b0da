//! The trivial manager: always succeeds, keeps nodes in memory (tests, and
//! clusters without a real manager).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio::sync::Mutex;

use crate::{CmError, ContainerManager, NodeState};

/// Nodes in memory; each is Ready as soon as it is registered.
#[derive(Default)]
pub struct TrivialManager {
    /// address -> unschedulable
    nodes: Mutex<HashMap<String, bool>>,
}

#[async_trait]
impl ContainerManager for TrivialManager {
    async fn register_node(&self, address: &str) -> Result<(), CmError> {
        self.nodes
            .lock()
            .await
            .entry(address.to_string())
            .or_insert(false);
        Ok(())
    }

    async fn node_state(&self, address: &str) -> Result<NodeState, CmError> {
        Ok(match self.nodes.lock().await.get(address) {
            Some(unschedulable) => NodeState {
                registered: true,
                ready: true,
                unschedulable: *unschedulable,
                conditions: BTreeMap::from([("Ready".to_string(), "True".to_string())]),
                status: json!({"conditions": [{"type": "Ready", "status": "True"}]}),
            },
            None => NodeState::default(),
        })
    }

    async fn remove_node(&self, address: &str) -> Result<(), CmError> {
        self.nodes.lock().await.remove(address);
        Ok(())
    }

    async fn cordon(&self, address: &str) -> Result<(), CmError> {
        self.nodes.lock().await.insert(address.to_string(), true);
        Ok(())
    }

    async fn uncordon(&self, address: &str) -> Result<(), CmError> {
        self.nodes.lock().await.insert(address.to_string(), false);
        Ok(())
    }

    async fn drain(&self, _address: &str, _timeout: Duration) -> Result<usize, CmError> {
        Ok(0)
    }

    async fn evictable_pods(&self, _address: &str) -> Result<Vec<String>, CmError> {
        Ok(Vec::new())
    }
}
