//! The store handler trait and the key layout every handler shares.

use async_trait::async_trait;
use commissaire_models::ModelKind;
use serde_json::Value;

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored value is not JSON.
    #[error("stored value at {key} is not JSON: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// The parse error.
        reason: String,
    },
    /// The backend failed otherwise.
    #[error("store error: {0}")]
    Backend(String),
}

/// Whether a write created a new record or replaced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// There was no record at the key.
    Created,
    /// A record was replaced.
    Updated,
}

/// A place records are kept: etcd, redb, ... Keys are relative paths such as
/// `hosts/10.0.0.1` (see [`record_key`]); values are JSON documents.
#[async_trait]
pub trait StoreHandler: Send + Sync + 'static {
    /// The handler type (`etcd`, `redb`).
    fn handler_type(&self) -> &'static str;

    /// The value at `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Value>, StoreError>;

    /// Writes `value` at `key`.
    async fn put(&self, key: &str, value: &Value) -> Result<Written, StoreError>;

    /// Removes `key`, returning what was there.
    async fn delete(&self, key: &str) -> Result<Option<Value>, StoreError>;

    /// Every value whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<Value>, StoreError>;

    /// Atomically writes `new` at `key` only if what is stored equals
    /// `expected` (`None`: nothing stored). Returns what was stored when the
    /// comparison failed.
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&Value>,
        new: &Value,
    ) -> Result<Result<Written, Option<Value>>, StoreError>;
}

/// The collection (first key segment) of a storable kind, or `None`.
pub fn collection(kind: ModelKind) -> Option<&'static str> {
    Some(match kind {
        ModelKind::Host => "hosts",
        ModelKind::HostCreds => "hostcreds",
        ModelKind::Cluster => "clusters",
        ModelKind::Network => "networks",
        ModelKind::ContainerManagerConfig => "container_managers",
        ModelKind::WatcherRecord => "watcher",
        ModelKind::Investigation => "investigations",
        ModelKind::AuditEntry => "audit",
        ModelKind::ClusterLock => "reboot_locks",
        ModelKind::ClusterDeploy | ModelKind::ClusterRestart | ModelKind::ClusterUpgrade => {
            "cluster"
        }
        _ => return None,
    })
}

/// The key of a record: `hosts/<address>`, `clusters/<name>`,
/// `cluster/<name>/restart`, ... (under `/commissaire/` in etcd, as the original laid them out).
pub fn record_key(kind: ModelKind, primary_key: &str) -> Option<String> {
    let collection = collection(kind)?;
    Some(match kind {
        ModelKind::ClusterDeploy => format!("{collection}/{primary_key}/deploy"),
        ModelKind::ClusterRestart => format!("{collection}/{primary_key}/restart"),
        ModelKind::ClusterUpgrade => format!("{collection}/{primary_key}/upgrade"),
        _ => format!("{collection}/{primary_key}"),
    })
}

/// The key prefix listing every record of an item kind (`hosts/`).
pub fn list_prefix(kind: ModelKind) -> Option<String> {
    match kind {
        ModelKind::ClusterDeploy | ModelKind::ClusterRestart | ModelKind::ClusterUpgrade => None,
        _ => collection(kind).map(|c| format!("{c}/")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout() {
        assert_eq!(
            record_key(ModelKind::Host, "10.0.0.1").unwrap(),
            "hosts/10.0.0.1"
        );
        assert_eq!(
            record_key(ModelKind::ClusterRestart, "c").unwrap(),
            "cluster/c/restart"
        );
        assert_eq!(
            record_key(ModelKind::ContainerManagerConfig, "k").unwrap(),
            "container_managers/k"
        );
        assert_eq!(list_prefix(ModelKind::Cluster).unwrap(), "clusters/");
        assert!(record_key(ModelKind::Hosts, "x").is_none());
    }
}
