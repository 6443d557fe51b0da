//! The watcher: every `interval` it checks the bootstrapped hosts (those with
//! a `WatcherRecord`, written by the investigator) over SSH with the
//! `check_host_availability` playbook, at most `concurrency` at a time, and
//! updates their `status` and `last_check`. A host that stops answering
//! becomes `failed` (its earlier status is remembered); when it answers again
//! it gets that status back.
//!
//! Several watcher replicas split the hosts instead of checking each twice:
//! before checking a host, a replica claims it by moving its record's
//! `last_check` forward with an atomic compare-and-swap; only one replica
//! wins each claim, and a crashed replica's hosts are simply claimed by the
//! others at the next interval.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use commissaire_ansible::{Playbook, PlaybookRunner, Target};
use commissaire_bus::Bus;
use commissaire_models::*;
use commissaire_service::{MemberError, Seconds, parse_members};
use commissaire_storage_client::{StorageCallError, StorageClient};
use serde_json::{Map, Value, json};

/// The watcher's settings (members of `watcher.conf`).
#[derive(Debug, Clone)]
pub struct WatcherConfig {
    /// Seconds between two checks of a host (`interval`, default 60).
    pub interval: Duration,
    /// Hosts checked at the same time by this replica (`concurrency`, default 10).
    pub concurrency: usize,
    /// Where the playbooks are (`playbook_dir`).
    pub playbook_dir: std::path::PathBuf,
    /// Time limit of one check (`check_timeout`, default 60 s).
    pub check_timeout: Duration,
    /// Extra variables for the check playbook (`ansible_vars`).
    pub ansible_vars: Map<String, Value>,
}

/// The watcher's own members of its configuration document, typed.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Members {
    interval: Option<Seconds>,
    concurrency: Option<std::num::NonZeroUsize>,
    playbook_dir: Option<std::path::PathBuf>,
    check_timeout: Option<Seconds>,
    ansible_vars: Option<Map<String, Value>>,
}

impl WatcherConfig {
    /// Reads the members of a service configuration document; an unknown
    /// member or one of the wrong type is an error naming it.
    pub fn from_config(config: &Map<String, Value>) -> Result<Self, MemberError> {
        let m: Members = parse_members("watcher", config)?;
        Ok(WatcherConfig {
            interval: m.interval.map_or(Duration::from_secs(60), |s| s.0),
            concurrency: m.concurrency.map_or(10, |c| c.get()),
            playbook_dir: m
                .playbook_dir
                .unwrap_or_else(commissaire_ansible::default_playbook_dir),
            check_timeout: m.check_timeout.map_or(Duration::from_secs(60), |s| s.0),
            ansible_vars: m.ansible_vars.unwrap_or_default(),
        })
    }
}

/// One watcher replica.
pub struct Watcher {
    storage: StorageClient,
    config: WatcherConfig,
    checks: AtomicU64,
}

impl Watcher {
    /// A watcher working through `bus`.
    pub fn new(bus: Bus, config: WatcherConfig) -> Self {
        Watcher {
            storage: StorageClient::new(bus),
            config,
            checks: AtomicU64::new(0),
        }
    }

    /// How many host checks this replica has run.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// Runs rounds for ever, one every `interval / 4` (a host is due once its
    /// `last_check` is `interval` old).
    pub async fn run(self: Arc<Self>) {
        let tick = (self.config.interval / 4).max(Duration::from_millis(200));
        loop {
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "watch round failed");
            }
            tokio::time::sleep(tick).await;
        }
    }

    /// One round: claim the due hosts and check them. Returns how many were checked.
    pub async fn round(&self) -> Result<usize, StorageCallError> {
        let records = self.storage.list::<WatcherRecord>().await?;
        let now = chrono_now();
        let mut claimed = Vec::new();
        for record in records {
            let due = match parse_iso(&record.last_check) {
                Some(last) => {
                    now.signed_duration_since(last).to_std().unwrap_or_default()
                        >= self.config.interval
                }
                None => true,
            };
            if !due {
                continue;
            }
            let mut claim = record.clone();
            claim.last_check = now_iso();
            match self.storage.swap(Some(&record), &claim).await {
                Ok(c) => claimed.push(c),
                Err(e) if e.is_conflict() => {} // another replica has it
                Err(e) => return Err(e),
            }
        }
        let count = claimed.len();
        let semaphore = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency));
        let checks = claimed.into_iter().map(|record| {
            let semaphore = semaphore.clone();
            async move {
                let _permit = semaphore.acquire().await.expect("semaphore open");
                if let Err(e) = self.check(record).await {
                    tracing::warn!(error = %e, "host check failed to complete");
                }
            }
        });
        futures_join_all(checks).await;
        Ok(count)
    }

    /// Checks one host and records the outcome.
    async fn check(&self, record: WatcherRecord) -> Result<(), StorageCallError> {
        let address = record.address.clone();
        let key = json!({"address": address});
        let creds: HostCreds = match self.storage.get(key.clone()).await {
            Ok(c) => c,
            Err(StorageCallError::NotFound(_)) => {
                // The host is gone: stop watching it.
                let _ = self.storage.delete::<WatcherRecord>(key).await;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let target = Target::new(address.clone(), creds.remote_user, creds.ssh_priv_key);
        let runner = PlaybookRunner::new(self.config.playbook_dir.clone())
            .with_timeout(self.config.check_timeout);
        let outcome = runner
            .run(
                Playbook::CheckHostAvailability,
                std::slice::from_ref(&target),
                self.config.ansible_vars.clone(),
            )
            .await;
        self.checks.fetch_add(1, Ordering::Relaxed);
        let failure = match outcome {
            Ok(report) => report.failure_reason(&address),
            Err(e) => Some(e.to_string()),
        };
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
                        next.reason = format!("unreachable: {reason}");
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

async fn futures_join_all<F: std::future::Future<Output = ()>>(
    futures: impl IntoIterator<Item = F>,
) {
    futures::future::join_all(futures).await;
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
