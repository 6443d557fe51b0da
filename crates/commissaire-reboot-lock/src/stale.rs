//! Stale holders: a FleetLock host that has held its slot longer than the
//! lock server allows, or whose host the watcher has seen down for longer
//! than a reboot takes. [`judge`] says whether a holder is stale and why;
//! what then happens is the [`StalePolicy`]: keep the slot (the safe
//! default: nothing else reboots in its place until an operator looks) or
//! give it back.

use std::time::Duration;

use chrono::NaiveDateTime;
use commissaire_models::{DATE_FORMAT, HolderKind, LockHolder, parse_iso};

/// What happens to a holder found stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StalePolicy {
    /// Reported, and the slot kept: rolls and other hosts wait until an
    /// operator releases it (`DELETE .../lock/holders/{id}`).
    #[default]
    Keep,
    /// Reported, and the slot given back (the node is left as it is).
    Release,
}

impl StalePolicy {
    /// `keep` or `release`.
    pub fn as_str(self) -> &'static str {
        match self {
            StalePolicy::Keep => "keep",
            StalePolicy::Release => "release",
        }
    }
}

/// When a FleetLock holder is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleRules {
    /// Held longer than this (`None`: never by time).
    pub held_longer_than: Option<Duration>,
    /// Its host seen down longer than this (`None`: never by the host).
    pub down_longer_than: Option<Duration>,
}

/// A holder as the rules see it now: the `down_since` and `stale` it
/// should have.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Since when its host is down (empty: it is not).
    pub down_since: String,
    /// Why it is stale (empty: it is not).
    pub stale: String,
}

impl Verdict {
    /// Whether `holder` already says this.
    pub fn matches(&self, holder: &LockHolder) -> bool {
        holder.down_since == self.down_since && holder.stale == self.stale
    }

    /// Writes it into `holder`.
    pub fn apply(&self, holder: &mut LockHolder) {
        holder.down_since.clone_from(&self.down_since);
        holder.stale.clone_from(&self.stale);
    }
}

fn seconds(d: chrono::TimeDelta) -> i64 {
    d.num_seconds().max(0)
}

/// Judges `holder` at `now`, its host being down or not: operations are
/// never stale here (their own lease hands them to another replica); a
/// FleetLock holder is stale when it has held longer than the rules
/// allow, or its host has been down (since its `down_since`, or from now
/// when first seen down) longer than they allow. A holder whose
/// timestamps cannot be read is judged from now.
pub fn judge(
    holder: &LockHolder,
    host_down: bool,
    now: NaiveDateTime,
    rules: &StaleRules,
) -> Verdict {
    if holder.kind != HolderKind::Fleetlock {
        return Verdict {
            down_since: holder.down_since.clone(),
            stale: holder.stale.clone(),
        };
    }
    let down_since = if host_down {
        parse_iso(&holder.down_since)
            .map(|_| holder.down_since.clone())
            .unwrap_or_else(|| now.format(DATE_FORMAT).to_string())
    } else {
        String::new()
    };
    let host = holder.hosts.first().map(String::as_str).unwrap_or("?");
    let mut why = Vec::new();
    if let (Some(limit), Some(since)) = (rules.held_longer_than, parse_iso(&holder.since)) {
        let held = now - since;
        if held.to_std().is_ok_and(|h| h > limit) {
            why.push(format!(
                "held for {} s (since {}), longer than {} s",
                seconds(held),
                holder.since,
                limit.as_secs()
            ));
        }
    }
    if let (Some(limit), Some(since)) = (rules.down_longer_than, parse_iso(&down_since)) {
        let down = now - since;
        if down.to_std().is_ok_and(|d| d > limit) {
            why.push(format!(
                "host {host} down for {} s (since {down_since}), longer than {} s",
                seconds(down),
                limit.as_secs()
            ));
        }
    }
    Verdict {
        down_since,
        stale: why.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commissaire_models::HolderState;

    fn at(s: &str) -> NaiveDateTime {
        parse_iso(s).unwrap()
    }

    fn holder(since: &str) -> LockHolder {
        LockHolder {
            id: "node-1".into(),
            kind: HolderKind::Fleetlock,
            state: HolderState::Held,
            hosts: vec!["10.0.0.1".into()],
            since: since.into(),
            ..LockHolder::default()
        }
    }

    const RULES: StaleRules = StaleRules {
        held_longer_than: Some(Duration::from_secs(3600)),
        down_longer_than: Some(Duration::from_secs(600)),
    };

    #[test]
    fn a_holder_within_its_time_and_up_is_not_stale() {
        let h = holder("2026-01-01T10:00:00.000000");
        let v = judge(&h, false, at("2026-01-01T10:59:00.000000"), &RULES);
        assert_eq!(v, Verdict::default());
        assert!(v.matches(&h));
    }

    #[test]
    fn a_holder_held_too_long_is_stale_saying_for_how_long() {
        let h = holder("2026-01-01T10:00:00.000000");
        let v = judge(&h, false, at("2026-01-01T11:00:01.000000"), &RULES);
        assert_eq!(
            v.stale,
            "held for 3601 s (since 2026-01-01T10:00:00.000000), longer than 3600 s"
        );
        assert!(!v.matches(&h));
    }

    #[test]
    fn a_host_seen_down_is_stale_only_once_down_longer_than_a_reboot() {
        let mut h = holder("2026-01-01T10:00:00.000000");
        // First seen down: remembered from now, not stale yet (it may be rebooting).
        let v = judge(&h, true, at("2026-01-01T10:01:00.000000"), &RULES);
        assert_eq!(v.down_since, "2026-01-01T10:01:00.000000");
        assert_eq!(v.stale, "");
        v.apply(&mut h);
        // Still down within the limit: the same.
        let v = judge(&h, true, at("2026-01-01T10:11:00.000000"), &RULES);
        assert!(v.matches(&h));
        // Down longer than the limit: stale.
        let v = judge(&h, true, at("2026-01-01T10:11:01.000000"), &RULES);
        assert_eq!(
            v.stale,
            "host 10.0.0.1 down for 601 s (since 2026-01-01T10:01:00.000000), longer than 600 s"
        );
        v.apply(&mut h);
        // Back up: neither down nor stale any more.
        let v = judge(&h, false, at("2026-01-01T10:12:00.000000"), &RULES);
        assert_eq!(v, Verdict::default());
    }

    #[test]
    fn both_reasons_are_named_and_rules_left_out_never_apply() {
        let h = LockHolder {
            down_since: "2026-01-01T10:00:00.000000".into(),
            ..holder("2026-01-01T09:00:00.000000")
        };
        let now = at("2026-01-01T11:00:00.000000");
        let v = judge(&h, true, now, &RULES);
        assert!(v.stale.starts_with("held for 7200 s"), "{}", v.stale);
        assert!(
            v.stale.contains("; host 10.0.0.1 down for 3600 s"),
            "{}",
            v.stale
        );
        let never = StaleRules {
            held_longer_than: None,
            down_longer_than: None,
        };
        assert_eq!(judge(&h, true, now, &never).stale, "");
    }

    #[test]
    fn operations_are_never_judged_stale_here() {
        let h = LockHolder {
            kind: HolderKind::Operation,
            id: "restart".into(),
            ..holder("2000-01-01T00:00:00.000000")
        };
        let v = judge(&h, true, at("2026-01-01T00:00:00.000000"), &RULES);
        assert!(v.matches(&h));
    }
}
