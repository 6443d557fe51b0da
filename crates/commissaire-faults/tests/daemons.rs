//! kill -9 each daemon while it works, then start it again: nothing
//! acknowledged is lost, nothing stays in process, clients get 503 (never a
//! 500 or a hang) while a daemon is down and success once it is back.

use std::time::{Duration, Instant};

use commissaire_faults::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storage_killed_under_load_then_restarted() {
    let _serial = serial().await;
    let mut stack = stack();
    start(&mut stack, &[Daemon::Storage, Daemon::Server]).await;
    let api = Api::new(&stack);
    let load = load::Load::start(&api, 3, 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stack.kill(Daemon::Storage);
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let restarted = Instant::now();
    stack.start(Daemon::Storage);
    // Clients succeed again once storage is back.
    load::recovered(&api, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = load.finish().await;
    let (outage_503, slowest) = report.check_outage(killed, restarted, Duration::from_millis(200));
    report.check_intact(&api).await;
    println!(
        "storage kill: {} clusters and {} hosts acknowledged and intact, {outage_503} clear 503s \
         during the outage, slowest answer {slowest:?}",
        report.clusters.len(),
        report.hosts.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_killed_then_restarted_serves_the_same_data() {
    let _serial = serial().await;
    let mut stack = stack();
    start(&mut stack, &[Daemon::Storage, Daemon::Server]).await;
    let api = Api::new(&stack);
    api.put_expect(
        "/api/v0/network/n1",
        json!({"type": "flannel_server", "options": {"address": "192.0.2.1:8080"}}),
        201,
    )
    .await;
    for name in ["honeynut", "trix"] {
        api.put_expect(
            &format!("/api/v0/cluster/{name}"),
            json!({"network": "n1"}),
            201,
        )
        .await;
    }
    for address in ["10.9.0.1", "10.9.0.2"] {
        assert_eq!(api.put_host(address).await.status, Some(201));
    }
    let paths = [
        "/api/v0/clusters",
        "/api/v0/cluster/honeynut",
        "/api/v0/cluster/trix",
        "/api/v0/network/n1",
        "/api/v0/networks",
        "/api/v0/hosts",
        "/api/v0/host/10.9.0.1",
        "/api/v0/host/10.9.0.2/creds",
    ];
    let mut before = Vec::new();
    for p in paths {
        before.push(api.get_ok(p).await);
    }
    // A request in flight when the server dies fails at once, it does not hang.
    let in_flight = {
        let api = api.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in 0..400 {
                answers.push(api.put(&format!("/api/v0/cluster/x{i}"), json!({})).await);
                if answers.last().unwrap().status.is_none() {
                    break;
                }
            }
            answers
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    stack.kill(Daemon::Server);
    let answers = in_flight.await.unwrap();
    let last = answers.last().unwrap();
    assert_eq!(last.status, None, "the client saw the server go: {last:?}");
    assert!(last.took < Duration::from_secs(5), "{last:?}");
    let down = api.get("/api/v0/clusters").await;
    assert_eq!(down.status, None, "nobody listens: {down:?}");
    assert!(
        down.took < Duration::from_secs(2),
        "refused at once: {down:?}"
    );

    stack.start(Daemon::Server);
    assert!(
        stack.wait_ready(Duration::from_secs(30)).await,
        "{}",
        stack.log(Daemon::Server)
    );
    for (p, b) in paths.iter().zip(&before) {
        let mut now = api.get_ok(p).await;
        let mut b = b.clone();
        if p.ends_with("clusters") {
            // The clusters created before the kill are listed too.
            let mut n = strs(&now);
            n.retain(|c| !c.starts_with('x'));
            n.sort();
            let mut o = strs(&b);
            o.sort();
            now = json!(n);
            b = json!(o);
        }
        assert_eq!(now, b, "GET {p} after the restart");
    }
    // Every cluster acknowledged before the kill is there.
    for (i, a) in answers.iter().enumerate() {
        if a.status == Some(201) {
            api.get_ok(&format!("/api/v0/cluster/x{i}")).await;
        }
    }
    api.put_expect("/api/v0/cluster/after", json!({}), 201)
        .await;
}

/// The hosts of the test bed this file's rolling restart uses (the 5th to
/// the 7th; the test bed names them SSH_NET.15 to .17).
fn roll_hosts() -> Vec<String> {
    testbed_hosts(4..7)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clusterexec_killed_during_a_rolling_restart_finishes_it_after_its_restart() {
    let _serial = serial().await;
    let hosts = roll_hosts();
    let markers = Markers::new();
    let mut stack = stack();
    let lease = 4.0;
    stack.configure(Daemon::ClusterExec, "playbook_dir", json!(playbook_dir()));
    stack.configure(
        Daemon::ClusterExec,
        "ansible_vars",
        markers.ansible_vars(1.0),
    );
    stack.configure(Daemon::ClusterExec, "lease_seconds", json!(lease));
    stack.configure(Daemon::ClusterExec, "playbook_timeout_seconds", json!(90));
    start(
        &mut stack,
        &[Daemon::Storage, Daemon::Server, Daemon::ClusterExec],
    )
    .await;
    let api = Api::new(&stack);
    let bus = bus(&stack).await;
    active_cluster(&api, &bus, "chex", &hosts).await;

    let a = api.put("/api/v0/cluster/chex/restart", json!({})).await;
    assert_eq!(a.status, Some(201), "{a:?}");
    // Kill it once it restarted one host and works on the next.
    let working = wait_until(
        Duration::from_secs(90),
        "the roll reaches the second host",
        || {
            let api = api.clone();
            async move {
                let r = api.get_ok("/api/v0/cluster/chex/restart").await;
                if strs(&r["restarted"]).len() == 1 && strs(&r["in_process"]).len() == 1 {
                    Ok(r)
                } else {
                    Err(r.to_string())
                }
            }
        },
    )
    .await;
    let doomed = working["owner"].as_str().expect("an owner").to_string();
    stack.kill(Daemon::ClusterExec);
    let killed = Instant::now();
    // While it is down, the operation is still in process (its lease says whose).
    let r = api.get_ok("/api/v0/cluster/chex/restart").await;
    assert_eq!(r["status"], "in_process", "{r}");
    // A second PUT is refused while it is in process: no duplicate roll.
    assert_eq!(
        api.put("/api/v0/cluster/chex/restart", json!({}))
            .await
            .status,
        Some(409)
    );

    stack.start(Daemon::ClusterExec);
    let taken = wait_until(
        Duration::from_secs(30),
        "the restarted daemon takes the operation over",
        || {
            let api = api.clone();
            let doomed = doomed.clone();
            async move {
                let r = api.get_ok("/api/v0/cluster/chex/restart").await;
                if r["status"] != "in_process" || r["owner"].as_str().is_some_and(|o| o != doomed) {
                    Ok(killed.elapsed())
                } else {
                    Err(r.to_string())
                }
            }
        },
    )
    .await;
    assert!(
        taken.as_secs_f64() <= lease * 2.0 + 3.0,
        "took over {taken:?} after the kill (lease {lease} s)"
    );
    let end = wait_op_end(&api, "chex", "restart", Duration::from_secs(120)).await;
    assert_eq!(
        end["status"],
        "finished",
        "{end}\nclusterexec log:\n{}",
        stack.log(Daemon::ClusterExec)
    );
    assert_eq!(strs(&end["restarted"]), hosts, "{end}");
    assert_eq!(end["in_process"], json!([]), "{end}");
    assert!(end.get("owner").is_none(), "the lease is gone: {end}");
    assert!(
        !end["finished_at"].as_str().unwrap_or_default().is_empty(),
        "{end}"
    );
    // Every host was really restarted (went down and came back).
    let log = markers.lines("restart.log");
    for h in &hosts {
        assert!(
            log.iter().any(|w| w[0] == *h && w[1] == "up"),
            "{h} never came back up: {log:?}"
        );
    }
    // The host list of the cluster is intact.
    let members = api.get_ok("/api/v0/cluster/chex/hosts").await;
    let mut members = strs(&members);
    members.sort();
    let mut expected = hosts.clone();
    expected.sort();
    assert_eq!(members, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn investigator_killed_during_a_bootstrap_bootstraps_the_host_after_its_restart() {
    let _serial = serial().await;
    let sshd = testkit::TestSshd::start("127.0.2.1");
    let work = tempfile::tempdir().unwrap();
    let mut stack = stack();
    stack.configure(Daemon::Investigator, "playbook_dir", json!(playbook_dir()));
    stack.configure(
        Daemon::Investigator,
        "ansible_vars",
        bootstrap_vars(work.path(), 4),
    );
    stack.configure(
        Daemon::Investigator,
        "etcd_server_url",
        json!("http://192.0.2.1:2379"),
    );
    stack.configure(Daemon::Investigator, "facts_timeout", json!(30));
    stack.configure(Daemon::Investigator, "bootstrap_timeout", json!(90));
    // The restarted replica takes the investigation over once the killed
    // one's lease has run out.
    stack.configure(Daemon::Investigator, "lease_seconds", json!(10));
    stack.configure(Daemon::Investigator, "scan_seconds", json!(2));
    start(
        &mut stack,
        &[Daemon::Storage, Daemon::Server, Daemon::Investigator],
    )
    .await;
    let api = Api::new(&stack);
    let path = format!("/api/v0/host/{}", sshd.address);

    let a = api.put_host(&sshd.address).await;
    assert_eq!(a.status, Some(201), "{a:?}");
    // Kill it in the middle of the bootstrap playbook (the slow docker step).
    let slow_log = work.path().join("slow.log");
    wait_until(
        Duration::from_secs(60),
        "the bootstrap reaches the docker step",
        || {
            let api = api.clone();
            let path = path.clone();
            let slow_log = slow_log.clone();
            async move {
                let host = api.get_ok(&path).await;
                if host["status"] == "bootstrapping" && slow_log.exists() {
                    Ok(())
                } else {
                    Err(host.to_string())
                }
            }
        },
    )
    .await;
    stack.kill(Daemon::Investigator);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(api.get_ok(&path).await["status"], "bootstrapping");

    stack.start(Daemon::Investigator);
    let host = assert_investigation_ends(
        &api,
        &stack,
        &path,
        "disassociated",
        Duration::from_secs(90),
        "the host is bootstrapped after the restart",
    )
    .await;
    assert_eq!(host["os"], "debian", "{host}");
    let runs = std::fs::read_to_string(&slow_log).unwrap();
    assert!(
        runs.lines().count() >= 2,
        "the bootstrap ran again after the restart: {runs}"
    );
    // It is watched from now on.
    let bus = bus(&stack).await;
    let record = storage_get(&bus, "WatcherRecord", json!({"address": sshd.address}))
        .await
        .expect("a watcher record");
    assert_eq!(record["address"], sshd.address.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watcher_killed_then_restarted_resumes_its_checks() {
    let _serial = serial().await;
    let mut sshd = testkit::TestSshd::start("127.0.2.2");
    let mut stack = stack();
    let runtime = configure_watcher(&mut stack, 2, 20);
    start(
        &mut stack,
        &[Daemon::Storage, Daemon::Server, Daemon::Watcher],
    )
    .await;
    let api = Api::new(&stack);
    let bus = bus(&stack).await;
    let address = sshd.address.clone();
    let path = format!("/api/v0/host/{address}");
    assert_eq!(api.put_host(&address).await.status, Some(201));
    set_host_status(&bus, &address, "active").await;
    // Checked while the watcher runs.
    watch_and_wait_first_check(&api, &bus, &address).await;

    // Its session pool: a private directory holding the host's master
    // socket, and no key file (only while a master logs in).
    let pools = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("commissaire-ssh-")
            })
            .collect()
    };
    let before = pools(runtime.path());
    assert_eq!(before.len(), 1, "{before:?}");
    stack.kill(Daemon::Watcher);
    assert!(
        testkit::session_secret_files(runtime.path()).is_empty(),
        "{:?}",
        testkit::session_secret_files(runtime.path())
    );
    sshd.stop();
    // Nobody checks while it is down: the host still looks active.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let h = api.get_ok(&path).await;
    assert_eq!(
        h["status"], "active",
        "not checked while the watcher is down: {h}"
    );

    stack.start(Daemon::Watcher);
    let failed = wait_until(
        Duration::from_secs(40),
        "the restarted watcher sees the host down",
        || {
            let api = api.clone();
            let path = path.clone();
            async move {
                let h = api.get_ok(&path).await;
                if h["status"] == "failed" {
                    Ok(h)
                } else {
                    Err(h.to_string())
                }
            }
        },
    )
    .await;
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("is unreachable") && r.contains("Connection refused")),
        "{failed}"
    );
    sshd.resume();
    let back = wait_until(
        Duration::from_secs(40),
        "the host gets its status back",
        || {
            let api = api.clone();
            let path = path.clone();
            async move {
                let h = api.get_ok(&path).await;
                if h["status"] == "active" {
                    Ok(h)
                } else {
                    Err(h.to_string())
                }
            }
        },
    )
    .await;
    assert!(back.get("reason").is_none_or(|r| r == ""), "{back}");
    // The killed watcher's pool directory was removed by the new one's.
    let after = pools(runtime.path());
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before, "the dead pool's directory is gone");
    assert!(testkit::session_secret_files(runtime.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_join_accepted_while_containermgr_is_down_completes_after_its_restart() {
    let _serial = serial().await;
    let hosts = ["10.8.0.1", "10.8.0.2"];
    let kube = testkit::kube_api::RealKube::connect(&hosts).await;
    let _kubelet = kube.kubelet(&hosts);
    let mut stack = stack();
    start(
        &mut stack,
        &[
            Daemon::Storage,
            Daemon::Server,
            Daemon::ContainerMgr,
            Daemon::Investigator,
        ],
    )
    .await;
    let api = Api::new(&stack);
    let bus = bus(&stack).await;
    create_managed_cluster(&api, kube.options()).await;
    for h in hosts {
        bootstrapped_host(&bus, h).await;
    }
    // A join is a job: the server answers at once, an investigator registers
    // the node and the host is active once the node is Ready.
    let a = api
        .put(
            &format!("/api/v0/cluster/managed/hosts/{}", hosts[0]),
            json!({}),
        )
        .await;
    assert_eq!(a.status, Some(200), "{a:?}");
    wait_joined(&api, &kube, hosts[0], "the first host joins").await;
    let status = api
        .get_ok(&format!("/api/v0/host/{}/status", hosts[0]))
        .await;
    assert_eq!(status["container_manager"]["registered"], true, "{status}");

    stack.kill(Daemon::ContainerMgr);
    // A join while the manager is down is accepted, in time, and waits.
    let a = api
        .put(
            &format!("/api/v0/cluster/managed/hosts/{}", hosts[1]),
            json!({}),
        )
        .await;
    assert_eq!(
        a.status,
        Some(200),
        "join while containermgr is down: {a:?}"
    );
    assert!(a.took <= HANG_LIMIT, "{a:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(kube.node(hosts[1]).await.is_none(), "not registered yet");
    assert_eq!(
        api.get_ok(&format!("/api/v0/host/{}", hosts[1])).await["status"],
        "disassociated",
        "not active before its node is registered"
    );
    // The host status says the manager could not be asked.
    let status = api
        .get_ok(&format!("/api/v0/host/{}/status", hosts[0]))
        .await;
    assert!(
        status["container_manager"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{status}"
    );

    stack.start(Daemon::ContainerMgr);
    // Nobody asks again: the accepted join completes by itself.
    wait_joined(
        &api,
        &kube,
        hosts[1],
        "the join accepted during the outage completes",
    )
    .await;
    let status = api
        .get_ok(&format!("/api/v0/host/{}/status", hosts[1]))
        .await;
    assert_eq!(status["container_manager"]["registered"], true, "{status}");
    let status = api
        .get_ok(&format!("/api/v0/host/{}/status", hosts[0]))
        .await;
    assert_eq!(status["container_manager"]["registered"], true, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_that_timed_out_while_storage_was_down_is_not_carried_out_later() {
    let _serial = serial().await;
    let mut stack = stack();
    start(&mut stack, &[Daemon::Storage, Daemon::Server]).await;
    let api = Api::new(&stack);
    let bus = bus(&stack).await;
    stack.kill(Daemon::Storage);
    // The caller gives up on a save, and on a delete of a record that exists.
    let save = json!({"model_type_name": "Network", "model_json_data": {"name": "ghost"}});
    let err = bus
        .request("storage.save", save, Duration::from_secs(1))
        .await
        .expect_err("nobody answers");
    assert!(err.is_unavailable(), "{err}");
    let delete = json!({"model_type_name": "Network", "model_json_data": {"name": "default"}});
    let err = bus
        .request("storage.delete", delete, Duration::from_secs(1))
        .await
        .expect_err("nobody answers");
    assert!(err.is_unavailable(), "{err}");
    // Through the API: the client is told 503.
    let a = api.put("/api/v0/network/ghost2", json!({})).await;
    assert!(a.is_clear_503(), "{a:?}");

    stack.start(Daemon::Storage);
    load::recovered(&api, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // What the callers were told failed did not happen behind their backs.
    for name in ["ghost", "ghost2"] {
        let a = api.get(&format!("/api/v0/network/{name}")).await;
        assert_eq!(a.status, Some(404), "{name} was created after all: {a:?}");
    }
    api.get_ok("/api/v0/network/default").await;
}

/// The investigator settings of the durable-investigation tests: short
/// leases and scans so a takeover is quick.
fn durable_investigator(stack: &mut SplitStack, work: &std::path::Path) {
    stack.configure(Daemon::Investigator, "playbook_dir", json!(playbook_dir()));
    stack.configure(
        Daemon::Investigator,
        "ansible_vars",
        bootstrap_vars(work, 0),
    );
    stack.configure(Daemon::Investigator, "facts_timeout", json!(30));
    stack.configure(Daemon::Investigator, "bootstrap_timeout", json!(90));
    stack.configure(Daemon::Investigator, "lease_seconds", json!(6));
    stack.configure(Daemon::Investigator, "scan_seconds", json!(1));
}

/// Hosts created while no investigator runs (on AMQP their announcement
/// finds no queue and is dropped) are bootstrapped once one starts: the
/// stored investigation is the job. A failed host sent again is
/// investigated again, and so is a host stuck `investigating` whose
/// investigation record is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hosts_created_while_the_investigator_is_down_are_bootstrapped_once_it_starts() {
    let _serial = serial().await;
    let sshd = testkit::TestSshd::start("127.0.2.41");
    let work = tempfile::tempdir().unwrap();
    let mut stack = stack();
    durable_investigator(&mut stack, work.path());
    start(&mut stack, &[Daemon::Storage, Daemon::Server]).await;
    let api = Api::new(&stack);
    let bus = bus(&stack).await;
    let path = format!("/api/v0/host/{}", sshd.address);
    let a = api.put_host(&sshd.address).await;
    assert_eq!(a.status, Some(201), "{a:?}");
    assert_eq!(a.body["status"], "investigating");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(api.get_ok(&path).await["status"], "investigating");

    stack.start(Daemon::Investigator);
    assert_investigation_ends(
        &api,
        &stack,
        &path,
        "disassociated",
        Duration::from_secs(90),
        "the host is bootstrapped",
    )
    .await;
    // Done: its investigation record is gone, and it is not run again.
    wait_until(
        Duration::from_secs(10),
        "the investigation record is removed",
        || {
            let bus = bus.clone();
            let address = sshd.address.clone();
            async move {
                match storage_get(&bus, "Investigation", json!({"address": address})).await {
                    Err(e)
                        if e.rpc().is_some_and(|r| {
                            r.code == commissaire_bus::codes::STORAGE_LOOKUP_ERROR
                        }) =>
                    {
                        Ok(())
                    }
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await;
    let runs = std::fs::read_to_string(work.path().join("slow.log")).unwrap();
    assert_eq!(runs.lines().count(), 1, "one bootstrap: {runs}");

    // A failed host (nothing listens yet) sent again once it can be reached.
    let late = "127.0.2.42";
    let late_path = format!("/api/v0/host/{late}");
    assert_eq!(api.put_host(late).await.status, Some(201));
    let host = wait_investigation_ends(
        &api,
        &late_path,
        Duration::from_secs(60),
        "the unreachable host fails",
    )
    .await;
    assert_eq!(host["status"], "failed", "{host}");
    assert!(
        host["reason"].as_str().unwrap().contains("refused"),
        "{host}"
    );
    let late_sshd = testkit::TestSshd::start(late);
    let again = api.put_host(late).await;
    assert_eq!(again.status, Some(201), "{again:?}");
    assert_eq!(again.body["status"], "investigating", "{again:?}");
    let host = wait_investigation_ends(
        &api,
        &late_path,
        Duration::from_secs(90),
        "the host sent again is bootstrapped",
    )
    .await;
    assert_eq!(host["status"], "disassociated", "{host}");
    assert!(
        host["reason"].as_str().unwrap_or_default().is_empty(),
        "{host}"
    );

    // A host stuck `investigating` with no investigation record (as an
    // earlier version, or a crash between the two writes, leaves it).
    let stuck = "127.0.2.43";
    let stuck_sshd = testkit::TestSshd::start(stuck);
    let stuck_path = format!("/api/v0/host/{stuck}");
    assert_eq!(api.put_host(stuck).await.status, Some(201));
    let host = wait_investigation_ends(
        &api,
        &stuck_path,
        Duration::from_secs(90),
        "the third host is bootstrapped",
    )
    .await;
    assert_eq!(host["status"], "disassociated", "{host}");
    let mut record = storage_get(&bus, "Host", json!({"address": stuck}))
        .await
        .unwrap();
    record["status"] = json!("investigating");
    storage_save(&bus, "Host", record).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(api.get_ok(&stuck_path).await["status"], "investigating");
    let again = api.put_host(stuck).await;
    assert_eq!(again.status, Some(201), "{again:?}");
    assert_investigation_ends(
        &api,
        &stack,
        &stuck_path,
        "disassociated",
        Duration::from_secs(90),
        "the stuck host sent again is bootstrapped",
    )
    .await;
    let runs = std::fs::read_to_string(work.path().join("slow.log")).unwrap();
    assert_eq!(
        runs.lines()
            .filter(|l| l.starts_with("install_docker"))
            .count(),
        4,
        "bootstraps: first host 1, late host 1 (none while refused), stuck host 2: {runs}"
    );
    drop((late_sshd, stuck_sshd));
}
