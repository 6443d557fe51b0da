//! What the reconnecting transports (AMQP, Redis) share: the supervisor
//! task's lifetime and the watch of the current connection.

use std::time::Duration;

use tokio::sync::watch;

use crate::{BusError, redact_uri};

/// Aborts the connection supervisor when the last handle on the bus goes.
pub(crate) struct SupervisorGuard(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for SupervisorGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits up to `wait` until `live` holds a connection.
pub(crate) async fn wait_live<T>(live: &mut watch::Receiver<Option<T>>, wait: Duration) -> bool {
    tokio::time::timeout(wait, live.wait_for(|l| l.is_some()))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// Waits for the first connection; a clear error when it does not come.
pub(crate) async fn first_connection<T>(
    mut live: watch::Receiver<Option<T>>,
    wait: Duration,
    uri: &str,
) -> Result<(), BusError> {
    if wait_live(&mut live, wait).await {
        Ok(())
    } else {
        Err(BusError::Unavailable(format!(
            "cannot connect to {} within {wait:?}",
            redact_uri(uri)
        )))
    }
}
