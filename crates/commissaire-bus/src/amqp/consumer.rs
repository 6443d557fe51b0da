//! Consumers: declare and bind a service's queue, forward its messages,
//! and settle each (reply, then acknowledge).

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueBindOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};

use crate::BusError;
use crate::transport::{Incoming, Settle};

use super::queues::{declare_private_queue, declare_shared_queue};
use super::{ConsumerSpec, Inner, Live, unavailable};

/// How long setting up one consumer may take.
pub(super) const CONSUMER_SETUP_LIMIT: Duration = Duration::from_secs(5);

/// [`start_consumer`] within [`CONSUMER_SETUP_LIMIT`].
pub(super) async fn start_consumer_within(
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
pub(super) async fn start_consumer(
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

pub(super) struct AmqpSettle {
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
