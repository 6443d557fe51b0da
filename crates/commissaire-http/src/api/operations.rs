//! `/cluster/NAME/{restart,upgrade,deploy}`: rolling operations. A PUT
//! stores the operation record (409 while one is in process) and announces
//! it to clusterexec; it never waits for the work.

use axum::Json;
use axum::http::StatusCode;
use commissaire_models::*;
use commissaire_storage_client::StorageCallError;
use serde_json::{Map, Value, json};

use super::input::*;
use super::{Api, Reply, created, ok, updated_error};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Name, User};

/// The cluster operations, by the last path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `restart`
    Restart,
    /// `upgrade`
    Upgrade,
    /// `deploy`
    Deploy,
}

impl Operation {
    /// The path segment and job method name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Restart => "restart",
            Operation::Upgrade => "upgrade",
            Operation::Deploy => "deploy",
        }
    }

    /// The record member listing the hosts done.
    fn done_member(self) -> &'static str {
        match self {
            Operation::Restart => "restarted",
            Operation::Upgrade => "upgraded",
            Operation::Deploy => "deployed",
        }
    }

    pub(super) fn kind(self) -> ModelKind {
        match self {
            Operation::Restart => ModelKind::ClusterRestart,
            Operation::Upgrade => ModelKind::ClusterUpgrade,
            Operation::Deploy => ModelKind::ClusterDeploy,
        }
    }
}

/// What a `PUT /cluster/NAME/OP` body asks for, checked (400 naming the member).
#[derive(Debug, Clone, Default)]
pub(super) struct OperationRequest {
    /// The tree version (deploy).
    pub version: Option<String>,
    /// Failed hosts tolerated.
    pub max_failures: Option<Budget>,
    /// Hosts at once.
    pub batch_size: Option<Budget>,
    /// Hosts first, in this order (members of the cluster).
    pub order: Vec<String>,
    /// Hosts last, in this order (members, none also in `order`).
    pub last: Vec<String>,
    /// Gates instead of the cluster's.
    pub gates: Option<Gates>,
    /// Answer the plan; write nothing.
    pub dry_run: bool,
}

impl OperationRequest {
    fn read(op: Operation, body: &Map<String, Value>, cluster: &Cluster) -> ApiResult<Self> {
        let version = if op == Operation::Deploy {
            match optional_string(body, "version")? {
                Some(v) if !v.trim().is_empty() => Some(v),
                _ => {
                    return Err(
                        ApiError::bad_request("a deploy needs a 'version'").field("version")
                    );
                }
            }
        } else {
            None
        };
        let name = cluster.name.as_str();
        let order = optional_hosts(body, "order", Some(&cluster.hostset), name)?;
        let last = optional_hosts(body, "last", Some(&cluster.hostset), name)?;
        if let Some((i, h)) = last.iter().enumerate().find(|(_, h)| order.contains(h)) {
            return Err(
                ApiError::bad_request(format!("last[{i}]: '{h}' is also in 'order'"))
                    .field(format!("last[{i}]")),
            );
        }
        let dry_run = match body.get("dry_run") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ApiError::bad_request("dry_run must be true or false").field("dry_run"));
            }
        };
        Ok(OperationRequest {
            version,
            max_failures: optional_budget(body, "max_failures", 0)?,
            batch_size: optional_budget(body, "batch_size", 1)?,
            order,
            last,
            gates: super::rolling::optional_gates(body)?,
            dry_run,
        })
    }
}

impl Api {
    /// `GET /cluster/{name}/{restart|upgrade|deploy}`: the operation's record.
    pub async fn get_operation(&self, name: &Name, op: Operation) -> ApiResult<Reply> {
        match self
            .storage
            .get_value(op.kind().name(), json!({"name": name}))
            .await
        {
            Ok(record) => ok(record),
            Err(StorageCallError::NotFound(_)) => Err(ApiError::not_found(format!(
                "no {} was ever started on cluster '{name}'",
                op.as_str()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// `PUT /cluster/{name}/{restart|upgrade|deploy}`: records a new operation
    /// (409 while one is in process), started by `user`, and asks
    /// clusterexec to run it. The record of the previous run moves into
    /// `history` (the cluster's `keep_runs` of them are kept).
    pub async fn put_operation(
        &self,
        name: &Name,
        op: Operation,
        user: &User,
        body: Map<String, Value>,
    ) -> ApiResult<Reply> {
        let cluster = self.get_cluster_record(name).await?;
        let request = OperationRequest::read(op, &body, &cluster)?;
        let kind = op.kind();
        let key = json!({"name": name});
        let existing = match self.storage.get_value(kind.name(), key.clone()).await {
            Ok(v) => v,
            Err(StorageCallError::NotFound(_)) => Value::Null,
            Err(e) => return Err(e.into()),
        };
        if request.dry_run {
            return self.plan_operation(name, op, &request, &existing).await;
        }
        if existing["status"] == "in_process" {
            return Err(ApiError::conflict(format!(
                "a {} of cluster '{name}' is already in process",
                op.as_str()
            )));
        }
        let OperationRequest {
            version,
            max_failures,
            batch_size,
            order,
            mut last,
            gates,
            dry_run: _,
        } = request;
        if last.is_empty() {
            last = cluster.rolling.last.clone();
        }
        let done = op.done_member();
        let mut record = json!({
            "name": name, "status": "in_process", done: [], "in_process": [],
            "started_at": now_iso(), "finished_at": "", "started_by": user.0,
        });
        if !order.is_empty() {
            record["order"] = json!(order);
        }
        if !last.is_empty() {
            record["last"] = json!(last);
        }
        if let Some(gates) = gates {
            record["gates"] = json!(gates);
        }
        let history = history_with(op, &existing, cluster.rolling.keep_runs());
        if !history.is_empty() {
            record["history"] = json!(history);
        }
        if let Some(v) = &version {
            record["version"] = json!(v);
        }
        if let Some(n) = max_failures {
            record["max_failures"] = json!(n);
        }
        if let Some(n) = batch_size {
            record["batch_size"] = json!(n);
        }
        let saved = match self
            .storage
            .swap_value(kind.name(), &existing, record)
            .await
        {
            Ok(saved) => saved,
            Err(StorageCallError::Conflict { .. }) => {
                return Err(ApiError::conflict(format!(
                    "another {} of cluster '{name}' was started meanwhile",
                    op.as_str()
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let mut job = json!({"name": name});
        if let Some(v) = version {
            job["version"] = json!(v);
        }
        self.bus
            .notify(&format!("jobs.clusterexec.{}", op.as_str()), job)
            .await
            .map_err(ApiError::from)?;
        created(saved)
    }

    /// Steers the operation in process by compare-and-swap: `change`
    /// returns the record to write (`None`: it is as asked already), and
    /// the event `"{verb} requested by USER"` is recorded. 202 with the
    /// record; 404 if none was ever started; 409 if it is not in process.
    async fn steer_operation(
        &self,
        name: &Name,
        op: Operation,
        user: &User,
        verb: &str,
        change: impl Fn(&Value) -> Option<Value>,
    ) -> ApiResult<Reply> {
        let what = format!("the {} of cluster '{name}'", op.as_str());
        let at = now_iso();
        let event = format!("{verb} requested by {}", user.0);
        let saved = self
            .storage
            .upsert_value(op.kind().name(), json!({"name": name}), |current| {
                let Some(current) = current else {
                    return Err(ApiError::not_found(format!(
                        "no {} was ever started on cluster '{name}'",
                        op.as_str()
                    )));
                };
                if current["status"] != "in_process" {
                    return Err(ApiError::conflict(format!(
                        "{what} is not in process (it is {}): nothing to {verb}",
                        current["status"]
                    )));
                }
                // A conflict here is mostly clusterexec renewing its lease
                // in the record: the update reads it again.
                Ok(change(current).map(|mut next| {
                    add_event(&mut next, &at, &event);
                    next
                }))
            })
            .await
            .map_err(|e| updated_error(e, &what))?;
        Ok((StatusCode::ACCEPTED, Json(saved.unwrap_or_default())))
    }

    /// `DELETE /cluster/{name}/{restart|upgrade|deploy}`: asks clusterexec to
    /// stop the operation after the hosts it is working on (it sets
    /// `cancel_requested`; clusterexec ends the operation `cancelled`).
    /// 202 with the record; 404 if none was ever started; 409 if it is not in process.
    pub async fn cancel_operation(
        &self,
        name: &Name,
        op: Operation,
        user: &User,
    ) -> ApiResult<Reply> {
        self.steer_operation(name, op, user, "cancel", |current| {
            (current["cancel_requested"] != true).then(|| {
                let mut next = current.clone();
                next["cancel_requested"] = json!(true);
                next
            })
        })
        .await
    }

    /// `PUT /cluster/{name}/{op}/pause` (`pause`) and `.../resume`: asks
    /// clusterexec to stop between hosts until resumed (it sets or clears
    /// `pause_requested`; clusterexec says `waiting` while paused). 202 with
    /// the record (also when it is paused or running already); 404 if none
    /// was ever started; 409 if it is not in process.
    pub async fn pause_operation(
        &self,
        name: &Name,
        op: Operation,
        user: &User,
        pause: bool,
    ) -> ApiResult<Reply> {
        let verb = if pause { "pause" } else { "resume" };
        self.steer_operation(name, op, user, verb, |current| {
            if (current["pause_requested"] == true) == pause {
                return None;
            }
            let mut next = current.clone();
            match next.as_object_mut() {
                Some(map) if !pause => drop(map.remove("pause_requested")),
                _ => next["pause_requested"] = json!(true),
            }
            Some(next)
        })
        .await
    }
}

/// Adds an operation event to a stored record (as clusterexec does).
fn add_event(record: &mut Value, at: &str, event: &str) {
    let mut details: RollDetails = serde_json::from_value(record.clone()).unwrap_or_default();
    details.add_event(at, event);
    record["events"] = json!(details.events);
}

/// The `history` of a new run: the previous run's summary (when there
/// was one) before its own history, `keep` at most.
fn history_with(op: Operation, previous: &Value, keep: usize) -> Vec<RunSummary> {
    if !previous.is_object() {
        return Vec::new();
    }
    let details: RollDetails = serde_json::from_value(previous.clone()).unwrap_or_default();
    let text = |m: &str| previous[m].as_str().unwrap_or_default().to_string();
    let summary = RunSummary {
        status: serde_json::from_value(previous["status"].clone()).unwrap_or_default(),
        started_by: details.started_by.clone(),
        started_at: text("started_at"),
        finished_at: text("finished_at"),
        done: previous[op.done_member()].as_array().map_or(0, Vec::len),
        failed_hosts: serde_json::from_value(previous["failed_hosts"].clone()).unwrap_or_default(),
        reason: text("reason"),
        mean_host_ms: details.mean_host_ms(),
    };
    std::iter::once(summary)
        .chain(details.history)
        .take(keep)
        .collect()
}
