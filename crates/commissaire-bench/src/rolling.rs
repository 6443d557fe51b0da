//! Rolling restart overhead: a cluster of test sshd hosts restarted through
//! the split stack (`PUT /cluster/NAME/restart`, clusterexec running
//! `restart.yaml` host by host), timed, minus the hosts' own downtime.
//!
//! A test host cannot reboot, so the restart command is a script (as in
//! clusterexec's `tests/rolling.rs`): it marks the time, then, detached as a
//! reboot would be, stops the host's sshd (`testbed.sh sshd-stop`, which
//! also ends its sessions), waits `down_seconds`, starts it again and marks
//! when it went down and when it was back. A host's own downtime is the time
//! from its restart command starting to its sshd listening again; the
//! overhead is everything else: clusterexec's bookkeeping, and the playbook
//! run (ansible-playbook start-up, the SSH connection, polling the port
//! until it closes and until SSH works again). To separate ansible from
//! clusterexec, the same playbook is also run alone on one host.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use commissaire_ansible::{Playbook, PlaybookRunner, Target};
use commissaire_testkit::daemons::Daemon;
use serde_json::{Value, json};

use crate::memory::{Peaks, Sampler};
use crate::report::Row;
use crate::stack::{Split, active_host};

/// Writes the fake reboot script into `dir`; its markers go to `dir/restart.log`.
fn write_script(dir: &Path, down_seconds: f64) -> anyhow::Result<()> {
    let tb = std::env::var("COMMISSAIRE_TEST_TESTBED").context("COMMISSAIRE_TEST_TESTBED")?;
    let state = std::env::var("COMMISSAIRE_TEST_STATE").context("COMMISSAIRE_TEST_STATE")?;
    let d = dir.display();
    let script = format!(
        r#"#!/bin/sh
A=$1; I=$(( ${{A##*.}} - 10 ))
echo "$A start $(date +%s.%N)" >> {d}/restart.log
setsid -f sh -c "{tb} sshd-stop {state} $I >/dev/null 2>&1; echo \"$A down \$(date +%s.%N)\" >> {d}/restart.log; sleep {down_seconds}; {tb} sshd-start {state} $I >/dev/null 2>&1; echo \"$A up \$(date +%s.%N)\" >> {d}/restart.log" </dev/null >/dev/null 2>&1
"#
    );
    std::fs::write(dir.join("restart.sh"), script)?;
    Ok(())
}

/// The playbook variables making `restart.yaml` run the script.
fn restart_vars(dir: &Path) -> Value {
    json!({
        "commissaire_restart_command": format!("sh {}/restart.sh {{{{ inventory_hostname }}}}", dir.display()),
        // Poll for the host as soon as its SSH port closed.
        "commissaire_restart_wait_delay": 0,
        "commissaire_restart_down_timeout": 30,
        "commissaire_restart_wait_timeout": 120,
    })
}

/// `(address, event) -> seconds since the epoch`, the last of each.
fn events(dir: &Path) -> HashMap<(String, String), f64> {
    std::fs::read_to_string(dir.join("restart.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Some((
                (w.first()?.to_string(), w.get(1)?.to_string()),
                w.get(2)?.parse().ok()?,
            ))
        })
        .collect()
}

/// A host's own downtime from the markers: restart command started -> sshd back.
fn downtime(ev: &HashMap<(String, String), f64>, host: &str) -> anyhow::Result<f64> {
    let t = |e: &str| {
        ev.get(&(host.to_string(), e.to_string()))
            .copied()
            .with_context(|| format!("no '{e}' marker for {host}"))
    };
    Ok(t("up")? - t("start")?)
}

fn seconds_between(from: &Value, to: &Value) -> Option<f64> {
    let p = |v: &Value| commissaire_models::parse_iso(v.as_str()?);
    Some((p(to)? - p(from)?).as_seconds_f64())
}

/// Restarts a cluster of `hosts` (test sshd hosts) through `split` and
/// returns the rows: one roll with `restart_via: playbook` (restart.yaml
/// runs the command, clusterexec waits natively), one with `restart_via:
/// ssh` (clusterexec runs the command over the host's session), and the
/// playbook with its own waits alone. Reconfigures (restarts) clusterexec
/// to run the script.
pub async fn rolling_rows(
    split: &mut Split,
    hosts: &[String],
    key_b64: &str,
    down_seconds: f64,
    peaks: &mut Peaks,
) -> anyhow::Result<Vec<Row>> {
    let setup = split.setup.label();
    let dir = tempfile::tempdir()?;
    write_script(dir.path(), down_seconds)?;
    let vars = restart_vars(dir.path());
    let seeder = split.seeder();
    let creds: Vec<Value> = hosts
        .iter()
        .map(|h| json!({"address": h, "ssh_priv_key": key_b64, "remote_user": "root"}))
        .collect();
    seeder.save_all("HostCreds", &creds).await?;
    let records: Vec<Value> = hosts.iter().map(|h| active_host(h)).collect();
    seeder.save_all("Host", &records).await?;
    let api = split.api.clone();
    api.put_ok("/api/v0/cluster/roll", &json!({})).await?;
    crate::rest::join(&api, "roll", hosts).await?;

    let mut rows = Vec::new();
    for via in ["playbook", "ssh"] {
        split.reconfigure(
            Daemon::ClusterExec,
            &[
                ("ansible_vars", vars.clone()),
                ("playbook_timeout_seconds", json!(300)),
                ("restart_via", json!(via)),
            ],
        );
        let _ = std::fs::remove_file(dir.path().join("restart.log"));
        let sampler = Sampler::start(split.procs());
        let t0 = Instant::now();
        api.put_ok("/api/v0/cluster/roll/restart", &json!({}))
            .await?;
        let end = loop {
            let r = api.get_json("/api/v0/cluster/roll/restart").await?;
            if r["status"] != "in_process" {
                break r;
            }
            anyhow::ensure!(
                t0.elapsed() < Duration::from_secs(60 + hosts.len() as u64 * 60),
                "the restart is still in process: {r}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let wall = t0.elapsed().as_secs_f64();
        peaks.add(sampler.finish().await);
        anyhow::ensure!(end["status"] == "finished", "the restart ended: {end}");
        let total = seconds_between(&end["started_at"], &end["finished_at"]).unwrap_or(wall);
        let ev = events(dir.path());
        let mut down = 0.0;
        for h in hosts {
            down += downtime(&ev, h)?;
        }
        let n = hosts.len() as f64;
        let overhead = (total - down) / n;
        rows.push(Row {
            setup: setup.to_string(),
            what: format!("rolling restart (restart_via {via}), {} ssh hosts", hosts.len()),
            concurrency: Some(1),
            n: Some(hosts.len()),
            note: format!(
                "total {total:.1} s (wall {wall:.1} s) = {:.2} s/host; host's own downtime {:.2} s/host \
                 (restart command -> sshd back, sshd kept down {down_seconds} s); overhead {overhead:.2} s/host \
                 (target <= 0.5 s: {})",
                total / n,
                down / n,
                if overhead <= 0.5 { "met" } else { "MISSED" }
            ),
            ..Row::default()
        });
    }

    // The same playbook alone, on the first host, without clusterexec.
    let mut overrides = serde_json::Map::new();
    if let Value::Object(v) = vars {
        overrides.extend(v);
    }
    let all_vars = commissaire_ansible::merged_vars("fedora", &overrides);
    let runner = PlaybookRunner::new(commissaire_ansible::source_playbook_dir())
        .with_timeout(Duration::from_secs(300));
    let target = Target::new(hosts[0].clone(), "root", key_b64);
    let t = Instant::now();
    let report = runner
        .run(Playbook::Restart, std::slice::from_ref(&target), all_vars)
        .await?;
    let alone = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.is_success(),
        "restart playbook alone: {}",
        report.output
    );
    let alone_down = downtime(&events(dir.path()), &hosts[0])?;
    rows.push(Row {
        setup: "ansible alone".to_string(),
        what: "restart.yaml on 1 ssh host".to_string(),
        concurrency: Some(1),
        n: Some(1),
        note: format!(
            "{alone:.2} s, host's own downtime {alone_down:.2} s, ansible's part {:.2} s \
             (the playbook's own waits, as before clusterexec waited natively)",
            alone - alone_down,
        ),
        ..Row::default()
    });
    rows.push(record_size_row());
    Ok(rows)
}

/// The operation record of a finished 10,000-host managed roll: its
/// timeline's size with every host, and as clusterexec keeps it (the latest
/// done hosts); etcd refuses writes over 1.5 MiB by default.
fn record_size_row() -> Row {
    use commissaire_models::{HostRollState, Phase, RollDetails};
    let hosts = 10_000;
    let phases = [
        "cordon",
        "drain",
        "run",
        "down",
        "up",
        "node_ready",
        "gates",
        "uncordon",
    ];
    let at = "2026-12-01T20:31:19.123456";
    let mut full = RollDetails::default();
    for i in 0..hosts {
        let h = full.host_mut(&format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256));
        h.state = HostRollState::Done;
        h.cordoned = true;
        h.phases = phases
            .iter()
            .map(|p| Phase {
                phase: p.to_string(),
                started_at: at.into(),
                finished_at: at.into(),
            })
            .collect();
    }
    let size = |d: &RollDetails| serde_json::to_vec(d).map_or(0, |v| v.len());
    let every_phase = size(&full);
    let mut kept = full.clone();
    kept.compact();
    let kb = |b: usize| b as f64 / 1024.0;
    Row::note(
        "model",
        format!("operation record of a finished {hosts}-host managed roll"),
        format!(
            "timeline {:.0} KiB with every host ({:.0} B/host); {:.0} KiB as kept (the latest {} done hosts; \
             the done list holds them all: {:.0} KiB); etcd's default request limit 1536 KiB",
            kb(every_phase),
            every_phase as f64 / hosts as f64,
            kb(size(&kept)),
            RollDetails::DONE_HOSTS_KEPT,
            kb(hosts * "\"10.0.255.255\",".len()),
        ),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_ten_thousand_host_roll_s_record_fits_in_an_etcd_request() {
        let row = super::record_size_row();
        println!("{}", row.note);
        let kept: f64 = row
            .note
            .split("; ")
            .nth(1)
            .unwrap()
            .split(" KiB")
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(kept < 1536.0 / 2.0, "{}", row.note);
    }
}
