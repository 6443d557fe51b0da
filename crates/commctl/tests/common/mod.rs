//! A real Commissaire stack for commctl tests: the in-process bus, the
//! storage service on an embedded redb store, and the REST server with HTTP
//! Basic authentication (`a`/`a`) on a free port, all on a private tokio
//! runtime; plus helpers to run the real `commctl` binary against it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use commissaire_bus::{Bus, InProcessBus};
use commissaire_http::{ServerArgs, ServerConfig};
use commissaire_storage::{RedbStore, StorageRouter};
use serde_json::{Value, json};

/// User of the test users file.
pub const USER: &str = "a";
/// Password of [`USER`].
pub const PASSWORD: &str = "a";

/// A running stack.
pub struct Stack {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The stack's bus (tests write records through the storage service).
    pub bus: Bus,
    /// Scratch directory (store, users file, commctl config).
    pub dir: tempfile::TempDir,
    /// A commctl configuration file for this stack (`a`/`a`).
    pub config: PathBuf,
    storage: commissaire_service::ServiceHandle,
    // Dropped last: shutting the runtime down stops the server.
    rt: tokio::runtime::Runtime,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.storage.stop();
    }
}

/// What a commctl run produced.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A port nothing listens on (bound, then released).
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The `commctl` binary with a clean environment: no inherited COMMCTL_*
/// variables, HOME in `home`, stdin not a terminal.
pub fn commctl_command(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_commctl"));
    cmd.env_remove("COMMCTL_CONFIG")
        .env_remove("COMMCTL_USERNAME")
        .env_remove("COMMCTL_PASSWORD")
        .env_remove("COMMCTL_ENDPOINT")
        .env_remove("COMMCTL_CONTEXT")
        .env_remove("COMPLETE")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("all_proxy")
        .env_remove("ALL_PROXY")
        .env("HOME", home)
        .stdin(Stdio::null());
    cmd
}

/// Runs `commctl` with `args` and `home` as HOME.
pub fn commctl_in(home: &Path, args: &[&str]) -> Run {
    commctl_command(home).args(args).output().unwrap().into()
}

impl Stack {
    /// A stack with HTTP Basic authentication only.
    pub fn start() -> Stack {
        Self::start_with(Vec::new())
    }

    /// A stack with HTTP Basic authentication and `extra_plugins` after it.
    pub fn start_with(extra_plugins: Vec<String>) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let users = dir.path().join("users.json");
        let hash = bcrypt::hash(PASSWORD, 4).unwrap();
        std::fs::write(&users, json!({USER: {"hash": hash}}).to_string()).unwrap();
        let store_path = dir.path().join("commissaire.redb");
        let bus: Bus = Arc::new(InProcessBus::new());
        let (storage, listener) = rt.block_on(async {
            let store = RedbStore::open(&store_path).unwrap();
            let mut router = StorageRouter::new();
            router
                .add("redb", Arc::new(store), &["*".to_string()])
                .unwrap();
            let storage = commissaire_storage::start(router, bus.clone(), 4)
                .await
                .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            (storage, listener)
        });
        let mut plugins = vec![format!("httpbasicauth:filepath={}", users.display())];
        plugins.extend(extra_plugins);
        let args = ServerArgs {
            no_config_file: true,
            authentication_plugins: plugins,
            request_timeout: Some(5.0),
            ..Default::default()
        };
        let config = ServerConfig::resolve(&args, "inprocess://").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server_bus = bus.clone();
        rt.spawn(async move {
            if let Err(e) = commissaire_http::serve_on(listener, config, server_bus).await {
                eprintln!("test server stopped: {e}");
            }
        });
        let base = format!("http://127.0.0.1:{port}");
        let commctl_config = dir.path().join("commissaire.json");
        std::fs::write(
            &commctl_config,
            json!({"endpoint": base, "username": USER, "password": PASSWORD}).to_string(),
        )
        .unwrap();
        let stack = Stack {
            base,
            bus,
            dir,
            config: commctl_config,
            storage,
            rt,
        };
        // Ready once the server has created the default network.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = stack.bus_request(
                "storage.get",
                json!({"model_type_name": "Network", "model_json_data": {"name": "default"}}),
            );
            if got.is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the default network never appeared"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        stack
    }

    /// The scratch directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `commctl -c CONFIG ARGS...`
    pub fn commctl(&self, args: &[&str]) -> Run {
        self.command(args).output().unwrap().into()
    }

    /// The command for `commctl -c CONFIG ARGS...` (to add env, stdin...).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = commctl_command(self.dir.path());
        cmd.arg("-c").arg(&self.config).args(args);
        cmd
    }

    /// A request on the stack's bus.
    pub fn bus_request(
        &self,
        routing_key: &str,
        params: Value,
    ) -> Result<Value, commissaire_bus::BusError> {
        self.rt.block_on(
            self.bus
                .request(routing_key, params, Duration::from_secs(5)),
        )
    }

    /// Saves a record directly through the storage service.
    pub fn save(&self, model: &str, data: Value) {
        self.bus_request(
            "storage.save",
            json!({"model_type_name": model, "model_json_data": data}),
        )
        .unwrap_or_else(|e| panic!("saving {model}: {e}"));
    }

    /// Sets a stored host's status (as the investigator would).
    pub fn set_host_status(&self, address: &str, status: &str) {
        let mut host = self
            .bus_request(
                "storage.get",
                json!({"model_type_name": "Host", "model_json_data": {"address": address}}),
            )
            .unwrap();
        host["status"] = json!(status);
        self.save("Host", host);
    }

    /// Writes a file in the scratch directory; returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

/// A date as the models store them.
pub const DATE: &str = "2024-01-02T03:04:05.000006";
