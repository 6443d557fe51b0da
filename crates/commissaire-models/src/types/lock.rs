//! A cluster's reboot lock: one counting semaphore shared by the hosts that
//! reboot themselves and ask over the FleetLock protocol (Zincati) and
//! Commissaire's own rolling operations (`/api/v0/cluster/{NAME}/lock`).

use serde::{Deserialize, Serialize};

use crate::{Model, ModelError, check_name};

/// Who holds a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HolderKind {
    /// A host that asked over FleetLock (`POST /v1/pre-reboot`).
    #[default]
    Fleetlock,
    /// A rolling restart, upgrade or deploy of the cluster.
    Operation,
}

/// Where a FleetLock holder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HolderState {
    /// Its node is being cordoned and drained: the slot is taken, the
    /// host is not told to reboot yet.
    #[default]
    Draining,
    /// Granted: the host may reboot (an operation's slots are always held).
    Held,
    /// The host said it is back (`POST /v1/steady-state`); the slot is
    /// given back once its node is Ready and uncordoned.
    Returning,
}

/// One holder of a cluster's reboot lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(default)]
pub struct LockHolder {
    /// The FleetLock client id (Zincati's node id), or the operation
    /// (`restart`, `upgrade`, `deploy`).
    pub id: String,
    /// A FleetLock host or an operation.
    pub kind: HolderKind,
    /// Where it is.
    pub state: HolderState,
    /// The hosts it takes out, one slot each (at least one slot).
    pub hosts: Vec<String>,
    /// Since when it holds ([`crate::DATE_FORMAT`], UTC).
    pub since: String,
    /// Why it holds (`FleetLock pre-reboot of 10.0.0.1`, `restart by alice`).
    pub why: String,
    /// Whether the lock server cordoned the node (it was schedulable
    /// before): only then is it uncordoned at steady-state.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cordoned: bool,
    /// Why the holder is stale (held too long, or its host is down), when
    /// it is; reported, and released or kept as the policy says.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stale: String,
    /// Since when the lock server has seen the holder's host down (its
    /// status `failed`: the watcher cannot reach it), when it has
    /// ([`crate::DATE_FORMAT`], UTC); cleared when the host answers again.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub down_since: String,
}

impl LockHolder {
    /// The slots it takes: one per host, at least one.
    pub fn slots(&self) -> usize {
        self.hosts.len().max(1)
    }
}

/// A cluster's reboot lock (`/api/v0/cluster/{NAME}/lock`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(default)]
pub struct ClusterLock {
    /// The cluster.
    pub name: String,
    /// Who holds slots, in the order they took them.
    pub holders: Vec<LockHolder>,
    /// The SHA-256 (hex) of the cluster's FleetLock token; empty when the
    /// cluster has none (hidden from users).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token_sha256: String,
}

/// The lock is full: the holders that fill it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockFull {
    /// The slots of the lock.
    pub slots: usize,
    /// Who holds them.
    pub holders: Vec<LockHolder>,
}

impl std::fmt::Display for LockFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who: Vec<String> = self
            .holders
            .iter()
            .map(|h| match h.kind {
                HolderKind::Fleetlock => format!("FleetLock node '{}' since {}", h.id, h.since),
                HolderKind::Operation => format!("the {} since {}", h.id, h.since),
            })
            .collect();
        write!(
            f,
            "all {} reboot slot(s) of the cluster are held: {}",
            self.slots,
            who.join(", ")
        )
    }
}

impl ClusterLock {
    /// The slots its holders take.
    pub fn used(&self) -> usize {
        self.holders.iter().map(LockHolder::slots).sum()
    }

    /// The holder with this id.
    pub fn holder(&self, id: &str) -> Option<&LockHolder> {
        self.holders.iter().find(|h| h.id == id)
    }

    /// Takes slots for `holder` out of `slots`: a holder with its id keeps
    /// what it holds (the protocol's locks are recursive); else it is added
    /// if its slots are free, or if it needs more than there are and no one
    /// holds any (a roll's batch larger than the slots takes the whole
    /// lock), or [`LockFull`] says who holds them.
    pub fn take(&mut self, holder: LockHolder, slots: usize) -> Result<&LockHolder, LockFull> {
        if let Some(i) = self.holders.iter().position(|h| h.id == holder.id) {
            return Ok(&self.holders[i]);
        }
        let fits = self.used() + holder.slots() <= slots.max(1);
        if !fits && !self.holders.is_empty() {
            return Err(LockFull {
                slots: slots.max(1),
                holders: self.holders.clone(),
            });
        }
        self.holders.push(holder);
        Ok(self.holders.last().expect("just pushed"))
    }

    /// Gives the slots of `id` back; the holder it was, if any.
    pub fn give_back(&mut self, id: &str) -> Option<LockHolder> {
        let i = self.holders.iter().position(|h| h.id == id)?;
        Some(self.holders.remove(i))
    }
}

impl Model for ClusterLock {
    const NAME: &'static str = "ClusterLock";
    const HIDDEN: &'static [&'static str] = &["token_sha256"];
    fn primary_key(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), ModelError> {
        check_name(Self::NAME, "name", &self.name)?;
        for (i, holder) in self.holders.iter().enumerate() {
            if holder.id.is_empty() {
                return Err(ModelError::invalid(
                    Self::NAME,
                    format!("holders[{i}].id"),
                    "is required",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleetlock(id: &str, host: &str) -> LockHolder {
        LockHolder {
            id: id.into(),
            hosts: vec![host.into()],
            ..LockHolder::default()
        }
    }

    #[test]
    fn a_second_holder_waits_while_the_only_slot_is_held() {
        let mut lock = ClusterLock::default();
        assert!(lock.take(fleetlock("a", "10.0.0.1"), 1).is_ok());
        let full = lock.take(fleetlock("b", "10.0.0.2"), 1).unwrap_err();
        assert_eq!(full.holders.len(), 1);
        assert!(full.to_string().contains("FleetLock node 'a'"), "{full}");
        assert_eq!(lock.give_back("a").unwrap().id, "a");
        assert!(lock.take(fleetlock("b", "10.0.0.2"), 1).is_ok());
    }

    #[test]
    fn taking_again_keeps_the_slot_held() {
        let mut lock = ClusterLock::default();
        lock.take(fleetlock("a", "10.0.0.1"), 1).unwrap();
        lock.take(fleetlock("a", "10.0.0.1"), 1).unwrap();
        assert_eq!(lock.used(), 1);
        assert!(lock.give_back("b").is_none());
    }

    #[test]
    fn an_operation_takes_a_slot_per_host() {
        let mut lock = ClusterLock::default();
        let batch = LockHolder {
            id: "restart".into(),
            kind: HolderKind::Operation,
            state: HolderState::Held,
            hosts: vec!["10.0.0.1".into(), "10.0.0.2".into()],
            ..LockHolder::default()
        };
        lock.take(batch.clone(), 3).unwrap();
        assert!(lock.take(fleetlock("a", "10.0.0.3"), 3).is_ok());
        assert!(lock.take(fleetlock("b", "10.0.0.4"), 3).is_err());
        // A batch larger than the slots takes the whole lock, and only then.
        let mut lock = ClusterLock::default();
        lock.take(fleetlock("a", "10.0.0.3"), 1).unwrap();
        assert!(lock.take(batch.clone(), 1).is_err());
        lock.give_back("a");
        lock.take(batch, 1).unwrap();
        assert!(lock.take(fleetlock("a", "10.0.0.3"), 1).is_err());
    }
}
