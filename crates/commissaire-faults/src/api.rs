//! An HTTP client for the stack's server, and the clusters the tests set up through it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{SplitStack, key_b64, set_host_status};

/// One API answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status, or `None` when no answer came (connection refused or
    /// reset, or the client's own time limit).
    pub status: Option<u16>,
    /// The JSON body (`null` when there is none or it is not JSON).
    pub body: Value,
    /// The raw body text, or the transport error.
    pub text: String,
    /// When the request was sent.
    pub sent: Instant,
    /// How long it took.
    pub took: Duration,
}

impl Answer {
    /// Whether it is a 503 with a JSON `{"error": "..."}` body.
    pub fn is_clear_503(&self) -> bool {
        self.status == Some(503) && self.body["error"].as_str().is_some_and(|e| !e.is_empty())
    }
}

/// An HTTP client for the stack's server, as user `a`.
#[derive(Clone)]
pub struct Api {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    client: reqwest::Client,
}

impl Api {
    /// A client for `stack`'s server; it gives up after 30 s (so a hang is
    /// seen as a long `took`, not a stuck test).
    pub fn new(stack: &SplitStack) -> Api {
        Api::at(&stack.base_url)
    }

    /// A client for the server at `base` (`http://127.0.0.1:PORT`, e.g. a
    /// server replica's [`SplitStack::server_url`]).
    pub fn at(base: &str) -> Api {
        Api {
            base: base.to_string(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
        }
    }

    /// A client that opens a new connection for every request (for
    /// garbage after which the server closes the connection, e.g. a 413).
    pub fn unpooled(stack: &SplitStack) -> Api {
        Api {
            base: stack.base_url.clone(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(0)
                .build()
                .expect("http client"),
        }
    }

    /// Sends `method path` with an optional raw body.
    pub async fn send(&self, method: &str, path: &str, body: Option<String>) -> Answer {
        let sent = Instant::now();
        let mut request = self
            .client
            .request(
                method.parse().expect("method"),
                format!("{}{path}", self.base),
            )
            .basic_auth("a", Some("a"));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                Answer {
                    status: Some(status),
                    body: serde_json::from_str(&text).unwrap_or(Value::Null),
                    text,
                    sent,
                    took: sent.elapsed(),
                }
            }
            Err(e) => Answer {
                status: None,
                body: Value::Null,
                text: e.to_string(),
                sent,
                took: sent.elapsed(),
            },
        }
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None).await
    }

    /// PUT with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.send("PUT", path, Some(body.to_string())).await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Answer {
        self.send("DELETE", path, None).await
    }

    /// GET that must answer 200; returns the body.
    pub async fn get_ok(&self, path: &str) -> Value {
        let a = self.get(path).await;
        assert_eq!(a.status, Some(200), "GET {path}: {a:?}");
        a.body
    }

    /// PUT that must answer `status`; returns the body.
    pub async fn put_expect(&self, path: &str, body: Value, status: u16) -> Value {
        let a = self.put(path, body).await;
        assert_eq!(a.status, Some(status), "PUT {path}: {a:?}");
        a.body
    }

    /// Adds a host with the test bed's key (the investigator, if it runs,
    /// investigates it).
    pub async fn put_host(&self, address: &str) -> Answer {
        self.put(
            &format!("/api/v0/host/{address}"),
            json!({"ssh_priv_key": key_b64(), "remote_user": "root"}),
        )
        .await
    }
}

/// A cluster `name` of `hosts`, each added through the API and made active
/// through storage (as the investigator would).
pub async fn active_cluster(api: &Api, bus: &commissaire_bus::Bus, name: &str, hosts: &[String]) {
    api.put_expect(&format!("/api/v0/cluster/{name}"), json!({}), 201)
        .await;
    for h in hosts {
        let a = api.put_host(h).await;
        assert_eq!(a.status, Some(201), "{a:?}");
        set_host_status(bus, h, "active").await;
        let a = api
            .put(&format!("/api/v0/cluster/{name}/hosts/{h}"), json!({}))
            .await;
        assert_eq!(a.status, Some(200), "{a:?}");
    }
}

/// Creates the container manager `k8s` (Kubernetes reached with
/// `options`, e.g. `RealKube::options`) and the cluster `managed` using it.
pub async fn create_managed_cluster(api: &Api, options: Value) {
    api.put_expect(
        "/api/v0/containermanager/k8s",
        json!({"type": "kubernetes", "options": options}),
        201,
    )
    .await;
    api.put_expect(
        "/api/v0/cluster/managed",
        json!({"container_manager": "k8s"}),
        201,
    )
    .await;
}
