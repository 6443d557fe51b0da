//! Errors of bus calls.

use std::time::Duration;

use crate::RpcError;

/// Why a bus call did not produce a result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// The broker cannot be reached now (down, or reconnecting).
    #[error("message bus unavailable: {0}")]
    Unavailable(String),
    /// Nobody answered in time.
    #[error("no reply to '{routing_key}' within {timeout:?}")]
    Timeout {
        /// What was called.
        routing_key: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// The service answered with a JSON-RPC error.
    #[error("{0}")]
    Rpc(#[from] RpcError),
    /// A message could not be read.
    #[error("malformed bus message: {0}")]
    Protocol(String),
    /// The broker took a job but had no queue to put it in.
    #[error("no queue takes '{0}': the job was not queued")]
    Unroutable(String),
    /// The bus URI is malformed (what is wrong, without the password).
    #[error("invalid message bus URI: {0}")]
    InvalidUri(String),
    /// The bus URI names a transport this build does not have.
    #[error(
        "unsupported message bus URI '{0}' (use amqp://, amqps://, redis://, rediss:// or inprocess://)"
    )]
    UnsupportedUri(String),
}

impl BusError {
    /// The JSON-RPC error carried, if the service answered with one.
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            BusError::Rpc(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the failure is the bus's (unreachable, timed out) rather than the service's.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, BusError::Unavailable(_) | BusError::Timeout { .. })
    }
}
