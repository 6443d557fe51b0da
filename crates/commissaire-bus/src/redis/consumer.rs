//! Consuming a shared work queue reliably: `BLMOVE` into a processing
//! list, settling with the reply, heartbeats, and taking back what dead
//! consumers held.

use super::*;

/// What a consumer and the messages it handed out share.
#[derive(Default)]
pub(super) struct ConsumerState {
    /// Messages (raw envelopes) taken and not yet settled or given back.
    pub(super) outstanding: StdMutex<HashSet<Vec<u8>>>,
    /// Set when a message was given back (dropped unsettled, or settling failed).
    pub(super) dirty: AtomicBool,
}

/// One consumer of a shared work queue.
pub(super) struct Consumer {
    pub(super) inner: Arc<Inner>,
    pub(super) id: String,
    pub(super) queue: String,
    pub(super) bindings: Vec<String>,
    pub(super) queue_key: String,
    pub(super) processing_key: String,
    pub(super) permits: Arc<Semaphore>,
    pub(super) state: Arc<ConsumerState>,
}

impl Consumer {
    /// Registers the bindings, the consumer and its heartbeat.
    pub(super) async fn register(&self, live: &Live) -> Result<(), BusError> {
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
    pub(super) async fn recover_gone(&self, live: &Live) -> Result<(), BusError> {
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
    pub(super) async fn reclaim_orphans(&self, live: &Live) -> Result<(), BusError> {
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
    pub(super) async fn housekeeping(&self) {
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
    pub(super) async fn run(
        self,
        tx: async_channel::Sender<Incoming>,
        first: MultiplexedConnection,
    ) {
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
    pub(super) async fn deregister(&self) {
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
    pub(super) async fn incoming(
        &self,
        raw: Vec<u8>,
        permit: OwnedSemaphorePermit,
    ) -> Option<Incoming> {
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
pub(super) struct RedisSettle {
    pub(super) inner: Arc<Inner>,
    pub(super) state: Arc<ConsumerState>,
    pub(super) processing_key: String,
    pub(super) raw: Vec<u8>,
    /// (reply list, correlation id)
    pub(super) reply: Option<(String, String)>,
    pub(super) settled: bool,
    pub(super) _permit: OwnedSemaphorePermit,
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
pub(super) struct NoSettle;

#[async_trait]
impl Settle for NoSettle {
    async fn settle(self: Box<Self>, _reply: Option<Vec<u8>>) -> Result<(), BusError> {
        Ok(())
    }
}
