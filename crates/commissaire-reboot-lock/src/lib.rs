//! A cluster's reboot lock, kept in its [`ClusterLock`] record by the
//! storage service and changed only through the storage client's
//! compare-and-swap loop, so every server replica and clusterexec replica
//! agrees on who holds its slots: the hosts that reboot themselves and ask
//! over FleetLock, and the cluster's rolling operations.
//!
//! - [`RebootLock::take`]: takes slots for a holder, or says who fills them
//!   ([`LockError::Full`]); taking again with the same id keeps what is held.
//! - [`RebootLock::give_back`]: gives a holder's slots back.
//! - [`RebootLock::change`]: changes a holder in place (its state, whether
//!   it cordoned its node, why it is stale).
//! - [`RebootLock::slots`]: a cluster's slots, from its rolling defaults.
//! - [`RebootLock::rejudge`] and [`RebootLock::give_back_if`]: the stale
//!   holder scan's writes ([`stale`]).

pub mod stale;

use commissaire_models::{Cluster, ClusterLock, DATE_FORMAT, LockFull, LockHolder};
use commissaire_storage_client::{StorageCallError, StorageClient, UpdateError};
use serde_json::json;
pub use stale::{StalePolicy, StaleRules, Verdict, judge};

/// Why slots were not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Every slot is held.
    #[error("{0}")]
    Full(LockFull),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageCallError),
}

/// The reboot locks of every cluster, over the storage service.
#[derive(Clone)]
pub struct RebootLock {
    storage: StorageClient,
}

/// Now, in the records' timestamp format.
pub fn now() -> String {
    chrono::Utc::now()
        .naive_utc()
        .format(DATE_FORMAT)
        .to_string()
}

impl RebootLock {
    /// The locks kept by the storage service `storage` talks to.
    pub fn new(storage: StorageClient) -> Self {
        RebootLock { storage }
    }

    /// A cluster's slots: its rolling defaults' `max_unavailable` of its
    /// members, at least 1.
    pub fn slots(cluster: &Cluster) -> usize {
        cluster.rolling.lock_slots(cluster.hostset.len())
    }

    /// The lock of `cluster` (empty when no one ever took it).
    pub async fn get(&self, cluster: &str) -> Result<ClusterLock, StorageCallError> {
        match self
            .storage
            .get::<ClusterLock>(json!({"name": cluster}))
            .await
        {
            Ok(lock) => Ok(lock),
            Err(StorageCallError::NotFound(_)) => Ok(ClusterLock {
                name: cluster.to_string(),
                ..ClusterLock::default()
            }),
            Err(e) => Err(e),
        }
    }

    /// Takes slots of `cluster`'s lock (of `slots`) for `holder`; the
    /// holder as it is held afterwards (as it was, when its id held already).
    pub async fn take(
        &self,
        cluster: &str,
        holder: LockHolder,
        slots: usize,
    ) -> Result<LockHolder, LockError> {
        let mut held = None;
        self.storage
            .upsert(json!({"name": cluster}), |current: Option<&ClusterLock>| {
                let mut lock = current.cloned().unwrap_or_else(|| ClusterLock {
                    name: cluster.to_string(),
                    ..ClusterLock::default()
                });
                let before = lock.holder(&holder.id).cloned();
                let taken = lock.take(holder.clone(), slots)?.clone();
                held = Some(taken);
                // Held already: nothing to write.
                Ok(before.is_none().then_some(lock))
            })
            .await
            .map_err(|e| match e {
                UpdateError::Refused(full) => LockError::Full(full),
                UpdateError::Storage(e) => LockError::Storage(e),
            })?;
        Ok(held.expect("the change ran"))
    }

    /// Gives back the slots `id` holds in `cluster`'s lock; the holder it
    /// was (`None`: it held none).
    pub async fn give_back(
        &self,
        cluster: &str,
        id: &str,
    ) -> Result<Option<LockHolder>, StorageCallError> {
        let mut gone = None;
        self.storage
            .upsert(json!({"name": cluster}), |current: Option<&ClusterLock>| {
                let Some(current) = current else {
                    gone = None;
                    return Ok::<_, std::convert::Infallible>(None);
                };
                let mut lock = current.clone();
                gone = lock.give_back(id);
                Ok(gone.is_some().then_some(lock))
            })
            .await?;
        Ok(gone)
    }

    /// Changes the holder `id` of `cluster`'s lock with `f`; the holder as
    /// it is afterwards (`None`: `id` holds nothing).
    pub async fn change(
        &self,
        cluster: &str,
        id: &str,
        mut f: impl FnMut(&mut LockHolder),
    ) -> Result<Option<LockHolder>, StorageCallError> {
        let mut changed = None;
        self.storage
            .upsert(json!({"name": cluster}), |current: Option<&ClusterLock>| {
                changed = None;
                let Some(current) = current else {
                    return Ok::<_, std::convert::Infallible>(None);
                };
                let mut lock = current.clone();
                let Some(holder) = lock.holders.iter_mut().find(|h| h.id == id) else {
                    return Ok(None);
                };
                f(holder);
                changed = Some(holder.clone());
                Ok((&lock != current).then_some(lock))
            })
            .await?;
        Ok(changed)
    }

    /// Gives back the slots of holder `id` of `cluster`'s lock only if it
    /// is still the one that took them at `since` (not a holder that took
    /// them again since); the holder it was, if given back.
    pub async fn give_back_if(
        &self,
        cluster: &str,
        id: &str,
        since: &str,
    ) -> Result<Option<LockHolder>, StorageCallError> {
        let mut gone = None;
        self.storage
            .upsert(json!({"name": cluster}), |current: Option<&ClusterLock>| {
                gone = None;
                let Some(current) = current else {
                    return Ok::<_, std::convert::Infallible>(None);
                };
                if current.holder(id).is_none_or(|h| h.since != since) {
                    return Ok(None);
                }
                let mut lock = current.clone();
                gone = lock.give_back(id);
                Ok(Some(lock))
            })
            .await?;
        Ok(gone)
    }

    /// Judges holder `id` of `cluster`'s lock by `rules` ([`judge`]), its
    /// host being down or not, as it is stored at the time of the write,
    /// and writes the verdict when it changes anything: the holder before
    /// and after (`None`: `id` holds nothing). Of several replicas judging
    /// at once, exactly one sees a holder become stale (`before.stale`
    /// empty, `after.stale` not).
    pub async fn rejudge(
        &self,
        cluster: &str,
        id: &str,
        host_down: bool,
        rules: &StaleRules,
    ) -> Result<Option<(LockHolder, LockHolder)>, StorageCallError> {
        let mut judged = None;
        self.storage
            .upsert(json!({"name": cluster}), |current: Option<&ClusterLock>| {
                judged = None;
                let Some(current) = current else {
                    return Ok::<_, std::convert::Infallible>(None);
                };
                let Some(before) = current.holder(id).cloned() else {
                    return Ok(None);
                };
                let now = chrono::Utc::now().naive_utc();
                let verdict = judge(&before, host_down, now, rules);
                let mut after = before.clone();
                verdict.apply(&mut after);
                let changed = after != before;
                judged = Some((before, after.clone()));
                if !changed {
                    return Ok(None);
                }
                let mut lock = current.clone();
                if let Some(h) = lock.holders.iter_mut().find(|h| h.id == id) {
                    *h = after;
                }
                Ok(Some(lock))
            })
            .await?;
        Ok(judged)
    }

    /// Forgets `cluster`'s lock (with the cluster).
    pub async fn delete(&self, cluster: &str) -> Result<(), StorageCallError> {
        match self
            .storage
            .delete::<ClusterLock>(json!({"name": cluster}))
            .await
        {
            Ok(()) | Err(StorageCallError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
