//! Durable investigations: the [`Investigation`] record is the job.
//!
//! The server stores `investigations/<address>` before it announces
//! `jobs.investigate`. An investigator works on a host only while it holds
//! the record's lease (`owner`, `lease_expires_at`, renewed every third of
//! `lease_seconds` by compare-and-swap) and deletes the record once the host
//! has a final status. Every investigator scans the records at start and
//! every `scan_seconds` and takes the ones nobody owns or whose owner's
//! lease ran out, so a lost, expired or never-delivered message, a crashed
//! replica or a restarted all-in-one only delay the work.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use commissaire_bus::{RpcError, codes};
use commissaire_models::{DATE_FORMAT, HostState, Investigation, Model};
use commissaire_storage_client::{StorageCallError, UpdateError};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::{Investigator, storage_error};

/// How the first scan of a starting investigator treats owned records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstScan {
    /// Take only records nobody owns or whose lease ran out (replicas may
    /// be running elsewhere).
    ExpiredOnly,
    /// Take every record: no other investigator can be running (the
    /// all-in-one, whose embedded store only one process can open).
    TakeOverAll,
}

/// The hosts a replica is investigating now: neither its scans nor a
/// second announcement start another investigation of one of them.
#[derive(Debug, Default)]
pub(crate) struct Running(Mutex<HashSet<String>>);

/// Removes its host from [`Running`] when dropped.
struct RunningGuard<'a>(&'a Running, String);

impl Running {
    fn enter(&self, address: &str) -> Option<RunningGuard<'_>> {
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        set.insert(address.to_string())
            .then(|| RunningGuard(self, address.to_string()))
    }

    fn contains(&self, address: &str) -> bool {
        let set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        set.contains(address)
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        let mut set = self.0.0.lock().unwrap_or_else(|e| e.into_inner());
        set.remove(&self.1);
    }
}

/// `now + d` in the records' timestamp format.
fn expiry_after(d: Duration) -> String {
    let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(30));
    (chrono::Utc::now().naive_utc() + d)
        .format(DATE_FORMAT)
        .to_string()
}

fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

impl Investigator {
    /// Claims the investigation of `address` for this replica: takes its
    /// record when nobody owns it, its owner's lease has run out, or
    /// `take_over` says no other owner can be alive; creates it when there
    /// is none (a job announced without a record). `None` when a live
    /// replica owns it.
    pub(crate) async fn claim(
        &self,
        address: &str,
        cluster: &str,
        take_over: bool,
        join: bool,
    ) -> Result<Option<Investigation>, RpcError> {
        let me = &self.config.replica_id;
        /// Another live replica owns the investigation.
        struct Owned;
        let claimed = self
            .storage
            .upsert(json!({"address": address}), |current: Option<&Investigation>| {
                let mut next = match current {
                    Some(r) if !(take_over || r.owner == *me || r.unowned_at(now())) => {
                        tracing::debug!(address, owner = %r.owner, until = %r.lease_expires_at, "another investigator has it");
                        return Err(Owned);
                    }
                    Some(r) => r.clone(),
                    None => Investigation {
                        address: address.to_string(),
                        cluster: cluster.to_string(),
                        requested_at: now().format(DATE_FORMAT).to_string(),
                        join,
                        ..Investigation::default()
                    },
                };
                if let Some(previous) = current.map(|r| &r.owner)
                    && !previous.is_empty()
                    && previous != me
                {
                    tracing::info!(address, previous_owner = %previous, "taking over an investigation whose owner is gone");
                }
                next.owner = me.clone();
                next.lease_expires_at = expiry_after(self.config.lease);
                next.attempts += 1;
                Ok(Some(next))
            })
            .await;
        match claimed {
            Ok(saved) => Ok(saved),
            // Others kept winning the record: one of them has it.
            Err(UpdateError::Refused(Owned)) => Ok(None),
            Err(e) if e.is_conflict() => Ok(None),
            Err(UpdateError::Storage(e)) => Err(storage_error(e)),
        }
    }

    /// Keeps the lease on `claimed` until it is lost (another replica took
    /// the record, it was deleted, or it could not be renewed before it
    /// ran out); then returns why.
    async fn keep_lease(&self, mut claimed: Investigation) -> String {
        let every = self.config.lease / 3;
        let mut valid_until = tokio::time::Instant::now() + self.config.lease;
        loop {
            tokio::time::sleep(every).await;
            let mut next = claimed.clone();
            next.lease_expires_at = expiry_after(self.config.lease);
            let attempt = tokio::time::Instant::now();
            match self.storage.impatient().swap(Some(&claimed), &next).await {
                Ok(saved) => {
                    claimed = saved;
                    valid_until = attempt + self.config.lease;
                }
                Err(e) if e.is_conflict() => {
                    return format!(
                        "the investigation record of {} changed hands",
                        claimed.address
                    );
                }
                Err(StorageCallError::NotFound(_)) => {
                    return format!(
                        "the investigation record of {} was removed",
                        claimed.address
                    );
                }
                Err(e)
                    if e.is_unavailable() && tokio::time::Instant::now() + every < valid_until =>
                {
                    tracing::warn!(address = %claimed.address, error = %e, "cannot renew the investigation lease yet");
                }
                Err(e) => return format!("cannot renew the lease: {e}"),
            }
        }
    }

    /// Deletes the record of a finished investigation if this replica
    /// still owns it.
    async fn release(&self, address: &str) {
        let key = json!({"address": address});
        let result = (async {
            match self.storage.get::<Investigation>(key.clone()).await {
                Ok(r) if r.owner == self.config.replica_id => {
                    self.storage.delete::<Investigation>(key.clone()).await
                }
                Ok(_) | Err(StorageCallError::NotFound(_)) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await;
        if let Err(e) = result {
            tracing::warn!(address, error = %e, "cannot remove the investigation record; a later scan will see the host is done");
        }
    }

    /// Runs the investigation of `address` if this replica can claim it,
    /// holding the lease throughout; returns `Ok(None)` when another live
    /// replica has it.
    pub(crate) async fn run_claimed(
        &self,
        address: &str,
        cluster_data: &Value,
        take_over: bool,
        join: bool,
    ) -> Result<Option<Value>, RpcError> {
        let Some(_running) = self.running.enter(address) else {
            tracing::debug!(address, "this replica is investigating the host already");
            return Ok(None);
        };
        let cluster = cluster_data
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(claimed) = self.claim(address, cluster, take_over, join).await? else {
            return Ok(None);
        };
        // The record says what the job is (a scan knows only the address).
        let join = claimed.join;
        let cluster_data = if cluster_data.get("name").is_some() || claimed.cluster.is_empty() {
            cluster_data.clone()
        } else {
            json!({"name": claimed.cluster})
        };
        let result = tokio::select! {
            result = self.investigate_unless_done(address, &cluster_data, join) => result,
            why = self.keep_lease(claimed) => {
                tracing::warn!(address, %why, "investigation abandoned: its lease is lost");
                return Err(RpcError::unavailable(format!("investigation of {address} abandoned: {why}")));
            }
        };
        match &result {
            Ok(_) => self.release(address).await,
            // The host is gone: nothing left to do.
            Err(e) if e.code == codes::STORAGE_LOOKUP_ERROR => self.release(address).await,
            // Left for a later scan (storage stayed away too long).
            Err(_) => {}
        }
        result.map(Some)
    }

    /// [`Investigator::investigate`], unless the host already has a final
    /// status from an earlier attempt that ended before its record was
    /// removed (`active` or `disassociated`).
    async fn investigate_unless_done(
        &self,
        address: &str,
        cluster_data: &Value,
        join: bool,
    ) -> Result<Value, RpcError> {
        let host: commissaire_models::Host = self
            .storage
            .get(json!({"address": address}))
            .await
            .map_err(storage_error)?;
        if matches!(host.status, HostState::Active | HostState::Disassociated)
            && host.reason.is_empty()
            && !host.last_check.is_empty()
        {
            let record: Result<Investigation, _> = self
                .storage
                .impatient()
                .get(json!({"address": address}))
                .await;
            // Only a record left over from before the host was bootstrapped
            // means "done"; one written after it (a re-PUT asking again)
            // means "do it again".
            if let Ok(r) = record
                && r.requested_at.as_str() <= host.last_check.as_str()
            {
                tracing::info!(address, status = %host.status, "the host was bootstrapped already");
                return Ok(host.to_json());
            }
        }
        if join {
            self.join(address, cluster_data).await
        } else {
            self.investigate(address, cluster_data).await
        }
    }

    /// One scan: claims and starts (in the background, at most `workers`
    /// at a time across scans) every investigation this replica may take:
    /// unowned ones, expired ones, and those of the owners in `dead`.
    /// Returns how many it started.
    pub async fn scan_once(
        self: &Arc<Self>,
        dead: &HashSet<String>,
        slots: &Arc<Semaphore>,
    ) -> usize {
        let records = match self.storage.impatient().list::<Investigation>().await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "cannot list investigations; next scan");
                return 0;
            }
        };
        let mut started = 0;
        for record in records {
            let take_over = dead.contains(&record.owner);
            if self.running.contains(&record.address) {
                continue;
            }
            if !(take_over || record.owner == self.config.replica_id || record.unowned_at(now())) {
                continue;
            }
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                break;
            };
            let me = self.clone();
            started += 1;
            tokio::spawn(async move {
                let _permit = permit;
                let address = record.address.clone();
                match me.run_claimed(&address, &json!({}), take_over, false).await {
                    Ok(Some(_)) => tracing::info!(%address, "recovered investigation finished"),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(%address, error = %e.message, "recovered investigation could not finish")
                    }
                }
            });
        }
        if started > 0 {
            tracing::info!(started, "investigations taken up from storage");
        }
        started
    }

    /// Scans now (see [`FirstScan`]) and then every `scan_seconds`, for as
    /// long as the returned task runs; at most `workers` recovered
    /// investigations run at once.
    pub fn spawn_scanner(
        self: Arc<Self>,
        first: FirstScan,
        workers: usize,
    ) -> tokio::task::JoinHandle<()> {
        let slots = Arc::new(Semaphore::new(workers.max(1)));
        tokio::spawn(async move {
            let mut dead = HashSet::new();
            if first == FirstScan::TakeOverAll {
                // Whoever owns a record now is a previous run of this process.
                match self.storage.list::<Investigation>().await {
                    Ok(records) => dead.extend(
                        records
                            .into_iter()
                            .map(|r| r.owner)
                            .filter(|o| !o.is_empty() && *o != self.config.replica_id),
                    ),
                    Err(e) => tracing::warn!(error = %e, "cannot list the investigations at start"),
                }
            }
            loop {
                self.scan_once(&dead, &slots).await;
                tokio::time::sleep(self.config.scan).await;
            }
        })
    }
}
