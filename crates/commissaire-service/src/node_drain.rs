//! Taking a node out of its container manager's scheduling around its
//! restart, upgrade or deploy (as kured and OpenShift's machine-config
//! operator do): cordon, drain, then after the host is back and Ready,
//! uncordon. Used by clusterexec's rolls and by the server's FleetLock
//! endpoints, over the containermgr service on the bus.

use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use commissaire_bus::Bus;
use serde_json::{Value, json};

/// Why a container manager step failed (the reason recorded for the host).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DrainError(pub String);

/// Cordons, drains and uncordons nodes of a cluster's container manager.
///
/// Used only for clusters that have a container manager; `manager` is its
/// name, `address` the host's.
#[async_trait]
pub trait NodeDrainer: Send + Sync {
    /// Whether the node is unschedulable now (cordoned by someone).
    async fn is_cordoned(&self, manager: &str, address: &str) -> Result<bool, DrainError>;
    /// Marks the node unschedulable.
    async fn cordon(&self, manager: &str, address: &str) -> Result<(), DrainError>;
    /// Evicts the node's pods.
    async fn drain(&self, manager: &str, address: &str) -> Result<(), DrainError>;
    /// Waits until the node reports Ready again (after its host came back).
    async fn wait_ready(&self, _manager: &str, _address: &str) -> Result<(), DrainError> {
        Ok(())
    }
    /// Marks the node schedulable again.
    async fn uncordon(&self, manager: &str, address: &str) -> Result<(), DrainError>;
}

/// A [`NodeDrainer`] calling the containermgr service on the bus:
/// `container.cordon`, `container.drain`, `container.uncordon` and
/// `container.get_node_status`, each with params `[manager, address]`.
pub struct BusDrainer {
    bus: Bus,
    call_timeout: Duration,
    drain_timeout: Duration,
}

impl BusDrainer {
    /// A drainer on `bus`: cordon, uncordon and status calls wait up to
    /// `call_timeout`, a drain (and the wait for Ready) up to `drain_timeout`.
    pub fn new(bus: Bus, call_timeout: Duration, drain_timeout: Duration) -> Self {
        BusDrainer {
            bus,
            call_timeout,
            drain_timeout,
        }
    }

    async fn call(
        &self,
        method: &str,
        manager: &str,
        address: &str,
        timeout: Duration,
    ) -> Result<Value, DrainError> {
        self.bus
            .request(
                &format!("container.{method}"),
                json!([manager, address]),
                timeout,
            )
            .await
            .map_err(|e| {
                DrainError(format!(
                    "{method} of node {address} on container manager '{manager}' failed: {e}"
                ))
            })
    }
}

/// Whether a node status says Ready: a `Ready` condition (in `conditions` or
/// `status.conditions`) whose status is `True`; a status without conditions
/// (the trivial manager) counts as Ready.
pub fn node_is_ready(status: &Value) -> bool {
    // containermgr's `get_node_status` answers with a `ready` flag.
    if let Some(ready) = status.get("ready").and_then(Value::as_bool) {
        return ready;
    }
    let conditions = status
        .get("conditions")
        .or_else(|| status.get("status").and_then(|s| s.get("conditions")))
        .and_then(Value::as_array);
    match conditions {
        None => true,
        Some(list) => list.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some("Ready")
                && c.get("status").and_then(Value::as_str) == Some("True")
        }),
    }
}

#[async_trait]
impl NodeDrainer for BusDrainer {
    async fn is_cordoned(&self, manager: &str, address: &str) -> Result<bool, DrainError> {
        let status = self
            .call("get_node_status", manager, address, self.call_timeout)
            .await?;
        Ok(status
            .get("unschedulable")
            .and_then(Value::as_bool)
            .unwrap_or(false))
    }

    async fn cordon(&self, manager: &str, address: &str) -> Result<(), DrainError> {
        self.call("cordon", manager, address, self.call_timeout)
            .await
            .map(drop)
    }

    async fn drain(&self, manager: &str, address: &str) -> Result<(), DrainError> {
        self.call("drain", manager, address, self.drain_timeout)
            .await
            .map(drop)
    }

    async fn wait_ready(&self, manager: &str, address: &str) -> Result<(), DrainError> {
        let deadline = Instant::now() + self.drain_timeout;
        loop {
            let last = match self
                .call("get_node_status", manager, address, self.call_timeout)
                .await
            {
                Ok(status) if node_is_ready(&status) => return Ok(()),
                Ok(_) => format!("node {address} is not Ready"),
                Err(e) => e.0,
            };
            if Instant::now() >= deadline {
                return Err(DrainError(format!(
                    "node {address} did not become Ready within {}s: {last}",
                    self.drain_timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    async fn uncordon(&self, manager: &str, address: &str) -> Result<(), DrainError> {
        self.call("uncordon", manager, address, self.call_timeout)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness() {
        assert!(node_is_ready(&json!({"name": "x"})));
        assert!(node_is_ready(
            &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        ));
        assert!(!node_is_ready(
            &json!({"conditions": [{"type": "Ready", "status": "False"}]})
        ));
    }
}
