//! Commissaire's fault-injection suite (issue 8), run with the rest of the
//! workspace's tests by `scripts/test.sh` (and so by `.ci/run`).
//!
//! Every test starts the real split stack ([`SplitStack`]: the server and the
//! daemon binaries, on a fresh RabbitMQ vhost and etcd prefix of the test
//! bed) and breaks something for real: `kill -9` of a daemon, a RabbitMQ or
//! etcd restart under load, an SSH host cut mid-operation, garbage on the
//! server's port and on the bus. The tests then check that no acknowledged
//! record was lost or corrupted, that no operation stays `in_process`, that
//! clients got clear errors (503 with a JSON body, never a 500 or a hang)
//! during the outage and success after it, and that the daemons recovered by
//! themselves.
//!
//! This library holds what the tests share: an HTTP client for the stack
//! ([`Api`]), a bus client ([`bus`]), polling ([`wait_until`]), guards that
//! bring the broker and etcd back even when an assertion fails
//! ([`BrokerDown`], [`EtcdDown`]), and the lock that serialises the tests
//! ([`serial`]).

use std::future::Future;
use std::time::{Duration, Instant};

pub use commissaire_testkit as testkit;
pub use commissaire_testkit::daemons::{Daemon, SplitStack};
use serde_json::{Value, json};

/// Seconds the server waits for a backing service before answering 503.
pub const REQUEST_TIMEOUT: f64 = 2.0;

/// How long the server may answer a GET from its read cache (its
/// `read-cache-seconds` default, 2 s, plus room for a loaded machine).
pub const READ_CACHE: Duration = Duration::from_secs(3);

/// The longest an API call may take: the server's request timeout (a request
/// ends at its first call that times out) plus room for the calls that
/// succeeded before it on a loaded machine.
pub const HANG_LIMIT: Duration = Duration::from_secs(5);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Serialises the fault tests of one test binary (they run in parallel
/// threads otherwise): a broker or etcd restart must not hit another fault
/// test, and the machine is small. Hold the guard for the whole test.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// The stack's configuration for fault tests: the server gives up on a
/// backing service after [`REQUEST_TIMEOUT`] seconds.
pub fn stack() -> Stack {
    let mut stack = SplitStack::new(&testkit::fresh_vhost(), 4);
    stack.configure(Daemon::Server, "request-timeout", json!(REQUEST_TIMEOUT));
    Stack(stack)
}

/// A [`SplitStack`] on a vhost of its own, which is deleted with it (a
/// broker holding hundreds of vhosts restarts slowly).
pub struct Stack(SplitStack);

impl std::ops::Deref for Stack {
    type Target = SplitStack;
    fn deref(&self) -> &SplitStack {
        &self.0
    }
}

impl std::ops::DerefMut for Stack {
    fn deref_mut(&mut self) -> &mut SplitStack {
        &mut self.0
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for daemon in Daemon::ALL {
            self.0.kill(daemon);
        }
        // Best effort, and never a panic (this may run while unwinding).
        let Some(vhost) = self.0.bus_uri.rsplit('/').next().map(str::to_string) else {
            return;
        };
        if let Ok(ctl) = std::env::var("COMMISSAIRE_TEST_RABBITMQCTL") {
            let mut parts = ctl.split_whitespace();
            if let Some(program) = parts.next() {
                let _ = std::process::Command::new(program)
                    .args(parts)
                    .args(["delete_vhost", &vhost])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
}

/// Starts `daemons` and waits until the server serves authenticated reads.
pub async fn start(stack: &mut SplitStack, daemons: &[Daemon]) {
    stack.start_all(daemons);
    assert!(
        stack.wait_ready(Duration::from_secs(60)).await,
        "the stack did not come up; server log:\n{}\nstorage log:\n{}",
        stack.log(Daemon::Server),
        stack.log(Daemon::Storage)
    );
    // The server creates the default network in the background.
    let api = Api::new(stack);
    wait_until(
        Duration::from_secs(30),
        "the default network exists",
        || {
            let api = api.clone();
            async move {
                let a = api.get("/api/v0/network/default").await;
                if a.status == Some(200) {
                    Ok(())
                } else {
                    Err(format!("{a:?}"))
                }
            }
        },
    )
    .await;
}

/// The test bed's ssh hosts `range` (0-based; the test bed names them
/// SSH_NET.11, .12, ...). Each test uses its own, so none disturbs another.
pub fn testbed_hosts(range: std::ops::Range<usize>) -> Vec<String> {
    let all = testkit::ssh_hosts();
    assert!(
        all.len() >= range.end,
        "the fault suite needs at least {} ssh hosts in the test bed (N_SSH), it has {}",
        range.end,
        all.len()
    );
    all[range].to_vec()
}

/// The playbooks of the source tree.
pub fn playbook_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../playbooks").to_string()
}

/// The test bed's private key, base64 (the `ssh_priv_key` of a host).
pub fn key_b64() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(testkit::ssh_key()).expect("the test bed's key"))
}

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

/// A bus client on the stack's bus (to read records and publish raw messages).
pub async fn bus(stack: &SplitStack) -> commissaire_bus::Bus {
    commissaire_bus::connect(&stack.bus_uri, "commissaire", Duration::from_secs(10))
        .await
        .expect("connect to the stack's bus")
}

/// A record read through `storage.get` (e.g. `("Host", {"address": ...})`).
pub async fn storage_get(
    bus: &commissaire_bus::Bus,
    model: &str,
    key: Value,
) -> Result<Value, commissaire_bus::BusError> {
    bus.request(
        "storage.get",
        json!({"model_type_name": model, "model_json_data": key}),
        Duration::from_secs(5),
    )
    .await
}

/// Saves a record through `storage.save`.
pub async fn storage_save(bus: &commissaire_bus::Bus, model: &str, record: Value) {
    bus.request(
        "storage.save",
        json!({"model_type_name": model, "model_json_data": record}),
        Duration::from_secs(5),
    )
    .await
    .unwrap_or_else(|e| panic!("storage.save {model}: {e}"));
}

/// Sets a stored host's status as the investigator would (through storage).
pub async fn set_host_status(bus: &commissaire_bus::Bus, address: &str, status: &str) {
    let mut host = storage_get(bus, "Host", json!({"address": address}))
        .await
        .unwrap_or_else(|e| panic!("host {address}: {e}"));
    host["status"] = json!(status);
    host["os"] = json!("fedora");
    storage_save(bus, "Host", host).await;
}

/// Polls `probe` every 200 ms until it returns `Some`, for up to `within`;
/// panics with `what` and the last value seen otherwise.
pub async fn wait_until<T, F, Fut>(within: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; last seen: {last}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits up to `within` until `path` exists (a test host's marker file).
pub async fn wait_for_file(path: &std::path::Path, within: Duration, what: &str) {
    wait_until(within, what, || {
        let reached = path.exists();
        async move {
            if reached {
                Ok(())
            } else {
                Err(format!("{} does not exist yet", path.display()))
            }
        }
    })
    .await
}

/// Waits up to `within` until the host at `path` (`/api/v0/host/ADDR`) is
/// no longer `investigating` or `bootstrapping`; returns its record.
pub async fn wait_investigation_ends(api: &Api, path: &str, within: Duration, what: &str) -> Value {
    wait_until(within, what, || async move {
        let a = api.get(path).await;
        match a.body["status"].as_str() {
            Some("investigating" | "bootstrapping") | None => Err(format!("{a:?}")),
            Some(_) => Ok(a.body),
        }
    })
    .await
}

/// Waits up to `within` for the investigation of the host at `path` to end
/// and asserts it ended `status`; on failure the message shows the host and
/// the investigator's log. Returns the host record.
pub async fn assert_investigation_ends(
    api: &Api,
    stack: &SplitStack,
    path: &str,
    status: &str,
    within: Duration,
    what: &str,
) -> Value {
    let host = wait_investigation_ends(api, path, within, what).await;
    assert_eq!(
        host["status"],
        status,
        "{what}: {host}\ninvestigator log:\n{}",
        stack.log(Daemon::Investigator)
    );
    host
}

/// Creates the container manager `k8s` (Kubernetes at `kube_url`, bearer
/// `token`) and the cluster `managed` using it.
pub async fn create_managed_cluster(api: &Api, kube_url: &str, token: &str) {
    api.put_expect(
        "/api/v0/containermanager/k8s",
        json!({"type": "kubernetes", "options": {"server_url": kube_url, "token": token}}),
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

/// Stops the broker (`rabbitmqctl stop_app`) and starts it again when
/// dropped, also when the test panics.
pub struct BrokerDown(bool);

impl BrokerDown {
    /// Stops the broker.
    pub fn stop() -> BrokerDown {
        testkit::rabbitmqctl(&["stop_app"]);
        BrokerDown(true)
    }

    /// Starts it again now.
    pub fn restore(mut self) {
        self.0 = false;
        testkit::rabbitmqctl(&["start_app"]);
        testkit::rabbitmqctl(&["await_startup"]);
    }
}

impl Drop for BrokerDown {
    fn drop(&mut self) {
        if self.0 {
            testkit::rabbitmqctl(&["start_app"]);
        }
    }
}

/// Stops etcd and starts it again when dropped, also when the test panics.
pub struct EtcdDown(bool);

impl EtcdDown {
    /// Stops etcd.
    pub fn stop() -> EtcdDown {
        testkit::etcd_stop();
        EtcdDown(true)
    }

    /// Starts it again now (waits until it is healthy).
    pub fn restore(mut self) {
        self.0 = false;
        testkit::etcd_start();
    }
}

impl Drop for EtcdDown {
    fn drop(&mut self) {
        if self.0 {
            testkit::etcd_start();
        }
    }
}

/// Test scripts that the clusterexec operations run on the hosts (which are
/// this machine), leaving marker lines in a temporary directory.
pub struct Markers {
    /// The directory.
    pub dir: tempfile::TempDir,
}

impl Default for Markers {
    fn default() -> Self {
        Self::new()
    }
}

impl Markers {
    /// The scripts: `restart.sh ADDRESS` stops the test bed host's sshd
    /// (detached, as a reboot would), keeps it down `down_seconds`, starts
    /// it again, and logs `ADDRESS start|down|up TIME`.
    pub fn new() -> Markers {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let tb = std::env::var("COMMISSAIRE_TEST_TESTBED").expect("COMMISSAIRE_TEST_TESTBED");
        let state = std::env::var("COMMISSAIRE_TEST_STATE").expect("COMMISSAIRE_TEST_STATE");
        let d = dir.path().display().to_string();
        let restart = format!(
            r#"#!/bin/sh
A=$1; I=$(( ${{A##*.}} - 10 ))
echo "$A start $(date +%s.%N)" >> {d}/restart.log
setsid -f sh -c "{tb} sshd-stop {state} $I >/dev/null 2>&1; echo \"$A down \$(date +%s.%N)\" >> {d}/restart.log; sleep 2; {tb} sshd-start {state} $I >/dev/null 2>&1; echo \"$A up \$(date +%s.%N)\" >> {d}/restart.log" </dev/null >/dev/null 2>&1
"#
        );
        std::fs::write(dir.path().join("restart.sh"), restart).expect("write restart.sh");
        let upgrade = format!(
            "#!/bin/sh\necho \"$1 start $(date +%s.%N)\" >> {d}/upgrade.log\nsleep \"${{2:-0}}\"\necho \"$1 end $(date +%s.%N)\" >> {d}/upgrade.log\n"
        );
        std::fs::write(dir.path().join("upgrade.sh"), upgrade).expect("write upgrade.sh");
        Markers { dir }
    }

    /// The `ansible_vars` making restarts and upgrades run the scripts
    /// (an upgrade takes `upgrade_seconds`).
    pub fn ansible_vars(&self, upgrade_seconds: f64) -> Value {
        let d = self.dir.path().display();
        json!({
            "commissaire_restart_command": format!("sh {d}/restart.sh {{{{ inventory_hostname }}}}"),
            "commissaire_restart_wait_delay": 0,
            "commissaire_restart_down_timeout": 20,
            "commissaire_restart_wait_timeout": 30,
            "commissaire_upgrade_command": format!("sh {d}/upgrade.sh {{{{ inventory_hostname }}}} {upgrade_seconds}"),
        })
    }

    /// Lines of a marker file, split in words (empty if there is none yet).
    pub fn lines(&self, name: &str) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    }
}

/// Bootstrap variables that keep every command and file inside `dir`; the
/// docker step logs each run and takes `slow` seconds.
pub fn bootstrap_vars(dir: &std::path::Path, slow: u32) -> Value {
    let d = dir.display();
    let script = dir.join("slow");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1 $(date +%s.%N)\" >> {d}/slow.log\nsleep {slow}\ntouch {d}/$1\n"
        ),
    )
    .unwrap();
    let record = dir.join("record");
    std::fs::write(
        &record,
        format!("#!/bin/sh\necho \"$@\" >> {d}/services.log\n"),
    )
    .unwrap();
    for f in [&script, &record] {
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut std::fs::metadata(f).unwrap().permissions(),
            0o755,
        );
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    json!({
        "commissaire_enable_pkg_repos": format!("touch {d}/enable_pkg_repos"),
        "commissaire_install_libselinux_python": format!("touch {d}/install_libselinux_python"),
        "commissaire_install_flannel": format!("touch {d}/install_flannel"),
        "commissaire_install_docker": format!("{d}/slow install_docker"),
        "commissaire_install_kube": format!("touch {d}/install_kube"),
        "commissaire_service_enable_command": format!("{d}/record enable"),
        "commissaire_service_restart_command": format!("{d}/record restart"),
        "commissaire_flanneld_config": format!("{d}/flanneld"),
        "commissaire_docker_config": format!("{d}/docker"),
        "commissaire_kubernetes_config": format!("{d}/kubernetes_config"),
        "commissaire_kubeconfig_config": format!("{d}/kubeconfig"),
        "commissaire_kubelet_config": format!("{d}/kubelet"),
    })
}

/// The members of a JSON list of strings.
pub fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the cluster operation `op` of `cluster` is no longer
/// `in_process` (reading it through the API) and returns its record.
pub async fn wait_op_end(api: &Api, cluster: &str, op: &str, within: Duration) -> Value {
    let path = format!("/api/v0/cluster/{cluster}/{op}");
    wait_until(within, &format!("the {op} of {cluster} ends"), || async {
        let a = api.get(&path).await;
        match a.status {
            Some(200) if a.body["status"] != "in_process" => Ok(a.body),
            _ => Err(format!("{a:?}")),
        }
    })
    .await
}

/// Clients writing and reading through the API while a fault happens.
pub mod load {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use serde_json::json;

    use crate::{Answer, Api, HANG_LIMIT, READ_CACHE, key_b64, strs};

    /// Running clients.
    pub struct Load {
        stop: Arc<AtomicBool>,
        log: Arc<Mutex<Vec<(String, Answer)>>>,
        clients: Vec<tokio::task::JoinHandle<(Vec<String>, Vec<String>)>>,
    }

    /// What the clients did.
    pub struct Report {
        /// Every answer, with what was asked (`PUT cluster c0-1`).
        pub answers: Vec<(String, Answer)>,
        /// Clusters acknowledged with 201.
        pub clusters: Vec<String>,
        /// Hosts acknowledged with 201.
        pub hosts: Vec<String>,
    }

    impl Load {
        /// Starts `n` clients, each creating clusters (`c<id>-<i>`) and hosts
        /// (`10.<id>.x.y`, prefix `net`) and reading them back, in a loop.
        pub fn start(api: &Api, n: usize, net: u8) -> Load {
            let stop = Arc::new(AtomicBool::new(false));
            let log = Arc::new(Mutex::new(Vec::new()));
            let clients = (0..n)
                .map(|id| tokio::spawn(client(api.clone(), id, net, stop.clone(), log.clone())))
                .collect();
            Load { stop, log, clients }
        }

        /// Stops the clients and returns what they did.
        pub async fn finish(self) -> Report {
            self.stop.store(true, Ordering::Relaxed);
            let mut clusters = Vec::new();
            let mut hosts = Vec::new();
            for c in self.clients {
                let (c, h) = c.await.expect("a load client panicked");
                clusters.extend(c);
                hosts.extend(h);
            }
            let answers = std::mem::take(&mut *self.log.lock().unwrap());
            Report {
                answers,
                clusters,
                hosts,
            }
        }
    }

    async fn client(
        api: Api,
        id: usize,
        net: u8,
        stop: Arc<AtomicBool>,
        log: Arc<Mutex<Vec<(String, Answer)>>>,
    ) -> (Vec<String>, Vec<String>) {
        let mut clusters = Vec::new();
        let mut hosts = Vec::new();
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let name = format!("c{id}-{i}");
            let a = api
                .put(
                    &format!("/api/v0/cluster/{name}"),
                    json!({"network": "default"}),
                )
                .await;
            if a.status == Some(201) {
                clusters.push(name.clone());
            }
            log.lock().unwrap().push((format!("PUT cluster {name}"), a));
            let address = format!("10.{net}.{}.{}", id * 50 + i / 200, i % 200 + 1);
            let a = api.put_host(&address).await;
            if a.status == Some(201) {
                hosts.push(address.clone());
            }
            log.lock().unwrap().push((format!("PUT host {address}"), a));
            if let Some(known) = clusters.last() {
                let a = api.get(&format!("/api/v0/cluster/{known}")).await;
                log.lock()
                    .unwrap()
                    .push((format!("GET cluster {known}"), a));
            }
        }
        (clusters, hosts)
    }

    impl Report {
        /// Checks the answers around an outage from `down` to `up`: only
        /// success or a clear 503, never slower than [`HANG_LIMIT`]; every
        /// request sent after `down` (plus `grace`) and answered before `up`
        /// got a clear 503 (or, for a read within [`READ_CACHE`] of `down`,
        /// the right record from the server's read cache); some writes were
        /// acknowledged before and after.
        /// Returns (the 503s during the outage, the slowest answer).
        pub fn check_outage(
            &self,
            down: Instant,
            up: Instant,
            grace: Duration,
        ) -> (usize, Duration) {
            let mut outage_503 = 0;
            let mut slowest = Duration::ZERO;
            for (what, a) in &self.answers {
                slowest = slowest.max(a.took);
                assert!(a.took <= HANG_LIMIT, "{what} took {:?}: {a:?}", a.took);
                assert!(
                    matches!(a.status, Some(200 | 201 | 503)),
                    "{what}: only success or a clear 503: {a:?}"
                );
                if a.status == Some(503) {
                    assert!(a.is_clear_503(), "{what}: a 503 says what is wrong: {a:?}");
                }
                if a.sent > down + grace && a.sent + a.took < up {
                    // A read may come from the server's read cache for a
                    // while (READ_CACHE): then it must be the right record.
                    if let Some(name) = what.strip_prefix("GET cluster ")
                        && a.status == Some(200)
                    {
                        assert_eq!(a.body["name"], name, "{what} during the outage: {a:?}");
                        assert!(
                            a.sent < down + READ_CACHE + grace,
                            "{what}: a cached answer long into the outage: {a:?}"
                        );
                        continue;
                    }
                    assert!(a.is_clear_503(), "{what} during the outage: {a:?}");
                    outage_503 += 1;
                }
            }
            assert!(
                outage_503 >= 3,
                "clients kept asking during the outage ({outage_503} answers)"
            );
            let acked = |pred: &dyn Fn(&Answer) -> bool| {
                self.answers
                    .iter()
                    .filter(|(_, a)| a.status == Some(201) && pred(a))
                    .count()
            };
            let before = acked(&|a| a.sent + a.took < down);
            let after = acked(&|a| a.sent > up);
            assert!(
                before > 0 && after > 0,
                "writes acknowledged before ({before}) and after ({after}) the outage"
            );
            (outage_503, slowest)
        }

        /// Every cluster and host acknowledged is there, intact.
        pub async fn check_intact(&self, api: &Api) {
            for name in &self.clusters {
                let body = api.get_ok(&format!("/api/v0/cluster/{name}")).await;
                assert_eq!(body["name"], name.as_str(), "{body}");
                assert_eq!(body["network"], "default", "{body}");
            }
            for address in &self.hosts {
                let body = api.get_ok(&format!("/api/v0/host/{address}")).await;
                assert_eq!(body["address"], address.as_str(), "{body}");
                let creds = api.get_ok(&format!("/api/v0/host/{address}/creds")).await;
                assert_eq!(
                    creds["ssh_priv_key"],
                    key_b64(),
                    "the credentials of {address}"
                );
            }
            let listed = strs(&api.get_ok("/api/v0/clusters").await);
            for name in &self.clusters {
                assert!(listed.contains(name), "{name} is not listed");
            }
            let hosts: Vec<String> = api
                .get_ok("/api/v0/hosts")
                .await
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|h| h["address"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            for address in &self.hosts {
                assert!(hosts.contains(address), "{address} is not listed");
            }
        }
    }

    /// Waits until a write through the API succeeds again (up to `within`).
    pub async fn recovered(api: &Api, within: Duration) -> Duration {
        let t0 = Instant::now();
        let name = format!("probe-{}", uuid::Uuid::new_v4().simple());
        crate::wait_until(within, "a write succeeds after the outage", || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let a = api.put(&format!("/api/v0/network/{name}"), json!({})).await;
                if a.status == Some(201) {
                    Ok(())
                } else {
                    Err(format!("{a:?}"))
                }
            }
        })
        .await;
        t0.elapsed()
    }
}
