//! A real stack for API tests: RabbitMQ (a fresh vhost) — or Redis (a unique
//! exchange) when `COMMISSAIRE_TEST_BUS=redis` —, the storage service on etcd
//! (a fresh key prefix), and the REST server on a free port.
#![allow(dead_code, unused_imports)]

#[path = "../../../commissaire-http/tests/support/client.rs"]
mod client;

use std::sync::Arc;
use std::time::Duration;

use commissaire_bus::Bus;
use commissaire_http::{ServerArgs, ServerConfig};
use commissaire_storage::StorageRouter;
use commissaire_testkit as testkit;
use serde_json::{Value, json};

pub use client::{Client, KEY, PASSWORD, StackOptions, USER, users_file};

/// A running stack.
pub struct Stack {
    /// The server, and a client for it (the stack derefs to it).
    pub api: Client,
    /// The bus the stack uses (tests may call services directly).
    pub bus: Bus,
    /// The bus URI: the AMQP URI of the stack's vhost, or the Redis URI
    /// (with `COMMISSAIRE_TEST_BUS=redis`).
    pub amqp: String,
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
        let mut args = options.server_args(dir.path());
        args.bus_exchange = Some(exchange);
        let config = ServerConfig::resolve(&args, &amqp).unwrap();
        let (api, server) = client::serve(config, bus.clone()).await;
        let stack = Stack {
            api,
            bus,
            amqp,
            storage,
            etcd_prefix,
            server,
            _dir: dir,
        };
        // Ready once the default network exists.
        stack.wait_ready(100, Duration::from_millis(100)).await;
        stack
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

/// Keeps the compiler quiet about `Arc` in some test binaries.
pub fn _unused(_: Arc<()>) {}

impl std::ops::Deref for Stack {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.api
    }
}
