//! Errors of the clusterexec service.

use commissaire_bus::BusError;
use commissaire_storage_client::StorageCallError;

/// Why clusterexec could not do something.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The configuration is not usable; names the member at fault.
    #[error("invalid clusterexec configuration: {field}: {reason}")]
    Config {
        /// The configuration member.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A storage call failed (other than a compare-and-swap conflict).
    #[error("storage: {0}")]
    Storage(#[from] StorageCallError),
    /// A bus call failed.
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    /// A stored operation record could not be understood.
    #[error("the stored {model} record is not understood: {reason}")]
    Decode {
        /// The model type name (`ClusterRestart`, ...).
        model: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// This replica no longer owns the operation (another replica took it
    /// over, the record changed hands or went away, or the lease could not be
    /// renewed in time); the operation must not be touched any more.
    #[error("lost the lease on the {op} of cluster '{cluster}': {why}")]
    LeaseLost {
        /// `restart`, `upgrade` or `deploy`.
        op: &'static str,
        /// The cluster.
        cluster: String,
        /// What happened.
        why: String,
    },
}

impl ExecError {
    pub(crate) fn config(field: &str, reason: impl Into<String>) -> Self {
        ExecError::Config {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}
