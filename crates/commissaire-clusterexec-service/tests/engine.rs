//! The engine on the in-process bus with the real storage service (on a
//! redb file) and stand-in host executors and drainers: claiming, ordering,
//! failures, batches, cancel, takeover after an expired lease, lost leases.
//! (The same paths against real sshd hosts and ansible: tests/rolling.rs.)
//! Every test runs on paused tokio time: the clock advances only when all
//! tasks wait, so the timing rules are exact and immune to a loaded machine.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use commissaire_ansible::Target;
use commissaire_bus::{Bus, InProcessBus};
use commissaire_clusterexec_service::{
    ClusterExec, ClusterExecConfig, DrainError, HostExecutor, NodeDrainer, OpKind, PhaseSink,
    StartOutcome, phase,
};
use commissaire_storage::StorageRouter;
use serde_json::{Map, Value, json};

const T: Duration = Duration::from_secs(5);

/// Records every host run: (address, start, end) and can fail some hosts.
#[derive(Default)]
struct FakeHosts {
    delay: Duration,
    failing: HashSet<String>,
    runs: Mutex<Vec<(String, Instant, Instant)>>,
    vars: Mutex<Vec<Map<String, Value>>>,
    /// Hosts whose health checks fail.
    sick: Mutex<HashSet<String>>,
    /// Every health check run: (address, command).
    checks: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl HostExecutor for FakeHosts {
    async fn check(&self, target: &Target, command: &str, _: Duration) -> Result<(), String> {
        self.checks
            .lock()
            .unwrap()
            .push((target.address.clone(), command.to_string()));
        if self.sick.lock().unwrap().contains(&target.address) {
            Err("exit 1: unhealthy".into())
        } else {
            Ok(())
        }
    }

    async fn run(
        &self,
        _: OpKind,
        target: &Target,
        vars: Map<String, Value>,
        phases: &dyn PhaseSink,
    ) -> Result<(), String> {
        let start = Instant::now();
        // As a restart: half the time running, half down.
        tokio::time::sleep(self.delay / 2).await;
        phases.enter(phase::DOWN).await;
        tokio::time::sleep(self.delay / 2).await;
        self.runs
            .lock()
            .unwrap()
            .push((target.address.clone(), start, Instant::now()));
        self.vars.lock().unwrap().push(vars);
        if self.failing.contains(&target.address) {
            Err("it broke".into())
        } else {
            Ok(())
        }
    }
}

impl FakeHosts {
    fn with(delay_ms: u64, failing: &[&str]) -> Arc<FakeHosts> {
        Arc::new(FakeHosts {
            delay: Duration::from_millis(delay_ms),
            failing: failing.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
    }
    fn order(&self) -> Vec<String> {
        self.runs
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.0.clone())
            .collect()
    }
}

/// A container manager's nodes: which are cordoned, and every call.
#[derive(Default)]
struct FakeDrainer {
    calls: Mutex<Vec<String>>,
    cordoned: Mutex<HashSet<String>>,
    fail_drain: bool,
}

impl FakeDrainer {
    fn with_cordoned(nodes: &[&str]) -> Arc<FakeDrainer> {
        let d = FakeDrainer::default();
        d.cordoned
            .lock()
            .unwrap()
            .extend(nodes.iter().map(|n| n.to_string()));
        Arc::new(d)
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn is(&self, node: &str) -> bool {
        self.cordoned.lock().unwrap().contains(node)
    }
}

#[async_trait]
impl NodeDrainer for FakeDrainer {
    async fn is_cordoned(&self, _: &str, a: &str) -> Result<bool, DrainError> {
        Ok(self.is(a))
    }
    async fn cordon(&self, m: &str, a: &str) -> Result<(), DrainError> {
        self.calls.lock().unwrap().push(format!("cordon {m} {a}"));
        self.cordoned.lock().unwrap().insert(a.to_string());
        Ok(())
    }
    async fn drain(&self, m: &str, a: &str) -> Result<(), DrainError> {
        self.calls.lock().unwrap().push(format!("drain {m} {a}"));
        if self.fail_drain {
            Err(DrainError("pods would not leave".into()))
        } else {
            Ok(())
        }
    }
    async fn uncordon(&self, m: &str, a: &str) -> Result<(), DrainError> {
        self.calls.lock().unwrap().push(format!("uncordon {m} {a}"));
        self.cordoned.lock().unwrap().remove(a);
        Ok(())
    }
}

struct Env {
    bus: Bus,
    _storage: commissaire_service::ServiceHandle,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let bus: Bus = Arc::new(InProcessBus::new());
        let router = StorageRouter::from_config(Some(
            &json!({"type": "redb", "path": dir.path().join("db.redb")}),
        ))
        .await
        .unwrap();
        let storage = commissaire_storage::start(router, bus.clone(), 4)
            .await
            .unwrap();
        Env {
            bus,
            _storage: storage,
            _dir: dir,
        }
    }

    async fn storage(&self, method: &str, model: &str, data: Value) -> Result<Value, String> {
        self.bus
            .request(
                &format!("storage.{method}"),
                json!({"model_type_name": model, "model_json_data": data}),
                T,
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// A cluster of `hosts` (records and credentials stored), optionally with a container manager.
    async fn cluster(&self, name: &str, hosts: &[&str], cm: &str) {
        for h in hosts {
            self.storage(
                "save",
                "Host",
                json!({"address": h, "status": "active", "os": "fedora"}),
            )
            .await
            .unwrap();
            self.storage(
                "save",
                "HostCreds",
                json!({"address": h, "ssh_priv_key": "a2V5Cg==", "remote_user": "root"}),
            )
            .await
            .unwrap();
        }
        self.storage(
            "save",
            "Cluster",
            json!({"name": name, "hostset": hosts, "container_manager": cm}),
        )
        .await
        .unwrap();
    }

    /// Sets cluster `name`'s rolling defaults (as `PUT /cluster/NAME/rolling`).
    async fn set_rolling(&self, name: &str, rolling: Value) {
        let mut cluster = self
            .storage("get", "Cluster", json!({"name": name}))
            .await
            .unwrap();
        cluster["rolling"] = rolling;
        self.storage("save", "Cluster", cluster).await.unwrap();
    }

    /// Writes an in-process operation record as the REST server does, plus `extra` members.
    async fn op(&self, kind: OpKind, name: &str, extra: Value) {
        let mut rec = json!({"name": name, "status": "in_process", kind.done_member(): [],
            "in_process": [], "started_at": commissaire_models::now_iso(), "finished_at": ""});
        if kind == OpKind::Deploy {
            rec["version"] = json!("7.2.6");
        }
        for (k, v) in extra.as_object().unwrap() {
            rec[k] = v.clone();
        }
        self.storage("save", kind.model_name(), rec).await.unwrap();
    }

    /// Changes the stored record by compare-and-swap, as the REST server
    /// does (cancel, pause, resume).
    async fn change(&self, kind: OpKind, name: &str, change: impl Fn(&mut Value)) {
        loop {
            let current = self.record(kind, name).await;
            let mut next = current.clone();
            change(&mut next);
            let r = self
                .bus
                .request(
                    "storage.swap",
                    json!({"model_type_name": kind.model_name(), "expected": current, "model_json_data": next}),
                    T,
                )
                .await;
            if r.is_ok() {
                return;
            }
        }
    }

    async fn record(&self, kind: OpKind, name: &str) -> Value {
        self.storage("get", kind.model_name(), json!({"name": name}))
            .await
            .unwrap()
    }

    async fn wait_end(&self, kind: OpKind, name: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let r = self.record(kind, name).await;
            if r["status"] != "in_process" {
                return r;
            }
            assert!(Instant::now() < deadline, "still in process: {r}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn exec(
        &self,
        id: &str,
        hosts: Arc<FakeHosts>,
        drainer: Arc<FakeDrainer>,
        extra: Value,
    ) -> ClusterExec {
        let mut conf = json!({"replica_id": id, "lease_seconds": 2});
        for (k, v) in extra.as_object().unwrap() {
            conf[k] = v.clone();
        }
        let config = ClusterExecConfig::from_config(conf.as_object().unwrap()).unwrap();
        ClusterExec::with_parts(self.bus.clone(), config, drainer, hosts)
    }
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn rolls_host_by_host_and_shows_progress() {
    let env = Env::new().await;
    let hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    env.cluster("c", &hosts, "").await;
    env.op(OpKind::Deploy, "c", json!({})).await;
    let fake = FakeHosts::with(300, &[]);
    let exec = env.exec("r1", fake.clone(), Arc::default(), json!({}));
    assert_eq!(
        exec.start(OpKind::Deploy, "c").await.unwrap(),
        StartOutcome::Started {
            took_over_from: None
        }
    );
    assert_eq!(
        exec.start(OpKind::Deploy, "c").await.unwrap(),
        StartOutcome::AlreadyRunning
    );
    // Meanwhile: in process, with partial lists.
    let mut seen_partial = false;
    let deadline = Instant::now() + T;
    while Instant::now() < deadline {
        let r = env.record(OpKind::Deploy, "c").await;
        if r["status"] != "in_process" {
            break;
        }
        assert_eq!(r["owner"], "r1", "{r}");
        let done = strs(&r["deployed"]).len();
        if (1..3).contains(&done) && strs(&r["in_process"]).len() == 1 {
            seen_partial = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen_partial);
    let r = env.wait_end(OpKind::Deploy, "c", T).await;
    assert_eq!(r["status"], "finished", "{r}");
    assert_eq!(strs(&r["deployed"]), hosts);
    assert_eq!(r["in_process"], json!([]));
    assert!(r["finished_at"].as_str().unwrap().len() > 10);
    for gone in [
        "owner",
        "lease_expires_at",
        "failed_hosts",
        "reason",
        "cancel_requested",
    ] {
        assert!(r.get(gone).is_none(), "{gone} left in {r}");
    }
    assert_eq!(fake.order(), hosts);
    let runs = fake.runs.lock().unwrap().clone();
    for w in runs.windows(2) {
        assert!(w[0].2 <= w[1].1, "hosts overlapped");
    }
    // Each host's timeline: run, then down (the fake's restart), with times.
    let timeline = r["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 3, "{r}");
    for (entry, host) in timeline.iter().zip(hosts) {
        assert_eq!(
            (entry["host"].as_str(), entry["state"].as_str()),
            (Some(host), Some("done"))
        );
        let phases: Vec<&str> = entry["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["phase"].as_str().unwrap())
            .collect();
        assert_eq!(phases, ["run", "down"], "{entry}");
        let p = &entry["phases"][1];
        let (a, b) = (
            p["started_at"].as_str().unwrap(),
            p["finished_at"].as_str().unwrap(),
        );
        assert!(!a.is_empty() && b >= a, "{entry}");
    }
    let vars = fake.vars.lock().unwrap().clone();
    assert_eq!(vars[0]["commissaire_deploy_version"], "7.2.6");
    assert_eq!(vars[0]["commissaire_upgrade_command"], "dnf update -y");
    assert!(exec.running().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_host_stops_the_roll_unless_tolerated() {
    let env = Env::new().await;
    let hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    env.cluster("c", &hosts, "").await;
    env.cluster("d", &hosts, "").await;
    env.op(OpKind::Restart, "c", json!({})).await;
    env.op(OpKind::Restart, "d", json!({"max_failures": 1}))
        .await;
    let fake = FakeHosts::with(10, &["10.0.0.2"]);
    let exec = env.exec("r1", fake.clone(), Arc::default(), json!({}));
    exec.start(OpKind::Restart, "c").await.unwrap();
    let r = env.wait_end(OpKind::Restart, "c", T).await;
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(strs(&r["restarted"]), ["10.0.0.1"]);
    assert_eq!(strs(&r["in_process"]), ["10.0.0.2"]);
    assert_eq!(strs(&r["failed_hosts"]), ["10.0.0.2"]);
    assert_eq!(r["reason"], "10.0.0.2: it broke");
    let failed = &r["timeline"][1];
    assert_eq!(
        (
            failed["state"].as_str(),
            failed["failed_phase"].as_str(),
            failed["reason"].as_str()
        ),
        (Some("failed"), Some("down"), Some("it broke")),
        "{r}"
    );
    assert_eq!(
        fake.order(),
        ["10.0.0.1", "10.0.0.2"],
        "10.0.0.3 was not touched"
    );

    exec.start(OpKind::Restart, "d").await.unwrap();
    let r = env.wait_end(OpKind::Restart, "d", T).await;
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(strs(&r["restarted"]), ["10.0.0.1", "10.0.0.3"]);
    assert_eq!(strs(&r["failed_hosts"]), ["10.0.0.2"]);
    assert_eq!(r["in_process"], json!([]));
}

#[tokio::test(start_paused = true)]
async fn batches_run_together() {
    let env = Env::new().await;
    let hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"];
    env.cluster("c", &hosts, "").await;
    env.op(OpKind::Upgrade, "c", json!({})).await;
    let fake = FakeHosts::with(300, &[]);
    let exec = env.exec("r1", fake.clone(), Arc::default(), json!({"batch_size": 2}));
    let t0 = Instant::now();
    exec.start(OpKind::Upgrade, "c").await.unwrap();
    let r = env.wait_end(OpKind::Upgrade, "c", T).await;
    assert_eq!(r["status"], "finished", "{r}");
    assert_eq!(strs(&r["upgraded"]).len(), 5);
    // Paused time: the clock moves only when every task waits, so the
    // timings are exact (the wait's 20 ms polling is the only slack).
    let took = t0.elapsed();
    assert!(
        (Duration::from_millis(900)..=Duration::from_millis(920)).contains(&took),
        "3 steps of 300 ms took {took:?}"
    );
    let runs = fake.runs.lock().unwrap().clone();
    let started: HashMap<_, _> = runs.iter().map(|r| (r.0.clone(), r.1)).collect();
    let gap = |a: &str, b: &str| {
        let (a, b) = (started[a], started[b]);
        if a > b { a - b } else { b - a }
    };
    assert_eq!(gap("10.0.0.1", "10.0.0.2"), Duration::ZERO, "one batch");
    assert_eq!(gap("10.0.0.3", "10.0.0.4"), Duration::ZERO, "one batch");
    assert_eq!(
        gap("10.0.0.2", "10.0.0.3"),
        Duration::from_millis(300),
        "the next batch starts when the first is done"
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_after_the_current_host() {
    let env = Env::new().await;
    let hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    env.cluster("c", &hosts, "").await;
    env.op(OpKind::Restart, "c", json!({})).await;
    let fake = FakeHosts::with(400, &[]);
    let exec = env.exec("r1", fake.clone(), Arc::default(), json!({}));
    exec.start(OpKind::Restart, "c").await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    // What the REST server's DELETE does.
    env.change(OpKind::Restart, "c", |r| {
        r["cancel_requested"] = json!(true)
    })
    .await;
    let r = env.wait_end(OpKind::Restart, "c", T).await;
    assert_eq!(r["status"], "cancelled", "{r}");
    assert_eq!(strs(&r["restarted"]), ["10.0.0.1"]);
    assert_eq!(r["in_process"], json!([]));
    assert_eq!(r["reason"], "cancelled on request");
    assert_eq!(fake.order(), ["10.0.0.1"]);
}

#[tokio::test(start_paused = true)]
async fn expired_leases_are_taken_over_and_live_ones_are_not() {
    let env = Env::new().await;
    let hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    env.cluster("dead", &hosts, "").await;
    env.cluster("alive", &hosts, "").await;
    env.cluster("lost", &hosts, "").await;
    let past = "2001-01-01T00:00:00.000000";
    let future = (chrono::Utc::now().naive_utc() + chrono::Duration::seconds(600))
        .format(commissaire_models::DATE_FORMAT)
        .to_string();
    // A crashed owner had restarted .1 and was working on .2.
    env.op(
        OpKind::Restart,
        "dead",
        json!({"owner": "gone", "lease_expires_at": past,
        "restarted": ["10.0.0.1"], "in_process": ["10.0.0.2"]}),
    )
    .await;
    env.op(
        OpKind::Upgrade,
        "alive",
        json!({"owner": "other", "lease_expires_at": future}),
    )
    .await;
    // Nobody claimed this one (no clusterexec ran when it was started).
    env.op(OpKind::Deploy, "lost", json!({})).await;
    let fake = FakeHosts::with(10, &[]);
    let exec = env.exec("r2", fake.clone(), Arc::default(), json!({}));
    assert_eq!(exec.scan_once().await.unwrap(), 2);
    let r = env.wait_end(OpKind::Restart, "dead", T).await;
    assert_eq!(r["status"], "finished", "{r}");
    assert_eq!(strs(&r["restarted"]), hosts);
    let r = env.wait_end(OpKind::Deploy, "lost", T).await;
    assert_eq!(r["status"], "finished", "{r}");
    let mut order = fake.order();
    order.sort();
    assert_eq!(
        order,
        ["10.0.0.1", "10.0.0.2", "10.0.0.2", "10.0.0.3", "10.0.0.3"],
        "the takeover resumed with the hosts not done"
    );
    let r = env.record(OpKind::Upgrade, "alive").await;
    assert_eq!(
        (r["status"].as_str(), r["owner"].as_str()),
        (Some("in_process"), Some("other"))
    );
    assert!(matches!(
        exec.start(OpKind::Upgrade, "alive").await.unwrap(),
        StartOutcome::NotClaimed(_)
    ));
}

#[tokio::test(start_paused = true)]
async fn two_replicas_never_run_the_same_operation() {
    let env = Env::new().await;
    let hosts = ["10.0.0.1", "10.0.0.2"];
    env.cluster("c", &hosts, "").await;
    env.op(OpKind::Restart, "c", json!({})).await;
    let fake = FakeHosts::with(100, &[]);
    let a = env.exec("a", fake.clone(), Arc::default(), json!({}));
    let b = env.exec("b", fake.clone(), Arc::default(), json!({}));
    let (ra, rb) = tokio::join!(a.start(OpKind::Restart, "c"), b.start(OpKind::Restart, "c"));
    let started = [ra.unwrap(), rb.unwrap()]
        .iter()
        .filter(|o| matches!(o, StartOutcome::Started { .. }))
        .count();
    assert_eq!(started, 1);
    assert_eq!(
        b.scan_once().await.unwrap() + a.scan_once().await.unwrap(),
        0
    );
    let r = env.wait_end(OpKind::Restart, "c", T).await;
    assert_eq!(r["status"], "finished", "{r}");
    assert_eq!(fake.order(), hosts, "each host ran once");
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_loses_its_lease_stops() {
    let env = Env::new().await;
    let hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    env.cluster("c", &hosts, "").await;
    env.op(OpKind::Restart, "c", json!({})).await;
    let fake = FakeHosts::with(400, &[]);
    let exec = env.exec("r1", fake.clone(), Arc::default(), json!({}));
    exec.start(OpKind::Restart, "c").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Someone else owns it now (as after a takeover).
    let mut r = env.record(OpKind::Restart, "c").await;
    r["owner"] = json!("usurper");
    env.storage("save", "ClusterRestart", r).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(exec.running().is_empty());
    assert_eq!(
        fake.order(),
        ["10.0.0.1"],
        "no host after the lease was lost"
    );
    let r = env.record(OpKind::Restart, "c").await;
    assert_eq!(
        (r["status"].as_str(), r["owner"].as_str()),
        (Some("in_process"), Some("usurper"))
    );
}

#[tokio::test(start_paused = true)]
async fn nodes_are_cordoned_drained_and_uncordoned() {
    let env = Env::new().await;
    let hosts = ["10.0.0.1", "10.0.0.2"];
    env.cluster("c", &hosts, "kube").await;
    env.cluster("d", &hosts, "kube").await;
    env.op(OpKind::Restart, "c", json!({})).await;
    env.op(OpKind::Restart, "d", json!({})).await;
    let drainer = Arc::new(FakeDrainer::default());
    let fake = FakeHosts::with(10, &[]);
    let exec = env.exec("r1", fake.clone(), drainer.clone(), json!({}));
    exec.start(OpKind::Restart, "c").await.unwrap();
    let r = env.wait_end(OpKind::Restart, "c", T).await;
    assert_eq!(r["status"], "finished", "{r}");
    assert_eq!(
        drainer.calls(),
        [
            "cordon kube 10.0.0.1",
            "drain kube 10.0.0.1",
            "uncordon kube 10.0.0.1",
            "cordon kube 10.0.0.2",
            "drain kube 10.0.0.2",
            "uncordon kube 10.0.0.2"
        ]
    );

    let failing = Arc::new(FakeDrainer {
        fail_drain: true,
        ..Default::default()
    });
    let exec = env.exec("r2", fake.clone(), failing.clone(), json!({}));
    exec.start(OpKind::Restart, "d").await.unwrap();
    let r = env.wait_end(OpKind::Restart, "d", T).await;
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(strs(&r["failed_hosts"]), ["10.0.0.1"]);
    assert_eq!(r["reason"], "10.0.0.1: pods would not leave");
    assert_eq!(
        fake.order().len(),
        2,
        "the playbook did not run after the failed drain"
    );
}

#[tokio::test(start_paused = true)]
async fn the_service_answers_jobs_on_the_bus() {
    let env = Env::new().await;
    env.cluster("c", &["10.0.0.1"], "").await;
    env.op(OpKind::Upgrade, "c", json!({})).await;
    let fake = FakeHosts::with(10, &[]);
    let exec = env.exec("r1", fake.clone(), Arc::default(), json!({}));
    let handle = commissaire_clusterexec_service::start(exec, env.bus.clone(), 2)
        .await
        .unwrap();
    // The scanner may win the race; either way it runs once.
    env.bus
        .notify("jobs.clusterexec.upgrade", json!({"name": "c"}))
        .await
        .unwrap();
    let r = env.wait_end(OpKind::Upgrade, "c", T).await;
    assert_eq!(r["status"], "finished", "{r}");
    assert_eq!(fake.order(), ["10.0.0.1"]);
    let e = env
        .bus
        .request("jobs.clusterexec.restart", json!({}), T)
        .await
        .unwrap_err();
    assert_eq!(
        e.rpc().unwrap().code,
        commissaire_bus::codes::INVALID_PARAMS
    );
    let ok = env
        .bus
        .request("jobs.clusterexec.restart", json!({"name": "nope"}), T)
        .await
        .unwrap();
    assert_eq!(ok["state"], "not_claimed");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn pause_holds_the_roll_between_hosts_and_resume_goes_on() {
    let env = Env::new().await;
    let hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    env.cluster("c", &hosts, "").await;
    env.op(OpKind::Restart, "c", json!({})).await;
    let fake = FakeHosts::with(400, &[]);
    let exec = env.exec("r1", fake.clone(), Arc::default(), json!({}));
    exec.start(OpKind::Restart, "c").await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    env.change(OpKind::Restart, "c", |r| r["pause_requested"] = json!(true))
        .await;
    // The host in process finishes; then the roll waits, and says so.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let r = env.record(OpKind::Restart, "c").await;
    assert_eq!(r["status"], "in_process", "{r}");
    assert_eq!(strs(&r["restarted"]), ["10.0.0.1"], "{r}");
    assert_eq!(r["in_process"], json!([]));
    assert_eq!(r["waiting"], "paused on request", "{r}");
    assert!(r["waiting_since"].as_str().unwrap().len() > 10);
    assert_eq!(fake.order(), ["10.0.0.1"], "nothing runs while paused");
    assert_eq!(r["owner"], "r1", "the lease is kept while paused: {r}");
    // Resume: it goes on where it stopped.
    env.change(OpKind::Restart, "c", |r| {
        r.as_object_mut().unwrap().remove("pause_requested");
    })
    .await;
    let r = env.wait_end(OpKind::Restart, "c", T).await;
    assert_eq!(r["status"], "finished", "{r}");
    assert_eq!(fake.order(), hosts);
    assert!(r.get("waiting").is_none(), "{r}");
    let events: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["paused", "resumed"]);

    // Cancel while paused ends it at once.
    env.op(OpKind::Restart, "c", json!({"pause_requested": true}))
        .await;
    exec.start(OpKind::Restart, "c").await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        env.record(OpKind::Restart, "c").await["waiting"],
        "paused on request"
    );
    env.change(OpKind::Restart, "c", |r| {
        r["cancel_requested"] = json!(true)
    })
    .await;
    let r = env.wait_end(OpKind::Restart, "c", T).await;
    assert_eq!(r["status"], "cancelled", "{r}");
    assert!(r.get("waiting").is_none(), "{r}");
    assert_eq!(fake.order().len(), 3, "no host ran");
}

#[tokio::test(start_paused = true)]
async fn percent_budgets_are_of_the_cluster_s_hosts_and_the_cluster_has_defaults() {
    let env = Env::new().await;
    let hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"];
    env.cluster("c", &hosts, "").await;
    // 50% of 4 = batches of 2; 25% of 4 = one failure tolerated.
    env.op(
        OpKind::Upgrade,
        "c",
        json!({"batch_size": "50%", "max_failures": "25%"}),
    )
    .await;
    let fake = FakeHosts::with(300, &["10.0.0.1"]);
    let exec = env.exec("r1", fake.clone(), Arc::default(), json!({}));
    let t0 = Instant::now();
    exec.start(OpKind::Upgrade, "c").await.unwrap();
    let r = env.wait_end(OpKind::Upgrade, "c", T).await;
    assert_eq!(
        r["status"], "failed",
        "a failure tolerated still fails the operation: {r}"
    );
    assert_eq!(strs(&r["upgraded"]).len(), 3, "{r}");
    assert_eq!(r["batch_size"], "50%");
    let took = t0.elapsed();
    assert!(
        took < Duration::from_millis(700),
        "two batches of two: {took:?}"
    );

    // A cluster default applies when the request says nothing: 10% of 4 is
    // 0, rounded down (no failure tolerated), and batches of at least 1.
    env.set_rolling("c", json!({"batch_size": "10%", "max_failures": "10%"}))
        .await;
    env.op(OpKind::Upgrade, "c", json!({})).await;
    let fake = FakeHosts::with(100, &["10.0.0.1"]);
    let exec = env.exec(
        "r2",
        fake.clone(),
        Arc::default(),
        json!({"max_failures": 3}),
    );
    exec.start(OpKind::Upgrade, "c").await.unwrap();
    let r = env.wait_end(OpKind::Upgrade, "c", T).await;
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(
        fake.order(),
        ["10.0.0.1"],
        "the cluster's 10% won over the service's 3"
    );
}

#[tokio::test(start_paused = true)]
async fn order_and_last_choose_the_order_of_the_roll() {
    let env = Env::new().await;
    let hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"];
    env.cluster("c", &hosts, "").await;
    env.op(
        OpKind::Restart,
        "c",
        json!({"order": ["10.0.0.3"], "last": ["10.0.0.1"]}),
    )
    .await;
    let fake = FakeHosts::with(10, &[]);
    let exec = env.exec("r1", fake.clone(), Arc::default(), json!({}));
    exec.start(OpKind::Restart, "c").await.unwrap();
    let r = env.wait_end(OpKind::Restart, "c", T).await;
    assert_eq!(r["status"], "finished", "{r}");
    assert_eq!(
        fake.order(),
        ["10.0.0.3", "10.0.0.2", "10.0.0.4", "10.0.0.1"]
    );
}

#[tokio::test(start_paused = true)]
async fn only_nodes_the_operation_cordoned_are_uncordoned() {
    let env = Env::new().await;
    let hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    env.cluster("c", &hosts, "kube").await;
    env.op(OpKind::Restart, "c", json!({})).await;
    // An operator cordoned .2 before the roll (a disk to replace, say).
    let drainer = FakeDrainer::with_cordoned(&["10.0.0.2"]);
    let fake = FakeHosts::with(10, &[]);
    let exec = env.exec("r1", fake.clone(), drainer.clone(), json!({}));
    exec.start(OpKind::Restart, "c").await.unwrap();
    let r = env.wait_end(OpKind::Restart, "c", T).await;
    assert_eq!(r["status"], "finished", "{r}");
    assert_eq!(
        drainer.calls(),
        [
            "cordon kube 10.0.0.1",
            "drain kube 10.0.0.1",
            "uncordon kube 10.0.0.1",
            "drain kube 10.0.0.2",
            "cordon kube 10.0.0.3",
            "drain kube 10.0.0.3",
            "uncordon kube 10.0.0.3"
        ]
    );
    assert!(drainer.is("10.0.0.2"), "left cordoned as it was found");
    let cordoned: Vec<bool> = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["cordoned"] == true)
        .collect();
    assert_eq!(cordoned, [true, false, true], "{r}");
    let phases: Vec<&str> = r["timeline"][0]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        ["cordon", "drain", "run", "down", "node_ready", "uncordon"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_takeover_uncordons_what_the_crashed_owner_cordoned_and_nothing_else() {
    let env = Env::new().await;
    let hosts = ["10.0.0.1", "10.0.0.2"];
    env.cluster("c", &hosts, "kube").await;
    // The crashed owner had cordoned .1 (its timeline says so); .2 was
    // cordoned by an operator and never touched by the operation.
    env.op(
        OpKind::Restart,
        "c",
        json!({"owner": "gone", "lease_expires_at": "2001-01-01T00:00:00.000000",
            "in_process": ["10.0.0.1"], "timeline": [{"host": "10.0.0.1", "state": "in_process",
            "cordoned": true, "phases": [{"phase": "cordon", "started_at": "2001-01-01T00:00:00.000000"}]}]}),
    )
    .await;
    let drainer = FakeDrainer::with_cordoned(&["10.0.0.1", "10.0.0.2"]);
    let fake = FakeHosts::with(10, &[]);
    let exec = env.exec("r2", fake.clone(), drainer.clone(), json!({}));
    assert_eq!(exec.scan_once().await.unwrap(), 1);
    let r = env.wait_end(OpKind::Restart, "c", T).await;
    assert_eq!(r["status"], "finished", "{r}");
    assert!(
        !drainer.is("10.0.0.1"),
        "what the operation cordoned is uncordoned"
    );
    assert!(drainer.is("10.0.0.2"), "what it found cordoned stays so");
    assert!(
        !drainer
            .calls()
            .contains(&"uncordon kube 10.0.0.2".to_string())
    );
    assert_eq!(
        r["events"][0]["event"], "taken over from 'gone' by 'r2'",
        "{r}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_roll_outside_the_maintenance_windows_waits_and_says_until_when() {
    let env = Env::new().await;
    let hosts = ["10.0.0.1", "10.0.0.2"];
    env.cluster("c", &hosts, "").await;
    // A window that opened an hour ago and closed a minute ago, every day:
    // the next opening is in about 23 hours (wall-clock time).
    let now = chrono::Utc::now();
    let t = |m: i64| {
        (now + chrono::Duration::minutes(m))
            .format("%H:%M")
            .to_string()
    };
    env.set_rolling("c", json!({"windows": [{"start": t(-60), "end": t(-1)}]}))
        .await;
    env.op(OpKind::Restart, "c", json!({})).await;
    let fake = FakeHosts::with(10, &[]);
    let exec = env.exec("r1", fake.clone(), Arc::default(), json!({}));
    exec.start(OpKind::Restart, "c").await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = env.record(OpKind::Restart, "c").await;
    let waiting = r["waiting"].as_str().unwrap_or_default();
    assert!(
        waiting.starts_with("outside the maintenance windows (the next opens at "),
        "{r}"
    );
    assert!(fake.order().is_empty(), "no host outside the windows");
    assert_eq!(r["events"][0]["event"], format!("waiting: {waiting}"));
    // The operator drops the windows: the roll goes on at once.
    env.set_rolling("c", json!({})).await;
    let r = env.wait_end(OpKind::Restart, "c", T).await;
    assert_eq!(r["status"], "finished", "{r}");
    assert_eq!(fake.order(), hosts);
    assert_eq!(r["events"][1]["event"], "resumed");
}

#[tokio::test(start_paused = true)]
async fn a_failing_health_gate_fails_the_host_with_its_output_and_stops_the_roll() {
    let env = Env::new().await;
    let hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    env.cluster("c", &hosts, "kube").await;
    env.set_rolling(
        "c",
        json!({"gates": {"commands": [
        {"command": "check-health", "retries": 2, "interval_seconds": 1}]}}),
    )
    .await;
    env.op(OpKind::Restart, "c", json!({})).await;
    let fake = FakeHosts::with(10, &[]);
    fake.sick.lock().unwrap().insert("10.0.0.2".into());
    let drainer = FakeDrainer::with_cordoned(&[]);
    let exec = env.exec("r1", fake.clone(), drainer.clone(), json!({}));
    exec.start(OpKind::Restart, "c").await.unwrap();
    let r = env.wait_end(OpKind::Restart, "c", T).await;
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(strs(&r["restarted"]), ["10.0.0.1"]);
    assert_eq!(
        r["reason"],
        "10.0.0.2: health check 'check-health' failed (3 tries): exit 1: unhealthy"
    );
    let failed = &r["timeline"][1];
    assert_eq!(failed["failed_phase"], "gates", "{r}");
    let checks = fake.checks.lock().unwrap().clone();
    assert_eq!(
        checks.iter().filter(|c| c.0 == "10.0.0.2").count(),
        3,
        "{checks:?}"
    );
    assert_eq!(fake.order(), ["10.0.0.1", "10.0.0.2"], "the roll stopped");
    assert!(
        drainer.is("10.0.0.2"),
        "a host failing its gate stays cordoned"
    );
    assert!(!drainer.is("10.0.0.1"));

    // A request's gates win over the cluster's: none here.
    env.op(OpKind::Restart, "c", json!({"gates": {}})).await;
    exec.start(OpKind::Restart, "c").await.unwrap();
    let r = env.wait_end(OpKind::Restart, "c", T).await;
    assert_eq!(r["status"], "finished", "{r}");
}
