//! The access log and request ids: one line per request (method, path,
//! status, milliseconds, user, peer, request id; never a header or a body,
//! so never a secret), at info for `/api/v0` and at debug for the probes
//! (a supervisor asks them every few seconds). Each request has an id: the
//! client's `X-Request-Id` when it is a plain one
//! ([`commissaire_bus::request_id::is_valid`]), else a fresh one; it is
//! returned in `X-Request-Id`, carried by every bus call the request makes,
//! and names the `request` span every line logged for it is in.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use commissaire_bus::request_id::{REQUEST_ID, is_valid};
use tracing::Instrument;

use crate::extract::User;
use crate::peer::PeerInfo;

/// The header a request id travels in, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The layer: see the module documentation.
pub async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let peer = request
        .extensions()
        .get::<PeerInfo>()
        .map(|p| p.addr.to_string())
        .unwrap_or_default();
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    let user = response
        .extensions()
        .get::<User>()
        .map(|u| u.0.clone())
        .unwrap_or_default();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let status = response.status().as_u16();
    let ms = (started.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0;
    let _in = span.enter();
    if path.starts_with("/api/") {
        tracing::info!(target: "commissaire_http::access", %method, path, status, ms, user, peer, request_id = %id, "request");
    } else {
        tracing::debug!(target: "commissaire_http::access", %method, path, status, ms, user, peer, request_id = %id, "request");
    }
    response
}
