//! The AMQP 0-9-1 transport (RabbitMQ, via lapin).
//!
//! One connection per [`AmqpBus`], kept alive by a supervisor task that
//! reconnects with exponential backoff. Each connection gets one exclusive
//! reply queue for the whole client; requests carry a `correlation_id` and
//! wait on a table of pending calls. Consumers are remembered and declared
//! again on every new connection. While the connection is down, calls fail at
//! once with [`BusError::Unavailable`] and calls in flight when it dropped get
//! that error too, so nobody hangs. A request expires (AMQP `expiration`)
//! when its caller stops waiting: nobody carries out a call whose caller was
//! told it failed. Notifications (jobs) do not expire.
//!
//! `bus_uri` may name several brokers (a RabbitMQ cluster's nodes, see
//! [`AmqpEndpoints`]): the supervisor connects to the first that answers,
//! and after a connection loss tries the next one first.
//!
//! **Jobs are durable** (`jobs.*`, see [`crate::job_queue`]): the publisher
//! declares the job's queue and bindings (the consuming service may not be
//! running), publishes it persistent and `mandatory` on a channel in
//! confirm mode, and waits for the broker's confirmation: a job the broker
//! did not take is an error to the caller ([`BusError::Unavailable`], or
//! [`BusError::Unroutable`] when no queue took it), never silence.
//! Announcements (`notify.*`) stay fire-and-forget. Shared service queues
//! are classic or quorum queues (`queue_type`, [`QueueType`]).

mod connection;
mod consumer;
mod publish;
mod queues;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Channel, Connection};
use tokio::sync::{Mutex, watch};

use crate::BusError;
use crate::amqp_uri::AmqpEndpoints;
use crate::pending::PendingCalls;
use crate::supervisor::{SupervisorGuard, first_connection, wait_live};
use crate::transport::{Incoming, IncomingStream, Transport};

use connection::supervise;
use consumer::start_consumer_within;
use publish::publish_job;

/// A live connection and what was set up on it.
struct Live {
    /// The broker it is connected to (password hidden).
    uri: String,
    connection: Connection,
    publisher: Channel,
    reply_queue: String,
}

/// A consumer to (re)establish on every connection.
struct ConsumerSpec {
    /// Shared durable queue name, or `None` for a private exclusive queue.
    queue: Option<String>,
    bindings: Vec<String>,
    prefetch: u16,
    tx: async_channel::Sender<Incoming>,
}

struct Inner {
    endpoints: AmqpEndpoints,
    /// The endpoint the supervisor tries first next time.
    next: std::sync::atomic::AtomicUsize,
    exchange: String,
    live: watch::Sender<Option<Arc<Live>>>,
    /// Counts connections; see [`Transport::connection_epoch`].
    epoch: std::sync::atomic::AtomicU64,
    pending: PendingCalls,
    consumers: Mutex<Vec<ConsumerSpec>>,
}

/// A RabbitMQ bus client that survives connection loss.
#[derive(Clone)]
pub struct AmqpBus {
    inner: Arc<Inner>,
    _supervisor: Arc<SupervisorGuard>,
}

impl AmqpBus {
    /// Connects to `uri` using topic exchange `exchange`. Waits up to `wait`
    /// for the first connection; reconnects in the background for ever after.
    pub async fn connect(uri: &str, exchange: &str, wait: Duration) -> Result<Self, BusError> {
        let endpoints = AmqpEndpoints::parse(uri)?;
        let described = endpoints.describe();
        let (live, watcher) = watch::channel(None);
        let inner = Arc::new(Inner {
            endpoints,
            next: Default::default(),
            exchange: exchange.to_string(),
            live,
            epoch: Default::default(),
            pending: PendingCalls::default(),
            consumers: Mutex::new(Vec::new()),
        });
        let supervisor = tokio::spawn(supervise(inner.clone()));
        let bus = AmqpBus {
            inner,
            _supervisor: Arc::new(SupervisorGuard(supervisor)),
        };
        first_connection(watcher, wait, &described).await?;
        Ok(bus)
    }

    /// Whether the bus is connected right now.
    pub fn is_connected(&self) -> bool {
        self.inner.live.borrow().is_some()
    }

    /// Waits until the bus is connected (after a reconnect), up to `wait`.
    pub async fn wait_connected(&self, wait: Duration) -> bool {
        wait_live(&mut self.inner.live.subscribe(), wait).await
    }

    fn current(&self) -> Result<Arc<Live>, BusError> {
        self.inner.live.borrow().clone().ok_or_else(|| {
            BusError::Unavailable(format!(
                "reconnecting to {}",
                self.inner.endpoints.describe()
            ))
        })
    }

    async fn add_consumer(
        &self,
        queue: Option<String>,
        bindings: &[String],
        prefetch: u16,
    ) -> Result<IncomingStream, BusError> {
        let (tx, rx) = async_channel::bounded(prefetch.max(1) as usize);
        let spec = ConsumerSpec {
            queue,
            bindings: bindings.to_vec(),
            prefetch,
            tx,
        };
        let mut consumers = self.inner.consumers.lock().await;
        let live = self.current()?;
        start_consumer_within(&self.inner, &live, &spec)
            .await
            .map_err(|e| BusError::Unavailable(format!("cannot consume: {e}")))?;
        consumers.push(spec);
        Ok(rx)
    }
}

fn unavailable(e: lapin::Error) -> BusError {
    BusError::Unavailable(e.to_string())
}

#[async_trait]
impl Transport for AmqpBus {
    async fn call_raw(
        &self,
        routing_key: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, BusError> {
        let live = self.current()?;
        let call = self.inner.pending.open();
        // The request expires with the caller's patience: a service that was
        // down must not carry it out later (say, a save the caller was told
        // had failed, replayed minutes after the caller moved on).
        let expiration = timeout
            .as_millis()
            .clamp(1, u128::from(u32::MAX))
            .to_string();
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_reply_to(live.reply_queue.as_str().into())
            .with_correlation_id(call.id.as_str().into())
            .with_expiration(expiration.as_str().into());
        let published = live
            .publisher
            .basic_publish(
                self.inner.exchange.as_str().into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                &body,
                props,
            )
            .await;
        if let Err(e) = published {
            self.inner.pending.forget(&call);
            return Err(unavailable(e));
        }
        self.inner.pending.wait(call, routing_key, timeout).await
    }

    async fn publish_raw(&self, routing_key: &str, body: Vec<u8>) -> Result<(), BusError> {
        let live = self.current()?;
        if let Some((queue, bindings)) = crate::job_queue(routing_key) {
            return publish_job(&self.inner, &live, queue, bindings, routing_key, &body).await;
        }
        live.publisher
            .basic_publish(
                self.inner.exchange.as_str().into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default().with_content_type("application/json".into()),
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn consume(
        &self,
        queue: &str,
        bindings: &[String],
        prefetch: u16,
    ) -> Result<IncomingStream, BusError> {
        self.add_consumer(Some(queue.to_string()), bindings, prefetch)
            .await
    }

    async fn subscribe(&self, patterns: &[String]) -> Result<IncomingStream, BusError> {
        self.add_consumer(None, patterns, 100).await
    }

    fn connection_epoch(&self) -> Option<u64> {
        let live = self.inner.live.borrow();
        live.as_ref()
            .map(|_| self.inner.epoch.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn describe(&self) -> String {
        self.inner.endpoints.describe()
    }
}
