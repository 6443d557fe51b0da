//! Subscriptions: copies of messages over pub/sub (`PSUBSCRIBE`), with a
//! connection of their own that reconnects by itself.

use super::*;

/// Opens a pub/sub connection subscribed to `globs`.
pub(super) async fn open_pubsub(client: &Client, globs: &[String]) -> Result<PubSub, RedisError> {
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
pub(super) async fn run_subscription(
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
pub(super) fn subscription_copy(
    inner: &Inner,
    patterns: &[String],
    msg: &redis::Msg,
) -> Option<Incoming> {
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
