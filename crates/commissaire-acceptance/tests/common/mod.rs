//! A real stack for API tests: RabbitMQ (a fresh vhost) — or Redis (a unique
//! exchange) when `COMMISSAIRE_TEST_BUS=redis` —, the storage service on etcd
//! (a fresh key prefix), and the REST server on a free port.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use commissaire_bus::Bus;
use commissaire_http::{ServerArgs, ServerConfig};
use commissaire_storage::StorageRouter;
use commissaire_testkit as testkit;
use serde_json::{Value, json};

/// User and password of the test users file.
pub const USER: &str = "a";
/// Password of [`USER`].
pub const PASSWORD: &str = "a";

/// A running stack.
pub struct Stack {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The bus the stack uses (tests may call services directly).
    pub bus: Bus,
    /// The bus URI: the AMQP URI of the stack's vhost, or the Redis URI
    /// (with `COMMISSAIRE_TEST_BUS=redis`).
    pub amqp: String,
    /// An authenticated client.
    pub client: reqwest::Client,
    /// The storage service (tests may stop it).
    pub storage: commissaire_service::ServiceHandle,
    /// The etcd key prefix of the stack's records.
    pub etcd_prefix: String,
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
        // With Redis, a unique exchange (key prefix) isolates the stack.
        let (amqp, exchange) = if std::env::var("COMMISSAIRE_TEST_BUS").is_ok_and(|b| b == "redis")
        {
            let exchange = format!("test-{}", uuid::Uuid::new_v4().simple());
            (testkit::redis_uri(), exchange)
        } else {
            // rabbitmqctl takes seconds: off the runtime's worker threads,
            // which the feature runner shares between 4 scenarios (blocking
            // them stalled the others' consumer set-up past its 5 s limit).
            let vhost = tokio::task::spawn_blocking(testkit::fresh_vhost)
                .await
                .unwrap();
            (vhost, "commissaire".to_string())
        };
        let bus = commissaire_bus::connect(&amqp, &exchange, Duration::from_secs(10))
            .await
            .unwrap();
        let etcd_prefix = testkit::etcd_prefix();
        let router = StorageRouter::from_config(Some(&json!({
            "type": "etcd", "server_url": format!("http://{}", testkit::etcd_endpoint()), "prefix": etcd_prefix
        })))
        .await
        .unwrap();
        let storage = commissaire_storage::start(router, bus.clone(), 4)
            .await
            .unwrap();
        let mut args = options.args;
        args.no_config_file = true;
        args.bus_exchange = Some(exchange);
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
        let config = ServerConfig::resolve(&args, &amqp).unwrap();
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
        let base = format!("{scheme}://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let stack = Stack {
            base,
            bus,
            amqp,
            client,
            storage,
            etcd_prefix,
            server,
            _dir: dir,
        };
        // Ready once the default network exists.
        for _ in 0..100 {
            let (status, _) = stack.get("/api/v0/network/default").await;
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
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
    /// the investigator would), then waits until the server has applied the
    /// storage service's announcement of it: reads from other writers are
    /// eventually consistent (see `commissaire_http::read_cache`).
    ///
    /// The host's answer is put in the read cache first, so that seeing the
    /// new status means the announcement invalidated it (and with it every
    /// cached answer computed from hosts, such as cluster statuses).
    pub async fn set_host_status(&self, address: &str, status: &str) {
        let path = format!("/api/v0/host/{address}");
        self.get(&path).await;
        let host = self
            .bus
            .request(
                "storage.get",
                json!({"model_type_name": "Host", "model_json_data": {"address": address}}),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        let mut host = host;
        host["status"] = json!(status);
        self.bus
            .request(
                "storage.save",
                json!({"model_type_name": "Host", "model_json_data": host}),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.get(&path).await.1["status"] != status {
            assert!(
                std::time::Instant::now() < deadline,
                "the server never saw host {address} become {status}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A base64 "key" accepted by the API (the docs' example value).
pub const KEY: &str = "dGVzdAo=";

/// Keeps the compiler quiet about `Arc` in some test binaries.
pub fn _unused(_: Arc<()>) {}
