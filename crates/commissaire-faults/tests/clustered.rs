//! The split stack on clustered engines: the test bed's 3-member etcd and
//! 3-node RabbitMQ clusters (`TESTBED_CLUSTER=3`, `scripts/testbed-cluster.sh`;
//! `scripts/test.sh` starts them), with quorum queues, every broker node in
//! `bus_uri`, every etcd member in the storage handler, and two replicas of
//! each daemon a test uses (two servers too).
//!
//! Each test kills -9 the RabbitMQ node every daemon is connected to (the
//! first of `bus_uri`), then the etcd leader, while work is under way: a
//! rolling restart of 5 hosts, 20 host creations with their investigations,
//! the mixed load of clients creating and reading clusters and hosts. Each
//! ends with the work done (the roll finished, every host in a final status),
//! nothing acknowledged lost or duplicated, no operation left `in_process`,
//! and clients told success or a clear 503, never a 500 or a hang, while the
//! stack failed over. And at the bus level: requests are answered through
//! another node once the node both sides used dies.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use commissaire_faults::testkit::testbed;
use commissaire_faults::*;
use serde_json::{Value, json};

/// Runs a blocking `testbed.sh` call off the runtime's threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("testbed.sh")
}

/// A fresh vhost on the RabbitMQ cluster; returns the cluster's `bus_uri`
/// on it (every node, `queue_type=quorum`).
fn clustered_vhost() -> String {
    let amqp = std::env::var("COMMISSAIRE_TEST_CLUSTER_AMQP").expect(
        "COMMISSAIRE_TEST_CLUSTER_AMQP: the clustered engines are not up \
         (scripts/test.sh starts them; by hand: TESTBED_CLUSTER=3 scripts/testbed.sh up STATE)",
    );
    let vhost = format!("clustered-{}", uuid::Uuid::new_v4().simple());
    testbed("cluster-rabbitmqctl", &["1", "add_vhost", &vhost]);
    testbed(
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

/// A split stack on the clustered engines, on a fresh vhost and etcd
/// prefix; investigator and clusterexec replicas take over a dead one's
/// work after a 6 s lease.
fn clustered_stack() -> SplitStack {
    let etcd =
        std::env::var("COMMISSAIRE_TEST_CLUSTER_ETCD").expect("COMMISSAIRE_TEST_CLUSTER_ETCD");
    let mut stack = SplitStack::new(&clustered_vhost(), 4);
    stack.configure(Daemon::Server, "request-timeout", json!(REQUEST_TIMEOUT));
    let prefix = stack.etcd_prefix.clone();
    stack.configure(
        Daemon::Storage,
        "storage_handlers",
        json!([{"type": "etcd", "server_url": etcd, "prefix": prefix, "models": ["*"]}]),
    );
    for daemon in [Daemon::Investigator, Daemon::ClusterExec] {
        stack.configure(daemon, "lease_seconds", json!(6));
        stack.configure(daemon, "scan_seconds", json!(2));
    }
    stack
}

/// Starts two replicas of each of `daemons` and waits until both servers
/// serve; returns a client of each server.
async fn start_two_of_each(stack: &mut SplitStack, daemons: &[Daemon]) -> [Api; 2] {
    start(stack, daemons).await;
    for daemon in daemons {
        stack.start_replica(*daemon, 1);
    }
    let second = Api::at(&stack.server_url(1));
    let probe = second.clone();
    wait_until(
        Duration::from_secs(60),
        "the second server serves",
        || async {
            let a = probe.get("/api/v0/networks").await;
            if a.status == Some(200) {
                Ok(())
            } else {
                Err(format!("{a:?}"))
            }
        },
    )
    .await;
    [Api::new(stack), second]
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
            testbed("cluster-etcd-start", &[&i]);
        }
        if let Some(n) = self.rmq.take() {
            testbed("cluster-rmq-start", &[&n]);
        }
    }
}

/// When the engines failed, see [`lose_the_broker_node_and_the_etcd_leader`].
struct Outage {
    /// RabbitMQ node r1 was killed.
    broker_down: Instant,
    /// The etcd leader's member number.
    leader: String,
    /// The etcd leader was killed.
    leader_down: Instant,
    /// Both started coming back.
    up: Instant,
}

/// kill -9 RabbitMQ node r1 (the first of `bus_uri`, so the one every
/// daemon is connected to), `broker_alone` later kill -9 the etcd leader,
/// `both` later start both again (and wait until they serve).
async fn lose_the_broker_node_and_the_etcd_leader(
    broker_alone: Duration,
    both: Duration,
) -> Outage {
    let mut restore = Restore {
        rmq: None,
        etcd: None,
    };
    let broker_down = Instant::now();
    blocking(|| testbed("cluster-rmq-kill", &["1"])).await;
    restore.rmq = Some("1".into());
    tokio::time::sleep(broker_alone).await;
    let leader = blocking(|| testbed("cluster-etcd-leader", &[]))
        .await
        .trim()
        .to_string();
    assert!(
        matches!(leader.as_str(), "1" | "2" | "3"),
        "leader {leader:?}"
    );
    let l = leader.clone();
    blocking(move || testbed("cluster-etcd-kill", &[&l])).await;
    restore.etcd = Some(leader.clone());
    let leader_down = Instant::now();
    tokio::time::sleep(both).await;
    let up = Instant::now();
    blocking(move || drop(restore)).await;
    Outage {
        broker_down,
        leader,
        leader_down,
        up,
    }
}

/// Every answer is success or a clear 503, and none took longer than
/// [`HANG_LIMIT`]; returns the number of 503s.
fn only_success_or_clear_503(answers: &[(String, Answer)]) -> usize {
    let mut clear_503 = 0;
    for (what, a) in answers {
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
    clear_503
}

/// GETs `path` until `done` says the body is final, recording every answer.
async fn poll_until(
    api: &Api,
    path: &str,
    within: Duration,
    answers: &mut Vec<(String, Answer)>,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let a = api.get(path).await;
        let finished = a.status == Some(200) && done(&a.body);
        let body = a.body.clone();
        answers.push((format!("GET {path}"), a));
        if finished {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} not final within {within:?}: {:?}",
            answers.last()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_mixed_load_fails_over_when_the_broker_node_and_the_etcd_leader_die() {
    let _serial = serial().await;
    let mut stack = clustered_stack();
    let apis = start_two_of_each(&mut stack, &Daemon::ALL).await;
    let loads = [
        load::Load::start(&apis[0], 2, 4),
        load::Load::start(&apis[1], 2, 5),
    ];
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let outage =
        lose_the_broker_node_and_the_etcd_leader(Duration::from_secs(6), Duration::from_secs(5))
            .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut reports = Vec::new();
    for load in loads {
        reports.push(load.finish().await);
    }

    let mut clear_503 = 0;
    let mut slowest = Duration::ZERO;
    let acked_between = |from: Instant, to: Instant| {
        reports
            .iter()
            .flat_map(|r| &r.answers)
            .filter(|(_, a)| a.status == Some(201) && a.sent > from && a.sent + a.took < to)
            .count()
    };
    // Failed over: writes were acknowledged while r1 was down, and while
    // the old etcd leader was down too.
    let during_broker = acked_between(
        outage.broker_down + Duration::from_secs(3),
        outage.leader_down,
    );
    let during_leader = acked_between(outage.leader_down + Duration::from_secs(2), outage.up);
    // The outage clients saw: from a kill to the first write sent after it
    // that was acknowledged.
    let resumed = |t: Instant| {
        reports
            .iter()
            .flat_map(|r| &r.answers)
            .filter(|(_, a)| a.status == Some(201) && a.sent > t)
            .map(|(_, a)| a.sent + a.took - t)
            .min()
    };
    let after_broker = resumed(outage.broker_down);
    let after_leader = resumed(outage.leader_down);
    for report in &reports {
        clear_503 += only_success_or_clear_503(&report.answers);
        slowest = report
            .answers
            .iter()
            .map(|(_, a)| a.took)
            .fold(slowest, Duration::max);
    }
    let tail = |d: Daemon| {
        let log = stack.log(d);
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    assert!(
        during_broker > 0,
        "no write succeeded with broker node r1 down\nserver:\n{}\nstorage:\n{}",
        tail(Daemon::Server),
        tail(Daemon::Storage)
    );
    assert!(
        during_leader > 0,
        "no write succeeded with the etcd leader e{} down",
        outage.leader
    );
    // Nothing acknowledged is lost, through either server.
    for report in &reports {
        report.check_intact(&apis[0]).await;
        report.check_intact(&apis[1]).await;
    }
    let clusters: usize = reports.iter().map(|r| r.clusters.len()).sum();
    let hosts: usize = reports.iter().map(|r| r.hosts.len()).sum();
    println!(
        "clustered mixed load: {clusters} clusters and {hosts} hosts intact; {clear_503} clear \
         503s; {during_broker} writes acknowledged with r1 down, {during_leader} with the etcd \
         leader e{} down too; the first write after r1 died was acknowledged {after_broker:?} \
         later, after the leader died {after_leader:?} later; slowest answer {slowest:?}",
        outage.leader
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_of_five_hosts_finishes_when_the_broker_node_and_the_etcd_leader_die() {
    let _serial = serial().await;
    let hosts = testbed_hosts(0..5);
    let markers = Markers::new();
    let mut stack = clustered_stack();
    stack.configure(Daemon::ClusterExec, "playbook_dir", json!(playbook_dir()));
    stack.configure(
        Daemon::ClusterExec,
        "ansible_vars",
        markers.ansible_vars(1.0),
    );
    stack.configure(Daemon::ClusterExec, "playbook_timeout_seconds", json!(90));
    let apis = start_two_of_each(
        &mut stack,
        &[
            Daemon::Storage,
            Daemon::Server,
            Daemon::ClusterExec,
            Daemon::Watcher,
        ],
    )
    .await;
    let api = &apis[1];
    let bus = bus(&stack).await;
    active_cluster(api, &bus, "roll", &hosts).await;

    api.put_expect("/api/v0/cluster/roll/restart", json!({}), 201)
        .await;
    let path = "/api/v0/cluster/roll/restart";
    let mut answers = Vec::new();
    poll_until(api, path, Duration::from_secs(90), &mut answers, |r| {
        strs(&r["restarted"]).len() == 1 && strs(&r["in_process"]).len() == 1
    })
    .await;
    let poller = {
        let api = api.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            let end = poll_until(&api, path, Duration::from_secs(240), &mut answers, |r| {
                r["status"] != "in_process"
            })
            .await;
            (end, answers)
        })
    };
    let outage =
        lose_the_broker_node_and_the_etcd_leader(Duration::from_secs(5), Duration::from_secs(5))
            .await;
    let (end, more) = poller.await.expect("the poller");
    answers.extend(more);
    let finished = Instant::now();

    let clear_503 = only_success_or_clear_503(&answers);
    assert_eq!(
        end["status"],
        "finished",
        "{end}\nclusterexec log:\n{}",
        stack.log(Daemon::ClusterExec)
    );
    let mut restarted = strs(&end["restarted"]);
    restarted.sort();
    let mut expected = hosts.clone();
    expected.sort();
    assert_eq!(restarted, expected, "each host restarted once: {end}");
    assert_eq!(end["in_process"], json!([]), "{end}");
    assert!(strs(&end["failed_hosts"]).is_empty(), "{end}");
    assert!(end.get("owner").is_none(), "the lease is gone: {end}");
    // Every host was really restarted: it went down and came back.
    let log = markers.lines("restart.log");
    let mut starts: BTreeMap<&str, usize> = BTreeMap::new();
    for h in &hosts {
        assert!(
            log.iter().any(|w| w[0] == *h && w[1] == "up"),
            "{h} never came back up: {log:?}"
        );
    }
    for w in log.iter().filter(|w| w[1] == "start") {
        *starts.entry(w[0].as_str()).or_default() += 1;
    }
    let members = strs(&api.get_ok("/api/v0/cluster/roll/hosts").await);
    assert_eq!(
        members.len(),
        hosts.len(),
        "the cluster's hosts: {members:?}"
    );
    println!(
        "clustered roll: 5 hosts restarted (restart commands per host {starts:?}); the roll \
         finished {:?} after r1 died (etcd leader e{} killed {:?} after it); {clear_503} clear \
         503s to the operator's polling",
        finished - outage.broker_down,
        outage.leader,
        outage.leader_down - outage.broker_down
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_hosts_created_while_the_broker_node_and_the_etcd_leader_die_are_all_bootstrapped() {
    let _serial = serial().await;
    let sshds: Vec<_> = (1..=20)
        .map(|i| testkit::TestSshd::start(&format!("127.0.3.{i}")))
        .collect();
    let addresses: Vec<String> = sshds.iter().map(|s| s.address.clone()).collect();
    let work = tempfile::tempdir().unwrap();
    let mut stack = clustered_stack();
    stack.configure(Daemon::Investigator, "playbook_dir", json!(playbook_dir()));
    stack.configure(
        Daemon::Investigator,
        "ansible_vars",
        bootstrap_vars(work.path(), 1),
    );
    stack.configure(
        Daemon::Investigator,
        "etcd_server_url",
        json!("http://192.0.2.1:2379"),
    );
    stack.configure(Daemon::Investigator, "facts_timeout", json!(60));
    stack.configure(Daemon::Investigator, "bootstrap_timeout", json!(120));
    let apis = start_two_of_each(
        &mut stack,
        &[
            Daemon::Storage,
            Daemon::Server,
            Daemon::Investigator,
            Daemon::Watcher,
        ],
    )
    .await;

    // An operator's script: each host is sent until it is accepted (201),
    // alternating between the two servers.
    let creator = {
        let apis = apis.clone();
        let addresses = addresses.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for (i, address) in addresses.iter().enumerate() {
                loop {
                    let a = apis[i % 2].put_host(address).await;
                    let accepted = a.status == Some(201);
                    answers.push((format!("PUT host {address}"), a));
                    if accepted {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            answers
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outage =
        lose_the_broker_node_and_the_etcd_leader(Duration::from_secs(5), Duration::from_secs(5))
            .await;
    let mut answers = creator.await.expect("the creator");
    let rejected = only_success_or_clear_503(&answers);

    // Every host ends bootstrapped (there is no cluster: disassociated).
    let mut final_hosts = Vec::new();
    for (i, address) in addresses.iter().enumerate() {
        let host = poll_until(
            &apis[i % 2],
            &format!("/api/v0/host/{address}"),
            Duration::from_secs(300),
            &mut answers,
            |h| {
                matches!(
                    h["status"].as_str(),
                    Some("active" | "disassociated" | "failed")
                )
            },
        )
        .await;
        final_hosts.push(host);
    }
    let finished = Instant::now();
    let clear_503 = only_success_or_clear_503(&answers);
    for host in &final_hosts {
        assert_eq!(
            host["status"],
            "disassociated",
            "{host}\ninvestigator log:\n{}",
            stack.log(Daemon::Investigator)
        );
        assert_eq!(host["os"], "debian", "{host}");
    }
    // Each host is there once, and nothing else is.
    let mut listed: Vec<String> = apis[0]
        .get_ok("/api/v0/hosts")
        .await
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|h| h["address"].as_str().map(str::to_string))
        .collect();
    listed.sort();
    let mut expected = addresses.clone();
    expected.sort();
    assert_eq!(listed, expected);
    // No investigation is left over, and each host is watched.
    let bus = bus(&stack).await;
    for address in &addresses {
        assert!(
            storage_get(&bus, "Investigation", json!({"address": address}))
                .await
                .is_err(),
            "the investigation of {address} is done"
        );
        storage_get(&bus, "WatcherRecord", json!({"address": address}))
            .await
            .unwrap_or_else(|e| panic!("{address} is watched: {e}"));
    }
    let runs = std::fs::read_to_string(work.path().join("slow.log")).unwrap_or_default();
    assert!(
        runs.lines().count() >= addresses.len(),
        "a bootstrap per host: {runs}"
    );
    println!(
        "clustered creations: 20 hosts bootstrapped {:?} after r1 died (etcd leader e{} killed \
         {:?} after it); {rejected} creations answered a clear 503 and sent again; {clear_503} \
         clear 503s in all; {} bootstrap runs",
        finished - outage.broker_down,
        outage.leader,
        outage.leader_down - outage.broker_down,
        runs.lines().count()
    );
    drop(sshds);
}

/// Requests keep being answered, through another node, once the node both
/// the caller and the service were connected to dies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_are_answered_through_another_node_when_the_broker_node_dies() {
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
    blocking(|| testbed("cluster-rmq-kill", &["1"])).await;
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
    println!("clustered bus: answered through another node {answered:?} after r1 died");
    blocking(move || drop(restore)).await;
    server.abort();
}
