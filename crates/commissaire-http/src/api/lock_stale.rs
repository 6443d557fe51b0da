//! The stale holder scan of the reboot locks: every `scan_seconds` the
//! server judges each FleetLock holder of every cluster's lock
//! (`commissaire_reboot_lock::stale`): held longer than
//! `stale_after_seconds`, or its host seen down (status `failed`, as the
//! watcher marks a host it cannot reach) longer than `down_after_seconds`.
//! A holder that becomes stale is reported: its record's `stale` says why,
//! a warning is logged, an audit entry (user `commissaire`, role `system`)
//! is written, and `commissaire_lock_stale_total{action}` counts it; then
//! the policy keeps its slot (the safe default) or gives it back. The
//! gauge `commissaire_lock_stale_holders` counts the stale holders still
//! holding. Server replicas scan alike; the lock's compare-and-swap lets
//! exactly one of them report each holder.

use commissaire_models::{AuditEntry, ClusterLock, HolderKind, Host, HostState, LockHolder};
use commissaire_reboot_lock::{StalePolicy, StaleRules};
use commissaire_service::metrics::names;
use commissaire_storage_client::StorageCallError;
use serde_json::json;

use super::Api;

/// What one scan found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StaleScan {
    /// Holders that became stale during this scan: (cluster, holder).
    pub reported: Vec<(String, LockHolder)>,
    /// Of those, the ones whose slots were given back.
    pub released: usize,
    /// Stale holders still holding after the scan.
    pub holding: usize,
}

impl Api {
    /// Whether the watcher sees `address` down.
    async fn host_down(&self, address: &str) -> Result<bool, StorageCallError> {
        match self.storage.get::<Host>(json!({"address": address})).await {
            Ok(host) => Ok(host.status == HostState::Failed),
            Err(StorageCallError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One scan of every cluster's lock (see the module documentation).
    pub async fn scan_stale_holders(
        &self,
        rules: &StaleRules,
        policy: StalePolicy,
    ) -> Result<StaleScan, StorageCallError> {
        let locks = self.reboot_lock();
        let mut scan = StaleScan::default();
        for lock in self.storage.list::<ClusterLock>().await? {
            for seen in lock
                .holders
                .iter()
                .filter(|h| h.kind == HolderKind::Fleetlock)
            {
                let down = match seen.hosts.first() {
                    Some(host) => self.host_down(host).await?,
                    None => false,
                };
                let Some((before, after)) =
                    locks.rejudge(&lock.name, &seen.id, down, rules).await?
                else {
                    continue;
                };
                if after.stale.is_empty() {
                    continue;
                }
                if !before.stale.is_empty() {
                    scan.holding += 1;
                    continue;
                }
                let released = policy == StalePolicy::Release
                    && locks
                        .give_back_if(&lock.name, &after.id, &after.since)
                        .await?
                        .is_some();
                self.report_stale(&lock.name, &after, released).await;
                if released {
                    scan.released += 1;
                } else {
                    scan.holding += 1;
                }
                scan.reported.push((lock.name.clone(), after));
            }
        }
        metrics::gauge!(names::LOCK_STALE_HOLDERS).set(scan.holding as f64);
        Ok(scan)
    }

    /// Logs, counts and audits holder `holder` of `cluster` become stale.
    async fn report_stale(&self, cluster: &str, holder: &LockHolder, released: bool) {
        let action = if released { "released" } else { "kept" };
        metrics::counter!(names::LOCK_STALE, "action" => action).increment(1);
        let what = if released {
            "its slot given back (policy release; its node is left as it is)"
        } else {
            "its slot kept (policy keep): DELETE /api/v0/cluster/{name}/lock/holders/{id} or `commctl cluster lock release` gives it back"
        };
        tracing::warn!(cluster, holder = %holder.id, hosts = ?holder.hosts, stale = %holder.stale,
            action, "stale reboot lock holder: {what}");
        let at = commissaire_models::now_iso();
        let entry = AuditEntry {
            id: crate::audit::entry_id(&at),
            at,
            user: "commissaire".into(),
            role: "system".into(),
            method: if released { "DELETE" } else { "PUT" }.into(),
            path: format!("/api/v0/cluster/{cluster}/lock/holders/{}", holder.id),
            kind: "cluster.lock.stale".into(),
            name: format!("{cluster}/{}", holder.id),
            status: 200,
            outcome: "ok".into(),
            detail: format!("stale FleetLock holder {action}: {}", holder.stale),
            ..AuditEntry::default()
        };
        if let Err(e) = self.record_audit(&entry).await {
            tracing::warn!(error = %e, cluster, holder = %holder.id, "could not write the stale holder's audit entry");
        }
    }
}

/// Scans every `interval` (after the end of the one before) until the
/// task is aborted; a scan storage cannot answer is logged and tried again.
pub fn spawn_stale_scan(
    api: Api,
    rules: StaleRules,
    policy: StalePolicy,
    interval: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            if let Err(e) = api.scan_stale_holders(&rules, policy).await {
                tracing::debug!(error = %e, "stale reboot lock holders: storage did not answer; next scan");
            }
        }
    })
}
