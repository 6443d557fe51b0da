//! Running an operation's playbook on one host (and, for a restart,
//! waiting natively for the host to go down and come back).

use std::time::Duration;

use async_trait::async_trait;
use commissaire_ansible::{HostOutcome, PlaybookRunner, Target};
use commissaire_host_access::HostAccess;
use serde_json::{Map, Value, json};

use crate::gates::output_tail;
use crate::phases::PhaseSink;
use crate::record::OpKind;
use crate::wait::{RestartVia, RestartWaits, detached_restart_command, wait_down_and_back};

/// Runs an operation's step on one host; `Err` carries why it failed.
#[async_trait]
pub trait HostExecutor: Send + Sync {
    /// Runs `op` on `target` with the Ansible variables `vars`, telling
    /// `phases` the phases after `run` it enters (a restart's `down`, `up`).
    async fn run(
        &self,
        op: OpKind,
        target: &Target,
        vars: Map<String, Value>,
        phases: &dyn PhaseSink,
    ) -> Result<(), String>;

    /// Runs a health check `command` on `target` within `timeout`; `Err`
    /// says how it failed (exit status and the end of its output).
    async fn check(&self, target: &Target, command: &str, timeout: Duration) -> Result<(), String>;
}

/// A [`HostExecutor`] running `restart.yaml`, `upgrade.yaml` or
/// `deploy.yaml` with `ansible-playbook`. With [`HostAccess`], a restart's
/// playbook only runs the restart command (`commissaire_wait_natively`)
/// and the executor then waits for the host itself ([`wait_down_and_back`]:
/// probes every 100 ms, the SSH login verifying the pinned key).
pub struct AnsibleExecutor {
    runner: PlaybookRunner,
    access: Option<HostAccess>,
    restart_via: RestartVia,
}

impl AnsibleExecutor {
    /// An executor using `runner` (playbook directory, time limit); the
    /// playbook waits for restarted hosts.
    pub fn new(runner: PlaybookRunner) -> Self {
        AnsibleExecutor {
            runner,
            access: None,
            restart_via: RestartVia::Playbook,
        }
    }

    /// An executor that waits for restarted hosts itself, through `access`,
    /// and starts their restart command as `restart_via` says.
    pub fn waiting_natively(
        runner: PlaybookRunner,
        access: HostAccess,
        restart_via: RestartVia,
    ) -> Self {
        AnsibleExecutor {
            runner,
            access: Some(access),
            restart_via,
        }
    }
}

#[async_trait]
impl HostExecutor for AnsibleExecutor {
    async fn check(&self, target: &Target, command: &str, timeout: Duration) -> Result<(), String> {
        let access = self
            .access
            .as_ref()
            .ok_or("health check commands need the host's SSH session")?;
        let out = access
            .run(&target.address, command, timeout)
            .await
            .map_err(|e| e.to_string())?;
        if out.success() {
            return Ok(());
        }
        let status = match out.status {
            Some(code) => format!("exit {code}"),
            None => "killed by a signal".to_string(),
        };
        match output_tail(&out.stdout, &out.stderr) {
            tail if tail.is_empty() => Err(status),
            tail => Err(format!("{status}: {tail}")),
        }
    }

    async fn run(
        &self,
        op: OpKind,
        target: &Target,
        vars: Map<String, Value>,
        phases: &dyn PhaseSink,
    ) -> Result<(), String> {
        let native = match &self.access {
            Some(access) if op == OpKind::Restart => Some((access, RestartWaits::from_vars(&vars))),
            _ => None,
        };
        if let Some((access, waits)) = native
            && self.restart_via == RestartVia::Ssh
        {
            let command = detached_restart_command(&vars, &target.address)?;
            let out = access
                .run(
                    &target.address,
                    &command,
                    std::time::Duration::from_secs(60),
                )
                .await
                .map_err(|e| e.to_string())?;
            if !out.success() {
                return Err(format!(
                    "the restart command could not be started (exit {:?}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            return wait_down_and_back(access, &target.address, waits, phases).await;
        }
        let mut vars = vars;
        if native.is_some() {
            vars.insert("commissaire_wait_natively".into(), json!(true));
        }
        // Over the host's pooled session (its key recorded if this is the
        // first contact, verified otherwise): no handshake of Ansible's own.
        let mut target = target.clone();
        let lease = match &self.access {
            Some(access) => {
                let opened = access
                    .open(&target.address, std::time::Duration::from_secs(30))
                    .await
                    .map_err(|e| e.to_string())?;
                target.known_hosts = Some(opened.creds.host_key.clone());
                target.control_path = Some(opened.lease.control_socket().to_path_buf());
                Some(opened.lease)
            }
            None => None,
        };
        let target = &target;
        let report = self
            .runner
            .run(op.playbook(), std::slice::from_ref(target), vars)
            .await
            .map_err(|e| e.to_string())?;
        drop(lease);
        tracing::debug!(host = %target.address, op = op.as_str(), output = %report.output, "playbook output");
        match report.hosts.get(&target.address) {
            Some(HostOutcome::Ok) => match native {
                Some((access, waits)) => {
                    wait_down_and_back(access, &target.address, waits, phases).await
                }
                None => Ok(()),
            },
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
