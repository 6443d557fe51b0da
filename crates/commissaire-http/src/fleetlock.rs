//! The FleetLock protocol (coreos/zincati `docs/development/fleetlock`),
//! served under a configurable prefix (`/fleetlock` by default):
//! `POST {prefix}/v1/pre-reboot` takes a reboot slot of the cluster named
//! by the client's `group`, `POST {prefix}/v1/steady-state` gives it back.
//! Bodies are `{"client_params": {"id": ID, "group": GROUP}}`, the header
//! `fleet-lock-protocol: true` is required, success is a 200, and every
//! error is the protocol's `{"kind": KIND, "value": MESSAGE}` with a
//! bounded set of kinds.
//!
//! Authentication: the server's plugins (a user with at least the
//! operator role), or HTTP Basic with the cluster's FleetLock token as the
//! password (`PUT /api/v0/cluster/{name}/lock/token`; Zincati sends the
//! user and password of its `base_url`).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use commissaire_reboot_lock::{StalePolicy, StaleRules};
use serde_json::{Value, json};

use crate::api::lock::FleetLockAnswer;
use crate::auth::RequestCredentials;
use crate::auth::roles::Role;
use crate::peer::PeerInfo;
use crate::routes::AppState;

/// The server file's `fleetlock` member.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetLockSettings {
    /// Where the endpoints are (`{prefix}/v1/pre-reboot`); `""` serves none.
    pub prefix: String,
    /// How long a pre-reboot waits for its node's drain, and a
    /// steady-state for the node to be Ready, before answering "not yet"
    /// (the client asks again).
    pub drain_wait_seconds: f64,
    /// A FleetLock holder holding longer than this is stale (0: never).
    pub stale_after_seconds: f64,
    /// A FleetLock holder whose host the watcher has seen down (status
    /// `failed`) longer than this is stale (0: never); longer than a
    /// reboot takes.
    pub down_after_seconds: f64,
    /// What happens to a stale holder: `keep` (reported, the slot kept:
    /// the safe default) or `release` (reported, the slot given back).
    pub stale_policy: StalePolicy,
    /// How often the server looks for stale holders.
    pub scan_seconds: f64,
}

impl Default for FleetLockSettings {
    fn default() -> Self {
        FleetLockSettings {
            prefix: "/fleetlock".into(),
            drain_wait_seconds: 30.0,
            stale_after_seconds: 3600.0,
            down_after_seconds: 600.0,
            stale_policy: StalePolicy::Keep,
            scan_seconds: 30.0,
        }
    }
}

impl FleetLockSettings {
    /// Checks the values; the error says which is wrong.
    pub fn check(&self) -> Result<(), String> {
        let p = &self.prefix;
        if !p.is_empty()
            && (!p.starts_with('/')
                || p.ends_with('/')
                || p.starts_with("/api/")
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.')))
        {
            return Err(format!(
                "prefix '{p}' must be empty or a path like /fleetlock (no trailing slash, not under /api/)"
            ));
        }
        if !(self.drain_wait_seconds > 0.0 && self.drain_wait_seconds <= 3600.0) {
            return Err("drain_wait_seconds must be more than 0 and at most 3600".into());
        }
        for (name, value) in [
            ("stale_after_seconds", self.stale_after_seconds),
            ("down_after_seconds", self.down_after_seconds),
        ] {
            if !(value.is_finite() && (0.0..=31_536_000.0).contains(&value)) {
                return Err(format!(
                    "{name} must be 0 (never) or a number of seconds up to a year"
                ));
            }
        }
        if !(self.scan_seconds >= 0.1 && self.scan_seconds <= 3600.0) {
            return Err("scan_seconds must be at least 0.1 and at most 3600".into());
        }
        Ok(())
    }

    /// When a holder is stale, from the `*_after_seconds` (0: never).
    pub fn stale_rules(&self) -> StaleRules {
        let limit = |s: f64| (s > 0.0).then(|| Duration::from_secs_f64(s));
        StaleRules {
            held_longer_than: limit(self.stale_after_seconds),
            down_longer_than: limit(self.down_after_seconds),
        }
    }

    /// [`FleetLockSettings::scan_seconds`] as a duration.
    pub fn scan_interval(&self) -> Duration {
        Duration::from_secs_f64(self.scan_seconds)
    }

    /// [`FleetLockSettings::drain_wait_seconds`] as a duration.
    pub fn drain_wait(&self) -> Duration {
        Duration::from_secs_f64(self.drain_wait_seconds)
    }
}

/// The header every request must carry, with the value `true`.
pub const PROTOCOL_HEADER: &str = "fleet-lock-protocol";

/// A protocol error: its status, kind and description.
#[derive(Debug)]
struct ProtocolError {
    status: StatusCode,
    kind: &'static str,
    value: String,
}

impl IntoResponse for ProtocolError {
    fn into_response(self) -> Response {
        metrics::counter!(commissaire_service::metrics::names::FLEETLOCK_REQUESTS,
            "outcome" => self.kind)
        .increment(1);
        (
            self.status,
            Json(json!({"kind": self.kind, "value": self.value})),
        )
            .into_response()
    }
}

fn error(status: StatusCode, kind: &'static str, value: impl Into<String>) -> ProtocolError {
    ProtocolError {
        status,
        kind,
        value: value.into(),
    }
}

/// The routes, under `prefix` (no trailing slash), and how long an answer
/// waits for a drain (or a node's readiness) before saying "not yet".
pub fn router(prefix: &str, drain_wait: Duration) -> Router<AppState> {
    let pre = move |s: State<AppState>, r: Request| handle(s, r, Endpoint::PreReboot, drain_wait);
    let steady =
        move |s: State<AppState>, r: Request| handle(s, r, Endpoint::SteadyState, drain_wait);
    Router::new()
        .route(&format!("{prefix}/v1/pre-reboot"), post(pre))
        .route(&format!("{prefix}/v1/steady-state"), post(steady))
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "bad_request",
                "FleetLock requests are POSTs",
            )
        })
}

#[derive(Clone, Copy)]
enum Endpoint {
    PreReboot,
    SteadyState,
}

/// The client's `(id, group)` from a protocol body.
fn client_params(body: &[u8]) -> Result<(String, String), ProtocolError> {
    let bad = |why: &str| {
        error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{why}; the body is {{\"client_params\": {{\"id\": ID, \"group\": GROUP}}}}"),
        )
    };
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(&format!("the body is not JSON ({e})")))?;
    let params = value
        .get("client_params")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("client_params (an object) is missing"))?;
    let member = |name: &str| {
        params
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                bad(&format!(
                    "client_params.{name} (a non-empty string) is missing"
                ))
            })
    };
    // Zincati before 0.0.6 sent the id as `node_uuid`.
    let id = match member("id") {
        Ok(id) => id,
        Err(e) => member("node_uuid").map_err(|_| e)?,
    };
    let group = member("group")?;
    if id.len() > 253 || id.chars().any(char::is_control) {
        return Err(bad("client_params.id is not a client id"));
    }
    if group.len() > 253
        || !group
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(bad("client_params.group must match ^[a-zA-Z0-9._-]+$"));
    }
    Ok((id, group))
}

/// Whether the request may act on `group`: a user of the server's plugins
/// with the operator role, or the group's FleetLock token.
async fn allowed(
    s: &AppState,
    headers: &HeaderMap,
    peer: &PeerInfo,
    path: &str,
    group: &str,
) -> bool {
    let credentials = RequestCredentials {
        headers,
        peer,
        path,
    };
    if let Some(identity) = s.auth.current().identify(&credentials).await
        && identity.role >= Role::Operator
    {
        return true;
    }
    match crate::auth::basic_credentials(headers) {
        Some((_, token)) => s.api.lock_token_matches(group, &token).await,
        None => false,
    }
}

async fn handle(
    State(s): State<AppState>,
    request: Request,
    endpoint: Endpoint,
    drain_wait: Duration,
) -> Response {
    let (parts, body) = request.into_parts();
    if parts
        .headers
        .get(PROTOCOL_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| !v.trim().eq_ignore_ascii_case("true"))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "missing_protocol_header",
            format!("FleetLock requests carry the header '{PROTOCOL_HEADER}: true'"),
        )
        .into_response();
    }
    let body = match axum::body::to_bytes(body, crate::routes::MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "bad_request",
                format!(
                    "the body could not be read, or exceeds {} bytes",
                    crate::routes::MAX_BODY
                ),
            )
            .into_response();
        }
    };
    let (id, group) = match client_params(&body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let peer = parts
        .extensions
        .get::<PeerInfo>()
        .cloned()
        .unwrap_or(PeerInfo {
            addr: ([0, 0, 0, 0], 0).into(),
            client_cert_cn: None,
        });
    if !allowed(&s, &parts.headers, &peer, parts.uri.path(), &group).await {
        tracing::info!(peer = %peer.addr, %group, "FleetLock request refused: no credentials it accepts");
        return error(
            StatusCode::FORBIDDEN,
            "unauthorized",
            format!("this needs an operator's credentials, or cluster '{group}''s FleetLock token as the password"),
        )
        .into_response();
    }
    let address = crate::api::peer_address(peer.addr.ip());
    let answer = match endpoint {
        Endpoint::PreReboot => {
            s.api
                .fleetlock_pre_reboot(&group, &id, &address, drain_wait)
                .await
        }
        Endpoint::SteadyState => s.api.fleetlock_steady_state(&group, &id, drain_wait).await,
    };
    match answer {
        FleetLockAnswer::Done(why) => {
            metrics::counter!(commissaire_service::metrics::names::FLEETLOCK_REQUESTS,
                "outcome" => "ok")
            .increment(1);
            (StatusCode::OK, Json(json!({"kind": "ok", "value": why}))).into_response()
        }
        FleetLockAnswer::NotYet { kind, why } => {
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                kind,
                format!("{why}; ask again"),
            )
            .into_response();
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("5"),
            );
            response
        }
        FleetLockAnswer::Refused { status, kind, why } => error(status, kind, why).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_params_name_what_is_wrong() {
        assert_eq!(
            client_params(br#"{"client_params": {"id": "n1", "group": "prod"}}"#).unwrap(),
            ("n1".to_string(), "prod".to_string())
        );
        assert_eq!(
            client_params(br#"{"client_params": {"node_uuid": "n1", "group": "prod"}}"#).unwrap(),
            ("n1".to_string(), "prod".to_string())
        );
        for (body, says) in [
            (&b"nope"[..], "not JSON"),
            (br#"{}"#, "client_params (an object)"),
            (
                br#"{"client_params": {"group": "prod"}}"#,
                "client_params.id",
            ),
            (
                br#"{"client_params": {"id": "n1", "group": ""}}"#,
                "client_params.group",
            ),
            (
                br#"{"client_params": {"id": "n1", "group": "a b"}}"#,
                "must match",
            ),
        ] {
            let e = client_params(body).err().unwrap();
            assert_eq!((e.status, e.kind), (StatusCode::BAD_REQUEST, "bad_request"));
            assert!(e.value.contains(says), "{}: {}", says, e.value);
        }
    }
}
