//! The server's metrics: every request counted and timed by route
//! ([`track`]), the fleet's gauges (hosts by status, operations by status)
//! read from storage every [`FLEET_REFRESH`] ([`refresh_fleet`]), and the
//! scrape endpoint ([`scrape`]), which answers at once whatever storage
//! does. Names: [`commissaire_service::metrics::names`].

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use commissaire_service::metrics::{self as m, names};

/// How often the fleet's gauges are read from storage.
pub const FLEET_REFRESH: Duration = Duration::from_secs(10);

/// How long a refresh waits for each storage call.
pub const FLEET_STORAGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Counts and times each request under its route's pattern (not its path,
/// so a fleet of hosts does not make a label per host).
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(names::HTTP_REQUESTS, "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(names::HTTP_REQUEST_SECONDS, "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Reads the fleet from storage and sets its gauges; `commissaire_storage_up`
/// says whether that worked (the gauges keep their values when not).
pub async fn refresh_fleet(api: &crate::api::Api) {
    match api.fleet_counts(FLEET_STORAGE_TIMEOUT).await {
        Ok(counts) => {
            metrics::gauge!(names::STORAGE_UP).set(1.0);
            for (status, n) in counts.hosts {
                metrics::gauge!(names::HOSTS, "status" => status).set(n as f64);
            }
            for ((operation, status), n) in counts.operations {
                metrics::gauge!(names::OPERATIONS, "operation" => operation, "status" => status)
                    .set(n as f64);
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "metrics: storage did not answer; fleet gauges left as they were");
            metrics::gauge!(names::STORAGE_UP).set(0.0);
        }
    }
}

/// Calls [`refresh_fleet`] now and every [`FLEET_REFRESH`] after the end
/// of the one before, until the task is aborted.
pub fn spawn_fleet_refresh(api: crate::api::Api) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            refresh_fleet(&api).await;
            tokio::time::sleep(FLEET_REFRESH).await;
        }
    })
}

/// `GET /metrics`: every metric of this process, in Prometheus' text
/// format (the fleet's gauges as of the last refresh).
pub async fn scrape() -> Response {
    ([(http::header::CONTENT_TYPE, m::CONTENT_TYPE)], m::render()).into_response()
}
