//! Waiting out a storage outage.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use crate::StorageCallError;

/// Runs a storage call again and again while storage is unavailable
/// ([`StorageCallError::is_unavailable`]), for up to `within`, pausing
/// 200 ms, then twice as long each time, up to 5 s; each retry is logged
/// with `what` ("read the host"). Daemons doing long work use it so that
/// an outage of storage, the bus or a store member delays the work
/// instead of failing it.
pub async fn retry_while_unavailable<T, F, Fut>(
    what: &str,
    within: Duration,
    call: F,
) -> Result<T, StorageCallError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StorageCallError>>,
{
    let deadline = tokio::time::Instant::now() + within;
    call.retry(
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .without_max_times(),
    )
    .sleep(tokio::time::sleep)
    .when(|e: &StorageCallError| e.is_unavailable() && tokio::time::Instant::now() < deadline)
    .notify(|e, pause| tracing::warn!(what, error = %e, retry_in = ?pause, "storage unavailable; retrying"))
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use commissaire_bus::BusError;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_outage_is_waited_out_and_other_errors_are_not() {
        let calls = AtomicUsize::new(0);
        let started = tokio::time::Instant::now();
        let got = retry_while_unavailable("read", Duration::from_secs(60), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(StorageCallError::from(BusError::Unavailable("down".into())))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(got.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        // 200 + 400 + 800 ms of pauses.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(1400) && waited < Duration::from_millis(1500),
            "{waited:?}"
        );

        let calls = AtomicUsize::new(0);
        let got: Result<(), _> =
            retry_while_unavailable("read", Duration::from_secs(60), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(StorageCallError::NotFound("no such host".into()))
            })
            .await;
        assert!(matches!(got, Err(StorageCallError::NotFound(_))));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "a missing record is not retried"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_longer_than_the_limit_is_the_caller_s_error() {
        let started = tokio::time::Instant::now();
        let got: Result<(), _> =
            retry_while_unavailable("read", Duration::from_secs(20), || async {
                Err(StorageCallError::from(BusError::Unavailable("down".into())))
            })
            .await;
        assert!(got.unwrap_err().is_unavailable());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(20) && waited < Duration::from_secs(26),
            "gave up after {waited:?}"
        );
    }
}
