//! Monitoring the split stack as an operator would: a real Prometheus
//! (Debian's package) scrapes the server's `/metrics` and the storage
//! daemon's `metrics_listen`, with the alert rules of
//! `docs/examples/commissaire-alerts.yml`; the probes and the metrics
//! follow an etcd outage (the test bed's etcd stopped and started again).
//!
//! Stops the test bed's etcd: holds the crate's [`serial`] lock.

use std::time::{Duration, Instant};

use commissaire_faults::testkit::prometheus::{TestPrometheus, http_get};
use commissaire_faults::*;
use serde_json::{Value, json};

/// The documented alert rules.
const ALERT_RULES: &str = include_str!("../../../docs/examples/commissaire-alerts.yml");

/// A probe's status and JSON body (anonymous: probes need no credentials).
async fn probe(address: &str, path: &str) -> (u16, Value) {
    let (address, path) = (address.to_string(), path.to_string());
    tokio::task::spawn_blocking(move || {
        let (status, body) = http_get(&address, &path).expect("the server answers");
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

/// Polls `f` every 200 ms until it returns `Some`, for up to `within`.
async fn eventually<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_scrapes_the_stack_and_the_probes_follow_an_etcd_outage() {
    let _serial = serial().await;
    let mut stack = stack();
    let storage_metrics = format!("127.0.0.1:{}", testkit::daemons::free_port());
    stack.configure(Daemon::Storage, "metrics_listen", json!(storage_metrics));
    start(&mut stack, &[Daemon::Storage, Daemon::Server]).await;
    let server = stack
        .server_url(0)
        .trim_start_matches("http://")
        .to_string();
    let api = Api::new(&stack);
    assert_eq!(api.put_host("10.8.0.1").await.status, Some(201));

    let prometheus = tokio::task::spawn_blocking({
        let targets = [server.clone(), storage_metrics.clone()];
        move || {
            TestPrometheus::start_job(
                "commissaire-stack",
                &[&targets[0], &targets[1]],
                ALERT_RULES,
            )
        }
    })
    .await
    .unwrap();
    // Both targets scraped, and what each serves arrived.
    eventually(Duration::from_secs(30), "both targets up", || {
        let up = prometheus.query("up");
        (up.len() == 2 && up.iter().all(|(_, v)| *v == 1.0)).then_some(())
    })
    .await;
    eventually(Duration::from_secs(30), "the fleet's gauges", || {
        let new_hosts = prometheus.query(r#"commissaire_hosts{status=~"new|investigating"}"#);
        (new_hosts.iter().map(|(_, v)| v).sum::<f64>() >= 1.0).then_some(())
    })
    .await;
    let storage_calls = prometheus.query(&format!(
        r#"commissaire_service_request_duration_seconds_count{{service="storage",instance="{storage_metrics}"}}"#
    ));
    assert!(
        storage_calls.iter().any(|(_, v)| *v > 0.0),
        "the storage daemon's own /metrics: {storage_calls:?}"
    );
    let by_route = prometheus.query(
        r#"commissaire_http_requests_total{route="/api/v0/host/{address}",method="PUT",status="201"}"#,
    );
    assert_eq!(by_route.len(), 1, "{by_route:?}");
    assert_eq!(prometheus.alert_state("CommissaireDown"), None);

    assert_eq!(probe(&server, "/readyz").await.0, 200);
    let etcd = tokio::task::spawn_blocking(EtcdDown::stop).await.unwrap();
    // Not ready, naming storage; alive all the same.
    let (status, body) = probe(&server, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["bus"], "connected", "{body}");
    assert!(
        body["checks"]["storage"]
            .as_str()
            .is_some_and(|s| s.starts_with("not answering")),
        "{body}"
    );
    let asked = Instant::now();
    assert_eq!(probe(&server, "/healthz").await.0, 200);
    assert!(asked.elapsed() < Duration::from_secs(1), "liveness waited");
    // Prometheus sees storage unreadable: the documented alert is pending
    // (it fires after 5 minutes).
    eventually(
        Duration::from_secs(30),
        "CommissaireStorageUnreadable pending",
        || {
            (prometheus
                .alert_state("CommissaireStorageUnreadable")
                .as_deref()
                == Some("pending"))
            .then_some(())
        },
    )
    .await;

    tokio::task::spawn_blocking(move || etcd.restore())
        .await
        .unwrap();
    let back = Instant::now();
    let mut last = Value::Null;
    let deadline = back + Duration::from_secs(60);
    loop {
        let (status, body) = probe(&server, "/readyz").await;
        if status == 200 {
            break;
        }
        last = body;
        assert!(Instant::now() < deadline, "never ready again: {last}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eventually(Duration::from_secs(30), "the alert cleared", || {
        prometheus
            .alert_state("CommissaireStorageUnreadable")
            .is_none()
            .then_some(())
    })
    .await;
    println!(
        "monitoring: ready again {:?} after etcd was back (last not-ready answer: {last})",
        back.elapsed()
    );
}
