//! The server's metrics: every request counted and timed by route
//! ([`track`]), and the scrape endpoint ([`scrape`]), which adds the
//! fleet's gauges (hosts by status, operations by status) read from
//! storage at the scrape. Names: [`commissaire_service::metrics::names`].

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use commissaire_service::metrics::{self as m, names};

use crate::routes::AppState;

/// How long a scrape waits for each of storage's lists.
pub const SCRAPE_STORAGE_TIMEOUT: Duration = Duration::from_secs(3);

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

/// `GET /metrics`: every metric of this process, in Prometheus' text
/// format, with the fleet's gauges as storage says now.
pub async fn scrape(State(s): State<AppState>) -> Response {
    match s.api.fleet_counts(SCRAPE_STORAGE_TIMEOUT).await {
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
    ([(http::header::CONTENT_TYPE, m::CONTENT_TYPE)], m::render()).into_response()
}
