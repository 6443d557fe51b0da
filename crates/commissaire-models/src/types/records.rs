//! Internal records: the watcher's notes and the investigations.

use serde::{Deserialize, Serialize};

use super::null_as_empty;
use crate::{Model, ModelError, check_address};

/// A watcher's note of when a host was last checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct WatcherRecord {
    /// Address of the host.
    pub address: String,
    /// When it was last checked.
    pub last_check: String,
    /// The host's status before the watcher marked it `failed`, restored when it answers again.
    #[serde(
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub previous_status: String,
}

impl Model for WatcherRecord {
    const NAME: &'static str = "WatcherRecord";
    fn primary_key(&self) -> String {
        self.address.clone()
    }
    fn validate(&self) -> Result<(), ModelError> {
        check_address(Self::NAME, &self.address)?;
        if !self.last_check.is_empty() && crate::parse_iso(&self.last_check).is_none() {
            return Err(ModelError::invalid(
                Self::NAME,
                "last_check",
                "must be a date as YYYY-MM-DDTHH:MM:SS.ffffff",
            ));
        }
        Ok(())
    }
}

/// A host investigation that has been asked for and not yet finished: the
/// record is the job. The server writes it before announcing
/// `jobs.investigate`; an investigator claims it with a lease (`owner`,
/// `lease_expires_at`, renewed while it works) and deletes it when the host
/// has reached a final status. Records that no live investigator owns are
/// found by every investigator's scan, so a lost or never-delivered message
/// only delays the work. Internal: not part of the REST API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Investigation {
    /// Address of the host.
    pub address: String,
    /// The cluster the host joins, if any (empty: look it up).
    #[serde(deserialize_with = "null_as_empty")]
    pub cluster: String,
    /// When the investigation was asked for.
    #[serde(deserialize_with = "null_as_empty")]
    pub requested_at: String,
    /// The investigator replica working on it (empty: nobody yet).
    #[serde(deserialize_with = "null_as_empty")]
    pub owner: String,
    /// Until when `owner`'s claim holds without renewal.
    #[serde(deserialize_with = "null_as_empty")]
    pub lease_expires_at: String,
    /// How many times an investigator has started it.
    pub attempts: u32,
    /// A join only: the host is bootstrapped already and joins `cluster`
    /// (registered with its container manager, `active` once the node is
    /// Ready); no facts, no playbook. Absent: a whole investigation.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub join: bool,
}

impl Investigation {
    /// Whether `owner`'s lease has run out at `now` (or nobody owns it).
    pub fn unowned_at(&self, now: chrono::NaiveDateTime) -> bool {
        self.owner.is_empty()
            || crate::parse_iso(&self.lease_expires_at).is_none_or(|until| until <= now)
    }
}

impl Model for Investigation {
    const NAME: &'static str = "Investigation";
    fn primary_key(&self) -> String {
        self.address.clone()
    }
    fn validate(&self) -> Result<(), ModelError> {
        check_address(Self::NAME, &self.address)?;
        for (field, value) in [
            ("requested_at", &self.requested_at),
            ("lease_expires_at", &self.lease_expires_at),
        ] {
            if !value.is_empty() && crate::parse_iso(value).is_none() {
                return Err(ModelError::invalid(
                    Self::NAME,
                    field,
                    "must be a date as YYYY-MM-DDTHH:MM:SS.ffffff",
                ));
            }
        }
        Ok(())
    }
}
