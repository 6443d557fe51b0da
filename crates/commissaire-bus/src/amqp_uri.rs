//! The AMQP transport's `bus_uri`: one broker URI or several, separated by
//! commas (the nodes of a RabbitMQ cluster, tried in order: on connection
//! loss the client moves on to the next one), plus Commissaire's own query
//! parameter `queue_type=classic|quorum` (the type of the shared service
//! queues; every daemon of a deployment must use the same one), which is
//! removed before the URI reaches the AMQP client.

use crate::BusError;

/// The type of the shared service queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueType {
    /// RabbitMQ's classic durable queues: on one node, lost with it in a
    /// cluster.
    #[default]
    Classic,
    /// Raft-replicated quorum queues (RabbitMQ >= 3.8): survive the loss of
    /// a minority of a cluster's nodes. Their messages are always persistent.
    Quorum,
}

/// What a `bus_uri` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpEndpoints {
    /// The broker URIs, in the order they are tried.
    pub uris: Vec<String>,
    /// The service queues' type.
    pub queue_type: QueueType,
}

impl AmqpEndpoints {
    /// Parses `bus_uri`. Errors name what is wrong (without the password).
    pub fn parse(bus_uri: &str) -> Result<Self, BusError> {
        let mut queue_type = None;
        let mut uris = Vec::new();
        for part in bus_uri.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if !(part.starts_with("amqp://") || part.starts_with("amqps://")) {
                return Err(BusError::UnsupportedUri(crate::redact_uri(part)));
            }
            let (base, query) = match part.split_once('?') {
                Some((b, q)) => (b, q),
                None => (part, ""),
            };
            let mut kept = Vec::new();
            for param in query.split('&').filter(|p| !p.is_empty()) {
                match param.split_once('=') {
                    Some(("queue_type", "classic")) => queue_type = Some(QueueType::Classic),
                    Some(("queue_type", "quorum")) => queue_type = Some(QueueType::Quorum),
                    Some(("queue_type", other)) => {
                        return Err(BusError::InvalidUri(format!(
                            "queue_type must be 'classic' or 'quorum', not '{other}'"
                        )));
                    }
                    _ => kept.push(param),
                }
            }
            uris.push(if kept.is_empty() {
                base.to_string()
            } else {
                format!("{base}?{}", kept.join("&"))
            });
        }
        if uris.is_empty() {
            return Err(BusError::InvalidUri("no broker URI".into()));
        }
        Ok(AmqpEndpoints {
            uris,
            queue_type: queue_type.unwrap_or_default(),
        })
    }

    /// The URIs with their passwords hidden, for logs.
    pub fn describe(&self) -> String {
        self.uris
            .iter()
            .map(|u| crate::redact_uri(u))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_uri_is_classic_by_default() {
        let e = AmqpEndpoints::parse("amqp://guest:guest@h:5672/%2f").unwrap();
        assert_eq!(e.uris, vec!["amqp://guest:guest@h:5672/%2f"]);
        assert_eq!(e.queue_type, QueueType::Classic);
    }

    #[test]
    fn several_uris_and_the_queue_type_are_read_and_the_parameter_removed() {
        let e = AmqpEndpoints::parse(
            "amqp://u:p@a:5672/v?queue_type=quorum&heartbeat=10, amqp://u:p@b:5673/v",
        )
        .unwrap();
        assert_eq!(
            e.uris,
            vec!["amqp://u:p@a:5672/v?heartbeat=10", "amqp://u:p@b:5673/v"]
        );
        assert_eq!(e.queue_type, QueueType::Quorum);
        assert_eq!(
            e.describe(),
            "amqp://u:***@a:5672/v?heartbeat=10,amqp://u:***@b:5673/v"
        );
    }

    #[test]
    fn a_bad_queue_type_or_scheme_is_an_error() {
        assert!(AmqpEndpoints::parse("amqp://h/v?queue_type=fast").is_err());
        assert!(AmqpEndpoints::parse("amqp://h/v,redis://h").is_err());
        assert!(AmqpEndpoints::parse(" , ").is_err());
    }
}
