//! Runs `features/hosts/*.feature` with cucumber-rs against a real stack
//! (REST server, storage on etcd, investigator, container manager service,
//! RabbitMQ, sshd hosts, ansible-playbook, the test bed's real Kubernetes
//! API server with a kubelet stand-in, since no kubelet runs here).

mod common;

use commissaire_testkit::TestSshd;
use commissaire_testkit::kube_api::{Kubelet, RealKube};
use common::{Stack, key_b64, start};
use cucumber::{World, given, then, when};
use serde_json::{Value, json};

#[derive(World, Default)]
struct HostWorld {
    stack: Option<Stack>,
    kube: Option<(RealKube, Kubelet)>,
    sshds: Vec<TestSshd>,
}

impl std::fmt::Debug for HostWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostWorld").finish_non_exhaustive()
    }
}

impl HostWorld {
    fn stack(&self) -> &Stack {
        self.stack.as_ref().expect("a running stack")
    }
}

#[given("a running commissaire stack")]
async fn running(w: &mut HostWorld) {
    w.stack = Some(start().await);
}

#[given("a Kubernetes API server whose kubelets mark nodes ready")]
async fn kube(w: &mut HostWorld) {
    let kube = RealKube::connect(&[]).await;
    let kubelet = kube.kubelet(&[]);
    w.kube = Some((kube, kubelet));
}

#[given(expr = "a kubernetes container manager named {string}")]
async fn container_manager(w: &mut HostWorld, name: String) {
    let options = w.kube.as_ref().expect("a Kubernetes API").0.options();
    let cm = json!({"type": "kubernetes", "options": options});
    assert_eq!(
        w.stack()
            .send("PUT", &format!("/api/v0/containermanager/{name}"), cm)
            .await
            .0,
        201
    );
}

#[given(expr = "a cluster named {string}")]
async fn cluster(w: &mut HostWorld, name: String) {
    assert_eq!(
        w.stack()
            .send("PUT", &format!("/api/v0/cluster/{name}"), json!({}))
            .await
            .0,
        201
    );
}

#[given(expr = "a cluster named {string} using container manager {string}")]
async fn managed_cluster(w: &mut HostWorld, name: String, cm: String) {
    let body = json!({"container_manager": cm});
    assert_eq!(
        w.stack()
            .send("PUT", &format!("/api/v0/cluster/{name}"), body)
            .await
            .0,
        201
    );
}

#[when(expr = "we add the ssh host {string} to cluster {string}")]
async fn add_host(w: &mut HostWorld, address: String, cluster: String) {
    w.sshds.push(TestSshd::start(&address));
    if let Some((kube, kubelet)) = &w.kube {
        // Its node: none left by an earlier run, and a kubelet for it.
        kube.delete_node(&address).await;
        kubelet.state.lock().unwrap().nodes.insert(address.clone());
    }
    let body = json!({"ssh_priv_key": key_b64(), "cluster": cluster});
    let (status, reply) = w
        .stack()
        .send("PUT", &format!("/api/v0/host/{address}"), body)
        .await;
    assert_eq!(status, 201, "{reply}");
}

#[then(expr = "the host {string} becomes {string}")]
async fn becomes(w: &mut HostWorld, address: String, status: String) {
    let host = w.stack().settled(&address).await;
    assert_eq!(host["status"], json!(status), "{host}");
}

#[then(expr = "the host {string} has its facts filled in")]
async fn facts(w: &mut HostWorld, address: String) {
    let (_, host) = w.stack().get(&format!("/api/v0/host/{address}")).await;
    assert!(!host["os"].as_str().unwrap_or("").is_empty(), "{host}");
    for member in ["cpus", "memory", "space"] {
        assert!(host[member].as_i64().unwrap_or(0) > 0, "{member}: {host}");
    }
}

#[then(expr = "the status of host {string} has type {string}")]
async fn status_type(w: &mut HostWorld, address: String, kind: String) {
    let (status, body) = w
        .stack()
        .get(&format!("/api/v0/host/{address}/status"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["type"], json!(kind), "{body}");
}

#[then(expr = "the status of host {string} shows the node Ready")]
async fn node_ready(w: &mut HostWorld, address: String) {
    let (_, body) = w
        .stack()
        .get(&format!("/api/v0/host/{address}/status"))
        .await;
    assert_eq!(
        body["container_manager"]["conditions"]["Ready"], "True",
        "{body}"
    );
}

#[then(expr = "the cluster {string} has {int} available host")]
async fn available(w: &mut HostWorld, cluster: String, count: u64) {
    let (_, body) = w.stack().get(&format!("/api/v0/cluster/{cluster}")).await;
    assert_eq!(body["hosts"]["available"], json!(count), "{body}");
    let _: Value = body;
}

#[tokio::main]
async fn main() {
    let features =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../features/hosts");
    HostWorld::cucumber()
        .with_default_cli()
        .max_concurrent_scenarios(2)
        .fail_on_skipped()
        .run_and_exit(features)
        .await;
}
