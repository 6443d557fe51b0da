//! Why a command could not run on a stored host.

use commissaire_ssh::SshError;
use commissaire_storage_client::StorageCallError;

/// Why a command could not run on a stored host. The messages are a host's
/// failure reasons.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The host has no stored credentials (it was deleted).
    #[error("host {address} has no stored SSH credentials")]
    NoCredentials {
        /// The host.
        address: String,
    },
    /// The stored private key cannot be used.
    #[error("the SSH key of host {address} cannot be used: {reason}")]
    BadKey {
        /// The host.
        address: String,
        /// Why (never the key itself).
        reason: String,
    },
    /// At a first contact after the operator accepted a key by its
    /// fingerprint, the host showed another one.
    #[error(
        "host {address} shows SSH host key {shown}, not the accepted {accepted}; \
         accept the key it shows if it is the right one"
    )]
    NotTheAcceptedKey {
        /// The host.
        address: String,
        /// The fingerprint the operator accepted.
        accepted: String,
        /// The fingerprint(s) of the key the host showed.
        shown: String,
    },
    /// SSH could not connect or run the command.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// Storage could not be read or written.
    #[error("storage: {0}")]
    Storage(#[from] StorageCallError),
}

impl AccessError {
    /// Whether the host's key is not the pinned (or accepted) one.
    pub fn is_host_key_changed(&self) -> bool {
        matches!(
            self,
            AccessError::Ssh(SshError::HostKeyChanged { .. })
                | AccessError::NotTheAcceptedKey { .. }
        )
    }
}
