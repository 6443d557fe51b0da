//! Who is on the other end of a connection.

use std::net::SocketAddr;

/// Connection facts the server puts in every request's extensions.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The client's address (used by `PUT /api/v0/host` to learn the host's address).
    pub addr: SocketAddr,
    /// The common name of the verified TLS client certificate, if one was presented.
    pub client_cert_cn: Option<String>,
}
