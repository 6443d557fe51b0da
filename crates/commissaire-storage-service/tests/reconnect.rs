//! The broker goes away mid-run: callers get a clear error at once (no hang),
//! and both the service and its callers reconnect when it comes back.
//! (Its own test binary: stopping the broker must not disturb other tests.)

use std::sync::Arc;
use std::time::Duration;

use commissaire_bus::{AmqpBus, Bus, BusError, Transport};
use commissaire_storage::StorageRouter;
use commissaire_testkit as testkit;
use serde_json::json;

fn ctl(args: &'static [&'static str]) -> tokio::task::JoinHandle<String> {
    tokio::task::spawn_blocking(move || testkit::rabbitmqctl(args))
}

#[tokio::test]
async fn service_and_callers_survive_a_broker_outage() {
    let uri = testkit::fresh_vhost();
    let wait = Duration::from_secs(10);
    let dir = tempfile::tempdir().unwrap();
    let router = StorageRouter::from_config(Some(
        &json!({"type": "redb", "path": dir.path().join("s.redb")}),
    ))
    .await
    .unwrap();
    let service_bus: Bus = Arc::new(AmqpBus::connect(&uri, "commissaire", wait).await.unwrap());
    let _service = commissaire_storage::start(router, service_bus, 2)
        .await
        .unwrap();
    let client = AmqpBus::connect(&uri, "commissaire", wait).await.unwrap();
    let save = json!({"model_type_name": "Network", "model_json_data": {"name": "before"}});
    client.request("storage.save", save, wait).await.unwrap();

    // A call in flight when the connection drops fails with Unavailable, not a timeout.
    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .request("nobody.listens", json!({}), Duration::from_secs(60))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    ctl(&["stop_app"]).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(30), in_flight)
        .await
        .expect("the in-flight call ended")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, BusError::Unavailable(_)),
        "in-flight call: {err}"
    );

    // While the broker is down, calls fail at once with a clear error.
    for _ in 0..100 {
        if !client.is_connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!client.is_connected());
    let err = client
        .request(
            "storage.get",
            json!({"model_type_name": "Network", "model_json_data": {"name": "before"}}),
            wait,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, BusError::Unavailable(_)),
        "call while down: {err}"
    );
    assert!(err.to_string().contains("message bus unavailable"), "{err}");

    ctl(&["start_app"]).await.unwrap();
    assert!(
        client.wait_connected(Duration::from_secs(60)).await,
        "the client reconnected"
    );
    // The service re-established its consumer: requests are answered again.
    let mut answer = None;
    for _ in 0..150 {
        let get = json!({"model_type_name": "Network", "model_json_data": {"name": "before"}});
        match client
            .request("storage.get", get, Duration::from_secs(2))
            .await
        {
            Ok(v) => {
                answer = Some(v);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert_eq!(
        answer.expect("the service answers after the outage")["name"],
        "before"
    );
}
