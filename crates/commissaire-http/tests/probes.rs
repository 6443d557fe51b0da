//! The unauthenticated endpoints: liveness, readiness, version and
//! Prometheus metrics, on the fast tier's stack (the server over the
//! in-process bus, the real storage service on redb). The same probes
//! through an etcd outage of the split stack: `commissaire-faults`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use commissaire_bus::{Bus, InProcessBus};
use commissaire_http::ServerConfig;
use common::{Client, Stack, StackOptions};
use serde_json::{Value, json};

/// GET without credentials: status, JSON body (`null` if not JSON), text.
async fn anonymous(client: &Client, path: &str) -> (u16, Value, String) {
    let resp = client.client.get(client.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

/// The value of the sample `series` (name and labels as rendered) in an
/// exposition text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `promtool check metrics` (Prometheus' own linter) on `text`: its
/// complaints, empty when there are none.
fn promtool_complaints(text: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; scripts/install-deps.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        String::new()
    } else {
        said
    }
}

#[tokio::test]
async fn probes_and_version_answer_without_credentials() {
    let s = Stack::start().await;
    let (status, body, _) = anonymous(&s, "/healthz").await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body, _) = anonymous(&s, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"ready": true, "checks": {
            "bus": "connected", "storage": "answering", "default_network": "present"}})
    );
    let (status, body, _) = anonymous(&s, "/version").await;
    assert_eq!(status, 200);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let commit = body["commit"].as_str().unwrap();
    assert!(
        commit == "unknown"
            || (commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "commit {commit:?}"
    );
    // The API itself still wants credentials; trailing slashes are trimmed.
    assert_eq!(anonymous(&s, "/api/v0/clusters").await.0, 403);
    assert_eq!(anonymous(&s, "/healthz/").await.0, 200);
    assert_eq!(anonymous(&s, "/metricsz").await.0, 403);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_the_fleet_by_status() {
    let s = Stack::start().await;
    for address in ["10.9.0.1", "10.9.0.2"] {
        let (status, body) = s
            .put(
                &format!("/api/v0/host/{address}"),
                json!({"ssh_priv_key": common::KEY, "remote_user": "root"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(s.get("/api/v0/host/10.9.0.1").await.0, 200);
    assert_eq!(s.get("/api/v0/host/10.9.0.3").await.0, 404);
    s.set_host_status("10.9.0.2", "failed").await;
    // The fleet's gauges are read every 10 s; read them now (the global
    // recorder is the server's: same process).
    let api = commissaire_http::api::Api::new(s.bus.clone(), Duration::from_secs(3));
    commissaire_http::metrics::refresh_fleet(&api).await;
    let (status, _, text) = anonymous(&s, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(promtool_complaints(&text), "", "{text}");
    // By route pattern, not by address: one series for every host.
    let series = |method: &str, code: u16| {
        format!(
            "commissaire_http_requests_total{{route=\"/api/v0/host/{{address}}\",method=\"{method}\",status=\"{code}\"}}"
        )
    };
    assert!(sample(&text, &series("PUT", 201)).unwrap() >= 2.0, "{text}");
    assert!(sample(&text, &series("GET", 404)).unwrap() >= 1.0, "{text}");
    assert!(
        !text.contains("10.9.0.1"),
        "a host's address became a label: {text}"
    );
    assert!(
        text.contains("commissaire_http_request_duration_seconds_bucket{route=\"/api/v0/host/{address}\",method=\"GET\",le=\"0.005\"}"),
        "{text}"
    );
    // The fleet, as read from storage (other tests of this
    // binary add hosts of their own, never failed ones at 10.9.0.*).
    assert_eq!(sample(&text, "commissaire_storage_up"), Some(1.0), "{text}");
    assert!(
        sample(&text, "commissaire_hosts{status=\"failed\"}").unwrap() >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "commissaire_hosts{status=\"active\"}").is_some(),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "commissaire_operations{operation=\"restart\",status=\"in_process\"}"
        ),
        Some(0.0),
        "{text}"
    );
    // Every bus round trip and every storage call are timed.
    assert!(
        text.contains("commissaire_bus_request_duration_seconds_count{routing_key=\"storage.save\",outcome=\"ok\"}"),
        "{text}"
    );
    assert!(
        text.contains("commissaire_service_request_duration_seconds_count{service=\"storage\",method=\"list\"}"),
        "{text}"
    );
    assert!(text.contains("commissaire_build_info{version=\""), "{text}");
}

#[tokio::test]
async fn refused_credentials_are_counted() {
    let s = Stack::start_with(StackOptions {
        auth_throttle: Some(commissaire_http::auth::throttle::ThrottleSettings::OFF),
        ..Default::default()
    })
    .await;
    let before = sample(
        &anonymous(&s, "/metrics").await.2,
        "commissaire_auth_failures_total",
    )
    .unwrap_or(0.0);
    for _ in 0..3 {
        let resp = s
            .client
            .get(s.url("/api/v0/clusters"))
            .basic_auth("a", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403);
    }
    let after = sample(
        &anonymous(&s, "/metrics").await.2,
        "commissaire_auth_failures_total",
    )
    .unwrap();
    // Tests of this binary run at once; others may add refusals too.
    assert!(after - before >= 3.0, "before {before}, after {after}");
}

#[tokio::test]
async fn readyz_says_storage_is_not_answering_while_it_is_stopped() {
    let s = Stack::start().await;
    s.storage.stop();
    let (status, body, _) = anonymous(&s, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["checks"]["bus"], "connected");
    assert!(
        body["checks"]["storage"]
            .as_str()
            .unwrap()
            .starts_with("not answering"),
        "{body}"
    );
    assert_eq!(body["checks"]["default_network"], "unknown");
    // Alive all the same.
    assert_eq!(anonymous(&s, "/healthz").await.0, 200);
}

#[tokio::test]
async fn api_requests_get_503_until_storage_first_answers_then_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let bus: Bus = Arc::new(InProcessBus::new());
    let args = StackOptions::default().server_args(dir.path());
    let config = ServerConfig::resolve(&args, "inprocess://").unwrap();
    // The server starts before any storage service.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(format!("http://{}", listener.local_addr().unwrap()));
    let server_bus = bus.clone();
    let server = tokio::spawn(async move {
        commissaire_http::serve_on(listener, config, server_bus)
            .await
            .unwrap();
    });
    let asked = Instant::now();
    let resp = client
        .client
        .get(client.url("/api/v0/clusters"))
        .basic_auth(common::USER, Some(common::PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("the server is starting"),
        "{body}"
    );
    assert!(
        asked.elapsed() >= Duration::from_millis(1900),
        "no patience"
    );
    assert_eq!(anonymous(&client, "/healthz").await.0, 200);
    assert_eq!(anonymous(&client, "/readyz").await.0, 503);
    // Storage comes up: the server creates the default network and serves.
    let router = commissaire_storage::StorageRouter::from_config(Some(&json!([{
        "type": "redb", "path": dir.path().join("store.redb"), "models": ["*"]
    }])))
    .await
    .unwrap();
    let storage = commissaire_storage::start(router, bus.clone(), 2)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = client.get("/api/v0/network/default").await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {status} {body}");
        assert_eq!(status, 503, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(anonymous(&client, "/readyz").await.0, 200);
    server.abort();
    storage.stop();
}

#[tokio::test]
async fn probe_paths_are_configurable_and_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.conf");
    std::fs::write(
        &file,
        json!({"probes": {"health": "/livez", "metrics": null}}).to_string(),
    )
    .unwrap();
    let s = Stack::start_with(StackOptions {
        args: commissaire_http::ServerArgs {
            config_file: Some(file),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    assert_eq!(anonymous(&s, "/livez").await.0, 200);
    assert_eq!(anonymous(&s, "/readyz").await.0, 200);
    // Moved or off: behind authentication like any unknown path.
    assert_eq!(anonymous(&s, "/healthz").await.0, 403);
    assert_eq!(anonymous(&s, "/metrics").await.0, 403);
    assert_eq!(s.get("/metrics").await.0, 404);
}
