//! The in-process bus: queues are channels inside one process (all-in-one binary, unit tests).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::BusError;
use crate::transport::{Incoming, IncomingStream, Settle, Transport, topic_matches};

/// A shared queue: its bindings and both channel ends.
struct SharedQueue {
    bindings: Vec<String>,
    tx: async_channel::Sender<Incoming>,
    rx: async_channel::Receiver<Incoming>,
}

/// Where a caller waits for its reply.
type ReplyCell = Arc<Mutex<Option<oneshot::Sender<Vec<u8>>>>>;

#[derive(Default)]
struct Router {
    /// Shared queues by name: bindings, and both channel ends (the kept
    /// receiver keeps the queue alive while no worker listens, like a durable queue).
    queues: HashMap<String, SharedQueue>,
    /// Private subscriptions; dropped when their receivers are gone.
    subscriptions: Vec<(Vec<String>, async_channel::Sender<Incoming>)>,
}

/// A bus whose queues live in this process.
#[derive(Clone, Default)]
pub struct InProcessBus {
    router: Arc<Mutex<Router>>,
}

impl InProcessBus {
    /// The shared queue `queue` (created if new) with `bindings` added.
    fn queue(&self, queue: &str, bindings: &[String]) -> IncomingStream {
        let mut router = self.router.lock().expect("bus router lock");
        let entry = router.queues.entry(queue.to_string()).or_insert_with(|| {
            let (tx, rx) = async_channel::unbounded();
            SharedQueue {
                bindings: Vec::new(),
                tx,
                rx,
            }
        });
        for b in bindings {
            if !entry.bindings.contains(b) {
                entry.bindings.push(b.clone());
            }
        }
        entry.rx.clone()
    }

    /// A new, empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Delivers a message to every matching queue; returns how many got it.
    fn route(&self, routing_key: &str, body: &[u8], reply: Option<&ReplyCell>) -> usize {
        let mut router = self.router.lock().expect("bus router lock");
        let mut delivered = 0;
        for SharedQueue { bindings, tx, .. } in router.queues.values() {
            if bindings.iter().any(|b| topic_matches(b, routing_key)) {
                let settle: Box<dyn Settle> = match reply {
                    Some(slot) => Box::new(ReplySlot(slot.clone())),
                    None => Box::new(NoReply),
                };
                if tx
                    .try_send(Incoming::new(
                        routing_key.to_string(),
                        body.to_vec(),
                        reply.is_some(),
                        settle,
                    ))
                    .is_ok()
                {
                    delivered += 1;
                }
            }
        }
        router.subscriptions.retain(|(patterns, tx)| {
            if tx.is_closed() {
                return false;
            }
            if patterns.iter().any(|p| topic_matches(p, routing_key)) {
                let _ = tx.try_send(Incoming::new(
                    routing_key.to_string(),
                    body.to_vec(),
                    false,
                    Box::new(NoReply),
                ));
            }
            true
        });
        delivered
    }
}

struct NoReply;

#[async_trait]
impl Settle for NoReply {
    async fn settle(self: Box<Self>, _reply: Option<Vec<u8>>) -> Result<(), BusError> {
        Ok(())
    }
}

/// The caller's reply slot; the first message settled with a reply fills it.
struct ReplySlot(ReplyCell);

#[async_trait]
impl Settle for ReplySlot {
    async fn settle(self: Box<Self>, reply: Option<Vec<u8>>) -> Result<(), BusError> {
        if let Some(reply) = reply
            && let Some(tx) = self.0.lock().expect("reply slot lock").take()
        {
            let _ = tx.send(reply);
        }
        Ok(())
    }
}

#[async_trait]
impl Transport for InProcessBus {
    async fn call_raw(
        &self,
        routing_key: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, BusError> {
        let (tx, rx) = oneshot::channel();
        let slot = Arc::new(Mutex::new(Some(tx)));
        if self.route(routing_key, &body, Some(&slot)) == 0 {
            return Err(BusError::Unavailable(format!(
                "no service consumes '{routing_key}'"
            )));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(BusError::Unavailable(format!(
                "'{routing_key}' was dropped without a reply"
            ))),
            Err(_) => Err(BusError::Timeout {
                routing_key: routing_key.to_string(),
                timeout,
            }),
        }
    }

    async fn publish_raw(&self, routing_key: &str, body: Vec<u8>) -> Result<(), BusError> {
        if let Some((queue, bindings)) = crate::job_queue(routing_key) {
            // A job waits in its queue even before its service consumes.
            let bindings: Vec<String> = bindings.iter().map(|b| b.to_string()).collect();
            drop(self.queue(queue, &bindings));
        }
        self.route(routing_key, &body, None);
        Ok(())
    }

    async fn consume(
        &self,
        queue: &str,
        bindings: &[String],
        _prefetch: u16,
    ) -> Result<IncomingStream, BusError> {
        Ok(self.queue(queue, bindings))
    }

    async fn subscribe(&self, patterns: &[String]) -> Result<IncomingStream, BusError> {
        let (tx, rx) = async_channel::unbounded();
        self.router
            .lock()
            .expect("bus router lock")
            .subscriptions
            .push((patterns.to_vec(), tx));
        Ok(rx)
    }

    fn describe(&self) -> String {
        "inprocess://".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn request_reply_and_subscriptions() {
        let bus = InProcessBus::new();
        let work = bus.consume("echo", &["echo.*".into()], 1).await.unwrap();
        let events = bus.subscribe(&["notify.#".into()]).await.unwrap();
        tokio::spawn(async move {
            while let Ok(msg) = work.recv().await {
                let req: crate::Request = serde_json::from_slice(&msg.body).unwrap();
                let resp = crate::Response::success(req.id.unwrap(), req.params);
                msg.finish(Some(serde_json::to_vec(&resp).unwrap()))
                    .await
                    .unwrap();
            }
        });
        let got = bus
            .request("echo.say", json!({"a": 1}), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(got, json!({"a": 1}));
        bus.publish("notify.storage.Host.created", &json!({"x": 1}))
            .await
            .unwrap();
        let ev = events.recv().await.unwrap();
        assert_eq!(ev.routing_key, "notify.storage.Host.created");
        let err = bus
            .request("nobody.home", json!({}), Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(err.is_unavailable(), "{err}");
    }
}
