//! A test stack's server and an HTTP client for it, as the test user:
//! shared by the fast tier's stack (`tests/common`) and the test-bed stack
//! of `commissaire-acceptance`, which includes this file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use commissaire_bus::Bus;
use commissaire_http::{ServerArgs, ServerConfig};
use serde_json::{Value, json};

/// User and password of the test users file.
pub const USER: &str = "a";
/// Password of [`USER`].
pub const PASSWORD: &str = "a";
/// An SSH key, base64 (the API only stores it).
pub const KEY: &str = "dGVzdAo=";

/// Writes a users file with `a`/`a` (bcrypt cost 4, for speed).
pub fn users_file(dir: &Path) -> PathBuf {
    let path = dir.join("users.json");
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    std::fs::write(&path, json!({USER: {"hash": hash}}).to_string()).unwrap();
    path
}

/// Options for a stack's server.
#[derive(Default)]
pub struct StackOptions {
    /// Extra server arguments (plugins are added after the basic-auth one).
    pub args: ServerArgs,
    /// Leave authentication off entirely.
    pub open: bool,
    /// How refused credentials are slowed down (absent: the server's default).
    pub auth_throttle: Option<commissaire_http::auth::throttle::ThrottleSettings>,
    /// The FleetLock settings (absent: the server's default).
    pub fleetlock: Option<commissaire_http::fleetlock::FleetLockSettings>,
}

impl StackOptions {
    /// The server's arguments: no configuration file, a 3 s request
    /// timeout unless one is given, and (unless `open`) HTTP Basic with
    /// `a`/`a` from a users file written in `dir`, before the other plugins.
    pub fn server_args(self, dir: &Path) -> ServerArgs {
        let mut args = self.args;
        args.no_config_file = true;
        args.request_timeout.get_or_insert(3.0);
        if !self.open {
            let users = users_file(dir);
            args.authentication_plugins.insert(
                0,
                format!(
                    "commissaire_http.authentication.httpbasicauth:filepath={}",
                    users.display()
                ),
            );
        }
        args
    }
}

/// Serves `config` over `bus` on a free loopback port; returns a client of
/// it and the server's task.
pub async fn serve(config: ServerConfig, bus: Bus) -> (Client, tokio::task::JoinHandle<()>) {
    let scheme = if config.tls_pemfile.is_some() {
        "https"
    } else {
        "http"
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        commissaire_http::serve_on(listener, config, bus)
            .await
            .unwrap();
    });
    (Client::new(format!("{scheme}://127.0.0.1:{port}")), server)
}

/// The server of a stack, and a client for it.
pub struct Client {
    /// `http://127.0.0.1:PORT` (or `https://`).
    pub base: String,
    /// An HTTP client (no credentials of its own).
    pub client: reqwest::Client,
}

impl Client {
    /// A client of the server at `base` (certificates are not checked).
    pub fn new(base: String) -> Client {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        Client { base, client }
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

    /// Waits up to `tries` × `pause` until the server serves the default
    /// network (it is created at start).
    pub async fn wait_ready(&self, tries: u32, pause: Duration) {
        for _ in 0..tries {
            if self.get("/api/v0/network/default").await.0 == 200 {
                return;
            }
            tokio::time::sleep(pause).await;
        }
    }
}
