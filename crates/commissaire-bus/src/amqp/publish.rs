//! Durable jobs: published persistent and `mandatory` on a confirm-mode
//! channel, the broker's confirmation awaited.

use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, QueueBindOptions};
use lapin::types::FieldTable;

use crate::BusError;

use super::queues::declare_shared_queue;
use super::{Inner, Live, unavailable};

/// Publishes a job durably: its queue declared and bound first, the
/// message persistent and `mandatory`, on a channel of its own in confirm
/// mode, and the broker's confirmation awaited.
pub(super) async fn publish_job(
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
