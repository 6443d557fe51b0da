//! A service's configuration read from the test bed's real etcd
//! (`ETCD_MACHINES`), over etcd's JSON gateway: the daemons need no gRPC
//! client for it.

use commissaire_service::{ConfigError, EtcdSettings, etcd_config_key, load_config};
use commissaire_testkit as testkit;

/// Writes `value` at `key` through the gateway, as `etcdctl put` would.
async fn put(key: &str, value: &str) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let url = format!("http://{}/v3/kv/put", testkit::etcd_endpoint());
    let body = serde_json::json!({"key": b64.encode(key), "value": b64.encode(value)});
    let status = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("put")
        .status();
    assert!(status.is_success(), "{status}");
}

fn settings(endpoints: &[String]) -> EtcdSettings {
    EtcdSettings {
        endpoints: endpoints.to_vec(),
        ..EtcdSettings::default()
    }
}

#[tokio::test]
async fn a_service_reads_its_configuration_from_etcd() {
    let service = format!("svc-{}", uuid::Uuid::new_v4().simple());
    let key = etcd_config_key(&service);
    put(&key, r#"{"bus_uri": "amqp://from-etcd", "workers": 3}"#).await;
    // A dead member first: the next one answers.
    let etcd = settings(&["127.0.0.1:9".into(), testkit::etcd_endpoint()]);
    let loaded = load_config(&service, None, Some(&etcd)).await.unwrap();
    assert_eq!(loaded["bus_uri"], "amqp://from-etcd");
    assert_eq!(loaded["workers"], 3);
}

#[tokio::test]
async fn no_key_in_etcd_means_the_defaults_and_a_bad_one_says_where() {
    let etcd = settings(&[format!("http://{}", testkit::etcd_endpoint())]);
    let service = format!("svc-{}", uuid::Uuid::new_v4().simple());
    let loaded = load_config(&service, None, Some(&etcd)).await.unwrap();
    assert!(loaded.is_empty(), "{loaded:?}");

    put(&etcd_config_key(&service), "[1, 2]").await;
    match load_config(&service, None, Some(&etcd)).await {
        Err(ConfigError::Parse { origin, .. }) => {
            assert!(origin.contains(&service), "{origin}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_etcd_is_an_error_naming_it() {
    let etcd = settings(&["127.0.0.1:9".into()]);
    let err = load_config("storage", None, Some(&etcd)).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("/commissaire/config/storage") && text.contains("127.0.0.1:9"),
        "{text}"
    );
}
