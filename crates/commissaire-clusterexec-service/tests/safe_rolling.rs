//! Rolling a cluster safely, on the testbed's sshd hosts through the REST
//! server: each host's phases in the record, pause / resume / cancel
//! between hosts, and a crashed clusterexec whose successor uncordons only
//! the nodes the operation cordoned (the stand-in Kubernetes API stands in
//! for a cluster: no kubelet runs here).

mod common;

use std::time::{Duration, Instant};

use common::{HOSTS, HOSTS_LOCK, Markers, Stack, exec_config, seconds_between, strs};
use serde_json::{Value, json};

/// Polls the operation until `done(record)`; panics after `within`.
async fn wait_for(
    stack: &Stack,
    path: &str,
    within: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (_, r) = stack.get(path).await;
        if done(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "never {what}: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn phases(entry: &Value) -> Vec<String> {
    entry["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap().to_string())
        .collect()
}

fn events(record: &Value) -> Vec<String> {
    record["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| e["event"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_roll_records_each_host_s_phases_and_is_paused_resumed_and_cancelled() {
    let _hosts = HOSTS_LOCK.lock().await;
    let stack = Stack::start().await;
    let markers = Markers::new();
    let hosts = &HOSTS[..3];
    stack.cluster("safe", hosts).await;
    let exec = stack
        .clusterexec(&exec_config(&markers, "steady", 10.0))
        .await;
    let path = "/api/v0/cluster/safe/restart";
    let (s, b) = stack.put(path, json!({})).await;
    assert_eq!(s, 201, "{b}");
    wait_for(
        &stack,
        path,
        Duration::from_secs(60),
        "at the first host",
        |r| strs(&r["in_process"]) == [hosts[0]],
    )
    .await;
    let (s, r) = stack.send("PUT", &format!("{path}/pause"), None).await;
    assert_eq!((s, r["pause_requested"].clone()), (202, json!(true)), "{r}");

    // The host in process finishes; then the roll waits between hosts.
    let paused = wait_for(&stack, path, Duration::from_secs(90), "paused", |r| {
        r["waiting"] == "paused on request"
    })
    .await;
    assert_eq!(strs(&paused["restarted"]), [hosts[0]], "{paused}");
    assert_eq!(paused["in_process"], json!([]));
    assert_eq!(paused["status"], "in_process");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started: Vec<String> = markers
        .lines("restart.log")
        .into_iter()
        .filter(|w| w[1] == "start")
        .map(|w| w[0].clone())
        .collect();
    assert_eq!(started, [hosts[0]], "no host restarts while paused");

    // Resume: the next host goes; cancel while it runs stops after it.
    let (s, _) = stack.send("PUT", &format!("{path}/resume"), None).await;
    assert_eq!(s, 202);
    wait_for(&stack, path, Duration::from_secs(30), "resumed", |r| {
        strs(&r["in_process"]) == [hosts[1]]
    })
    .await;
    let (s, _) = stack.delete(path).await;
    assert_eq!(s, 202);
    let (end, _) = stack
        .wait_end("safe", "restart", Duration::from_secs(90))
        .await;
    assert_eq!(end["status"], "cancelled", "{end}");
    assert_eq!(strs(&end["restarted"]), &hosts[..2]);
    assert!(end.get("waiting").is_none(), "{end}");
    assert_eq!(
        events(&end),
        [
            "pause requested by anonymous",
            "paused",
            "resume requested by anonymous",
            "resumed",
            "cancel requested by anonymous",
        ],
        "{end}"
    );

    // Each restarted host's timeline: the playbook ran, the host went down
    // (the test restart keeps sshd down for DOWN_SECONDS) and came back up.
    let timeline = end["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 2, "{end}");
    for (entry, host) in timeline.iter().zip(hosts) {
        assert_eq!(entry["host"], *host);
        assert_eq!(entry["state"], "done", "{entry}");
        assert_eq!(phases(entry), ["run", "down", "up"], "{entry}");
        let p = &entry["phases"];
        for i in 0..3 {
            assert!(
                seconds_between(&p[i]["started_at"], &p[i]["finished_at"]) >= 0.0,
                "{entry}"
            );
        }
        let down = seconds_between(&p[1]["started_at"], &p[1]["finished_at"]);
        assert!(
            down >= common::DOWN_SECONDS as f64 - 0.5,
            "down for {down:.2}s: {entry}"
        );
    }
    // A new run keeps this one in its history.
    let (s, next) = stack.put(path, json!({"batch_size": "100%"})).await;
    assert_eq!(s, 201, "{next}");
    assert_eq!(next["history"][0]["status"], "cancelled", "{next}");
    assert_eq!(next["history"][0]["done"], 2);
    assert!(next["history"][0]["mean_host_ms"].as_u64().unwrap() >= 1000);
    let (end, _) = stack
        .wait_end("safe", "restart", Duration::from_secs(90))
        .await;
    assert_eq!(end["status"], "finished", "{end}");
    exec.shutdown().await;
}

/// Of three nodes, the operator cordoned the third before the roll. The
/// first clusterexec is killed while it works on the second host (its node
/// cordoned by the operation); the replica taking over finishes the roll,
/// uncordons the first two nodes, and leaves the third cordoned.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_clusterexec_resumes_and_uncordons_only_what_the_operation_cordoned() {
    let _hosts = HOSTS_LOCK.lock().await;
    let stack = Stack::start().await;
    let markers = Markers::new();
    let hosts = &HOSTS[..3];
    let managed = stack.managed_cluster("kept", hosts).await;
    let kube = &managed.kube;
    kube.set_unschedulable(hosts[2], true).await;
    let third_version = kube.node_version(hosts[2]).await;
    let lease = 6.0;
    let mut first =
        stack.clusterexec_binary(&exec_config(&markers, "doomed", lease), markers.path());
    let path = "/api/v0/cluster/kept/restart";
    let (s, b) = stack.put(path, json!({})).await;
    assert_eq!(s, 201, "{b}");
    let seen = wait_for(
        &stack,
        path,
        Duration::from_secs(90),
        "at the second host, its node cordoned",
        |r| {
            strs(&r["in_process"]) == [hosts[1]]
                && r["timeline"][1]["cordoned"] == true
                && r["timeline"][1]["phases"]
                    .as_array()
                    .is_some_and(|p| p.len() >= 3)
        },
    )
    .await;
    assert_eq!(seen["owner"], "doomed");
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        kube.unschedulable(hosts[1]).await,
        "the killed replica left the second node cordoned"
    );

    let heir = stack
        .clusterexec(&exec_config(&markers, "heir", lease))
        .await;
    let (end, _) = stack
        .wait_end("kept", "restart", Duration::from_secs(180))
        .await;
    assert_eq!(end["status"], "finished", "{end}");
    assert_eq!(strs(&end["restarted"]), hosts);
    assert!(
        events(&end).contains(&"taken over from 'doomed' by 'heir'".to_string()),
        "{end}"
    );
    let cordoned: Vec<bool> = end["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["cordoned"] == true)
        .collect();
    assert_eq!(cordoned, [true, true, false], "{end}");
    heir.shutdown().await;
    assert!(!kube.unschedulable(hosts[0]).await);
    assert!(
        !kube.unschedulable(hosts[1]).await,
        "uncordoned by the heir"
    );
    assert!(
        kube.unschedulable(hosts[2]).await,
        "left as the operator had it"
    );
    assert_eq!(
        kube.node_version(hosts[2]).await,
        third_version,
        "the third node was never written"
    );
}

/// A roll started outside the cluster's maintenance windows waits for the
/// first; that one closes while the first host restarts, so the roll
/// finishes that host, waits for the second window, and resumes in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn maintenance_windows_hold_a_roll_and_a_closing_window_pauses_it_until_the_next() {
    let _hosts = HOSTS_LOCK.lock().await;
    let stack = Stack::start().await;
    let markers = Markers::new();
    let hosts = &HOSTS[..2];
    stack.cluster("nightly", hosts).await;
    let t0 = chrono::Utc::now() + chrono::Duration::seconds(1);
    let at = |s: i64| {
        (t0 + chrono::Duration::seconds(s))
            .format("%H:%M:%S")
            .to_string()
    };
    // Whole seconds, as the windows are written.
    let epoch = |s: i64| (t0 + chrono::Duration::seconds(s)).timestamp() as f64;
    // A restart takes longer than the first window (3 s): the playbook,
    // DOWN_SECONDS down, the login; so the window closes while it runs.
    let windows = json!({"windows": [
        {"start": at(4), "end": at(7), "timezone": "UTC"},
        {"start": at(16), "end": at(120)},
    ]});
    let (s, b) = stack.put("/api/v0/cluster/nightly/rolling", windows).await;
    assert_eq!(s, 200, "{b}");
    let exec = stack
        .clusterexec(&exec_config(&markers, "night-owl", 10.0))
        .await;
    let path = "/api/v0/cluster/nightly/restart";
    let (s, b) = stack.put(path, json!({})).await;
    assert_eq!(s, 201, "{b}");
    let before = wait_for(
        &stack,
        path,
        Duration::from_secs(10),
        "waiting for the window",
        |r| {
            r["waiting"]
                .as_str()
                .is_some_and(|w| w.starts_with("outside the maintenance windows"))
        },
    )
    .await;
    assert_eq!(before["in_process"], json!([]), "{before}");
    let (end, _) = stack
        .wait_end("nightly", "restart", Duration::from_secs(150))
        .await;
    assert_eq!(end["status"], "finished", "{end}");
    // When each host's step began (its first phase), against the windows.
    let began = |i: usize| {
        let t = end["timeline"][i]["phases"][0]["started_at"]
            .as_str()
            .unwrap();
        commissaire_models::parse_iso(t)
            .unwrap()
            .and_utc()
            .timestamp_millis() as f64
            / 1000.0
    };
    let (first, second) = (began(0), began(1));
    assert!(
        first >= epoch(4) && first < epoch(7),
        "first host in the first window: {first} vs {}",
        epoch(4)
    );
    assert!(
        second >= epoch(16),
        "second host only once the second window opened: {second} vs {}",
        epoch(16)
    );
    let first_done = end["timeline"][0]["phases"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["finished_at"]
        .clone();
    let first_done = commissaire_models::parse_iso(first_done.as_str().unwrap())
        .unwrap()
        .and_utc()
        .timestamp() as f64;
    assert!(
        first_done >= epoch(7),
        "the first host outlasted its window and was finished: {end}"
    );
    let events = events(&end);
    let waits: Vec<&String> = events
        .iter()
        .filter(|e| e.starts_with("waiting: outside"))
        .collect();
    assert_eq!(waits.len(), 2, "{events:?}");
    assert!(
        waits[1].contains(&at(16)),
        "the record said when the next window opens: {events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| *e == "resumed").count(),
        2,
        "{events:?}"
    );
    exec.shutdown().await;
}

/// The test's alerting rule: fires while the endpoint says so.
const GATE_RULES: &str = "groups:
  - name: commissaire-test
    rules:
      - alert: CommissaireGateTest
        expr: commissaire_gate_test > 0
        labels:
          severity: critical
";

/// Health gates on the sshd hosts and a real Prometheus: a check command
/// failing on one host stops the roll with its output, a firing alert
/// stops it naming the alert, and once both are healthy the roll passes
/// every gate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_gates_stop_the_roll_with_the_failing_check_s_output() {
    use commissaire_testkit::prometheus::{MetricsEndpoint, TestPrometheus};
    let _hosts = HOSTS_LOCK.lock().await;
    let stack = Stack::start().await;
    let markers = Markers::new();
    let hosts = &HOSTS[..3];
    stack.cluster("gated", hosts).await;
    let metrics = MetricsEndpoint::start("commissaire_gate_test 0\n").await;
    let prometheus = tokio::task::block_in_place(|| {
        TestPrometheus::start(&[metrics.address.as_str()], GATE_RULES)
    });
    // The hosts are this machine: the command tells them apart by the
    // address the SSH connection came in on.
    let dir = markers.path().display().to_string();
    let command = format!("test ! -e {dir}/sick-$(echo $SSH_CONNECTION | cut -d' ' -f3)");
    let gates = json!({
        "commands": [{"command": command, "retries": 1, "interval_seconds": 0.5, "timeout_seconds": 10}],
        "prometheus": {"url": prometheus.url, "alerts": "CommissaireGate.*", "retries": 1, "interval_seconds": 0.5},
    });
    let (s, b) = stack
        .put("/api/v0/cluster/gated/rolling", json!({"gates": gates}))
        .await;
    assert_eq!(s, 200, "{b}");
    let exec = stack
        .clusterexec(&exec_config(&markers, "gatekeeper", 10.0))
        .await;
    let path = "/api/v0/cluster/gated/upgrade";

    // 1. The third host's check command fails: the roll stops there.
    let sick = markers.path().join(format!("sick-{}", hosts[2]));
    std::fs::write(&sick, "").unwrap();
    assert_eq!(stack.put(path, json!({})).await.0, 201);
    let (end, _) = stack
        .wait_end("gated", "upgrade", Duration::from_secs(120))
        .await;
    assert_eq!(end["status"], "failed", "{end}");
    assert_eq!(strs(&end["upgraded"]), &hosts[..2]);
    let reason = end["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("{}: health check 'test ! -e", hosts[2]))
            && reason.contains("failed (2 tries): exit 1"),
        "{reason}"
    );
    assert_eq!(end["timeline"][2]["failed_phase"], "gates", "{end}");
    for entry in &end["timeline"].as_array().unwrap()[..2] {
        assert_eq!(phases(entry), ["run", "gates"], "{entry}");
    }

    // 2. Healthy hosts, but the alert fires: the first host fails the
    // Prometheus gate, which names the alert.
    std::fs::remove_file(&sick).unwrap();
    metrics.set("commissaire_gate_test 1\n");
    tokio::task::block_in_place(|| {
        prometheus.wait_alert("CommissaireGateTest", true, Duration::from_secs(30))
    });
    assert_eq!(stack.put(path, json!({})).await.0, 201);
    let (end, _) = stack
        .wait_end("gated", "upgrade", Duration::from_secs(120))
        .await;
    assert_eq!(end["status"], "failed", "{end}");
    let reason = end["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "{}: health check prometheus failed (2 tries): firing alerts: CommissaireGateTest{{",
            hosts[0]
        )) && reason.contains("severity=\"critical\""),
        "{reason}"
    );
    assert!(!reason.contains(&prometheus.url), "{reason}");

    // 3. The alert resolved: every host passes its gates.
    metrics.set("commissaire_gate_test 0\n");
    tokio::task::block_in_place(|| {
        prometheus.wait_alert("CommissaireGateTest", false, Duration::from_secs(30))
    });
    assert_eq!(stack.put(path, json!({})).await.0, 201);
    let (end, _) = stack
        .wait_end("gated", "upgrade", Duration::from_secs(120))
        .await;
    assert_eq!(end["status"], "finished", "{end}");
    assert_eq!(strs(&end["upgraded"]), hosts);
    exec.shutdown().await;
}

/// The dry run of a managed cluster's restart lists the hosts in order and
/// batches, each node's state and the pods a drain would evict (from the
/// container manager), and touches nothing: no record, no node patched,
/// no pod evicted, no host restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dry_run_plans_the_batches_and_evictions_and_changes_nothing() {
    let _hosts = HOSTS_LOCK.lock().await;
    let stack = Stack::start().await;
    let markers = Markers::new();
    let hosts = &HOSTS[..3];
    let managed = stack.managed_cluster("planned", hosts).await;
    let kube = &managed.kube;
    kube.set_unschedulable(hosts[1], true).await;
    let exec = stack
        .clusterexec(&exec_config(&markers, "planner", 10.0))
        .await;
    let mut versions_before = Vec::new();
    for h in hosts {
        versions_before.push(kube.node_version(h).await);
    }
    let (s, plan) = stack
        .put(
            "/api/v0/cluster/planned/restart",
            json!({"dry_run": true, "batch_size": 2, "last": [hosts[0]]}),
        )
        .await;
    assert_eq!(s, 200, "{plan}");
    assert_eq!(plan["batches"], json!([[hosts[1], hosts[2]], [hosts[0]]]));
    let rows = plan["hosts"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        let h = row["host"].as_str().unwrap();
        assert_eq!(
            row["evictions"],
            json!([format!("{}/app-on-{h}", kube.namespace)]),
            "{plan}"
        );
    }
    assert_eq!(rows[0]["node"], "cordoned (it stays cordoned)", "{plan}");
    assert_eq!(rows[1]["node"], "schedulable", "{plan}");
    assert_eq!(plan["gates"][0]["gate"], "node_ready", "{plan}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stack.get("/api/v0/cluster/planned/restart").await.0, 404);
    exec.shutdown().await;
    assert!(markers.lines("restart.log").is_empty(), "no host restarted");
    let mut versions_after = Vec::new();
    for h in hosts {
        versions_after.push(kube.node_version(h).await);
        assert_eq!(
            kube.pods_on(h).await,
            [format!("app-on-{h}")],
            "no pod was evicted"
        );
    }
    assert_eq!(versions_after, versions_before, "the dry run wrote no node");
}
