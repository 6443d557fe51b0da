//! The container manager service over a real bus and storage, against the
//! stand-in Kubernetes API (the real node/pod/eviction paths).

use std::sync::Arc;
use std::time::Duration;

use commissaire_bus::{Bus, BusError, codes};
use commissaire_containermgr_service::ContainerManagerService;
use commissaire_storage::StorageRouter;
use commissaire_testkit::{
    self as testkit,
    kube::{FakePod, StandInKube},
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
    let kube = StandInKube::start("good-token").await;
    let bus = stack().await;
    save_cm(
        &bus,
        "k8s",
        "kubernetes",
        json!({"server_url": kube.url, "token": "good-token"}),
    )
    .await;
    let node = "10.20.0.1";
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
    assert_eq!(
        call(&bus, "node_registered", json!(["k8s", node]))
            .await
            .unwrap(),
        json!({"registered": true, "ready": false})
    );
    kube.set_ready(node, true);
    assert_eq!(
        call(&bus, "node_registered", json!(["k8s", node]))
            .await
            .unwrap()["ready"],
        true
    );
    let status = call(&bus, "get_node_status", json!(["k8s", node]))
        .await
        .unwrap();
    assert_eq!(status["conditions"]["Ready"], "True");
    assert_eq!(status["status"]["conditions"][0]["reason"], "KubeletReady");
    // Cordon, drain (the DaemonSet pod stays), uncordon.
    {
        let mut s = kube.state.lock().unwrap();
        for (name, daemonset) in [("web-1", false), ("web-2", false), ("fluentd", true)] {
            s.pods.push(FakePod {
                namespace: "default".into(),
                name: name.into(),
                node: node.into(),
                daemonset,
            });
        }
        s.pods.push(FakePod {
            namespace: "default".into(),
            name: "elsewhere".into(),
            node: "10.20.0.9".into(),
            daemonset: false,
        });
    }
    call(&bus, "cordon", json!(["k8s", node])).await.unwrap();
    assert!(kube.state.lock().unwrap().nodes[node].unschedulable);
    assert_eq!(
        call(&bus, "get_node_status", json!(["k8s", node]))
            .await
            .unwrap()["unschedulable"],
        true
    );
    assert_eq!(
        call(&bus, "drain", json!(["k8s", node, 10])).await.unwrap(),
        json!({"evicted": 2})
    );
    let left: Vec<String> = kube
        .state
        .lock()
        .unwrap()
        .pods
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(left, ["fluentd", "elsewhere"]);
    call(&bus, "uncordon", json!(["k8s", node])).await.unwrap();
    assert!(!kube.state.lock().unwrap().nodes[node].unschedulable);
    // Removal; then the status is a clear -20001 with the API's 404.
    call(&bus, "remove_node", json!(["k8s", node]))
        .await
        .unwrap();
    assert!(kube.state.lock().unwrap().nodes.is_empty());
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
async fn wrong_token_unreachable_api_and_unknown_manager_are_clear_errors() {
    let kube = StandInKube::start("good-token").await;
    let bus = stack().await;
    save_cm(
        &bus,
        "badtoken",
        "openshift",
        json!({"server_url": kube.url, "token": "wrong"}),
    )
    .await;
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
