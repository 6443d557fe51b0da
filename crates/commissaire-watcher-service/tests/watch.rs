//! The watcher against real sshd hosts: a host whose sshd stops becomes
//! `failed` and gets its status back when sshd returns; replicas split hosts.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use commissaire_bus::Bus;
use commissaire_storage::StorageRouter;
use commissaire_testkit::{self as testkit, TestSshd};
use commissaire_watcher_service::{Watcher, WatcherConfig};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(10);

async fn storage() -> Bus {
    let amqp = testkit::fresh_vhost();
    let bus = commissaire_bus::connect(&amqp, "commissaire", T)
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
    bus
}

fn watcher(bus: &Bus, interval: f64) -> Arc<Watcher> {
    let config = WatcherConfig::from_config(
        json!({"interval": interval, "concurrency": 4, "check_timeout": 30,
               "playbook_dir": concat!(env!("CARGO_MANIFEST_DIR"), "/../../playbooks")})
        .as_object()
        .unwrap(),
    )
    .unwrap();
    let access = commissaire_host_access::HostAccess::start(
        commissaire_storage_client::StorageClient::new(bus.clone()),
        &config.ssh,
    )
    .unwrap();
    Arc::new(Watcher::new(bus.clone(), config, access))
}

async fn save(bus: &Bus, kind: &str, data: Value) {
    bus.request(
        "storage.save",
        json!({"model_type_name": kind, "model_json_data": data}),
        T,
    )
    .await
    .unwrap();
}

async fn host(bus: &Bus, address: &str) -> Value {
    bus.request(
        "storage.get",
        json!({"model_type_name": "Host", "model_json_data": {"address": address}}),
        T,
    )
    .await
    .unwrap()
}

/// A bootstrapped host as the investigator leaves it.
async fn bootstrapped(bus: &Bus, address: &str, status: &str) {
    let key = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(testkit::ssh_key()).unwrap());
    save(
        bus,
        "HostCreds",
        json!({"address": address, "ssh_priv_key": key, "remote_user": "root"}),
    )
    .await;
    save(
        bus,
        "Host",
        json!({"address": address, "status": status, "last_check": "2020-01-01T00:00:00.000000"}),
    )
    .await;
    save(
        bus,
        "WatcherRecord",
        json!({"address": address, "last_check": "2020-01-01T00:00:00.000000"}),
    )
    .await;
}

async fn wait_status(bus: &Bus, address: &str, status: &str) -> Value {
    for _ in 0..300 {
        let h = host(bus, address).await;
        if h["status"] == status {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "{address} never became {status}: {}",
        host(bus, address).await
    );
}

#[tokio::test]
async fn a_stopped_host_fails_and_comes_back() {
    let mut sshd = TestSshd::start("127.0.0.41");
    let bus = storage().await;
    bootstrapped(&bus, &sshd.address, "active").await;
    let w = watcher(&bus, 1.0);
    let running = tokio::spawn(w.clone().run());
    // First check: still active, last_check moved forward.
    for _ in 0..100 {
        if host(&bus, &sshd.address).await["last_check"] != "2020-01-01T00:00:00.000000" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let h = host(&bus, &sshd.address).await;
    assert_eq!(h["status"], "active", "{h}");
    assert_ne!(h["last_check"], "2020-01-01T00:00:00.000000");
    sshd.stop();
    let failed = wait_status(&bus, &sshd.address, "failed").await;
    assert!(
        failed["reason"].as_str().unwrap().contains("unreachable"),
        "{failed}"
    );
    sshd.resume();
    let back = wait_status(&bus, &sshd.address, "active").await;
    assert!(back.get("reason").is_none(), "{back}");
    assert!(w.checks() >= 3);
    running.abort();
}

#[tokio::test]
async fn replicas_split_the_hosts() {
    let sshds: Vec<TestSshd> = (42..=44)
        .map(|i| TestSshd::start(&format!("127.0.0.{i}")))
        .collect();
    let bus = storage().await;
    for s in &sshds {
        bootstrapped(&bus, &s.address, "disassociated").await;
    }
    let (a, b) = (watcher(&bus, 3600.0), watcher(&bus, 3600.0));
    // Both replicas run a round at the same time: every due host is claimed once.
    let (ra, rb) = tokio::join!(a.round(), b.round());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra + rb, 3, "claims: {ra} + {rb}");
    assert_eq!(a.checks() + b.checks(), 3);
    // Nothing is due again within the interval.
    let (ra, rb) = tokio::join!(a.round(), b.round());
    assert_eq!(ra.unwrap() + rb.unwrap(), 0);
    for s in &sshds {
        assert_eq!(host(&bus, &s.address).await["status"], "disassociated");
    }
}
