//! The server's read cache: answers of the busiest GETs (a cluster with its
//! computed status, the host list, a host, the cluster names), kept as the
//! serialized JSON body, so a repeated read costs no bus round trip and no
//! serialization.
//!
//! An entry depends on model kinds (a cluster's answer on `Cluster` and
//! `Host`). Each kind has a generation, bumped when
//! - the storage service announces a change of that kind
//!   (`notify.storage.<Kind>.<event>`, published before it replies to the
//!   writer; pending announcements are applied before every lookup),
//! - this server wrote records of that kind itself ([`WriteTracking`]
//!   wraps the API's bus), or a write of it failed (e.g. a CAS conflict).
//!
//! An entry is served only while every generation it was read under is
//! current, the bus is on the connection it was read on (announcements sent
//! while reconnecting are lost), and it is younger than the configured TTL,
//! which bounds staleness from changes nobody announced. A read that raced
//! with a change is never stored as current: generations are taken before the
//! storage call. Secrets (host credentials) are never cached.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use commissaire_bus::{Bus, BusError, Incoming, IncomingStream, Transport};
use commissaire_models::ModelKind;
use moka::sync::Cache;
use serde_json::Value;

use crate::api::Reply;
use crate::error::ApiResult;

/// The most answers kept; when full, the least useful go first.
pub const MAX_ENTRIES: u64 = 4096;

/// The notifications the cache listens to.
const NOTIFICATIONS: &str = "notify.storage.#";

/// A kept answer and what it was read under (its age is the cache's: a
/// [`moka`] cache drops it `ttl` after it was stored).
struct Entry {
    body: Bytes,
    read: Snapshot,
}

/// The generations an answer was read under.
#[derive(Clone)]
struct Snapshot {
    epoch: u64,
    generations: Vec<(usize, u64)>,
}

/// The read cache. Cheap to share behind an `Arc`.
pub struct ReadCache {
    bus: Bus,
    ttl: Duration,
    generations: Vec<AtomicU64>,
    entries: Cache<String, Arc<Entry>>,
    /// The announcements, once subscribed.
    notifications: OnceLock<IncomingStream>,
    subscribed: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
}

fn kind_index(kind: ModelKind) -> usize {
    let kind = kind.item_kind().unwrap_or(kind);
    ModelKind::ALL
        .iter()
        .position(|k| *k == kind)
        .expect("every kind is in ModelKind::ALL")
}

impl ReadCache {
    /// A cache over `bus` whose entries live at most `ttl` (zero: disabled).
    /// Starts listening to the storage service's announcements.
    pub fn start(bus: Bus, ttl: Duration) -> Arc<ReadCache> {
        let cache = Arc::new(ReadCache {
            bus,
            ttl,
            generations: ModelKind::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            entries: Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(ttl.max(Duration::from_millis(1)))
                .build(),
            notifications: OnceLock::new(),
            subscribed: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        });
        if !ttl.is_zero() {
            let weak = Arc::downgrade(&cache);
            tokio::spawn(async move { listen(weak).await });
        }
        cache
    }

    /// Whether answers may be cached now.
    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.subscribed.load(Ordering::SeqCst)
    }

    /// Answers served from the cache and answers read from storage so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Marks every answer depending on `kind` as out of date.
    pub fn invalidate(&self, kind: ModelKind) {
        self.generations[kind_index(kind)].fetch_add(1, Ordering::SeqCst);
    }

    fn invalidate_all(&self) {
        for generation in &self.generations {
            generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Applies one announcement (`notify.storage.<Kind>.<event>`).
    fn apply(&self, message: Incoming) {
        let kind = message.routing_key.split('.').nth(2).unwrap_or_default();
        match ModelKind::from_name(kind) {
            Ok(kind) => self.invalidate(kind),
            Err(_) => self.invalidate_all(),
        }
        tokio::spawn(async move {
            let _ = message.finish(None).await;
        });
    }

    /// Applies the announcements already delivered to this process.
    fn drain(&self) {
        if let Some(stream) = self.notifications.get() {
            while let Ok(message) = stream.try_recv() {
                self.apply(message);
            }
        }
    }

    fn snapshot(&self, kinds: &[ModelKind]) -> Option<Snapshot> {
        if !self.enabled() {
            return None;
        }
        let epoch = self.bus.connection_epoch()?;
        Some(Snapshot {
            epoch,
            generations: kinds
                .iter()
                .map(|k| {
                    let i = kind_index(*k);
                    (i, self.generations[i].load(Ordering::SeqCst))
                })
                .collect(),
        })
    }

    fn is_current(&self, read: &Snapshot) -> bool {
        self.bus.connection_epoch() == Some(read.epoch)
            && read
                .generations
                .iter()
                .all(|(i, g)| self.generations[*i].load(Ordering::SeqCst) == *g)
    }

    fn lookup(&self, key: &str) -> Option<Bytes> {
        if !self.enabled() {
            return None;
        }
        self.drain();
        let entry = self.entries.get(key)?;
        if self.is_current(&entry.read) {
            Some(entry.body.clone())
        } else {
            self.entries.invalidate(key);
            None
        }
    }

    fn store(&self, key: String, read: Snapshot, body: Bytes) {
        if !self.is_current(&read) {
            return;
        }
        self.entries.insert(key, Arc::new(Entry { body, read }));
    }

    /// Answers a GET: from the cache when it holds a current answer for
    /// `key`, else by running `load` and keeping its answer when it is a 200.
    /// `kinds` are the model kinds the answer is computed from.
    pub async fn serve<F>(&self, key: String, kinds: &[ModelKind], load: F) -> Response
    where
        F: std::future::Future<Output = ApiResult<Reply>>,
    {
        if let Some(body) = self.lookup(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return json_response(StatusCode::OK, body);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let read = self.snapshot(kinds);
        match load.await {
            Ok((status, axum::Json(value))) => {
                let body = match serde_json::to_vec(&value) {
                    Ok(body) => Bytes::from(body),
                    Err(e) => {
                        return crate::error::ApiError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            e.to_string(),
                        )
                        .into_response();
                    }
                };
                if status == StatusCode::OK
                    && let Some(read) = read
                {
                    self.store(key, read, body.clone());
                }
                json_response(status, body)
            }
            Err(e) => e.into_response(),
        }
    }
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Subscribes to the announcements (retrying while the bus is down), then
/// applies them as they come, for as long as the cache exists.
async fn listen(cache: std::sync::Weak<ReadCache>) {
    let stream = loop {
        let Some(strong) = cache.upgrade() else {
            return;
        };
        match strong.bus.subscribe(&[NOTIFICATIONS.to_string()]).await {
            Ok(stream) => {
                let _ = strong.notifications.set(stream.clone());
                strong.subscribed.store(true, Ordering::SeqCst);
                break stream;
            }
            Err(e) => {
                tracing::warn!(error = %e, "read cache: cannot subscribe to storage notifications yet; not caching");
            }
        }
        drop(strong);
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    while let Ok(message) = stream.recv().await {
        let Some(strong) = cache.upgrade() else {
            return;
        };
        strong.apply(message);
    }
    if let Some(strong) = cache.upgrade() {
        strong.subscribed.store(false, Ordering::SeqCst);
        tracing::warn!("read cache: the notification stream ended; not caching");
    }
}

/// The API's bus, marking the cache out of date for every kind this server
/// writes (`storage.save`, `storage.swap`, `storage.delete`), whether the
/// write succeeded or not.
pub struct WriteTracking {
    inner: Bus,
    cache: Arc<ReadCache>,
}

impl WriteTracking {
    /// Wraps `inner`.
    pub fn wrap(inner: Bus, cache: Arc<ReadCache>) -> Bus {
        Arc::new(WriteTracking { inner, cache })
    }

    /// The kind a write names, if `routing_key` is a write: `Some(None)`
    /// when the kind cannot be told (then every kind is marked).
    fn written_kind(routing_key: &str, params: &Value) -> Option<Option<String>> {
        matches!(
            routing_key,
            "storage.save" | "storage.swap" | "storage.delete"
        )
        .then(|| {
            params
                .get("model_type_name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    }

    fn track(&self, written: Option<Option<String>>) {
        match written.map(|name| name.map(|n| ModelKind::from_name(&n))) {
            None => {}
            Some(Some(Ok(kind))) => self.cache.invalidate(kind),
            Some(_) => self.cache.invalidate_all(),
        }
    }
}

#[async_trait]
impl Transport for WriteTracking {
    async fn call_raw(
        &self,
        routing_key: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, BusError> {
        let written = if routing_key.starts_with("storage.") {
            let params = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|mut v| v.get_mut("params").map(Value::take))
                .unwrap_or_default();
            Self::written_kind(routing_key, &params)
        } else {
            None
        };
        let reply = self.inner.call_raw(routing_key, body, timeout).await;
        self.track(written);
        reply
    }

    async fn request(
        &self,
        routing_key: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, BusError> {
        let written = Self::written_kind(routing_key, &params);
        let reply = self.inner.request(routing_key, params, timeout).await;
        self.track(written);
        reply
    }

    async fn publish_raw(&self, routing_key: &str, body: Vec<u8>) -> Result<(), BusError> {
        self.inner.publish_raw(routing_key, body).await
    }

    async fn consume(
        &self,
        queue: &str,
        bindings: &[String],
        prefetch: u16,
    ) -> Result<IncomingStream, BusError> {
        self.inner.consume(queue, bindings, prefetch).await
    }

    async fn subscribe(&self, patterns: &[String]) -> Result<IncomingStream, BusError> {
        self.inner.subscribe(patterns).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn connection_epoch(&self) -> Option<u64> {
        self.inner.connection_epoch()
    }
}
