//! Rolling operations against real sshd hosts (127.0.0.15 to .19) with
//! ansible-playbook, through the REST API, with the real storage service on
//! etcd and RabbitMQ. Needs the testbed: `source /tmp/tb/env`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_rolls_one_host_at_a_time() {
    let _hosts = HOSTS_LOCK.lock().await;
    let stack = Stack::start().await;
    let markers = Markers::new();
    stack.cluster("honeynut", &HOSTS).await;
    let exec = stack.clusterexec(&exec_config(&markers, "r1", 10.0)).await;

    let t0 = Instant::now();
    let (s, started) = stack
        .put("/api/v0/cluster/honeynut/restart", json!({}))
        .await;
    assert_eq!(s, 201, "{started}");
    assert_eq!(started["status"], "in_process");
    assert_eq!(started["restarted"], json!([]));
    let (s, b) = stack
        .put("/api/v0/cluster/honeynut/restart", json!({}))
        .await;
    assert_eq!(s, 409, "a second concurrent PUT: {b}");

    let (end, timed) = stack
        .wait_end_timed("honeynut", "restart", Duration::from_secs(180))
        .await;
    let wall = t0.elapsed().as_secs_f64();
    let seen: Vec<_> = timed.iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(end["status"], "finished", "{end}");
    assert_eq!(strs(&end["restarted"]), HOSTS);
    assert_eq!(end["in_process"], json!([]));
    assert!(
        end.get("owner").is_none() && end.get("failed_hosts").is_none(),
        "{end}"
    );

    // Observed in process with partial lists: each host in process alone, in order.
    for (i, h) in HOSTS.iter().enumerate() {
        assert!(
            seen.iter().any(|r| r["status"] == "in_process"
                && strs(&r["in_process"]) == [h.to_string()]
                && strs(&r["restarted"]) == HOSTS[..i]),
            "never saw {h} in process after {:?}: {seen:#?}",
            &HOSTS[..i]
        );
    }

    // The marker files: each host went down and came back before the next one began.
    let ev = markers.events("restart.log");
    let t = |h: &str, e: &str| ev[&(h.to_string(), e.to_string())];
    for w in HOSTS.windows(2) {
        assert!(
            t(w[0], "start") < t(w[0], "down") && t(w[0], "down") < t(w[0], "up"),
            "{ev:?}"
        );
        assert!(
            t(w[0], "up") < t(w[1], "start"),
            "{} restarted before {} was back: {ev:?}",
            w[1],
            w[0]
        );
    }
    // Overhead per host: the operation's time minus the hosts' own downtime.
    let total = seconds_between(&end["started_at"], &end["finished_at"]);
    let downtime: f64 = HOSTS.iter().map(|h| t(h, "up") - t(h, "down")).sum();
    let n = HOSTS.len() as f64;
    println!(
        "MEASURE restart of {} hosts: total {total:.2}s (wall {wall:.2}s), hosts' downtime {downtime:.2}s \
         ({:.2}s/host), overhead {:.2}s/host",
        HOSTS.len(),
        downtime / n,
        (total - downtime) / n
    );
    // Where the overhead goes: when each host's step began (first seen in
    // process, polled every 100 ms) and ended (first seen done).
    let first_seen = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        timed
            .iter()
            .find(|(_, r)| pred(r))
            .map(|(at, _)| *at)
            .unwrap()
    };
    for (i, h) in HOSTS.iter().enumerate() {
        let began = first_seen(&|r| strs(&r["in_process"]).contains(&h.to_string()));
        let ended = first_seen(&|r| strs(&r["restarted"]).len() > i);
        println!(
            "MEASURE   {h}: step {:.2}s = command started {:.2}s after the step began, \
             sshd down after {:.2}s more, down {:.2}s, step seen done {:.2}s after sshd was back",
            ended - began,
            t(h, "start") - began,
            t(h, "down") - t(h, "start"),
            t(h, "up") - t(h, "down"),
            ended - t(h, "up"),
        );
    }
    exec.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upgrade_and_deploy_run_their_commands_on_each_host() {
    let _hosts = HOSTS_LOCK.lock().await;
    let stack = Stack::start().await;
    let markers = Markers::new();
    let hosts = &HOSTS[..3];
    stack.cluster("cheerios", hosts).await;
    let exec = stack.clusterexec(&exec_config(&markers, "r1", 10.0)).await;

    let (s, b) = stack
        .put("/api/v0/cluster/cheerios/upgrade", json!({}))
        .await;
    assert_eq!(s, 201, "{b}");
    let (end, _) = stack
        .wait_end("cheerios", "upgrade", Duration::from_secs(120))
        .await;
    assert_eq!(end["status"], "finished", "{end}");
    assert_eq!(strs(&end["upgraded"]), hosts);
    let ev = markers.events("upgrade.log");
    for w in hosts.windows(2) {
        assert!(
            ev[&(w[0].to_string(), "end".into())] < ev[&(w[1].to_string(), "start".into())],
            "{ev:?}"
        );
    }

    let (s, b) = stack
        .put("/api/v0/cluster/cheerios/deploy", json!({}))
        .await;
    assert_eq!(s, 400, "a deploy needs a version: {b}");
    let (s, b) = stack
        .put(
            "/api/v0/cluster/cheerios/deploy",
            json!({"version": "7.2.6"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["version"], "7.2.6");
    let (end, _) = stack
        .wait_end("cheerios", "deploy", Duration::from_secs(120))
        .await;
    assert_eq!(end["status"], "finished", "{end}");
    assert_eq!(end["version"], "7.2.6");
    assert_eq!(strs(&end["deployed"]), hosts);
    let lines = markers.lines("deploy.log");
    let deployed: Vec<(String, String)> =
        lines.iter().map(|w| (w[0].clone(), w[1].clone())).collect();
    let expected: Vec<(String, String)> = hosts
        .iter()
        .map(|h| (h.to_string(), "7.2.6".to_string()))
        .collect();
    assert_eq!(
        deployed, expected,
        "the version reached each host, in order"
    );
    exec.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_host_fails_the_roll_and_names_it() {
    let _hosts = HOSTS_LOCK.lock().await;
    let stack = Stack::start().await;
    let markers = Markers::new();
    let hosts = &HOSTS[..3];
    stack.cluster("trix", hosts).await;
    let mut config = exec_config(&markers, "r1", 10.0);
    config["ansible_vars"] = markers.ansible_vars(3.0);
    let exec = stack.clusterexec(&config).await;

    let (s, b) = stack.put("/api/v0/cluster/trix/upgrade", json!({})).await;
    assert_eq!(s, 201, "{b}");
    // While the first host upgrades, the second one goes away.
    let deadline = Instant::now() + Duration::from_secs(30);
    while markers.lines("upgrade.log").is_empty() {
        assert!(Instant::now() < deadline, "the first host never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sshd("sshd-stop", hosts[1]);
    let _back = SshdBack(HOSTS[1]);
    let (end, _) = stack
        .wait_end("trix", "upgrade", Duration::from_secs(120))
        .await;
    assert_eq!(end["status"], "failed", "{end}");
    assert_eq!(strs(&end["upgraded"]), [hosts[0]]);
    assert_eq!(strs(&end["failed_hosts"]), [hosts[1]]);
    assert_eq!(strs(&end["in_process"]), [hosts[1]]);
    let reason = end["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("{}: ", hosts[1])) && reason.contains("nreachable"),
        "{reason}"
    );
    assert!(!end["finished_at"].as_str().unwrap().is_empty());
    assert_eq!(
        markers.lines("upgrade.log").len(),
        2,
        "only the first host ran the upgrade (start and end)"
    );
    exec.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_batches_and_tolerated_failures() {
    let _hosts = HOSTS_LOCK.lock().await;
    let stack = Stack::start().await;
    let markers = Markers::new();
    stack.cluster("kix", &HOSTS).await;
    let mut config = exec_config(&markers, "r1", 10.0);
    config["ansible_vars"] = markers.ansible_vars(2.0);
    let exec = stack.clusterexec(&config).await;

    let (s, b) = stack.delete("/api/v0/cluster/kix/upgrade").await;
    assert_eq!(s, 404, "nothing to cancel: {b}");
    let (s, b) = stack.put("/api/v0/cluster/kix/upgrade", json!({})).await;
    assert_eq!(s, 201, "{b}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while markers.lines("upgrade.log").is_empty() {
        assert!(Instant::now() < deadline, "the first host never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, b) = stack.delete("/api/v0/cluster/kix/upgrade").await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["cancel_requested"], true);
    let (end, _) = stack
        .wait_end("kix", "upgrade", Duration::from_secs(60))
        .await;
    assert_eq!(end["status"], "cancelled", "{end}");
    assert_eq!(
        strs(&end["upgraded"]),
        [HOSTS[0]],
        "stopped after the current host"
    );
    assert_eq!(end["in_process"], json!([]));
    let (s, b) = stack.delete("/api/v0/cluster/kix/upgrade").await;
    assert_eq!(s, 409, "no longer in process: {b}");

    // Two hosts at a time: pairs run together, one pair after the other.
    std::fs::remove_file(markers.path().join("upgrade.log")).unwrap();
    let (s, b) = stack
        .put("/api/v0/cluster/kix/upgrade", json!({"batch_size": 2}))
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["batch_size"], 2);
    let (end, seen) = stack
        .wait_end("kix", "upgrade", Duration::from_secs(90))
        .await;
    assert_eq!(end["status"], "finished", "{end}");
    assert!(
        seen.iter()
            .any(|r| strs(&r["in_process"]) == HOSTS[..2] && r["upgraded"] == json!([])),
        "{seen:#?}"
    );
    let ev = markers.events("upgrade.log");
    let t = |h: &str, e: &str| ev[&(h.to_string(), e.to_string())];
    assert!(t(HOSTS[0], "start") < t(HOSTS[1], "end") && t(HOSTS[1], "start") < t(HOSTS[0], "end"));
    assert!(
        t(HOSTS[0], "end").max(t(HOSTS[1], "end")) < t(HOSTS[2], "start").min(t(HOSTS[3], "start"))
    );

    // One failure tolerated: the roll goes on past the unreachable host.
    let (s, b) = stack
        .put(
            "/api/v0/cluster/kix/deploy",
            json!({"version": "1", "max_failures": 1}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    sshd("sshd-stop", HOSTS[1]);
    let back = SshdBack(HOSTS[1]);
    let (end, _) = stack
        .wait_end("kix", "deploy", Duration::from_secs(90))
        .await;
    drop(back);
    assert_eq!(end["status"], "failed", "{end}");
    assert_eq!(strs(&end["failed_hosts"]), [HOSTS[1]]);
    let others: Vec<&str> = HOSTS.iter().copied().filter(|h| *h != HOSTS[1]).collect();
    assert_eq!(strs(&end["deployed"]), others);
    exec.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_clusterexec_is_taken_over_within_the_lease() {
    let _hosts = HOSTS_LOCK.lock().await;
    let stack = Stack::start().await;
    let markers = Markers::new();
    stack.cluster("chex", &HOSTS).await;
    let lease = 6.0;
    let mut first =
        stack.clusterexec_binary(&exec_config(&markers, "doomed", lease), markers.path());

    let (s, b) = stack.put("/api/v0/cluster/chex/restart", json!({})).await;
    assert_eq!(s, 201, "{b}");
    // Kill it once it has restarted one host and works on the second.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, r) = stack.get("/api/v0/cluster/chex/restart").await;
        if strs(&r["restarted"]).len() == 1 && strs(&r["in_process"]).len() == 1 {
            assert_eq!(r["owner"], "doomed", "{r}");
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.kill().unwrap(); // SIGKILL: no goodbye
    first.wait().unwrap();
    let killed = Instant::now();

    // A second replica (started right away) takes over once the lease expired.
    let second = stack
        .clusterexec(&exec_config(&markers, "heir", lease))
        .await;
    let takeover = loop {
        let (_, r) = stack.get("/api/v0/cluster/chex/restart").await;
        if r["owner"] == "heir" || r["status"] != "in_process" {
            break killed.elapsed().as_secs_f64();
        }
        assert!(
            killed.elapsed().as_secs_f64() < lease * 1.5 + 2.0,
            "not taken over within the lease: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (end, _) = stack
        .wait_end("chex", "restart", Duration::from_secs(120))
        .await;
    println!(
        "MEASURE takeover {takeover:.2}s after the kill (lease {lease}s, scan {}s); ended {} {:.2}s after the kill",
        lease / 2.0,
        end["status"],
        killed.elapsed().as_secs_f64()
    );
    assert!(
        takeover <= lease + lease / 2.0 + 1.0,
        "took {takeover:.2}s to take over"
    );
    assert!(
        end["status"] == "finished" || end["status"] == "failed",
        "{end}"
    );
    assert_eq!(end["status"], "finished", "resumed and finished: {end}");
    assert_eq!(strs(&end["restarted"]), HOSTS);
    second.shutdown().await;
}

/// With a container manager, each host is cordoned and drained before its
/// restart and uncordoned once it is back and Ready, one host after another
/// (the containermgr service against the test bed's real Kubernetes API
/// server; the test samples each node and its pod while the roll runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_managed_cluster_is_cordoned_drained_and_uncordoned_around_each_host() {
    let _hosts = HOSTS_LOCK.lock().await;
    let stack = Stack::start().await;
    let markers = Markers::new();
    let hosts = &HOSTS[..2];
    let managed = stack.managed_cluster("managed", hosts).await;
    let kube = managed.kube.clone();
    // Each host's (cordoned, its pod present), sampled every 100 ms while
    // the roll runs: the distinct samples, in order.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (kube, stop) = (kube.clone(), stop.clone());
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        tokio::spawn(async move {
            let mut samples: Vec<Vec<(bool, bool)>> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut sample = Vec::new();
                for h in &hosts {
                    let pod = kube.pods_on(h).await.contains(&format!("app-on-{h}"));
                    sample.push((kube.unschedulable(h).await, pod));
                }
                if samples.last() != Some(&sample) {
                    samples.push(sample);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        })
    };
    let exec = stack
        .clusterexec(&exec_config(&markers, "drainer", 10.0))
        .await;
    let (s, b) = stack
        .put("/api/v0/cluster/managed/restart", json!({}))
        .await;
    assert_eq!(s, 201, "{b}");
    let (end, _) = stack
        .wait_end("managed", "restart", Duration::from_secs(180))
        .await;
    assert_eq!(end["status"], "finished", "{end}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let samples = sampler.await.unwrap();
    for h in hosts {
        assert!(
            kube.pods_on(h).await.is_empty(),
            "the pod on {h} was evicted"
        );
        assert!(!kube.unschedulable(h).await, "{h} uncordoned");
    }
    // Per host, the states seen only ever move forward: schedulable with
    // its pod, cordoned with its pod, cordoned and drained, uncordoned
    // and drained; a host is not touched before the one before it is
    // back (batch size 1: never two nodes cordoned at once).
    let order = [(false, true), (true, true), (true, false), (false, false)];
    let rank = |state: (bool, bool)| {
        order
            .iter()
            .position(|s| *s == state)
            .unwrap_or_else(|| panic!("state {state:?} seen: {samples:?}"))
    };
    for i in 0..hosts.len() {
        let ranks: Vec<usize> = samples.iter().map(|s| rank(s[i])).collect();
        assert!(
            ranks.windows(2).all(|w| w[0] <= w[1]),
            "host {} went back: {samples:?}",
            hosts[i]
        );
    }
    for s in &samples {
        assert!(
            s.iter().filter(|(cordoned, _)| *cordoned).count() <= 1,
            "{samples:?}"
        );
        // The second host is left alone until the first is done.
        assert!(rank(s[1]) == 0 || rank(s[0]) == 3, "{samples:?}");
    }
    exec.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_via_ssh_runs_the_command_over_the_session_one_host_at_a_time() {
    let _hosts = HOSTS_LOCK.lock().await;
    let stack = Stack::start().await;
    let markers = Markers::new();
    let hosts = &HOSTS[..2];
    stack.cluster("cheerios-ssh", hosts).await;
    let mut config = exec_config(&markers, "r1", 10.0);
    config["restart_via"] = json!("ssh");
    let exec = stack.clusterexec(&config).await;
    let (s, b) = stack
        .put("/api/v0/cluster/cheerios-ssh/restart", json!({}))
        .await;
    assert_eq!(s, 201, "{b}");
    let (end, _) = stack
        .wait_end("cheerios-ssh", "restart", Duration::from_secs(120))
        .await;
    assert_eq!(end["status"], "finished", "{end}");
    assert_eq!(strs(&end["restarted"]), hosts);
    let ev = markers.events("restart.log");
    let t = |h: &str, e: &str| ev[&(h.to_string(), e.to_string())];
    assert!(t(hosts[0], "down") < t(hosts[0], "up"), "{ev:?}");
    assert!(
        t(hosts[0], "up") < t(hosts[1], "start"),
        "{} restarted before {} was back: {ev:?}",
        hosts[1],
        hosts[0]
    );
    let total = seconds_between(&end["started_at"], &end["finished_at"]);
    let downtime: f64 = hosts.iter().map(|h| t(h, "up") - t(h, "start")).sum();
    println!(
        "MEASURE restart_via ssh of {} hosts: overhead {:.2}s/host",
        hosts.len(),
        (total - downtime) / hosts.len() as f64
    );
    exec.shutdown().await;
}
