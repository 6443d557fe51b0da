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

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::{MultiplexedConnection, PubSub};
use redis::{AsyncConnectionConfig, Client, RedisError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot, watch};

use crate::supervisor::{SupervisorGuard, first_connection, wait_live};
use crate::transport::{Incoming, IncomingStream, Settle, Transport, topic_matches};
use crate::{BusError, redact_uri};

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

type Pending = Arc<StdMutex<HashMap<String, oneshot::Sender<Result<Vec<u8>, BusError>>>>>;

/// The key names of one exchange.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn new(exchange: &str) -> Self {
        Keys {
            prefix: format!("commissaire:{exchange}"),
        }
    }
    fn bindings(&self) -> String {
        format!("{}:bindings", self.prefix)
    }
    fn queue(&self, queue: &str) -> String {
        format!("{}:queue:{queue}", self.prefix)
    }
    fn processing(&self, queue: &str, consumer: &str) -> String {
        format!("{}:processing:{queue}:{consumer}", self.prefix)
    }
    fn consumers(&self, queue: &str) -> String {
        format!("{}:consumers:{queue}", self.prefix)
    }
    fn alive(&self, consumer: &str) -> String {
        format!("{}:alive:{consumer}", self.prefix)
    }
    fn reply_prefix(&self) -> String {
        format!("{}:reply:", self.prefix)
    }
    fn topic(&self, routing_key: &str) -> String {
        format!("{}:topic:{routing_key}", self.prefix)
    }
    /// A `PSUBSCRIBE` glob matching (at least) the channels of every key that
    /// the topic `pattern` matches; deliveries are then filtered exactly.
    fn topic_glob(&self, pattern: &str) -> String {
        let words: Vec<&str> = pattern.split('.').collect();
        let literal = words
            .iter()
            .take_while(|w| **w != "*" && **w != "#")
            .count();
        let mut glob = glob_escape(&format!(
            "{}:topic:{}",
            self.prefix,
            words[..literal].join(".")
        ));
        if literal < words.len() {
            glob.push('*');
        }
        glob
    }
}

/// `text` with Redis glob metacharacters escaped.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A message as it is stored in queues and published on channels.
#[derive(Serialize)]
struct OutEnvelope<'a> {
    id: &'a str,
    routing_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<&'a str>,
    body: &'a RawValue,
}

/// A message as read back.
#[derive(Deserialize)]
struct InEnvelope {
    routing_key: String,
    #[serde(default)]
    reply_to: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
    body: Box<RawValue>,
}

/// A reply as pushed onto a client's reply list.
#[derive(Serialize, Deserialize)]
struct ReplyEnvelope<'a> {
    correlation_id: String,
    #[serde(borrow)]
    body: &'a RawValue,
}

/// `body` as a raw JSON value, or a protocol error if it is not JSON.
fn raw_json(body: &[u8]) -> Result<&RawValue, BusError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| BusError::Protocol(format!("message body is not UTF-8: {e}")))?;
    serde_json::from_str(text)
        .map_err(|e| BusError::Protocol(format!("message body is not JSON: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, BusError> {
    serde_json::to_vec(value).map_err(|e| BusError::Protocol(e.to_string()))
}

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
    pending: Pending,
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
                let waiter = self
                    .pending
                    .lock()
                    .expect("pending lock")
                    .remove(&reply.correlation_id);
                match waiter {
                    Some(tx) => {
                        let _ = tx.send(Ok(reply.body.get().as_bytes().to_vec()));
                    }
                    None => tracing::debug!(
                        correlation_id = %reply.correlation_id,
                        "reply to a call that is no longer waiting"
                    ),
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
            pending: Arc::default(),
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
                fail_pending(&inner.pending, "the message bus connection was lost");
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

fn fail_pending(pending: &Pending, why: &str) {
    let drained: Vec<_> = pending.lock().expect("pending lock").drain().collect();
    for (_, tx) in drained {
        let _ = tx.send(Err(BusError::Unavailable(why.to_string())));
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

/// What a consumer and the messages it handed out share.
#[derive(Default)]
struct ConsumerState {
    /// Messages (raw envelopes) taken and not yet settled or given back.
    outstanding: StdMutex<HashSet<Vec<u8>>>,
    /// Set when a message was given back (dropped unsettled, or settling failed).
    dirty: AtomicBool,
}

/// One consumer of a shared work queue.
struct Consumer {
    inner: Arc<Inner>,
    id: String,
    queue: String,
    bindings: Vec<String>,
    queue_key: String,
    processing_key: String,
    permits: Arc<Semaphore>,
    state: Arc<ConsumerState>,
}

impl Consumer {
    /// Registers the bindings, the consumer and its heartbeat.
    async fn register(&self, live: &Live) -> Result<(), BusError> {
        let keys = &self.inner.keys;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for pattern in &self.bindings {
            pipe.cmd("SADD")
                .arg(keys.bindings())
                .arg(encode(&(&self.queue, pattern))?)
                .ignore();
        }
        pipe.cmd("SADD")
            .arg(keys.consumers(&self.queue))
            .arg(&self.id)
            .ignore();
        pipe.cmd("SET")
            .arg(keys.alive(&self.id))
            .arg(1)
            .arg("EX")
            .arg(HEARTBEAT_TTL.as_secs())
            .ignore();
        pipe.query_async::<()>(&mut live.con.clone())
            .await
            .map_err(|e| self.inner.failed(live, e))
    }

    /// Moves the unacknowledged messages of gone consumers back onto the queue.
    async fn recover_gone(&self, live: &Live) -> Result<(), BusError> {
        let keys = &self.inner.keys;
        let mut con = live.con.clone();
        let fail = |e| self.inner.failed(live, e);
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys.consumers(&self.queue))
            .query_async(&mut con)
            .await
            .map_err(fail)?;
        for id in ids.into_iter().filter(|id| *id != self.id) {
            let alive: bool = redis::cmd("EXISTS")
                .arg(keys.alive(&id))
                .query_async(&mut con)
                .await
                .map_err(fail)?;
            if alive {
                continue;
            }
            let processing = keys.processing(&self.queue, &id);
            let mut moved = 0usize;
            loop {
                let item: Option<Vec<u8>> = redis::cmd("LMOVE")
                    .arg(&processing)
                    .arg(&self.queue_key)
                    .arg("LEFT")
                    .arg("RIGHT")
                    .query_async(&mut con)
                    .await
                    .map_err(fail)?;
                if item.is_none() {
                    break;
                }
                moved += 1;
            }
            redis::cmd("SREM")
                .arg(keys.consumers(&self.queue))
                .arg(&id)
                .query_async::<()>(&mut con)
                .await
                .map_err(fail)?;
            if moved > 0 {
                tracing::info!(queue = %self.queue, consumer = %id, moved, "re-queued the unacknowledged messages of a gone consumer");
            }
        }
        Ok(())
    }

    /// Puts back on the queue what sits in this consumer's processing list
    /// without being held by anyone (given back, or taken by a pop whose
    /// answer was lost with the connection).
    async fn reclaim_orphans(&self, live: &Live) -> Result<(), BusError> {
        let mut con = live.con.clone();
        let items: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(&self.processing_key)
            .arg(0)
            .arg(-1)
            .query_async(&mut con)
            .await
            .map_err(|e| self.inner.failed(live, e))?;
        for item in items {
            if self
                .state
                .outstanding
                .lock()
                .expect("outstanding lock")
                .contains(&item)
            {
                continue;
            }
            redis::cmd("EVAL")
                .arg(REQUEUE_SCRIPT)
                .arg(2)
                .arg(&self.processing_key)
                .arg(&self.queue_key)
                .arg(&item)
                .query_async::<i64>(&mut con)
                .await
                .map_err(|e| self.inner.failed(live, e))?;
        }
        Ok(())
    }

    /// Heartbeat, re-registration, and giving back what is not held.
    async fn housekeeping(&self) {
        let Ok(live) = self.inner.current() else {
            return;
        };
        let outcome = async {
            self.register(&live).await?;
            self.reclaim_orphans(&live).await?;
            self.recover_gone(&live).await
        }
        .await;
        if let Err(e) = outcome {
            tracing::debug!(queue = %self.queue, error = %e, "consumer housekeeping failed");
        }
    }

    /// Takes messages until the stream is dropped, then waits for the
    /// messages handed out to be settled and deregisters.
    async fn run(self, tx: async_channel::Sender<Incoming>, first: MultiplexedConnection) {
        let mut blocking = Some(first);
        let mut backoff = BACKOFF_MIN;
        let mut last_housekeeping = Instant::now();
        loop {
            if tx.is_closed() {
                break;
            }
            if last_housekeeping.elapsed() >= HEARTBEAT_EVERY
                || self.state.dirty.swap(false, Ordering::SeqCst)
            {
                self.housekeeping().await;
                last_housekeeping = Instant::now();
            }
            let permit = match tokio::time::timeout(
                Duration::from_secs(BLOCK_SECS),
                self.permits.clone().acquire_owned(),
            )
            .await
            {
                Ok(Ok(permit)) => permit,
                _ => continue,
            };
            let Some(con) = blocking.as_mut() else {
                match open_connection(&self.inner.client, BLOCK_SECS).await {
                    Ok(con) => {
                        blocking = Some(con);
                        backoff = BACKOFF_MIN;
                        // A pop answered on the old connection may have been lost.
                        self.state.dirty.store(true, Ordering::SeqCst);
                    }
                    Err(e) => {
                        tracing::debug!(queue = %self.queue, error = %e, "consumer cannot reconnect");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
                continue;
            };
            let popped = redis::cmd("BLMOVE")
                .arg(&self.queue_key)
                .arg(&self.processing_key)
                .arg("RIGHT")
                .arg("LEFT")
                .arg(BLOCK_SECS)
                .query_async::<Option<Vec<u8>>>(con)
                .await;
            match popped {
                Ok(None) => {}
                Ok(Some(raw)) => {
                    if let Some(incoming) = self.incoming(raw, permit).await
                        && tx.send(incoming).await.is_err()
                    {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(queue = %self.queue, error = %e, "consumer lost its connection; reconnecting");
                    blocking = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        // Nobody listens any more: messages still buffered go back with the channel.
        drop(tx);
        drop(blocking);
        tracing::debug!(queue = %self.queue, consumer = %self.id, "consumer stopping");
        while !self
            .state
            .outstanding
            .lock()
            .expect("outstanding lock")
            .is_empty()
        {
            tokio::time::sleep(Duration::from_secs(BLOCK_SECS)).await;
            if last_housekeeping.elapsed() >= HEARTBEAT_EVERY
                || self.state.dirty.swap(false, Ordering::SeqCst)
            {
                self.housekeeping().await;
                last_housekeeping = Instant::now();
            }
        }
        self.deregister().await;
    }

    /// Gives back anything left and removes the consumer's keys.
    async fn deregister(&self) {
        let Ok(live) = self.inner.current() else {
            // Its heartbeat expires; another consumer recovers its list.
            return;
        };
        let outcome = async {
            self.reclaim_orphans(&live).await?;
            let keys = &self.inner.keys;
            redis::pipe()
                .atomic()
                .cmd("SREM")
                .arg(keys.consumers(&self.queue))
                .arg(&self.id)
                .ignore()
                .cmd("DEL")
                .arg(keys.alive(&self.id))
                .ignore()
                .query_async::<()>(&mut live.con.clone())
                .await
                .map_err(|e| self.inner.failed(&live, e))
        }
        .await;
        if let Err(e) = outcome {
            tracing::debug!(queue = %self.queue, error = %e, "consumer deregistration failed");
        }
    }

    /// Wraps a popped message; a malformed one is dropped from the processing list.
    async fn incoming(&self, raw: Vec<u8>, permit: OwnedSemaphorePermit) -> Option<Incoming> {
        let envelope: InEnvelope = match serde_json::from_slice(&raw) {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::warn!(queue = %self.queue, error = %e, "dropping a malformed message");
                if let Ok(live) = self.inner.current() {
                    let _ = redis::cmd("LREM")
                        .arg(&self.processing_key)
                        .arg(1)
                        .arg(&raw)
                        .query_async::<i64>(&mut live.con.clone())
                        .await;
                }
                return None;
            }
        };
        // Replies only go to this exchange's reply lists.
        let reply_to = envelope
            .reply_to
            .filter(|key| key.starts_with(&self.inner.keys.reply_prefix()));
        if reply_to.is_none() && envelope.correlation_id.is_some() {
            tracing::debug!(queue = %self.queue, "request without a usable reply list");
        }
        let reply = match (reply_to, envelope.correlation_id) {
            (Some(key), Some(id)) => Some((key, id)),
            _ => None,
        };
        self.state
            .outstanding
            .lock()
            .expect("outstanding lock")
            .insert(raw.clone());
        let wants_reply = reply.is_some();
        let settle = RedisSettle {
            inner: self.inner.clone(),
            state: self.state.clone(),
            processing_key: self.processing_key.clone(),
            raw,
            reply,
            settled: false,
            _permit: permit,
        };
        Some(Incoming::new(
            envelope.routing_key,
            envelope.body.get().as_bytes().to_vec(),
            wants_reply,
            Box::new(settle),
        ))
    }
}

/// Settles a message taken from a work queue: reply, then remove it from
/// the processing list. Dropped unsettled, it is given back to the queue.
struct RedisSettle {
    inner: Arc<Inner>,
    state: Arc<ConsumerState>,
    processing_key: String,
    raw: Vec<u8>,
    /// (reply list, correlation id)
    reply: Option<(String, String)>,
    settled: bool,
    _permit: OwnedSemaphorePermit,
}

impl Drop for RedisSettle {
    fn drop(&mut self) {
        self.state
            .outstanding
            .lock()
            .expect("outstanding lock")
            .remove(&self.raw);
        if !self.settled {
            // The consumer puts it back on the queue.
            self.state.dirty.store(true, Ordering::SeqCst);
        }
    }
}

#[async_trait]
impl Settle for RedisSettle {
    async fn settle(mut self: Box<Self>, reply: Option<Vec<u8>>) -> Result<(), BusError> {
        let live = self.inner.current()?;
        // A reply that is not JSON is a handler bug: the message is still
        // acknowledged (redelivering it would fail the same way).
        let reply = match (reply, &self.reply) {
            (Some(body), Some((key, id))) => raw_json(&body)
                .and_then(|body| {
                    encode(&ReplyEnvelope {
                        correlation_id: id.clone(),
                        body,
                    })
                })
                .map(|envelope| Some((key.clone(), envelope))),
            _ => Ok(None),
        };
        let mut pipe = redis::pipe();
        pipe.atomic();
        if let Ok(Some((key, envelope))) = &reply {
            pipe.cmd("LPUSH").arg(key).arg(envelope).ignore();
            pipe.cmd("EXPIRE").arg(key).arg(REPLY_TTL_SECS).ignore();
        }
        pipe.cmd("LREM")
            .arg(&self.processing_key)
            .arg(1)
            .arg(&self.raw)
            .ignore();
        pipe.query_async::<()>(&mut live.con.clone())
            .await
            .map_err(|e| self.inner.failed(&live, e))?;
        self.settled = true;
        reply.map(|_| ())
    }
}

/// Settles nothing (subscription copies).
struct NoSettle;

#[async_trait]
impl Settle for NoSettle {
    async fn settle(self: Box<Self>, _reply: Option<Vec<u8>>) -> Result<(), BusError> {
        Ok(())
    }
}

/// Opens a pub/sub connection subscribed to `globs`.
async fn open_pubsub(client: &Client, globs: &[String]) -> Result<PubSub, RedisError> {
    let mut pubsub = tokio::time::timeout(COMMAND_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| {
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect timed out",
            ))
        })??;
    for glob in globs {
        pubsub.psubscribe(glob).await?;
    }
    Ok(pubsub)
}

/// Forwards the copies a subscription receives until its stream is dropped,
/// resubscribing after connection loss.
async fn run_subscription(
    inner: Arc<Inner>,
    patterns: Vec<String>,
    globs: Vec<String>,
    mut pubsub: PubSub,
    tx: async_channel::Sender<Incoming>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        {
            let mut messages = pubsub.on_message();
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    msg = messages.next() => match msg {
                        Some(msg) => {
                            backoff = BACKOFF_MIN;
                            let Some(incoming) = subscription_copy(&inner, &patterns, &msg) else {
                                continue;
                            };
                            if tx.send(incoming).await.is_err() {
                                return;
                            }
                        }
                        None => break,
                    },
                    _ = tick.tick() => if tx.is_closed() {
                        return;
                    },
                }
            }
        }
        tracing::warn!(patterns = ?patterns, "subscription lost its connection; resubscribing");
        loop {
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
            match open_pubsub(&inner.client, &globs).await {
                Ok(p) => {
                    pubsub = p;
                    break;
                }
                Err(e) => tracing::debug!(error = %e, "cannot resubscribe"),
            }
        }
    }
}

/// The copy of `msg` to deliver, if it matches exactly and came through the
/// glob of the first matching pattern (so overlapping patterns deliver once).
fn subscription_copy(inner: &Inner, patterns: &[String], msg: &redis::Msg) -> Option<Incoming> {
    let envelope: InEnvelope = match serde_json::from_slice(msg.get_payload_bytes()) {
        Ok(envelope) => envelope,
        Err(e) => {
            tracing::debug!(error = %e, "ignoring a malformed published message");
            return None;
        }
    };
    let first = patterns
        .iter()
        .find(|p| topic_matches(p, &envelope.routing_key))?;
    let via: String = msg.get_pattern().ok()?;
    if via != inner.keys.topic_glob(first) {
        return None;
    }
    Some(Incoming::new(
        envelope.routing_key,
        envelope.body.get().as_bytes().to_vec(),
        false,
        Box::new(NoSettle),
    ))
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
        let id = uuid::Uuid::new_v4().to_string();
        let envelope = encode(&OutEnvelope {
            id: &id,
            routing_key,
            reply_to: Some(&self.inner.reply_key),
            correlation_id: Some(&id),
            body,
        })?;
        let (tx, rx) = oneshot::channel();
        self.inner
            .pending
            .lock()
            .expect("pending lock")
            .insert(id.clone(), tx);
        if let Err(e) = self
            .inner
            .route(&live, routing_key, &queues, &envelope)
            .await
        {
            self.inner.pending.lock().expect("pending lock").remove(&id);
            return Err(e);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_globs_cover_their_patterns() {
        let keys = Keys::new("ex");
        assert_eq!(
            keys.topic_glob("storage.get"),
            "commissaire:ex:topic:storage.get"
        );
        assert_eq!(
            keys.topic_glob("storage.*"),
            "commissaire:ex:topic:storage*"
        );
        assert_eq!(keys.topic_glob("notify.#"), "commissaire:ex:topic:notify*");
        assert_eq!(keys.topic_glob("#"), "commissaire:ex:topic:*");
        assert_eq!(keys.topic_glob("*.x"), "commissaire:ex:topic:*");
        assert_eq!(
            Keys::new("a*b").topic_glob("q?"),
            "commissaire:a\\*b:topic:q\\?"
        );
    }

    #[test]
    fn envelopes_keep_the_body_as_is() {
        let body = br#"{"jsonrpc":"2.0","method":"get","params":{"a":[1, 2]}}"#;
        let envelope = encode(&OutEnvelope {
            id: "1",
            routing_key: "storage.get",
            reply_to: Some("commissaire:ex:reply:c"),
            correlation_id: Some("1"),
            body: raw_json(body).unwrap(),
        })
        .unwrap();
        let back: InEnvelope = serde_json::from_slice(&envelope).unwrap();
        assert_eq!(back.body.get().as_bytes(), body);
        assert_eq!(back.routing_key, "storage.get");
        assert_eq!(back.reply_to.as_deref(), Some("commissaire:ex:reply:c"));
        let value: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
        assert_eq!(value["body"]["params"]["a"][1], 2);
        assert!(raw_json(b"not json").is_err());
    }
}
