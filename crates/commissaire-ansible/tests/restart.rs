//! The restart playbook on three real sshd hosts: each "restart" stops the
//! host's sshd (and every session under it, like a reboot would), waits
//! 3 s and starts it again.  Its own test binary, so that no other test
//! uses these hosts while they are down.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use commissaire_ansible::{HostOutcome, Playbook, Target};
use common::*;
use serde_json::json;

fn testbed() -> (String, String) {
    let tb = std::env::var("COMMISSAIRE_TEST_TESTBED")
        .expect("COMMISSAIRE_TEST_TESTBED is not set: source the testbed env");
    let state = std::env::var("COMMISSAIRE_TEST_STATE")
        .expect("COMMISSAIRE_TEST_STATE is not set: source the testbed env");
    (tb, state)
}

/// Starts the hosts' sshd again if a failed test left one down.
struct RestartOnDrop(Vec<usize>);

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        let (tb, state) = testbed();
        for i in &self.0 {
            let _ = std::process::Command::new(&tb)
                .args(["sshd-start", &state, &i.to_string()])
                .status();
        }
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test]
async fn restart_three_hosts_one_after_another() {
    let (tb, state) = testbed();
    let tmp = tempfile::tempdir().unwrap();
    let scratch = scratch();
    let d = scratch.path();
    let log = d.join("restart.log");
    let hosts = [host(1), host(2), host(3)];
    let indexes: Vec<usize> = hosts
        .iter()
        .map(|h| h.rsplit('.').next().unwrap().parse::<usize>().unwrap() - 10)
        .collect();
    let _guard = RestartOnDrop(indexes.clone());

    // The "reboot": run detached (setsid -f) so that stopping sshd, which
    // kills every process under it, does not kill the script itself.
    let script: PathBuf = d.join("fake-reboot.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             I=$1\n\
             echo \"stop $I $(date +%s.%N)\" >> {log}\n\
             {tb} sshd-stop {state} $I >> {log}.err 2>&1\n\
             echo \"down $I $(date +%s.%N)\" >> {log}\n\
             sleep 3\n\
             {tb} sshd-start {state} $I >> {log}.err 2>&1\n\
             echo \"up $I $(date +%s.%N)\" >> {log}\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let vars = vars(
        d,
        &[
            (
                "commissaire_restart_command",
                json!(format!(
                    "setsid -f {} {{{{ inventory_hostname.split('.')[-1] | int - 10 }}}} \
                     </dev/null >/dev/null 2>&1",
                    script.display()
                )),
            ),
            ("commissaire_restart_wait_delay", json!(1)),
            ("commissaire_restart_wait_timeout", json!(60)),
            ("commissaire_restart_down_timeout", json!(20)),
        ],
    );
    let targets: Vec<Target> = hosts.iter().map(|h| target(h)).collect();
    let started = now();
    let t0 = Instant::now();
    let report = runner(tmp.path())
        .run(Playbook::Restart, &targets, vars)
        .await
        .unwrap();
    let ended = now();
    let took = t0.elapsed();
    let events = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!(
        "restart of 3 hosts took {took:?}\n{events}\n{}",
        report.output
    );
    assert!(report.is_success(), "{}", report.output);
    for h in &hosts {
        assert_eq!(report.hosts[h], HostOutcome::Ok);
    }
    assert_empty(tmp.path());

    // (index, event) -> time
    let mut at: BTreeMap<(usize, String), f64> = BTreeMap::new();
    for line in events.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        at.insert(
            (f[1].parse().unwrap(), f[0].to_string()),
            f[2].parse().unwrap(),
        );
    }
    let t = |i: usize, ev: &str| {
        *at.get(&(i, ev.to_string()))
            .unwrap_or_else(|| panic!("no '{ev}' event for host {i}:\n{events}"))
    };
    let mut downtime = Duration::ZERO;
    for (n, &i) in indexes.iter().enumerate() {
        assert!(started < t(i, "stop") && t(i, "stop") < t(i, "down") && t(i, "down") < t(i, "up"));
        downtime += Duration::from_secs_f64(t(i, "up") - t(i, "stop"));
        if let Some(&next) = indexes.get(n + 1) {
            // Strictly one after another: the next host is only restarted
            // once this one's SSH is back.
            assert!(
                t(next, "stop") > t(i, "up"),
                "host {next} restarted before host {i} was back:\n{events}"
            );
        }
    }
    // The playbook waited for the last host to come back.
    assert!(ended > t(*indexes.last().unwrap(), "up"));
    eprintln!(
        "total downtime of the hosts {downtime:?}, playbook {took:?} (overhead {:?})",
        took.saturating_sub(downtime)
    );

    // All three are reachable again.
    let report = runner(tmp.path())
        .run(
            Playbook::CheckHostAvailability,
            &targets,
            Default::default(),
        )
        .await
        .unwrap();
    assert!(report.is_success(), "{}", report.output);
    assert_empty(tmp.path());
}
