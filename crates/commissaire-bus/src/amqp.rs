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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::{Mutex, oneshot, watch};

use crate::amqp_uri::{AmqpEndpoints, QueueType};
use crate::supervisor::{SupervisorGuard, first_connection, wait_live};
use crate::transport::{Incoming, IncomingStream, Settle, Transport};
use crate::{BusError, redact_uri};

type Pending = Arc<std::sync::Mutex<HashMap<String, oneshot::Sender<Result<Vec<u8>, BusError>>>>>;

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
    pending: Pending,
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
            pending: Arc::default(),
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

/// Keeps a connection up: connect, set up, wait for loss, fail pending calls, retry.
async fn supervise(inner: Arc<Inner>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match open(&inner).await {
            Ok(live) => {
                let live = Arc::new(live);
                {
                    let mut consumers = inner.consumers.lock().await;
                    consumers.retain(|c| !c.tx.is_closed());
                    let mut failed = None;
                    for spec in consumers.iter() {
                        if let Err(e) = start_consumer_within(&inner, &live, spec).await {
                            failed = Some(e);
                            break;
                        }
                    }
                    if let Some(e) = failed {
                        // E.g. a quorum queue whose leader died with the
                        // node we were on: its declaration waits until
                        // a new leader is elected, or for ever. Start over.
                        drop(consumers);
                        tracing::warn!(bus = %live.uri, error = %e, retry_in = ?backoff, "cannot consume on this connection yet; reconnecting");
                        let _ = live
                            .connection
                            .close(0, "consumers not set up".into())
                            .await;
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                    backoff = Duration::from_millis(100);
                    inner
                        .epoch
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    inner.live.send_replace(Some(live.clone()));
                }
                tracing::info!(bus = %live.uri, "connected to the message bus");
                wait_for_loss(&live.connection).await;
                inner.live.send_replace(None);
                tracing::warn!(bus = %live.uri, "lost the message bus connection; reconnecting");
                let _ = live.connection.close(0, "reconnecting".into()).await;
                fail_pending(&inner.pending, "the message bus connection was lost");
                if inner.endpoints.uris.len() > 1 {
                    tokio::time::sleep(CLUSTER_FAILOVER_PAUSE).await;
                }
            }
            Err(e) => {
                tracing::warn!(bus = %inner.endpoints.describe(), error = %e, retry_in = ?backoff, "cannot connect to the message bus");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn fail_pending(pending: &Pending, why: &str) {
    let drained: Vec<_> = pending.lock().expect("pending lock").drain().collect();
    for (_, tx) in drained {
        let _ = tx.send(Err(BusError::Unavailable(why.to_string())));
    }
}

/// Resolves when the connection is no longer usable.
async fn wait_for_loss(connection: &Connection) {
    let mut events = connection.events_listener();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(lapin::Event::Error(e)) => {
                    tracing::debug!(error = %e, "bus connection error");
                    return;
                }
                None => return,
                _ => {}
            },
            _ = tick.tick() => {
                if !connection.status().connected() {
                    return;
                }
            }
        }
    }
}

/// Connects to the first endpoint that answers, starting with the one
/// after the last that was used; returns it with its index.
async fn connect_any(inner: &Inner) -> Result<(Connection, String), lapin::Error> {
    use std::sync::atomic::Ordering;
    let uris = &inner.endpoints.uris;
    let start = inner.next.load(Ordering::SeqCst) % uris.len();
    let mut last = None;
    for i in (0..uris.len()).map(|k| (start + k) % uris.len()) {
        let attempt = tokio::time::timeout(
            Duration::from_secs(10),
            Connection::connect(&uris[i], ConnectionProperties::default()),
        )
        .await
        .map_err(|_| {
            lapin::Error::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect timed out",
            ))
        })
        .and_then(|r| r);
        match attempt {
            Ok(connection) => {
                // After a loss, the next node is tried first.
                inner.next.store(i + 1, Ordering::SeqCst);
                return Ok((connection, redact_uri(&uris[i])));
            }
            Err(e) => {
                if uris.len() > 1 {
                    tracing::debug!(bus = %redact_uri(&uris[i]), error = %e, "cannot connect to this broker; trying the next");
                }
                last = Some(e);
            }
        }
    }
    Err(last.expect("at least one endpoint"))
}

/// The arguments of a shared service queue's declaration.
fn queue_args(queue_type: QueueType) -> FieldTable {
    let mut args = FieldTable::default();
    if queue_type == QueueType::Quorum {
        args.insert(
            "x-queue-type".into(),
            lapin::types::AMQPValue::LongString("quorum".into()),
        );
    }
    args
}

/// Declares the shared durable queue `name` (with `queue_type`) on `channel`.
async fn declare_shared_queue(
    channel: &Channel,
    name: &str,
    queue_type: QueueType,
) -> Result<(), lapin::Error> {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            queue_args(queue_type),
        )
        .await
        .map(|_| ())
}

/// Declares a private queue (exclusive to the connection, deleted with
/// it) with a name the broker chooses; returns the name.
async fn declare_private_queue(channel: &Channel) -> Result<String, lapin::Error> {
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(queue.name().as_str().to_string())
}

/// Opens a connection, declares the exchange and the reply queue.
async fn open(inner: &Arc<Inner>) -> Result<Live, lapin::Error> {
    let (connection, uri) = connect_any(inner).await?;
    let publisher = connection.create_channel().await?;
    publisher
        .exchange_declare(
            inner.exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let replies = connection.create_channel().await?;
    let reply_queue = declare_private_queue(&replies).await?;
    let mut consumer = replies
        .basic_consume(
            reply_queue.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let pending = inner.pending.clone();
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            let Some(id) = delivery.properties.correlation_id().as_ref() else {
                continue;
            };
            let waiter = pending.lock().expect("pending lock").remove(id.as_str());
            if let Some(tx) = waiter {
                let _ = tx.send(Ok(delivery.data));
            }
        }
    });
    Ok(Live {
        uri,
        connection,
        publisher,
        reply_queue,
    })
}

/// After losing a connection to one broker of several (a cluster), how long
/// to wait before connecting to the next. A channel opened on the surviving
/// nodes before they have noticed the loss (and the quorum queues elected
/// new leaders) keeps sending to the dead leader: on RabbitMQ 3.10, requests
/// published on it were never delivered (see `tests/clustered.rs` of
/// commissaire-faults). After this pause they are answered about 2.1 s after
/// the node died.
const CLUSTER_FAILOVER_PAUSE: Duration = Duration::from_secs(2);

/// How long setting up one consumer may take.
const CONSUMER_SETUP_LIMIT: Duration = Duration::from_secs(5);

/// [`start_consumer`] within [`CONSUMER_SETUP_LIMIT`].
async fn start_consumer_within(
    inner: &Inner,
    live: &Live,
    spec: &ConsumerSpec,
) -> Result<(), String> {
    match tokio::time::timeout(CONSUMER_SETUP_LIMIT, start_consumer(inner, live, spec)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "setting up the consumer of {} took over {CONSUMER_SETUP_LIMIT:?}",
            spec.queue.as_deref().unwrap_or("a private queue")
        )),
    }
}

/// Declares and binds a consumer's queue on `live` and forwards its messages.
async fn start_consumer(
    inner: &Inner,
    live: &Live,
    spec: &ConsumerSpec,
) -> Result<(), lapin::Error> {
    let channel = live.connection.create_channel().await?;
    channel
        .basic_qos(spec.prefetch.max(1), BasicQosOptions::default())
        .await?;
    let queue_name = match &spec.queue {
        Some(name) => {
            declare_shared_queue(&channel, name, inner.endpoints.queue_type)
                .await
                .map_err(|e| {
                    tracing::error!(queue = %name, queue_type = ?inner.endpoints.queue_type, error = %e,
                        "cannot declare the service queue (if it exists with another type, delete it or set the bus_uri's queue_type to match)");
                    e
                })?;
            name.clone()
        }
        None => declare_private_queue(&channel).await?,
    };
    for binding in &spec.bindings {
        channel
            .queue_bind(
                queue_name.as_str().into(),
                inner.exchange.as_str().into(),
                binding.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let mut consumer = channel
        .basic_consume(
            queue_name.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let tx = spec.tx.clone();
    tokio::spawn(async move {
        while let Some(delivery) = consumer.next().await {
            let Ok(delivery) = delivery else { break };
            let reply_to = delivery
                .properties
                .reply_to()
                .as_ref()
                .map(|s| s.as_str().to_string());
            let correlation_id = delivery
                .properties
                .correlation_id()
                .as_ref()
                .map(|s| s.as_str().to_string());
            let settle = AmqpSettle {
                channel: channel.clone(),
                acker: delivery.acker,
                reply_to: reply_to.clone(),
                correlation_id,
            };
            let incoming = Incoming::new(
                delivery.routing_key.as_str().to_string(),
                delivery.data,
                reply_to.is_some(),
                Box::new(settle),
            );
            if tx.send(incoming).await.is_err() {
                // Nobody listens any more: drop the channel (unacked messages go back to the queue).
                let _ = channel.close(200, "consumer dropped".into()).await;
                break;
            }
        }
    });
    Ok(())
}

/// Publishes a job durably: its queue declared and bound first, the
/// message persistent and `mandatory`, on a channel of its own in confirm
/// mode, and the broker's confirmation awaited.
async fn publish_job(
    inner: &Inner,
    live: &Live,
    queue: &str,
    bindings: &[&str],
    routing_key: &str,
    body: &[u8],
) -> Result<(), BusError> {
    // A channel per job: jobs are rare, and a failed declaration closes the
    // channel it was made on.
    let channel = live
        .connection
        .create_channel()
        .await
        .map_err(unavailable)?;
    let result = async {
        channel
            .confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await
            .map_err(unavailable)?;
        declare_shared_queue(&channel, queue, inner.endpoints.queue_type)
            .await
            .map_err(|e| {
                BusError::Unavailable(format!("cannot declare the queue '{queue}': {e}"))
            })?;
        for binding in bindings {
            channel
                .queue_bind(
                    queue.into(),
                    inner.exchange.as_str().into(),
                    (*binding).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(unavailable)?;
        }
        let confirm = channel
            .basic_publish(
                inner.exchange.as_str().into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body,
                BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_delivery_mode(2),
            )
            .await
            .map_err(unavailable)?;
        match confirm.await.map_err(unavailable)? {
            lapin::Confirmation::Ack(None) => Ok(()),
            lapin::Confirmation::Ack(Some(_)) => Err(BusError::Unroutable(routing_key.to_string())),
            lapin::Confirmation::Nack(_) => Err(BusError::Unavailable(format!(
                "the broker did not take the job '{routing_key}'"
            ))),
            lapin::Confirmation::NotRequested => Err(BusError::Unavailable(
                "the broker did not confirm the job".into(),
            )),
        }
    }
    .await;
    let _ = channel.close(200, "job published".into()).await;
    result
}

struct AmqpSettle {
    channel: Channel,
    acker: lapin::Acker,
    reply_to: Option<String>,
    correlation_id: Option<String>,
}

#[async_trait]
impl Settle for AmqpSettle {
    async fn settle(self: Box<Self>, reply: Option<Vec<u8>>) -> Result<(), BusError> {
        if let (Some(reply), Some(reply_to)) = (reply, &self.reply_to) {
            let mut props = BasicProperties::default().with_content_type("application/json".into());
            if let Some(id) = &self.correlation_id {
                props = props.with_correlation_id(id.as_str().into());
            }
            self.channel
                .basic_publish(
                    "".into(),
                    reply_to.as_str().into(),
                    BasicPublishOptions::default(),
                    &reply,
                    props,
                )
                .await
                .map_err(unavailable)?;
        }
        self.acker
            .ack(BasicAckOptions::default())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
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
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.inner
            .pending
            .lock()
            .expect("pending lock")
            .insert(id.clone(), tx);
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
            .with_correlation_id(id.as_str().into())
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
            self.inner.pending.lock().expect("pending lock").remove(&id);
            return Err(unavailable(e));
        }
        let outcome = tokio::time::timeout(timeout, rx).await;
        self.inner.pending.lock().expect("pending lock").remove(&id);
        match outcome {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(BusError::Unavailable(
                "the message bus connection was lost".into(),
            )),
            Err(_) => Err(BusError::Timeout {
                routing_key: routing_key.to_string(),
                timeout,
            }),
        }
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
