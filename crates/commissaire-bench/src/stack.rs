//! Bringing up the real stacks: the all-in-one `commissaire` binary, and
//! the split daemons (`testkit::daemons::SplitStack`) over AMQP or Redis
//! with etcd; an HTTP client for their REST API; and a way to store records
//! directly (the bus for the split stack, the redb file for the all-in-one
//! while it is stopped), to seed thousands of hosts quickly.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use commissaire_bus::Bus;
use commissaire_service::Direct;
use commissaire_storage::{RedbStore, SecretBox, StorageRouter, StorageService};
use commissaire_testkit::{self as testkit, daemons};
use serde_json::{Value, json};

use crate::memory::Proc;

/// bcrypt cost of the user `a`'s password (a realistic one; the server's
/// credential cache pays it once).
pub const BCRYPT_COST: u32 = 12;
/// Bus call time limit.
pub const BUS_TIMEOUT: Duration = Duration::from_secs(30);

/// The servers' `--read-cache-seconds`, when the bench was given one.
pub static READ_CACHE_SECONDS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

/// The stacks the bench knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Setup {
    /// `commissaire`: everything in one process, in-process bus, redb.
    AllInOne,
    /// The split daemons over RabbitMQ, records in etcd.
    Amqp,
    /// The split daemons over Redis, records in etcd.
    Redis,
}

impl Setup {
    /// The name printed in the table.
    pub fn label(self) -> &'static str {
        match self {
            Setup::AllInOne => "all-in-one",
            Setup::Amqp => "split AMQP+etcd",
            Setup::Redis => "split Redis+etcd",
        }
    }
}

/// An HTTP client of a stack's REST API (user `a`, password `a`).
#[derive(Clone)]
pub struct Api {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    client: reqwest::Client,
}

impl Api {
    /// A client of the server at `base`.
    pub fn new(base: &str) -> anyhow::Result<Api> {
        Ok(Api {
            base: base.to_string(),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(128)
                .timeout(Duration::from_secs(60))
                .build()?,
        })
    }

    /// A request as the bench's user; the status and the body (read entirely).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Body)> {
        self.request("a", "a", method, path, body).await
    }

    /// A bodiless request with other credentials; the status and the body.
    pub async fn send_as(
        &self,
        user: &str,
        password: &str,
        method: reqwest::Method,
        path: &str,
    ) -> anyhow::Result<(u16, Body)> {
        self.request(user, password, method, path, None).await
    }

    async fn request(
        &self,
        user: &str,
        password: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Body)> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .basic_auth(user, Some(password));
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        Ok((status, Body(bytes.to_vec())))
    }

    /// GET; fails unless 200.
    pub async fn get_ok(&self, path: &str) -> anyhow::Result<Body> {
        let (status, body) = self.send(reqwest::Method::GET, path, None).await?;
        anyhow::ensure!(status == 200, "GET {path}: {status} {}", body.text());
        Ok(body)
    }

    /// GET, parsed as JSON; fails unless 200.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        self.get_ok(path).await?.json()
    }

    /// PUT with a JSON body; fails unless 2xx.
    pub async fn put_ok(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let (status, b) = self.send(reqwest::Method::PUT, path, Some(body)).await?;
        anyhow::ensure!(
            (200..300).contains(&status),
            "PUT {path}: {status} {}",
            b.text()
        );
        Ok(b.json().unwrap_or(Value::Null))
    }

    /// DELETE; fails unless 2xx.
    pub async fn delete_ok(&self, path: &str) -> anyhow::Result<()> {
        let (status, b) = self.send(reqwest::Method::DELETE, path, None).await?;
        anyhow::ensure!(
            (200..300).contains(&status),
            "DELETE {path}: {status} {}",
            b.text()
        );
        Ok(())
    }

    /// Waits until `PUT /cluster/NAME` succeeds (the server, its storage
    /// and the default network are up).
    pub async fn wait_cluster(&self, name: &str, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            match self
                .put_ok(&format!("/api/v0/cluster/{name}"), &json!({}))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context(format!("the server at {} never got ready", self.base)));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

/// A response body.
pub struct Body(pub Vec<u8>);

impl Body {
    /// The body as (lossy) text, cut at 300 characters.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).chars().take(300).collect()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> anyhow::Result<Value> {
        Ok(serde_json::from_slice(&self.0)?)
    }
}

/// Writes records straight to a stack's storage: over the bus to the storage
/// daemon, or through a storage service of our own on the all-in-one's redb
/// file (only while the all-in-one is stopped).
pub enum Seeder {
    /// A client of the stack's bus.
    Bus(Bus),
    /// A storage service on the redb file, in this process.
    Direct(Direct<StorageService>),
}

impl Seeder {
    /// Calls storage method `method` with `params`.
    pub async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        match self {
            Seeder::Bus(bus) => Ok(bus
                .request(&format!("storage.{method}"), params, BUS_TIMEOUT)
                .await?),
            Seeder::Direct(service) => service
                .call(method, params)
                .await
                .map_err(|e| anyhow::anyhow!("storage.{method}: {e:?}")),
        }
    }

    /// Saves `records` of `kind` (in batches).
    pub async fn save_all(&self, kind: &str, records: &[Value]) -> anyhow::Result<()> {
        for chunk in records.chunks(200) {
            self.call(
                "save",
                json!({"model_type_name": kind, "model_json_data": chunk}),
            )
            .await
            .with_context(|| format!("saving {} {kind} records", chunk.len()))?;
        }
        Ok(())
    }
}

/// A stored host as the investigator leaves a bootstrapped one.
pub fn active_host(address: &str) -> Value {
    seeded_host(address, "active", "fedora")
}

/// A seeded host with `status` and `os`.
pub fn seeded_host(address: &str, status: &str, os: &str) -> Value {
    json!({"address": address, "status": status, "os": os, "cpus": 4,
           "memory": 8_000_000, "space": 50_000_000,
           "last_check": "2020-01-01T00:00:00.000000"})
}

/// Seeded host number `i` (`10.a.b.c`; nothing there is ever contacted).
pub fn seeded_address(i: usize) -> String {
    format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)
}

/// The testbed's private key, base64 encoded (as `HostCreds.ssh_priv_key`).
pub fn ssh_key_b64() -> anyhow::Result<String> {
    use base64::Engine;
    let key = std::fs::read(testkit::ssh_key()).context("the testbed's ssh key")?;
    Ok(base64::engine::general_purpose::STANDARD.encode(key))
}

/// Writes the users file (`a`/`a`, bcrypt cost 12) into `dir`.
pub fn users_file(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("users.json");
    std::fs::write(
        &path,
        json!({"a": {"hash": bcrypt::hash("a", BCRYPT_COST)?}}).to_string(),
    )?;
    Ok(path)
}

/// The all-in-one binary, started and stopped as a child process.
pub struct AllInOne {
    dir: tempfile::TempDir,
    users: PathBuf,
    port: u16,
    child: Option<Child>,
    /// Its REST API.
    pub api: Api,
}

impl AllInOne {
    /// Prepares a data directory and a users file (nothing runs yet).
    pub fn new() -> anyhow::Result<AllInOne> {
        let dir = tempfile::tempdir()?;
        let users = users_file(dir.path())?;
        let port = daemons::free_port();
        let api = Api::new(&format!("http://127.0.0.1:{port}"))?;
        Ok(AllInOne {
            dir,
            users,
            port,
            child: None,
            api,
        })
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts `commissaire` and waits until it answers.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("commissaire.log"))?;
        let mut command = Command::new(daemons::binary("commissaire"));
        if let Some(seconds) = READ_CACHE_SECONDS.get() {
            command.args(["--read-cache-seconds", &seconds.to_string()]);
        }
        let child = command
            .arg("--no-config-file")
            .args(["--listen-interface", "127.0.0.1"])
            .args(["--listen-port", &self.port.to_string()])
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--authentication-plugin")
            .arg(format!("httpbasicauth:filepath={}", self.users.display()))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting commissaire")?;
        self.child = Some(child);
        self.api
            .wait_cluster("bench", Duration::from_secs(60))
            .await
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The processes to watch (one).
    pub fn procs(&self) -> Vec<Proc> {
        self.pid()
            .map(|p| vec![("commissaire".to_string(), p)])
            .unwrap_or_default()
    }

    /// Stops it (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            daemons::terminate(&mut child);
        }
    }

    /// A seeder writing to the redb file; only while it is stopped. Drop it
    /// before [`AllInOne::start`] (the file is locked while open).
    pub fn seeder(&self) -> anyhow::Result<Seeder> {
        if self.child.is_some() {
            bail!("the all-in-one's store can only be seeded while it is stopped");
        }
        std::fs::create_dir_all(self.data_dir())?;
        let store = RedbStore::open(&self.data_dir().join("commissaire.redb"))?;
        let mut router = StorageRouter::new();
        router.add("redb", Arc::new(store), &["*".to_string()])?;
        let secrets = SecretBox::load_or_create(&self.data_dir().join("secrets.key"))?;
        Ok(Seeder::Direct(Direct::new(Arc::new(StorageService::new(
            router, None, secrets,
        )))))
    }
}

impl Drop for AllInOne {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The split daemons, with a bus client of our own.
pub struct Split {
    /// The daemons.
    pub stack: daemons::SplitStack,
    /// A client on the stack's bus (and exchange).
    pub bus: Bus,
    /// Its REST API.
    pub api: Api,
    /// Which bus.
    pub setup: Setup,
}

impl Split {
    /// Configures the daemons on a fresh RabbitMQ vhost, or on Redis with an
    /// exchange (key prefix) of their own, and starts them all.
    pub async fn start(setup: Setup) -> anyhow::Result<Split> {
        let (uri, exchange) = match setup {
            Setup::Amqp => (testkit::fresh_vhost(), "commissaire".to_string()),
            Setup::Redis => (
                testkit::redis_uri(),
                format!("bench-{}", uuid::Uuid::new_v4().simple()),
            ),
            Setup::AllInOne => bail!("the all-in-one is not split"),
        };
        let mut stack = daemons::SplitStack::new(&uri, BCRYPT_COST);
        let playbooks = commissaire_ansible::source_playbook_dir()
            .display()
            .to_string();
        for daemon in daemons::Daemon::ALL {
            match daemon {
                daemons::Daemon::Server => {
                    stack.configure(daemon, "bus-exchange", json!(exchange));
                    if let Some(seconds) = READ_CACHE_SECONDS.get() {
                        stack.configure(daemon, "read-cache-seconds", json!(seconds));
                    }
                }
                _ => stack.configure(daemon, "bus_exchange", json!(exchange)),
            }
        }
        for daemon in [
            daemons::Daemon::Investigator,
            daemons::Daemon::Watcher,
            daemons::Daemon::ClusterExec,
        ] {
            stack.configure(daemon, "playbook_dir", json!(playbooks));
        }
        // Storage first, so the others find it.
        stack.start(daemons::Daemon::Storage);
        stack.start_all(&daemons::Daemon::ALL);
        let bus = commissaire_bus::connect(&uri, &exchange, Duration::from_secs(10))
            .await
            .with_context(|| format!("connecting to {}", commissaire_bus::redact_uri(&uri)))?;
        let api = Api::new(&stack.base_url)?;
        let split = Split {
            stack,
            bus,
            api,
            setup,
        };
        if let Err(e) = split
            .api
            .wait_cluster("bench", Duration::from_secs(60))
            .await
        {
            for daemon in daemons::Daemon::ALL {
                eprintln!(
                    "--- {} log:\n{}",
                    daemon.short_name(),
                    split.stack.log(daemon)
                );
            }
            return Err(e);
        }
        Ok(split)
    }

    /// A seeder on the stack's bus.
    pub fn seeder(&self) -> Seeder {
        Seeder::Bus(self.bus.clone())
    }

    /// The running daemons (short name, pid).
    pub fn procs(&mut self) -> Vec<Proc> {
        daemons::Daemon::ALL
            .iter()
            .filter_map(|d| self.stack.pid(*d).map(|p| (d.short_name().to_string(), p)))
            .collect()
    }

    /// Restarts `daemon` after setting `key` of its configuration to `value`s.
    pub fn reconfigure(&mut self, daemon: daemons::Daemon, settings: &[(&str, Value)]) {
        for (key, value) in settings {
            self.stack.configure(daemon, key, value.clone());
        }
        self.stack.terminate(daemon);
        self.stack.start(daemon);
    }
}
