//! Why a storage call failed.

use commissaire_bus::{BusError, codes};
use serde_json::Value;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageCallError {
    /// No such record.
    #[error("{0}")]
    NotFound(String),
    /// A compare-and-swap lost: what is stored is not what the caller
    /// expected.
    #[error("{message}")]
    Conflict {
        /// The storage service's message.
        message: String,
        /// What is stored now, when the service said (`None`: nothing is).
        stored: Option<Value>,
    },
    /// The bus or the service failed.
    #[error(transparent)]
    Bus(BusError),
    /// The service's answer is not the expected model.
    #[error("unexpected answer from storage: {0}")]
    Decode(String),
}

impl StorageCallError {
    /// Whether a compare-and-swap lost.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StorageCallError::Conflict { .. })
    }

    /// Whether storage is unavailable right now (the bus, the storage
    /// service or its store is down, or the call timed out): the same call
    /// may succeed later. A timed-out write may have been carried out, so
    /// callers that retry writes use compare-and-swap.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageCallError::Bus(b)
            if b.is_unavailable() || b.rpc().is_some_and(|r| r.code == codes::UNAVAILABLE))
    }
}

/// The storage service's error codes, typed: a missing record is
/// [`StorageCallError::NotFound`], a lost compare-and-swap
/// [`StorageCallError::Conflict`].
impl From<BusError> for StorageCallError {
    fn from(e: BusError) -> Self {
        match e.rpc() {
            Some(rpc) if rpc.code == codes::STORAGE_LOOKUP_ERROR => {
                StorageCallError::NotFound(rpc.message.clone())
            }
            Some(rpc) if rpc.code == codes::CONFLICT => StorageCallError::Conflict {
                message: rpc.message.clone(),
                stored: rpc
                    .data
                    .as_ref()
                    .and_then(|d| d.get("stored"))
                    .filter(|v| !v.is_null())
                    .cloned(),
            },
            _ => StorageCallError::Bus(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use commissaire_bus::RpcError;
    use serde_json::json;

    use super::*;

    #[test]
    fn the_storage_service_s_codes_become_typed_errors() {
        let lookup = BusError::Rpc(RpcError::new(codes::STORAGE_LOOKUP_ERROR, "no host x"));
        assert!(
            matches!(StorageCallError::from(lookup), StorageCallError::NotFound(m) if m == "no host x")
        );
        let mut lost = RpcError::new(codes::CONFLICT, "changed");
        lost.data = Some(json!({"stored": {"address": "x"}}));
        match StorageCallError::from(BusError::Rpc(lost)) {
            StorageCallError::Conflict { message, stored } => {
                assert_eq!(message, "changed");
                assert_eq!(stored, Some(json!({"address": "x"})));
            }
            other => panic!("{other:?}"),
        }
        let down = StorageCallError::from(BusError::Unavailable("reconnecting".into()));
        assert!(down.is_unavailable() && !down.is_conflict());
        let timeout = StorageCallError::from(BusError::Timeout {
            routing_key: "storage.get".into(),
            timeout: std::time::Duration::from_secs(1),
        });
        assert!(timeout.is_unavailable(), "a timeout is worth another try");
    }
}
