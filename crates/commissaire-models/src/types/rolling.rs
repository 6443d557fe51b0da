//! How a cluster is rolled: budgets given as counts or percents, the
//! cluster's rolling defaults, and what an operation record keeps of a
//! roll (who started it, each host's phases, pauses, past runs).

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::null_as_empty;

/// A number of hosts: a count (`2`) or a percent of the cluster's hosts
/// (`"25%"`). Serialised as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// So many hosts.
    Count(u32),
    /// This percent (0 to 100) of the cluster's hosts.
    Percent(u32),
}

impl Budget {
    /// Reads `"25%"`, `"3"` or `3`-as-text; the error says what is accepted.
    pub fn parse(text: &str) -> Result<Budget, String> {
        let t = text.trim();
        let bad = || format!("'{text}' is neither a whole number nor a percent such as \"25%\"");
        match t.strip_suffix('%') {
            Some(p) => {
                let p: u32 = p.trim().parse().map_err(|_| bad())?;
                if p > 100 {
                    return Err(format!("'{text}' is more than 100%"));
                }
                Ok(Budget::Percent(p))
            }
            None => t.parse().map(Budget::Count).map_err(|_| bad()),
        }
    }

    /// How many of `total` hosts: a count as it is, a percent rounded down
    /// (as the Machine Config Operator scales `maxUnavailable`).
    pub fn of(self, total: usize) -> usize {
        match self {
            Budget::Count(n) => n as usize,
            Budget::Percent(p) => total * p as usize / 100,
        }
    }

    /// As a batch size of `total` hosts: [`Budget::of`], at least 1 (a
    /// percent that rounds to 0 still rolls one host at a time, as MCO does).
    pub fn batch_of(self, total: usize) -> usize {
        self.of(total).max(1)
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Count(n) => write!(f, "{n}"),
            Budget::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Serialize for Budget {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Budget::Count(n) => s.serialize_u32(*n),
            Budget::Percent(_) => s.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Budget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Budget, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Budget;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a whole number or a percent such as \"25%\"")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Budget, E> {
                u32::try_from(n)
                    .map(Budget::Count)
                    .map_err(|_| E::custom(format!("{n} is too large")))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Budget, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom(format!("{n} is negative")))
                    .and_then(|n| self.visit_u64(n))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Budget, E> {
                Budget::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A cluster's defaults for its rolling operations (`Cluster.rolling`,
/// `/api/v0/cluster/{NAME}/rolling`); an operation's request overrides
/// each, and the clusterexec service's settings apply where neither says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RollingDefaults {
    /// Hosts worked on at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<Budget>,
    /// Failed hosts tolerated before a roll stops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<Budget>,
    /// Hosts rolled last, in this order (e.g. the control plane).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub last: Vec<String>,
    /// How many past runs an operation record keeps (default
    /// [`RollingDefaults::KEEP_RUNS`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_runs: Option<u32>,
    /// When rolls may work on hosts (any one open will do; none: any time).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<super::MaintenanceWindow>,
    /// What must hold after each host before the next (a request's `gates` wins).
    #[serde(skip_serializing_if = "super::Gates::is_empty")]
    pub gates: super::Gates,
    /// The slots of the cluster's reboot lock: how many hosts may be out at
    /// once, rebooting by FleetLock or worked on by a roll (a count, at
    /// least 1, or a percent of the hosts; default
    /// [`RollingDefaults::MAX_UNAVAILABLE`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<Budget>,
}

impl RollingDefaults {
    /// Past runs kept when the cluster does not say.
    pub const KEEP_RUNS: u32 = 10;
    /// The most past runs a record may keep.
    pub const MAX_KEEP_RUNS: u32 = 100;
    /// Hosts that may be out at once when the cluster does not say.
    pub const MAX_UNAVAILABLE: usize = 1;

    /// The slots of the cluster's reboot lock for a cluster of `hosts`
    /// members: `max_unavailable` of them (a percent rounded down), at
    /// least 1.
    pub fn lock_slots(&self, hosts: usize) -> usize {
        self.max_unavailable
            .map_or(Self::MAX_UNAVAILABLE, |b| b.batch_of(hosts))
            .max(1)
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &RollingDefaults::default()
    }

    /// Checks the values; the error names the member and says what is wrong.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.batch_size == Some(Budget::Count(0)) {
            return Err(("batch_size".into(), "must be at least 1".into()));
        }
        if self.max_unavailable == Some(Budget::Count(0)) {
            return Err(("max_unavailable".into(), "must be at least 1".into()));
        }
        if let Some(n) = self.keep_runs
            && n > Self::MAX_KEEP_RUNS
        {
            return Err((
                "keep_runs".into(),
                format!("must be at most {}", Self::MAX_KEEP_RUNS),
            ));
        }
        self.gates
            .check()
            .map_err(|(member, why)| (format!("gates.{member}"), why))?;
        for (i, w) in self.windows.iter().enumerate() {
            w.check()
                .map_err(|(member, why)| (format!("windows[{i}].{member}"), why))?;
        }
        for (i, h) in self.last.iter().enumerate() {
            if crate::check_address("RollingDefaults", h).is_err() {
                return Err((format!("last[{i}]"), format!("'{h}' is not a host address")));
            }
        }
        Ok(())
    }

    /// Past runs an operation record keeps.
    pub fn keep_runs(&self) -> usize {
        self.keep_runs.unwrap_or(Self::KEEP_RUNS) as usize
    }
}

/// The order a roll takes: the hosts of `first` in that order, then the
/// other members in the cluster's `hostset` order (the order they joined
/// it), then the hosts of `last` in that order. Hosts of `first` or `last`
/// that are not (or no longer) members are left out.
pub fn roll_order(hostset: &[String], first: &[String], last: &[String]) -> Vec<String> {
    use std::collections::HashSet;
    let members: HashSet<&String> = hostset.iter().collect();
    let (in_first, in_last): (HashSet<&String>, HashSet<&String>) =
        (first.iter().collect(), last.iter().collect());
    let firsts = first
        .iter()
        .filter(|h| members.contains(h) && !in_last.contains(h));
    let middle = hostset
        .iter()
        .filter(|h| !in_first.contains(h) && !in_last.contains(h));
    let lasts = last.iter().filter(|h| members.contains(h));
    let mut seen = HashSet::new();
    firsts
        .chain(middle)
        .chain(lasts)
        .filter(|h| seen.insert(*h))
        .cloned()
        .collect()
}

/// One phase of a host's step, e.g. `cordon`, `drain`, `run`, `down`, `up`,
/// `node_ready`, `uncordon`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Phase {
    /// Which phase.
    pub phase: String,
    /// When it began ([`crate::DATE_FORMAT`], UTC).
    pub started_at: String,
    /// When it ended; empty while it runs.
    #[serde(deserialize_with = "null_as_empty")]
    pub finished_at: String,
}

/// Where a host is in an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HostRollState {
    /// Being worked on.
    #[default]
    InProcess,
    /// Its step succeeded.
    Done,
    /// Its step failed (`failed_phase`, `reason`).
    Failed,
}

/// A host's record in an operation's `timeline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct HostProgress {
    /// The host's address.
    pub host: String,
    /// Where it is.
    pub state: HostRollState,
    /// Its phases so far, in order.
    pub phases: Vec<Phase>,
    /// The phase that failed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub failed_phase: String,
    /// Why it failed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// This operation cordoned the node (it was schedulable before), so
    /// this operation, or the replica that takes it over, uncordons it.
    /// A node that was cordoned already is left cordoned.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cordoned: bool,
}

impl HostProgress {
    /// The phase running now, if any.
    pub fn current_phase(&self) -> Option<&str> {
        self.phases
            .last()
            .filter(|p| p.finished_at.is_empty())
            .map(|p| p.phase.as_str())
    }
}

/// Something that happened to an operation as a whole (paused, resumed,
/// taken over by another replica).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct OperationEvent {
    /// When.
    pub at: String,
    /// What.
    pub event: String,
}

/// What an operation record keeps of an earlier run of the same
/// operation on the same cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RunSummary {
    /// How it ended.
    pub status: super::OperationStatus,
    /// Who started it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub started_by: String,
    /// When it started.
    pub started_at: String,
    /// When it ended.
    #[serde(deserialize_with = "null_as_empty")]
    pub finished_at: String,
    /// Hosts done.
    pub done: usize,
    /// Hosts that failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_hosts: Vec<String>,
    /// Why it failed or was cancelled.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The mean time of a done host's step, in milliseconds (the dry-run
    /// plan's estimate); absent when no host was done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_host_ms: Option<u64>,
}

/// The members every operation record has beyond the original's: who
/// started it, the order asked for, pause, each host's timeline, events
/// and past runs. Flattened into [`crate::ClusterRestart`] and its siblings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RollDetails {
    /// The user who started it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub started_by: String,
    /// Hosts rolled first, in this order (the request's `order`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<String>,
    /// Hosts rolled last, in this order (the request's `last`, else the
    /// cluster's default).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub last: Vec<String>,
    /// The request's health gates, instead of the cluster's (absent: the cluster's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gates: Option<super::Gates>,
    /// Set by `PUT .../pause`, cleared by `PUT .../resume`: the roll stops
    /// between hosts until resumed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pause_requested: bool,
    /// Why the roll is waiting now, e.g. "paused on request"; absent while it runs.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub waiting: String,
    /// Since when it waits.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub waiting_since: String,
    /// Each host worked on so far, in the order they began.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<HostProgress>,
    /// What happened to the operation as a whole, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<OperationEvent>,
    /// Earlier runs of this operation on this cluster, newest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<RunSummary>,
}

impl RollDetails {
    /// The most events a record keeps (the oldest go first).
    pub const MAX_EVENTS: usize = 100;
    /// Done hosts the timeline keeps (the latest to finish); older done
    /// hosts are only in the done list, so that the record of a roll of
    /// thousands of hosts stays small (the timeline is bounded; failed and
    /// in-process hosts are always kept).
    pub const DONE_HOSTS_KEPT: usize = 200;

    /// Drops the done hosts beyond the latest [`RollDetails::DONE_HOSTS_KEPT`]
    /// from the timeline (the oldest first).
    pub fn compact(&mut self) {
        let done = self
            .timeline
            .iter()
            .filter(|h| h.state == HostRollState::Done)
            .count();
        let mut excess = done.saturating_sub(Self::DONE_HOSTS_KEPT);
        self.timeline.retain(|h| {
            if excess > 0 && h.state == HostRollState::Done {
                excess -= 1;
                return false;
            }
            true
        });
    }

    /// The timeline entry of `host`, created if there is none.
    pub fn host_mut(&mut self, host: &str) -> &mut HostProgress {
        let i = match self.timeline.iter().position(|p| p.host == host) {
            Some(i) => i,
            None => {
                self.timeline.push(HostProgress {
                    host: host.to_string(),
                    ..HostProgress::default()
                });
                self.timeline.len() - 1
            }
        };
        &mut self.timeline[i]
    }

    /// The timeline entry of `host`.
    pub fn host(&self, host: &str) -> Option<&HostProgress> {
        self.timeline.iter().find(|p| p.host == host)
    }

    /// Adds an event (unless the last one says the same: updates may be
    /// applied twice).
    pub fn add_event(&mut self, at: &str, event: &str) {
        if self.events.last().is_some_and(|e| e.event == event) {
            return;
        }
        self.events.push(OperationEvent {
            at: at.to_string(),
            event: event.to_string(),
        });
        if self.events.len() > Self::MAX_EVENTS {
            let extra = self.events.len() - Self::MAX_EVENTS;
            self.events.drain(..extra);
        }
    }

    /// The mean time of the done hosts' steps, in milliseconds.
    pub fn mean_host_ms(&self) -> Option<u64> {
        let times: Vec<i64> = self
            .timeline
            .iter()
            .filter(|p| p.state == HostRollState::Done)
            .filter_map(|p| {
                let start = crate::parse_iso(&p.phases.first()?.started_at)?;
                let end = crate::parse_iso(&p.phases.last()?.finished_at)?;
                Some((end - start).num_milliseconds().max(0))
            })
            .collect();
        if times.is_empty() {
            return None;
        }
        Some((times.iter().sum::<i64>() / times.len() as i64) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn budgets_are_counts_or_percents_rounded_down_as_mco_does() {
        let b: Budget = serde_json::from_value(json!("25%")).unwrap();
        assert_eq!(b, Budget::Percent(25));
        assert_eq!((b.of(10), b.of(3), b.batch_of(3)), (2, 0, 1));
        assert_eq!(serde_json::to_value(b).unwrap(), json!("25%"));
        let c: Budget = serde_json::from_value(json!(3)).unwrap();
        assert_eq!((c, c.of(100)), (Budget::Count(3), 3));
        assert_eq!(serde_json::to_value(c).unwrap(), json!(3));
        assert_eq!(Budget::parse(" 7 ").unwrap(), Budget::Count(7));
        for bad in [json!("101%"), json!("x%"), json!(-1), json!(1.5), json!("")] {
            assert!(
                serde_json::from_value::<Budget>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_order_puts_first_then_the_hostset_then_last() {
        let hs: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(roll_order(&hs, &[], &[]), s(&["a", "b", "c", "d"]));
        assert_eq!(
            roll_order(&hs, &s(&["c", "x"]), &s(&["a"])),
            s(&["c", "b", "d", "a"]),
            "non-members are left out"
        );
        assert_eq!(
            roll_order(&hs, &s(&["d", "c"]), &[]),
            s(&["d", "c", "a", "b"])
        );
    }

    #[test]
    fn the_timeline_keeps_the_latest_done_hosts_and_every_failed_one() {
        let mut d = RollDetails::default();
        let n = RollDetails::DONE_HOSTS_KEPT + 5;
        d.host_mut("failed-first").state = HostRollState::Failed;
        for i in 0..n {
            d.host_mut(&format!("10.0.{}.{}", i / 250, i % 250)).state = HostRollState::Done;
        }
        d.compact();
        assert_eq!(d.timeline.len(), RollDetails::DONE_HOSTS_KEPT + 1);
        assert_eq!(d.timeline[0].host, "failed-first", "failed hosts stay");
        assert_eq!(d.timeline[1].host, "10.0.0.5", "the oldest done hosts went");
        d.compact();
        assert_eq!(
            d.timeline.len(),
            RollDetails::DONE_HOSTS_KEPT + 1,
            "compacting again changes nothing"
        );
    }

    #[test]
    fn events_are_not_repeated_and_are_bounded() {
        let mut d = RollDetails::default();
        d.add_event("t", "paused");
        d.add_event("t", "paused");
        assert_eq!(d.events.len(), 1);
        for i in 0..200 {
            d.add_event("t", &i.to_string());
        }
        assert_eq!(d.events.len(), RollDetails::MAX_EVENTS);
        assert_eq!(d.events.last().unwrap().event, "199");
    }
}
