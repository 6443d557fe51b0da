//! The connection's life: connect to the first broker that answers, open
//! the exchange and the reply queue, notice the loss, fail pending calls,
//! reconnect.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};

use crate::redact_uri;

use super::consumer::start_consumer_within;
use super::queues::declare_private_queue;
use super::{Inner, Live};

/// Keeps a connection up: connect, set up, wait for loss, fail pending calls, retry.
pub(super) async fn supervise(inner: Arc<Inner>) {
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
                inner
                    .pending
                    .fail_all("the message bus connection was lost");
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

/// Resolves when the connection is no longer usable.
pub(super) async fn wait_for_loss(connection: &Connection) {
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
pub(super) async fn connect_any(inner: &Inner) -> Result<(Connection, String), lapin::Error> {
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

/// Opens a connection, declares the exchange and the reply queue.
pub(super) async fn open(inner: &Arc<Inner>) -> Result<Live, lapin::Error> {
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
            pending.answer(id.as_str(), delivery.data);
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
pub(super) const CLUSTER_FAILOVER_PAUSE: Duration = Duration::from_secs(2);
