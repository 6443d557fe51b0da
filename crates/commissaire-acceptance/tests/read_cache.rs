//! The server's read cache: a change announced by the storage service is
//! seen as soon as the announcement arrives (well within the cache time); a change nobody announced (etcd written behind
//! the storage service's back) is served stale at most for the configured
//! time; the server's own writes are seen at once; `--read-cache-seconds 0`
//! turns the cache off.

mod common;

use std::time::{Duration, Instant};

use commissaire_http::ServerArgs;
use commissaire_models::ModelKind;
use commissaire_storage::StorageRouter;
use commissaire_storage::record_key;
use commissaire_testkit as testkit;
use common::{KEY, Stack, StackOptions};
use serde_json::{Value, json};

async fn stack(cache_seconds: f64) -> Stack {
    Stack::start_with(StackOptions {
        args: ServerArgs {
            read_cache_seconds: Some(cache_seconds),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
}

/// A cluster `c` with one member host `10.9.0.1`.
async fn cluster_with_member(s: &Stack) {
    assert_eq!(s.put("/api/v0/cluster/c", json!({})).await.0, 201);
    let (status, body) = s
        .put(
            "/api/v0/host/10.9.0.1",
            json!({"address": "10.9.0.1", "ssh_priv_key": KEY}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // Only active (or disassociated) hosts may join.
    s.set_host_status("10.9.0.1", "active").await;
    assert_eq!(
        s.put("/api/v0/cluster/c/hosts/10.9.0.1", json!({})).await.0,
        200
    );
}

async fn available(s: &Stack) -> u64 {
    let (status, body) = s.get("/api/v0/cluster/c").await;
    assert_eq!(status, 200, "{body}");
    body["hosts"]["available"].as_u64().unwrap()
}

/// Writes the host's status straight into etcd: no notification is sent.
async fn write_behind_storage(s: &Stack, status: &str) {
    let router = StorageRouter::from_config(Some(&json!({
        "type": "etcd", "server_url": format!("http://{}", testkit::etcd_endpoint()), "prefix": s.etcd_prefix
    })))
    .await
    .unwrap();
    let handler = &router.for_kind(ModelKind::Host).unwrap().handler;
    let key = record_key(ModelKind::Host, "10.9.0.1").unwrap();
    let mut host: Value = handler.get(&key).await.unwrap().expect("stored host");
    host["status"] = json!(status);
    handler.put(&key, &host).await.unwrap();
}

/// Writes the host's status through the storage service (as the
/// investigator and the watcher do); no waiting.
async fn write_through_storage(s: &Stack, status: &str) {
    let key = json!({"model_type_name": "Host", "model_json_data": {"address": "10.9.0.1"}});
    let t = Duration::from_secs(5);
    let mut host = s.bus.request("storage.get", key, t).await.unwrap();
    host["status"] = json!(status);
    s.bus
        .request(
            "storage.save",
            json!({"model_type_name": "Host", "model_json_data": host}),
            t,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn announced_changes_are_seen_long_before_the_cache_time() {
    let s = stack(600.0).await;
    cluster_with_member(&s).await;
    for round in 0..10 {
        let (status, expected) = if round % 2 == 0 {
            ("failed", 0)
        } else {
            ("active", 1)
        };
        // Every answer computed from hosts is cached with the old status...
        s.get("/api/v0/host/10.9.0.1").await;
        s.get("/api/v0/hosts").await;
        available(&s).await;
        write_through_storage(&s, status).await;
        // ...and the announcement drops them all: seen within seconds, not
        // after the 600 s cache time.
        let deadline = Instant::now() + Duration::from_secs(10);
        while available(&s).await != expected {
            assert!(Instant::now() < deadline, "round {round}: never seen");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (_, host) = s.get("/api/v0/host/10.9.0.1").await;
        assert_eq!(host["status"], status, "round {round}");
        let (_, hosts) = s.get("/api/v0/hosts").await;
        assert_eq!(hosts[0]["status"], status, "round {round}");
        assert_eq!(available(&s).await, expected, "round {round}, cached");
    }
}

#[tokio::test]
async fn own_writes_are_seen_at_once() {
    let s = stack(600.0).await;
    cluster_with_member(&s).await;
    assert_eq!(s.get("/api/v0/clusters").await.1, json!(["c"]));
    assert_eq!(s.put("/api/v0/cluster/d", json!({})).await.0, 201);
    assert_eq!(s.get("/api/v0/clusters").await.1, json!(["c", "d"]));
    let (_, c) = s.get("/api/v0/cluster/c").await;
    assert_eq!(c["hosts"]["total"], 1);
    assert_eq!(s.delete("/api/v0/cluster/c/hosts/10.9.0.1").await.0, 200);
    let (_, c) = s.get("/api/v0/cluster/c").await;
    assert_eq!(c["hosts"]["total"], 0);
    assert_eq!(s.delete("/api/v0/host/10.9.0.1").await.0, 200);
    assert_eq!(s.get("/api/v0/host/10.9.0.1").await.0, 404);
    assert_eq!(s.get("/api/v0/hosts").await.1, json!([]));
}

#[tokio::test]
async fn unannounced_changes_are_stale_at_most_the_configured_time() {
    let ttl = Duration::from_secs(3);
    let s = stack(ttl.as_secs_f64()).await;
    cluster_with_member(&s).await;
    s.set_host_status("10.9.0.1", "active").await;
    // The cache holds the answer: a change behind the storage service's back
    // is not seen while the entry is young...
    let mut served_stale = false;
    for _ in 0..3 {
        assert_eq!(available(&s).await, 1);
        let filled = Instant::now();
        write_behind_storage(&s, "failed").await;
        let seen = available(&s).await;
        if filled.elapsed() < ttl {
            assert_eq!(seen, 1, "a young entry is served");
            served_stale = true;
            break;
        }
        // The machine was too slow to tell; put the status back and retry.
        write_behind_storage(&s, "active").await;
        tokio::time::sleep(ttl).await;
    }
    assert!(served_stale, "never read within the cache time");
    // ...and is seen once the entry is older than the configured time.
    let deadline = Instant::now() + ttl + Duration::from_secs(5);
    while available(&s).await != 0 {
        assert!(Instant::now() < deadline, "stale beyond the cache time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn zero_seconds_turns_the_cache_off() {
    let s = stack(0.0).await;
    cluster_with_member(&s).await;
    s.set_host_status("10.9.0.1", "active").await;
    assert_eq!(available(&s).await, 1);
    write_behind_storage(&s, "failed").await;
    assert_eq!(available(&s).await, 0);
}
