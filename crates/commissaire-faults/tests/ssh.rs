//! An SSH host goes away in the middle of an operation (its sshd and open
//! sessions killed, like a host losing power): the operation ends — failed,
//! with the host named — and nothing stays in process.

use std::time::Duration;

use commissaire_faults::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_cut_during_a_rolling_upgrade_fails_the_roll_and_names_it() {
    let _serial = serial().await;
    let mut sshds: Vec<_> = ["127.0.2.11", "127.0.2.12", "127.0.2.13"]
        .into_iter()
        .map(testkit::TestSshd::start)
        .collect();
    let hosts: Vec<String> = sshds.iter().map(|s| s.address.clone()).collect();
    let markers = Markers::new();
    let mut stack = stack();
    stack.configure(Daemon::ClusterExec, "playbook_dir", json!(playbook_dir()));
    stack.configure(
        Daemon::ClusterExec,
        "ansible_vars",
        markers.ansible_vars(4.0),
    );
    stack.configure(Daemon::ClusterExec, "lease_seconds", json!(4));
    stack.configure(Daemon::ClusterExec, "playbook_timeout_seconds", json!(60));
    start(
        &mut stack,
        &[Daemon::Storage, Daemon::Server, Daemon::ClusterExec],
    )
    .await;
    let api = Api::new(&stack);
    let bus = bus(&stack).await;
    api.put_expect("/api/v0/cluster/trix", json!({}), 201).await;
    for h in &hosts {
        assert_eq!(api.put_host(h).await.status, Some(201));
        set_host_status(&bus, h, "active").await;
        let a = api
            .put(&format!("/api/v0/cluster/trix/hosts/{h}"), json!({}))
            .await;
        assert_eq!(a.status, Some(200), "{a:?}");
    }

    let a = api.put("/api/v0/cluster/trix/upgrade", json!({})).await;
    assert_eq!(a.status, Some(201), "{a:?}");
    // The second host is cut while its upgrade command runs.
    let second = hosts[1].clone();
    wait_until(
        Duration::from_secs(60),
        "the upgrade runs on the second host",
        || {
            let started = markers
                .lines("upgrade.log")
                .iter()
                .any(|w| w[0] == second && w[1] == "start");
            async move {
                if started {
                    Ok(())
                } else {
                    Err("not started".into())
                }
            }
        },
    )
    .await;
    sshds[1].stop();
    let end = wait_op_end(&api, "trix", "upgrade", Duration::from_secs(60)).await;
    assert_eq!(
        end["status"],
        "failed",
        "{end}\n{}",
        stack.log(Daemon::ClusterExec)
    );
    assert_eq!(strs(&end["upgraded"]), [hosts[0].as_str()], "{end}");
    assert_eq!(strs(&end["failed_hosts"]), [second.as_str()], "{end}");
    let reason = end["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with(&format!("{second}: ")), "{end}");
    assert!(
        !end["finished_at"].as_str().unwrap_or_default().is_empty(),
        "{end}"
    );
    assert!(end.get("owner").is_none(), "no lease left: {end}");
    // The third host was not touched; the upgrade never finished on the second.
    let log = markers.lines("upgrade.log");
    assert!(!log.iter().any(|w| w[0] == hosts[2]), "{log:?}");
    assert!(
        !log.iter().any(|w| w[0] == second && w[1] == "end"),
        "{log:?}"
    );
    // The cluster can be operated again at once.
    sshds[1].resume();
    let a = api
        .put("/api/v0/cluster/trix/upgrade", json!({"max_failures": 0}))
        .await;
    assert_eq!(a.status, Some(201), "a new upgrade is accepted: {a:?}");
    let end = wait_op_end(&api, "trix", "upgrade", Duration::from_secs(90)).await;
    assert_eq!(end["status"], "finished", "{end}");
    assert_eq!(strs(&end["upgraded"]), hosts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_cut_during_its_bootstrap_ends_failed_with_the_reason() {
    let _serial = serial().await;
    let mut sshd = testkit::TestSshd::start("127.0.2.21");
    let work = tempfile::tempdir().unwrap();
    let vars = bootstrap_vars(work.path(), 6);
    let mut stack = stack();
    stack.configure(Daemon::Investigator, "playbook_dir", json!(playbook_dir()));
    stack.configure(Daemon::Investigator, "ansible_vars", vars);
    stack.configure(Daemon::Investigator, "facts_timeout", json!(20));
    stack.configure(Daemon::Investigator, "bootstrap_timeout", json!(60));
    start(
        &mut stack,
        &[Daemon::Storage, Daemon::Server, Daemon::Investigator],
    )
    .await;
    let api = Api::new(&stack);
    let path = format!("/api/v0/host/{}", sshd.address);
    assert_eq!(api.put_host(&sshd.address).await.status, Some(201));
    let slow_log = work.path().join("slow.log");
    wait_for_file(
        &slow_log,
        Duration::from_secs(60),
        "the bootstrap reaches the docker step",
    )
    .await;
    sshd.stop();
    let host =
        wait_investigation_ends(&api, &path, Duration::from_secs(60), "the bootstrap ends").await;
    assert_eq!(
        host["status"],
        "failed",
        "{host}\n{}",
        stack.log(Daemon::Investigator)
    );
    let status = api
        .get_ok(&format!("/api/v0/host/{}/status", sshd.address))
        .await;
    let reason = status["host"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("bootstrap failed"), "{status}");
    assert!(
        !work.path().join("install_docker").exists(),
        "the step did not complete"
    );
    // The investigator is still there and investigates the next host.
    assert!(stack.is_running(Daemon::Investigator));
}

/// Starts a test bed host's sshd again when dropped (also when the test panics).
struct TestbedSshdBack(String);

impl Drop for TestbedSshdBack {
    fn drop(&mut self) {
        let index = self.0.rsplit('.').next().unwrap().parse::<u32>().unwrap() - 10;
        testkit::testbed("sshd-start", &[&index.to_string()]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_that_never_comes_back_from_its_restart_fails_the_roll() {
    let _serial = serial().await;
    // The test bed's 8th and 9th hosts (SSH_NET.18 and .19).
    let hosts = testbed_hosts(7..9);
    let victim = hosts[1].clone();
    let _back = TestbedSshdBack(victim.clone());
    let markers = Markers::new();
    // The victim's restart takes it down for good (a host that does not boot).
    let d = markers.dir.path().display();
    let tb = std::env::var("COMMISSAIRE_TEST_TESTBED").unwrap();
    let state = std::env::var("COMMISSAIRE_TEST_STATE").unwrap();
    std::fs::write(
        markers.dir.path().join("cut.sh"),
        format!(
            "#!/bin/sh\nif [ \"$1\" = {victim} ]; then\n  echo \"$1 cut $(date +%s.%N)\" >> {d}/restart.log\n  \
             setsid -f {tb} sshd-stop {state} $(( ${{1##*.}} - 10 )) </dev/null >/dev/null 2>&1\nelse\n  exec sh {d}/restart.sh \"$1\"\nfi\n"
        ),
    )
    .unwrap();
    let mut vars = markers.ansible_vars(1.0);
    vars["commissaire_restart_command"] =
        json!(format!("sh {d}/cut.sh {{{{ inventory_hostname }}}}"));
    vars["commissaire_restart_wait_timeout"] = json!(8);
    let mut stack = stack();
    stack.configure(Daemon::ClusterExec, "playbook_dir", json!(playbook_dir()));
    stack.configure(Daemon::ClusterExec, "ansible_vars", vars);
    stack.configure(Daemon::ClusterExec, "lease_seconds", json!(4));
    stack.configure(Daemon::ClusterExec, "playbook_timeout_seconds", json!(60));
    start(
        &mut stack,
        &[Daemon::Storage, Daemon::Server, Daemon::ClusterExec],
    )
    .await;
    let api = Api::new(&stack);
    let bus = bus(&stack).await;
    api.put_expect("/api/v0/cluster/cut", json!({}), 201).await;
    for h in &hosts {
        assert_eq!(api.put_host(h).await.status, Some(201));
        set_host_status(&bus, h, "active").await;
        let a = api
            .put(&format!("/api/v0/cluster/cut/hosts/{h}"), json!({}))
            .await;
        assert_eq!(a.status, Some(200), "{a:?}");
    }
    let a = api.put("/api/v0/cluster/cut/restart", json!({})).await;
    assert_eq!(a.status, Some(201), "{a:?}");
    let end = wait_op_end(&api, "cut", "restart", Duration::from_secs(90)).await;
    assert_eq!(
        end["status"],
        "failed",
        "{end}\n{}",
        stack.log(Daemon::ClusterExec)
    );
    assert_eq!(strs(&end["restarted"]), [hosts[0].as_str()], "{end}");
    assert_eq!(strs(&end["failed_hosts"]), [victim.as_str()], "{end}");
    assert!(
        end["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with(&format!("{victim}: "))),
        "{end}"
    );
    assert!(end.get("owner").is_none(), "no lease left: {end}");
    let log = markers.lines("restart.log");
    assert!(
        log.iter().any(|w| w[0] == victim && w[1] == "cut"),
        "{log:?}"
    );
}
