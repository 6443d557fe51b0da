//! `GET /api/v0/audit`: the audit trail, newest first, filtered; and the
//! writing of its entries ([`crate::audit`] makes them).

use std::collections::HashMap;

use commissaire_models::AuditEntry;
use serde_json::{Value, json};

use super::{Api, Reply, ok};
use crate::error::{ApiError, ApiResult};

/// How many entries `GET /audit` answers unless `limit` says.
pub const DEFAULT_LIMIT: usize = 100;

/// The filters of `GET /audit`: `user`, `kind` (the kind or a kind it
/// begins: `cluster` matches `cluster.restart`), `name`, `since` (a time,
/// `YYYY-MM-DD[THH:MM[:SS]]`, UTC), `limit` (1 to 10000).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this user's entries.
    pub user: Option<String>,
    /// Only entries of this kind or of kinds under it.
    pub kind: Option<String>,
    /// Only entries naming exactly this (`prod`, `prod/10.0.0.1`).
    pub name: Option<String>,
    /// Only entries written at or after this time.
    pub since: Option<String>,
    /// At most this many entries (the newest).
    pub limit: usize,
}

impl AuditFilter {
    /// Reads the query; a filter the API does not know, or a bad value, is
    /// a 400 naming it.
    pub fn from_query(query: &HashMap<String, String>) -> ApiResult<AuditFilter> {
        let mut filter = AuditFilter {
            limit: DEFAULT_LIMIT,
            ..Default::default()
        };
        for (key, value) in query {
            match key.as_str() {
                "user" => filter.user = Some(value.clone()),
                "kind" => filter.kind = Some(value.clone()),
                "name" => filter.name = Some(value.clone()),
                "since" => {
                    let ok = value.len() >= 10
                        && value.len() <= 26
                        && value
                            .bytes()
                            .all(|b| b.is_ascii_digit() || b"-T:.".contains(&b));
                    if !ok {
                        return Err(ApiError::bad_request(
                            "since must be a UTC time as YYYY-MM-DD[THH:MM[:SS]]",
                        )
                        .field("since"));
                    }
                    filter.since = Some(value.clone());
                }
                "limit" => {
                    filter.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=10_000).contains(n))
                        .ok_or_else(|| {
                            ApiError::bad_request("limit must be a number from 1 to 10000")
                                .field("limit")
                        })?;
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown filter '{other}' (filters: user, kind, name, since, limit)"
                    ))
                    .field(other));
                }
            }
        }
        Ok(filter)
    }

    /// Whether `entry` passes.
    pub fn accepts(&self, entry: &AuditEntry) -> bool {
        self.user.as_ref().is_none_or(|u| &entry.user == u)
            && self
                .kind
                .as_ref()
                .is_none_or(|k| entry.kind == *k || entry.kind.starts_with(&format!("{k}.")))
            && self.name.as_ref().is_none_or(|n| &entry.name == n)
            && self
                .since
                .as_ref()
                .is_none_or(|s| entry.at.as_str() >= s.as_str())
    }
}

impl Api {
    /// Stores `entry`.
    pub async fn record_audit(&self, entry: &AuditEntry) -> Result<(), String> {
        // No waiting out an outage: an entry that cannot be written is logged.
        self.storage
            .impatient()
            .save(entry)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Every stored entry, oldest first.
    pub async fn audit_entries(&self) -> ApiResult<Vec<AuditEntry>> {
        let mut entries = self.storage.list::<AuditEntry>().await?;
        entries.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(entries)
    }

    /// Deletes the oldest entries beyond the newest `keep`.
    pub async fn prune_audit(&self, keep: usize) -> ApiResult<usize> {
        let entries = self.audit_entries().await?;
        let excess = entries.len().saturating_sub(keep);
        for entry in &entries[..excess] {
            let _ = self
                .storage
                .delete::<AuditEntry>(json!({"id": entry.id}))
                .await;
        }
        Ok(excess)
    }

    /// `GET /audit`: `{"entries": [...]}`, newest first.
    pub async fn list_audit(&self, filter: &AuditFilter) -> ApiResult<Reply> {
        let entries = self.audit_entries().await?;
        let found: Vec<Value> = entries
            .iter()
            .rev()
            .filter(|e| filter.accepts(e))
            .take(filter.limit)
            .map(|e| serde_json::to_value(e).expect("entries serialise"))
            .collect();
        ok(json!({"entries": found}))
    }
}
