//! Between two steps of a roll: cancel, pause on request, and the
//! cluster's maintenance windows; while a roll waits it says why in its
//! record (`waiting`, `waiting_since`, `events`).

use std::time::Duration;

use commissaire_models::{MaintenanceWindow, OperationStatus, WindowState, now_iso, window_state};
use serde_json::json;
use tokio::sync::watch;

use super::{Inner, wait_lost};
use crate::ExecError;
use crate::lease::Lease;
use crate::record::{OpKind, OpRecord};
use commissaire_models::Cluster;

/// How often a paused roll looks whether it was resumed or cancelled.
const PAUSE_POLL: Duration = Duration::from_secs(1);

/// The `waiting` of a roll paused on request.
const PAUSED: &str = "paused on request";

/// Why a roll must wait before its next step, if it must: paused on
/// request, or outside the cluster's maintenance windows.
fn wait_reason(rec: &OpRecord, windows: WindowState) -> Option<String> {
    if rec.details.pause_requested {
        return Some(PAUSED.into());
    }
    match windows {
        WindowState::Closed(Some(next)) => Some(format!(
            "outside the maintenance windows (the next opens at {})",
            next.format("%Y-%m-%dT%H:%M:%SZ")
        )),
        WindowState::Closed(None) => {
            Some("outside the maintenance windows (none opens within a week)".into())
        }
        WindowState::Always | WindowState::OpenUntil(_) => None,
    }
}

/// What the check between two steps of a roll decided.
pub(super) enum Between {
    /// Go on with the next hosts (the record as written).
    Go(OpRecord),
    /// Wait, for this reason (the record's `waiting`).
    Wait(String),
    /// The operation ended (cancelled).
    Ended(OpRecord),
}

impl Inner {
    /// The cluster's maintenance windows now (read again before each step:
    /// an operator may change them mid-roll; `windows` keeps the last read
    /// for when storage does not answer).
    pub(super) async fn windows_now(
        &self,
        name: &str,
        windows: &mut Vec<MaintenanceWindow>,
    ) -> WindowState {
        match self.storage.get::<Cluster>(json!({"name": name})).await {
            Ok(c) => *windows = c.rolling.windows,
            Err(e) => {
                tracing::debug!(cluster = name, error = %e, "could not read the cluster's windows; using the last ones read")
            }
        }
        window_state(windows, chrono::Utc::now())
    }

    /// Before each step: ends the operation if cancel was asked for, makes
    /// it wait if it was paused, is outside the maintenance windows or
    /// could not take its reboot-lock slots (`lock_wait`; saying why in
    /// `waiting` and `events`), else records `chunk` in process (and, after
    /// a wait, that it resumed).
    pub(super) async fn between_steps(
        &self,
        lease: &Lease,
        chunk: &[String],
        windows: WindowState,
        lock_wait: Option<&str>,
    ) -> Result<Between, ExecError> {
        let at = now_iso();
        let (decision, rec) = lease
            .update(|r| {
                if r.cancel_requested {
                    r.in_process.clear();
                    r.details.waiting.clear();
                    r.details.waiting_since.clear();
                    r.end(OperationStatus::Cancelled, Some("cancelled on request"));
                    return None;
                }
                if let Some(why) = wait_reason(r, windows).or_else(|| lock_wait.map(str::to_string))
                {
                    r.in_process.clear();
                    if r.details.waiting != why {
                        let event = if why == PAUSED {
                            "paused".to_string()
                        } else {
                            format!("waiting: {why}")
                        };
                        r.details.waiting = why.clone();
                        r.details.waiting_since = at.clone();
                        r.details.add_event(&at, &event);
                    }
                    return Some(Some(why));
                }
                if !r.details.waiting.is_empty() {
                    r.details.waiting.clear();
                    r.details.waiting_since.clear();
                    r.details.add_event(&at, "resumed");
                }
                r.in_process = chunk.to_vec();
                Some(None)
            })
            .await?;
        Ok(match decision {
            Some(None) => Between::Go(rec),
            Some(Some(why)) => Between::Wait(why),
            None => Between::Ended(rec),
        })
    }

    /// While the roll waits for `why`: reads the record and the cluster's
    /// windows every [`PAUSE_POLL`] (without writing: the renewal keeps the
    /// lease) until the reason to wait changed or cancel was asked for.
    pub(super) async fn wait_while(
        &self,
        kind: OpKind,
        name: &str,
        why: &str,
        windows: &mut Vec<MaintenanceWindow>,
        lost: &mut watch::Receiver<bool>,
    ) -> Result<(), ExecError> {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(PAUSE_POLL) => {}
                _ = wait_lost(lost) => {
                    return Err(ExecError::LeaseLost {
                        op: kind.as_str(),
                        cluster: name.to_string(),
                        why: format!("the lease was lost while {why}"),
                    });
                }
            }
            // The lock is asked again at the next step.
            if why.starts_with(super::slots::LOCK_WAIT) {
                return Ok(());
            }
            let now = self.windows_now(name, windows).await;
            match self.ops.get(kind, name).await {
                Ok(Some(s))
                    if !s.rec.cancel_requested
                        && wait_reason(&s.rec, now).as_deref() == Some(why) => {}
                // Resumed, cancelled, the window opened, or gone: the next update says which.
                Ok(_) => return Ok(()),
                Err(e) => {
                    tracing::debug!(op = kind.as_str(), cluster = name, error = %e, "could not look at a waiting operation")
                }
            }
        }
    }
}
