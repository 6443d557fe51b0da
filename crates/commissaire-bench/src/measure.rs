//! Timing many calls: latencies, throughput, percentiles and errors.

use std::future::Future;
use std::time::{Duration, Instant};

/// The outcome of a timed batch of calls.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Latencies of the calls, sorted (failed calls included).
    pub latencies: Vec<Duration>,
    /// Wall-clock time of the whole batch.
    pub elapsed: Duration,
    /// Calls that failed.
    pub errors: usize,
    /// The first failure, to show what went wrong.
    pub first_error: Option<String>,
}

impl Stats {
    /// Number of calls.
    pub fn n(&self) -> usize {
        self.latencies.len()
    }

    /// Calls per second over the batch's wall-clock time.
    pub fn rate(&self) -> f64 {
        self.n() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p` quantile (0..1) of the latencies.
    pub fn pct(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
        self.latencies[i]
    }

    /// Counts a failure.
    pub fn error(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }

    /// Adds another batch's calls (the elapsed times are not added).
    pub fn merge(&mut self, other: Stats) {
        self.latencies.extend(other.latencies);
        self.latencies.sort();
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Runs `total` calls of `call(i)` (`i` = 0..total, each index once) with
/// `concurrency` callers, and times them. A failed call counts as an error
/// (its latency is kept).
pub async fn run<F, Fut>(total: usize, concurrency: usize, call: F) -> Stats
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let concurrency = concurrency.max(1);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let callers = (0..concurrency).map(|_| {
        let call = call.clone();
        let next = next.clone();
        tokio::spawn(async move {
            let mut stats = Stats::default();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                let result = call(i).await;
                stats.latencies.push(t.elapsed());
                if let Err(e) = result {
                    stats.error(format!("{e:#}"));
                }
            }
            stats
        })
    });
    let mut all = Stats::default();
    for caller in futures::future::join_all(callers).await {
        match caller {
            Ok(stats) => all.merge(stats),
            Err(e) => all.error(format!("caller task: {e}")),
        }
    }
    all.elapsed = start.elapsed();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_sorted_latencies() {
        let mut s = Stats::default();
        for ms in (1..=100).rev() {
            s.latencies.push(Duration::from_millis(ms));
        }
        s.latencies.sort();
        assert_eq!(s.pct(0.50), Duration::from_millis(51));
        assert_eq!(s.pct(0.99), Duration::from_millis(100));
        assert_eq!(Stats::default().pct(0.5), Duration::ZERO);
    }

    #[tokio::test]
    async fn run_calls_each_index_once_and_counts_errors() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let stats = run(50, 7, move |i| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push(i);
                anyhow::ensure!(i % 10 != 0, "index {i}");
                Ok(())
            }
        })
        .await;
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        assert_eq!(stats.n(), 50);
        assert_eq!(stats.errors, 5);
        assert!(stats.first_error.unwrap().starts_with("index "));
    }
}
