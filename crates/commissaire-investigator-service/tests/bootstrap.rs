//! Hosts created through the REST API are investigated and bootstrapped over
//! real SSH with the real `ansible-playbook` (every command and path of the
//! bootstrap pointed into a temporary directory).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use commissaire_bus::Bus;
use commissaire_http::{ServerArgs, ServerConfig};
use commissaire_investigator_service::{Investigator, InvestigatorConfig};
use commissaire_storage::StorageRouter;
use commissaire_testkit::{self as testkit, TestSshd};
use serde_json::{Map, Value, json};

struct Stack {
    base: String,
    bus: Bus,
    work: tempfile::TempDir,
}

/// Bootstrap variables that keep every command and file inside `dir`.
fn test_vars(dir: &std::path::Path) -> Map<String, Value> {
    let d = dir.display();
    let mut vars = Map::new();
    for (name, value) in [
        (
            "commissaire_enable_pkg_repos",
            format!("touch {d}/enable_pkg_repos"),
        ),
        (
            "commissaire_install_libselinux_python",
            format!("touch {d}/install_libselinux_python"),
        ),
        (
            "commissaire_install_flannel",
            format!("touch {d}/install_flannel"),
        ),
        (
            "commissaire_install_docker",
            format!("touch {d}/install_docker"),
        ),
        (
            "commissaire_install_kube",
            format!("touch {d}/install_kube"),
        ),
        (
            "commissaire_service_enable_command",
            format!("{d}/record enable"),
        ),
        (
            "commissaire_service_restart_command",
            format!("{d}/record restart"),
        ),
        ("commissaire_flanneld_config", format!("{d}/flanneld")),
        ("commissaire_docker_config", format!("{d}/docker")),
        (
            "commissaire_kubernetes_config",
            format!("{d}/kubernetes_config"),
        ),
        ("commissaire_kubeconfig_config", format!("{d}/kubeconfig")),
        ("commissaire_kubelet_config", format!("{d}/kubelet")),
    ] {
        vars.insert(name.into(), json!(value));
    }
    // `record enable flanneld` appends "enable flanneld" to a log.
    let script = dir.join("record");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {d}/services.log\n"),
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&script).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    vars
}

async fn start() -> Stack {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let work = tempfile::tempdir().unwrap();
    let amqp = testkit::fresh_vhost();
    let bus = commissaire_bus::connect(&amqp, "commissaire", Duration::from_secs(10))
        .await
        .unwrap();
    let router = StorageRouter::from_config(Some(&json!({
        "type": "etcd", "server_url": format!("http://{}", testkit::etcd_endpoint()), "prefix": testkit::etcd_prefix()
    })))
    .await
    .unwrap();
    std::mem::forget(
        commissaire_storage::start(router, bus.clone(), 4)
            .await
            .unwrap(),
    );
    let config = InvestigatorConfig::from_config(
        json!({
            "playbook_dir": concat!(env!("CARGO_MANIFEST_DIR"), "/../../playbooks"),
            "ansible_vars": test_vars(work.path()),
            "etcd_server_url": "http://192.0.2.1:2379",
            "facts_timeout": 30, "bootstrap_timeout": 180,
        })
        .as_object()
        .unwrap(),
    )
    .unwrap();
    let investigator = Arc::new(Investigator::new(bus.clone(), config));
    std::mem::forget(
        commissaire_service::run(investigator, bus.clone(), 2)
            .await
            .unwrap(),
    );
    let args = ServerArgs {
        no_config_file: true,
        ..Default::default()
    };
    let server_config = ServerConfig::resolve(&args, &amqp).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server_bus = bus.clone();
    tokio::spawn(
        async move { commissaire_http::serve_on(listener, server_config, server_bus).await },
    );
    let stack = Stack { base, bus, work };
    for _ in 0..100 {
        if stack.get("/api/v0/network/default").await.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack
}

impl Stack {
    async fn send(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, Value::Null).await
    }

    /// Waits until the host reaches a final status; returns the host record.
    async fn settled(&self, address: &str) -> Value {
        for _ in 0..600 {
            let (_, host) = self.get(&format!("/api/v0/host/{address}")).await;
            if matches!(
                host["status"].as_str(),
                Some("disassociated" | "active" | "failed")
            ) {
                return host;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("host {address} never settled");
    }
}

fn key_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(testkit::ssh_key()).unwrap())
}

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
