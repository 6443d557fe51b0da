//! The development user: `conf/users.json` (the README's first command)
//! lets `a` in with the password `a`. Served on a loopback address that is
//! harmless; on any other address it is a door left open, so the server
//! says so in its log at start.

use std::net::SocketAddr;

use base64::Engine;

use crate::auth::{AuthManager, RequestCredentials};
use crate::peer::PeerInfo;

/// The development user's name and password.
pub const DEVELOPMENT_USER: (&str, &str) = ("a", "a");

/// Whether `auth` lets the development user in.
pub async fn lets_the_development_user_in(auth: &AuthManager) -> bool {
    let (user, password) = DEVELOPMENT_USER;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut headers = http::HeaderMap::new();
    let Ok(value) = http::HeaderValue::from_str(&format!("Basic {token}")) else {
        return false;
    };
    headers.insert(http::header::AUTHORIZATION, value);
    let peer = PeerInfo {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        client_cert_cn: None,
    };
    let credentials = RequestCredentials {
        headers: &headers,
        peer: &peer,
        path: "/api/v0/clusters",
    };
    auth.check(&credentials).await.is_some()
}

/// Logs a warning when the server listens on `addr`, not a loopback
/// address, and `auth` lets the development user in (or has no plugin).
pub async fn warn_if_exposed(addr: SocketAddr, auth: &AuthManager) {
    if addr.ip().is_loopback() {
        tracing::debug!(address = %addr, "development user check: a loopback address");
        return;
    }
    if auth.is_open() {
        tracing::warn!(
            address = %addr,
            "no authentication plugin: anyone who reaches this address may do everything"
        );
        return;
    }
    if !lets_the_development_user_in(auth).await {
        tracing::debug!(address = %addr, "development user check: not let in");
        return;
    }
    tracing::warn!(
        address = %addr,
        user = DEVELOPMENT_USER.0,
        "the development user (a, password a) is let in on an address other hosts can reach: \
         give the server your own users file (docs/configuration.md, httpbasicauth) or listen on \
         127.0.0.1 (--listen-interface)"
    );
}
