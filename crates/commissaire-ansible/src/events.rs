//! Reading `ansible-playbook`'s event stream (the jsonl callback): per-host
//! outcomes, failure reasons in Ansible's and the host's own words, and
//! secrets redacted from everything that is kept.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::playbook::{HostOutcome, Playbook, PlaybookReport};
use crate::{AnsibleError, Target};

/// Masks the values of secret-looking variables in the output.
#[derive(Debug, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub(crate) fn from_vars(vars: &Map<String, Value>) -> Self {
        let mut secrets: Vec<String> = vars
            .iter()
            .filter(|(k, _)| {
                let k = k.to_ascii_lowercase();
                k.ends_with("_token")
                    || k.contains("password")
                    || k.contains("secret")
                    || k.contains("passphrase")
            })
            .filter_map(|(_, v)| v.as_str())
            .filter(|s| s.len() >= 4)
            .map(str::to_string)
            .collect();
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    pub(crate) fn redact(&self, s: &str) -> String {
        let mut s = s.to_string();
        for secret in &self.secrets {
            if s.contains(secret.as_str()) {
                s = s.replace(secret.as_str(), "********");
            }
        }
        s
    }
}

/// Per-host facts from the event stream.
#[derive(Debug, Default)]
pub(crate) struct HostEvents {
    failed: Option<(String, String)>,
    unreachable: Option<String>,
}

/// Parses the `ansible.posix.jsonl` stream into host outcomes and a
/// readable log.
#[derive(Debug)]
pub(crate) struct EventLog {
    redactor: Redactor,
    pub(crate) output: String,
    hosts: BTreeMap<String, HostEvents>,
    stats: Option<Map<String, Value>>,
    logged_tasks: HashSet<String>,
    stderr_tail: Vec<String>,
}

pub(crate) const MAX_FIELD: usize = 4000;

pub(crate) fn truncate(s: &str) -> &str {
    if s.len() <= MAX_FIELD {
        return s;
    }
    let mut end = MAX_FIELD;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl EventLog {
    pub(crate) fn new(redactor: Redactor) -> Self {
        Self {
            redactor,
            output: String::new(),
            hosts: BTreeMap::new(),
            stats: None,
            logged_tasks: HashSet::new(),
            stderr_tail: Vec::new(),
        }
    }

    pub(crate) fn log(&mut self, line: &str) {
        let line = self.redactor.redact(line);
        self.output.push_str(&line);
        self.output.push('\n');
    }

    pub(crate) fn stderr_line(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        self.log(line);
        self.stderr_tail.push(self.redactor.redact(line));
        if self.stderr_tail.len() > 20 {
            self.stderr_tail.remove(0);
        }
    }

    pub(crate) fn stdout_line(&mut self, line: &str) {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return;
        }
        let ev = match serde_json::from_str::<Value>(trimmed) {
            Ok(ev @ Value::Object(_)) => ev,
            _ => {
                self.log(line);
                return;
            }
        };
        let event = ev.get("_event").and_then(Value::as_str).unwrap_or_default();
        let task_name = ev
            .pointer("/task/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match event {
            "v2_playbook_on_play_start" => {
                let name = ev
                    .pointer("/play/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                // With `serial`, every batch is a play of its own (same task ids).
                self.logged_tasks.clear();
                self.log(&format!("PLAY [{name}]"));
            }
            "v2_playbook_on_task_start"
            | "v2_playbook_on_handler_task_start"
            | "v2_runner_on_start" => {
                let id = ev
                    .pointer("/task/id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if self.logged_tasks.insert(id.to_string()) {
                    self.log(&format!("TASK [{task_name}]"));
                }
            }
            "v2_runner_on_ok"
            | "v2_runner_on_failed"
            | "v2_runner_on_unreachable"
            | "v2_runner_on_skipped" => {
                let Some(Value::Object(results)) = ev.get("hosts") else {
                    return;
                };
                for (host, result) in results {
                    self.host_result(event, &task_name, host, result);
                }
            }
            "v2_playbook_on_stats" => {
                if let Some(Value::Object(stats)) = ev.get("stats") {
                    self.log("PLAY RECAP");
                    for (host, s) in stats {
                        let n = |k: &str| s.get(k).and_then(Value::as_i64).unwrap_or(0);
                        self.log(&format!(
                            "{host}: ok={} changed={} unreachable={} failed={} skipped={} rescued={} ignored={}",
                            n("ok"),
                            n("changed"),
                            n("unreachable"),
                            n("failures"),
                            n("skipped"),
                            n("rescued"),
                            n("ignored")
                        ));
                    }
                    self.stats = Some(stats.clone());
                }
            }
            _ => {}
        }
    }

    pub(crate) fn host_result(&mut self, event: &str, task: &str, host: &str, r: &Value) {
        let text = |k: &str| {
            r.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let msg = text("msg");
        let rc = r.get("rc").and_then(Value::as_i64);
        let (stdout, stderr) = (text("stdout"), text("stderr"));
        let changed = r.get("changed").and_then(Value::as_bool).unwrap_or(false);
        match event {
            "v2_runner_on_ok" => {
                self.log(&format!(
                    "{}: [{host}]",
                    if changed { "changed" } else { "ok" }
                ));
            }
            "v2_runner_on_skipped" => self.log(&format!("skipping: [{host}]")),
            "v2_runner_on_unreachable" => {
                self.log(&format!("unreachable: [{host}] => {msg}"));
                self.hosts.entry(host.to_string()).or_default().unreachable = Some(msg.clone());
            }
            _ => {
                let mut full = if msg.is_empty() {
                    "task failed".to_string()
                } else {
                    msg.clone()
                };
                if let Some(rc) = rc {
                    full.push_str(&format!(" (rc={rc})"));
                }
                if !stderr.is_empty() {
                    full.push_str(": ");
                    full.push_str(truncate(&stderr));
                } else if !stdout.is_empty() && rc.is_some() {
                    full.push_str(": ");
                    full.push_str(truncate(&stdout));
                }
                let full = self.redactor.redact(&full);
                self.log(&format!("failed: [{host}] => {full}"));
                self.hosts.entry(host.to_string()).or_default().failed =
                    Some((task.to_string(), full));
                return;
            }
        }
        // Command output of successful tasks, indented.
        if event == "v2_runner_on_ok" {
            for (label, s) in [("stdout", &stdout), ("stderr", &stderr)] {
                if !s.is_empty() {
                    self.log(&format!(
                        "    {label}: {}",
                        truncate(s).replace('\n', "\n    ")
                    ));
                }
            }
        }
    }

    pub(crate) fn into_report(
        self,
        playbook: Playbook,
        targets: &[Target],
        exit_code: i32,
        duration: Duration,
    ) -> Result<PlaybookReport, AnsibleError> {
        if self.stats.is_none() && self.hosts.is_empty() && exit_code != 0 {
            let msg = if self.stderr_tail.is_empty() {
                "no output".to_string()
            } else {
                self.stderr_tail.join("\n")
            };
            return Err(AnsibleError::Playbook {
                playbook: playbook.file_name().into(),
                exit_code,
                msg,
                output: self.output,
            });
        }
        let stats = self.stats.unwrap_or_default();
        let mut hosts = BTreeMap::new();
        for t in targets {
            let ev = self.hosts.get(&t.address);
            let count = |k: &str| {
                stats
                    .get(&t.address)
                    .and_then(|s| s.get(k))
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            };
            let unreachable = ev.and_then(|e| e.unreachable.clone());
            let failed = ev.and_then(|e| e.failed.clone());
            let outcome = if stats.contains_key(&t.address) {
                if count("unreachable") > 0 {
                    HostOutcome::Unreachable {
                        msg: unreachable.unwrap_or_else(|| "unreachable".into()),
                    }
                } else if count("failures") > 0 {
                    let (task, msg) =
                        failed.unwrap_or_else(|| (String::new(), "task failed".into()));
                    HostOutcome::Failed { task, msg }
                } else {
                    HostOutcome::Ok
                }
            } else if let Some(msg) = unreachable {
                HostOutcome::Unreachable { msg }
            } else if let Some((task, msg)) = failed {
                HostOutcome::Failed { task, msg }
            } else {
                HostOutcome::NotRun
            };
            hosts.insert(t.address.clone(), outcome);
        }
        Ok(PlaybookReport {
            playbook,
            hosts,
            output: self.output,
            exit_code,
            duration,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(lines: &[&str]) -> EventLog {
        let mut vars = Map::new();
        vars.insert(
            "commissaire_kubernetes_bearer_token".into(),
            "s3cr3t-token".into(),
        );
        let mut log = EventLog::new(Redactor::from_vars(&vars));
        for l in lines {
            log.stdout_line(l);
        }
        log
    }

    fn targets(addrs: &[&str]) -> Vec<Target> {
        addrs
            .iter()
            .map(|a| Target::new(*a, "root", "S0VZ"))
            .collect()
    }

    #[test]
    fn outcomes_from_events_and_stats() {
        let log = log_of(&[
            r#"{"_event":"v2_playbook_on_play_start","play":{"name":"upgrade","id":"p"}}"#,
            r#"{"_event":"v2_playbook_on_task_start","task":{"name":"Upgrade","id":"t1"},"hosts":{}}"#,
            r#"{"_event":"v2_runner_on_ok","task":{"name":"Upgrade","id":"t1"},"hosts":{"a":{"changed":true,"rc":0,"stdout":"done"}}}"#,
            r#"{"_event":"v2_runner_on_failed","task":{"name":"Upgrade","id":"t1"},"hosts":{"b":{"failed":true,"rc":3,"msg":"non-zero return code","stderr":"boom s3cr3t-token"}}}"#,
            r#"{"_event":"v2_runner_on_unreachable","task":{"name":"Upgrade","id":"t1"},"hosts":{"c":{"unreachable":true,"msg":"Failed to connect to the host via ssh: Connection refused"}}}"#,
            r#"{"_event":"v2_playbook_on_stats","stats":{"a":{"ok":1,"changed":1,"failures":0,"unreachable":0},"b":{"ok":0,"failures":1,"unreachable":0},"c":{"unreachable":1,"failures":0}}}"#,
        ]);
        let r = log
            .into_report(
                Playbook::Upgrade,
                &targets(&["a", "b", "c", "d"]),
                4,
                Duration::ZERO,
            )
            .unwrap();
        assert_eq!(r.hosts["a"], HostOutcome::Ok);
        assert_eq!(
            r.hosts["b"],
            HostOutcome::Failed {
                task: "Upgrade".into(),
                msg: "non-zero return code (rc=3): boom ********".into()
            }
        );
        assert!(
            matches!(&r.hosts["c"], HostOutcome::Unreachable { msg } if msg.contains("refused"))
        );
        assert_eq!(r.hosts["d"], HostOutcome::NotRun);
        assert_eq!(r.failed_hosts(), vec!["b", "c"]);
        assert!(!r.is_success());
        assert!(r.output.contains("PLAY [upgrade]"), "{}", r.output);
        assert!(r.output.contains("TASK [Upgrade]"));
        assert!(r.output.contains("changed: [a]"));
        assert!(r.output.contains("    stdout: done"));
        assert!(!r.output.contains("s3cr3t"), "{}", r.output);
    }

    #[test]
    fn ignored_failures_do_not_count() {
        let log = log_of(&[
            r#"{"_event":"v2_runner_on_failed","task":{"name":"Probe","id":"t1"},"hosts":{"a":{"failed":true,"msg":"ignored"}}}"#,
            r#"{"_event":"v2_playbook_on_stats","stats":{"a":{"ok":2,"failures":0,"unreachable":0,"ignored":1}}}"#,
        ]);
        let r = log
            .into_report(Playbook::Restart, &targets(&["a"]), 0, Duration::ZERO)
            .unwrap();
        assert!(r.is_success());
    }

    #[test]
    fn early_failure_is_an_error() {
        let mut log = log_of(&[]);
        log.stderr_line("ERROR! A malformed block was encountered");
        let e = log
            .into_report(Playbook::Bootstrap, &targets(&["a"]), 4, Duration::ZERO)
            .unwrap_err();
        assert!(
            matches!(e, AnsibleError::Playbook { exit_code: 4, ref msg, .. } if msg.contains("malformed"))
        );
    }
}
