//! The Commissaire message bus.
//!
//! Services talk JSON-RPC 2.0 over a topic exchange (`commissaire` by
//! default): a request is published with routing key `<service>.<method>`
//! (`storage.get`, `jobs.clusterexec.restart`, ...), consumed from one shared
//! durable queue per service so replicas compete for work, and answered on the
//! caller's own reply queue, matched by correlation id.
//!
//! [`connect`] picks the transport from the URI scheme: `amqp://` / `amqps://`
//! ([`AmqpBus`], RabbitMQ), `redis://` / `rediss://` ([`RedisBus`]) or
//! `inprocess://` ([`InProcessBus`]).

mod amqp;
mod amqp_uri;
mod error;
mod inprocess;
mod jobs;
mod jsonrpc;
mod pending;
mod redis;
pub mod request_id;
mod supervisor;
mod transport;

use std::sync::Arc;
use std::time::Duration;

pub use crate::redis::RedisBus;
pub use amqp::AmqpBus;
pub use amqp_uri::{AmqpEndpoints, QueueType};
pub use error::BusError;
pub use inprocess::InProcessBus;
pub use jobs::{JOB_QUEUES, job_bindings, job_queue};
pub use jsonrpc::{Request, Response, RpcError, codes, method_of};
pub use transport::{
    BUS_REQUEST_SECONDS, DEFAULT_TIMEOUT, Incoming, IncomingStream, Settle, Transport,
    topic_matches,
};

/// The default exchange name.
pub const DEFAULT_EXCHANGE: &str = "commissaire";

/// A shared handle on a bus.
pub type Bus = Arc<dyn Transport>;

/// Connects to the bus named by `uri`, waiting up to `wait` for the first
/// connection (the connection is retried in the background after that).
pub async fn connect(uri: &str, exchange: &str, wait: Duration) -> Result<Bus, BusError> {
    let scheme = uri.split("://").next().unwrap_or_default();
    match scheme {
        "amqp" | "amqps" => Ok(Arc::new(AmqpBus::connect(uri, exchange, wait).await?)),
        "redis" | "rediss" => Ok(Arc::new(RedisBus::connect(uri, exchange, wait).await?)),
        "inprocess" | "memory" => Ok(Arc::new(InProcessBus::new())),
        _ => Err(BusError::UnsupportedUri(redact_uri(uri))),
    }
}

/// `uri` with any password replaced by `***`, for logs and errors.
pub fn redact_uri(uri: &str) -> String {
    if let Some((scheme, rest)) = uri.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
    {
        let user = userinfo.split(':').next().unwrap_or_default();
        return format!("{scheme}://{user}:***@{host}");
    }
    uri.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact_uri("amqp://guest:secret@h:5672/%2f"),
            "amqp://guest:***@h:5672/%2f"
        );
        assert_eq!(super::redact_uri("amqp://h:5672"), "amqp://h:5672");
    }
}
