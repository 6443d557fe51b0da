//! The Commissaire clusterexec service: rolling restarts, upgrades and
//! deploys of whole clusters.
//!
//! `PUT /api/v0/cluster/{NAME}/{restart|upgrade|deploy}` makes the REST
//! server record the operation (`status: in_process`) and notify
//! `jobs.clusterexec.<op>` with `{"name": NAME}`. A clusterexec replica then
//! **claims** the record and runs the matching playbook (`restart.yaml`,
//! `upgrade.yaml`, `deploy.yaml`) host by host in the cluster's `hostset`
//! order (`batch_size` hosts at a time), writing the record after every
//! step: hosts being worked on in `in_process`, finished ones in
//! `restarted`/`upgraded`/`deployed`, failed ones in `failed_hosts` with
//! `reason`. It ends `finished` (every host done), `failed` (a host failed;
//! by default the first failure stops the roll, `max_failures` tolerates
//! more) or `cancelled` (`DELETE` on the operation sets `cancel_requested`;
//! checked before each step), with `finished_at`.
//!
//! # One operation per cluster, across replicas, and crashes
//!
//! The claim is a **lease kept in the record itself**: `owner` (the
//! replica's id) and `lease_expires_at`, only ever written by the storage
//! service's compare-and-swap, so of two replicas only one can claim, and
//! every write by the owner checks that it still owns the record. The owner
//! renews the lease every third of `lease_seconds`; if it cannot, it stops
//! touching the operation before the lease runs out. Every replica scans
//! the operation records (every `scan_seconds`: all clusters, then their
//! three records) and claims any in-process record whose lease has expired
//! (its owner died) or that nobody claimed (the notification was lost, or
//! no clusterexec ran when it was started); the new owner resumes with the
//! hosts neither done nor failed (those its predecessor had in process run
//! again). An operation therefore never stays `in_process` while any
//! replica runs, and is taken over at most `lease_seconds + scan_seconds`
//! after its owner died.
//!
//! # Container managers
//!
//! When the cluster has a container manager, each host's node is cordoned
//! and drained before the playbook and, once the host is back and the node
//! Ready, uncordoned, through a [`NodeDrainer`] ([`BusDrainer`]: the
//! containermgr service's `container.cordon|drain|get_node_status|uncordon`).
//! A failure there fails the host with that reason.

#![warn(missing_docs)]

mod config;
mod engine;
mod error;
mod executor;
mod gates;
mod lease;
mod phases;
mod record;
mod store;
mod wait;

pub use commissaire_service::node_drain::{BusDrainer, DrainError, NodeDrainer, node_is_ready};
pub use config::{ClusterExecConfig, default_replica_id};
pub use engine::{ClusterExec, StartOutcome};
pub use error::ExecError;
pub use executor::{AnsibleExecutor, HostExecutor};
pub use phases::{NoPhases, PhaseSink, phase};
pub use record::{OpKind, OpRecord};
pub use wait::{RestartVia, RestartWaits, detached_restart_command, wait_down_and_back};

use commissaire_bus::Bus;

/// A running clusterexec: the service's bus workers and its scanner.
pub struct ClusterExecHandle {
    exec: ClusterExec,
    service: commissaire_service::ServiceHandle,
    scanner: tokio::task::JoinHandle<()>,
}

impl ClusterExecHandle {
    /// The engine (to look at what runs, or start operations directly).
    pub fn exec(&self) -> &ClusterExec {
        &self.exec
    }

    /// Stops everything at once, leaving the operations as a crash would
    /// (other replicas take them over when their leases expire).
    pub async fn abort(self) {
        self.service.stop();
        self.scanner.abort();
        self.exec.stop_all(false).await;
    }

    /// Stops, handing the running operations over: their leases are marked
    /// expired so another replica takes them over at its next scan.
    pub async fn shutdown(self) {
        self.service.stop();
        self.scanner.abort();
        self.exec.stop_all(true).await;
    }
}

/// Starts `exec` on `bus` with `workers` workers, and its scanner.
pub async fn start(
    exec: ClusterExec,
    bus: Bus,
    workers: usize,
) -> Result<ClusterExecHandle, commissaire_bus::BusError> {
    let service = commissaire_service::run(std::sync::Arc::new(exec.clone()), bus, workers).await?;
    let scanner = exec.spawn_scanner();
    tracing::info!(replica = %exec.config().replica_id, lease_seconds = exec.config().lease.as_secs_f64(),
        playbook_dir = %exec.config().playbook_dir.display(), "clusterexec started");
    Ok(ClusterExecHandle {
        exec,
        service,
        scanner,
    })
}
