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
use crate::extract::Name;

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

    pub(super) fn kind(self) -> ModelKind {
        match self {
            Operation::Restart => ModelKind::ClusterRestart,
            Operation::Upgrade => ModelKind::ClusterUpgrade,
            Operation::Deploy => ModelKind::ClusterDeploy,
        }
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
    /// (409 while one is in process) and asks clusterexec to run it.
    pub async fn put_operation(
        &self,
        name: &Name,
        op: Operation,
        body: Map<String, Value>,
    ) -> ApiResult<Reply> {
        let version = if op == Operation::Deploy {
            match optional_string(&body, "version")? {
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
        let max_failures = optional_count(&body, "max_failures", 0)?;
        let batch_size = optional_count(&body, "batch_size", 1)?;
        self.get_cluster_record(name).await?;
        let kind = op.kind();
        let key = json!({"name": name});
        let existing = match self.storage.get_value(kind.name(), key.clone()).await {
            Ok(v) => v,
            Err(StorageCallError::NotFound(_)) => Value::Null,
            Err(e) => return Err(e.into()),
        };
        if existing["status"] == "in_process" {
            return Err(ApiError::conflict(format!(
                "a {} of cluster '{name}' is already in process",
                op.as_str()
            )));
        }
        let done = match op {
            Operation::Restart => "restarted",
            Operation::Upgrade => "upgraded",
            Operation::Deploy => "deployed",
        };
        let mut record = json!({
            "name": name, "status": "in_process", done: [], "in_process": [],
            "started_at": now_iso(), "finished_at": "",
        });
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

    /// `DELETE /cluster/{name}/{restart|upgrade|deploy}`: asks clusterexec to
    /// stop the operation after the hosts it is working on (it sets
    /// `cancel_requested`; clusterexec ends the operation `cancelled`).
    /// 202 with the record; 404 if none was ever started; 409 if it is not in process.
    pub async fn cancel_operation(&self, name: &Name, op: Operation) -> ApiResult<Reply> {
        let kind = op.kind();
        let what = format!("the {} of cluster '{name}'", op.as_str());
        let saved = self
            .storage
            .upsert_value(kind.name(), json!({"name": name}), |current| {
                let Some(current) = current else {
                    return Err(ApiError::not_found(format!(
                        "no {} was ever started on cluster '{name}'",
                        op.as_str()
                    )));
                };
                if current["status"] != "in_process" {
                    return Err(ApiError::conflict(format!(
                        "{what} is not in process (it is {})",
                        current["status"]
                    )));
                }
                if current["cancel_requested"] == true {
                    return Ok(None);
                }
                // A conflict here is mostly clusterexec renewing its lease
                // in the record: the update reads it again.
                let mut next = current.clone();
                next["cancel_requested"] = json!(true);
                Ok(Some(next))
            })
            .await
            .map_err(|e| updated_error(e, &what))?;
        Ok((StatusCode::ACCEPTED, Json(saved.unwrap_or_default())))
    }
}
