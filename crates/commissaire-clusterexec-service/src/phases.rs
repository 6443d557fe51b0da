//! A host's timeline: the phases of its step (cordon, drain, run, down,
//! up, node_ready, uncordon), written into the operation record as they
//! begin, so `GET` shows each host's progress live.

use std::sync::Arc;

use async_trait::async_trait;
use commissaire_models::{HostRollState, Phase, RollDetails, now_iso};

use crate::ExecError;
use crate::lease::Lease;

/// Phase names, as they appear in a timeline.
pub mod phase {
    /// Taking the node out of scheduling (also when it was cordoned already).
    pub const CORDON: &str = "cordon";
    /// Evicting the node's pods.
    pub const DRAIN: &str = "drain";
    /// The operation's playbook or command runs.
    pub const RUN: &str = "run";
    /// A restarted host's SSH port closed; waiting for it to come back.
    pub const DOWN: &str = "down";
    /// A restarted host's SSH port opened again; logging in with its pinned key.
    pub const UP: &str = "up";
    /// Waiting for the node to report Ready.
    pub const NODE_READY: &str = "node_ready";
    /// The health gates (check commands, Prometheus alerts).
    pub const GATES: &str = "gates";
    /// Making the node schedulable again.
    pub const UNCORDON: &str = "uncordon";
}

/// Where a host's step reports the phase it enters.
#[async_trait]
pub trait PhaseSink: Send + Sync {
    /// The host enters `phase` now (the previous phase ends).
    async fn enter(&self, phase: &str);
}

/// A [`PhaseSink`] that records nothing.
pub struct NoPhases;

#[async_trait]
impl PhaseSink for NoPhases {
    async fn enter(&self, _phase: &str) {}
}

/// Opens `name` at `at` in `details`' entry for `host`, closing the phase
/// running there. Applying it twice changes nothing (record updates may be
/// applied again after a conflict).
pub(crate) fn enter_phase(details: &mut RollDetails, host: &str, name: &str, at: &str) {
    let h = details.host_mut(host);
    if let Some(last) = h.phases.last_mut()
        && last.finished_at.is_empty()
    {
        if last.phase == name && last.started_at == at {
            return;
        }
        last.finished_at = at.to_string();
    }
    h.state = HostRollState::InProcess;
    h.phases.push(Phase {
        phase: name.to_string(),
        started_at: at.to_string(),
        finished_at: String::new(),
    });
}

/// Ends `host`'s step at `at`: done, or failed in the phase running then
/// with `reason`.
pub(crate) fn end_host(details: &mut RollDetails, host: &str, at: &str, outcome: Result<(), &str>) {
    let h = details.host_mut(host);
    let open = h.phases.last_mut().filter(|p| p.finished_at.is_empty());
    let phase = open.as_ref().map(|p| p.phase.clone());
    if let Some(p) = open {
        p.finished_at = at.to_string();
    }
    match outcome {
        Ok(()) => {
            h.state = HostRollState::Done;
            h.failed_phase.clear();
            h.reason.clear();
            details.compact();
        }
        Err(why) => {
            h.state = HostRollState::Failed;
            h.failed_phase = phase
                .or_else(|| h.phases.last().map(|p| p.phase.clone()))
                .unwrap_or_default();
            h.reason = why.to_string();
        }
    }
}

/// A [`PhaseSink`] writing one host's phases into the operation record
/// through the operation's lease.
pub(crate) struct LeasePhases {
    pub lease: Arc<Lease>,
    pub host: String,
}

impl LeasePhases {
    /// Records that this operation takes the node out of scheduling
    /// (written before the cordon call: a replica taking over then knows
    /// the node is this operation's to uncordon).
    pub async fn mark_cordoned(&self) -> Result<(), ExecError> {
        let host = self.host.as_str();
        self.lease
            .update(|r| r.details.host_mut(host).cordoned = true)
            .await
            .map(drop)
    }

    /// Ends the host's step in the record.
    pub async fn end(&self, outcome: Result<(), &str>) {
        let at = now_iso();
        let host = self.host.as_str();
        if let Err(e) = self
            .lease
            .update(|r| end_host(&mut r.details, host, &at, outcome))
            .await
        {
            tracing::warn!(host, error = %e, "could not record the end of a host's step");
        }
    }
}

#[async_trait]
impl PhaseSink for LeasePhases {
    async fn enter(&self, phase: &str) {
        let at = now_iso();
        let host = self.host.as_str();
        // A lost lease is noticed by the roll itself; the phase is only progress.
        if let Err(e) = self
            .lease
            .update(|r| enter_phase(&mut r.details, host, phase, &at))
            .await
        {
            tracing::warn!(host, phase, error = %e, "could not record a host's phase");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_open_close_and_a_failure_names_the_phase_it_happened_in() {
        let mut d = RollDetails::default();
        enter_phase(&mut d, "h", phase::CORDON, "t1");
        enter_phase(&mut d, "h", phase::RUN, "t2");
        enter_phase(&mut d, "h", phase::RUN, "t2");
        let h = d.host("h").unwrap();
        assert_eq!(h.phases.len(), 2, "applying an update twice adds nothing");
        assert_eq!(h.phases[0].finished_at, "t2");
        assert_eq!(h.current_phase(), Some("run"));
        end_host(&mut d, "h", "t3", Err("task failed"));
        let h = d.host("h").unwrap();
        assert_eq!(
            (h.state, h.failed_phase.as_str()),
            (HostRollState::Failed, "run")
        );
        assert_eq!(
            (h.phases[1].finished_at.as_str(), h.reason.as_str()),
            ("t3", "task failed")
        );
        // Run again (after a takeover): the entry is reused and ends done.
        enter_phase(&mut d, "h", phase::RUN, "t4");
        end_host(&mut d, "h", "t5", Ok(()));
        let h = d.host("h").unwrap();
        assert_eq!(
            (h.state, h.failed_phase.as_str()),
            (HostRollState::Done, "")
        );
        assert_eq!(d.timeline.len(), 1);
    }
}
