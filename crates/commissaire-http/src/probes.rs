//! The endpoints a supervisor or a load balancer asks without credentials:
//! liveness (`/healthz`), readiness (`/readyz`), the build (`/version`);
//! their paths ([`ProbePaths`], server file member `probes`), and the
//! start-up gate that answers API requests 503 until the server is ready.

use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use crate::api::StorageState;
use crate::error::ApiError;
use crate::routes::AppState;

/// How long `/readyz` waits for storage's answer.
pub const READY_STORAGE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an API request that arrives before the server is ready waits
/// for it before being answered 503.
pub const STARTUP_PATIENCE: Duration = Duration::from_secs(2);

/// Where the unauthenticated endpoints are served (server file member
/// `probes`: `{"health": "/healthz", "ready": "/readyz", "version":
/// "/version", "metrics": "/metrics"}`; a member given as `null` turns
/// that endpoint off; one left out keeps its default).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProbePaths {
    /// Liveness: 200 while the process serves HTTP.
    pub health: Option<String>,
    /// Readiness: 200 when the bus is connected, storage answers and the
    /// default network exists; else 503 naming what is not.
    pub ready: Option<String>,
    /// The build: version and git commit.
    pub version: Option<String>,
    /// Prometheus metrics.
    pub metrics: Option<String>,
}

impl Default for ProbePaths {
    fn default() -> Self {
        ProbePaths {
            health: Some("/healthz".into()),
            ready: Some("/readyz".into()),
            version: Some("/version".into()),
            metrics: Some("/metrics".into()),
        }
    }
}

impl ProbePaths {
    /// Every path begins with `/`, is outside `/api/`, holds no `{`, and
    /// no two are the same.
    pub fn check(&self) -> Result<(), String> {
        let mut seen = Vec::new();
        for (member, path) in self.all() {
            let Some(path) = path else { continue };
            if !path.starts_with('/') || path.len() < 2 {
                return Err(format!("'{member}' must be a path like /{member}z"));
            }
            if path.starts_with("/api/") || path == "/api" {
                return Err(format!("'{member}' must be outside /api/"));
            }
            if path.contains(['{', '}', '*', '?', '#']) || path.ends_with('/') {
                return Err(format!(
                    "'{member}' must be a plain path (no {{, }}, *, ?, # or trailing /)"
                ));
            }
            if seen.contains(&path) {
                return Err(format!("'{member}' uses {path}, which another probe uses"));
            }
            seen.push(path);
        }
        Ok(())
    }

    /// (member, path) of each endpoint.
    pub fn all(&self) -> [(&'static str, Option<&str>); 4] {
        [
            ("health", self.health.as_deref()),
            ("ready", self.ready.as_deref()),
            ("version", self.version.as_deref()),
            ("metrics", self.metrics.as_deref()),
        ]
    }
}

/// Whether the server has finished starting: the default network is known
/// to exist (created by this server or found). Set once, never cleared:
/// later storage outages are answered per request (503) and by `/readyz`.
#[derive(Debug)]
pub struct Startup {
    started: watch::Sender<bool>,
}

impl Default for Startup {
    fn default() -> Self {
        Startup {
            started: watch::Sender::new(false),
        }
    }
}

impl Startup {
    /// The server is ready.
    pub fn mark_started(&self) {
        self.started.send_replace(true);
    }

    /// Whether the server is ready.
    pub fn is_started(&self) -> bool {
        *self.started.borrow()
    }

    /// Waits up to `patience` for the server to be ready; whether it is.
    pub async fn wait(&self, patience: Duration) -> bool {
        let mut rx = self.started.subscribe();
        tokio::time::timeout(patience, rx.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// Liveness: the process answers HTTP.
pub async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// Readiness: the bus, storage, the default network. 200 when all are
/// fine, else 503; the body names each check's state.
pub async fn readyz(State(s): State<AppState>) -> Response {
    let bus = s.api.bus_connected();
    let storage = s.api.storage_state(READY_STORAGE_TIMEOUT).await;
    if storage == StorageState::Ready {
        s.startup.mark_started();
    }
    let (storage_text, network) = match &storage {
        StorageState::Ready => ("answering".to_string(), "present"),
        StorageState::NoDefaultNetwork => ("answering".to_string(), "missing"),
        StorageState::Unavailable(why) => (format!("not answering: {why}"), "unknown"),
    };
    let ready = bus && storage == StorageState::Ready;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready,
        "checks": {
            "bus": if bus { "connected" } else { "disconnected" },
            "storage": storage_text,
            "default_network": network,
        },
    });
    (status, Json(body)).into_response()
}

/// The build: `{"version": "0.1.0", "commit": "<git commit>"}`.
pub async fn version() -> Response {
    Json(json!({
        "version": commissaire_service::VERSION,
        "commit": commissaire_service::GIT_COMMIT,
    }))
    .into_response()
}

/// Answers API requests 503 (with `Retry-After: 1`) while the server is
/// starting, after waiting up to [`STARTUP_PATIENCE`] for it.
pub async fn require_started(State(s): State<AppState>, request: Request, next: Next) -> Response {
    if s.startup.is_started() || s.startup.wait(STARTUP_PATIENCE).await {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is starting: storage has not answered yet; try again",
    )
    .into_response();
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_paths_default_and_are_checked() {
        assert_eq!(ProbePaths::default().check(), Ok(()));
        let off: ProbePaths = serde_json::from_value(json!({"metrics": null})).unwrap();
        assert_eq!(off.metrics, None);
        assert_eq!(off.health.as_deref(), Some("/healthz"));
        for (paths, wrong) in [
            (json!({"health": "healthz"}), "'health' must be a path"),
            (json!({"ready": "/api/v0/ready"}), "outside /api/"),
            (json!({"version": "/v/{x}"}), "plain path"),
            (json!({"metrics": "/healthz"}), "another probe uses"),
        ] {
            let p: ProbePaths = serde_json::from_value(paths).unwrap();
            let e = p.check().unwrap_err();
            assert!(e.contains(wrong), "{e}");
        }
        let typo = serde_json::from_value::<ProbePaths>(json!({"helth": "/h"})).unwrap_err();
        assert!(typo.to_string().contains("unknown field `helth`"), "{typo}");
    }

    #[tokio::test]
    async fn startup_waits_for_the_mark() {
        let s = std::sync::Arc::new(Startup::default());
        assert!(!s.wait(Duration::from_millis(20)).await);
        let marker = s.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            marker.mark_started();
        });
        assert!(s.wait(Duration::from_secs(5)).await);
        assert!(s.is_started());
    }
}
