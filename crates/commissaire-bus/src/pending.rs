//! Calls waiting for their reply, by correlation id: the table the AMQP and
//! Redis transports share. A call is opened before its request goes out,
//! answered by the transport's reply consumer, and forgotten when it ends
//! (answered, timed out, or failed with the connection).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::BusError;

type Reply = Result<Vec<u8>, BusError>;

/// The calls of one client waiting for replies. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct PendingCalls(Arc<Mutex<HashMap<String, oneshot::Sender<Reply>>>>);

/// One open call: its correlation id and where its reply arrives.
pub(crate) struct Call {
    /// The correlation id the request carries.
    pub id: String,
    reply: oneshot::Receiver<Reply>,
}

impl PendingCalls {
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Reply>>> {
        // Every use is one map operation: a panic elsewhere cannot leave the
        // map half-changed, so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a call with a fresh correlation id.
    pub fn open(&self) -> Call {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, reply) = oneshot::channel();
        self.table().insert(id.clone(), tx);
        Call { id, reply }
    }

    /// Forgets a call whose request could not be sent.
    pub fn forget(&self, call: &Call) {
        self.table().remove(&call.id);
    }

    /// Hands `body` to the call `id` is the correlation id of; `false` when
    /// no call waits for it (it timed out, or the reply is not ours).
    pub fn answer(&self, id: &str, body: Vec<u8>) -> bool {
        match self.table().remove(id) {
            Some(tx) => {
                let _ = tx.send(Ok(body));
                true
            }
            None => false,
        }
    }

    /// Fails every waiting call with [`BusError::Unavailable`] (`why`): the
    /// connection their replies would come on is gone.
    pub fn fail_all(&self, why: &str) {
        let drained: Vec<_> = self.table().drain().collect();
        for (_, tx) in drained {
            let _ = tx.send(Err(BusError::Unavailable(why.to_string())));
        }
    }

    /// Waits for the reply of `call` (a request to `routing_key`) up to
    /// `timeout`, then forgets the call.
    pub async fn wait(&self, call: Call, routing_key: &str, timeout: Duration) -> Reply {
        let outcome = tokio::time::timeout(timeout, call.reply).await;
        self.table().remove(&call.id);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_call_is_answered_times_out_or_fails_with_the_connection() {
        let pending = PendingCalls::default();
        let call = pending.open();
        assert!(pending.answer(&call.id, b"ok".to_vec()));
        let got = pending.wait(call, "svc.m", Duration::from_secs(1)).await;
        assert_eq!(got.unwrap(), b"ok");

        let call = pending.open();
        let id = call.id.clone();
        let got = pending.wait(call, "svc.m", Duration::from_secs(1)).await;
        assert!(matches!(got, Err(BusError::Timeout { .. })));
        assert!(!pending.answer(&id, b"late".to_vec()), "forgotten");

        let call = pending.open();
        pending.fail_all("gone");
        let got = pending.wait(call, "svc.m", Duration::from_secs(1)).await;
        assert!(matches!(got, Err(BusError::Unavailable(m)) if m == "gone"));
    }
}
