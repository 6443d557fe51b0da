//! The storage service over a real RabbitMQ with real etcd and redb stores.

use std::sync::Arc;
use std::time::Duration;

use commissaire_bus::{Bus, InProcessBus, codes};
use commissaire_storage::{RedbStore, StorageRouter, StoreHandler};
use commissaire_testkit as testkit;
use futures::StreamExt;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(10);

async fn amqp_bus(uri: &str) -> Bus {
    commissaire_bus::connect(uri, "commissaire", T)
        .await
        .expect("connect to the test RabbitMQ")
}

async fn etcd_router(prefix: &str) -> StorageRouter {
    StorageRouter::from_config(Some(&json!({
        "type": "etcd", "server_url": format!("http://{}", testkit::etcd_endpoint()), "prefix": prefix, "models": ["*"]
    })))
    .await
    .expect("etcd handler")
}

async fn redb_router(dir: &tempfile::TempDir) -> StorageRouter {
    StorageRouter::from_config(Some(&json!([{
        "type": "redb", "path": dir.path().join("store.redb"), "models": ["*"]
    }])))
    .await
    .expect("redb handler")
}

/// One full record of every stored model.
fn samples() -> Vec<(&'static str, Value)> {
    vec![
        (
            "Host",
            json!({"address": "10.9.0.1", "status": "active", "os": "fedora", "cpus": 2, "memory": 2048, "space": 1000, "last_check": "2016-11-28T22:10:11.851787", "source": ""}),
        ),
        (
            "HostCreds",
            json!({"address": "10.9.0.1", "ssh_priv_key": "c2VjcmV0LWtleQ==", "remote_user": "cloud-user"}),
        ),
        (
            "Cluster",
            json!({"name": "honeynut", "status": "ok", "network": "default", "container_manager": "", "hostset": ["10.9.0.1"]}),
        ),
        (
            "ClusterDeploy",
            json!({"name": "honeynut", "status": "in_process", "version": "7.2.6", "deployed": [], "in_process": ["10.9.0.1"], "started_at": "2015-12-17T15:48:18.710454", "finished_at": ""}),
        ),
        (
            "ClusterRestart",
            json!({"name": "honeynut", "status": "finished", "restarted": ["10.9.0.1"], "in_process": [], "started_at": "2015-12-17T15:48:18.710454", "finished_at": "2015-12-17T15:49:18.710454"}),
        ),
        (
            "ClusterUpgrade",
            json!({"name": "honeynut", "status": "failed", "upgraded": [], "in_process": ["10.9.0.1"], "started_at": "2015-12-17T15:48:18.710454", "finished_at": "2015-12-17T15:49:18.710454"}),
        ),
        (
            "Network",
            json!({"name": "mynet", "type": "flannel_server", "options": {"address": "10.9.0.2:8080"}}),
        ),
        (
            "ContainerManagerConfig",
            json!({"name": "prod_openshift", "type": "openshift", "options": {"server_url": "https://10.9.0.3:8443"}}),
        ),
        (
            "WatcherRecord",
            json!({"address": "10.9.0.1", "last_check": "2016-11-28T22:10:11.851787"}),
        ),
    ]
}

fn key_of(kind: &str, record: &Value) -> Value {
    let field = if record.get("address").is_some() {
        "address"
    } else {
        "name"
    };
    let _ = kind;
    json!({ field: record[field] })
}

async fn call(bus: &Bus, method: &str, params: Value) -> Result<Value, commissaire_bus::BusError> {
    bus.request(&format!("storage.{method}"), params, T).await
}

/// save / get / list / delete of every model, lookup errors, validation errors and swap.
async fn model_suite(bus: &Bus) {
    for (kind, record) in samples() {
        let saved = call(
            bus,
            "save",
            json!({"model_type_name": kind, "model_json_data": record}),
        )
        .await
        .unwrap();
        assert_eq!(saved, record, "save {kind}");
        let key = key_of(kind, &record);
        let got = call(
            bus,
            "get",
            json!({"model_type_name": kind, "model_json_data": key}),
        )
        .await
        .unwrap();
        assert_eq!(got, record, "get {kind}");
        if matches!(
            kind,
            "Host" | "Cluster" | "Network" | "ContainerManagerConfig"
        ) {
            let list_kind = match kind {
                "Host" => "Hosts",
                "Cluster" => "Clusters",
                "Network" => "Networks",
                _ => "ContainerManagerConfigs",
            };
            let listed = call(bus, "list", json!({"model_type_name": list_kind}))
                .await
                .unwrap();
            assert_eq!(listed, json!([record]), "list {list_kind}");
        }
        // batch get of a list
        let both = call(
            bus,
            "get",
            json!({"model_type_name": kind, "model_json_data": [key, key]}),
        )
        .await
        .unwrap();
        assert_eq!(both, json!([record, record]));
        assert_eq!(
            call(
                bus,
                "delete",
                json!({"model_type_name": kind, "model_json_data": key})
            )
            .await
            .unwrap(),
            Value::Null
        );
        let missing = call(
            bus,
            "get",
            json!({"model_type_name": kind, "model_json_data": key}),
        )
        .await
        .unwrap_err();
        assert_eq!(
            missing.rpc().expect("rpc error").code,
            codes::STORAGE_LOOKUP_ERROR,
            "get deleted {kind}"
        );
        let missing = call(
            bus,
            "delete",
            json!({"model_type_name": kind, "model_json_data": key}),
        )
        .await
        .unwrap_err();
        assert_eq!(missing.rpc().unwrap().code, codes::STORAGE_LOOKUP_ERROR);
    }
    // The list of a kind with no records is empty.
    assert_eq!(
        call(bus, "list", json!({"model_type_name": "Hosts"}))
            .await
            .unwrap(),
        json!([])
    );
    // Invalid records are refused with the member named.
    let bad = call(bus, "save", json!({"model_type_name": "Host", "model_json_data": {"address": "10.9.0.5", "status": "sleepy"}}))
        .await
        .unwrap_err();
    let bad = bad.rpc().unwrap();
    assert_eq!(bad.code, codes::INVALID_REQUEST);
    assert_eq!(bad.data.as_ref().unwrap()["field"], "status");
    let unknown = call(
        bus,
        "get",
        json!({"model_type_name": "Spaceship", "model_json_data": {}}),
    )
    .await
    .unwrap_err();
    assert_eq!(unknown.rpc().unwrap().code, codes::INVALID_PARAMS);
    // Compare-and-swap: create-only, then only from the expected state.
    let c1 = json!({"name": "cas", "hostset": []});
    let c2 = json!({"name": "cas", "hostset": ["10.9.0.1"]});
    call(
        bus,
        "swap",
        json!({"model_type_name": "Cluster", "expected": null, "model_json_data": c1}),
    )
    .await
    .unwrap();
    let again = call(
        bus,
        "swap",
        json!({"model_type_name": "Cluster", "expected": null, "model_json_data": c1}),
    )
    .await
    .unwrap_err();
    assert_eq!(again.rpc().unwrap().code, codes::CONFLICT);
    let swapped = call(
        bus,
        "swap",
        json!({"model_type_name": "Cluster", "expected": c1, "model_json_data": c2}),
    )
    .await
    .unwrap();
    assert_eq!(swapped["hostset"], json!(["10.9.0.1"]));
    let stale = call(
        bus,
        "swap",
        json!({"model_type_name": "Cluster", "expected": c1, "model_json_data": c1}),
    )
    .await
    .unwrap_err();
    assert_eq!(stale.rpc().unwrap().code, codes::CONFLICT);
    call(
        bus,
        "delete",
        json!({"model_type_name": "Cluster", "model_json_data": {"name": "cas"}}),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn etcd_over_amqp_round_trips_every_model() {
    let uri = testkit::fresh_vhost();
    let bus = amqp_bus(&uri).await;
    let prefix = testkit::etcd_prefix();
    let handle = commissaire_storage::start(etcd_router(&prefix).await, bus.clone(), 2)
        .await
        .unwrap();
    // The record lands under the documented key layout.
    call(
        &bus,
        "save",
        json!({"model_type_name": "Host", "model_json_data": {"address": "10.9.1.1"}}),
    )
    .await
    .unwrap();
    let mut etcd = etcd_client::Client::connect([testkit::etcd_endpoint()], None)
        .await
        .unwrap();
    let kv = etcd
        .get(format!("{prefix}hosts/10.9.1.1"), None)
        .await
        .unwrap();
    let stored: Value = serde_json::from_slice(kv.kvs()[0].value()).unwrap();
    assert_eq!(stored["address"], "10.9.1.1");
    call(
        &bus,
        "delete",
        json!({"model_type_name": "Host", "model_json_data": {"address": "10.9.1.1"}}),
    )
    .await
    .unwrap();
    model_suite(&bus).await;
    handle.stop();
}

#[tokio::test]
async fn redb_over_amqp_round_trips_every_model() {
    let dir = tempfile::tempdir().unwrap();
    let bus = amqp_bus(&testkit::fresh_vhost()).await;
    let handle = commissaire_storage::start(redb_router(&dir).await, bus.clone(), 2)
        .await
        .unwrap();
    model_suite(&bus).await;
    handle.stop();
}

#[tokio::test]
async fn redb_in_process_round_trips_every_model() {
    let dir = tempfile::tempdir().unwrap();
    let bus: Bus = Arc::new(InProcessBus::new());
    let handle = commissaire_storage::start(redb_router(&dir).await, bus.clone(), 2)
        .await
        .unwrap();
    model_suite(&bus).await;
    handle.stop();
}

#[tokio::test]
async fn two_replicas_share_one_queue() {
    let uri = testkit::fresh_vhost();
    let prefix = testkit::etcd_prefix();
    let replica_a = commissaire_storage::start(etcd_router(&prefix).await, amqp_bus(&uri).await, 1)
        .await
        .unwrap();
    let replica_b = commissaire_storage::start(etcd_router(&prefix).await, amqp_bus(&uri).await, 1)
        .await
        .unwrap();
    let client = amqp_bus(&uri).await;
    call(
        &client,
        "save",
        json!({"model_type_name": "Network", "model_json_data": {"name": "shared"}}),
    )
    .await
    .unwrap();
    let calls = (0..40).map(|_| {
        let client = client.clone();
        async move {
            call(
                &client,
                "get",
                json!({"model_type_name": "Network", "model_json_data": {"name": "shared"}}),
            )
            .await
        }
    });
    for result in futures::future::join_all(calls).await {
        assert_eq!(result.unwrap()["name"], "shared");
    }
    let (a, b) = (replica_a.handled(), replica_b.handled());
    assert_eq!(a + b, 41, "every request handled exactly once");
    assert!(a > 0 && b > 0, "both replicas took work: {a} and {b}");
}

#[tokio::test]
async fn notifications_reach_an_independent_amqp_consumer() {
    use lapin::options::*;
    use lapin::types::FieldTable;
    let uri = testkit::fresh_vhost();
    let bus = amqp_bus(&uri).await;
    let dir = tempfile::tempdir().unwrap();
    let _service = commissaire_storage::start(redb_router(&dir).await, bus.clone(), 1)
        .await
        .unwrap();
    // A plain AMQP consumer, not our bus library.
    let conn = lapin::Connection::connect(&uri, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let q = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    ch.queue_bind(
        q.name().clone(),
        "commissaire".into(),
        "notify.storage.*.*".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let mut consumer = ch
        .basic_consume(
            q.name().clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let host = json!({"address": "10.9.2.1"});
    call(
        &bus,
        "save",
        json!({"model_type_name": "Host", "model_json_data": host}),
    )
    .await
    .unwrap();
    call(&bus, "save", json!({"model_type_name": "HostCreds", "model_json_data": {"address": "10.9.2.1", "ssh_priv_key": "VERY-SECRET"}})).await.unwrap();
    call(&bus, "save", json!({"model_type_name": "Host", "model_json_data": {"address": "10.9.2.1", "status": "active"}})).await.unwrap();
    call(&bus, "save", json!({"model_type_name": "Cluster", "model_json_data": {"name": "c1", "hostset": ["10.9.2.1"]}})).await.unwrap();
    call(
        &bus,
        "delete",
        json!({"model_type_name": "Host", "model_json_data": host}),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let delivery = tokio::time::timeout(T, consumer.next())
            .await
            .expect("a notification")
            .unwrap()
            .unwrap();
        let text = String::from_utf8(delivery.data.clone()).unwrap();
        assert!(
            !text.contains("VERY-SECRET"),
            "a secret was published: {text}"
        );
        let body: Value = serde_json::from_str(&text).unwrap();
        seen.push((delivery.routing_key.to_string(), body));
    }
    let keys: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "notify.storage.Host.created",
            "notify.storage.Host.updated",
            "notify.storage.Cluster.created",
            "notify.storage.Host.deleted"
        ]
    );
    assert_eq!(seen[1].1["event"], "updated");
    assert_eq!(seen[1].1["class"], "Host");
    assert_eq!(seen[1].1["model"]["status"], "active");
    assert!(
        seen[2].1["model"].get("hostset").is_none(),
        "hidden members are not published"
    );
    // Nothing else (no HostCreds notification) arrived.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), consumer.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn source_routes_a_host_to_a_second_handler() {
    let uri = testkit::fresh_vhost();
    let bus = amqp_bus(&uri).await;
    let prefix = testkit::etcd_prefix();
    let dir = tempfile::tempdir().unwrap();
    let cloudforms = RedbStore::open(&dir.path().join("cloudforms.redb")).unwrap();
    let mut router = etcd_router(&prefix).await;
    router
        .add(
            "cloudforms",
            Arc::new(cloudforms.clone()),
            &["NoModelByDefault".into()],
        )
        .unwrap();
    let _service = commissaire_storage::start(router, bus.clone(), 2)
        .await
        .unwrap();

    call(
        &bus,
        "save",
        json!({"model_type_name": "Host", "model_json_data": {"address": "10.9.3.1"}}),
    )
    .await
    .unwrap();
    let external = json!({"address": "10.9.3.2", "os": "fedora", "source": "cloudforms"});
    call(
        &bus,
        "save",
        json!({"model_type_name": "Host", "model_json_data": external}),
    )
    .await
    .unwrap();
    // The external host is in the second handler, not in etcd.
    assert_eq!(
        cloudforms.get("hosts/10.9.3.2").await.unwrap().unwrap()["source"],
        "cloudforms"
    );
    assert!(cloudforms.get("hosts/10.9.3.1").await.unwrap().is_none());
    let mut etcd = etcd_client::Client::connect([testkit::etcd_endpoint()], None)
        .await
        .unwrap();
    assert!(
        etcd.get(format!("{prefix}hosts/10.9.3.2"), None)
            .await
            .unwrap()
            .kvs()
            .is_empty()
    );
    assert_eq!(
        etcd.get(format!("{prefix}hosts/10.9.3.1"), None)
            .await
            .unwrap()
            .kvs()
            .len(),
        1
    );
    // It is found without naming the source, and listed with the others.
    let got = call(
        &bus,
        "get",
        json!({"model_type_name": "Host", "model_json_data": {"address": "10.9.3.2"}}),
    )
    .await
    .unwrap();
    assert_eq!(got["os"], "fedora");
    let listed = call(&bus, "list", json!({"model_type_name": "Hosts"}))
        .await
        .unwrap();
    let mut addresses: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["address"].as_str().unwrap())
        .collect();
    addresses.sort();
    assert_eq!(addresses, ["10.9.3.1", "10.9.3.2"]);
    // An unknown source is refused, naming the member.
    let err = call(&bus, "save", json!({"model_type_name": "Host", "model_json_data": {"address": "10.9.3.3", "source": "nowhere"}}))
        .await
        .unwrap_err();
    assert_eq!(err.rpc().unwrap().data.as_ref().unwrap()["field"], "source");
    let handlers = call(&bus, "list_store_handlers", json!({})).await.unwrap();
    assert_eq!(handlers[0]["handler_type"], "etcd");
    assert_eq!(handlers[1]["name"], "cloudforms");
}

#[tokio::test]
async fn the_binary_serves_storage_requests() {
    let uri = testkit::fresh_vhost();
    let dir = tempfile::tempdir().unwrap();
    let prefix = testkit::etcd_prefix();
    let config = dir.path().join("storage.conf");
    std::fs::write(
        &config,
        json!({
            "bus_uri": "amqp://nowhere.invalid",
            "secrets_key_file": dir.path().join("secrets.key"),
            "storage_handlers": [{"type": "etcd", "server_url": format!("http://{}", testkit::etcd_endpoint()), "prefix": prefix}]
        })
        .to_string(),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_commissaire-storage-service"))
        .arg("-c")
        .arg(&config)
        .args(["--bus-uri", &uri, "--workers", "2"])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let bus = amqp_bus(&uri).await;
    // Wait for the service's queue to be consumed.
    let mut saved = None;
    for _ in 0..100 {
        match call(
            &bus,
            "save",
            json!({"model_type_name": "Network", "model_json_data": {"name": "fromcli"}}),
        )
        .await
        {
            Ok(v) => {
                saved = Some(v);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert_eq!(saved.expect("the binary answered")["type"], "flannel_etcd");
    let got = call(
        &bus,
        "get",
        json!({"model_type_name": "Network", "model_json_data": {"name": "fromcli"}}),
    )
    .await
    .unwrap();
    assert_eq!(got["name"], "fromcli");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn expand_returns_a_record_with_the_records_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let bus: Bus = Arc::new(InProcessBus::new());
    let _service = commissaire_storage::start(redb_router(&dir).await, bus.clone(), 2)
        .await
        .unwrap();
    call(&bus, "save", json!({"model_type_name": "Host", "model_json_data": {"address": "10.9.5.1", "status": "active"}}))
        .await
        .unwrap();
    let cluster = json!({"name": "ex", "hostset": ["10.9.5.1", "10.9.5.2"]});
    call(
        &bus,
        "save",
        json!({"model_type_name": "Cluster", "model_json_data": cluster}),
    )
    .await
    .unwrap();
    let params = json!({"model_type_name": "Cluster", "model_json_data": {"name": "ex"},
                        "member": "hostset", "member_type_name": "Host"});
    let got = call(&bus, "expand", params.clone()).await.unwrap();
    assert_eq!(got["record"]["hostset"], json!(["10.9.5.1", "10.9.5.2"]));
    let members = got["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "the missing host is left out");
    assert_eq!(members[0]["status"], "active");
    let mut secret = params.clone();
    secret["member_type_name"] = json!("HostCreds");
    assert_eq!(
        call(&bus, "expand", secret)
            .await
            .unwrap_err()
            .rpc()
            .unwrap()
            .code,
        codes::INVALID_PARAMS
    );
    let mut missing = params;
    missing["model_json_data"] = json!({"name": "nope"});
    assert_eq!(
        call(&bus, "expand", missing)
            .await
            .unwrap_err()
            .rpc()
            .unwrap()
            .code,
        codes::STORAGE_LOOKUP_ERROR
    );
}
