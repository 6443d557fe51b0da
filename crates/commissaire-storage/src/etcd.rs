//! The etcd v3 store handler: keys under `/commissaire/`.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use backon::{ConstantBuilder, Retryable};
use commissaire_service::EtcdSettings;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, Identity,
    KvClient, PutOptions, TlsOptions, Txn, TxnOp,
};
use serde_json::Value;

use crate::store::{StoreError, StoreHandler, Written};

/// Records in etcd, one JSON document per key.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    prefix: String,
}

/// Connects the gRPC client of the store handler to `settings`' members
/// (5 s to connect, 10 s per request), with TLS and a user as set.
pub async fn connect(settings: &EtcdSettings) -> Result<Client, String> {
    if settings.endpoints.is_empty() {
        return Err("no etcd endpoints given".into());
    }
    let read = |path| EtcdSettings::read_file(path).map_err(|e| e.to_string());
    let mut options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(10));
    if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
        options = options.with_user(user.clone(), password.clone());
    }
    if settings.wants_tls() {
        let mut tls = TlsOptions::new();
        if let Some(ca) = &settings.ca_cert {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        match (&settings.cert, &settings.key) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?))
            }
            (None, None) => {}
            _ => return Err("a client certificate needs both the certificate and the key".into()),
        }
        options = options.with_tls(tls);
    }
    Client::connect(&settings.endpoints, Some(options))
        .await
        .map_err(|e| format!("etcd at {}: {e}", settings.endpoints.join(",")))
}

fn etcd_error(e: etcd_client::Error) -> StoreError {
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => {
            StoreError::Unavailable(e.to_string())
        }
        etcd_client::Error::GRpcStatus(ref s)
            if matches!(
                s.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
            ) || lost_connection(s) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        other => StoreError::Backend(other.to_string()),
    }
}

/// A call cut by the connection going away (etcd stopped mid-request, or
/// a request sent on a connection that is being re-established). tonic
/// reports it in one of these ways, each an outage, not a store error:
/// * `Unknown` ("transport error") with the transport or I/O error as its
///   source;
/// * `Cancelled` ("operation was canceled: connection was not ready"):
///   hyper's answer to a request sent on a connection that closed; this
///   client never cancels a call itself (a dropped call reports nothing);
/// * `Internal` "h2 protocol error: ..." for a stream the server reset as
///   it went away.
fn lost_connection(status: &tonic::Status) -> bool {
    match status.code() {
        tonic::Code::Unknown if status.message() == "transport error" => return true,
        tonic::Code::Cancelled => return true,
        tonic::Code::Internal if status.message().starts_with("h2 protocol error") => {
            return true;
        }
        _ => {}
    }
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<std::io::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Whether the call failed before it reached etcd: the connection to the
/// member it was sent to could not be made (the member is down). Given
/// several members, the client's balanced channel keeps sending a share of
/// the calls to a dead member's endpoint, each failing at once this way.
/// Such a call was never sent, so sending it again is safe, even a write.
fn never_sent(e: &etcd_client::Error) -> bool {
    let etcd_client::Error::GRpcStatus(status) = e else {
        return false;
    };
    if status.code() != tonic::Code::Unavailable {
        return false;
    }
    if status.message().contains("connect error") {
        return true;
    }
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// How often a call that never reached etcd ([`never_sent`]) is sent
/// again, and the pause between: about a second in all, enough for the
/// balanced channel to pick a live member (or for a restarted one to be
/// back), short enough for the caller's own time limit.
const NEVER_SENT_RETRIES: usize = 20;
const NEVER_SENT_PAUSE: Duration = Duration::from_millis(50);

/// Runs `call` with a KV client, again while it fails before reaching etcd.
async fn with_kv<T, F, Fut>(client: &Client, call: F) -> Result<T, StoreError>
where
    F: Fn(KvClient) -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    (|| call(client.kv_client()))
        .retry(
            ConstantBuilder::default()
                .with_delay(NEVER_SENT_PAUSE)
                .with_max_times(NEVER_SENT_RETRIES),
        )
        .when(never_sent)
        .await
        .map_err(etcd_error)
}

fn decode(key: &[u8], value: &[u8]) -> Result<Value, StoreError> {
    serde_json::from_slice(value).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

impl EtcdStore {
    /// A store using `client`, with keys under `/commissaire/`.
    pub fn new(client: Client) -> Self {
        Self::with_prefix(client, "/commissaire/")
    }

    /// A store with keys under another prefix (tests use one per run).
    pub fn with_prefix(client: Client, prefix: &str) -> Self {
        EtcdStore {
            client,
            prefix: prefix.to_string(),
        }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl StoreHandler for EtcdStore {
    fn handler_type(&self) -> &'static str {
        "etcd"
    }

    async fn get(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let key = self.full(key);
        let response = with_kv(&self.client, |mut kv| {
            let key = key.clone();
            async move { kv.get(key, None).await }
        })
        .await?;
        response
            .kvs()
            .first()
            .map(|kv| decode(kv.key(), kv.value()))
            .transpose()
    }

    async fn put(&self, key: &str, value: &Value) -> Result<Written, StoreError> {
        let (key, value) = (self.full(key), value.to_string());
        let response = with_kv(&self.client, |mut kv| {
            let (key, value) = (key.clone(), value.clone());
            async move {
                kv.put(key, value, Some(PutOptions::new().with_prev_key()))
                    .await
            }
        })
        .await?;
        Ok(if response.prev_key().is_some() {
            Written::Updated
        } else {
            Written::Created
        })
    }

    async fn delete(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let key = self.full(key);
        let response = with_kv(&self.client, |mut kv| {
            let key = key.clone();
            async move {
                kv.delete(key, Some(DeleteOptions::new().with_prev_key()))
                    .await
            }
        })
        .await?;
        response
            .prev_kvs()
            .first()
            .map(|kv| decode(kv.key(), kv.value()))
            .transpose()
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Value>, StoreError> {
        let prefix = self.full(prefix);
        let response = with_kv(&self.client, |mut kv| {
            let prefix = prefix.clone();
            async move { kv.get(prefix, Some(GetOptions::new().with_prefix())).await }
        })
        .await?;
        response
            .kvs()
            .iter()
            .map(|kv| decode(kv.key(), kv.value()))
            .collect()
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&Value>,
        new: &Value,
    ) -> Result<Result<Written, Option<Value>>, StoreError> {
        let full = self.full(key);
        // Read the current value and its revision, compare as JSON, then write
        // only if the key was not modified since (one etcd transaction).
        let current = with_kv(&self.client, |mut kv| {
            let full = full.clone();
            async move { kv.get(full, None).await }
        })
        .await?;
        let (stored, revision) = match current.kvs().first() {
            Some(kv) => (Some(decode(kv.key(), kv.value())?), kv.mod_revision()),
            None => (None, 0),
        };
        if stored.as_ref() != expected {
            return Ok(Err(stored));
        }
        let txn = Txn::new()
            .when([Compare::mod_revision(
                full.as_str(),
                CompareOp::Equal,
                revision,
            )])
            .and_then([TxnOp::put(full.as_str(), new.to_string(), None)]);
        let response = with_kv(&self.client, |mut kv| {
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })
        .await?;
        if response.succeeded() {
            Ok(Ok(if stored.is_some() {
                Written::Updated
            } else {
                Written::Created
            }))
        } else {
            Ok(Err(self.get(key).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_cut_by_the_connection_is_an_outage() {
        let cut = tonic::Status::from_error(Box::new(std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "stream closed because of a broken pipe",
        )));
        assert_eq!(cut.code(), tonic::Code::Unknown);
        assert!(matches!(
            etcd_error(etcd_client::Error::GRpcStatus(cut)),
            StoreError::Unavailable(_)
        ));
        // A request sent while the channel reconnects (seen during etcd
        // restarts under load).
        let not_ready =
            tonic::Status::cancelled("operation was canceled: connection was not ready");
        assert!(matches!(
            etcd_error(etcd_client::Error::GRpcStatus(not_ready)),
            StoreError::Unavailable(_)
        ));
        let reset = tonic::Status::internal("h2 protocol error: stream no longer needed");
        assert!(matches!(
            etcd_error(etcd_client::Error::GRpcStatus(reset)),
            StoreError::Unavailable(_)
        ));
        let refused = tonic::Status::new(tonic::Code::Unknown, "something else");
        assert!(matches!(
            etcd_error(etcd_client::Error::GRpcStatus(refused)),
            StoreError::Backend(_)
        ));
    }

    #[test]
    fn only_a_call_that_never_reached_etcd_is_sent_again() {
        let status = |s| etcd_client::Error::GRpcStatus(s);
        // What the balanced channel answers for a dead member's endpoint.
        assert!(never_sent(&status(tonic::Status::unavailable(
            "tcp connect error"
        ))));
        // A call that may have reached etcd is not sent again: its answer
        // (a 503) goes to the caller.
        for maybe_sent in [
            tonic::Status::cancelled("operation was canceled: connection was not ready"),
            tonic::Status::internal("h2 protocol error: stream no longer needed"),
            tonic::Status::unavailable("etcdserver: leader changed"),
            tonic::Status::deadline_exceeded("deadline has elapsed"),
        ] {
            assert!(!never_sent(&status(maybe_sent.clone())), "{maybe_sent:?}");
        }
    }
}
