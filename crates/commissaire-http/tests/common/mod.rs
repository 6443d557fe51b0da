//! The fast tier's stack: the REST server on a loopback port over the
//! in-process bus, with the real storage service on a temporary redb file.
//! No test bed (RabbitMQ, etcd, ...) is needed; the same server over the
//! real buses and etcd is tested in `commissaire-acceptance`.
#![allow(dead_code, unused_imports)]

#[path = "../support/client.rs"]
mod client;

use std::sync::Arc;
use std::time::Duration;

use commissaire_bus::{Bus, InProcessBus};
use commissaire_http::{ServerArgs, ServerConfig};
use commissaire_storage::StorageRouter;
use serde_json::{Value, json};

pub use client::{Client, KEY, PASSWORD, StackOptions, USER, users_file};

/// A running stack.
pub struct Stack {
    /// The server, and a client for it (the stack derefs to it).
    pub api: Client,
    /// The bus the stack uses (tests may call services directly).
    pub bus: Bus,
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
        let throttle = options.auth_throttle;
        let fleetlock = options.fleetlock.clone();
        let args = options.server_args(dir.path());
        let mut config = ServerConfig::resolve(&args, "inprocess://").unwrap();
        if let Some(t) = throttle {
            config.auth_throttle = t;
        }
        if let Some(f) = fleetlock {
            config.fleetlock = f;
        }
        let (api, server) = client::serve(config, bus.clone()).await;
        let stack = Stack {
            api,
            bus,
            storage,
            server,
            _dir: dir,
        };
        // Ready once the default network exists.
        stack.wait_ready(100, Duration::from_millis(20)).await;
        stack
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

impl std::ops::Deref for Stack {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.api
    }
}
