//! The investigator: when a host is added (`jobs.investigate`), it gathers
//! the host's facts over SSH, runs the bootstrap playbook with the cluster's
//! network and container manager settings, and records each step in the
//! host's `status`:
//!
//! `investigating` -> `bootstrapping` -> `disassociated` (no container
//! manager) or `active` (registered with the cluster's container manager),
//! or `failed` with the `reason` kept on the host record.

mod claim;

pub use claim::FirstScan;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use commissaire_ansible::{Facts, Playbook, PlaybookRunner, Target, merged_vars};
use commissaire_bus::{Bus, BusError, RpcError, codes};
use commissaire_host_access::{AccessError, HostAccess, SshSettings};
use commissaire_models::*;
use commissaire_service::{MemberError, Methods, Seconds, Service, parse_members};
use commissaire_storage_client::{StorageCallError, StorageClient};
use serde_json::{Map, Value, json};

/// The investigator's settings (members of `investigator.conf`).
#[derive(Debug, Clone)]
pub struct InvestigatorConfig {
    /// Where the playbooks are (`playbook_dir`).
    pub playbook_dir: PathBuf,
    /// Variables given to every playbook run, over the OS command set (`ansible_vars`).
    pub ansible_vars: Map<String, Value>,
    /// Per-OS overrides of the command sets (`os_commands`: `{"fedora": {...}}`).
    pub os_commands: Map<String, Value>,
    /// Time limit for fact gathering (`facts_timeout`, seconds).
    pub facts_timeout: Duration,
    /// Time limit for the bootstrap playbook (`bootstrap_timeout`, seconds).
    pub bootstrap_timeout: Duration,
    /// How many bootstrap playbooks this replica runs at once
    /// (`bootstrap_concurrency`, default twice the CPUs, at least 2); the
    /// others wait their turn (still `bootstrapping`), and their time limit
    /// starts when they run. Twenty `ansible-playbook` processes at once on
    /// two cores each took 70 s to over 120 s; a few at a time finish fast.
    pub bootstrap_concurrency: usize,
    /// etcd URL given to flannel for `flannel_etcd` networks (`etcd_server_url`).
    pub etcd_server_url: String,
    /// How long to wait for the container manager to report the node Ready (`node_ready_timeout`, seconds).
    pub node_ready_timeout: Duration,
    /// How long a storage call is retried while storage or the bus is
    /// unavailable (`storage_retry_timeout`, seconds, default 300), so that
    /// an outage during an investigation does not leave the host
    /// `investigating` or `bootstrapping` for ever.
    pub storage_retry_timeout: Duration,
    /// How long a replica's claim on an investigation holds without
    /// renewal (`lease_seconds`, default 30; renewed every third of it).
    pub lease: Duration,
    /// How often the investigation records are scanned for work nobody
    /// owns (`scan_seconds`, default 10).
    pub scan: Duration,
    /// This replica's name in the records' `owner` (`replica_id`, default
    /// `<hostname>-<pid>-<random>`).
    pub replica_id: String,
    /// The session pool's limits (`ssh`).
    pub ssh: SshSettings,
}

/// The investigator's own members of its configuration document, typed.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Members {
    playbook_dir: Option<PathBuf>,
    ansible_vars: Option<Map<String, Value>>,
    os_commands: Option<Map<String, Value>>,
    facts_timeout: Option<Seconds>,
    bootstrap_timeout: Option<Seconds>,
    bootstrap_concurrency: Option<std::num::NonZeroUsize>,
    etcd_server_url: Option<String>,
    node_ready_timeout: Option<Seconds>,
    storage_retry_timeout: Option<Seconds>,
    lease_seconds: Option<Seconds>,
    scan_seconds: Option<Seconds>,
    replica_id: Option<String>,
    ssh: Option<SshSettings>,
}

impl InvestigatorConfig {
    /// Reads the members of a service configuration document; an unknown
    /// member or one of the wrong type is an error naming it.
    pub fn from_config(config: &Map<String, Value>) -> Result<Self, MemberError> {
        let m: Members = parse_members("investigator", config)?;
        let secs =
            |v: Option<Seconds>, default: u64| v.map_or(Duration::from_secs(default), |s| s.0);
        let replica_id = match m.replica_id {
            None => commissaire_service::replica_id("investigator"),
            Some(id) if !id.trim().is_empty() => id.trim().to_string(),
            Some(_) => {
                return Err(MemberError {
                    service: "investigator".into(),
                    member: "replica_id".into(),
                    reason: "must not be empty".into(),
                });
            }
        };
        Ok(InvestigatorConfig {
            playbook_dir: m
                .playbook_dir
                .unwrap_or_else(commissaire_ansible::default_playbook_dir),
            ansible_vars: m.ansible_vars.unwrap_or_default(),
            os_commands: m.os_commands.unwrap_or_default(),
            facts_timeout: secs(m.facts_timeout, 60),
            bootstrap_timeout: secs(m.bootstrap_timeout, 1800),
            bootstrap_concurrency: m
                .bootstrap_concurrency
                .map(std::num::NonZeroUsize::get)
                .unwrap_or_else(default_bootstrap_concurrency),
            etcd_server_url: m
                .etcd_server_url
                .unwrap_or_else(|| "http://127.0.0.1:2379".into()),
            node_ready_timeout: secs(m.node_ready_timeout, 300),
            storage_retry_timeout: secs(m.storage_retry_timeout, 300),
            lease: secs(m.lease_seconds, 30),
            scan: secs(m.scan_seconds, 10),
            replica_id,
            ssh: m.ssh.unwrap_or_default(),
        })
    }
}

/// Twice the CPUs this process may use, at least 2.
fn default_bootstrap_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get() * 2)
        .max(2)
}

/// The investigator service.
pub struct Investigator {
    storage: StorageClient,
    access: HostAccess,
    bus: Bus,
    config: InvestigatorConfig,
    /// The hosts this replica is investigating now.
    running: claim::Running,
    /// Turns to run a bootstrap playbook ([`InvestigatorConfig::bootstrap_concurrency`]).
    bootstrap_slots: Arc<tokio::sync::Semaphore>,
}

fn storage_error(e: StorageCallError) -> RpcError {
    match e {
        StorageCallError::NotFound(m) => RpcError::lookup(m),
        StorageCallError::Conflict { message, .. } => RpcError::new(codes::CONFLICT, message),
        StorageCallError::Bus(b) => b
            .rpc()
            .cloned()
            .unwrap_or_else(|| RpcError::unavailable(b.to_string())),
        StorageCallError::Decode(m) => RpcError::internal(m),
    }
}

impl Investigator {
    /// An investigator working through `bus`, connecting to hosts through
    /// `access` (the process's session pool).
    pub fn new(bus: Bus, config: InvestigatorConfig, access: HostAccess) -> Self {
        Investigator {
            storage: StorageClient::new(bus.clone())
                .with_outage_patience(config.storage_retry_timeout),
            access,
            bus,
            bootstrap_slots: Arc::new(tokio::sync::Semaphore::new(
                config.bootstrap_concurrency.max(1),
            )),
            config,
            running: claim::Running::default(),
        }
    }

    /// Changes the stored host ([`StorageClient::update`]), so that
    /// concurrent writers (API, watcher) never lose updates.
    async fn update_host(
        &self,
        address: &str,
        change: impl Fn(&mut Host),
    ) -> Result<Host, RpcError> {
        self.storage
            .update(json!({"address": address}), |h: &mut Host| {
                change(h);
                Ok::<_, std::convert::Infallible>(true)
            })
            .await
            .map_err(|e| match StorageCallError::from(e) {
                e if e.is_conflict() => RpcError::unavailable(format!(
                    "host {address} keeps changing; gave up updating it"
                )),
                e => storage_error(e),
            })
    }

    async fn fail(&self, address: &str, reason: String) -> Result<Value, RpcError> {
        tracing::warn!(address, %reason, "host failed");
        self.update_host(address, |h| {
            h.status = HostState::Failed;
            h.reason = reason.clone();
            h.last_check = now_iso();
        })
        .await?;
        Ok(json!({"address": address, "status": "failed", "reason": reason}))
    }

    /// The cluster the host belongs to: from the job, else by looking.
    async fn cluster_of(
        &self,
        address: &str,
        cluster_data: &Value,
    ) -> Result<Option<Cluster>, RpcError> {
        if let Some(name) = cluster_data
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return match self.storage.get::<Cluster>(json!({"name": name})).await {
                Ok(c) => Ok(Some(c)),
                Err(StorageCallError::NotFound(_)) => Ok(None),
                Err(e) => Err(storage_error(e)),
            };
        }
        let clusters = self
            .storage
            .list::<Cluster>()
            .await
            .map_err(storage_error)?;
        Ok(clusters
            .into_iter()
            .find(|c| c.hostset.iter().any(|a| a == address)))
    }

    /// The playbook variables for bootstrapping `host` into `cluster`.
    async fn bootstrap_vars(
        &self,
        host: &Host,
        cluster: Option<&Cluster>,
    ) -> Result<Map<String, Value>, RpcError> {
        let os = host.os.as_str();
        let mut overrides = self
            .config
            .os_commands
            .get(os)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        overrides.extend(self.config.ansible_vars.clone());
        let mut vars = merged_vars(os, &overrides);
        vars.insert("commissaire_bootstrap_ip".into(), json!(host.address));
        vars.insert("commissaire_targets".into(), json!(host.address));
        let network_name = cluster.map(|c| c.network.as_str()).unwrap_or("default");
        let network = match self
            .storage
            .get::<Network>(json!({"name": network_name}))
            .await
        {
            Ok(n) => n,
            Err(StorageCallError::NotFound(_)) => Network::default_network(),
            Err(e) => return Err(storage_error(e)),
        };
        vars.insert("commissaire_network_type".into(), json!(network.kind));
        match network.kind {
            NetworkType::FlannelEtcd => {
                vars.entry("commissaire_etcd_server_url")
                    .or_insert(json!(self.config.etcd_server_url));
                let key = network
                    .options
                    .get("key")
                    .cloned()
                    .unwrap_or_else(|| json!(format!("/atomic.io/network/{}", network.name)));
                vars.entry("commissaire_flannel_key").or_insert(key);
            }
            NetworkType::FlannelServer => {
                let address = network
                    .options
                    .get("address")
                    .cloned()
                    .unwrap_or(Value::Null);
                vars.insert("commissaire_flanneld_server".into(), address);
            }
        }
        if let Some(cm_name) = cluster
            .map(|c| c.container_manager.as_str())
            .filter(|c| !c.is_empty())
        {
            let cm: ContainerManagerConfig = self
                .storage
                .get(json!({"name": cm_name}))
                .await
                .map_err(storage_error)?;
            let option = |k: &str| cm.options.get(k).cloned();
            if let Some(url) = option("server_url") {
                vars.insert("commissaire_kubernetes_api_server_url".into(), url);
            }
            if let Some(token) = option("token") {
                vars.insert("commissaire_kubernetes_bearer_token".into(), token);
            }
            if let Some(cert) = option("certificate_path") {
                vars.insert("commissaire_kubernetes_client_cert_path_local".into(), cert);
            }
            if let Some(key) = option("certificate_key_path") {
                vars.insert("commissaire_kubernetes_client_key_path_local".into(), key);
            }
        }
        Ok(vars)
    }

    /// Registers the node with the cluster's container manager and waits
    /// until the manager reports it Ready, for up to `node_ready_timeout`.
    /// A manager that cannot be reached (containermgr down, the bus
    /// reconnecting) is asked again every 2 s meanwhile: an outage delays
    /// the join, it does not fail it. Errors say why.
    async fn register(&self, cm_name: &str, address: &str) -> Result<(), String> {
        const CALL: Duration = Duration::from_secs(10);
        let timeout = self.config.node_ready_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let unreachable = |e: &BusError| {
            e.is_unavailable() || e.rpc().is_some_and(|r| r.code == codes::UNAVAILABLE)
        };
        let params = json!([cm_name, address]);
        let mut registered = false;
        let mut last = String::from("no answer yet");
        loop {
            if !registered {
                match self
                    .bus
                    .request("container.register_node", params.clone(), CALL)
                    .await
                {
                    Ok(_) => registered = true,
                    Err(e) if unreachable(&e) => last = e.to_string(),
                    Err(e) => {
                        return Err(format!(
                            "container manager '{cm_name}' did not register the node: {e}"
                        ));
                    }
                }
            }
            if registered {
                match self
                    .bus
                    .request("container.node_registered", params.clone(), CALL)
                    .await
                {
                    Ok(state) if state["ready"] == true => return Ok(()),
                    Ok(_) => last = "the node is not Ready".into(),
                    Err(e) => last = e.to_string(),
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(if registered {
                    format!("the node did not become ready in {timeout:?}: {last}")
                } else {
                    format!(
                        "container manager '{cm_name}' could not be reached in {timeout:?}: {last}"
                    )
                });
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// Investigates and bootstraps one host.
    pub async fn investigate(
        &self,
        address: &str,
        cluster_data: &Value,
    ) -> Result<Value, RpcError> {
        let creds: HostCreds = self
            .storage
            .get(json!({"address": address}))
            .await
            .map_err(storage_error)?;
        self.update_host(address, |h| {
            h.status = HostState::Investigating;
            h.reason.clear();
        })
        .await?;
        tracing::info!(address, "gathering facts");
        // The host's session: its key recorded at first contact and
        // verified after; facts and the bootstrap playbook both use it.
        let opened = match self
            .access
            .open_with(creds, self.config.facts_timeout)
            .await
        {
            Ok(o) => o,
            // Storage, not the host: the investigation could not finish
            // (its record stays; a scan takes it up again).
            Err(AccessError::Storage(e)) => return Err(storage_error(e)),
            Err(e) => {
                return self
                    .fail(address, format!("investigation failed: {e}"))
                    .await;
            }
        };
        let facts = match self
            .access
            .run_with(
                opened.creds.clone(),
                Facts::COMMAND,
                self.config.facts_timeout,
            )
            .await
            .map_err(|e| e.to_string())
            .and_then(|out| {
                if out.success() {
                    Facts::parse(address, &String::from_utf8_lossy(&out.stdout))
                        .map_err(|e| e.to_string())
                } else {
                    Err(format!(
                        "the facts command exited with {:?}: {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ))
                }
            }) {
            Ok(f) => f,
            Err(e) => {
                return self
                    .fail(address, format!("investigation failed: {e}"))
                    .await;
            }
        };
        let mut target = Target::new(
            address,
            opened.creds.remote_user.clone(),
            opened.creds.ssh_priv_key.clone(),
        );
        target.known_hosts = Some(opened.creds.host_key.clone());
        target.control_path = Some(opened.lease.control_socket().to_path_buf());
        let os: Os = facts.os.parse().unwrap_or_default();
        let host = self
            .update_host(address, |h| {
                h.os = os;
                h.cpus = facts.cpus;
                h.memory = facts.memory;
                h.space = facts.space;
                h.last_check = now_iso();
                h.status = HostState::Bootstrapping;
            })
            .await?;
        let cluster = self.cluster_of(address, cluster_data).await?;
        let vars = self.bootstrap_vars(&host, cluster.as_ref()).await?;
        tracing::info!(address, os = %host.os, "bootstrapping");
        let runner = PlaybookRunner::new(self.config.playbook_dir.clone())
            .with_timeout(self.config.bootstrap_timeout);
        let _turn = self
            .bootstrap_slots
            .acquire()
            .await
            .expect("the bootstrap slots are never closed");
        let report = match runner
            .run(Playbook::Bootstrap, std::slice::from_ref(&target), vars)
            .await
        {
            Ok(r) => r,
            Err(e) => return self.fail(address, format!("bootstrap failed: {e}")).await,
        };
        // The session goes back to the pool (closed once idle).
        drop(opened);
        if let Some(problem) = report.failure_reason(address) {
            return self
                .fail(address, format!("bootstrap failed: {problem}"))
                .await;
        }
        self.enter_cluster(address, cluster.as_ref()).await
    }

    /// A bootstrapped host joins its cluster (a join-only job: no facts, no
    /// playbook).
    pub async fn join(&self, address: &str, cluster_data: &Value) -> Result<Value, RpcError> {
        let cluster = self.cluster_of(address, cluster_data).await?;
        if let Some(c) = &cluster
            && !c.hostset.iter().any(|a| a == address)
        {
            // Removed from the cluster before its join ran: nothing to join.
            tracing::info!(address, cluster = %c.name, "the host left the cluster before its join");
            let host: Host = self
                .storage
                .get(json!({"address": address}))
                .await
                .map_err(storage_error)?;
            return Ok(host.to_json());
        }
        tracing::info!(address, cluster = ?cluster.as_ref().map(|c| &c.name), "joining");
        self.enter_cluster(address, cluster.as_ref()).await
    }

    /// The one join path, for a host just bootstrapped and for a
    /// bootstrapped host added to a cluster: with a container manager, the
    /// node is registered and the host is `active` once the manager reports
    /// it Ready (`failed`, saying why, if it is not within
    /// `node_ready_timeout`); without one it is `disassociated`. Then the
    /// watcher checks it.
    async fn enter_cluster(
        &self,
        address: &str,
        cluster: Option<&Cluster>,
    ) -> Result<Value, RpcError> {
        let mut status = HostState::Disassociated;
        if let Some(cm) = cluster
            .map(|c| c.container_manager.clone())
            .filter(|c| !c.is_empty())
        {
            if let Err(reason) = self.register(&cm, address).await {
                return self.fail(address, reason).await;
            }
            status = HostState::Active;
        }
        let host = self
            .update_host(address, |h| {
                h.status = status;
                h.reason.clear();
                h.last_check = now_iso();
            })
            .await?;
        // From now on the watcher checks it.
        let record = WatcherRecord {
            address: address.to_string(),
            last_check: host.last_check.clone(),
            previous_status: String::new(),
        };
        self.storage.save(&record).await.map_err(storage_error)?;
        tracing::info!(address, status = %host.status, "host in its cluster");
        Ok(host.to_json())
    }
}

/// The params of `investigate`.
#[derive(Debug, serde::Deserialize)]
struct InvestigateParams {
    /// The host to bootstrap.
    address: String,
    /// The cluster it joins, as the server saw it (`null`: none).
    #[serde(default)]
    cluster_data: Value,
    /// Only join the cluster (the host is bootstrapped already).
    #[serde(default)]
    join: bool,
}

impl Service for Investigator {
    fn name(&self) -> &str {
        "investigator"
    }

    fn bindings(&self) -> Vec<String> {
        commissaire_bus::job_bindings("investigator")
    }

    fn methods() -> Methods<Self> {
        Methods::new().method(
            "investigate",
            |me: Arc<Self>, p: InvestigateParams| async move {
                let address = p.address;
                let result = me.run_claimed(&address, &p.cluster_data, false, p.join).await;
                match &result {
                    Err(e) => {
                        tracing::warn!(%address, error = %e.message, "investigation could not finish")
                    }
                    Ok(None) => tracing::debug!(%address, "another investigator has this host"),
                    Ok(Some(_)) => {}
                }
                result.map(|r| r.unwrap_or(Value::Null))
            },
        )
    }
}
