//! Watcher capacity: how many host checks per second the watcher daemon
//! completes on the test sshd hosts, what one check costs its process in
//! CPU, and the sweep time of a 10,000-host fleet that follows.
//!
//! The hosts are stored as the investigator leaves bootstrapped ones (host
//! `active`, credentials, a `WatcherRecord` due long ago), and the watcher
//! is restarted with a short `interval`, so every host is due again as soon
//! as it was checked and the watcher is never idle. A check (`check: ssh`,
//! the default) is one command on the host's pooled SSH session, or (`check:
//! playbook`) a `check_host_availability` playbook run; then the watcher
//! writes the host's `last_check`. Every distinct `last_check` stamped
//! inside the measuring window is one completed check. The hosts' records
//! are polled every 50 ms, more often than the interval lets any host be
//! checked twice, so no check is missed. CPU is the watcher process's
//! user + system time over the window, with the `ssh` client processes it
//! started and reaped (`/proc/PID/stat`), divided by the checks.

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
    /// The `concurrency` values of the `ssh` rows (hosts checked at once).
    pub concurrency: Vec<usize>,
    /// Whether to add a row of `check: playbook` (at the first concurrency).
    pub playbook_row: bool,
    /// Length of each measuring window.
    pub window: Duration,
}

/// A fleet the sweep time is projected for.
const FLEET: f64 = 10_000.0;

/// CPU time (user + system) of the SSH master processes of `pid`'s
/// session pool (their control sockets are in `commissaire-ssh-<pid>-*`).
fn masters_cpu_time(pid: u32) -> Duration {
    let marker = format!("commissaire-ssh-{pid}-");
    let mut total = Duration::ZERO;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(other) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{other}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&marker) {
            total += stat_time(other, false).unwrap_or_default();
        }
    }
    total
}

/// CPU time (user + system, with the reaped children's when `children`)
/// of `pid` so far, from `/proc/PID/stat`.
fn stat_time(pid: u32, children: bool) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces) in ")":
    // utime, stime, cutime, cstime are fields 14-17 (1-based; the state,
    // field 3, is fields[0] here).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..if children { 15 } else { 13 })?
        .iter()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    // /proc counts in USER_HZ, 100 per second on Linux.
    Some(Duration::from_millis(ticks * 10))
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

/// Measures the watcher on `hosts` through `split`: one row per
/// concurrency with `check: ssh`, and one with `check: playbook`. The
/// watcher is stopped afterwards.
pub async fn watcher_rows(
    split: &mut Split,
    hosts: &[String],
    key_b64: &str,
    bench: &WatcherBench,
    peaks: &mut Peaks,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &concurrency in &bench.concurrency {
        rows.push(watcher_row(split, hosts, key_b64, bench, "ssh", concurrency, peaks).await?);
    }
    if bench.playbook_row {
        let concurrency = bench.concurrency.first().copied().unwrap_or(10);
        let mut row =
            watcher_row(split, hosts, key_b64, bench, "playbook", concurrency, peaks).await?;
        let alone = check_alone(&hosts[0], key_b64).await?;
        row.note.push_str(&format!(
            "; one check_host_availability playbook run takes {alone:.2} s alone (median of 3, watcher stopped)"
        ));
        rows.push(row);
    }
    Ok(rows)
}

/// One measurement: the watcher restarted with `check` and `concurrency`.
async fn watcher_row(
    split: &mut Split,
    hosts: &[String],
    key_b64: &str,
    bench: &WatcherBench,
    check: &str,
    concurrency: usize,
    peaks: &mut Peaks,
) -> anyhow::Result<Row> {
    let setup = split.setup.label();
    split.reconfigure(
        Daemon::Watcher,
        &[
            ("interval", json!(bench.interval)),
            ("concurrency", json!(concurrency)),
            ("check", json!(check)),
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

    // Warm-up: until every host was checked once (its session is open, its
    // key recorded), as in a watcher that runs for a while.
    let warm = Instant::now();
    loop {
        let now = hosts_now(split, hosts).await?;
        if now.iter().all(|h| h["last_check"] != old) {
            break;
        }
        anyhow::ensure!(
            warm.elapsed() < Duration::from_secs(180),
            "the watcher did not check every host in 180 s:\n{}",
            split.stack.log(Daemon::Watcher)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let pid = split
        .stack
        .pid(Daemon::Watcher)
        .ok_or_else(|| anyhow::anyhow!("the watcher is not running"))?;
    let sampler = Sampler::start(split.procs());
    let cpu_before = stat_time(pid, true);
    let masters_before = masters_cpu_time(pid);
    let from = now_naive();
    let t0 = Instant::now();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut failed: HashSet<String> = HashSet::new();
    while t0.elapsed() < bench.window {
        tokio::time::sleep(Duration::from_millis(50)).await;
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
    let cpu_after = stat_time(pid, true);
    let masters = masters_cpu_time(pid).saturating_sub(masters_before);
    peaks.add(sampler.finish().await);
    // Only checks stamped inside the window.
    let checks = seen
        .iter()
        .filter(|(_, s)| commissaire_models::parse_iso(s).is_some_and(|t| t <= to))
        .count();
    let window = (to - from).as_seconds_f64();
    let rate = checks as f64 / window.max(1e-9);
    let hosts_checked: HashSet<&String> = seen.iter().map(|(a, _)| a).collect();
    split.stack.terminate(Daemon::Watcher);
    let cpu = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) if checks > 0 => format!(
            "{:.2} ms CPU per check in the watcher process (with any ssh clients it ran), \
             {:.2} ms in its ssh masters",
            (a.saturating_sub(b)).as_secs_f64() * 1000.0 / checks as f64,
            masters.as_secs_f64() * 1000.0 / checks as f64
        ),
        _ => "CPU per check unknown".to_string(),
    };
    let sweep = if rate > 0.0 {
        format!("{:.1} min", FLEET / rate / 60.0)
    } else {
        "never".to_string()
    };
    let mut note = format!(
        "check: {check}; {checks} checks in {window:.1} s ({} of {} hosts checked), interval {} s; \
         {cpu}; a {FLEET:.0}-host sweep at this rate: {sweep}",
        hosts_checked.len(),
        hosts.len(),
        bench.interval,
    );
    if !failed.is_empty() {
        note.push_str(&format!("; {} hosts seen FAILED", failed.len()));
    }
    Ok(Row {
        setup: setup.to_string(),
        what: format!("watcher checks/s ({check}), {} ssh hosts", hosts.len()),
        concurrency: Some(concurrency),
        n: Some(checks),
        rate: Some(rate),
        note,
        ..Row::default()
    })
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
