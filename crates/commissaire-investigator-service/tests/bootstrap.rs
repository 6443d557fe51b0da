//! Hosts created through the REST API are investigated and bootstrapped over
//! real SSH with the real `ansible-playbook` (every command and path of the
//! bootstrap pointed into a temporary directory).

mod common;

use std::time::Duration;

use base64::Engine;

use commissaire_testkit::TestSshd;
use commissaire_testkit::kube_api::RealKube;
use common::{Stack, key_b64, start, start_with};
use serde_json::{Value, json};

#[tokio::test]
async fn a_new_host_is_investigated_and_bootstrapped() {
    let sshd = TestSshd::start("127.0.0.31");
    let s = start().await;
    let updates = s
        .bus
        .subscribe(&["notify.storage.Host.*".into()])
        .await
        .unwrap();
    assert_eq!(s.send("PUT", "/api/v0/cluster/c1", json!({})).await.0, 201);
    let (status, host) = s
        .send(
            "PUT",
            &format!("/api/v0/host/{}", sshd.address),
            json!({"ssh_priv_key": key_b64(), "cluster": "c1"}),
        )
        .await;
    assert_eq!(status, 201, "{host}");
    let host = s.settled(&sshd.address).await;
    assert_eq!(host["status"], "disassociated", "{host}");
    // Real facts of this (Debian) machine.
    assert_eq!(host["os"], "debian");
    assert!(host["cpus"].as_i64().unwrap() >= 1);
    assert!(host["memory"].as_i64().unwrap() > 0);
    assert!(host["space"].as_i64().unwrap() > 0);
    assert!(commissaire_models::parse_iso(host["last_check"].as_str().unwrap()).is_some());
    // The status went investigating -> bootstrapping -> disassociated.
    let mut seen = Vec::new();
    while let Ok(Ok(msg)) = tokio::time::timeout(Duration::from_millis(500), updates.recv()).await {
        let body: Value = serde_json::from_slice(&msg.body).unwrap();
        let status = body["model"]["status"].as_str().unwrap().to_string();
        if seen.last() != Some(&status) {
            seen.push(status);
        }
    }
    assert_eq!(seen, ["investigating", "bootstrapping", "disassociated"]);
    // The templated files landed where the variables point.
    let flannel = std::fs::read_to_string(s.work.path().join("flanneld")).unwrap();
    assert!(flannel.contains("http://192.0.2.1:2379"), "{flannel}");
    assert!(flannel.contains("/atomic.io/network/default"), "{flannel}");
    assert!(s.work.path().join("docker").exists());
    assert!(s.work.path().join("install_flannel").exists());
    assert!(s.work.path().join("install_docker").exists());
    let services = std::fs::read_to_string(s.work.path().join("services.log")).unwrap();
    assert!(
        services.contains("flanneld") && services.contains("docker"),
        "{services}"
    );
    // It is watched from now on.
    let record = s
        .bus
        .request(
            "storage.get",
            json!({"model_type_name": "WatcherRecord", "model_json_data": {"address": sshd.address}}),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(record["address"], sshd.address.as_str());
}

#[tokio::test]
async fn a_host_on_a_flannel_server_network() {
    let sshd = TestSshd::start("127.0.0.32");
    let s = start().await;
    let net = json!({"type": "flannel_server", "options": {"address": "192.0.2.7:8080"}});
    assert_eq!(s.send("PUT", "/api/v0/network/fs", net).await.0, 201);
    assert_eq!(
        s.send("PUT", "/api/v0/cluster/c2", json!({"network": "fs"}))
            .await
            .0,
        201
    );
    s.send(
        "PUT",
        &format!("/api/v0/host/{}", sshd.address),
        json!({"ssh_priv_key": key_b64(), "cluster": "c2"}),
    )
    .await;
    let host = s.settled(&sshd.address).await;
    assert_eq!(host["status"], "disassociated", "{host}");
    let flannel = std::fs::read_to_string(s.work.path().join("flanneld")).unwrap();
    assert!(flannel.contains("192.0.2.7:8080"), "{flannel}");
}

#[tokio::test]
async fn a_bad_key_ends_failed_with_the_reason() {
    let sshd = TestSshd::start("127.0.0.33");
    let s = start().await;
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other");
    assert!(
        std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&other)
            .status()
            .unwrap()
            .success()
    );
    let key = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&other).unwrap());
    s.send(
        "PUT",
        &format!("/api/v0/host/{}", sshd.address),
        json!({"ssh_priv_key": key}),
    )
    .await;
    let host = s.settled(&sshd.address).await;
    assert_eq!(host["status"], "failed");
    let reason = host["reason"].as_str().unwrap();
    assert!(reason.starts_with("investigation failed"), "{reason}");
    let (_, status) = s
        .get(&format!("/api/v0/host/{}/status", sshd.address))
        .await;
    assert_eq!(status["host"]["status"], "failed");
    assert!(
        status["host"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{status}"
    );
    // A host with no sshd at all fails too.
    s.send(
        "PUT",
        "/api/v0/host/127.0.0.39",
        json!({"ssh_priv_key": key_b64()}),
    )
    .await;
    assert_eq!(s.settled("127.0.0.39").await["status"], "failed");
}

#[tokio::test]
async fn a_host_in_a_managed_cluster_becomes_an_active_node() {
    let sshd = TestSshd::start("127.0.0.34");
    let kube = RealKube::connect(&[&sshd.address]).await;
    let s = start().await;
    managed_cluster(&s, &kube).await;
    s.send(
        "PUT",
        &format!("/api/v0/host/{}", sshd.address),
        json!({"ssh_priv_key": key_b64(), "cluster": "managed"}),
    )
    .await;
    // The investigator registers the node, then waits for it to be Ready.
    registered_not_ready(&s, &kube, &sshd.address, "bootstrapping").await;
    // Its kubelet says it is Ready.
    kube.set_ready(&sshd.address, true).await;
    let host = s.settled(&sshd.address).await;
    assert_eq!(host["status"], "active", "{host}");
    // The kubernetes configuration was templated with the manager's URL and token.
    let kubeconfig = std::fs::read_to_string(s.work.path().join("kubeconfig")).unwrap();
    assert!(
        kubeconfig.contains(&kube.url) && kubeconfig.contains(&kube.token),
        "{kubeconfig}"
    );
    // Host status: the manager's section.
    let (status, body) = s
        .get(&format!("/api/v0/host/{}/status", sshd.address))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["type"], "kubernetes");
    assert_eq!(body["host"]["status"], "active");
    assert_eq!(body["container_manager"]["conditions"]["Ready"], "True");
    let cluster = s.get("/api/v0/cluster/managed").await.1;
    assert_eq!(
        cluster["hosts"],
        json!({"total": 1, "available": 1, "unavailable": 0})
    );
    // NotReady shows in the status.
    kube.set_ready(&sshd.address, false).await;
    let body = s
        .get(&format!("/api/v0/host/{}/status", sshd.address))
        .await
        .1;
    assert_eq!(body["container_manager"]["ready"], false);
    // Deleting the host removes its node.
    assert_eq!(
        s.send(
            "DELETE",
            &format!("/api/v0/host/{}", sshd.address),
            Value::Null
        )
        .await
        .0,
        200
    );
    assert!(
        kube.node(&sshd.address).await.is_none(),
        "its node was removed"
    );
    // A manager in use cannot be deleted; once unused it can.
    assert_eq!(
        s.send("DELETE", "/api/v0/containermanager/k8s", Value::Null)
            .await
            .0,
        409
    );
}

#[tokio::test]
async fn a_node_that_never_gets_ready_fails_the_host() {
    let sshd = TestSshd::start("127.0.0.35");
    let kube = RealKube::connect(&[&sshd.address]).await;
    let s = start_with(json!({"node_ready_timeout": 3})).await;
    managed_cluster(&s, &kube).await;
    s.send(
        "PUT",
        &format!("/api/v0/host/{}", sshd.address),
        json!({"ssh_priv_key": key_b64(), "cluster": "managed"}),
    )
    .await;
    let host = s.settled(&sshd.address).await;
    assert_eq!(host["status"], "failed");
    assert!(
        host["reason"]
            .as_str()
            .unwrap()
            .contains("did not become ready"),
        "{host}"
    );
}

#[tokio::test]
async fn a_wrong_manager_token_fails_the_host_with_the_reason() {
    let sshd = TestSshd::start("127.0.0.36");
    let kube = RealKube::connect(&[&sshd.address]).await;
    let s = start().await;
    let mut options = kube.options();
    options["token"] = json!("stale");
    let cm = json!({"type": "openshift", "options": options});
    s.send("PUT", "/api/v0/containermanager/os", cm).await;
    s.send(
        "PUT",
        "/api/v0/cluster/managed",
        json!({"container_manager": "os"}),
    )
    .await;
    s.send(
        "PUT",
        &format!("/api/v0/host/{}", sshd.address),
        json!({"ssh_priv_key": key_b64(), "cluster": "managed"}),
    )
    .await;
    let host = s.settled(&sshd.address).await;
    assert_eq!(host["status"], "failed");
    assert!(host["reason"].as_str().unwrap().contains("401"), "{host}");
}

#[tokio::test]
async fn a_bootstrapped_host_added_to_a_managed_cluster_joins_like_a_new_one() {
    let sshd = TestSshd::start("127.0.0.42");
    let kube = RealKube::connect(&[&sshd.address]).await;
    let s = start().await;
    // Bootstrapped outside any cluster: disassociated.
    s.send(
        "PUT",
        &format!("/api/v0/host/{}", sshd.address),
        json!({"ssh_priv_key": key_b64()}),
    )
    .await;
    assert_eq!(s.settled(&sshd.address).await["status"], "disassociated");
    managed_cluster(&s, &kube).await;
    // Joining answers at once; the investigator registers the node and the
    // host is active only once the node is Ready, as after a bootstrap.
    let (status, body) = s
        .send(
            "PUT",
            &format!("/api/v0/cluster/managed/hosts/{}", sshd.address),
            Value::Null,
        )
        .await;
    assert_eq!((status, body), (200, json!([sshd.address])));
    registered_not_ready(&s, &kube, &sshd.address, "disassociated").await;
    kube.set_ready(&sshd.address, true).await;
    for _ in 0..150 {
        if s.get(&format!("/api/v0/host/{}", sshd.address)).await.1["status"] == "active" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let host = s.get(&format!("/api/v0/host/{}", sshd.address)).await.1;
    assert_eq!(host["status"], "active", "{host}");
    assert!(host.get("reason").is_none_or(|r| r == ""), "{host}");
}

/// Waits until `kube` has the node of `address`, then checks that the host
/// stays `status` (not `active`) while the node is not Ready (no kubelet
/// runs: the node has no Ready condition until the test sets one).
async fn registered_not_ready(s: &Stack, kube: &RealKube, address: &str, status: &str) {
    for _ in 0..300 {
        if kube.node(address).await.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        kube.node(address).await.is_some(),
        "the node was registered"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        s.get(&format!("/api/v0/host/{address}")).await.1["status"],
        status,
        "not active before the node is Ready"
    );
}

/// The container manager `k8s` (the test bed's Kubernetes API server,
/// as its admin) and the cluster `managed` using it.
async fn managed_cluster(s: &Stack, kube: &RealKube) {
    let cm = json!({"type": "kubernetes", "options": kube.options()});
    assert_eq!(
        s.send("PUT", "/api/v0/containermanager/k8s", cm).await.0,
        201
    );
    assert_eq!(
        s.send(
            "PUT",
            "/api/v0/cluster/managed",
            json!({"container_manager": "k8s"})
        )
        .await
        .0,
        201
    );
}
