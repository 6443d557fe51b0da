//! A roll's slots of its cluster's reboot lock (`commissaire-reboot-lock`),
//! shared with the hosts that reboot themselves over FleetLock: before
//! each batch the roll takes one slot per host of the batch, and waits
//! (saying so in its record) while FleetLock hosts hold them; after the
//! batch, and whenever the roll ends or waits for another reason, it gives
//! them back.

use commissaire_models::{HolderKind, HolderState, LockHolder};
use commissaire_reboot_lock::{LockError, RebootLock, now};

use super::Inner;
use crate::record::OpKind;

/// How a roll's `waiting` starts while the reboot lock is full.
pub(super) const LOCK_WAIT: &str = "for the reboot lock: ";

impl Inner {
    fn reboot_lock(&self) -> RebootLock {
        RebootLock::new(self.storage.clone())
    }

    /// Takes `slots`' worth for `chunk` of the `kind` roll of cluster
    /// `name`; `None` when taken, else why the roll waits.
    pub(super) async fn take_slots(
        &self,
        kind: OpKind,
        name: &str,
        chunk: &[String],
        slots: usize,
    ) -> Option<String> {
        let holder = LockHolder {
            id: kind.as_str().to_string(),
            kind: HolderKind::Operation,
            state: HolderState::Held,
            hosts: chunk.to_vec(),
            since: now(),
            why: format!(
                "the {} of cluster '{name}' ({})",
                kind.as_str(),
                self.config.replica_id
            ),
            ..LockHolder::default()
        };
        match self.reboot_lock().take(name, holder, slots).await {
            Ok(_) => None,
            Err(LockError::Full(full)) => Some(format!("{LOCK_WAIT}{full}")),
            Err(LockError::Storage(e)) => Some(format!("{LOCK_WAIT}storage is unavailable ({e})")),
        }
    }

    /// Gives back what the `kind` roll of cluster `name` holds (nothing
    /// is fine); a failure is logged (an operator can release the slot).
    pub(super) async fn give_back_slots(&self, kind: OpKind, name: &str) {
        if let Err(e) = self.reboot_lock().give_back(name, kind.as_str()).await {
            tracing::warn!(op = kind.as_str(), cluster = name, error = %e,
                "could not give the reboot lock's slots back; DELETE of the cluster's lock holder releases them");
        }
    }
}
