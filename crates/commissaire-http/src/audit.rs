//! The audit trail's writer: every `PUT` and `DELETE` of `/api/v0` (every
//! change: records, cluster operations and their pause/resume/cancel, host
//! keys), refused ones too, becomes an [`AuditEntry`] in storage with who
//! (user, role), when, from where (peer, request id), what (method, path,
//! kind, names) and the outcome (status, error). A change that was made is
//! written before its answer leaves; a refused or failed one right after
//! (its answer does not wait on a storage outage that caused it). The newest
//! [`AUDIT_KEEP`] entries are kept. Read: `GET /api/v0/audit`.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use commissaire_models::AuditEntry;

use crate::auth::Identity;
use crate::peer::PeerInfo;
use crate::routes::AppState;

/// How many entries are kept (the oldest beyond are deleted).
pub const AUDIT_KEEP: usize = 10_000;

/// Every this many entries written, the oldest beyond [`AUDIT_KEEP`] go.
pub const PRUNE_EVERY: u64 = 100;

/// The largest error body read back for an entry.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Counts the entries this server wrote (for pruning).
#[derive(Debug, Default)]
pub struct AuditCounter(AtomicU64);

/// The layer: see the module documentation.
pub async fn audit(State(s): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let path = request.uri().path().to_string();
    let (kind, name) = kind_and_name(&route, &path);
    let (user, role) = match request.extensions().get::<Identity>() {
        Some(i) => (i.user.clone(), i.role.to_string()),
        None => (crate::auth::ANONYMOUS_USER.to_string(), "admin".to_string()),
    };
    let peer = request
        .extensions()
        .get::<PeerInfo>()
        .map(|p| p.addr.to_string())
        .unwrap_or_default();
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status();
    let (response, error) = if status.is_success() {
        (response, String::new())
    } else {
        error_of(response).await
    };
    let at = commissaire_models::now_iso();
    let entry = AuditEntry {
        id: entry_id(&at),
        at,
        user,
        role,
        peer,
        request_id: commissaire_bus::request_id::current().unwrap_or_default(),
        method,
        path,
        kind,
        name,
        status: status.as_u16(),
        outcome: match status.as_u16() {
            200..=299 => "ok",
            403 => "refused",
            _ => "failed",
        }
        .into(),
        error,
        ..AuditEntry::default()
    };
    // A change that happened is recorded before its answer leaves. A
    // refusal or a failure (a 503 while storage is down) is recorded in the
    // background: its answer must not wait for the storage that failed it.
    if status.is_success() {
        write_entry(&s.api, &entry).await;
    } else {
        let api = s.api.clone();
        tokio::spawn(async move { write_entry(&api, &entry).await });
    }
    if s.audit.0.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
        let api = s.api.clone();
        tokio::spawn(async move {
            if let Ok(n) = api.prune_audit(AUDIT_KEEP).await
                && n > 0
            {
                tracing::debug!(deleted = n, "audit: pruned the oldest entries");
            }
        });
    }
    response
}

/// A new entry's id for an entry written `at`: `<time>-<random>`, so
/// entries sort as they were written.
pub fn entry_id(at: &str) -> String {
    let stamp: String = at.chars().filter(|c| c.is_ascii_digit()).collect();
    format!(
        "{stamp}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

async fn write_entry(api: &crate::api::Api, entry: &AuditEntry) {
    if let Err(e) = api.record_audit(entry).await {
        tracing::warn!(error = %e, user = %entry.user, method = %entry.method, path = %entry.path,
            status = entry.status, "could not write the audit entry");
    }
}

/// The response again, and its JSON `error` member.
async fn error_of(response: Response) -> (Response, String) {
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, ERROR_BODY_LIMIT).await {
        Ok(bytes) => {
            let error = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_default();
            (Response::from_parts(parts, Body::from(bytes)), error)
        }
        Err(_) => (Response::from_parts(parts, Body::empty()), String::new()),
    }
}

/// The kind (the route's fixed segments after `/api/v0/`, joined by `.`)
/// and the names (its parameters' values, joined by `/`) of a request.
pub fn kind_and_name(route: &str, path: &str) -> (String, String) {
    if route.is_empty() {
        return ("unmatched".into(), String::new());
    }
    let route: Vec<&str> = route.trim_start_matches("/api/v0/").split('/').collect();
    let path: Vec<&str> = path.trim_start_matches("/api/v0/").split('/').collect();
    let (mut kind, mut names) = (Vec::new(), Vec::new());
    for (i, segment) in route.iter().enumerate() {
        if segment.starts_with('{') {
            names.push(path.get(i).copied().unwrap_or_default());
        } else {
            kind.push(*segment);
        }
    }
    (kind.join("."), names.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_names_come_from_the_route() {
        for (route, path, kind, name) in [
            (
                "/api/v0/cluster/{name}",
                "/api/v0/cluster/prod",
                "cluster",
                "prod",
            ),
            (
                "/api/v0/cluster/{name}/restart/pause",
                "/api/v0/cluster/prod/restart/pause",
                "cluster.restart.pause",
                "prod",
            ),
            (
                "/api/v0/cluster/{name}/hosts/{address}",
                "/api/v0/cluster/prod/hosts/10.0.0.1",
                "cluster.hosts",
                "prod/10.0.0.1",
            ),
            (
                "/api/v0/host/{address}/hostkey",
                "/api/v0/host/10.0.0.1/hostkey",
                "host.hostkey",
                "10.0.0.1",
            ),
            (
                "/api/v0/host/{address}/retry",
                "/api/v0/host/10.0.0.1/retry",
                "host.retry",
                "10.0.0.1",
            ),
            ("/api/v0/host", "/api/v0/host", "host", ""),
            ("", "/api/v0/nope", "unmatched", ""),
        ] {
            assert_eq!(
                kind_and_name(route, path),
                (kind.to_string(), name.to_string()),
                "{route}"
            );
        }
    }
}
