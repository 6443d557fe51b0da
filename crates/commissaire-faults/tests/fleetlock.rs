//! The FleetLock lock server on the real split stack (the daemon binaries
//! over RabbitMQ, the store behind the storage daemon), driven as Zincati
//! drives it: an HTTP client posting the protocol's body with its header.
//! The Kubernetes API is the test bed's real API server, with a kubelet
//! stand-in (`testkit::kube_api`: no kubelet can run here); the rolls work
//! on the test bed's sshd hosts.

use std::time::Duration;

use commissaire_faults::*;
use serde_json::{Value, json};

/// A FleetLock call of client `id` in `group`, as operator `a`.
async fn zincati(api: &Api, endpoint: &str, id: &str, group: &str) -> (u16, Value) {
    let url = api.base.replacen("://", "://a:a@", 1) + &format!("/fleetlock/v1/{endpoint}");
    let response = reqwest::Client::new()
        .post(url)
        .header("fleet-lock-protocol", "true")
        .body(json!({"client_params": {"id": id, "group": group}}).to_string())
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleetlock_reboot_is_drained_before_it_is_granted_and_uncordoned_once_ready() {
    let _serial = serial().await;
    let host = "10.9.0.1";
    let kube = testkit::kube_api::RealKube::connect(&[host]).await;
    let _kubelet = kube.kubelet(&[host]);
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
    bootstrapped_host(&bus, host).await;
    let a = api
        .put(&format!("/api/v0/cluster/managed/hosts/{host}"), json!({}))
        .await;
    assert_eq!(a.status, Some(200), "{a:?}");
    wait_joined(&api, &kube, host, "the host joins").await;
    kube.create_pod("web-1", host, json!({"app": "web"}), false)
        .await;
    kube.create_pod("proxy-1", host, json!({"app": "proxy"}), true)
        .await;
    assert!(!kube.unschedulable(host).await);

    // Pre-reboot: granted only once the node is cordoned and drained.
    let (status, answer) = zincati(&api, "pre-reboot", host, "managed").await;
    assert_eq!(status, 200, "{answer}");
    assert!(kube.unschedulable(host).await, "cordoned before the grant");
    let left = kube.pods_on(host).await;
    assert_eq!(left, vec!["proxy-1"], "drained (DaemonSet pods stay)");
    let lock = api.get_ok("/api/v0/cluster/managed/lock").await;
    let holder = &lock["holders"][0];
    assert_eq!(
        (holder["state"].as_str(), holder["cordoned"].as_bool()),
        (Some("held"), Some(true)),
        "{lock}"
    );

    // Back from the reboot, the node not Ready yet: not yet, still cordoned.
    kube.set_ready(host, false).await;
    let (status, answer) = zincati(&api, "steady-state", host, "managed").await;
    assert_eq!(
        (status, answer["kind"].as_str()),
        (503, Some("node_not_ready")),
        "{answer}"
    );
    assert!(kube.unschedulable(host).await);
    let lock = api.get_ok("/api/v0/cluster/managed/lock").await;
    assert_eq!(lock["holders"][0]["state"], "returning", "{lock}");

    // Ready: uncordoned, and the slot is free.
    kube.set_ready(host, true).await;
    let (status, answer) = zincati(&api, "steady-state", host, "managed").await;
    assert_eq!(status, 200, "{answer}");
    assert!(!kube.unschedulable(host).await, "uncordoned");
    let lock = api.get_ok("/api/v0/cluster/managed/lock").await;
    assert_eq!(lock["used"], 0, "{lock}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleetlock_holder_holds_a_restart_back_until_its_steady_state_and_the_roll_holds_fleetlock_back()
 {
    let _serial = serial().await;
    let hosts = testbed_hosts(7..9);
    let markers = Markers::new();
    let mut stack = stack();
    stack.configure(Daemon::ClusterExec, "playbook_dir", json!(playbook_dir()));
    stack.configure(
        Daemon::ClusterExec,
        "ansible_vars",
        markers.ansible_vars(1.0),
    );
    stack.configure(Daemon::ClusterExec, "playbook_timeout_seconds", json!(90));
    start(
        &mut stack,
        &[Daemon::Storage, Daemon::Server, Daemon::ClusterExec],
    )
    .await;
    let api = Api::new(&stack);
    let bus = bus(&stack).await;
    active_cluster(&api, &bus, "locked", &hosts).await;

    // A self-updating host takes the only slot (no container manager: at once).
    let (status, answer) = zincati(&api, "pre-reboot", &hosts[0], "locked").await;
    assert_eq!(status, 200, "{answer}");
    let a = api.put("/api/v0/cluster/locked/restart", json!({})).await;
    assert_eq!(a.status, Some(201), "{a:?}");
    // The roll waits for the lock, says so, and touches no host.
    let waiting = wait_until(
        Duration::from_secs(30),
        "the roll waits for the lock",
        || {
            let api = api.clone();
            async move {
                let r = api.get_ok("/api/v0/cluster/locked/restart").await;
                match r["waiting"].as_str() {
                    Some(w) if w.starts_with("for the reboot lock") => Ok(r),
                    _ => Err(r.to_string()),
                }
            }
        },
    )
    .await;
    let why = waiting["waiting"].as_str().unwrap();
    assert!(
        why.contains(&format!("FleetLock node '{}'", hosts[0])),
        "{why}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = api.get_ok("/api/v0/cluster/locked/restart").await;
    assert!(
        strs(&r["restarted"]).is_empty() && strs(&r["in_process"]).is_empty(),
        "{r}"
    );
    assert!(
        !markers.dir.path().join("restart.log").exists(),
        "no host was restarted"
    );

    // Steady-state gives the slot back: the roll goes on, and while it
    // works on a host (a restart keeps sshd down 2 s), a FleetLock host
    // waits for it.
    let (status, answer) = zincati(&api, "steady-state", &hosts[0], "locked").await;
    assert_eq!(status, 200, "{answer}");
    wait_until(Duration::from_secs(60), "the roll works on a host", || {
        let api = api.clone();
        async move {
            let r = api.get_ok("/api/v0/cluster/locked/restart").await;
            if !strs(&r["in_process"]).is_empty() {
                Ok(())
            } else {
                Err(r.to_string())
            }
        }
    })
    .await;
    let (status, answer) = zincati(&api, "pre-reboot", &hosts[1], "locked").await;
    assert_eq!(
        (status, answer["kind"].as_str()),
        (409, Some("failed_lock_semaphore_full")),
        "{answer}"
    );
    assert!(
        answer["value"]
            .as_str()
            .unwrap_or("")
            .contains("the restart"),
        "{answer}"
    );
    let done = wait_op_end(&api, "locked", "restart", Duration::from_secs(120)).await;
    assert_eq!(done["status"], "finished", "{done}");
    assert_eq!(strs(&done["restarted"]).len(), 2, "{done}");
    let events = done["events"].to_string();
    assert!(events.contains("waiting: for the reboot lock"), "{events}");
    // The roll gave its slots back.
    let lock = api.get_ok("/api/v0/cluster/locked/lock").await;
    assert_eq!(lock["used"], 0, "{lock}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holder_whose_host_the_watcher_sees_down_is_reported_kept_and_released_by_the_verb() {
    let _serial = serial().await;
    let mut sshd = testkit::TestSshd::start("127.0.2.51");
    let host = sshd.address.clone();
    let other = "10.9.5.2".to_string();
    let mut stack = stack();
    let _runtime = configure_watcher(&mut stack, 1, 10);
    // Down for 3 s is stale (a reboot would take longer in real life);
    // the policy is the default: keep the slot.
    stack.configure(
        Daemon::Server,
        "fleetlock",
        json!({"down_after_seconds": 3, "scan_seconds": 0.5}),
    );
    start(
        &mut stack,
        &[Daemon::Storage, Daemon::Server, Daemon::Watcher],
    )
    .await;
    let api = Api::new(&stack);
    let bus = bus(&stack).await;
    active_cluster(&api, &bus, "watched", &[host.clone(), other.clone()]).await;
    watch_and_wait_first_check(&api, &bus, &host).await;
    let path = format!("/api/v0/host/{host}");

    let (status, answer) = zincati(&api, "pre-reboot", &host, "watched").await;
    assert_eq!(status, 200, "{answer}");
    // The host goes down and does not come back.
    sshd.stop();
    let lock = wait_until(Duration::from_secs(60), "the holder is found stale", || {
        let api = api.clone();
        async move {
            let lock = api.get_ok("/api/v0/cluster/watched/lock").await;
            match lock["holders"][0]["stale"].as_str() {
                Some(s) if !s.is_empty() => Ok(lock),
                _ => Err(lock.to_string()),
            }
        }
    })
    .await;
    let holder = &lock["holders"][0];
    let why = holder["stale"].as_str().unwrap();
    assert!(
        why.starts_with(&format!("host {host} down for ")) && why.ends_with("longer than 3 s"),
        "{lock}"
    );
    assert!(holder["down_since"].is_string(), "{lock}");
    assert_eq!(api.get_ok(&path).await["status"], "failed");
    // Kept: the other host waits.
    let (status, answer) = zincati(&api, "pre-reboot", &other, "watched").await;
    assert_eq!(
        (status, answer["kind"].as_str()),
        (409, Some("failed_lock_semaphore_full")),
        "{answer}"
    );
    // Reported once, by the system, in the audit trail and the metrics.
    let audit = api.get_ok("/api/v0/audit?kind=cluster.lock.stale").await;
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(
        (entries[0]["user"].as_str(), entries[0]["name"].as_str()),
        (
            Some("commissaire"),
            Some(format!("watched/{host}").as_str())
        ),
        "{audit}"
    );
    let metrics = reqwest::get(format!("{}/metrics", stack.server_url(0)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sample = |series: &str| -> Option<f64> {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    };
    assert_eq!(
        sample("commissaire_lock_stale_holders "),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample("commissaire_lock_stale_total{action=\"kept\"} "),
        Some(1.0),
        "{metrics}"
    );

    // The operator's verb gives the slot back; the other host gets it.
    let released = api
        .delete(&format!("/api/v0/cluster/watched/lock/holders/{host}"))
        .await;
    assert_eq!(released.status, Some(200), "{released:?}");
    let (status, answer) = zincati(&api, "pre-reboot", &other, "watched").await;
    assert_eq!(status, 200, "{answer}");
}
