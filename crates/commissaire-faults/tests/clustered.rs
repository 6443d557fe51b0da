//! The split stack on clustered engines: the test bed's 3-member etcd and
//! 3-node RabbitMQ clusters (`TESTBED_CLUSTER=3`, `scripts/testbed-cluster.sh`),
//! with quorum queues and every broker node in `bus_uri`. kill -9 of the
//! broker node the daemons are connected to, and of the etcd leader, under
//! load: clients see success or a clear 503 (never a 500, never a hang),
//! the stack fails over while the node and the leader are still down, and
//! nothing acknowledged is lost.
//!
//! Both tests are ignored for now (they need `TESTBED_CLUSTER=3 scripts/testbed.sh
//! up STATE`; run them with `cargo test -p commissaire-faults --test clustered
//! -- --ignored`). The bus-level one passes: after kill -9 of the node both
//! sides used, requests are answered through another node about 2.1 s
//! later, thanks to the AMQP client's failover pause (reconnecting at once,
//! its new channel kept sending to the quorum queue's dead leader and no
//! request was ever delivered). The one under load still fails, an open
//! problem: with the storage service and the server, writes resume only
//! when the killed node is back (about 10 s).

use std::time::{Duration, Instant};

use commissaire_faults::*;
use serde_json::json;

/// `scripts/testbed.sh CMD STATE ARGS...` for the clustered engines.
fn cluster(cmd: &str, args: &[&str]) -> String {
    let script = std::env::var("COMMISSAIRE_TEST_TESTBED").expect("COMMISSAIRE_TEST_TESTBED");
    let state = std::env::var("COMMISSAIRE_TEST_STATE").expect("COMMISSAIRE_TEST_STATE");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(cmd)
        .arg(state)
        .args(args)
        .output()
        .expect("run testbed.sh");
    assert!(
        out.status.success(),
        "testbed.sh {cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A split stack on the clustered engines, on a fresh vhost and etcd prefix.
fn clustered_stack() -> SplitStack {
    let bus_uri = clustered_vhost();
    let etcd =
        std::env::var("COMMISSAIRE_TEST_CLUSTER_ETCD").expect("COMMISSAIRE_TEST_CLUSTER_ETCD");
    let mut stack = SplitStack::new(&bus_uri, 4);
    stack.configure(Daemon::Server, "request-timeout", json!(REQUEST_TIMEOUT));
    let prefix = stack.etcd_prefix.clone();
    stack.configure(
        Daemon::Storage,
        "storage_handlers",
        json!([{"type": "etcd", "server_url": etcd, "prefix": prefix, "models": ["*"]}]),
    );
    stack
}

/// Brings a killed broker node and etcd member back, also when the test
/// panics.
struct Restore {
    rmq: Option<String>,
    etcd: Option<String>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(i) = self.etcd.take() {
            cluster("cluster-etcd-start", &[&i]);
        }
        if let Some(n) = self.rmq.take() {
            cluster("cluster-rmq-start", &[&n]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "open: with quorum queues on RabbitMQ 3.10, requests go unanswered while the killed node is down (see docs/availability.md); run with TESTBED_CLUSTER=3 and --ignored"]
async fn losing_the_broker_node_and_the_etcd_leader_under_load_fails_over_and_loses_nothing() {
    let _serial = serial().await;
    let mut stack = clustered_stack();
    start(&mut stack, &[Daemon::Storage, Daemon::Server]).await;
    let api = Api::new(&stack);

    let load = load::Load::start(&api, 3, 4);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Every daemon connects to the first node of bus_uri: r1.
    let mut restore = Restore {
        rmq: None,
        etcd: None,
    };
    let down = Instant::now();
    tokio::task::spawn_blocking(|| cluster("cluster-rmq-kill", &["1"]))
        .await
        .unwrap();
    restore.rmq = Some("1".into());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let leader = tokio::task::spawn_blocking(|| cluster("cluster-etcd-leader", &[]))
        .await
        .unwrap();
    assert!(
        matches!(leader.as_str(), "1" | "2" | "3"),
        "leader {leader:?}"
    );
    let l = leader.clone();
    tokio::task::spawn_blocking(move || cluster("cluster-etcd-kill", &[&l]))
        .await
        .unwrap();
    restore.etcd = Some(leader.clone());
    let leader_down = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let up = Instant::now();
    tokio::task::spawn_blocking(move || drop(restore))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = load.finish().await;

    let mut clear_503 = 0;
    let mut slowest = Duration::ZERO;
    for (what, a) in &report.answers {
        slowest = slowest.max(a.took);
        assert!(a.took <= HANG_LIMIT, "{what} took {:?}: {a:?}", a.took);
        assert!(
            matches!(a.status, Some(200 | 201 | 503)),
            "{what}: only success or a clear 503: {a:?}"
        );
        if a.status == Some(503) {
            assert!(a.is_clear_503(), "{what}: a 503 says what is wrong: {a:?}");
            clear_503 += 1;
        }
    }
    // Failed over: writes were acknowledged while r1 was down, and while the
    // old etcd leader was down too.
    let acked_between = |from: Instant, to: Instant| {
        report
            .answers
            .iter()
            .filter(|(_, a)| a.status == Some(201) && a.sent > from && a.sent + a.took < to)
            .count()
    };
    let during_broker = acked_between(down + Duration::from_secs(2), leader_down);
    let during_leader = acked_between(leader_down + Duration::from_secs(2), up);
    let tail = |d: Daemon| {
        let log = stack.log(d);
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    let timeline: Vec<String> = report
        .answers
        .iter()
        .filter(|(_, a)| a.sent > down)
        .map(|(w, a)| {
            format!(
                "{:>6.2}s {w} {:?} {}",
                (a.sent - down).as_secs_f64(),
                a.status,
                a.text.chars().take(100).collect::<String>()
            )
        })
        .step_by(7)
        .take(80)
        .collect();
    assert!(
        during_broker > 0,
        "no write succeeded with broker node r1 down\n{}\nserver:\n{}\nstorage:\n{}",
        timeline.join("\n"),
        tail(Daemon::Server),
        tail(Daemon::Storage)
    );
    assert!(
        during_leader > 0,
        "no write succeeded with etcd leader e{leader} down"
    );
    report.check_intact(&api).await;
    println!(
        "clustered: {} clusters and {} hosts intact; {clear_503} clear 503s; {during_broker} writes \
         acknowledged with r1 down, {during_leader} with the etcd leader e{leader} down too; slowest \
         answer {slowest:?}",
        report.clusters.len(),
        report.hosts.len()
    );
}

/// A fresh vhost on the RabbitMQ cluster; returns the cluster's `bus_uri` on it.
fn clustered_vhost() -> String {
    let amqp = std::env::var("COMMISSAIRE_TEST_CLUSTER_AMQP")
        .expect("the clustered engines (scripts/testbed.sh up with TESTBED_CLUSTER=3)");
    let vhost = format!("clustered-{}", uuid::Uuid::new_v4().simple());
    cluster("cluster-rabbitmqctl", &["1", "add_vhost", &vhost]);
    cluster(
        "cluster-rabbitmqctl",
        &[
            "1",
            "set_permissions",
            "-p",
            &vhost,
            "guest",
            ".*",
            ".*",
            ".*",
        ],
    );
    amqp.replace("/%2f", &format!("/{vhost}"))
}

/// Requests keep being answered, through another node, once the node both
/// the caller and the service were connected to dies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the clustered test bed (TESTBED_CLUSTER=3), not in the default run yet; passes since the failover pause"]
async fn requests_are_answered_through_another_node_when_the_broker_node_dies() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("commissaire_bus=debug")
        .with_test_writer()
        .try_init();
    let _serial = serial().await;
    let uri = clustered_vhost();
    let wait = Duration::from_secs(10);
    let service = commissaire_bus::connect(&uri, "commissaire", wait)
        .await
        .unwrap();
    let client = commissaire_bus::connect(&uri, "commissaire", wait)
        .await
        .unwrap();
    let stream = service.consume("svc", &["svc.*".into()], 8).await.unwrap();
    let server = tokio::spawn(async move {
        while let Ok(msg) = stream.recv().await {
            let request: commissaire_bus::Request = serde_json::from_slice(&msg.body).unwrap();
            let reply = commissaire_bus::Response::success(request.id.unwrap(), request.params);
            let _ = msg.finish(Some(serde_json::to_vec(&reply).unwrap())).await;
        }
    });
    let t = Duration::from_secs(1);
    assert_eq!(
        client.request("svc.echo", json!([1]), t).await.unwrap(),
        json!([1])
    );
    let restore = Restore {
        rmq: Some("1".into()),
        etcd: None,
    };
    cluster("cluster-rmq-kill", &["1"]);
    let killed = Instant::now();
    let mut log = Vec::new();
    let answered = loop {
        let sent = Instant::now();
        let r = client.request("svc.echo", json!([2]), t).await;
        log.push(format!("{:>5.2}s {r:?}", (sent - killed).as_secs_f64()));
        if r.is_ok() {
            break sent - killed;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "no answer with r1 down:\n{}",
            log.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "answered through another node {answered:?} after r1 died:\n{}",
        log.join("\n")
    );
    tokio::task::spawn_blocking(move || drop(restore))
        .await
        .unwrap();
    server.abort();
}
