//! The guards every `/api/v0` request passes: authentication (a plugin
//! allows it, else 403, slowed down after repeated refusals), authorization
//! (the caller's role against the route's), and the JSON answers of a body
//! over the limit or unreadable.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::RequestCredentials;
use crate::error::ApiError;
use crate::extract::User;
use crate::peer::PeerInfo;
use crate::routes::{AppState, MAX_BODY};

/// Lets a request through if an authentication plugin allows it; else 403.
pub async fn authenticate(State(s): State<AppState>, mut request: Request, next: Next) -> Response {
    let fallback_peer = PeerInfo {
        addr: ([0, 0, 0, 0], 0).into(),
        client_cert_cn: None,
    };
    let peer = request
        .extensions()
        .get::<PeerInfo>()
        .cloned()
        .unwrap_or(fallback_peer);
    let credentials = RequestCredentials {
        headers: request.headers(),
        peer: &peer,
        path: request.uri().path(),
    };
    // Only requests that carried credentials are login attempts.
    let carried = request.headers().contains_key(http::header::AUTHORIZATION)
        || peer.client_cert_cn.is_some();
    match s.auth.current().identify(&credentials).await {
        Some(identity) => {
            let user = identity.user.clone();
            request.extensions_mut().insert(identity);
            tracing::debug!(%user, method = %request.method(), path = %request.uri().path(), "authenticated");
            if carried {
                s.throttle.accepted(peer.addr.ip());
            }
            request.extensions_mut().insert(User(user.clone()));
            let mut response = next.run(request).await;
            // For the access log, which wraps everything.
            response.extensions_mut().insert(User(user));
            response
        }
        None => {
            // The user name a Basic header gave, never its password.
            let user = crate::auth::basic_credentials(request.headers())
                .map(|(user, _)| user)
                .unwrap_or_default();
            let (refusals, delay) = if carried {
                s.throttle.refused(peer.addr.ip())
            } else {
                (0, std::time::Duration::ZERO)
            };
            metrics::counter!(commissaire_service::metrics::names::AUTH_FAILURES).increment(1);
            tracing::info!(peer = %peer.addr, %user, refusals, delay_ms = delay.as_millis() as u64,
                method = %request.method(), path = %request.uri().path(), "authentication denied");
            tokio::time::sleep(delay).await;
            ApiError::forbidden().into_response()
        }
    }
}

/// Refuses (403, naming the role needed and the caller's) a request its
/// caller's role does not allow ([`crate::auth::roles::required_role`]).
pub async fn authorize(request: Request, next: Next) -> Response {
    use crate::auth::roles::{Role, required_role};
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let needed = required_role(request.method(), &route);
    let (user, role) = match request.extensions().get::<crate::auth::Identity>() {
        Some(i) => (i.user.clone(), i.role),
        None => (crate::auth::ANONYMOUS_USER.to_string(), Role::Admin),
    };
    if role >= needed {
        return next.run(request).await;
    }
    tracing::info!(%user, %role, %needed, method = %request.method(), path = %request.uri().path(), "refused: role");
    forbidden_role(&user, role, needed)
}

/// The 403 of a caller whose role is too weak.
pub fn forbidden_role(
    user: &str,
    role: crate::auth::roles::Role,
    needed: crate::auth::roles::Role,
) -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({
            "error": format!("Forbidden: this needs the {needed} role; '{user}' is {}", with_article(role)),
            "required_role": needed.as_str(),
            "role": role.as_str(),
        })),
    )
        .into_response()
}

fn with_article(role: crate::auth::roles::Role) -> String {
    match role {
        crate::auth::roles::Role::Admin => "an admin".into(),
        crate::auth::roles::Role::Operator => "an operator".into(),
        crate::auth::roles::Role::Viewer => "a viewer".into(),
    }
}

/// Answers 413 with a JSON body when the body limit was hit, and 400 with a
/// JSON body when the body could not be read (e.g. it stopped arriving).
pub async fn body_too_large(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body exceeds {MAX_BODY} bytes"),
        )
        .into_response();
    }
    let json = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::BAD_REQUEST && !json {
        return ApiError::bad_request("the request body could not be read").into_response();
    }
    response
}
