//! A stack for host tests: RabbitMQ vhost, storage on etcd, the REST server,
//! the investigator and the container manager service.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use commissaire_bus::Bus;
use commissaire_http::{ServerArgs, ServerConfig};
use commissaire_investigator_service::{Investigator, InvestigatorConfig};
use commissaire_storage::StorageRouter;
use commissaire_testkit as testkit;
use serde_json::{Map, Value, json};

pub struct Stack {
    pub base: String,
    pub bus: Bus,
    pub work: tempfile::TempDir,
}

/// Bootstrap variables that keep every command and file inside `dir`.
pub fn test_vars(dir: &std::path::Path) -> Map<String, Value> {
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

pub async fn start() -> Stack {
    start_with(json!({})).await
}

pub async fn start_with(extra: Value) -> Stack {
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
    let mut config = json!({
        "playbook_dir": concat!(env!("CARGO_MANIFEST_DIR"), "/../../playbooks"),
        "ansible_vars": test_vars(work.path()),
        "etcd_server_url": "http://192.0.2.1:2379",
        "facts_timeout": 30, "bootstrap_timeout": 180,
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    let config = InvestigatorConfig::from_config(config.as_object().unwrap()).unwrap();
    let containermgr =
        Arc::new(commissaire_containermgr_service::ContainerManagerService::new(bus.clone()));
    std::mem::forget(
        commissaire_service::run(containermgr, bus.clone(), 2)
            .await
            .unwrap(),
    );
    let access = commissaire_host_access::HostAccess::start(
        commissaire_storage_client::StorageClient::new(bus.clone()),
        &config.ssh,
    )
    .unwrap();
    let investigator = Arc::new(Investigator::new(bus.clone(), config, access));
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
    pub async fn send(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, Value::Null).await
    }

    /// Waits until the host reaches a final status; returns the host record.
    pub async fn settled(&self, address: &str) -> Value {
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

pub fn key_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(testkit::ssh_key()).unwrap())
}
