//! The watcher: every `interval` it checks the bootstrapped hosts (those with
//! a `WatcherRecord`, written by the investigator) over SSH, at most
//! `concurrency` at a time, and updates their `status` and `last_check`. A
//! host that stops answering becomes `failed` (its earlier status is
//! remembered); when it answers again it gets that status back.
//!
//! A check is one command (`check_command`, default `test -x
//! /usr/bin/python3`: the host logs in and could run Ansible) on the host's
//! multiplexed session of the process's session pool, verifying the host
//! key recorded at first contact; `check: "playbook"` runs the
//! `check_host_availability` playbook instead, for operators who customised
//! it.
//!
//! Several watcher replicas split the hosts instead of checking each twice:
//! before checking a host, a replica claims it by moving its record's
//! `last_check` forward with an atomic compare-and-swap; only one replica
//! wins each claim, and a crashed replica's hosts are simply claimed by the
//! others at the next interval.

use commissaire_service::metrics::names;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use commissaire_ansible::{Playbook, PlaybookRunner, Target};
use commissaire_bus::Bus;
use commissaire_host_access::{AccessError, HostAccess, SshSettings};
use commissaire_models::*;
use commissaire_service::{MemberError, Seconds, parse_members};
use commissaire_storage_client::{StorageCallError, StorageClient};
use serde_json::{Map, Value, json};

/// How a host is checked (`check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckMode {
    /// `check_command` on the host's pooled SSH session (the default).
    #[default]
    Ssh,
    /// The `check_host_availability` playbook.
    Playbook,
}

/// The watcher's settings (members of `watcher.conf`).
#[derive(Debug, Clone)]
pub struct WatcherConfig {
    /// Seconds between two checks of a host (`interval`, default 60).
    pub interval: Duration,
    /// Hosts checked at the same time by this replica (`concurrency`, default 10).
    pub concurrency: usize,
    /// How a host is checked (`check`, `ssh` or `playbook`).
    pub check: CheckMode,
    /// The command of an `ssh` check (`check_command`): exit 0 is healthy.
    pub check_command: String,
    /// Where the playbooks are (`playbook_dir`).
    pub playbook_dir: std::path::PathBuf,
    /// Time limit of one check (`check_timeout`, default 60 s).
    pub check_timeout: Duration,
    /// Extra variables for the check playbook (`ansible_vars`).
    pub ansible_vars: Map<String, Value>,
    /// The session pool's limits (`ssh`).
    pub ssh: SshSettings,
}

/// The default `check_command`.
pub const DEFAULT_CHECK_COMMAND: &str = "test -x /usr/bin/python3";

/// The watcher's own members of its configuration document, typed.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Members {
    interval: Option<Seconds>,
    concurrency: Option<std::num::NonZeroUsize>,
    check: Option<CheckMode>,
    check_command: Option<String>,
    playbook_dir: Option<std::path::PathBuf>,
    check_timeout: Option<Seconds>,
    ansible_vars: Option<Map<String, Value>>,
    ssh: Option<SshSettings>,
}

impl WatcherConfig {
    /// Reads the members of a service configuration document; an unknown
    /// member or one of the wrong type is an error naming it.
    pub fn from_config(config: &Map<String, Value>) -> Result<Self, MemberError> {
        let m: Members = parse_members("watcher", config)?;
        let check_command = m
            .check_command
            .unwrap_or_else(|| DEFAULT_CHECK_COMMAND.into());
        if check_command.trim().is_empty() {
            return Err(MemberError {
                service: "watcher".into(),
                member: "check_command".into(),
                reason: "must not be empty".into(),
            });
        }
        Ok(WatcherConfig {
            interval: m.interval.map_or(Duration::from_secs(60), |s| s.0),
            concurrency: m.concurrency.map_or(10, |c| c.get()),
            check: m.check.unwrap_or_default(),
            check_command,
            playbook_dir: m
                .playbook_dir
                .unwrap_or_else(commissaire_ansible::default_playbook_dir),
            check_timeout: m.check_timeout.map_or(Duration::from_secs(60), |s| s.0),
            ansible_vars: m.ansible_vars.unwrap_or_default(),
            ssh: m.ssh.unwrap_or_default(),
        })
    }
}

/// One watcher replica.
pub struct Watcher {
    storage: StorageClient,
    access: HostAccess,
    config: WatcherConfig,
    checks: AtomicU64,
}

/// The shortest pause between two rounds.
const MIN_TICK: Duration = Duration::from_millis(20);

impl Watcher {
    /// A watcher working through `bus`, connecting to hosts through
    /// `access` (the process's session pool).
    pub fn new(bus: Bus, config: WatcherConfig, access: HostAccess) -> Self {
        Watcher {
            storage: StorageClient::new(bus),
            access,
            config,
            checks: AtomicU64::new(0),
        }
    }

    /// How many host checks this replica has run.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// Runs rounds for ever; after each, it waits until the next host is
    /// due (at most `interval / 4`, at least 20 ms).
    pub async fn run(self: Arc<Self>) {
        let longest = (self.config.interval / 4).max(MIN_TICK);
        loop {
            let pause = match self.round_until_due().await {
                Ok((_, next_due)) => next_due.clamp(MIN_TICK, longest),
                Err(e) => {
                    tracing::warn!(error = %e, "watch round failed");
                    longest
                }
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// One round: claim the due hosts and check them. Returns how many were checked.
    pub async fn round(&self) -> Result<usize, StorageCallError> {
        self.round_until_due().await.map(|(checked, _)| checked)
    }

    /// One round; returns how many hosts were checked and how long until
    /// the next one is due.
    async fn round_until_due(&self) -> Result<(usize, Duration), StorageCallError> {
        let records = self.storage.list::<WatcherRecord>().await?;
        let now = chrono_now();
        let mut due_records = Vec::new();
        let mut next_due = self.config.interval;
        for record in records {
            let since = parse_iso(&record.last_check)
                .map(|last| now.signed_duration_since(last).to_std().unwrap_or_default());
            match since {
                Some(since) if since < self.config.interval => {
                    next_due = next_due.min(self.config.interval - since);
                }
                _ => due_records.push(record),
            }
        }
        let checked = std::sync::atomic::AtomicUsize::new(0);
        let semaphore = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency));
        let stamp = now_iso();
        let checks = due_records.into_iter().map(|record| {
            let semaphore = semaphore.clone();
            let stamp = stamp.clone();
            let checked = &checked;
            async move {
                let _permit = semaphore.acquire().await.expect("semaphore open");
                let mut claim = record.clone();
                claim.last_check = stamp;
                match self.storage.swap(Some(&record), &claim).await {
                    Ok(claimed) => {
                        checked.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = self.check(claimed).await {
                            tracing::warn!(error = %e, "host check failed to complete");
                        }
                    }
                    Err(e) if e.is_conflict() => {} // another replica has it
                    Err(e) => tracing::warn!(error = %e, "cannot claim a host check"),
                }
            }
        });
        futures::future::join_all(checks).await;
        Ok((checked.into_inner(), next_due))
    }

    /// Why the host fails its check (`Ok(None)`: it passed). Storage
    /// failing meanwhile (recording a first contact's key) is no verdict on
    /// the host: `Err`, and the host is left as it is.
    async fn failure(
        &self,
        address: &str,
        creds: HostCreds,
    ) -> Result<Option<String>, StorageCallError> {
        Ok(match self.config.check {
            CheckMode::Ssh => match self
                .access
                .run_with(creds, &self.config.check_command, self.config.check_timeout)
                .await
            {
                Ok(out) if out.success() => None,
                Ok(out) => Some(format!(
                    "the check '{}' on {address} exited with {}: {}",
                    self.config.check_command,
                    out.status.map_or("a signal".to_string(), |c| c.to_string()),
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
                Err(AccessError::Storage(e)) => return Err(e),
                Err(e) => Some(e.to_string()),
            },
            CheckMode::Playbook => {
                // The pooled session records the key at first contact and
                // verifies it after; the playbook multiplexes over it.
                let opened = match self
                    .access
                    .open_with(creds, self.config.check_timeout)
                    .await
                {
                    Ok(o) => o,
                    Err(AccessError::Storage(e)) => return Err(e),
                    Err(e) => return Ok(Some(e.to_string())),
                };
                let creds = &opened.creds;
                let mut target = Target::new(
                    address,
                    creds.remote_user.clone(),
                    creds.ssh_priv_key.clone(),
                );
                target.known_hosts = Some(creds.host_key.clone());
                target.control_path = Some(opened.lease.control_socket().to_path_buf());
                let runner = PlaybookRunner::new(self.config.playbook_dir.clone())
                    .with_timeout(self.config.check_timeout);
                match runner
                    .run(
                        Playbook::CheckHostAvailability,
                        std::slice::from_ref(&target),
                        self.config.ansible_vars.clone(),
                    )
                    .await
                {
                    Ok(report) => report
                        .failure_reason(address)
                        .map(|r| format!("unreachable: {r}")),
                    Err(e) => Some(format!("unreachable: {e}")),
                }
            }
        })
    }

    /// Checks one host and records the outcome.
    async fn check(&self, record: WatcherRecord) -> Result<(), StorageCallError> {
        let address = record.address.clone();
        let key = json!({"address": address});
        let creds = match self.access.credentials(&address).await {
            Ok(c) => c,
            Err(AccessError::NoCredentials { .. }) => {
                // The host is gone: stop watching it.
                let _ = self.storage.delete::<WatcherRecord>(key).await;
                return Ok(());
            }
            Err(AccessError::Storage(e)) => return Err(e),
            Err(e) => return Err(StorageCallError::Decode(e.to_string())),
        };
        let started = std::time::Instant::now();
        let failure = self.failure(&address, creds).await?;
        self.checks.fetch_add(1, Ordering::Relaxed);
        let result = if failure.is_none() {
            "active"
        } else {
            "failed"
        };
        metrics::counter!(names::WATCHER_CHECKS, "result" => result).increment(1);
        metrics::histogram!(names::WATCHER_CHECK_SECONDS).record(started.elapsed().as_secs_f64());
        tracing::debug!(%address, ok = failure.is_none(), "checked");
        // Update the host, keeping others' changes.
        let mut next_record = record.clone();
        let updated = self
            .storage
            .upsert(json!({"address": address}), |host: Option<&Host>| {
                let Some(host) = host else {
                    return Ok::<_, std::convert::Infallible>(None);
                };
                next_record = record.clone();
                let mut next = host.clone();
                next.last_check = now_iso();
                match &failure {
                    Some(reason) => {
                        if host.status != HostState::Failed {
                            next_record.previous_status = host.status.to_string();
                        }
                        next.status = HostState::Failed;
                        next.reason = reason.clone();
                    }
                    None => {
                        if host.status == HostState::Failed && !record.previous_status.is_empty() {
                            next.status = record
                                .previous_status
                                .parse()
                                .unwrap_or(HostState::Disassociated);
                            next.reason.clear();
                            next_record.previous_status.clear();
                        }
                    }
                }
                Ok(Some(next))
            })
            .await
            .map_err(StorageCallError::from)?;
        // No host: it was deleted meanwhile.
        if let Some(host) = updated
            && next_record != record
        {
            next_record.last_check = host.last_check;
            self.storage.save(&next_record).await?;
        }
        Ok(())
    }
}

fn chrono_now() -> chrono::NaiveDateTime {
    parse_iso(&now_iso()).expect("now_iso parses")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn settings_are_typed_and_typos_are_errors() {
        let c = WatcherConfig::from_config(
            json!({"interval": 5, "concurrency": 3, "bus_uri": "amqp://x"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!((c.interval, c.concurrency), (Duration::from_secs(5), 3));
        for (bad, named) in [
            (json!({"intervl": 5}), "intervl"),
            (json!({"interval": "5"}), "interval"),
            (json!({"concurrency": 0}), "concurrency"),
        ] {
            let e = WatcherConfig::from_config(bad.as_object().unwrap()).unwrap_err();
            assert!(e.to_string().contains(named), "{e}");
        }
    }
}
