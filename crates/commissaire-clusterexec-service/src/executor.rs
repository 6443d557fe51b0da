//! Running an operation's playbook on one host.

use async_trait::async_trait;
use commissaire_ansible::{HostOutcome, PlaybookRunner, Target};
use serde_json::{Map, Value};

use crate::record::OpKind;

/// Runs an operation's step on one host; `Err` carries why it failed.
#[async_trait]
pub trait HostExecutor: Send + Sync {
    /// Runs `op` on `target` with the Ansible variables `vars`.
    async fn run(
        &self,
        op: OpKind,
        target: &Target,
        vars: Map<String, Value>,
    ) -> Result<(), String>;
}

/// A [`HostExecutor`] running `restart.yaml`, `upgrade.yaml` or
/// `deploy.yaml` with `ansible-playbook`.
pub struct AnsibleExecutor {
    runner: PlaybookRunner,
}

impl AnsibleExecutor {
    /// An executor using `runner` (playbook directory, time limit).
    pub fn new(runner: PlaybookRunner) -> Self {
        AnsibleExecutor { runner }
    }
}

#[async_trait]
impl HostExecutor for AnsibleExecutor {
    async fn run(
        &self,
        op: OpKind,
        target: &Target,
        vars: Map<String, Value>,
    ) -> Result<(), String> {
        let report = self
            .runner
            .run(op.playbook(), std::slice::from_ref(target), vars)
            .await
            .map_err(|e| e.to_string())?;
        tracing::debug!(host = %target.address, op = op.as_str(), output = %report.output, "playbook output");
        match report.hosts.get(&target.address) {
            Some(HostOutcome::Ok) => Ok(()),
            Some(HostOutcome::Failed { task, msg }) => Err(format!("task '{task}' failed: {msg}")),
            Some(HostOutcome::Unreachable { msg }) => Err(format!("unreachable: {msg}")),
            Some(HostOutcome::NotRun) | None => Err(format!(
                "the {} playbook did not run on the host (ansible-playbook exit code {})",
                op.as_str(),
                report.exit_code
            )),
        }
    }
}
