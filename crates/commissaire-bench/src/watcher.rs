//! Watcher throughput: how many host checks per second the watcher daemon
//! completes on the test sshd hosts.
//!
//! The hosts are stored as the investigator leaves bootstrapped ones (host
//! `active`, credentials, a `WatcherRecord` due long ago), and the watcher
//! is restarted with a short `interval`, so every host is due again as soon
//! as it was checked and the watcher is never idle. A check runs the
//! `check_host_availability` playbook on one host and then writes the
//! host's `last_check`; every distinct `last_check` stamped inside the
//! measuring window is one completed check. The hosts' records are polled
//! every 250 ms, more often than any host can be checked twice (the
//! interval, and a playbook run, take longer), so no check is missed.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use commissaire_ansible::{Playbook, PlaybookRunner, Target};
use commissaire_testkit::daemons::Daemon;
use serde_json::{Value, json};

use crate::memory::{Peaks, Sampler};
use crate::report::Row;
use crate::stack::{BUS_TIMEOUT, Split};

/// The watcher measurement's settings.
#[derive(Debug, Clone)]
pub struct WatcherBench {
    /// `interval` of the watcher (seconds).
    pub interval: f64,
    /// `concurrency` of the watcher (hosts checked at once).
    pub concurrency: usize,
    /// Length of the measuring window.
    pub window: Duration,
}

fn now_naive() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// The hosts' records, read in one batch call.
async fn hosts_now(split: &Split, hosts: &[String]) -> anyhow::Result<Vec<Value>> {
    let keys: Vec<Value> = hosts.iter().map(|h| json!({"address": h})).collect();
    let r = split
        .bus
        .request(
            "storage.get",
            json!({"model_type_name": "Host", "model_json_data": keys}),
            BUS_TIMEOUT,
        )
        .await?;
    Ok(r.as_array().cloned().unwrap_or_default())
}

/// Measures checks per second on `hosts` through `split`'s watcher; returns
/// the row. The watcher is stopped afterwards.
pub async fn watcher_rows(
    split: &mut Split,
    hosts: &[String],
    key_b64: &str,
    bench: &WatcherBench,
    peaks: &mut Peaks,
) -> anyhow::Result<Vec<Row>> {
    let setup = split.setup.label();
    split.reconfigure(
        Daemon::Watcher,
        &[
            ("interval", json!(bench.interval)),
            ("concurrency", json!(bench.concurrency)),
            ("check_timeout", json!(60)),
        ],
    );
    let seeder = split.seeder();
    let old = "2020-01-01T00:00:00.000000";
    let creds: Vec<Value> = hosts
        .iter()
        .map(|h| json!({"address": h, "ssh_priv_key": key_b64, "remote_user": "root"}))
        .collect();
    seeder.save_all("HostCreds", &creds).await?;
    let records: Vec<Value> = hosts.iter().map(|h| crate::stack::active_host(h)).collect();
    seeder.save_all("Host", &records).await?;
    let watch: Vec<Value> = hosts
        .iter()
        .map(|h| json!({"address": h, "last_check": old}))
        .collect();
    seeder.save_all("WatcherRecord", &watch).await?;

    // Warm-up: until the first check completed.
    let warm = Instant::now();
    loop {
        let now = hosts_now(split, hosts).await?;
        if now.iter().any(|h| h["last_check"] != old) {
            break;
        }
        anyhow::ensure!(
            warm.elapsed() < Duration::from_secs(120),
            "the watcher checked no host in 120 s:\n{}",
            split.stack.log(Daemon::Watcher)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let sampler = Sampler::start(split.procs());
    let from = now_naive();
    let t0 = Instant::now();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut failed: HashSet<String> = HashSet::new();
    while t0.elapsed() < bench.window {
        tokio::time::sleep(Duration::from_millis(250)).await;
        for h in hosts_now(split, hosts).await? {
            let stamp = h["last_check"].as_str().unwrap_or_default().to_string();
            let in_window = commissaire_models::parse_iso(&stamp).is_some_and(|t| t >= from);
            if in_window {
                let address = h["address"].as_str().unwrap_or_default().to_string();
                if h["status"] != "active" {
                    failed.insert(address.clone());
                }
                seen.insert((address, stamp));
            }
        }
    }
    let to = now_naive();
    peaks.add(sampler.finish().await);
    // Only checks stamped inside the window.
    let checks = seen
        .iter()
        .filter(|(_, s)| commissaire_models::parse_iso(s).is_some_and(|t| t <= to))
        .count();
    let window = (to - from).as_seconds_f64();
    let hosts_checked: HashSet<&String> = seen.iter().map(|(a, _)| a).collect();
    split.stack.terminate(Daemon::Watcher);
    let alone = check_alone(&hosts[0], key_b64).await?;
    let mut note = format!(
        "{checks} checks in {window:.1} s ({} of {} hosts checked), watcher interval {} s, \
         concurrency {}; one check = one check_host_availability playbook run, which takes \
         {alone:.2} s alone (median of 3, watcher stopped)",
        hosts_checked.len(),
        hosts.len(),
        bench.interval,
        bench.concurrency
    );
    if !failed.is_empty() {
        note.push_str(&format!("; {} hosts seen FAILED", failed.len()));
    }
    Ok(vec![Row {
        setup: setup.to_string(),
        what: format!("watcher checks/s, {} ssh hosts", hosts.len()),
        concurrency: Some(bench.concurrency),
        n: Some(checks),
        rate: Some(checks as f64 / window.max(1e-9)),
        note,
        ..Row::default()
    }])
}

/// How long one `check_host_availability` run on `host` takes with nothing
/// else running (the median of three), in seconds.
async fn check_alone(host: &str, key_b64: &str) -> anyhow::Result<f64> {
    let runner = PlaybookRunner::new(commissaire_ansible::source_playbook_dir())
        .with_timeout(Duration::from_secs(60));
    let target = Target::new(host, "root", key_b64);
    let mut took = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let report = runner
            .run(
                Playbook::CheckHostAvailability,
                std::slice::from_ref(&target),
                Default::default(),
            )
            .await?;
        anyhow::ensure!(report.is_success(), "check of {host}: {}", report.output);
        took.push(t.elapsed().as_secs_f64());
    }
    took.sort_by(f64::total_cmp);
    Ok(took[1])
}
