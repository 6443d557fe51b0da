//! One host's step of a roll: cordon and drain (with a container
//! manager, only a node this operation cordons is uncordoned), the
//! playbook, the node Ready again, the health gates, uncordon; each phase
//! written into the host's timeline.

use std::sync::Arc;

use tokio::time::Instant;

use commissaire_ansible::{Target, merged_vars};
use commissaire_models::{Cluster, Host, HostCreds};
use serde_json::json;

use super::Inner;
use crate::lease::Lease;
use crate::phases::{LeasePhases, PhaseSink, phase};
use crate::record::OpKind;
use commissaire_service::metrics::names::{GATE_FAILURES, HOSTS_ROLLED};

/// What every host of one operation's run shares.
pub(super) struct Step<'a> {
    pub kind: OpKind,
    pub cluster: &'a Cluster,
    pub version: &'a str,
    pub gates: &'a commissaire_models::Gates,
}

impl Inner {
    /// One host: cordon and drain (with a container manager), the playbook,
    /// wait for Ready and uncordon. `Err` is the reason recorded for the host.
    pub(super) async fn host_step(
        &self,
        lease: &Arc<Lease>,
        step: &Step<'_>,
        address: &str,
        cordoned_before: bool,
    ) -> Result<(), String> {
        let (kind, cluster) = (step.kind, step.cluster);
        let started = Instant::now();
        let phases = LeasePhases {
            lease: lease.clone(),
            host: address.to_string(),
        };
        let result = self
            .host_step_inner(step, address, cordoned_before, &phases)
            .await;
        phases
            .end(result.as_ref().map(drop).map_err(String::as_str))
            .await;
        let seconds = started.elapsed().as_secs_f64();
        let outcome = if result.is_ok() { "done" } else { "failed" };
        metrics::counter!(HOSTS_ROLLED, "operation" => kind.as_str(), "result" => outcome)
            .increment(1);
        match &result {
            Ok(()) => {
                tracing::info!(op = kind.as_str(), cluster = %cluster.name, host = address, seconds, "host done")
            }
            Err(why) => {
                tracing::warn!(op = kind.as_str(), cluster = %cluster.name, host = address, seconds, reason = %why, "host failed")
            }
        }
        result
    }

    /// `cordoned_before`: the record says this operation cordoned the node
    /// (a replica that crashed did), so it is this operation's to uncordon.
    async fn host_step_inner(
        &self,
        step: &Step<'_>,
        address: &str,
        cordoned_before: bool,
        phases: &LeasePhases,
    ) -> Result<(), String> {
        let (kind, cluster, version) = (step.kind, step.cluster, step.version);
        let key = json!({"address": address});
        let host: Host = self
            .read_patiently(&key, "the host record does not exist", "the host record")
            .await?;
        let creds: HostCreds = self
            .read_patiently(
                &key,
                "the host has no stored SSH credentials",
                "the host's credentials",
            )
            .await?;
        let cm = cluster.container_manager.as_str();
        // Whether this operation cordoned the node: only then does it uncordon it.
        let mut ours = false;
        if !cm.is_empty() {
            phases.enter(phase::CORDON).await;
            let cordoned = self
                .drainer
                .is_cordoned(cm, address)
                .await
                .map_err(|e| e.0)?;
            if cordoned && !cordoned_before {
                tracing::info!(
                    host = address,
                    "the node was cordoned before the operation; it stays cordoned"
                );
            } else {
                phases.mark_cordoned().await.map_err(|e| e.to_string())?;
                self.drainer.cordon(cm, address).await.map_err(|e| e.0)?;
                ours = true;
            }
            phases.enter(phase::DRAIN).await;
            if let Err(e) = self.drainer.drain(cm, address).await {
                if ours && let Err(u) = self.drainer.uncordon(cm, address).await {
                    tracing::warn!(host = address, error = %u, "could not uncordon after a failed drain");
                }
                return Err(e.0);
            }
        }
        let mut vars = merged_vars(host.os.as_str(), &self.config.ansible_vars);
        if kind == OpKind::Deploy {
            vars.insert("commissaire_deploy_version".into(), json!(version));
        }
        let mut target = Target::new(address, creds.remote_user, creds.ssh_priv_key);
        // Verified against the key recorded at first contact (a host
        // bootstrapped before keys were recorded is verified once the
        // watcher's next check recorded it).
        target.known_hosts = Some(creds.host_key).filter(|k| !k.trim().is_empty());
        // A host whose playbook failed stays cordoned: it needs a look first.
        phases.enter(phase::RUN).await;
        self.executor.run(kind, &target, vars, phases).await?;
        if !cm.is_empty() {
            phases.enter(phase::NODE_READY).await;
            self.drainer.wait_ready(cm, address).await.map_err(|e| {
                metrics::counter!(GATE_FAILURES, "gate" => "node_ready").increment(1);
                e.0
            })?;
        }
        // A host failing a gate stays cordoned, as one whose playbook failed.
        if !step.gates.is_empty() {
            phases.enter(phase::GATES).await;
            self.gates
                .run(step.gates, self.executor.as_ref(), &target)
                .await?;
        }
        if ours {
            phases.enter(phase::UNCORDON).await;
            self.drainer.uncordon(cm, address).await.map_err(|e| e.0)?;
        }
        Ok(())
    }
}
