//! The audit trail: one record per change asked of the API (who, when,
//! from where, what, and how it ended), written by the server.

use serde::{Deserialize, Serialize};

use crate::{Model, ModelError};

/// One change asked of the API (a `PUT` or `DELETE`: records created,
/// changed or deleted, operations started, paused, resumed or cancelled,
/// host keys accepted), refused ones included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(default)]
pub struct AuditEntry {
    /// `<time>-<random>`: sorts as the entries were written.
    pub id: String,
    /// When (`YYYY-MM-DDTHH:MM:SS.ffffff`, UTC).
    pub at: String,
    /// The authenticated user.
    pub user: String,
    /// The user's role then.
    pub role: String,
    /// The client's address and port.
    pub peer: String,
    /// The request's id (`X-Request-Id`).
    pub request_id: String,
    /// `PUT` or `DELETE`.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// What was acted on, from the route: `cluster`, `cluster.restart`,
    /// `cluster.restart.pause`, `cluster.hosts`, `host`, `host.hostkey`,
    /// `network`, `containermanager`, ...
    pub kind: String,
    /// The names in the path (`prod`, `prod/10.0.0.1`).
    pub name: String,
    /// The answer's status.
    pub status: u16,
    /// `ok` (2xx), `refused` (403) or `failed` (anything else).
    pub outcome: String,
    /// The answer's `error`, when it was not a success.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// What the server did by itself, and why (its own entries: user
    /// `commissaire`, role `system`, such as a stale reboot-lock holder
    /// reported or released).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Model for AuditEntry {
    const NAME: &'static str = "AuditEntry";
    fn primary_key(&self) -> String {
        self.id.clone()
    }
    fn validate(&self) -> Result<(), ModelError> {
        if self.id.is_empty()
            || self.id.len() > 64
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
        {
            return Err(ModelError::invalid(
                Self::NAME,
                "id",
                "must be 1 to 64 letters, digits, '-' or '.'",
            ));
        }
        Ok(())
    }
}
