//! The split Commissaire stack as real processes: `commissaire-server` and
//! the storage, investigator, watcher, clusterexec and containermgr daemons,
//! each started from the workspace's built binaries with a configuration file
//! of its own, on a bus URI the caller chooses (a fresh RabbitMQ vhost, or
//! Redis) and a fresh etcd prefix of the test bed's etcd.
//!
//! Used by the fault suite (kill -9 a daemon, start it again) and the bench
//! (throughput against the real daemons, their resident memory). The binaries
//! must be built in the same profile as the caller (`cargo build --workspace`
//! or `cargo build --release --workspace --bins`); [`binary`] says where.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One of the stack's daemons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Daemon {
    /// `commissaire-storage-service` (etcd at a fresh prefix).
    Storage,
    /// `commissaire-server` (HTTP basic auth, user `a`, password `a`).
    Server,
    /// `commissaire-investigator-service`.
    Investigator,
    /// `commissaire-watcher-service`.
    Watcher,
    /// `commissaire-clusterexec-service`.
    ClusterExec,
    /// `commissaire-containermgr-service`.
    ContainerMgr,
}

impl Daemon {
    /// Every daemon, storage first.
    pub const ALL: [Daemon; 6] = [
        Daemon::Storage,
        Daemon::Server,
        Daemon::Investigator,
        Daemon::Watcher,
        Daemon::ClusterExec,
        Daemon::ContainerMgr,
    ];

    /// The binary's file name.
    pub fn binary_name(self) -> &'static str {
        match self {
            Daemon::Storage => "commissaire-storage-service",
            Daemon::Server => "commissaire-server",
            Daemon::Investigator => "commissaire-investigator-service",
            Daemon::Watcher => "commissaire-watcher-service",
            Daemon::ClusterExec => "commissaire-clusterexec-service",
            Daemon::ContainerMgr => "commissaire-containermgr-service",
        }
    }

    /// A short name (`storage`, `server`, ...).
    pub fn short_name(self) -> &'static str {
        match self {
            Daemon::Storage => "storage",
            Daemon::Server => "server",
            Daemon::Investigator => "investigator",
            Daemon::Watcher => "watcher",
            Daemon::ClusterExec => "clusterexec",
            Daemon::ContainerMgr => "containermgr",
        }
    }
}

/// The directory holding the workspace's binaries of the running
/// executable's profile (`target/debug` for tests, `target/release` for a
/// release bench).
pub fn binary_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    dir
}

/// The path of the workspace binary `name`; panics with a hint when it is not built.
pub fn binary(name: &str) -> PathBuf {
    let path = binary_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace` (or --release) first",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Resident set size of process `pid` in KiB (from /proc), if it is alive.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Stops `child` with SIGTERM, waits up to 10 s for it to exit, then
/// SIGKILLs it; reaps it either way.
pub fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The split stack: configuration files in a temporary directory, and the
/// daemons that are running. Every daemon is killed when it is dropped.
pub struct SplitStack {
    /// The bus URI every daemon uses.
    pub bus_uri: String,
    /// The etcd key prefix of this stack's records.
    pub etcd_prefix: String,
    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The server's port.
    pub port: u16,
    dir: tempfile::TempDir,
    env: HashMap<Daemon, Vec<(String, String)>>,
    /// Running processes by daemon and replica number (0 is the first).
    running: HashMap<(Daemon, usize), Child>,
    /// The ports of the server's further replicas (replica 0 has `port`).
    replica_ports: HashMap<usize, u16>,
}

impl SplitStack {
    /// Writes the configuration of a stack on `bus_uri` (nothing is started
    /// yet). The server's users file has user `a` with password `a` hashed
    /// at bcrypt cost `bcrypt_cost` (4 is quick; 12 is realistic).
    pub fn new(bus_uri: &str, bcrypt_cost: u32) -> SplitStack {
        let dir = tempfile::tempdir().expect("tempdir");
        let etcd_prefix = crate::etcd_prefix();
        let port = free_port();
        let hash = bcrypt::hash("a", bcrypt_cost).expect("bcrypt");
        write_json(
            &dir.path().join("users.json"),
            &json!({"a": {"hash": hash}}),
        );
        let storage = json!({
            "bus_uri": bus_uri,
            "secrets_key_file": dir.path().join("secrets.key"),
            "storage_handlers": [{
                "type": "etcd",
                "server_url": format!("http://{}", crate::etcd_endpoint()),
                "prefix": etcd_prefix,
                "models": ["*"],
            }],
        });
        write_json(&dir.path().join("storage.conf"), &storage);
        for service in ["investigator", "watcher", "clusterexec", "containermgr"] {
            write_json(
                &dir.path().join(format!("{service}.conf")),
                &json!({"bus_uri": bus_uri}),
            );
        }
        let server = json!({
            "listen-interface": "127.0.0.1",
            "listen-port": port,
            "bus-uri": bus_uri,
            "authentication-plugins": [{
                "name": "httpbasicauth",
                "filepath": dir.path().join("users.json"),
            }],
        });
        write_json(&dir.path().join("commissaire.conf"), &server);
        SplitStack {
            bus_uri: bus_uri.to_string(),
            etcd_prefix,
            base_url: format!("http://127.0.0.1:{port}"),
            port,
            dir,
            env: HashMap::new(),
            running: HashMap::new(),
            replica_ports: HashMap::new(),
        }
    }

    /// The directory holding the configuration files and daemon logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces member `key` of `daemon`'s configuration file by `value`
    /// (takes effect at its next start).
    pub fn configure(&mut self, daemon: Daemon, key: &str, value: Value) {
        let path = self.config_path(daemon);
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read config")).expect("json");
        config[key] = value;
        write_json(&path, &config);
    }

    /// Sets an environment variable for `daemon`'s next starts.
    pub fn set_env(&mut self, daemon: Daemon, key: &str, value: &str) {
        self.env
            .entry(daemon)
            .or_default()
            .push((key.to_string(), value.to_string()));
    }

    fn config_path(&self, daemon: Daemon) -> PathBuf {
        match daemon {
            Daemon::Server => self.dir.path().join("commissaire.conf"),
            other => self.dir.path().join(format!("{}.conf", other.short_name())),
        }
    }

    /// The path of `daemon`'s log (stdout and stderr, appended across
    /// restarts); replica 0's, see [`SplitStack::replica_log_path`].
    pub fn log_path(&self, daemon: Daemon) -> PathBuf {
        self.replica_log_path(daemon, 0)
    }

    /// The path of the log of `daemon`'s replica `replica`.
    pub fn replica_log_path(&self, daemon: Daemon, replica: usize) -> PathBuf {
        match replica {
            0 => self.dir.path().join(format!("{}.log", daemon.short_name())),
            n => self
                .dir
                .path()
                .join(format!("{}-{n}.log", daemon.short_name())),
        }
    }

    /// `daemon`'s log so far: replica 0's, then each further replica's
    /// under a `--- replica N ---` line.
    pub fn log(&self, daemon: Daemon) -> String {
        let mut log = std::fs::read_to_string(self.log_path(daemon)).unwrap_or_default();
        for n in 1.. {
            let Ok(more) = std::fs::read_to_string(self.replica_log_path(daemon, n)) else {
                break;
            };
            log.push_str(&format!("--- replica {n} ---\n{more}"));
        }
        log
    }

    /// The base URL of the server's replica `replica` (replica 0 is
    /// [`SplitStack::base_url`]); each replica listens on a port of its own.
    pub fn server_url(&mut self, replica: usize) -> String {
        format!("http://127.0.0.1:{}", self.server_port(replica))
    }

    fn server_port(&mut self, replica: usize) -> u16 {
        match replica {
            0 => self.port,
            n => *self.replica_ports.entry(n).or_insert_with(free_port),
        }
    }

    /// Starts `daemon` (a no-op when it runs already): its replica 0.
    pub fn start(&mut self, daemon: Daemon) {
        self.start_replica(daemon, 0);
    }

    /// Starts `daemon`'s replica `replica` (a no-op when it runs already):
    /// another process with the same configuration, as an operator runs
    /// two of a daemon for availability (a server replica listens on a port
    /// of its own, [`SplitStack::server_url`]).
    pub fn start_replica(&mut self, daemon: Daemon, replica: usize) {
        if self.replica_is_running(daemon, replica) {
            return;
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.replica_log_path(daemon, replica))
            .expect("open log");
        let config = match (daemon, replica) {
            (Daemon::Server, n) if n > 0 => {
                let port = self.server_port(n);
                let mut config: Value = serde_json::from_slice(
                    &std::fs::read(self.config_path(daemon)).expect("read config"),
                )
                .expect("json");
                config["listen-port"] = json!(port);
                let path = self.dir.path().join(format!("commissaire-{n}.conf"));
                write_json(&path, &config);
                path
            }
            _ => self.config_path(daemon),
        };
        let mut command = Command::new(binary(daemon.binary_name()));
        match daemon {
            Daemon::Server => command.arg("--config-file"),
            _ => command.arg("--config"),
        };
        command
            .arg(config)
            .envs(self.env.get(&daemon).into_iter().flatten().cloned())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", daemon.binary_name()));
        self.running.insert((daemon, replica), child);
    }

    /// Starts every daemon in `daemons`.
    pub fn start_all(&mut self, daemons: &[Daemon]) {
        for daemon in daemons {
            self.start(*daemon);
        }
    }

    /// Whether `daemon` (its replica 0) was started and has not exited.
    pub fn is_running(&mut self, daemon: Daemon) -> bool {
        self.replica_is_running(daemon, 0)
    }

    /// Whether `daemon`'s replica `replica` was started and has not exited.
    pub fn replica_is_running(&mut self, daemon: Daemon, replica: usize) -> bool {
        match self.running.get_mut(&(daemon, replica)) {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// `daemon`'s (replica 0's) process id while it runs.
    pub fn pid(&mut self, daemon: Daemon) -> Option<u32> {
        if self.is_running(daemon) {
            self.running.get(&(daemon, 0)).map(Child::id)
        } else {
            None
        }
    }

    /// Sends `signal` (`TERM`, `HUP`, `STOP`, `CONT`, ...) to `daemon`'s
    /// replica 0, if it runs.
    pub fn signal(&mut self, daemon: Daemon, signal: &str) {
        if let Some(pid) = self.pid(daemon) {
            let status = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status()
                .expect("kill");
            assert!(status.success(), "kill -{signal} {pid}");
        }
    }

    /// Waits up to `within` for `daemon`'s replica 0 to exit by itself;
    /// its exit status (then it is reaped and forgotten), or `None` while
    /// it still runs.
    pub fn wait_exit(
        &mut self,
        daemon: Daemon,
        within: Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            let child = self.running.get_mut(&(daemon, 0))?;
            if let Ok(Some(status)) = child.try_wait() {
                self.running.remove(&(daemon, 0));
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `daemon`'s resident memory in KiB while it runs.
    pub fn rss_kib(&mut self, daemon: Daemon) -> Option<u64> {
        self.pid(daemon).and_then(rss_kib)
    }

    /// Kills every replica of `daemon` with SIGKILL (no chance to clean up)
    /// and reaps them.
    pub fn kill(&mut self, daemon: Daemon) {
        for replica in self.replicas(daemon) {
            self.kill_replica(daemon, replica);
        }
    }

    /// The replica numbers of `daemon` that were started (and not killed).
    fn replicas(&self, daemon: Daemon) -> Vec<usize> {
        self.running
            .keys()
            .filter(|(d, _)| *d == daemon)
            .map(|(_, replica)| *replica)
            .collect()
    }

    /// Kills `daemon`'s replica `replica` with SIGKILL and reaps it.
    pub fn kill_replica(&mut self, daemon: Daemon, replica: usize) {
        if let Some(mut child) = self.running.remove(&(daemon, replica)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops every replica of `daemon` with SIGTERM and waits up to 10 s
    /// for each to exit (then SIGKILL).
    pub fn terminate(&mut self, daemon: Daemon) {
        for replica in self.replicas(daemon) {
            if let Some(mut child) = self.running.remove(&(daemon, replica)) {
                terminate(&mut child);
            }
        }
    }

    /// Waits up to `timeout` until the server answers an authenticated
    /// `GET /api/v0/networks` with 200 (so the server and storage are up).
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let url = format!("{}/api/v0/networks", self.base_url);
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let status = tokio::process::Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "a:a"])
                .arg("--max-time")
                .arg(format!("{:.1}", left.as_secs_f64().max(0.2)))
                .arg(&url)
                .output()
                .await;
            if let Ok(out) = status
                && out.stdout == b"200"
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

impl Drop for SplitStack {
    fn drop(&mut self) {
        let running: Vec<_> = self.running.keys().copied().collect();
        for (daemon, replica) in running {
            self.kill_replica(daemon, replica);
        }
    }
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).expect("json")).expect("write config");
}
