//! The transport abstraction every bus implementation provides.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::{BusError, Request, Response, method_of};

/// The histogram of JSON-RPC round trips (documented with the other
/// metric names in `commissaire_service::metrics::names`).
pub const BUS_REQUEST_SECONDS: &str = "commissaire_bus_request_duration_seconds";

/// How long a caller waits for a reply unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What finishing an [`Incoming`] message does: send the reply (when one is
/// expected) and acknowledge the message.
#[async_trait]
pub trait Settle: Send {
    /// Sends `reply` to the caller if it waits for one, then acknowledges.
    async fn settle(self: Box<Self>, reply: Option<Vec<u8>>) -> Result<(), BusError>;
}

/// A message taken from a queue.
pub struct Incoming {
    /// The routing key it was published with.
    pub routing_key: String,
    /// Its body (JSON).
    pub body: Vec<u8>,
    /// Whether the sender waits for a reply.
    pub wants_reply: bool,
    settle: Box<dyn Settle>,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("routing_key", &self.routing_key)
            .field("len", &self.body.len())
            .field("wants_reply", &self.wants_reply)
            .finish()
    }
}

impl Incoming {
    /// Wraps a message and what settles it.
    pub fn new(
        routing_key: String,
        body: Vec<u8>,
        wants_reply: bool,
        settle: Box<dyn Settle>,
    ) -> Self {
        Incoming {
            routing_key,
            body,
            wants_reply,
            settle,
        }
    }

    /// Replies (if a reply is expected and given) and acknowledges the message.
    /// A message dropped without `finish` is redelivered by brokers that support it.
    pub async fn finish(self, reply: Option<Vec<u8>>) -> Result<(), BusError> {
        let reply = if self.wants_reply { reply } else { None };
        self.settle.settle(reply).await
    }
}

/// A stream of incoming messages; clone it to let several workers share it.
pub type IncomingStream = async_channel::Receiver<Incoming>;

/// A message bus: request/reply, publish, and consuming queues.
///
/// Implementations: [`crate::AmqpBus`] (RabbitMQ) and [`crate::InProcessBus`].
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Publishes `body` with `routing_key` and waits up to `timeout` for the
    /// raw reply body.
    async fn call_raw(
        &self,
        routing_key: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, BusError>;

    /// Publishes `body` with `routing_key`; nobody replies.
    async fn publish_raw(&self, routing_key: &str, body: Vec<u8>) -> Result<(), BusError>;

    /// Consumes the shared, durable queue `queue`, bound to `bindings`
    /// (topic patterns). Every consumer of the same queue competes for its
    /// messages; `prefetch` bounds the messages in flight for this consumer.
    /// Consuming goes on across reconnections until the stream is dropped.
    async fn consume(
        &self,
        queue: &str,
        bindings: &[String],
        prefetch: u16,
    ) -> Result<IncomingStream, BusError>;

    /// Subscribes a private queue, which gets a copy of every message whose
    /// key matches one of `patterns`, for as long as the stream is kept.
    async fn subscribe(&self, patterns: &[String]) -> Result<IncomingStream, BusError>;

    /// Where this bus goes, without credentials, for logs.
    fn describe(&self) -> String;

    /// Which connection the bus is on: a number that changes on every
    /// (re)connection, `None` while disconnected. Messages published while a
    /// subscriber was reconnecting are lost to it, so a cache fed by
    /// notifications trusts only what it learnt on the current connection.
    fn connection_epoch(&self) -> Option<u64> {
        Some(0)
    }

    /// Sends a JSON-RPC request to `routing_key` and returns its result.
    async fn request(
        &self,
        routing_key: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, BusError> {
        let request = Request::new(method_of(routing_key), params);
        let body = serde_json::to_vec(&request).map_err(|e| BusError::Protocol(e.to_string()))?;
        let started = std::time::Instant::now();
        let result = async {
            let reply = self.call_raw(routing_key, body, timeout).await?;
            let response: Response = serde_json::from_slice(&reply)
                .map_err(|e| BusError::Protocol(format!("reply to {routing_key}: {e}")))?;
            Ok(response.into_result()?)
        }
        .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(BusError::Timeout { .. }) => "timeout",
            Err(e) if e.is_unavailable() => "unavailable",
            Err(_) => "error",
        };
        metrics::histogram!(BUS_REQUEST_SECONDS, "routing_key" => routing_key.to_string(), "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Sends a JSON-RPC notification (no reply) to `routing_key`.
    async fn notify(&self, routing_key: &str, params: Value) -> Result<(), BusError> {
        let request = Request::notification(method_of(routing_key), params);
        let body = serde_json::to_vec(&request).map_err(|e| BusError::Protocol(e.to_string()))?;
        self.publish_raw(routing_key, body).await
    }

    /// Publishes an event body as is (e.g. a storage notification).
    async fn publish(&self, routing_key: &str, body: &Value) -> Result<(), BusError> {
        let body = serde_json::to_vec(body).map_err(|e| BusError::Protocol(e.to_string()))?;
        self.publish_raw(routing_key, body).await
    }
}

/// Whether `key` matches the AMQP topic `pattern` (`*` one word, `#` zero or more).
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match p.split_first() {
            None => k.is_empty(),
            Some((&"#", rest)) => (0..=k.len()).any(|i| go(rest, &k[i..])),
            Some((&"*", rest)) => !k.is_empty() && go(rest, &k[1..]),
            Some((word, rest)) => k.first() == Some(word) && go(rest, &k[1..]),
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    go(&p, &k)
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn topic_patterns() {
        assert!(topic_matches("storage.*", "storage.get"));
        assert!(!topic_matches("storage.*", "storage.get.x"));
        assert!(topic_matches(
            "notify.storage.*.*",
            "notify.storage.Host.created"
        ));
        assert!(topic_matches("notify.#", "notify.storage.Host.created"));
        assert!(topic_matches("#", "a"));
        assert!(topic_matches(
            "jobs.clusterexec.*",
            "jobs.clusterexec.restart"
        ));
        assert!(!topic_matches("jobs.clusterexec.*", "jobs.investigate"));
        assert!(topic_matches("a.#.b", "a.b"));
        assert!(!topic_matches("a", "b"));
    }
}
