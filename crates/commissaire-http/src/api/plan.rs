//! The dry-run plan of a rolling operation (`PUT /cluster/NAME/OP` with
//! `"dry_run": true`): the hosts in order and in batches, the budgets and
//! where they come from, the gates, the maintenance windows, each node's
//! state and the pods a drain would evict, and an estimate from the last
//! runs. Nothing is written.

use commissaire_models::*;
use futures::StreamExt;
use serde_json::{Value, json};

use super::operations::{Operation, OperationRequest};
use super::{Api, Reply, ok};
use crate::error::ApiResult;
use crate::extract::Name;

/// Container manager calls of a plan made at once.
const CONCURRENT_CALLS: usize = 16;

/// A budget as the plan shows it: what was given, where it came from, and
/// how many hosts it is for this cluster.
fn budget(
    request: Option<Budget>,
    cluster: Option<Budget>,
    service_default: usize,
    hosts: impl Fn(Budget) -> usize,
) -> Value {
    match (request, cluster) {
        (Some(b), _) => json!({"value": b, "from": "request", "hosts": hosts(b)}),
        (None, Some(b)) => json!({"value": b, "from": "cluster", "hosts": hosts(b)}),
        (None, None) => json!({
            "value": null, "from": "clusterexec's setting",
            "hosts": service_default,
            "note": format!("{service_default} unless clusterexec is configured otherwise"),
        }),
    }
}

/// Where the maintenance windows leave a roll now, in words.
fn window_now(windows: &[MaintenanceWindow]) -> String {
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    match window_state(windows, chrono::Utc::now()) {
        WindowState::Always => "no maintenance windows: it would start at once".into(),
        WindowState::OpenUntil(t) => format!("a maintenance window is open until {}", fmt(t)),
        WindowState::Closed(Some(t)) => {
            format!(
                "outside the maintenance windows: it would wait until {}",
                fmt(t)
            )
        }
        WindowState::Closed(None) => {
            "outside the maintenance windows; none opens within a week".into()
        }
    }
}

impl Api {
    /// A node's state and the pods a drain would evict, as the container
    /// manager says (an error there is shown, not fatal to the plan).
    async fn node_plan(&self, manager: &str, address: &str) -> Value {
        let params = json!([manager, address]);
        let node = match self
            .bus
            .request("container.get_node_status", params.clone(), self.timeout)
            .await
        {
            Ok(s) if s["unschedulable"] == true => json!("cordoned (it stays cordoned)"),
            Ok(s) if s["ready"] == false => json!("not ready"),
            Ok(_) => json!("schedulable"),
            Err(e) => json!(format!("unknown: {e}")),
        };
        let evictions = match self
            .bus
            .request("container.list_pods", params, self.timeout)
            .await
        {
            Ok(v) => v["pods"].clone(),
            Err(e) => json!(format!("unknown: {e}")),
        };
        json!({"node": node, "evictions": evictions})
    }

    /// The plan of `request` for `op` on cluster `name` (see the module).
    pub(super) async fn plan_operation(
        &self,
        name: &Name,
        op: Operation,
        request: &OperationRequest,
        previous: &Value,
    ) -> ApiResult<Reply> {
        let (cluster, hosts) = self.cluster_with_hosts(name).await?;
        let total = cluster.hostset.len();
        let rolling = &cluster.rolling;
        let last = if request.last.is_empty() {
            &rolling.last
        } else {
            &request.last
        };
        let order = roll_order(&cluster.hostset, &request.order, last);
        let batch = request
            .batch_size
            .or(rolling.batch_size)
            .map_or(1, |b| b.batch_of(total));
        let batches: Vec<Vec<String>> =
            order.chunks(batch.max(1)).map(<[String]>::to_vec).collect();
        let cm = cluster.container_manager.as_str();
        let nodes: Vec<Value> = if cm.is_empty() {
            vec![Value::Null; order.len()]
        } else {
            let calls: Vec<_> = order.iter().map(|h| self.node_plan(cm, h)).collect();
            futures::stream::iter(calls)
                .buffered(CONCURRENT_CALLS)
                .collect()
                .await
        };
        let host_rows: Vec<Value> = order
            .iter()
            .zip(nodes)
            .enumerate()
            .map(|(i, (address, node))| {
                let status = hosts
                    .iter()
                    .find(|h| &h.address == address)
                    .map_or(json!(null), |h| json!(h.status));
                let mut row =
                    json!({"host": address, "batch": i / batch.max(1) + 1, "status": status});
                if let Value::Object(node) = node {
                    row.as_object_mut().expect("an object").extend(node);
                }
                row
            })
            .collect();
        let gates = request
            .gates
            .clone()
            .unwrap_or_else(|| rolling.gates.clone());
        let mut gate_list = Vec::new();
        if !cm.is_empty() {
            gate_list.push(
                json!({"gate": "node_ready", "what": format!("the node reports Ready in '{cm}'")}),
            );
        }
        for c in &gates.commands {
            gate_list
                .push(json!({"gate": "command", "what": c.command, "tries": c.tries().attempts()}));
        }
        if let Some(p) = &gates.prometheus {
            let alerts = if p.alerts.is_empty() { ".*" } else { &p.alerts };
            gate_list.push(json!({"gate": "prometheus", "what": format!("no firing alert named {alerts}"), "tries": p.tries().attempts()}));
        }
        // The estimate: the mean host time of the last runs (up to five).
        let details: RollDetails = serde_json::from_value(previous.clone()).unwrap_or_default();
        let mut means: Vec<u64> = Vec::new();
        if previous["status"] != "in_process" {
            means.extend(details.mean_host_ms());
        }
        means.extend(details.history.iter().filter_map(|h| h.mean_host_ms));
        means.truncate(5);
        let estimate = if means.is_empty() {
            Value::Null
        } else {
            let mean = means.iter().sum::<u64>() as f64 / means.len() as f64 / 1000.0;
            json!({
                "seconds": (mean * batches.len() as f64 * 10.0).round() / 10.0,
                "mean_host_seconds": (mean * 10.0).round() / 10.0,
                "from_runs": means.len(),
                "note": "batches times the mean host time of the last runs; waits for windows not included",
            })
        };
        let mut plan = json!({
            "dry_run": true,
            "cluster": name,
            "operation": op.as_str(),
            "batch_size": budget(request.batch_size, rolling.batch_size, 1, |b| b.batch_of(total)),
            "max_failures": budget(request.max_failures, rolling.max_failures, 0, |b| b.of(total)),
            "batches": batches,
            "hosts": host_rows,
            "gates": gate_list,
            "window": window_now(&rolling.windows),
            "estimate": estimate,
        });
        if let Some(v) = &request.version {
            plan["version"] = json!(v);
        }
        if previous["status"] == "in_process" {
            plan["note"] = json!(format!(
                "a {} of cluster '{name}' is in process: starting another now would be refused (409)",
                op.as_str()
            ));
        }
        ok(plan)
    }
}
