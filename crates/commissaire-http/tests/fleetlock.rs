//! The FleetLock endpoints, fast tier (a cluster without a container
//! manager, so no drain): driven as Zincati drives them, an HTTP client
//! posting the protocol's body with its header, authenticated by an
//! operator's credentials or by the cluster's token in the URL.

mod common;

use std::time::Duration;

use common::Stack;
use serde_json::{Value, json};

/// Stores active hosts `addresses` and makes them members of `cluster`.
async fn cluster_of(s: &Stack, cluster: &str, addresses: &[&str]) {
    let hosts: Vec<Value> = addresses
        .iter()
        .map(|a| json!({"address": a, "status": "active", "os": "fedora"}))
        .collect();
    s.bus
        .request(
            "storage.save",
            json!({"model_type_name": "Host", "model_json_data": hosts}),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(
        s.put(&format!("/api/v0/cluster/{cluster}"), json!({}))
            .await
            .0,
        201
    );
    for a in addresses {
        let path = format!("/api/v0/cluster/{cluster}/hosts/{a}");
        assert_eq!(s.put(&path, json!({})).await.0, 200);
    }
}

/// A FleetLock call as Zincati makes it, to `base` (which may carry the
/// token as its URL's password): the status and the JSON answer.
async fn zincati(base: &str, endpoint: &str, id: &str, group: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}v1/{endpoint}"))
        .header("fleet-lock-protocol", "true")
        .body(json!({"client_params": {"id": id, "group": group}}).to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The server's FleetLock base URL with `user:password@`.
fn base_with(s: &Stack, user_info: &str) -> String {
    let url = s.url("/fleetlock/");
    url.replacen("://", &format!("://{user_info}@"), 1)
}

#[tokio::test]
async fn two_hosts_asking_at_once_with_one_slot_one_waits_until_the_other_is_back() {
    let s = Stack::start().await;
    cluster_of(&s, "prod", &["10.0.0.1", "10.0.0.2"]).await;
    let base = base_with(&s, "a:a");
    let (a, b) = tokio::join!(
        zincati(&base, "pre-reboot", "10.0.0.1", "prod"),
        zincati(&base, "pre-reboot", "10.0.0.2", "prod"),
    );
    let mut answers = [a, b];
    answers.sort_by_key(|(status, _)| *status);
    assert_eq!(answers[0].0, 200, "{answers:?}");
    assert_eq!(answers[1].0, 409, "{answers:?}");
    assert_eq!(answers[1].1["kind"], "failed_lock_semaphore_full");
    let winner = if answers[1].1["value"]
        .as_str()
        .unwrap()
        .contains("'10.0.0.1'")
    {
        "10.0.0.1"
    } else {
        "10.0.0.2"
    };
    let loser = if winner == "10.0.0.1" {
        "10.0.0.2"
    } else {
        "10.0.0.1"
    };

    // The lock shows the holder, since when and why.
    let (status, lock) = s.get("/api/v0/cluster/prod/lock").await;
    assert_eq!(status, 200);
    assert_eq!(
        (lock["slots"].as_u64(), lock["used"].as_u64()),
        (Some(1), Some(1))
    );
    let holder = &lock["holders"][0];
    assert_eq!(
        (holder["id"].as_str(), holder["kind"].as_str()),
        (Some(winner), Some("fleetlock"))
    );
    assert_eq!(holder["state"], "held");
    assert!(
        holder["since"].as_str().is_some_and(|t| t.len() > 18),
        "{holder}"
    );
    assert_eq!(holder["why"], format!("FleetLock pre-reboot of {winner}"));

    // Recursive: the holder asking again is granted again; the other
    // still waits.
    assert_eq!(zincati(&base, "pre-reboot", winner, "prod").await.0, 200);
    assert_eq!(zincati(&base, "pre-reboot", loser, "prod").await.0, 409);
    // Back: the slot is free for the other one.
    assert_eq!(zincati(&base, "steady-state", winner, "prod").await.0, 200);
    assert_eq!(zincati(&base, "pre-reboot", loser, "prod").await.0, 200);
    // Unlock-if-held: a client that holds nothing is answered done.
    assert_eq!(zincati(&base, "steady-state", winner, "prod").await.0, 200);
}

#[tokio::test]
async fn max_unavailable_gives_the_lock_more_slots() {
    let s = Stack::start().await;
    cluster_of(&s, "big", &["10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4"]).await;
    let (status, _) = s
        .put(
            "/api/v0/cluster/big/rolling",
            json!({"max_unavailable": "50%"}),
        )
        .await;
    assert_eq!(status, 200);
    let base = base_with(&s, "a:a");
    for (host, want) in [("10.0.1.1", 200), ("10.0.1.2", 200), ("10.0.1.3", 409)] {
        assert_eq!(
            zincati(&base, "pre-reboot", host, "big").await.0,
            want,
            "{host}"
        );
    }
    let (_, lock) = s.get("/api/v0/cluster/big/lock").await;
    assert_eq!(
        (lock["slots"].as_u64(), lock["used"].as_u64()),
        (Some(2), Some(2))
    );
}

#[tokio::test]
async fn the_clusters_token_in_the_url_lets_its_hosts_in_and_nothing_else_does() {
    let s = Stack::start().await;
    cluster_of(&s, "edge", &["10.0.2.1"]).await;
    cluster_of(&s, "other", &["10.0.2.9"]).await;
    let (status, made) = s.put("/api/v0/cluster/edge/lock/token", json!({})).await;
    assert_eq!(status, 200, "{made}");
    let token = made["token"].as_str().unwrap().to_string();
    assert!(token.len() >= 40, "{made}");
    // The token is never shown again, nor its digest.
    let (_, lock) = s.get("/api/v0/cluster/edge/lock").await;
    assert_eq!(lock["token"], true);
    assert!(!lock.to_string().contains(&token), "{lock}");
    assert!(lock.get("token_sha256").is_none(), "{lock}");

    let with_token = base_with(&s, &format!("fleetlock:{token}"));
    assert_eq!(
        zincati(&with_token, "pre-reboot", "10.0.2.1", "edge")
            .await
            .0,
        200
    );
    // Not another cluster's token, not a wrong one, not none.
    let (status, answer) = zincati(&with_token, "pre-reboot", "10.0.2.9", "other").await;
    assert_eq!(
        (status, answer["kind"].as_str()),
        (403, Some("unauthorized"))
    );
    let wrong = base_with(&s, "fleetlock:nope");
    assert_eq!(
        zincati(&wrong, "steady-state", "10.0.2.1", "edge").await.0,
        403
    );
    assert_eq!(
        zincati(&s.url("/fleetlock/"), "steady-state", "10.0.2.1", "edge")
            .await
            .0,
        403
    );
    // A new token replaces the old one.
    assert_eq!(
        s.put("/api/v0/cluster/edge/lock/token", json!({})).await.0,
        200
    );
    assert_eq!(
        zincati(&with_token, "steady-state", "10.0.2.1", "edge")
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn an_operator_releases_a_stale_holder() {
    let s = Stack::start().await;
    cluster_of(&s, "prod", &["10.0.3.1", "10.0.3.2"]).await;
    let base = base_with(&s, "a:a");
    assert_eq!(
        zincati(&base, "pre-reboot", "10.0.3.1", "prod").await.0,
        200
    );
    assert_eq!(
        zincati(&base, "pre-reboot", "10.0.3.2", "prod").await.0,
        409
    );
    let (status, lock) = s.delete("/api/v0/cluster/prod/lock/holders/10.0.3.1").await;
    assert_eq!((status, lock["used"].as_u64()), (200, Some(0)), "{lock}");
    assert_eq!(
        s.delete("/api/v0/cluster/prod/lock/holders/10.0.3.1")
            .await
            .0,
        404
    );
    assert_eq!(
        zincati(&base, "pre-reboot", "10.0.3.2", "prod").await.0,
        200
    );
    // Deleting the cluster forgets its lock.
    assert_eq!(s.delete("/api/v0/cluster/prod").await.0, 200);
    cluster_of(&s, "prod", &["10.0.3.1"]).await;
    let (_, lock) = s.get("/api/v0/cluster/prod/lock").await;
    assert_eq!(lock["used"].as_u64(), Some(0), "{lock}");
}

/// A stack whose server looks for stale holders every 100 ms.
async fn stack_judging_stale(
    stale_after_seconds: f64,
    down_after_seconds: f64,
    policy: &str,
) -> Stack {
    let fleetlock = serde_json::from_value(json!({
        "stale_after_seconds": stale_after_seconds,
        "down_after_seconds": down_after_seconds,
        "stale_policy": policy,
        "scan_seconds": 0.1,
    }))
    .unwrap();
    Stack::start_with(common::StackOptions {
        fleetlock: Some(fleetlock),
        ..Default::default()
    })
    .await
}

/// Polls `cluster`'s lock until `done` says yes (10 s at most).
async fn wait_lock(s: &Stack, cluster: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, lock) = s.get(&format!("/api/v0/cluster/{cluster}/lock")).await;
        assert_eq!(status, 200, "{lock}");
        if done(&lock) {
            return lock;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {lock}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the sample `series` in this process's metrics.
fn metric(series: &str) -> f64 {
    commissaire_service::metrics::render()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The system's audit entries of stale holders.
async fn stale_entries(s: &Stack) -> Vec<Value> {
    let (status, audit) = s.get("/api/v0/audit?kind=cluster.lock.stale").await;
    assert_eq!(status, 200, "{audit}");
    audit["entries"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_holder_held_too_long_is_reported_and_keeps_its_slot_until_an_operator_releases_it() {
    let s = stack_judging_stale(1.0, 0.0, "keep").await;
    cluster_of(&s, "prod", &["10.0.5.1", "10.0.5.2"]).await;
    let base = base_with(&s, "a:a");
    assert_eq!(
        zincati(&base, "pre-reboot", "10.0.5.1", "prod").await.0,
        200
    );
    let lock = wait_lock(&s, "prod", "the holder is found stale", |l| {
        l["holders"][0]["stale"]
            .as_str()
            .is_some_and(|w| !w.is_empty())
    })
    .await;
    let why = lock["holders"][0]["stale"].as_str().unwrap();
    assert!(
        why.starts_with("held for ") && why.contains("longer than 1 s"),
        "{lock}"
    );
    // Kept: the slot stays taken, the other host waits.
    assert_eq!(lock["used"], 1, "{lock}");
    let (status, answer) = zincati(&base, "pre-reboot", "10.0.5.2", "prod").await;
    assert_eq!(
        (status, answer["kind"].as_str()),
        (409, Some("failed_lock_semaphore_full"))
    );
    // Reported once: one audit entry by the system, a count, a log line.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let entries = stale_entries(&s).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(
        (
            e["user"].as_str(),
            e["role"].as_str(),
            e["name"].as_str(),
            e["method"].as_str()
        ),
        (
            Some("commissaire"),
            Some("system"),
            Some("prod/10.0.5.1"),
            Some("PUT")
        )
    );
    assert!(
        e["detail"]
            .as_str()
            .unwrap()
            .starts_with("stale FleetLock holder kept: held for"),
        "{e}"
    );
    assert!(metric("commissaire_lock_stale_total{action=\"kept\"}") >= 1.0);
    // The operator's release gives the slot to the host that waits.
    let (status, lock) = s.delete("/api/v0/cluster/prod/lock/holders/10.0.5.1").await;
    assert_eq!((status, lock["used"].as_u64()), (200, Some(0)), "{lock}");
    assert_eq!(
        zincati(&base, "pre-reboot", "10.0.5.2", "prod").await.0,
        200
    );
}

#[tokio::test]
async fn with_the_release_policy_a_holder_whose_host_stays_down_gives_its_slot_back() {
    let s = stack_judging_stale(0.0, 1.0, "release").await;
    cluster_of(&s, "prod", &["10.0.6.1", "10.0.6.2"]).await;
    let base = base_with(&s, "a:a");
    assert_eq!(
        zincati(&base, "pre-reboot", "10.0.6.1", "prod").await.0,
        200
    );
    // Held for long but up: never stale by time here (0 = never).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, lock) = s.get("/api/v0/cluster/prod/lock").await;
    assert_eq!(lock["holders"][0]["stale"], Value::Null, "{lock}");
    // The watcher marks the host failed: remembered as down, then, down
    // longer than a reboot may take, stale and released.
    s.set_host_status("10.0.6.1", "failed").await;
    let lock = wait_lock(&s, "prod", "the host is seen down", |l| {
        l["holders"][0]["down_since"].is_string() || l["used"] == 0
    })
    .await;
    if lock["used"] == 1 {
        assert_eq!(
            lock["holders"][0]["stale"],
            Value::Null,
            "not stale at once: {lock}"
        );
    }
    wait_lock(&s, "prod", "the stale holder is released", |l| {
        l["used"] == 0
    })
    .await;
    let entries = stale_entries(&s).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["method"], "DELETE", "{entries:?}");
    let detail = entries[0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("stale FleetLock holder released: host 10.0.6.1 down for "),
        "{detail}"
    );
    assert!(metric("commissaire_lock_stale_total{action=\"released\"}") >= 1.0);
    assert_eq!(
        zincati(&base, "pre-reboot", "10.0.6.2", "prod").await.0,
        200
    );
    // Zincati's steady-state from the released host, once back, is a 200.
    assert_eq!(
        zincati(&base, "steady-state", "10.0.6.1", "prod").await.0,
        200
    );
}

#[tokio::test]
async fn bad_requests_get_the_protocols_error_naming_what_is_wrong() {
    let s = Stack::start().await;
    cluster_of(&s, "prod", &["10.0.4.1"]).await;
    let client = reqwest::Client::new();
    let url = base_with(&s, "a:a") + "v1/pre-reboot";
    let good = json!({"client_params": {"id": "10.0.4.1", "group": "prod"}}).to_string();
    let cases: Vec<(Option<&str>, String, u16, &str)> = vec![
        (None, good.clone(), 400, "missing_protocol_header"),
        (Some("false"), good.clone(), 400, "missing_protocol_header"),
        (Some("true"), "{".into(), 400, "bad_request"),
        (
            Some("true"),
            r#"{"client_params": {"id": "x"}}"#.into(),
            400,
            "bad_request",
        ),
        (
            Some("true"),
            r#"{"client_params": {"id": "x", "group": "no/such"}}"#.into(),
            400,
            "bad_request",
        ),
        (
            Some("true"),
            r#"{"client_params": {"id": "x", "group": "nowhere"}}"#.into(),
            404,
            "unknown_group",
        ),
        (
            Some("true"),
            r#"{"client_params": {"id": "x", "group": "prod"}}"#.into(),
            404,
            "unknown_host",
        ),
    ];
    for (header, body, status, kind) in cases {
        let mut request = client.post(&url).body(body.clone());
        if let Some(h) = header {
            request = request.header("fleet-lock-protocol", h);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{header:?} {body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["kind"], kind, "{header:?} {body}: {answer}");
        assert!(
            answer["value"].as_str().is_some_and(|v| !v.is_empty()),
            "{answer}"
        );
    }
    // Only POST.
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["kind"], "bad_request");
}
