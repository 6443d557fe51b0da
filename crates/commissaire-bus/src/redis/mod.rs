//! The Redis transport (`redis://`, `rediss://`).
//!
//! Redis has no topic exchange, so this transport builds AMQP's semantics
//! from lists, sets and pub/sub. Every key is namespaced by the exchange
//! name; with `P = commissaire:{exchange}`:
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `P:bindings` | set | the bindings registry: members are JSON `["queue", "pattern"]` |
//! | `P:queue:{queue}` | list | a shared, durable work queue (`LPUSH` in, `BLMOVE` out) |
//! | `P:processing:{queue}:{consumer}` | list | what one consumer took but did not acknowledge yet |
//! | `P:consumers:{queue}` | set | the consumers that ever took from the queue (ids) |
//! | `P:alive:{consumer}` | string, TTL | a consumer's heartbeat |
//! | `P:reply:{client}` | list, TTL | one reply list per client; replies carry the correlation id |
//! | `P:topic:{routing key}` | pub/sub channel | copies for subscriptions (`PSUBSCRIBE`) |
//!
//! Every message is a small JSON envelope holding the JSON body as is plus
//! its metadata: `{"id", "routing_key", "reply_to", "correlation_id", "body"}`
//! (a reply is `{"correlation_id", "body"}`), so other clients can read it.
//!
//! **Publishing** pushes the envelope onto every work queue with a binding
//! that matches the routing key (the registry is cached and re-read when it
//! is more than a second old, or when a consumer is registered through this
//! client) and publishes it on the key's channel, in one `MULTI`/`EXEC`.
//! A request whose key no queue is bound to fails at once with
//! [`BusError::Unavailable`], since nobody could ever answer it.
//!
//! **Jobs** (`jobs.*`, see [`crate::job_queue`]): the publisher adds the
//! job queue's bindings to the registry first, so a job announced before its
//! service ever ran waits in its queue. What survives a Redis restart is
//! what Redis persisted: with `appendonly yes` and `appendfsync everysec`
//! (recommended for the bus) at most the last second of writes; with the
//! default RDB snapshots, everything since the last snapshot. Commissaire's
//! jobs are also stored records, so a lost job is only delayed.
//!
//! **Consuming** is reliable: `BLMOVE` moves a message from the queue to the
//! consumer's processing list, and [`Incoming::finish`] sends the reply and
//! removes it from there (`LREM`) in one transaction. A message dropped
//! without `finish`, or whose settling failed, goes back to the head of the
//! queue. Each consumer refreshes a heartbeat key (TTL 15 s, every 5 s); when
//! a consumer starts, and on every heartbeat, it moves the processing lists
//! of consumers whose heartbeat expired (crashed, killed) back onto the
//! queue, so their unacknowledged messages are delivered again. `prefetch`
//! bounds the unacknowledged messages a consumer holds. A consumer stops
//! (and releases its blocking connection) within a second of its stream
//! being dropped.
//!
//! **Connections**: one multiplexed connection for commands and one
//! blocking connection that `BRPOP`s the client's reply list, kept up by a
//! supervisor that reconnects with exponential backoff. While it is down,
//! calls fail at once with [`BusError::Unavailable`], and calls waiting for
//! a reply when it dropped fail with that error too. Each consumer has its
//! own blocking connection and each subscription its own pub/sub connection;
//! both reconnect on their own. Messages published on a channel while a
//! subscription is reconnecting are lost (as with AMQP's private queues).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

mod consumer;
mod envelope;
mod keys;
mod subscription;

use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::{MultiplexedConnection, PubSub};
use redis::{AsyncConnectionConfig, Client, RedisError};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};

use crate::pending::PendingCalls;
use crate::supervisor::{SupervisorGuard, first_connection, wait_live};
use crate::transport::{Incoming, IncomingStream, Settle, Transport, topic_matches};
use crate::{BusError, redact_uri};
use consumer::*;
use envelope::*;
use keys::Keys;
use subscription::*;

/// How long a consumer's heartbeat lives without being refreshed.
const HEARTBEAT_TTL: Duration = Duration::from_secs(15);
/// How often a consumer refreshes its heartbeat (and recovers gone consumers' messages).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// How long blocking pops wait on the server before looking around (seconds).
const BLOCK_SECS: u64 = 1;
/// How long an unread reply list lives.
const REPLY_TTL_SECS: u64 = 60;
/// How old the cached bindings registry may get.
const BINDINGS_MAX_AGE: Duration = Duration::from_secs(1);
/// Connection and (non-blocking) command timeout.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// First and longest wait between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How many replies are taken at once once one arrived.
const REPLY_BATCH: usize = 100;
/// How many subscription copies may wait for the subscriber.
const SUBSCRIPTION_BUFFER: usize = 1000;

/// Moves one message from a processing list (KEYS[1]) back to the head of its
/// queue (KEYS[2]), if it is still there.
const REQUEUE_SCRIPT: &str = "if redis.call('LREM', KEYS[1], 1, ARGV[1]) > 0 then \
     redis.call('RPUSH', KEYS[2], ARGV[1]) return 1 end return 0";

/// Whether `e` means the connection it came from is unusable.
fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() || e.is_timeout()
}

/// A live command connection.
struct Live {
    con: MultiplexedConnection,
    /// Woken when a command found the connection broken.
    broken: Notify,
}

/// The cached bindings registry.
#[derive(Default)]
struct BindingsCache {
    fetched: Option<Instant>,
    /// (queue, pattern)
    bindings: Vec<(String, String)>,
}

struct Inner {
    client: Client,
    uri: String,
    exchange: String,
    keys: Keys,
    reply_key: String,
    live: watch::Sender<Option<Arc<Live>>>,
    /// Counts connections; see [`Transport::connection_epoch`].
    epoch: std::sync::atomic::AtomicU64,
    pending: PendingCalls,
    bindings: tokio::sync::Mutex<BindingsCache>,
}

impl Inner {
    fn current(&self) -> Result<Arc<Live>, BusError> {
        self.live.borrow().clone().ok_or_else(|| {
            BusError::Unavailable(format!("reconnecting to {}", redact_uri(&self.uri)))
        })
    }

    /// Turns a failed command into a bus error, flagging the connection when
    /// it is the connection that failed.
    fn failed(&self, live: &Live, e: RedisError) -> BusError {
        if is_connection_error(&e) {
            live.broken.notify_one();
        }
        BusError::Unavailable(format!("redis ({}): {e}", redact_uri(&self.uri)))
    }

    /// The queues bound to `routing_key`. With `recheck`, an empty answer from
    /// the cache is checked against the registry itself.
    async fn targets(
        &self,
        live: &Live,
        routing_key: &str,
        recheck: bool,
    ) -> Result<Vec<String>, BusError> {
        let mut cache = self.bindings.lock().await;
        let mut fresh = false;
        if cache
            .fetched
            .is_none_or(|at| at.elapsed() > BINDINGS_MAX_AGE)
        {
            self.refresh_bindings(live, &mut cache).await?;
            fresh = true;
        }
        let matching = |cache: &BindingsCache| {
            let mut queues: Vec<String> = cache
                .bindings
                .iter()
                .filter(|(_, pattern)| topic_matches(pattern, routing_key))
                .map(|(queue, _)| queue.clone())
                .collect();
            queues.sort();
            queues.dedup();
            queues
        };
        let mut queues = matching(&cache);
        if queues.is_empty() && recheck && !fresh {
            self.refresh_bindings(live, &mut cache).await?;
            queues = matching(&cache);
        }
        Ok(queues)
    }

    async fn refresh_bindings(
        &self,
        live: &Live,
        cache: &mut BindingsCache,
    ) -> Result<(), BusError> {
        let members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.bindings())
            .query_async(&mut live.con.clone())
            .await
            .map_err(|e| self.failed(live, e))?;
        cache.bindings = members
            .iter()
            .filter_map(|m| serde_json::from_str::<(String, String)>(m).ok())
            .collect();
        cache.fetched = Some(Instant::now());
        Ok(())
    }

    /// Pushes `envelope` onto `queues` and publishes it for subscribers, atomically.
    async fn route(
        &self,
        live: &Live,
        routing_key: &str,
        queues: &[String],
        envelope: &[u8],
    ) -> Result<(), BusError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for queue in queues {
            pipe.cmd("LPUSH")
                .arg(self.keys.queue(queue))
                .arg(envelope)
                .ignore();
        }
        pipe.cmd("PUBLISH")
            .arg(self.keys.topic(routing_key))
            .arg(envelope)
            .ignore();
        pipe.query_async::<()>(&mut live.con.clone())
            .await
            .map_err(|e| self.failed(live, e))
    }

    /// Hands a reply to the call waiting for it.
    fn dispatch_reply(&self, raw: &[u8]) {
        match serde_json::from_slice::<ReplyEnvelope>(raw) {
            Ok(reply) => {
                let body = reply.body.get().as_bytes().to_vec();
                if !self.pending.answer(&reply.correlation_id, body) {
                    tracing::debug!(
                        correlation_id = %reply.correlation_id,
                        "reply to a call that is no longer waiting"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "malformed reply on the Redis bus"),
        }
    }
}

/// A Redis bus client that survives connection loss.
///
/// See the [module documentation](self) for how queues, replies and
/// subscriptions are laid out in Redis.
#[derive(Clone)]
pub struct RedisBus {
    inner: Arc<Inner>,
    _supervisor: Arc<SupervisorGuard>,
}

impl RedisBus {
    /// Connects to `uri` (`redis://[:password@]host[:port][/db]`, or
    /// `rediss://` for TLS), with keys and channels namespaced by `exchange`.
    /// Waits up to `wait` for the first connection; reconnects in the
    /// background for ever after.
    pub async fn connect(uri: &str, exchange: &str, wait: Duration) -> Result<Self, BusError> {
        if uri.starts_with("rediss") {
            // Harmless if a provider is installed already.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        let client = Client::open(uri).map_err(|e| {
            BusError::Unavailable(format!("invalid Redis URI {}: {e}", redact_uri(uri)))
        })?;
        let keys = Keys::new(exchange);
        let reply_key = format!("{}{}", keys.reply_prefix(), uuid::Uuid::new_v4().simple());
        let (live, watcher) = watch::channel(None);
        let inner = Arc::new(Inner {
            client,
            uri: uri.to_string(),
            exchange: exchange.to_string(),
            keys,
            reply_key,
            live,
            epoch: Default::default(),
            pending: PendingCalls::default(),
            bindings: tokio::sync::Mutex::new(BindingsCache::default()),
        });
        let supervisor = tokio::spawn(supervise(inner.clone()));
        let bus = RedisBus {
            inner,
            _supervisor: Arc::new(SupervisorGuard(supervisor)),
        };
        first_connection(watcher, wait, uri).await?;
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

    /// The key prefix of this bus's exchange (`commissaire:{exchange}`).
    pub fn key_prefix(&self) -> &str {
        &self.inner.keys.prefix
    }
}

/// Opens a connection for non-blocking commands (`blocking_secs` 0) or one
/// for blocking pops of up to `blocking_secs`.
async fn open_connection(
    client: &Client,
    blocking_secs: u64,
) -> Result<MultiplexedConnection, RedisError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT + Duration::from_secs(blocking_secs)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Keeps the command and reply connections up: connect, receive replies until
/// the connection fails, fail the pending calls, retry with backoff.
async fn supervise(inner: Arc<Inner>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let opened = async {
            let con = open_connection(&inner.client, 0).await?;
            let replies = open_connection(&inner.client, BLOCK_SECS).await?;
            Ok::<_, RedisError>((con, replies))
        }
        .await;
        match opened {
            Ok((con, replies)) => {
                let since = Instant::now();
                let live = Arc::new(Live {
                    con,
                    broken: Notify::new(),
                });
                inner
                    .epoch
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                inner.live.send_replace(Some(live.clone()));
                tracing::info!(bus = %redact_uri(&inner.uri), "connected to the message bus");
                let why = receive_replies(&inner, &live, replies).await;
                inner.live.send_replace(None);
                tracing::warn!(bus = %redact_uri(&inner.uri), error = %why, "lost the message bus connection; reconnecting");
                inner
                    .pending
                    .fail_all("the message bus connection was lost");
                if since.elapsed() < Duration::from_secs(1) {
                    // Lost at once: do not spin.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                } else {
                    backoff = BACKOFF_MIN;
                }
            }
            Err(e) => {
                tracing::warn!(bus = %redact_uri(&inner.uri), error = %e, retry_in = ?backoff, "cannot connect to the message bus");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Pops replies off the client's reply list and dispatches them until either
/// connection fails; returns why it stopped.
async fn receive_replies(inner: &Inner, live: &Live, mut con: MultiplexedConnection) -> String {
    let mut brpop = redis::cmd("BRPOP");
    brpop.arg(&inner.reply_key).arg(BLOCK_SECS);
    loop {
        let popped = tokio::select! {
            _ = live.broken.notified() => return "a command failed on the connection".into(),
            popped = brpop.query_async::<Option<(String, Vec<u8>)>>(&mut con) => popped,
        };
        match popped {
            Ok(None) => {}
            Ok(Some((_, raw))) => {
                inner.dispatch_reply(&raw);
                // Take whatever else arrived meanwhile in one go.
                let more = redis::cmd("RPOP")
                    .arg(&inner.reply_key)
                    .arg(REPLY_BATCH)
                    .query_async::<Option<Vec<Vec<u8>>>>(&mut con)
                    .await;
                match more {
                    Ok(more) => {
                        for raw in more.unwrap_or_default() {
                            inner.dispatch_reply(&raw);
                        }
                    }
                    Err(e) => return e.to_string(),
                }
            }
            Err(e) => return e.to_string(),
        }
    }
}

#[async_trait]
impl Transport for RedisBus {
    async fn call_raw(
        &self,
        routing_key: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, BusError> {
        let live = self.inner.current()?;
        let body = raw_json(&body)?;
        let queues = self.inner.targets(&live, routing_key, true).await?;
        if queues.is_empty() {
            return Err(BusError::Unavailable(format!(
                "no service consumes '{routing_key}' (no queue is bound to it on exchange '{}')",
                self.inner.exchange
            )));
        }
        let call = self.inner.pending.open();
        let envelope = encode(&OutEnvelope {
            id: &call.id,
            routing_key,
            reply_to: Some(&self.inner.reply_key),
            correlation_id: Some(&call.id),
            body,
        });
        let envelope = match envelope {
            Ok(e) => e,
            Err(e) => {
                self.inner.pending.forget(&call);
                return Err(e);
            }
        };
        if let Err(e) = self
            .inner
            .route(&live, routing_key, &queues, &envelope)
            .await
        {
            self.inner.pending.forget(&call);
            return Err(e);
        }
        self.inner.pending.wait(call, routing_key, timeout).await
    }

    async fn publish_raw(&self, routing_key: &str, body: Vec<u8>) -> Result<(), BusError> {
        let live = self.inner.current()?;
        let body = raw_json(&body)?;
        if let Some((queue, bindings)) = crate::job_queue(routing_key) {
            // A job's queue is bound before publishing: it waits there even
            // if its service never ran against this Redis.
            let mut pipe = redis::pipe();
            pipe.atomic();
            for pattern in bindings {
                pipe.cmd("SADD")
                    .arg(self.inner.keys.bindings())
                    .arg(encode(&(queue, pattern))?)
                    .ignore();
            }
            pipe.query_async::<()>(&mut live.con.clone())
                .await
                .map_err(|e| self.inner.failed(&live, e))?;
            self.inner.bindings.lock().await.fetched = None;
        }
        let queues = self.inner.targets(&live, routing_key, false).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let envelope = encode(&OutEnvelope {
            id: &id,
            routing_key,
            reply_to: None,
            correlation_id: None,
            body,
        })?;
        self.inner
            .route(&live, routing_key, &queues, &envelope)
            .await
    }

    async fn consume(
        &self,
        queue: &str,
        bindings: &[String],
        prefetch: u16,
    ) -> Result<IncomingStream, BusError> {
        let live = self.inner.current()?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let keys = &self.inner.keys;
        let consumer = Consumer {
            inner: self.inner.clone(),
            queue_key: keys.queue(queue),
            processing_key: keys.processing(queue, &id),
            id,
            queue: queue.to_string(),
            bindings: bindings.to_vec(),
            permits: Arc::new(Semaphore::new(prefetch.max(1) as usize)),
            state: Arc::default(),
        };
        consumer.register(&live).await?;
        // Publishers through this client see the new bindings at once.
        self.inner.bindings.lock().await.fetched = None;
        consumer.recover_gone(&live).await?;
        let blocking = open_connection(&self.inner.client, BLOCK_SECS)
            .await
            .map_err(|e| BusError::Unavailable(format!("cannot consume: {e}")))?;
        let (tx, rx) = async_channel::unbounded();
        tokio::spawn(consumer.run(tx, blocking));
        Ok(rx)
    }

    async fn subscribe(&self, patterns: &[String]) -> Result<IncomingStream, BusError> {
        let live = self.inner.current()?;
        let mut globs: Vec<String> = patterns
            .iter()
            .map(|p| self.inner.keys.topic_glob(p))
            .collect();
        globs.sort();
        globs.dedup();
        drop(live);
        let pubsub = open_pubsub(&self.inner.client, &globs)
            .await
            .map_err(|e| BusError::Unavailable(format!("cannot subscribe: {e}")))?;
        let (tx, rx) = async_channel::bounded(SUBSCRIPTION_BUFFER);
        tokio::spawn(run_subscription(
            self.inner.clone(),
            patterns.to_vec(),
            globs,
            pubsub,
            tx,
        ));
        Ok(rx)
    }

    fn connection_epoch(&self) -> Option<u64> {
        let live = self.inner.live.borrow();
        live.as_ref()
            .map(|_| self.inner.epoch.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn describe(&self) -> String {
        redact_uri(&self.inner.uri)
    }
}
