//! How to reach etcd, and reading one key over etcd's JSON gateway
//! (`POST /v3/kv/range`), for the configuration loader (`ETCD_MACHINES`)
//! and the server's user list. Nothing else here: the store handler, in
//! `commissaire-storage`, has the gRPC client; the daemons need none.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

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

/// Why etcd could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
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
    /// No endpoint answered.
    #[error("etcd at {endpoints}: {reason}")]
    Unreachable {
        /// Where we tried.
        endpoints: String,
        /// Why the last one failed.
        reason: String,
    },
    /// An endpoint answered, but not with the record (an HTTP error,
    /// refused credentials, a body that is not etcd's).
    #[error("etcd at {endpoint}: {reason}")]
    Answer {
        /// The endpoint.
        endpoint: String,
        /// What it answered.
        reason: String,
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

    /// Whether the settings ask for TLS (a CA or a client certificate).
    pub fn wants_tls(&self) -> bool {
        self.ca_cert.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// The endpoints as base URLs: a bare `host:port` gets `https://` when
    /// TLS is asked for, `http://` otherwise.
    pub fn urls(&self) -> Vec<String> {
        let scheme = if self.wants_tls() { "https" } else { "http" };
        self.endpoints
            .iter()
            .map(|e| {
                let e = e.trim_end_matches('/');
                if e.contains("://") {
                    e.to_string()
                } else {
                    format!("{scheme}://{e}")
                }
            })
            .collect()
    }

    /// Reads a TLS file named in the settings.
    pub fn read_file(path: &PathBuf) -> Result<Vec<u8>, EtcdError> {
        std::fs::read(path).map_err(|source| EtcdError::File {
            path: path.clone(),
            source,
        })
    }

    fn http_client(&self) -> Result<reqwest::Client, EtcdError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10));
        if let Some(ca) = &self.ca_cert {
            let ca = reqwest::Certificate::from_pem(&Self::read_file(ca)?)
                .map_err(|e| EtcdError::Settings(format!("the CA certificate: {e}")))?;
            builder = builder.add_root_certificate(ca);
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let mut pem = Self::read_file(cert)?;
                pem.push(b'\n');
                pem.extend(Self::read_file(key)?);
                let identity = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| EtcdError::Settings(format!("the client certificate: {e}")))?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => {
                return Err(EtcdError::Settings(
                    "a client certificate needs both the certificate and the key".into(),
                ));
            }
        }
        builder
            .build()
            .map_err(|e| EtcdError::Settings(e.to_string()))
    }

    /// The value of `key`, or `None` when there is no such key. Tries each
    /// endpoint in turn until one answers (5 s to connect, 10 s in all
    /// each); authenticates first when a user name and password are set.
    pub async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, EtcdError> {
        if self.endpoints.is_empty() {
            return Err(EtcdError::Settings("no endpoints given".into()));
        }
        let client = self.http_client()?;
        let mut last = String::new();
        for url in self.urls() {
            match self.read_from(&client, &url, key).await {
                Err(EtcdError::Unreachable { reason, .. }) => last = reason,
                other => return other,
            }
        }
        Err(EtcdError::Unreachable {
            endpoints: self.endpoints.join(","),
            reason: last,
        })
    }

    async fn read_from(
        &self,
        client: &reqwest::Client,
        url: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, EtcdError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut request = client
            .post(format!("{url}/v3/kv/range"))
            .json(&json!({"key": b64.encode(key)}));
        if let (Some(name), Some(password)) = (&self.username, &self.password) {
            let token = post(
                client,
                url,
                "auth/authenticate",
                json!({"name": name, "password": password}),
            )
            .await?;
            let token = token["token"].as_str().ok_or_else(|| EtcdError::Answer {
                endpoint: url.to_string(),
                reason: "no token in the authentication answer".into(),
            })?;
            request = request.header("Authorization", token);
        }
        let answer = send(url, request).await?;
        let Some(kv) = answer["kvs"].as_array().and_then(|kvs| kvs.first()) else {
            return Ok(None);
        };
        // etcd leaves out an empty value.
        let value = kv["value"].as_str().unwrap_or_default();
        b64.decode(value).map(Some).map_err(|e| EtcdError::Answer {
            endpoint: url.to_string(),
            reason: format!("the value is not base64: {e}"),
        })
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    path: &str,
    body: Value,
) -> Result<Value, EtcdError> {
    send(url, client.post(format!("{url}/v3/{path}")).json(&body)).await
}

/// Sends a gateway request; a transport failure is
/// [`EtcdError::Unreachable`] (the next endpoint is tried), an HTTP error
/// [`EtcdError::Answer`] with etcd's own message.
async fn send(url: &str, request: reqwest::RequestBuilder) -> Result<Value, EtcdError> {
    let response = request.send().await.map_err(|e| EtcdError::Unreachable {
        endpoints: url.to_string(),
        reason: e.to_string(),
    })?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| EtcdError::Answer {
        endpoint: url.to_string(),
        reason: format!("{status}: not etcd's JSON ({e})"),
    })?;
    if !status.is_success() {
        let message = body["message"]
            .as_str()
            .or(body["error"].as_str())
            .unwrap_or("no message");
        return Err(EtcdError::Answer {
            endpoint: url.to_string(),
            reason: format!("{status}: {message}"),
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_endpoints_get_the_scheme_tls_asks_for() {
        let mut s = EtcdSettings {
            endpoints: vec!["10.0.0.1:2379".into(), "http://10.0.0.2:2379/".into()],
            ..EtcdSettings::default()
        };
        assert_eq!(s.urls(), ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]);
        s.ca_cert = Some("/ca.pem".into());
        assert_eq!(s.urls(), ["https://10.0.0.1:2379", "http://10.0.0.2:2379"]);
    }

    #[tokio::test]
    async fn no_endpoint_answering_is_unreachable_naming_them() {
        let s = EtcdSettings {
            endpoints: vec!["127.0.0.1:9".into(), "127.0.0.1:10".into()],
            ..EtcdSettings::default()
        };
        match s.read("/commissaire/config/x").await {
            Err(EtcdError::Unreachable { endpoints, .. }) => {
                assert_eq!(endpoints, "127.0.0.1:9,127.0.0.1:10")
            }
            other => panic!("{other:?}"),
        }
    }
}
