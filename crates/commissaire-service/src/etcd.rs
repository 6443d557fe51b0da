//! Connecting to etcd, shared by the configuration loader and the etcd store handler.

use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

/// How to reach an etcd cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdSettings {
    /// Endpoint URLs (`http://127.0.0.1:2379`) or `host:port`s.
    pub endpoints: Vec<String>,
    /// CA certificate (PEM) to check the servers with.
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM).
    pub cert: Option<PathBuf>,
    /// Client key (PEM).
    pub key: Option<PathBuf>,
    /// User name for etcd authentication.
    pub username: Option<String>,
    /// Password for etcd authentication.
    pub password: Option<String>,
}

/// Why etcd could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum EtcdConnectError {
    /// A TLS file could not be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The settings do not make sense.
    #[error("invalid etcd settings: {0}")]
    Settings(String),
    /// The client failed.
    #[error("etcd at {endpoints}: {source}")]
    Client {
        /// Where we tried.
        endpoints: String,
        /// Why it failed.
        source: etcd_client::Error,
    },
}

impl EtcdSettings {
    /// Settings from the documented environment variables (`ETCD_MACHINES`,
    /// `ETCD_TLSPEM`, `ETCD_TLSKEY`, `ETCD_CACERT`, `ETCD_USERNAME`,
    /// `ETCD_PASSWORD`); `None` when `ETCD_MACHINES` is unset or empty.
    pub fn from_env() -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let machines = var("ETCD_MACHINES")?;
        Some(EtcdSettings {
            endpoints: machines
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            cert: var("ETCD_TLSPEM").map(PathBuf::from),
            key: var("ETCD_TLSKEY").map(PathBuf::from),
            ca_cert: var("ETCD_CACERT").map(PathBuf::from),
            username: var("ETCD_USERNAME"),
            password: var("ETCD_PASSWORD"),
        })
    }

    /// Connects (with a 5 s connect timeout and 10 s request timeout).
    pub async fn connect(&self) -> Result<Client, EtcdConnectError> {
        if self.endpoints.is_empty() {
            return Err(EtcdConnectError::Settings("no endpoints given".into()));
        }
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|source| EtcdConnectError::File {
                path: path.clone(),
                source,
            })
        };
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(10));
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            options = options.with_user(user.clone(), password.clone());
        }
        let wants_tls = self.ca_cert.is_some() || self.cert.is_some() || self.key.is_some();
        if wants_tls {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &self.ca_cert {
                tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
            }
            match (&self.cert, &self.key) {
                (Some(cert), Some(key)) => {
                    tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?))
                }
                (None, None) => {}
                _ => {
                    return Err(EtcdConnectError::Settings(
                        "a client certificate needs both the certificate and the key".into(),
                    ));
                }
            }
            options = options.with_tls(tls);
        }
        let endpoints = self.endpoints.join(",");
        Client::connect(&self.endpoints, Some(options))
            .await
            .map_err(|source| EtcdConnectError::Client { endpoints, source })
    }
}
