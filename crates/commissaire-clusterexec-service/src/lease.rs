//! The lease: which replica runs an operation, kept in the operation record
//! itself (`owner`, `lease_expires_at`) and changed only by compare-and-swap.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use commissaire_models::{DATE_FORMAT, OperationStatus};
use serde_json::Value;
use tokio::sync::{Mutex, watch};

use crate::ExecError;
use crate::record::{OpKind, OpRecord};
use crate::store::{OpStore, SwapError};

/// How many compare-and-swap conflicts in a row an update puts up with.
const CAS_ATTEMPTS: usize = 64;

/// `now + d` in the records' timestamp format.
pub(crate) fn expiry_after(d: Duration) -> String {
    let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(30));
    (chrono::Utc::now().naive_utc() + d)
        .format(DATE_FORMAT)
        .to_string()
}

/// The result of trying to claim an operation.
pub(crate) enum Claim {
    /// This replica owns it now.
    Claimed {
        lease: Arc<Lease>,
        record: Box<OpRecord>,
        /// The replica whose expired lease was taken over, if any.
        previous_owner: Option<String>,
    },
    /// Nothing to do here, and why.
    NotClaimed(String),
}

struct State {
    /// The record as last written or seen (the next swap's `expected`).
    raw: Value,
    /// Until when this replica may act: the last successful write plus the
    /// lease, minus a safety margin.
    valid_until: Instant,
    /// The operation was ended by this replica.
    ended: bool,
}

/// A replica's claim on one operation.
pub(crate) struct Lease {
    store: OpStore,
    kind: OpKind,
    name: String,
    owner: String,
    duration: Duration,
    state: Mutex<State>,
    lost: watch::Sender<bool>,
}

impl Lease {
    fn margin(&self) -> Duration {
        (self.duration / 6).min(Duration::from_secs(5))
    }

    fn lost_error(&self, why: impl Into<String>) -> ExecError {
        self.lost.send_replace(true);
        ExecError::LeaseLost {
            op: self.kind.as_str(),
            cluster: self.name.clone(),
            why: why.into(),
        }
    }

    /// Claims the operation for `owner` if it is in process and unowned,
    /// owned by `owner` already (a restarted replica with a fixed id), or its
    /// owner's lease has expired.
    pub async fn acquire(
        store: &OpStore,
        kind: OpKind,
        name: &str,
        owner: &str,
        duration: Duration,
    ) -> Result<Claim, ExecError> {
        let mut started = Instant::now();
        let mut previous_owner = None;
        let claimed = store
            .update(kind, name, CAS_ATTEMPTS, |current| {
                let Some(rec) = current else {
                    return Err("there is no record".into());
                };
                if rec.status != OperationStatus::InProcess {
                    return Err(format!("it is {}", rec.status));
                }
                let now = chrono::Utc::now().naive_utc();
                previous_owner = if rec.owner.is_empty() || rec.owner == owner {
                    None
                } else if rec.lease_expired(now) {
                    Some(rec.owner.clone())
                } else {
                    return Err(format!(
                        "'{}' runs it (lease until {})",
                        rec.owner, rec.lease_expires_at
                    ));
                };
                let mut next = rec.clone();
                next.owner = owner.to_string();
                next.lease_expires_at = expiry_after(duration);
                started = Instant::now();
                Ok(next)
            })
            .await?;
        let saved = match claimed {
            Ok(saved) => saved,
            Err(why) => return Ok(Claim::NotClaimed(why)),
        };
        let (lost, _) = watch::channel(false);
        let mut lease = Lease {
            store: store.clone(),
            kind,
            name: name.to_string(),
            owner: owner.to_string(),
            duration,
            state: Mutex::new(State {
                raw: saved.raw,
                valid_until: started + duration,
                ended: false,
            }),
            lost,
        };
        let margin = lease.margin();
        lease.state.get_mut().valid_until -= margin;
        Ok(Claim::Claimed {
            lease: Arc::new(lease),
            record: Box::new(saved.rec),
            previous_owner,
        })
    }

    /// A receiver that turns `true` once the lease is lost.
    pub fn lost_signal(&self) -> watch::Receiver<bool> {
        self.lost.subscribe()
    }

    /// Whether this replica ended the operation.
    pub async fn is_ended(&self) -> bool {
        self.state.lock().await.ended
    }

    /// Applies `change` to the freshest record and writes it, renewing the
    /// lease (or, when `change` ends the operation, clearing `owner` and
    /// `lease_expires_at`). On a conflict (the server set
    /// `cancel_requested`, ...) `change` is applied again to what is stored
    /// now, so it must be idempotent. Fails with [`ExecError::LeaseLost`]
    /// when the record is no longer this replica's or the lease could not be
    /// renewed before it expired.
    pub async fn update<T>(
        &self,
        mut change: impl FnMut(&mut OpRecord) -> T,
    ) -> Result<(T, OpRecord), ExecError> {
        let mut st = self.state.lock().await;
        if st.ended {
            return Err(ExecError::LeaseLost {
                op: self.kind.as_str(),
                cluster: self.name.clone(),
                why: "the operation has ended".into(),
            });
        }
        let mut current = st.raw.clone();
        let mut conflicts = 0;
        let mut backoff = Duration::from_millis(100);
        let mut tried_ending: Option<T> = None;
        loop {
            let rec = OpRecord::from_value(self.kind, current.clone())?;
            if tried_ending.is_some()
                && rec.status != OperationStatus::InProcess
                && rec.owner.is_empty()
            {
                // Our final write went through although its answer was lost.
                st.raw = current;
                st.ended = true;
                return Ok((tried_ending.take().expect("set"), rec));
            }
            if rec.owner != self.owner {
                return Err(self.lost_error(if rec.owner.is_empty() {
                    "the record has no owner any more".to_string()
                } else {
                    format!("'{}' took it over", rec.owner)
                }));
            }
            if rec.status != OperationStatus::InProcess {
                return Err(self.lost_error(format!("it is {} now", rec.status)));
            }
            let mut next = rec;
            let out = change(&mut next);
            let ending = next.status != OperationStatus::InProcess;
            if ending {
                next.owner.clear();
                next.lease_expires_at.clear();
            } else {
                next.lease_expires_at = expiry_after(self.duration);
            }
            let started = Instant::now();
            if started >= st.valid_until {
                return Err(self.lost_error("the lease could not be renewed in time"));
            }
            match self.store.swap(self.kind, &current, &next).await {
                Ok(saved) => {
                    st.raw = saved.raw;
                    st.valid_until = started + self.duration - self.margin();
                    st.ended = ending;
                    return Ok((out, saved.rec));
                }
                Err(SwapError::Conflict(Some(newer))) => {
                    conflicts += 1;
                    if conflicts > CAS_ATTEMPTS {
                        return Err(self.lost_error("the record keeps changing"));
                    }
                    current = newer;
                }
                Err(SwapError::Conflict(None)) => {
                    return Err(self.lost_error("the record was deleted"));
                }
                Err(SwapError::Other(e)) => {
                    tracing::warn!(op = self.kind.as_str(), cluster = %self.name, error = %e,
                        "could not write the operation record; retrying");
                    if ending {
                        tried_ending = Some(out);
                    }
                    let left = st.valid_until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(
                            self.lost_error(format!("the lease could not be renewed in time: {e}"))
                        );
                    }
                    tokio::time::sleep(backoff.min(left)).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    // Read what is stored: the write may have gone through.
                    match self.store.get(self.kind, &self.name).await {
                        Ok(Some(s)) => current = s.raw,
                        Ok(None) => return Err(self.lost_error("the record was deleted")),
                        Err(_) => {}
                    }
                }
            }
        }
    }

    /// Renews the lease every third of its duration until it is lost or the
    /// operation ends; losing it raises [`Lease::lost_signal`].
    pub fn spawn_renewal(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let lease = self.clone();
        tokio::spawn(async move {
            let every = lease.duration / 3;
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = lease.update(|_| ()).await {
                    if !lease.is_ended().await {
                        tracing::warn!(error = %e, "stopped renewing the lease");
                    }
                    break;
                }
            }
        })
    }

    /// Gives the operation up without ending it (graceful shutdown): marks
    /// the lease expired so another replica takes it over at its next scan.
    pub async fn release(&self) {
        let mut st = self.state.lock().await;
        if st.ended {
            return;
        }
        st.ended = true;
        self.lost.send_replace(true);
        let Ok(rec) = OpRecord::from_value(self.kind, st.raw.clone()) else {
            return;
        };
        if rec.owner != self.owner || rec.status != OperationStatus::InProcess {
            return;
        }
        let mut next = rec;
        next.lease_expires_at = expiry_after(Duration::ZERO);
        match self.store.swap(self.kind, &st.raw, &next).await {
            Ok(_) => {
                tracing::info!(op = self.kind.as_str(), cluster = %self.name, "released the operation")
            }
            Err(e) => {
                tracing::warn!(op = self.kind.as_str(), cluster = %self.name, error = ?e,
                    "could not release the operation; it is taken over when its lease expires")
            }
        }
    }
}
