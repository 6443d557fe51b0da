//! The /api/v0 endpoints, fast tier: the server over the in-process bus and
//! the storage service on a redb file (tests/common); no test bed needed.

mod common;

use std::time::Duration;

use common::{KEY, Stack, StackOptions};
use serde_json::{Value, json};

/// Every route and method of the API, with a body where one is needed.
fn endpoints() -> Vec<(&'static str, &'static str)> {
    vec![
        ("GET", "/api/v0/clusters"),
        ("GET", "/api/v0/cluster/"),
        ("GET", "/api/v0/cluster/honeynut"),
        ("PUT", "/api/v0/cluster/honeynut"),
        ("DELETE", "/api/v0/cluster/honeynut"),
        ("GET", "/api/v0/cluster/honeynut/hosts"),
        ("PUT", "/api/v0/cluster/honeynut/hosts"),
        ("GET", "/api/v0/cluster/honeynut/hosts/192.168.152.110"),
        ("PUT", "/api/v0/cluster/honeynut/hosts/192.168.152.110"),
        ("DELETE", "/api/v0/cluster/honeynut/hosts/192.168.152.110"),
        ("GET", "/api/v0/cluster/honeynut/restart"),
        ("PUT", "/api/v0/cluster/honeynut/restart"),
        ("PUT", "/api/v0/cluster/honeynut/restart/pause"),
        ("PUT", "/api/v0/cluster/honeynut/restart/resume"),
        ("GET", "/api/v0/cluster/honeynut/rolling"),
        ("PUT", "/api/v0/cluster/honeynut/rolling"),
        ("GET", "/api/v0/cluster/honeynut/upgrade"),
        ("PUT", "/api/v0/cluster/honeynut/upgrade"),
        ("GET", "/api/v0/cluster/honeynut/deploy"),
        ("PUT", "/api/v0/cluster/honeynut/deploy"),
        ("GET", "/api/v0/hosts"),
        ("PUT", "/api/v0/host"),
        ("GET", "/api/v0/host/192.168.152.110"),
        ("PUT", "/api/v0/host/192.168.152.110"),
        ("DELETE", "/api/v0/host/192.168.152.110"),
        ("GET", "/api/v0/host/192.168.152.110/creds"),
        ("GET", "/api/v0/host/192.168.152.110/status"),
        ("PUT", "/api/v0/host/192.168.152.110/retry"),
        ("GET", "/api/v0/networks"),
        ("GET", "/api/v0/network/default"),
        ("PUT", "/api/v0/network/n1"),
        ("DELETE", "/api/v0/network/n1"),
        ("GET", "/api/v0/containermanagers"),
        ("GET", "/api/v0/containermanager/cm1"),
        ("PUT", "/api/v0/containermanager/cm1"),
        ("DELETE", "/api/v0/containermanager/cm1"),
    ]
}

#[tokio::test]
async fn anonymous_and_wrong_passwords_are_denied_everywhere() {
    // Many wrong passwords from one address on purpose: no slowing down here
    // (wrong_passwords_from_one_address_are_answered_more_and_more_slowly).
    let stack = Stack::start_with(StackOptions {
        auth_throttle: Some(commissaire_http::auth::throttle::ThrottleSettings::OFF),
        ..Default::default()
    })
    .await;
    for (method, path) in endpoints() {
        let resp = stack
            .client
            .request(method.parse().unwrap(), stack.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{method} {path}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"].is_string());
        let resp = stack
            .client
            .request(method.parse().unwrap(), stack.url(path))
            .basic_auth("a", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{method} {path} with a wrong password");
    }
    // Unknown paths are denied too (nothing is revealed to anonymous callers).
    let resp = stack
        .client
        .get(stack.url("/api/v0/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn clusters_are_created_read_listed_and_deleted() {
    let s = Stack::start().await;
    assert_eq!(s.get("/api/v0/cluster/honeynut").await.0, 404);
    let (status, body) = s
        .put("/api/v0/cluster/honeynut", json!({"network": "default"}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        body,
        json!({"name": "honeynut", "status": "", "network": "default", "container_manager": ""})
    );
    // Re-creating with compatible data is a 201, with other data a 409.
    assert_eq!(
        s.put("/api/v0/cluster/honeynut", json!({"network": "default"}))
            .await
            .0,
        201
    );
    s.put("/api/v0/network/other", json!({})).await;
    assert_eq!(
        s.put("/api/v0/cluster/honeynut", json!({"network": "other"}))
            .await
            .0,
        409
    );
    // No body at all (commctl's `type` is ignored).
    assert_eq!(
        s.send("PUT", "/api/v0/cluster/multigrain", None).await.0,
        201
    );
    assert_eq!(
        s.put("/api/v0/cluster/multigrain", json!({"type": "kubernetes"}))
            .await
            .0,
        201
    );
    let (status, body) = s.get("/api/v0/cluster/honeynut").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"name": "honeynut", "status": "ok", "network": "default", "container_manager": "",
               "hosts": {"total": 0, "available": 0, "unavailable": 0}})
    );
    let (status, mut names) = s.get("/api/v0/clusters").await;
    assert_eq!(status, 200);
    names
        .as_array_mut()
        .unwrap()
        .sort_by_key(|v| v.as_str().unwrap().to_string());
    assert_eq!(names, json!(["honeynut", "multigrain"]));
    assert_eq!(
        s.get("/api/v0/cluster/").await.1,
        s.get("/api/v0/clusters/").await.1
    );
    // A missing network or container manager is a 400 naming the member.
    let (status, body) = s
        .put("/api/v0/cluster/c2", json!({"network": "nope"}))
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("network")));
    let (status, body) = s
        .put("/api/v0/cluster/c2", json!({"container_manager": "nope"}))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("container_manager"))
    );
    let (status, body) = s.put("/api/v0/cluster/c2", json!({"network": 5})).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("network")));
    assert_eq!(s.delete("/api/v0/cluster/honeynut").await, (200, json!([])));
    assert_eq!(s.get("/api/v0/cluster/honeynut").await.0, 404);
    assert_eq!(s.delete("/api/v0/cluster/honeynut").await.0, 404);
}

#[tokio::test]
async fn networks_and_container_managers() {
    let s = Stack::start().await;
    assert_eq!(s.get("/api/v0/networks").await, (200, json!(["default"])));
    assert_eq!(
        s.get("/api/v0/network/default").await,
        (
            200,
            json!({"name": "default", "type": "flannel_etcd", "options": {}})
        )
    );
    let net = json!({"type": "flannel_server", "options": {"address": "10.0.0.1:8080"}});
    let (status, body) = s.put("/api/v0/network/mynet", net.clone()).await;
    assert_eq!(status, 201);
    assert_eq!(body["type"], "flannel_server");
    assert_eq!(s.put("/api/v0/network/mynet", net).await.0, 201);
    assert_eq!(
        s.put("/api/v0/network/mynet", json!({"type": "flannel_etcd"}))
            .await
            .0,
        409
    );
    let (status, body) = s
        .put("/api/v0/network/bad", json!({"type": "calico"}))
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("type")));
    let (status, body) = s
        .put("/api/v0/network/bad", json!({"type": "flannel_server"}))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("options.address"))
    );
    // In use by a cluster: refused.
    s.put("/api/v0/cluster/c1", json!({"network": "mynet"}))
        .await;
    assert_eq!(s.delete("/api/v0/network/mynet").await.0, 409);
    s.delete("/api/v0/cluster/c1").await;
    assert_eq!(s.delete("/api/v0/network/mynet").await, (200, json!([])));
    assert_eq!(s.get("/api/v0/network/mynet").await.0, 404);
    assert_eq!(s.delete("/api/v0/network/mynet").await.0, 404);

    assert_eq!(s.get("/api/v0/containermanagers").await, (200, json!([])));
    let cm =
        json!({"type": "openshift", "options": {"server_url": "https://192.168.152.101:8443"}});
    let (status, body) = s
        .put("/api/v0/containermanager/prod_openshift", cm.clone())
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["name"], "prod_openshift");
    assert_eq!(
        s.put("/api/v0/containermanager/prod_openshift", cm).await.0,
        201
    );
    assert_eq!(
        s.put(
            "/api/v0/containermanager/prod_openshift",
            json!({"type": "trivial"})
        )
        .await
        .0,
        409
    );
    let (status, body) = s
        .put("/api/v0/containermanager/x", json!({"type": "mesos"}))
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("type")));
    assert_eq!(
        s.get("/api/v0/containermanagers").await,
        (200, json!(["prod_openshift"]))
    );
    s.put(
        "/api/v0/cluster/c2",
        json!({"container_manager": "prod_openshift"}),
    )
    .await;
    assert_eq!(
        s.delete("/api/v0/containermanager/prod_openshift").await.0,
        409
    );
    s.delete("/api/v0/cluster/c2").await;
    assert_eq!(
        s.delete("/api/v0/containermanager/prod_openshift").await,
        (200, json!([]))
    );
    assert_eq!(
        s.get("/api/v0/containermanager/prod_openshift").await.0,
        404
    );
}

#[tokio::test]
async fn hosts_are_created_with_credentials_and_deleted() {
    let s = Stack::start().await;
    let jobs = s.bus.subscribe(&["jobs.investigate".into()]).await.unwrap();
    let addr = "192.168.152.110";
    let (status, host) = s
        .put(
            &format!("/api/v0/host/{addr}"),
            json!({"ssh_priv_key": KEY}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(host["address"], addr);
    assert_eq!(host["status"], "investigating");
    assert!(host.get("ssh_priv_key").is_none());
    // The investigator was asked to look at it.
    let job = tokio::time::timeout(Duration::from_secs(10), jobs.recv())
        .await
        .unwrap()
        .unwrap();
    let job: Value = serde_json::from_slice(&job.body).unwrap();
    assert_eq!(job["params"]["address"], addr);
    // Compatible re-creation 201, other key 409.
    assert_eq!(
        s.put(
            &format!("/api/v0/host/{addr}"),
            json!({"ssh_priv_key": KEY})
        )
        .await
        .0,
        201
    );
    assert_eq!(
        s.put(
            &format!("/api/v0/host/{addr}"),
            json!({"ssh_priv_key": "b3RoZXIK"})
        )
        .await
        .0,
        409
    );
    assert_eq!(
        s.get(&format!("/api/v0/host/{addr}")).await.1["address"],
        addr
    );
    assert_eq!(
        s.get(&format!("/api/v0/host/{addr}/creds")).await,
        (200, json!({"ssh_priv_key": KEY, "remote_user": "root"}))
    );
    let (status, list) = s.get("/api/v0/hosts").await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(
        !list.to_string().contains(KEY),
        "the host list never shows keys"
    );
    let (status, st) = s.get(&format!("/api/v0/host/{addr}/status")).await;
    assert_eq!(status, 200);
    assert_eq!(st["type"], "host_only");
    assert_eq!(st["host"]["status"], "investigating");
    assert_eq!(st["container_manager"], json!({}));
    // Bad input.
    let (status, body) = s.put("/api/v0/host/10.1.1.1", json!({})).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("ssh_priv_key"))
    );
    let (status, body) = s
        .put(
            "/api/v0/host/10.1.1.1",
            json!({"ssh_priv_key": "not base64!"}),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("ssh_priv_key"))
    );
    let (status, body) = s
        .put(
            "/api/v0/host/10.1.1.1",
            json!({"ssh_priv_key": KEY, "cluster": "missing"}),
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (409, Some("cluster")));
    let (status, body) = s
        .put(
            "/api/v0/host/10.1.1.1",
            json!({"ssh_priv_key": KEY, "remote_user": 7}),
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("remote_user")));
    assert_eq!(s.get("/api/v0/host/10.1.1.1").await.0, 404);
    // Deleting removes host and credentials.
    assert_eq!(
        s.delete(&format!("/api/v0/host/{addr}")).await,
        (200, json!([]))
    );
    assert_eq!(s.get(&format!("/api/v0/host/{addr}")).await.0, 404);
    assert_eq!(s.get(&format!("/api/v0/host/{addr}/creds")).await.0, 404);
    assert_eq!(s.get(&format!("/api/v0/host/{addr}/status")).await.0, 404);
    assert_eq!(s.delete(&format!("/api/v0/host/{addr}")).await.0, 404);
}

#[tokio::test]
async fn a_failed_host_is_retried_with_the_credentials_it_has() {
    let s = Stack::start().await;
    let jobs = s.bus.subscribe(&["jobs.investigate".into()]).await.unwrap();
    let addr = "192.168.152.120";
    let next_job = || async {
        let job = tokio::time::timeout(Duration::from_secs(10), jobs.recv())
            .await
            .expect("an investigation is announced")
            .unwrap();
        serde_json::from_slice::<Value>(&job.body).unwrap()
    };
    assert_eq!(
        s.put(
            &format!("/api/v0/host/{addr}"),
            json!({"ssh_priv_key": KEY})
        )
        .await
        .0,
        201
    );
    assert_eq!(next_job().await["params"]["address"], addr);
    // Nothing to retry while it is being investigated (its job is queued).
    let (status, body) = s
        .put(&format!("/api/v0/host/{addr}/retry"), json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
    // It failed (as an investigator would record, its job done).
    s.bus
        .request(
            "storage.delete",
            json!({"model_type_name": "Investigation", "model_json_data": {"address": addr}}),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    s.set_host_status(addr, "failed").await;
    let (status, host) = s
        .put(&format!("/api/v0/host/{addr}/retry"), json!({}))
        .await;
    assert_eq!(status, 202, "{host}");
    assert_eq!(host["status"], "investigating");
    assert!(host.get("ssh_priv_key").is_none());
    assert_eq!(next_job().await["params"]["address"], addr);
    let (status, _) = s
        .bus
        .request(
            "storage.get",
            json!({"model_type_name": "Investigation", "model_json_data": {"address": addr}}),
            Duration::from_secs(5),
        )
        .await
        .map(|v| (200, v))
        .unwrap();
    assert_eq!(
        status, 200,
        "the investigation is stored, not only announced"
    );
    // A healthy host has nothing to retry; a missing one is not found.
    s.set_host_status(addr, "active").await;
    let (status, body) = s
        .put(&format!("/api/v0/host/{addr}/retry"), json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("nothing to retry"),
        "{body}"
    );
    assert_eq!(s.put("/api/v0/host/10.9.9.9/retry", json!({})).await.0, 404);
}

#[tokio::test]
async fn a_host_registers_itself_from_its_own_address() {
    let s = Stack::start().await;
    s.put("/api/v0/cluster/selfreg", json!({})).await;
    let (status, host) = s
        .put(
            "/api/v0/host",
            json!({"ssh_priv_key": KEY, "cluster": "selfreg"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(host["address"], "127.0.0.1");
    assert_eq!(
        s.get("/api/v0/cluster/selfreg/hosts").await.1,
        json!(["127.0.0.1"])
    );
    assert_eq!(s.get("/api/v0/host/127.0.0.1").await.0, 200);
}

#[tokio::test]
async fn cluster_members() {
    let s = Stack::start().await;
    let addr = "192.168.152.110";
    s.put("/api/v0/cluster/honeynut", json!({})).await;
    s.put(
        &format!("/api/v0/host/{addr}"),
        json!({"ssh_priv_key": KEY}),
    )
    .await;
    // Not implicitly added.
    assert_eq!(
        s.get("/api/v0/cluster/honeynut").await.1["hosts"]["total"],
        0
    );
    assert_eq!(
        s.get("/api/v0/cluster/honeynut/hosts").await,
        (200, json!([]))
    );
    assert_eq!(
        s.get(&format!("/api/v0/cluster/honeynut/hosts/{addr}"))
            .await
            .0,
        404
    );
    // A host still being investigated cannot join.
    assert_eq!(
        s.send(
            "PUT",
            &format!("/api/v0/cluster/honeynut/hosts/{addr}"),
            None
        )
        .await
        .0,
        409
    );
    s.set_host_status(addr, "disassociated").await;
    assert_eq!(
        s.send(
            "PUT",
            &format!("/api/v0/cluster/honeynut/hosts/{addr}"),
            None
        )
        .await,
        (200, json!([addr]))
    );
    assert_eq!(
        s.send(
            "PUT",
            &format!("/api/v0/cluster/honeynut/hosts/{addr}"),
            None
        )
        .await,
        (200, json!([addr]))
    );
    // No container manager: a disassociated member is a healthy one.
    let cluster = s.get("/api/v0/cluster/honeynut").await.1;
    assert_eq!(
        cluster["hosts"],
        json!({"total": 1, "available": 1, "unavailable": 0})
    );
    assert_eq!(cluster["status"], "ok");
    s.set_host_status(addr, "failed").await;
    let cluster = s.get("/api/v0/cluster/honeynut").await.1;
    assert_eq!(
        cluster["hosts"],
        json!({"total": 1, "available": 0, "unavailable": 1})
    );
    assert_eq!(cluster["status"], "failed");
    s.set_host_status(addr, "active").await;
    assert_eq!(s.get("/api/v0/cluster/honeynut").await.1["status"], "ok");
    assert_eq!(
        s.get("/api/v0/cluster/honeynut/hosts").await.1,
        json!([addr])
    );
    assert_eq!(
        s.get(&format!("/api/v0/cluster/honeynut/hosts/{addr}"))
            .await,
        (200, json!([addr]))
    );
    // Remove (idempotent).
    assert_eq!(
        s.delete(&format!("/api/v0/cluster/honeynut/hosts/{addr}"))
            .await,
        (200, json!([]))
    );
    assert_eq!(
        s.delete(&format!("/api/v0/cluster/honeynut/hosts/{addr}"))
            .await,
        (200, json!([]))
    );
    assert_eq!(s.get("/api/v0/cluster/honeynut/hosts").await.1, json!([]));
    assert_eq!(
        s.delete(&format!("/api/v0/cluster/nope/hosts/{addr}"))
            .await
            .0,
        404
    );
    assert_eq!(
        s.send("PUT", "/api/v0/cluster/honeynut/hosts/10.7.7.7", None)
            .await
            .0,
        404
    );
    // Replace the list with old/new.
    assert_eq!(
        s.send(
            "PUT",
            "/api/v0/cluster/honeynut/hosts",
            Some("\"a string\"")
        )
        .await
        .0,
        400
    );
    assert_eq!(
        s.put("/api/v0/cluster/honeynut/hosts", json!({"new": [addr]}))
            .await
            .0,
        400
    );
    let (status, body) = s
        .put(
            "/api/v0/cluster/honeynut/hosts",
            json!({"old": ["bogus"], "new": [addr]}),
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (409, Some("old")));
    assert_eq!(s.get("/api/v0/cluster/honeynut/hosts").await.1, json!([]));
    let (status, body) = s
        .put(
            "/api/v0/cluster/honeynut/hosts",
            json!({"old": [], "new": [addr]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["hostset"], json!([addr]));
    assert_eq!(
        s.get("/api/v0/cluster/honeynut/hosts").await.1,
        json!([addr])
    );
    // Deleting the host removes it from the cluster.
    s.delete(&format!("/api/v0/host/{addr}")).await;
    assert_eq!(
        s.get("/api/v0/cluster/honeynut").await.1["hosts"]["total"],
        0
    );
    assert_eq!(s.get("/api/v0/cluster/honeynut/hosts").await.1, json!([]));
    // Creating a host with a cluster makes it a member.
    s.put(
        &format!("/api/v0/host/{addr}"),
        json!({"ssh_priv_key": KEY, "cluster": "honeynut"}),
    )
    .await;
    assert_eq!(
        s.get("/api/v0/cluster/honeynut/hosts").await.1,
        json!([addr])
    );
    assert_eq!(
        s.get(&format!("/api/v0/cluster/honeynut/hosts/{addr}"))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn concurrent_member_list_replacements_are_atomic() {
    let s = Stack::start().await;
    s.put("/api/v0/cluster/race", json!({})).await;
    let addrs: Vec<String> = (1..=8).map(|i| format!("10.8.0.{i}")).collect();
    for a in &addrs {
        s.put(&format!("/api/v0/host/{a}"), json!({"ssh_priv_key": KEY}))
            .await;
        s.set_host_status(a, "disassociated").await;
    }
    // Eight writers all start from the same (empty) list: exactly one wins.
    let attempts = addrs
        .iter()
        .map(|a| s.put("/api/v0/cluster/race/hosts", json!({"old": [], "new": [a]})));
    let results = futures::future::join_all(attempts).await;
    let won = results.iter().filter(|(status, _)| *status == 200).count();
    let lost = results.iter().filter(|(status, _)| *status == 409).count();
    assert_eq!((won, lost), (1, 7), "{results:?}");
    assert_eq!(
        s.get("/api/v0/cluster/race/hosts")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn cluster_operations_are_recorded_and_handed_to_clusterexec() {
    let s = Stack::start().await;
    let jobs = s
        .bus
        .subscribe(&["jobs.clusterexec.*".into()])
        .await
        .unwrap();
    assert_eq!(
        s.send("PUT", "/api/v0/cluster/nope/restart", None).await.0,
        404
    );
    s.put("/api/v0/cluster/datacenter1", json!({})).await;
    for op in ["restart", "upgrade", "deploy"] {
        assert_eq!(
            s.get(&format!("/api/v0/cluster/datacenter1/{op}")).await.0,
            404,
            "{op} before start"
        );
    }
    let (status, record) = s
        .send("PUT", "/api/v0/cluster/datacenter1/restart", None)
        .await;
    assert_eq!(status, 201);
    assert_eq!(record["status"], "in_process");
    assert_eq!(record["restarted"], json!([]));
    assert_eq!(record["finished_at"], "");
    assert!(commissaire_models::parse_iso(record["started_at"].as_str().unwrap()).is_some());
    let job = tokio::time::timeout(Duration::from_secs(10), jobs.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.routing_key, "jobs.clusterexec.restart");
    // One at a time.
    assert_eq!(
        s.send("PUT", "/api/v0/cluster/datacenter1/restart", None)
            .await
            .0,
        409
    );
    assert_eq!(
        s.get("/api/v0/cluster/datacenter1/restart").await,
        (200, record)
    );
    let (status, body) = s.put("/api/v0/cluster/datacenter1/deploy", json!({})).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("version")));
    let (status, body) = s
        .put("/api/v0/cluster/datacenter1/deploy", json!({"version": 7}))
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("version")));
    let (status, record) = s
        .put(
            "/api/v0/cluster/datacenter1/deploy",
            json!({"version": "7.2.1"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(record["version"], "7.2.1");
    assert_eq!(record["deployed"], json!([]));
    let (status, record) = s
        .send("PUT", "/api/v0/cluster/datacenter1/upgrade", None)
        .await;
    assert_eq!((status, record["upgraded"].clone()), (201, json!([])));
    let mut keys = Vec::new();
    while keys.len() < 2 {
        let job = tokio::time::timeout(Duration::from_secs(10), jobs.recv())
            .await
            .unwrap()
            .unwrap();
        let body: Value = serde_json::from_slice(&job.body).unwrap();
        if job.routing_key == "jobs.clusterexec.deploy" {
            assert_eq!(
                body["params"],
                json!({"name": "datacenter1", "version": "7.2.1"})
            );
        }
        keys.push(job.routing_key);
    }
    assert!(
        keys.contains(&"jobs.clusterexec.upgrade".to_string()),
        "{keys:?}"
    );
}

/// Marks an operation record ended, as clusterexec would.
async fn end_operation(s: &Stack, model: &str, name: &str, status: &str) {
    let t = Duration::from_secs(5);
    let key = json!({"model_type_name": model, "model_json_data": {"name": name}});
    let mut rec = s.bus.request("storage.get", key, t).await.unwrap();
    rec["status"] = json!(status);
    rec["finished_at"] = json!(commissaire_models::now_iso());
    rec["timeline"] = json!([{"host": "10.1.0.1", "state": "done", "phases": [
        {"phase": "run", "started_at": "2026-01-01T00:00:00.000000", "finished_at": "2026-01-01T00:00:02.500000"}]}]);
    s.bus
        .request(
            "storage.save",
            json!({"model_type_name": model, "model_json_data": rec}),
            t,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn operations_take_budgets_and_an_order_and_are_paused_resumed_and_cancelled() {
    let s = Stack::start().await;
    s.put("/api/v0/cluster/c", json!({})).await;
    for h in ["10.1.0.1", "10.1.0.2", "10.1.0.3"] {
        let (status, _) = s
            .put(
                &format!("/api/v0/host/{h}"),
                json!({"ssh_priv_key": KEY, "cluster": "c"}),
            )
            .await;
        assert_eq!(status, 201);
    }
    // Bad input: 400 naming the member.
    for (body, field) in [
        (json!({"batch_size": 0}), "batch_size"),
        (json!({"batch_size": "150%"}), "batch_size"),
        (json!({"batch_size": "half"}), "batch_size"),
        (json!({"max_failures": -1}), "max_failures"),
        (json!({"order": "10.1.0.1"}), "order"),
        (json!({"order": ["10.9.9.9"]}), "order[0]"),
        (json!({"order": ["10.1.0.1", "10.1.0.1"]}), "order[1]"),
        (
            json!({"order": ["10.1.0.2"], "last": ["10.1.0.3", "10.1.0.2"]}),
            "last[1]",
        ),
    ] {
        let (status, reply) = s.put("/api/v0/cluster/c/restart", body.clone()).await;
        assert_eq!(
            (status, reply["field"].as_str()),
            (400, Some(field)),
            "{body}: {reply}"
        );
    }
    // Nothing in process: pause and resume are 404 (never started) or 409.
    for verb in ["pause", "resume"] {
        let (status, _) = s
            .send("PUT", &format!("/api/v0/cluster/c/restart/{verb}"), None)
            .await;
        assert_eq!(status, 404, "{verb}");
    }
    let (status, rec) = s
        .put(
            "/api/v0/cluster/c/restart",
            json!({"batch_size": "50%", "max_failures": 1, "order": ["10.1.0.2"], "last": ["10.1.0.1"]}),
        )
        .await;
    assert_eq!(status, 201, "{rec}");
    assert_eq!(
        (rec["batch_size"].clone(), rec["max_failures"].clone()),
        (json!("50%"), json!(1))
    );
    assert_eq!(
        (rec["order"].clone(), rec["last"].clone()),
        (json!(["10.1.0.2"]), json!(["10.1.0.1"]))
    );
    assert_eq!(rec["started_by"], common::USER, "who started it");
    // Pause, again (no change), resume, cancel: 202 with the record.
    let (status, rec) = s.send("PUT", "/api/v0/cluster/c/restart/pause", None).await;
    assert_eq!(
        (status, rec["pause_requested"].clone()),
        (202, json!(true)),
        "{rec}"
    );
    let (status, again) = s.send("PUT", "/api/v0/cluster/c/restart/pause", None).await;
    assert_eq!(
        (status, again["events"].clone()),
        (202, rec["events"].clone())
    );
    let (status, rec) = s
        .send("PUT", "/api/v0/cluster/c/restart/resume", None)
        .await;
    assert_eq!(status, 202);
    assert!(rec.get("pause_requested").is_none(), "{rec}");
    let (status, rec) = s.send("DELETE", "/api/v0/cluster/c/restart", None).await;
    assert_eq!(
        (status, rec["cancel_requested"].clone()),
        (202, json!(true))
    );
    let events: Vec<&str> = rec["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    let u = common::USER;
    assert_eq!(
        events,
        [
            format!("pause requested by {u}"),
            format!("resume requested by {u}"),
            format!("cancel requested by {u}")
        ]
    );
    // Ended: pause and resume are 409; a new run keeps the last one in history.
    end_operation(&s, "ClusterRestart", "c", "cancelled").await;
    for verb in ["pause", "resume"] {
        let (status, reply) = s
            .send("PUT", &format!("/api/v0/cluster/c/restart/{verb}"), None)
            .await;
        assert_eq!(status, 409, "{verb}: {reply}");
        assert!(
            reply["error"].as_str().unwrap().contains("not in process"),
            "{reply}"
        );
    }
    let (status, rec) = s.send("PUT", "/api/v0/cluster/c/restart", None).await;
    assert_eq!(status, 201);
    let past = &rec["history"][0];
    assert_eq!(
        (past["status"].as_str(), past["started_by"].as_str()),
        (Some("cancelled"), Some(u)),
        "{rec}"
    );
    assert_eq!(past["mean_host_ms"], 2500);
    assert!(
        rec.get("timeline").is_none() && rec.get("events").is_none(),
        "a new run starts clean: {rec}"
    );
}

#[tokio::test]
async fn a_dry_run_answers_the_plan_and_writes_nothing() {
    let s = Stack::start().await;
    s.put("/api/v0/cluster/c", json!({})).await;
    let hosts = ["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4"];
    for h in hosts {
        s.put(
            &format!("/api/v0/host/{h}"),
            json!({"ssh_priv_key": KEY, "cluster": "c"}),
        )
        .await;
    }
    let gates = json!({"commands": [{"command": "systemctl is-active kubelet", "retries": 1}]});
    let body = json!({"dry_run": true, "batch_size": "50%", "order": ["10.1.0.4"],
        "last": ["10.1.0.1"], "gates": gates});
    let (status, plan) = s.put("/api/v0/cluster/c/restart", body.clone()).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(
        plan["batches"],
        json!([["10.1.0.4", "10.1.0.2"], ["10.1.0.3", "10.1.0.1"]])
    );
    assert_eq!(
        plan["batch_size"],
        json!({"value": "50%", "from": "request", "hosts": 2})
    );
    assert_eq!(plan["max_failures"]["from"], "clusterexec's setting");
    assert_eq!(
        plan["hosts"][0],
        json!({"host": "10.1.0.4", "batch": 1, "status": "investigating"})
    );
    assert_eq!(
        plan["gates"],
        json!([{"gate": "command", "what": "systemctl is-active kubelet", "tries": 2}])
    );
    assert_eq!(
        plan["window"],
        "no maintenance windows: it would start at once"
    );
    assert_eq!(plan["estimate"], Value::Null, "no run to estimate from");
    assert_eq!(
        s.get("/api/v0/cluster/c/restart").await.0,
        404,
        "nothing was written"
    );
    // Bad input is refused as for a real start.
    let (status, reply) = s
        .put("/api/v0/cluster/c/restart", json!({"dry_run": "yes"}))
        .await;
    assert_eq!((status, reply["field"].as_str()), (400, Some("dry_run")));
    let (status, reply) = s
        .put(
            "/api/v0/cluster/c/restart",
            json!({"dry_run": true, "order": ["9.9.9.9"]}),
        )
        .await;
    assert_eq!((status, reply["field"].as_str()), (400, Some("order[0]")));
    // With a run behind it, the plan estimates from its timings; while one
    // is in process the plan says a start would be refused.
    assert_eq!(
        s.send("PUT", "/api/v0/cluster/c/restart", None).await.0,
        201
    );
    let (_, plan) = s
        .put("/api/v0/cluster/c/restart", json!({"dry_run": true}))
        .await;
    assert!(plan["note"].as_str().unwrap().contains("409"), "{plan}");
    end_operation(&s, "ClusterRestart", "c", "finished").await;
    let before = s.get("/api/v0/cluster/c/restart").await.1;
    let (_, plan) = s
        .put("/api/v0/cluster/c/restart", json!({"dry_run": true}))
        .await;
    assert_eq!(plan["estimate"]["mean_host_seconds"], 2.5, "{plan}");
    assert_eq!(
        plan["estimate"]["seconds"], 10.0,
        "four batches of one: {plan}"
    );
    assert_eq!(
        s.get("/api/v0/cluster/c/restart").await.1,
        before,
        "nothing was written"
    );
}

#[tokio::test]
async fn a_cluster_s_rolling_defaults_are_kept_checked_and_used() {
    let s = Stack::start().await;
    s.put("/api/v0/cluster/c", json!({})).await;
    s.put(
        "/api/v0/host/10.1.0.1",
        json!({"ssh_priv_key": KEY, "cluster": "c"}),
    )
    .await;
    assert_eq!(s.get("/api/v0/cluster/c/rolling").await, (200, json!({})));
    assert_eq!(s.get("/api/v0/cluster/nope/rolling").await.0, 404);
    let defaults =
        json!({"batch_size": "25%", "max_failures": 2, "last": ["10.1.0.1"], "keep_runs": 3});
    assert_eq!(
        s.put("/api/v0/cluster/c/rolling", defaults.clone()).await,
        (200, defaults.clone())
    );
    assert_eq!(
        s.get("/api/v0/cluster/c/rolling").await,
        (200, defaults.clone())
    );
    assert_eq!(s.get("/api/v0/cluster/c").await.1["rolling"], defaults);
    for (body, field) in [
        (json!({"batch_size": 0}), "batch_size"),
        (json!({"keep_runs": 101}), "keep_runs"),
        (json!({"last": [3]}), "last"),
        (json!({"window": {}}), "window"),
    ] {
        let (status, reply) = s.put("/api/v0/cluster/c/rolling", body.clone()).await;
        assert_eq!(
            (status, reply["field"].as_str()),
            (400, Some(field)),
            "{body}: {reply}"
        );
    }
    // An operation without `last` takes the cluster's.
    let (_, rec) = s.send("PUT", "/api/v0/cluster/c/upgrade", None).await;
    assert_eq!(rec["last"], json!(["10.1.0.1"]));
    // keep_runs bounds the history.
    for _ in 0..5 {
        end_operation(&s, "ClusterUpgrade", "c", "finished").await;
        s.send("PUT", "/api/v0/cluster/c/upgrade", None).await;
    }
    let rec = s.get("/api/v0/cluster/c/upgrade").await.1;
    assert_eq!(rec["history"].as_array().unwrap().len(), 3, "{rec}");
    // Adding a host keeps the defaults (the cluster is updated, not replaced).
    s.put(
        "/api/v0/host/10.1.0.2",
        json!({"ssh_priv_key": KEY, "cluster": "c"}),
    )
    .await;
    assert_eq!(s.get("/api/v0/cluster/c/rolling").await, (200, defaults));
    // Empty body: the defaults are unset.
    assert_eq!(
        s.put("/api/v0/cluster/c/rolling", json!({})).await,
        (200, json!({}))
    );
    assert!(s.get("/api/v0/cluster/c").await.1.get("rolling").is_none());
}

#[tokio::test]
async fn wrong_passwords_from_one_address_are_answered_more_and_more_slowly() {
    use commissaire_http::auth::throttle::ThrottleSettings;
    use std::time::Instant;
    let stack = Stack::start_with(StackOptions {
        auth_throttle: Some(ThrottleSettings {
            failures: 2,
            window_seconds: 60.0,
            max_delay_seconds: 2.0,
        }),
        ..Default::default()
    })
    .await;
    let attempt = |password: &'static str| {
        let req = stack
            .client
            .get(stack.url("/api/v0/clusters"))
            .basic_auth(common::USER, Some(password));
        async move {
            let t = Instant::now();
            let status = req.send().await.unwrap().status().as_u16();
            (status, t.elapsed())
        }
    };
    // Anonymous requests are no login attempts: never slowed down.
    for _ in 0..5 {
        let resp = stack
            .client
            .get(stack.url("/api/v0/clusters"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403);
    }
    // Two free refusals, then 100, 200, 400 ms at least.
    for _ in 0..2 {
        assert_eq!(attempt("wrong").await.0, 403);
    }
    for at_least in [100, 200, 400] {
        let (status, took) = attempt("wrong").await;
        assert_eq!(status, 403);
        assert!(
            took >= Duration::from_millis(at_least),
            "{took:?} < {at_least} ms"
        );
    }
    // The right password is let in and clears the address: the next
    // refusal is not held (the one before was held 800 ms).
    assert_eq!(attempt(common::PASSWORD).await.0, 200);
    let (status, took) = attempt("wrong").await;
    assert_eq!(status, 403);
    assert!(took < Duration::from_millis(800), "still held {took:?}");
}

#[tokio::test]
async fn bad_input_gets_clear_4xx_never_5xx() {
    let s = Stack::start().await;
    s.put("/api/v0/cluster/honeynut", json!({})).await;
    let bodies: Vec<String> = vec![
        "{not json".into(),
        "\"a string\"".into(),
        "[1,2,3]".into(),
        "null".into(),
        "42".into(),
        r#"{"network": {"deep": [1]}, "old": "x", "new": 5, "version": [], "ssh_priv_key": 12, "type": null, "options": "x"}"#.into(),
        r#"{"ssh_priv_key": "dGVzdAo=", "cluster": "ünïcødé", "remote_user": "r o o t"}"#.into(),
        format!("{{\"version\": \"{}\"}}", "v".repeat(100_000)),
        "\u{0}\u{1}binary".into(),
    ];
    for (method, path) in endpoints() {
        for body in &bodies {
            let (status, reply) = s.send(method, path, Some(body)).await;
            assert!(
                status < 500,
                "{method} {path} with {:.40}: {status} {reply}",
                body
            );
            if status >= 400 {
                assert!(
                    reply["error"].is_string(),
                    "{method} {path}: error body {reply}"
                );
            }
        }
    }
    // Huge bodies: 413 with a JSON error.
    let huge = format!("{{\"version\": \"{}\"}}", "v".repeat(2 * 1024 * 1024));
    let (status, reply) = s
        .send("PUT", "/api/v0/cluster/honeynut/deploy", Some(&huge))
        .await;
    assert_eq!(status, 413);
    assert!(reply["error"].is_string());
    // Odd paths and names.
    for path in [
        "/api/v0/cluster/%C3%BCn%C3%AFc%C3%B8d%C3%A9",
        "/api/v0/host/%F0%9F%92%A9",
        "/api/v0/network/a%20b",
        "/api/v0/cluster/..%2F..%2Fetc",
        "/api/v0/host/1.2.3.4%00",
        "/api/v0/cluster/honeynut/hosts/%ZZ",
        "/api/v1/clusters",
        "/api/v0/cluster/honeynut/explode",
        "/",
        "/api/v0/host/1.2.3.4/creds/extra",
    ] {
        for method in ["GET", "PUT", "DELETE", "POST", "PATCH"] {
            let (status, reply) = s.send(method, path, Some("{}")).await;
            assert!(
                (400..500).contains(&status),
                "{method} {path}: {status} {reply}"
            );
        }
    }
    let (status, reply) = s
        .send(
            "PUT",
            "/api/v0/cluster/%C3%BCn%C3%AFc%C3%B8d%C3%A9",
            Some("{}"),
        )
        .await;
    assert_eq!((status, reply["field"].as_str()), (400, Some("name")));
    // Wrong method on a known path: 405 with a JSON body.
    let (status, reply) = s.send("POST", "/api/v0/clusters", None).await;
    assert_eq!(status, 405);
    assert!(reply["error"].as_str().unwrap().contains("POST"));
    assert_eq!(s.send("DELETE", "/api/v0/hosts", None).await.0, 405);
}

#[tokio::test]
async fn an_unreachable_storage_service_is_a_503() {
    let s = Stack::start().await;
    assert_eq!(s.get("/api/v0/clusters").await.0, 200);
    s.storage.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = s.get("/api/v0/networks").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("unavailable"),
        "{body}"
    );
    // A GET the read cache answered may be served for up to the cache time
    // (2 s by default), then it is a 503 too.
    let stopped = std::time::Instant::now();
    loop {
        let (status, body) = s.get("/api/v0/clusters").await;
        if status == 503 {
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            stopped.elapsed() < Duration::from_secs(3),
            "served from the cache beyond its time"
        );
    }
}

#[tokio::test]
async fn server_configuration_file_and_flags() {
    use commissaire_http::{ServerArgs, ServerConfig};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("commissaire.conf");
    std::fs::write(
        &path,
        json!({
            "listen-interface": "127.0.0.1", "listen-port": 8123, "bus-uri": "amqp://file",
            "authentication-plugins": [{"name": "commissaire_http.authentication.httpbasicauth", "users": {}}],
            "self-auths": ["/api/v0/secrets"]
        })
        .to_string(),
    )
    .unwrap();
    let mut args = ServerArgs {
        config_file: Some(path.clone()),
        ..Default::default()
    };
    let c = ServerConfig::resolve(&args, "amqp://default").unwrap();
    assert_eq!(
        (
            c.listen_interface.as_str(),
            c.listen_port,
            c.bus_uri.as_str()
        ),
        ("127.0.0.1", 8123, "amqp://file")
    );
    assert_eq!(c.plugins.len(), 1);
    assert_eq!(c.self_auths, ["/api/v0/secrets"]);
    args.listen_port = Some(9000);
    args.bus_uri = Some("amqp://flag".into());
    args.authentication_plugins = vec![
        "httpbasicauth:filepath=/x".into(),
        "keystonetokenauth:url=https://example.com".into(),
    ];
    let c = ServerConfig::resolve(&args, "amqp://default").unwrap();
    assert_eq!(
        (c.listen_port, c.bus_uri.as_str(), c.plugins.len()),
        (9000, "amqp://flag", 2)
    );
    // --no-config-file ignores the default file; a missing explicit file is an error.
    let c = ServerConfig::resolve(
        &ServerArgs {
            no_config_file: true,
            ..Default::default()
        },
        "amqp://default",
    )
    .unwrap();
    assert_eq!(
        (c.listen_interface.as_str(), c.listen_port),
        ("0.0.0.0", 8000)
    );
    let missing = ServerArgs {
        config_file: Some(dir.path().join("missing.conf")),
        ..Default::default()
    };
    assert!(ServerConfig::resolve(&missing, "x").is_err());
    // A typo or a wrong type is an error naming the member, not a default.
    for (bad, member) in [
        (r#"{"listen_prot": 80}"#, "listen-prot"),
        (r#"{"request-timeout": "30"}"#, "request-timeout"),
        (r#"{"debug": "yes"}"#, "debug"),
        (r#"{"logging": {"format": "xml"}}"#, "logging"),
    ] {
        std::fs::write(&path, bad).unwrap();
        let e = ServerConfig::resolve(
            &ServerArgs {
                config_file: Some(path.clone()),
                ..Default::default()
            },
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(member), "{bad}: {e}");
    }
    std::fs::write(&path, r#"{"listen-port": "eighty"}"#).unwrap();
    assert!(
        ServerConfig::resolve(
            &ServerArgs {
                config_file: Some(path),
                ..Default::default()
            },
            "x"
        )
        .is_err()
    );
}

#[tokio::test]
async fn self_auth_paths_bypass_authentication() {
    let mut options = StackOptions::default();
    options.args.self_auths = vec!["/api/v0/networks".into()];
    let s = Stack::start_with(options).await;
    let resp = s
        .client
        .get(s.url("/api/v0/networks"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = s
        .client
        .get(s.url("/api/v0/clusters"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}
