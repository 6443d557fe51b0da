//! The fast tier's stack: the REST server on a loopback port over the
//! in-process bus, with the real storage service on a temporary redb file.
//! No test bed (RabbitMQ, etcd, ...) is needed; the same server over the
//! real buses and etcd is tested in `commissaire-acceptance`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use commissaire_bus::{Bus, InProcessBus};
use commissaire_http::{ServerArgs, ServerConfig};
use commissaire_storage::StorageRouter;
use serde_json::{Value, json};

/// User and password of the test users file.
pub const USER: &str = "a";
/// Password of [`USER`].
pub const PASSWORD: &str = "a";
/// An SSH key, base64 (the API only stores it).
pub const KEY: &str = "dGVzdAo=";

/// A running stack.
pub struct Stack {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The bus the stack uses (tests may call services directly).
    pub bus: Bus,
    /// An HTTP client (no credentials of its own).
    pub client: reqwest::Client,
    /// The storage service (tests may stop it).
    pub storage: commissaire_service::ServiceHandle,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.abort();
        self.storage.stop();
    }
}

/// Writes a users file with `a`/`a` (bcrypt cost 4, for speed).
pub fn users_file(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("users.json");
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    std::fs::write(&path, json!({USER: {"hash": hash}}).to_string()).unwrap();
    path
}

/// Options for [`Stack::start_with`].
#[derive(Default)]
pub struct StackOptions {
    /// Extra server arguments (plugins are added after the basic-auth one).
    pub args: ServerArgs,
    /// Leave authentication off entirely.
    pub open: bool,
}

impl Stack {
    /// A stack with HTTP Basic authentication (`a`/`a`).
    pub async fn start() -> Stack {
        Self::start_with(StackOptions::default()).await
    }

    /// A stack with the given options.
    pub async fn start_with(options: StackOptions) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let bus: Bus = Arc::new(InProcessBus::new());
        let router = StorageRouter::from_config(Some(&json!([{
            "type": "redb", "path": dir.path().join("store.redb"), "models": ["*"]
        }])))
        .await
        .unwrap();
        let storage = commissaire_storage::start(router, bus.clone(), 4)
            .await
            .unwrap();
        let mut args = options.args;
        args.no_config_file = true;
        args.request_timeout.get_or_insert(3.0);
        if !options.open {
            let users = users_file(dir.path());
            args.authentication_plugins.insert(
                0,
                format!(
                    "commissaire_http.authentication.httpbasicauth:filepath={}",
                    users.display()
                ),
            );
        }
        let config = ServerConfig::resolve(&args, "inprocess://").unwrap();
        let tls = config.tls_pemfile.is_some();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server_bus = bus.clone();
        let server = tokio::spawn(async move {
            commissaire_http::serve_on(listener, config, server_bus)
                .await
                .unwrap();
        });
        let scheme = if tls { "https" } else { "http" };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let stack = Stack {
            base: format!("{scheme}://127.0.0.1:{port}"),
            bus,
            client,
            storage,
            server,
            _dir: dir,
        };
        // Ready once the default network exists.
        for _ in 0..100 {
            if stack.get("/api/v0/network/default").await.0 == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stack
    }

    /// Full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An authenticated request; returns status and JSON body (`null` if none).
    pub async fn send(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method.parse().unwrap(), self.url(path))
            .basic_auth(USER, Some(PASSWORD));
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Authenticated GET.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None).await
    }

    /// Authenticated PUT with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("PUT", path, Some(&body.to_string())).await
    }

    /// Authenticated DELETE.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send("DELETE", path, None).await
    }

    /// Sets a stored host's status directly through the storage service (as
    /// the investigator would). The in-process bus delivers the storage
    /// service's announcement before the call returns, so the server's read
    /// cache has dropped the host's answer by then.
    pub async fn set_host_status(&self, address: &str, status: &str) {
        let t = Duration::from_secs(5);
        let mut host = self
            .bus
            .request(
                "storage.get",
                json!({"model_type_name": "Host", "model_json_data": {"address": address}}),
                t,
            )
            .await
            .unwrap();
        host["status"] = json!(status);
        self.bus
            .request(
                "storage.save",
                json!({"model_type_name": "Host", "model_json_data": host}),
                t,
            )
            .await
            .unwrap();
        let path = format!("/api/v0/host/{address}");
        assert_eq!(
            self.get(&path).await.1["status"],
            status,
            "the server does not see host {address} {status} at once"
        );
    }
}
