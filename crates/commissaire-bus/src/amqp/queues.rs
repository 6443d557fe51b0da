//! Queue declarations: shared service queues (classic or quorum) and
//! private reply queues.

use lapin::Channel;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

use crate::amqp_uri::QueueType;

/// The arguments of a shared service queue's declaration.
pub(super) fn queue_args(queue_type: QueueType) -> FieldTable {
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
pub(super) async fn declare_shared_queue(
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
pub(super) async fn declare_private_queue(channel: &Channel) -> Result<String, lapin::Error> {
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
