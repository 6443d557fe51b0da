//! The container manager service over a real bus and storage, against the
//! test bed's real Kubernetes API server (kube-apiserver v1.20.2: node
//! registration and status, cordon, drain by eviction with disruption
//! budgets, removal; bearer token, client certificate and RBAC). No
//! kubelet or controller-manager runs here: the test does their part
//! through the API (`testkit::kube_api`). The stand-in of
//! `testkit::kube` serves only what this server cannot: policy/v1
//! Evictions (Kubernetes 1.21 and later).

use std::sync::Arc;
use std::time::Duration;

use commissaire_bus::{Bus, BusError, codes};
use commissaire_containermgr_service::ContainerManagerService;
use commissaire_storage::StorageRouter;
use commissaire_testkit::{
    self as testkit,
    kube::{FakePod, StandInKube},
    kube_api::RealKube,
};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(20);

async fn stack() -> Bus {
    let amqp = testkit::fresh_vhost();
    let bus = commissaire_bus::connect(&amqp, "commissaire", T)
        .await
        .unwrap();
    let dir = Box::leak(Box::new(tempfile_dir()));
    let router =
        StorageRouter::from_config(Some(&json!({"type": "redb", "path": dir.join("s.redb")})))
            .await
            .unwrap();
    std::mem::forget(
        commissaire_storage::start(router, bus.clone(), 2)
            .await
            .unwrap(),
    );
    let service = Arc::new(ContainerManagerService::new(bus.clone()));
    std::mem::forget(
        commissaire_service::run(service, bus.clone(), 2)
            .await
            .unwrap(),
    );
    bus
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "cm-test-{}",
        std::process::id() as u128 * 1000 + rand_suffix()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1000
}

async fn save_cm(bus: &Bus, name: &str, kind: &str, options: Value) {
    bus.request(
        "storage.save",
        json!({"model_type_name": "ContainerManagerConfig", "model_json_data": {"name": name, "type": kind, "options": options}}),
        T,
    )
    .await
    .unwrap();
}

async fn call(bus: &Bus, method: &str, params: Value) -> Result<Value, BusError> {
    bus.request(&format!("container.{method}"), params, T).await
}

fn cm_error(e: BusError) -> (i64, Value, String) {
    let rpc = e.rpc().expect("a JSON-RPC error").clone();
    (
        rpc.code,
        rpc.data.unwrap_or(Value::Null)["status"].clone(),
        rpc.message,
    )
}

#[tokio::test]
async fn registration_status_cordon_drain_and_removal() {
    let node = "10.20.0.1";
    let kube = RealKube::connect(&[node, "10.20.0.9"]).await;
    let bus = stack().await;
    save_cm(&bus, "k8s", "kubernetes", kube.options()).await;
    assert_eq!(
        call(&bus, "node_registered", json!(["k8s", node]))
            .await
            .unwrap(),
        json!({"registered": false, "ready": false})
    );
    assert_eq!(
        call(&bus, "register_node", json!(["k8s", node]))
            .await
            .unwrap(),
        json!({"registered": true})
    );
    // Registering again is fine (409 from the API is "already there").
    call(&bus, "register_node", json!(["k8s", node]))
        .await
        .unwrap();
    assert!(
        kube.node(node).await.is_some(),
        "the node exists in the API"
    );
    assert_eq!(
        call(&bus, "node_registered", json!(["k8s", node]))
            .await
            .unwrap(),
        json!({"registered": true, "ready": false})
    );
    // Its kubelet says it is Ready.
    kube.set_ready(node, true).await;
    assert_eq!(
        call(&bus, "node_registered", json!(["k8s", node]))
            .await
            .unwrap()["ready"],
        true
    );
    let status = call(&bus, "get_node_status", json!(["k8s", node]))
        .await
        .unwrap();
    assert_eq!(status["conditions"]["Ready"], "True", "{status}");
    let ready = status["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(ready["reason"], "KubeletReady", "{status}");
    // Cordon, drain (the DaemonSet pod stays; the pod elsewhere is not
    // touched), uncordon. The kubelet stand-in finishes the evicted pods.
    let _kubelet = kube.kubelet(&[node]);
    for (name, daemonset) in [("web-1", false), ("web-2", false), ("fluentd", true)] {
        kube.create_pod(name, node, json!({"app": name}), daemonset)
            .await;
    }
    kube.create_pod("elsewhere", "10.20.0.9", json!({"app": "other"}), false)
        .await;
    call(&bus, "cordon", json!(["k8s", node])).await.unwrap();
    assert!(kube.unschedulable(node).await);
    assert_eq!(
        call(&bus, "get_node_status", json!(["k8s", node]))
            .await
            .unwrap()["unschedulable"],
        true
    );
    assert_eq!(
        call(&bus, "list_pods", json!(["k8s", node])).await.unwrap()["pods"],
        json!([
            format!("{}/web-1", kube.namespace),
            format!("{}/web-2", kube.namespace)
        ])
    );
    assert_eq!(
        call(&bus, "drain", json!(["k8s", node, 30])).await.unwrap(),
        json!({"evicted": 2})
    );
    assert_eq!(kube.pods_on(node).await, ["fluentd"]);
    assert_eq!(kube.pods_on("10.20.0.9").await, ["elsewhere"]);
    call(&bus, "uncordon", json!(["k8s", node])).await.unwrap();
    assert!(!kube.unschedulable(node).await);
    // Removal; then the status is a clear -20001 with the API's 404.
    call(&bus, "remove_node", json!(["k8s", node]))
        .await
        .unwrap();
    assert!(kube.node(node).await.is_none());
    call(&bus, "remove_node", json!(["k8s", node]))
        .await
        .unwrap();
    let (code, status, _) = cm_error(
        call(&bus, "get_node_status", json!(["k8s", node]))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, status), (codes::CONTAINER_MANAGER_ERROR, json!(404)));
}

#[tokio::test]
async fn a_drain_blocked_by_a_disruption_budget_fails_naming_it_and_succeeds_once_it_allows() {
    let node = "10.20.1.1";
    let kube = RealKube::connect(&[node]).await;
    let bus = stack().await;
    save_cm(&bus, "k8s", "kubernetes", kube.options()).await;
    call(&bus, "register_node", json!(["k8s", node]))
        .await
        .unwrap();
    let _kubelet = kube.kubelet(&[node]);
    kube.create_pod("web-1", node, json!({"app": "web"}), false)
        .await;
    kube.create_pdb("web-budget", json!({"app": "web"}), 0)
        .await;
    call(&bus, "cordon", json!(["k8s", node])).await.unwrap();
    // The budget allows no disruption: the API answers 429, the drain
    // asks again until its time limit, then fails naming the budget.
    let started = std::time::Instant::now();
    let (code, status, message) = cm_error(
        call(&bus, "drain", json!(["k8s", node, 3]))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, status),
        (codes::CONTAINER_MANAGER_ERROR, json!(429)),
        "{message}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "retried until the time limit"
    );
    assert!(
        message.contains(&format!(
            "pod {}/web-1 could not be evicted within 3 s",
            kube.namespace
        )) && message.contains("The disruption budget web-budget needs 1 healthy pods"),
        "{message}"
    );
    assert_eq!(kube.pods_on(node).await, ["web-1"], "nothing was evicted");
    // The budget allows one disruption now: the drain goes through.
    kube.set_pdb_allowed("web-budget", 1).await;
    assert_eq!(
        call(&bus, "drain", json!(["k8s", node, 30])).await.unwrap(),
        json!({"evicted": 1})
    );
    assert!(kube.pods_on(node).await.is_empty());
}

#[tokio::test]
async fn a_client_certificate_and_the_openshift_flavour_work_and_a_user_rbac_denies_gets_403() {
    let node = "10.20.2.1";
    let kube = RealKube::connect(&[node]).await;
    let bus = stack().await;
    // A client certificate instead of a token (the server checks it
    // against its client CA; the user is in system:masters).
    save_cm(
        &bus,
        "cert",
        "kubernetes",
        json!({"server_url": kube.url, "certificate_ca_path": kube.ca,
               "certificate_path": kube.client_cert, "certificate_key_path": kube.client_key}),
    )
    .await;
    assert_eq!(
        call(&bus, "register_node", json!(["cert", node]))
            .await
            .unwrap(),
        json!({"registered": true})
    );
    // The openshift type: its node calls are plain Kubernetes ones.
    save_cm(&bus, "os", "openshift", kube.options()).await;
    call(&bus, "cordon", json!(["os", node])).await.unwrap();
    assert!(kube.unschedulable(node).await);
    assert_eq!(
        call(&bus, "get_node_status", json!(["os", node]))
            .await
            .unwrap()["unschedulable"],
        true
    );
    call(&bus, "uncordon", json!(["os", node])).await.unwrap();
    // A user RBAC lets read nodes and nothing more: reads work, changes
    // are the API's 403, named.
    let mut options = kube.options();
    options["token"] = json!(kube.restricted_token);
    save_cm(&bus, "viewer", "kubernetes", options).await;
    assert_eq!(
        call(&bus, "node_registered", json!(["viewer", node]))
            .await
            .unwrap()["registered"],
        true
    );
    for method in ["cordon", "remove_node"] {
        let (code, status, message) = cm_error(
            call(&bus, method, json!(["viewer", node]))
                .await
                .unwrap_err(),
        );
        assert_eq!(
            (code, status),
            (codes::CONTAINER_MANAGER_ERROR, json!(403)),
            "{message}"
        );
        assert!(
            message.contains("403") && message.contains("\"viewer\""),
            "{message}"
        );
    }
    assert!(
        !kube.unschedulable(node).await,
        "the denied cordon changed nothing"
    );
    // A certificate the server does not trust for the CA: a clear error.
    let mut untrusting = kube.options();
    untrusting["certificate_ca_path"] = json!(kube.client_cert);
    save_cm(&bus, "untrusting", "kubernetes", untrusting).await;
    let (code, _, message) = cm_error(
        call(&bus, "node_registered", json!(["untrusting", node]))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, codes::CONTAINER_MANAGER_ERROR, "{message}");
    assert!(message.contains("cannot reach"), "{message}");
}

#[tokio::test]
async fn evictions_use_policy_v1_where_it_is_served_and_v1beta1_where_it_is_not() {
    // Kubernetes 1.21 and later serve policy/v1; no such server can be
    // built here, so the stand-in plays one (and one that serves only
    // v1beta1, as the real 1.20 server of the other tests does).
    for (versions, expected) in [
        (vec![], "policy/v1"),
        (vec!["v1beta1".to_string()], "policy/v1beta1"),
    ] {
        let kube = StandInKube::start("good-token").await;
        let bus = stack().await;
        save_cm(
            &bus,
            "k8s",
            "kubernetes",
            json!({"server_url": kube.url, "token": "good-token"}),
        )
        .await;
        let node = "10.20.3.1";
        call(&bus, "register_node", json!(["k8s", node]))
            .await
            .unwrap();
        {
            let mut s = kube.state.lock().unwrap();
            s.policy_versions = versions;
            s.pods.push(FakePod {
                namespace: "default".into(),
                name: "web-1".into(),
                node: node.into(),
                daemonset: false,
            });
        }
        assert_eq!(
            call(&bus, "drain", json!(["k8s", node, 10])).await.unwrap(),
            json!({"evicted": 1})
        );
        let requests = kube.state.lock().unwrap().requests.clone();
        assert!(
            requests.contains(&format!(
                "POST /api/v1/namespaces/default/pods/web-1/eviction {expected}"
            )),
            "{requests:#?}"
        );
    }
}

#[tokio::test]
async fn wrong_token_unreachable_api_and_unknown_manager_are_clear_errors() {
    let kube = RealKube::connect(&[]).await;
    let bus = stack().await;
    let mut options = kube.options();
    options["token"] = json!("wrong");
    save_cm(&bus, "badtoken", "openshift", options).await;
    let (code, status, message) = cm_error(
        call(&bus, "register_node", json!(["badtoken", "10.20.0.2"]))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, status), (codes::CONTAINER_MANAGER_ERROR, json!(401)));
    assert!(message.contains("401"), "{message}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    save_cm(
        &bus,
        "down",
        "kubernetes",
        json!({"server_url": format!("http://{closed}"), "token": "x"}),
    )
    .await;
    let (code, status, message) = cm_error(
        call(&bus, "register_node", json!(["down", "10.20.0.2"]))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, status),
        (codes::CONTAINER_MANAGER_ERROR, Value::Null)
    );
    assert!(message.contains("cannot reach"), "{message}");
    let (code, _, message) = cm_error(
        call(&bus, "register_node", json!(["nobody", "10.20.0.2"]))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, codes::CONTAINER_MANAGER_ERROR);
    assert!(message.contains("nobody"), "{message}");
    save_cm(&bus, "nourl", "kubernetes", json!({})).await;
    let (_, _, message) = cm_error(
        call(&bus, "register_node", json!(["nourl", "10.20.0.2"]))
            .await
            .unwrap_err(),
    );
    assert!(message.contains("server_url"), "{message}");
    let bad = call(&bus, "register_node", json!({"oops": 1}))
        .await
        .unwrap_err();
    assert_eq!(bad.rpc().unwrap().code, codes::INVALID_PARAMS);
}

#[tokio::test]
async fn the_trivial_manager_always_succeeds() {
    let bus = stack().await;
    save_cm(&bus, "t", "trivial", json!({})).await;
    call(&bus, "register_node", json!(["t", "10.20.0.3"]))
        .await
        .unwrap();
    assert_eq!(
        call(&bus, "node_registered", json!(["t", "10.20.0.3"]))
            .await
            .unwrap(),
        json!({"registered": true, "ready": true})
    );
    call(&bus, "cordon", json!(["t", "10.20.0.3"]))
        .await
        .unwrap();
    assert_eq!(
        call(&bus, "drain", json!(["t", "10.20.0.3"]))
            .await
            .unwrap(),
        json!({"evicted": 0})
    );
    call(&bus, "remove_node", json!(["t", "10.20.0.3"]))
        .await
        .unwrap();
    assert_eq!(
        call(&bus, "node_registered", json!(["t", "10.20.0.3"]))
            .await
            .unwrap()["registered"],
        false
    );
}
