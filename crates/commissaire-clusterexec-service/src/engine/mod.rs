//! The clusterexec engine: claims operations, runs them host by host, and
//! takes over operations whose owner's lease expired.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use commissaire_ansible::PlaybookRunner;
use commissaire_bus::{Bus, RpcError};
use commissaire_host_access::HostAccess;
use commissaire_models::{Cluster, OperationStatus, now_iso, roll_order};
use commissaire_service::{Methods, Service};
use commissaire_storage_client::{StorageCallError, StorageClient, retry_while_unavailable};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::executor::{AnsibleExecutor, HostExecutor};
use crate::gates::GateRunner;
use crate::lease::{Claim, Lease};
use crate::record::{OpKind, OpRecord, push_unique};
use crate::store::OpStore;
use crate::{ClusterExecConfig, ExecError};
use commissaire_service::node_drain::{BusDrainer, NodeDrainer};

mod host_step;
mod slots;
mod waits;

use host_step::Step;
use waits::Between;

/// What [`ClusterExec::start`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// This replica claimed the operation and runs it now.
    Started {
        /// The replica whose expired lease was taken over, if any.
        took_over_from: Option<String>,
    },
    /// This replica runs it already.
    AlreadyRunning,
    /// Nothing to run here, and why (not in process, another replica runs it, ...).
    NotClaimed(String),
}

struct Running {
    task: Option<JoinHandle<()>>,
    lease: Option<Arc<Lease>>,
}

struct Inner {
    config: ClusterExecConfig,
    storage: StorageClient,
    ops: OpStore,
    drainer: Arc<dyn NodeDrainer>,
    executor: Arc<dyn HostExecutor>,
    gates: GateRunner,
    running: Mutex<HashMap<(OpKind, String), Running>>,
}

/// The clusterexec service: answers `jobs.clusterexec.{restart,upgrade,deploy}`
/// (params `{"name": CLUSTER}`) by claiming and running the operation the
/// REST server recorded. Cheap to clone.
#[derive(Clone)]
pub struct ClusterExec {
    inner: Arc<Inner>,
}

/// How long one storage call of the engine may take: short against the lease.
fn storage_timeout(lease: Duration) -> Duration {
    (lease / 4).clamp(Duration::from_secs(1), Duration::from_secs(10))
}

impl ClusterExec {
    /// A service running playbooks with `ansible-playbook`, waiting for
    /// restarted hosts through `access` (the process's session pool), and
    /// draining nodes through the containermgr service on `bus`.
    pub fn new(bus: Bus, config: ClusterExecConfig, access: HostAccess) -> Self {
        let runner =
            PlaybookRunner::new(config.playbook_dir.clone()).with_timeout(config.playbook_timeout);
        let drainer = BusDrainer::new(bus.clone(), config.container_timeout, config.drain_timeout);
        let restart_via = config.restart_via;
        Self::with_parts(
            bus,
            config,
            Arc::new(drainer),
            Arc::new(AnsibleExecutor::waiting_natively(
                runner,
                access,
                restart_via,
            )),
        )
    }

    /// A service with its own drainer and host executor.
    pub fn with_parts(
        bus: Bus,
        config: ClusterExecConfig,
        drainer: Arc<dyn NodeDrainer>,
        executor: Arc<dyn HostExecutor>,
    ) -> Self {
        let timeout = storage_timeout(config.lease);
        ClusterExec {
            inner: Arc::new(Inner {
                storage: StorageClient::new(bus.clone()).with_timeout(timeout),
                ops: OpStore::new(bus, timeout),
                config,
                drainer,
                executor,
                gates: GateRunner::new(),
                running: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ClusterExecConfig {
        &self.inner.config
    }

    /// The operations this replica runs now.
    pub fn running(&self) -> Vec<(OpKind, String)> {
        let mut v: Vec<_> = self
            .inner
            .running
            .lock()
            .expect("not poisoned")
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Claims the `kind` operation of cluster `name` and runs it in the
    /// background, if it is in process and nobody (else) holds a live lease on it.
    pub async fn start(&self, kind: OpKind, name: &str) -> Result<StartOutcome, ExecError> {
        let key = (kind, name.to_string());
        {
            let mut running = self.inner.running.lock().expect("not poisoned");
            if running.contains_key(&key) {
                return Ok(StartOutcome::AlreadyRunning);
            }
            // Reserve, so that a concurrent start here does not claim it twice.
            running.insert(
                key.clone(),
                Running {
                    task: None,
                    lease: None,
                },
            );
        }
        let claim = Lease::acquire(
            &self.inner.ops,
            kind,
            name,
            &self.inner.config.replica_id,
            self.inner.config.lease,
        )
        .await;
        let (lease, record, previous_owner) = match claim {
            Ok(Claim::Claimed {
                lease,
                record,
                previous_owner,
            }) => (lease, record, previous_owner),
            other => {
                self.inner
                    .running
                    .lock()
                    .expect("not poisoned")
                    .remove(&key);
                return match other {
                    Ok(Claim::NotClaimed(why)) => Ok(StartOutcome::NotClaimed(why)),
                    Err(e) => Err(e),
                    Ok(Claim::Claimed { .. }) => unreachable!(),
                };
            }
        };
        match &previous_owner {
            Some(prev) => {
                tracing::warn!(op = kind.as_str(), cluster = name, previous_owner = %prev,
                done = record.done.len(), "took over an operation whose owner's lease expired")
            }
            None => tracing::info!(op = kind.as_str(), cluster = name, "claimed the operation"),
        }
        let inner = self.inner.clone();
        let task_lease = lease.clone();
        let task_key = key.clone();
        let took_over_from = previous_owner.clone();
        // Hold the map while spawning, so the task's removal comes after the insert.
        let mut running = self.inner.running.lock().expect("not poisoned");
        let task = tokio::spawn(async move {
            inner
                .supervise(task_lease, kind, *record, took_over_from)
                .await;
            inner
                .running
                .lock()
                .expect("not poisoned")
                .remove(&task_key);
        });
        running.insert(
            key,
            Running {
                task: Some(task),
                lease: Some(lease),
            },
        );
        Ok(StartOutcome::Started {
            took_over_from: previous_owner,
        })
    }

    /// Looks at every cluster's operation records once and starts those in
    /// process that nobody holds a live lease on. Returns how many it started.
    pub async fn scan_once(&self) -> Result<usize, ExecError> {
        let clusters = self.inner.storage.list::<Cluster>().await?;
        let now = chrono::Utc::now().naive_utc();
        let mut started = 0;
        for cluster in clusters {
            for kind in OpKind::ALL {
                let here = self
                    .inner
                    .running
                    .lock()
                    .expect("not poisoned")
                    .contains_key(&(kind, cluster.name.clone()));
                if here {
                    continue;
                }
                // One unreadable record must not keep the others from being looked at.
                let rec = match self.inner.ops.get(kind, &cluster.name).await {
                    Ok(Some(stored)) => stored.rec,
                    Ok(None) => continue,
                    Err(e @ ExecError::Decode { .. }) => {
                        tracing::warn!(op = kind.as_str(), cluster = %cluster.name, error = %e, "skipping a record");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let claimable = rec.status == OperationStatus::InProcess
                    && (rec.owner.is_empty()
                        || rec.owner == self.inner.config.replica_id
                        || rec.lease_expired(now));
                if !claimable {
                    continue;
                }
                match self.start(kind, &cluster.name).await {
                    Ok(StartOutcome::Started { .. }) => started += 1,
                    Ok(_) => {}
                    Err(e @ ExecError::Decode { .. }) => {
                        tracing::warn!(op = kind.as_str(), cluster = %cluster.name, error = %e, "skipping a record");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(started)
    }

    /// Runs [`ClusterExec::scan_once`] now and then every `scan_interval`.
    pub fn spawn_scanner(&self) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.scan_once().await {
                    tracing::warn!(error = %e, "scan of operation records failed");
                }
                tokio::time::sleep(this.inner.config.scan_interval).await;
            }
        })
    }

    /// Stops every operation this replica runs. With `release`, marks their
    /// leases expired so another replica takes them over at once (graceful
    /// shutdown); without, leaves them as a crash would (taken over when the
    /// lease expires).
    pub async fn stop_all(&self, release: bool) {
        let runs: Vec<Running> = self
            .inner
            .running
            .lock()
            .expect("not poisoned")
            .drain()
            .map(|(_, r)| r)
            .collect();
        for run in &runs {
            if let Some(task) = &run.task {
                task.abort();
            }
        }
        for run in runs {
            if let Some(task) = run.task {
                let _ = task.await;
            }
            if release && let Some(lease) = run.lease {
                lease.release().await;
            }
        }
    }
}

/// Resolves once `lost` turns true (never if its sender is gone).
async fn wait_lost(lost: &mut watch::Receiver<bool>) {
    loop {
        if *lost.borrow_and_update() {
            return;
        }
        if lost.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Inner {
    /// Reads the record at `key`, waiting out a storage outage (for up to
    /// `storage_retry_timeout`: an outage delays a host, it does not fail
    /// it); the errors are a host's failure reasons (`missing` when there is
    /// no record, "cannot read `what`: ..." otherwise).
    async fn read_patiently<M: commissaire_models::Model>(
        &self,
        key: &Value,
        missing: &str,
        what: &str,
    ) -> Result<M, String> {
        let within = self.config.storage_retry_timeout;
        match retry_while_unavailable(what, within, || self.storage.get::<M>(key.clone())).await {
            Ok(record) => Ok(record),
            Err(StorageCallError::NotFound(_)) => Err(missing.to_string()),
            Err(e) => Err(format!("cannot read {what}: {e}")),
        }
    }

    /// Runs a claimed operation with lease renewal, and makes sure it ends
    /// unless the lease was lost.
    async fn supervise(
        &self,
        lease: Arc<Lease>,
        kind: OpKind,
        record: OpRecord,
        took_over_from: Option<String>,
    ) {
        let name = record.name.clone();
        let renewal = lease.spawn_renewal();
        let started = Instant::now();
        let result = self.execute(&lease, kind, record, took_over_from).await;
        renewal.abort();
        // However it ended, its slots of the reboot lock are free again.
        self.give_back_slots(kind, &name).await;
        match result {
            Ok(rec) => tracing::info!(op = kind.as_str(), cluster = %name, status = %rec.status,
                done = rec.done.len(), failed = rec.failed_hosts.len(),
                seconds = started.elapsed().as_secs_f64(), reason = %rec.reason, "operation ended"),
            Err(e @ ExecError::LeaseLost { .. }) => {
                tracing::warn!(op = kind.as_str(), cluster = %name, error = %e, "gave the operation up")
            }
            Err(e) => {
                tracing::error!(op = kind.as_str(), cluster = %name, error = %e, "operation broke off");
                let why = format!("clusterexec error: {e}");
                if let Err(e) = lease
                    .update(|r| r.end(OperationStatus::Failed, Some(&why)))
                    .await
                {
                    tracing::warn!(op = kind.as_str(), cluster = %name, error = %e,
                        "could not mark the operation failed; another replica will take it over");
                }
            }
        }
    }

    /// Reads the cluster, retrying while storage is unavailable (the lease
    /// is renewed meanwhile).
    async fn cluster(&self, name: &str) -> Result<Option<Cluster>, ExecError> {
        match retry_while_unavailable(
            "read the cluster",
            self.config.storage_retry_timeout,
            || self.storage.get::<Cluster>(json!({"name": name})),
        )
        .await
        {
            Ok(c) => Ok(Some(c)),
            Err(StorageCallError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The operation itself: host by host (or batch by batch) in the
    /// roll's order ([`roll_order`]: the request's `order` first, the
    /// `hostset` order, `last` at the end), pausing between steps when asked.
    async fn execute(
        &self,
        lease: &Arc<Lease>,
        kind: OpKind,
        record: OpRecord,
        took_over_from: Option<String>,
    ) -> Result<OpRecord, ExecError> {
        let name = record.name.clone();
        let Some(cluster) = self.cluster(&name).await? else {
            let why = format!("cluster '{name}' does not exist any more");
            return Ok(lease
                .update(|r| {
                    r.in_process.clear();
                    r.end(OperationStatus::Failed, Some(&why))
                })
                .await?
                .1);
        };
        if let Some(previous) = took_over_from {
            let at = now_iso();
            let event = format!(
                "taken over from '{previous}' by '{}'",
                self.config.replica_id
            );
            lease.update(|r| r.details.add_event(&at, &event)).await?;
        }
        // The request's budgets, else the cluster's, else the service's;
        // percents are of the cluster's hosts.
        let total = cluster.hostset.len();
        let defaults = &cluster.rolling;
        let max_failures = record
            .max_failures
            .or(defaults.max_failures)
            .map_or(self.config.max_failures as usize, |b| b.of(total));
        let batch = record
            .batch_size
            .or(defaults.batch_size)
            .map_or(self.config.batch_size as usize, |b| b.batch_of(total))
            .max(1);
        let slots = commissaire_reboot_lock::RebootLock::slots(&cluster);
        let last = if record.details.last.is_empty() {
            &defaults.last
        } else {
            &record.details.last
        };
        // Resuming (after a takeover) = the hosts neither done nor failed, in
        // order; hosts the previous owner had in process run again.
        let pending: Vec<String> = roll_order(&cluster.hostset, &record.details.order, last)
            .into_iter()
            .filter(|h| !record.done.contains(h) && !record.failed_hosts.contains(h))
            .collect();
        tracing::info!(op = kind.as_str(), cluster = %name, hosts = pending.len(),
            already_done = record.done.len(), batch, max_failures, "running");
        let version = record.version.clone();
        // The request's gates, else the cluster's.
        let gates = record
            .details
            .gates
            .clone()
            .unwrap_or_else(|| cluster.rolling.gates.clone());
        let mut lost = lease.lost_signal();
        let mut windows = cluster.rolling.windows.clone();
        for chunk in pending.chunks(batch) {
            let rec = loop {
                let now = self.windows_now(&name, &mut windows).await;
                let lock_wait = self.take_slots(kind, &name, chunk, slots).await;
                match self
                    .between_steps(lease, chunk, now, lock_wait.as_deref())
                    .await?
                {
                    Between::Go(rec) => break rec,
                    Between::Ended(rec) => return Ok(rec),
                    Between::Wait(why) => {
                        self.give_back_slots(kind, &name).await;
                        self.wait_while(kind, &name, &why, &mut windows, &mut lost)
                            .await?
                    }
                }
            };
            let step = Step {
                kind,
                cluster: &cluster,
                version: &version,
                gates: &gates,
            };
            let work = futures::future::join_all(chunk.iter().map(|address| {
                let cordoned_before = rec.details.host(address).is_some_and(|h| h.cordoned);
                self.host_step(lease, &step, address, cordoned_before)
            }));
            let outcomes = tokio::select! {
                outcomes = work => outcomes,
                _ = wait_lost(&mut lost) => {
                    return Err(ExecError::LeaseLost {
                        op: kind.as_str(),
                        cluster: name,
                        why: "the lease was lost while hosts were worked on".into(),
                    });
                }
            };
            let (stop, rec) = lease
                .update(|r| {
                    let mut failed_now = Vec::new();
                    for (address, outcome) in chunk.iter().zip(&outcomes) {
                        r.in_process.retain(|h| h != address);
                        match outcome {
                            Ok(()) => push_unique(&mut r.done, address),
                            Err(why) => {
                                push_unique(&mut r.failed_hosts, address);
                                r.add_reason(&format!("{address}: {why}"));
                                failed_now.push(address.clone());
                            }
                        }
                    }
                    if r.failed_hosts.len() > max_failures {
                        // As the original: the host(s) that failed stay in in_process.
                        r.in_process = failed_now;
                        r.end(OperationStatus::Failed, None);
                        true
                    } else {
                        false
                    }
                })
                .await?;
            self.give_back_slots(kind, &name).await;
            if stop {
                return Ok(rec);
            }
        }
        Ok(lease
            .update(|r| {
                r.in_process.clear();
                let status = if r.failed_hosts.is_empty() {
                    OperationStatus::Finished
                } else {
                    OperationStatus::Failed
                };
                r.end(status, None);
            })
            .await?
            .1)
    }
}

/// The params of `restart`, `upgrade` and `deploy`: `{"name": ...}` or
/// `[name]`.
#[derive(Debug, serde::Deserialize)]
struct OperationParams {
    /// The cluster.
    name: String,
}

impl ClusterExec {
    /// A job of `kind` for a cluster: claim and run it (in the background).
    async fn job(&self, kind: OpKind, p: OperationParams) -> Result<Value, RpcError> {
        let name = p.name.as_str();
        if name.is_empty() {
            return Err(RpcError::invalid_params("params need the cluster's 'name'"));
        }
        let outcome = self.start(kind, name).await.map_err(|e| match e {
            ExecError::Storage(StorageCallError::Bus(b)) | ExecError::Bus(b)
                if b.is_unavailable() =>
            {
                RpcError::unavailable(b.to_string())
            }
            other => RpcError::internal(other.to_string()),
        })?;
        let (state, detail) = match outcome {
            StartOutcome::Started { took_over_from } => ("started", took_over_from),
            StartOutcome::AlreadyRunning => ("running", None),
            StartOutcome::NotClaimed(why) => ("not_claimed", Some(why)),
        };
        Ok(json!({"name": name, "operation": kind.as_str(), "state": state, "detail": detail}))
    }
}

impl Service for ClusterExec {
    fn name(&self) -> &str {
        "clusterexec"
    }

    fn bindings(&self) -> Vec<String> {
        commissaire_bus::job_bindings("clusterexec")
    }

    fn methods() -> Methods<Self> {
        OpKind::ALL.iter().fold(Methods::new(), |methods, &kind| {
            methods.method(
                kind.as_str(),
                move |me: Arc<Self>, p: OperationParams| async move { me.job(kind, p).await },
            )
        })
    }
}
