//! A real stack for clusterexec tests: RabbitMQ (a fresh vhost), the storage
//! service on etcd (a fresh key prefix), the REST server on a free port, and
//! clusterexec (in-process, or the real binary), against the testbed's sshd
//! hosts 127.0.0.15 to .19 (the others belong to other tests).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use commissaire_bus::Bus;
use commissaire_clusterexec_service::{ClusterExec, ClusterExecConfig, ClusterExecHandle};
use commissaire_http::{ServerArgs, ServerConfig};
use commissaire_storage::StorageRouter;
use commissaire_testkit as testkit;
use serde_json::{Value, json};

/// The sshd test hosts these tests may use.
pub const HOSTS: [&str; 5] = [
    "127.0.0.15",
    "127.0.0.16",
    "127.0.0.17",
    "127.0.0.18",
    "127.0.0.19",
];

/// Seconds a test restart keeps a host's sshd down.
pub const DOWN_SECONDS: u64 = 3;

/// The testbed's index of a host (`127.0.0.15` -> 5).
pub fn host_index(address: &str) -> u32 {
    let last: u32 = address.rsplit('.').next().unwrap().parse().unwrap();
    last - 10
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: source /tmp/tb/env"))
}

/// Stops or starts a test host's sshd (`sshd-stop` / `sshd-start`).
pub fn sshd(action: &str, address: &str) {
    let out = Command::new(env("COMMISSAIRE_TEST_TESTBED"))
        .args([
            action,
            &env("COMMISSAIRE_TEST_STATE"),
            &host_index(address).to_string(),
        ])
        .output()
        .expect("run testbed.sh");
    assert!(
        out.status.success(),
        "testbed.sh {action} {address}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts a host's sshd again when dropped (also when the test panics).
pub struct SshdBack(pub &'static str);

impl Drop for SshdBack {
    fn drop(&mut self) {
        sshd("sshd-start", self.0);
    }
}

/// Test scripts that the operations' commands run on the hosts (which are
/// this machine), writing timestamped marker lines into `dir`.
pub struct Markers {
    pub dir: tempfile::TempDir,
}

impl Markers {
    pub fn new() -> Markers {
        let dir = tempfile::tempdir().unwrap();
        let tb = env("COMMISSAIRE_TEST_TESTBED");
        let state = env("COMMISSAIRE_TEST_STATE");
        let d = dir.path().display().to_string();
        // restart: mark, then (detached, as a reboot would be) stop this
        // host's sshd, wait, start it again; marks when it went down and up.
        let restart = format!(
            r#"#!/bin/sh
A=$1; I=$(( ${{A##*.}} - 10 ))
echo "$A start $(date +%s.%N)" >> {d}/restart.log
setsid -f sh -c "{tb} sshd-stop {state} $I >/dev/null 2>&1; echo \"$A down \$(date +%s.%N)\" >> {d}/restart.log; sleep {DOWN_SECONDS}; {tb} sshd-start {state} $I >/dev/null 2>&1; echo \"$A up \$(date +%s.%N)\" >> {d}/restart.log" </dev/null >/dev/null 2>&1
"#
        );
        std::fs::write(dir.path().join("restart.sh"), restart).unwrap();
        // upgrade: mark start, take SLEEP seconds, mark end.
        let upgrade = format!(
            r#"#!/bin/sh
echo "$1 start $(date +%s.%N)" >> {d}/upgrade.log
sleep "${{2:-0}}"
echo "$1 end $(date +%s.%N)" >> {d}/upgrade.log
"#
        );
        std::fs::write(dir.path().join("upgrade.sh"), upgrade).unwrap();
        // deploy: the playbook appends the version as the last argument.
        let deploy = format!(
            r#"#!/bin/sh
echo "$1 $2 $(date +%s.%N)" >> {d}/deploy.log
"#
        );
        std::fs::write(dir.path().join("deploy.sh"), deploy).unwrap();
        Markers { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `ansible_vars` making the operations run the scripts; upgrades take `upgrade_seconds`.
    pub fn ansible_vars(&self, upgrade_seconds: f64) -> Value {
        let d = self.path().display();
        json!({
            "commissaire_restart_command": format!("sh {d}/restart.sh {{{{ inventory_hostname }}}}"),
            // Poll for the host as soon as its SSH port closed.
            "commissaire_restart_wait_delay": 0,
            "commissaire_restart_down_timeout": 30,
            "commissaire_restart_wait_timeout": 60,
            "commissaire_upgrade_command": format!("sh {d}/upgrade.sh {{{{ inventory_hostname }}}} {upgrade_seconds}"),
            "commissaire_deploy_command": format!("sh {d}/deploy.sh {{{{ inventory_hostname }}}}"),
        })
    }

    /// Lines of a marker file, split in words (empty if there is none yet).
    pub fn lines(&self, name: &str) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.path().join(name))
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    }

    /// `(address, event) -> time` from `restart.log` or `upgrade.log` (the last one of each).
    pub fn events(&self, name: &str) -> std::collections::HashMap<(String, String), f64> {
        self.lines(name)
            .into_iter()
            .map(|w| ((w[0].clone(), w[1].clone()), w[2].parse().unwrap()))
            .collect()
    }
}

/// The clusterexec settings for a test: the source tree's playbooks, the
/// marker scripts, a short lease.
pub fn exec_config(markers: &Markers, replica: &str, lease_seconds: f64) -> Value {
    json!({
        "replica_id": replica,
        "playbook_dir": commissaire_ansible::source_playbook_dir().display().to_string(),
        "ansible_vars": markers.ansible_vars(1.0),
        "lease_seconds": lease_seconds,
        "playbook_timeout_seconds": 120,
    })
}

/// A running stack.
pub struct Stack {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The bus.
    pub bus: Bus,
    /// The AMQP URI of the stack's vhost.
    pub amqp: String,
    /// An HTTP client.
    pub client: reqwest::Client,
    storage: commissaire_service::ServiceHandle,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.abort();
        self.storage.stop();
    }
}

impl Stack {
    /// Storage on etcd, and the REST server without authentication.
    pub async fn start() -> Stack {
        let amqp = testkit::fresh_vhost();
        let bus = commissaire_bus::connect(&amqp, "commissaire", Duration::from_secs(10))
            .await
            .unwrap();
        let router = StorageRouter::from_config(Some(&json!({
            "type": "etcd", "server_url": format!("http://{}", testkit::etcd_endpoint()), "prefix": testkit::etcd_prefix()
        })))
        .await
        .unwrap();
        let storage = commissaire_storage::start(router, bus.clone(), 4)
            .await
            .unwrap();
        let args = ServerArgs {
            no_config_file: true,
            request_timeout: Some(5.0),
            ..Default::default()
        };
        let config = ServerConfig::resolve(&args, &amqp).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server_bus = bus.clone();
        let server = tokio::spawn(async move {
            commissaire_http::serve_on(listener, config, server_bus)
                .await
                .unwrap();
        });
        let stack = Stack {
            base: format!("http://127.0.0.1:{port}"),
            bus,
            amqp,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            storage,
            server,
        };
        for _ in 0..100 {
            if stack.get("/api/v0/network/default").await.0 == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stack
    }

    /// A request; returns status and JSON body (`null` if none).
    pub async fn send(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
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

    /// GET.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None).await
    }

    /// PUT with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("PUT", path, Some(&body.to_string())).await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send("DELETE", path, None).await
    }

    /// Adds `hosts` as a cluster through the API: each host with the
    /// testbed's key (PUT /host), made `active` through storage (as the
    /// investigator would), then joined (PUT /cluster/NAME/hosts/ADDR).
    pub async fn cluster(&self, name: &str, hosts: &[&str]) {
        let key = std::fs::read(testkit::ssh_key()).unwrap();
        let key = base64::engine::general_purpose::STANDARD.encode(key);
        let (s, b) = self
            .put(&format!("/api/v0/cluster/{name}"), json!({}))
            .await;
        assert_eq!(s, 201, "{b}");
        for h in hosts {
            let (s, b) = self
                .put(
                    &format!("/api/v0/host/{h}"),
                    json!({"ssh_priv_key": key, "remote_user": "root"}),
                )
                .await;
            assert!(s == 201 || s == 200, "PUT host {h}: {s} {b}");
            let mut host = self
                .bus
                .request(
                    "storage.get",
                    json!({"model_type_name": "Host", "model_json_data": {"address": h}}),
                    Duration::from_secs(5),
                )
                .await
                .unwrap();
            host["status"] = json!("active");
            host["os"] = json!("fedora");
            self.bus
                .request(
                    "storage.save",
                    json!({"model_type_name": "Host", "model_json_data": host}),
                    Duration::from_secs(5),
                )
                .await
                .unwrap();
            let (s, b) = self
                .put(&format!("/api/v0/cluster/{name}/hosts/{h}"), json!({}))
                .await;
            assert_eq!(s, 200, "join {h}: {b}");
        }
    }

    /// Starts clusterexec in this process with `config` (see [`exec_config`]).
    pub async fn clusterexec(&self, config: &Value) -> ClusterExecHandle {
        let config = ClusterExecConfig::from_config(config.as_object().unwrap()).unwrap();
        let access = commissaire_host_access::HostAccess::start(
            commissaire_storage_client::StorageClient::new(self.bus.clone()),
            &config.ssh,
        )
        .unwrap();
        let exec = ClusterExec::new(self.bus.clone(), config, access);
        commissaire_clusterexec_service::start(exec, self.bus.clone(), 2)
            .await
            .unwrap()
    }

    /// Starts the `commissaire-clusterexec-service` binary with `config`.
    pub fn clusterexec_binary(&self, config: &Value, dir: &Path) -> Child {
        let path: PathBuf = dir.join(format!(
            "clusterexec-{}.conf",
            config["replica_id"].as_str().unwrap()
        ));
        std::fs::write(&path, config.to_string()).unwrap();
        Command::new(env!("CARGO_BIN_EXE_commissaire-clusterexec-service"))
            .args(["-c", path.to_str().unwrap(), "--bus-uri", &self.amqp])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .spawn()
            .expect("start commissaire-clusterexec-service")
    }

    /// Polls GET on the operation until it is no longer in process; also
    /// returns every distinct record seen meanwhile (without `lease_expires_at`).
    pub async fn wait_end(&self, name: &str, op: &str, within: Duration) -> (Value, Vec<Value>) {
        let (end, seen) = self.wait_end_timed(name, op, within).await;
        (end, seen.into_iter().map(|(_, r)| r).collect())
    }

    /// [`Stack::wait_end`], each record with the time (seconds since the
    /// epoch) it was first seen.
    pub async fn wait_end_timed(
        &self,
        name: &str,
        op: &str,
        within: Duration,
    ) -> (Value, Vec<(f64, Value)>) {
        let deadline = Instant::now() + within;
        let mut seen: Vec<(f64, Value)> = Vec::new();
        loop {
            let (s, r) = self.get(&format!("/api/v0/cluster/{name}/{op}")).await;
            assert_eq!(s, 200, "{r}");
            let mut shown = r.clone();
            if let Some(m) = shown.as_object_mut() {
                m.remove("lease_expires_at");
            }
            if seen.last().map(|l| &l.1) != Some(&shown) {
                seen.push((epoch_now(), shown));
            }
            if r["status"] != "in_process" {
                return (r, seen);
            }
            assert!(
                Instant::now() < deadline,
                "the {op} of {name} is still in process after {within:?}: {r}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The members of a JSON list of strings.
pub fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Seconds between two record timestamps.
pub fn seconds_between(from: &Value, to: &Value) -> f64 {
    let p = |v: &Value| commissaire_models::parse_iso(v.as_str().unwrap()).unwrap();
    (p(to) - p(from)).as_seconds_f64()
}

/// One test at a time uses the sshd hosts.
pub static HOSTS_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Seconds since the epoch (comparable with the markers' `date +%s.%N`).
pub fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A cluster with a container manager: the test bed's real Kubernetes API
/// server with a kubelet stand-in for the hosts' nodes (Ready once
/// registered; evicted pods finished), the containermgr service on the
/// stack's bus, and the hosts joined with their nodes registered, one pod
/// (`app-on-HOST`, in the kube's namespace) on each.
pub struct Managed {
    pub kube: commissaire_testkit::kube_api::RealKube,
    pub kubelet: commissaire_testkit::kube_api::Kubelet,
    _containermgr: commissaire_service::ServiceHandle,
}

impl Stack {
    /// Creates cluster `name` of `hosts` on a container manager `k8s` (see [`Managed`]).
    pub async fn managed_cluster(&self, name: &str, hosts: &[&str]) -> Managed {
        use commissaire_testkit::kube_api::{RealKube, is_ready};
        let kube = RealKube::connect(hosts).await;
        let kubelet = kube.kubelet(hosts);
        let containermgr = std::sync::Arc::new(
            commissaire_containermgr_service::ContainerManagerService::new(self.bus.clone()),
        );
        let containermgr = commissaire_service::run(containermgr, self.bus.clone(), 4)
            .await
            .unwrap();
        let cm = json!({"type": "kubernetes", "options": kube.options()});
        assert_eq!(self.put("/api/v0/containermanager/k8s", cm).await.0, 201);
        let (s, b) = self
            .put(
                &format!("/api/v0/cluster/{name}"),
                json!({"container_manager": "k8s"}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let key = base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(testkit::ssh_key()).unwrap());
        let t = Duration::from_secs(10);
        for h in hosts {
            self.put(&format!("/api/v0/host/{h}"), json!({"ssh_priv_key": key}))
                .await;
            let mut host = self
                .bus
                .request(
                    "storage.get",
                    json!({"model_type_name": "Host", "model_json_data": {"address": h}}),
                    t,
                )
                .await
                .unwrap();
            host["status"] = json!("disassociated");
            self.bus
                .request(
                    "storage.save",
                    json!({"model_type_name": "Host", "model_json_data": host}),
                    t,
                )
                .await
                .unwrap();
            // The host joins; no investigator runs here, so its node is
            // registered as the investigator's join would.
            let (s, b) = self
                .put(&format!("/api/v0/cluster/{name}/hosts/{h}"), json!({}))
                .await;
            assert_eq!(s, 200, "{b}");
            self.bus
                .request("container.register_node", json!(["k8s", h]), t)
                .await
                .unwrap();
            kube.create_pod(&format!("app-on-{h}"), h, json!({"app": "app"}), false)
                .await;
        }
        for h in hosts {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !kube.node(h).await.is_some_and(|n| is_ready(&n)) {
                assert!(Instant::now() < deadline, "node {h} never became Ready");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Managed {
            kube,
            kubelet,
            _containermgr: containermgr,
        }
    }
}
