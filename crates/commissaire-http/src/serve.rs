//! Accepting connections (plain or TLS) and handing requests to the router,
//! with the peer's address and verified client certificate name attached.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::peer::PeerInfo;
use crate::routes::trim_trailing_slash;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Builds the server's TLS configuration from `pemfile` (certificate chain
/// and private key in one PEM file, as the original) and, optionally, the CA
/// file that client certificates are verified against. Clients without a
/// certificate are still accepted (other plugins may authenticate them).
pub fn tls_config(
    pemfile: &Path,
    client_verify: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let pem_err = |path: &Path, reason: String| TlsError::Pem {
        path: path.display().to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(pemfile)
        .map_err(|e| pem_err(pemfile, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(pemfile, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_err(pemfile, "no certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_file(pemfile)
        .map_err(|e| pem_err(pemfile, format!("no private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_verify {
        Some(ca_path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca_path)
                .map_err(|e| pem_err(ca_path, e.to_string()))?
            {
                let cert = cert.map_err(|e| pem_err(ca_path, e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| pem_err(ca_path, e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The common name of a certificate's subject.
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(cn)
}

/// The TLS configuration new connections are accepted with; a reload
/// (SIGHUP) replaces it, connections already open keep theirs.
#[derive(Clone)]
pub struct TlsSettings(Arc<std::sync::RwLock<Arc<ServerConfig>>>);

impl TlsSettings {
    /// Connections are accepted with `config`.
    pub fn new(config: Arc<ServerConfig>) -> Self {
        TlsSettings(Arc::new(std::sync::RwLock::new(config)))
    }

    /// New connections are accepted with `config` from now on.
    pub fn replace(&self, config: Arc<ServerConfig>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting, lets each connection finish the request it is answering
/// (idle connections close at once) and returns when all are closed or
/// `grace` has passed (those left are then dropped).
///
/// A client that does not send a whole request head within
/// `header_read_timeout` (a truncated request on an open connection, or an
/// idle keep-alive connection) has its connection closed; one whose body
/// stops arriving for that long gets a 400.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsSettings>,
    header_read_timeout: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
    grace: std::time::Duration,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, addr) = match accepted {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let acceptor = tls.as_ref().map(TlsSettings::acceptor);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            match acceptor {
                None => {
                    let peer = PeerInfo {
                        addr,
                        client_cert_cn: None,
                    };
                    serve_connection(tcp, peer, app, header_read_timeout, watcher).await;
                }
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(tcp),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %addr, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let client_cert_cn = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|certs| certs.first())
                        .and_then(common_name);
                    let peer = PeerInfo {
                        addr,
                        client_cert_cn,
                    };
                    serve_connection(stream, peer, app, header_read_timeout, watcher).await;
                }
            }
        });
    }
    drop(listener);
    tracing::info!("stopped accepting connections; finishing the requests in flight");
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!("every connection is closed"),
        Err(_) => tracing::warn!(
            grace_seconds = grace.as_secs_f64(),
            "requests still in flight at the end of the shutdown timeout are dropped"
        ),
    }
    Ok(())
}

async fn serve_connection<I>(
    io: I,
    peer: PeerInfo,
    app: Router,
    header_read_timeout: std::time::Duration,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            // A body that stops arriving fails the request (400) instead of
            // holding the connection for ever.
            let mut request = trim_trailing_slash(request.map(|body| {
                Body::new(tower_http::timeout::TimeoutBody::new(
                    header_read_timeout,
                    body,
                ))
            }));
            request.extensions_mut().insert(peer.clone());
            app.clone().oneshot(request)
        });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
