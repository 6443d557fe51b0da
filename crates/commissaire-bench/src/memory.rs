//! Resident memory of the stack's processes: read once when idle, and
//! sampled (peak) while a measurement loads them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use commissaire_testkit::daemons::rss_kib;

use crate::report::Row;

/// How often the sampler reads /proc.
const EVERY: Duration = Duration::from_millis(100);
/// The idle target per daemon (KiB).
pub const IDLE_TARGET_KIB: u64 = 20 * 1024;

/// A process to watch: a name and its pid.
pub type Proc = (String, u32);

/// RSS (KiB) of each process now.
pub fn snapshot(procs: &[Proc]) -> BTreeMap<String, u64> {
    procs
        .iter()
        .filter_map(|(name, pid)| rss_kib(*pid).map(|kib| (name.clone(), kib)))
        .collect()
}

/// Samples the processes' RSS in the background until [`Sampler::finish`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<BTreeMap<String, u64>>,
}

impl Sampler {
    /// Starts sampling `procs`.
    pub fn start(procs: Vec<Proc>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut peak: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                for (name, kib) in snapshot(&procs) {
                    let p = peak.entry(name).or_default();
                    *p = (*p).max(kib);
                }
                if flag.load(Ordering::Relaxed) {
                    return peak;
                }
                tokio::time::sleep(EVERY).await;
            }
        });
        Sampler { stop, task }
    }

    /// Stops sampling; the peak RSS (KiB) of each process.
    pub async fn finish(self) -> BTreeMap<String, u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

/// Peak RSS per process over several phases.
#[derive(Debug, Default, Clone)]
pub struct Peaks(pub BTreeMap<String, u64>);

impl Peaks {
    /// Folds a sampler's result in.
    pub fn add(&mut self, peaks: BTreeMap<String, u64>) {
        for (name, kib) in peaks {
            let p = self.0.entry(name).or_default();
            *p = (*p).max(kib);
        }
    }
}

/// `kib` as megabytes with one decimal.
pub fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 / 1024.0)
}

/// One row per process: idle RSS, peak under load (and where the load
/// came from), and the idle target.
pub fn rows(
    setup: &str,
    procs: &[Proc],
    idle: &BTreeMap<String, u64>,
    load: &BTreeMap<String, Peaks>,
) -> Vec<Row> {
    procs
        .iter()
        .map(|(name, _)| {
            let mut parts = Vec::new();
            match idle.get(name) {
                Some(kib) => parts.push(format!(
                    "idle {} ({kib} KiB; target < 20 MB: {})",
                    mb(*kib),
                    if *kib < IDLE_TARGET_KIB {
                        "met"
                    } else {
                        "MISSED"
                    }
                )),
                None => parts.push("idle ?".to_string()),
            }
            for (phase, peaks) in load {
                if let Some(kib) = peaks.0.get(name) {
                    parts.push(format!("peak during {phase} {}", mb(*kib)));
                }
            }
            Row::note(setup, format!("RSS {name}"), parts.join(", "))
        })
        .collect()
}
