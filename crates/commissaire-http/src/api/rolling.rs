//! `/cluster/NAME/rolling`: a cluster's defaults for its rolling operations
//! (batch size and failure budget as counts or percents, hosts rolled last,
//! past runs kept), which each operation's request may override.

use commissaire_models::{Gates, MaintenanceWindow, RollingDefaults};
use serde_json::{Map, Value, json};

use super::input::*;
use super::{Api, Reply, ok};
use crate::error::{ApiError, ApiResult};
use crate::extract::Name;

/// The members `PUT /cluster/NAME/rolling` accepts.
const MEMBERS: [&str; 7] = [
    "batch_size",
    "max_failures",
    "last",
    "keep_runs",
    "windows",
    "gates",
    "max_unavailable",
];

/// Reads a rolling-defaults body; every error is a 400 naming the member.
fn parse(body: &Map<String, Value>) -> ApiResult<RollingDefaults> {
    if let Some(unknown) = body.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown member '{unknown}' (known: {})",
            MEMBERS.join(", ")
        ))
        .field(unknown.clone()));
    }
    let keep_runs = optional_count(body, "keep_runs", 0)?;
    let rolling = RollingDefaults {
        batch_size: optional_budget(body, "batch_size", 1)?,
        max_failures: optional_budget(body, "max_failures", 0)?,
        last: optional_hosts(body, "last", None, "")?,
        keep_runs,
        windows: windows(body)?,
        gates: optional_gates(body)?.unwrap_or_default(),
        max_unavailable: optional_budget(body, "max_unavailable", 1)?,
    };
    rolling
        .check()
        .map_err(|(field, why)| ApiError::bad_request(format!("{field} {why}")).field(field))?;
    Ok(rolling)
}

/// The `gates` member: `{"commands": [...], "prometheus": {...}}`, checked;
/// errors name the member (`gates.prometheus.url`).
pub(super) fn optional_gates(body: &Map<String, Value>) -> ApiResult<Option<Gates>> {
    let Some(value) = body.get("gates").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let gates: Gates = serde_json::from_value(value.clone())
        .map_err(|e| ApiError::bad_request(format!("gates is invalid: {e}")).field("gates"))?;
    gates.check().map_err(|(member, why)| {
        ApiError::bad_request(format!("gates.{member} {why}")).field(format!("gates.{member}"))
    })?;
    Ok(Some(gates))
}

/// The `windows` member: a list of `{days, start, end, timezone}`.
fn windows(body: &Map<String, Value>) -> ApiResult<Vec<MaintenanceWindow>> {
    let items = match body.get("windows") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::bad_request(
                "windows must be a list of {\"days\", \"start\", \"end\", \"timezone\"}",
            )
            .field("windows"));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            serde_json::from_value::<MaintenanceWindow>(item.clone()).map_err(|e| {
                ApiError::bad_request(format!("windows[{i}] is invalid: {e}"))
                    .field(format!("windows[{i}]"))
            })
        })
        .collect()
}

impl Api {
    /// `GET /cluster/{name}/rolling`: the cluster's rolling defaults (`{}` when none are set).
    pub async fn get_rolling(&self, name: &Name) -> ApiResult<Reply> {
        let cluster = self.get_cluster_record(name).await?;
        ok(json!(cluster.rolling))
    }

    /// `PUT /cluster/{name}/rolling`: replaces the cluster's rolling defaults.
    pub async fn put_rolling(&self, name: &Name, body: Map<String, Value>) -> ApiResult<Reply> {
        let rolling = parse(&body)?;
        let saved = self
            .update_cluster(name, |c| {
                if c.rolling == rolling {
                    return Ok(false);
                }
                c.rolling = rolling.clone();
                Ok(true)
            })
            .await?;
        ok(json!(saved.rolling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commissaire_models::Budget;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn rolling_defaults_take_counts_and_percents_and_name_what_is_wrong() {
        let r = parse(&body(json!({"batch_size": "25%", "max_failures": 1,
            "last": ["10.0.0.1"], "keep_runs": 3})))
        .unwrap();
        assert_eq!(r.batch_size, Some(Budget::Percent(25)));
        assert_eq!(r.max_failures, Some(Budget::Count(1)));
        for (bad, field) in [
            (json!({"batch_size": 0}), "batch_size"),
            (json!({"batch_size": "150%"}), "batch_size"),
            (json!({"max_failures": "x"}), "max_failures"),
            (json!({"keep_runs": 1000}), "keep_runs"),
            (json!({"last": "a"}), "last"),
            (json!({"last": ["a", "a"]}), "last[1]"),
            (json!({"batch_sise": 2}), "batch_sise"),
            (json!({"windows": {}}), "windows"),
            (
                json!({"gates": {"commands": [{"command": "true", "retries": "x"}]}}),
                "gates",
            ),
            (
                json!({"gates": {"prometheus": {"url": "nowhere"}}}),
                "gates.prometheus.url",
            ),
            (
                json!({"windows": [{"start": "1", "end": "2", "colour": 1}]}),
                "windows[0]",
            ),
            (
                json!({"windows": [{"start": "01:00", "end": "02:00", "timezone": "Nowhere"}]}),
                "windows[0].timezone",
            ),
            (
                json!({"windows": [{"start": "01:00", "end": "02:00"}, {"days": ["x"], "start": "01:00", "end": "02:00"}]}),
                "windows[1].days[0]",
            ),
        ] {
            let e = parse(&body(bad.clone())).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(e.field.as_deref(), Some(field), "{bad}: {}", e.message);
        }
    }
}
