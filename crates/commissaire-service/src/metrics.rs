//! Prometheus metrics: one recorder per process (the `metrics` facade with
//! its Prometheus exporter), the names every binary records under, and the
//! `/metrics` listener a daemon serves when given `metrics_listen`.
//!
//! Every binary calls [`install`] at start; code anywhere records with the
//! `metrics` macros under the names in [`names`]; [`render`] gives the
//! exposition text. The server serves it at its metrics path; a daemon on
//! its `metrics_listen` address ([`serve`]); the all-in-one, whose daemons
//! share its process, at the server's.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The metric names, documented in `docs/operations.md` ("Monitoring").
pub mod names {
    /// Counter: HTTP requests answered, by `route` (the matched path
    /// pattern, e.g. `/api/v0/cluster/{name}`; `unmatched` for unknown
    /// paths), `method` and `status`.
    pub const HTTP_REQUESTS: &str = "commissaire_http_requests_total";
    /// Histogram: seconds to answer an HTTP request, by `route` and `method`.
    pub const HTTP_REQUEST_SECONDS: &str = "commissaire_http_request_duration_seconds";
    /// Histogram: seconds a JSON-RPC call on the bus took to be answered
    /// (the round trip), by `routing_key` and `outcome` (`ok`, `error`,
    /// `timeout`, `unavailable`).
    pub const BUS_REQUEST_SECONDS: &str = commissaire_bus::BUS_REQUEST_SECONDS;
    /// Histogram: seconds a service took to handle one bus message, by
    /// `service` and `method` (the storage service's are the storage calls'
    /// latency, etcd or the embedded store included).
    pub const SERVICE_REQUEST_SECONDS: &str = "commissaire_service_request_duration_seconds";
    /// Gauge: hosts by `status` (read from storage by the server every
    /// 10 s).
    pub const HOSTS: &str = "commissaire_hosts";
    /// Gauge: cluster operation records by `operation` (`restart`,
    /// `upgrade`, `deploy`) and `status` (read every 10 s).
    pub const OPERATIONS: &str = "commissaire_operations";
    /// Gauge: 1 when the last reading of hosts and operations from
    /// storage worked, 0 when it did not (the two gauges above then keep
    /// the values of the last reading that did).
    pub const STORAGE_UP: &str = "commissaire_storage_up";
    /// Counter: hosts a rolling operation finished, by `operation` and
    /// `result` (`done`, `failed`).
    pub const HOSTS_ROLLED: &str = "commissaire_hosts_rolled_total";
    /// Counter: health gates that failed after a host, by `gate`
    /// (`node_ready`, `command`, `prometheus`).
    pub const GATE_FAILURES: &str = "commissaire_gate_failures_total";
    /// Counter: host checks the watcher made, by `result` (`active`,
    /// `failed`).
    pub const WATCHER_CHECKS: &str = "commissaire_watcher_checks_total";
    /// Histogram: seconds one watcher check took.
    pub const WATCHER_CHECK_SECONDS: &str = "commissaire_watcher_check_duration_seconds";
    /// Counter: playbook runs, by `playbook` (its file name) and `result`
    /// (`ok`, `failed`, `unreachable`, `error`).
    pub const PLAYBOOK_RUNS: &str = "commissaire_playbook_runs_total";
    /// Histogram: seconds a playbook run took, by `playbook`.
    pub const PLAYBOOK_SECONDS: &str = "commissaire_playbook_duration_seconds";
    /// Counter: requests refused by authentication (credentials given and
    /// refused, or none given where they are required).
    pub const AUTH_FAILURES: &str = "commissaire_auth_failures_total";
    /// FleetLock requests answered, by `outcome` (`ok`, or the protocol
    /// error's kind: a bounded set).
    pub const FLEETLOCK_REQUESTS: &str = "commissaire_fleetlock_requests_total";
    /// Gauge: FleetLock holders of every cluster's reboot lock found stale
    /// at the server's last scan and still holding (policy `keep`).
    pub const LOCK_STALE_HOLDERS: &str = "commissaire_lock_stale_holders";
    /// Counter: FleetLock holders found stale, by `action` (`kept` or
    /// `released`, as the policy says).
    pub const LOCK_STALE: &str = "commissaire_lock_stale_total";
    /// Gauge, always 1: the build, by `version` and `commit`.
    pub const BUILD_INFO: &str = "commissaire_build_info";
}

/// Histogram buckets (seconds) for every `*_seconds` metric: from a
/// millisecond (a cached GET) to half an hour (a playbook run).
pub const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 1800.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs this process's recorder (once; later calls return the same
/// handle). Metrics recorded before it are lost, so binaries call it first.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .expect("the buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder already installed (a test harness's) keeps its
        // place; this handle then renders what it alone saw (nothing).
        let _ = metrics::set_global_recorder(recorder);
        describe();
        metrics::gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "commit" => crate::GIT_COMMIT)
            .set(1.0);
        handle
    })
}

/// The `# HELP` line of every metric.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    use names::*;
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route pattern, method and status."
    );
    describe_histogram!(
        HTTP_REQUEST_SECONDS,
        Unit::Seconds,
        "Time to answer an HTTP request, by route pattern and method."
    );
    describe_histogram!(
        BUS_REQUEST_SECONDS,
        Unit::Seconds,
        "Round trip of a JSON-RPC call on the bus, by routing key and outcome."
    );
    describe_histogram!(
        SERVICE_REQUEST_SECONDS,
        Unit::Seconds,
        "Time a service took to handle a bus message, by service and method."
    );
    describe_gauge!(HOSTS, "Hosts by status, read from storage every 10 s.");
    describe_gauge!(
        OPERATIONS,
        "Cluster operation records by operation and status, read from storage every 10 s."
    );
    describe_gauge!(
        STORAGE_UP,
        "1 if the last scrape could read the fleet from storage, else 0."
    );
    describe_counter!(
        HOSTS_ROLLED,
        "Hosts a rolling operation finished, by operation and result."
    );
    describe_counter!(
        GATE_FAILURES,
        "Health gates that failed after a host, by gate."
    );
    describe_counter!(WATCHER_CHECKS, "Host checks the watcher made, by result.");
    describe_histogram!(
        WATCHER_CHECK_SECONDS,
        Unit::Seconds,
        "Time one watcher check took."
    );
    describe_counter!(PLAYBOOK_RUNS, "Playbook runs, by playbook and result.");
    describe_histogram!(
        PLAYBOOK_SECONDS,
        Unit::Seconds,
        "Time a playbook run took, by playbook."
    );
    describe_counter!(AUTH_FAILURES, "Requests refused by authentication.");
    describe_counter!(
        FLEETLOCK_REQUESTS,
        "FleetLock requests answered, by outcome (ok or the error kind)."
    );
    describe_gauge!(BUILD_INFO, "Always 1: the build's version and git commit.");
}

/// The exposition text of every metric recorded in this process.
pub fn render() -> String {
    let handle = install();
    handle.run_upkeep();
    handle.render()
}

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves [`render`] at `GET /metrics` on `listener` (a daemon's
/// `metrics_listen`), until the task is dropped; other paths get 404.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(|| async { ([(http::header::CONTENT_TYPE, CONTENT_TYPE)], render()) }),
    );
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_metrics_are_rendered_with_histogram_buckets() {
        install();
        metrics::counter!(names::AUTH_FAILURES).increment(2);
        metrics::histogram!(names::WATCHER_CHECK_SECONDS).record(0.02);
        let text = render();
        assert!(text.contains("commissaire_auth_failures_total 2"), "{text}");
        assert!(
            text.contains("commissaire_watcher_check_duration_seconds_bucket{le=\"0.025\"} 1"),
            "{text}"
        );
        assert!(text.contains("commissaire_build_info{"), "{text}");
    }

    #[test]
    fn names_recorded_in_other_crates_are_the_documented_ones() {
        assert_eq!(names::PLAYBOOK_RUNS, commissaire_ansible::PLAYBOOK_RUNS);
        assert_eq!(
            names::PLAYBOOK_SECONDS,
            commissaire_ansible::PLAYBOOK_SECONDS
        );
        assert_eq!(
            names::BUS_REQUEST_SECONDS,
            commissaire_bus::BUS_REQUEST_SECONDS
        );
    }
}
