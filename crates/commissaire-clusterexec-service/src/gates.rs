//! Health gates after each host's step: check commands over the host's
//! session, then no firing Prometheus alert matching the pattern; each
//! tried `retries + 1` times. A gate that never passes fails the host with
//! what it saw as the reason.

use std::future::Future;
use std::time::Duration;

use commissaire_ansible::Target;
use commissaire_models::{CommandGate, GateTries, Gates, PrometheusGate};
use commissaire_service::metrics::names::GATE_FAILURES;
use serde_json::Value;

use crate::executor::HostExecutor;

/// The most of a command's output a reason quotes.
const OUTPUT_LIMIT: usize = 400;

/// Runs health gates; holds the HTTP client for Prometheus.
#[derive(Clone)]
pub(crate) struct GateRunner {
    http: reqwest::Client,
}

impl GateRunner {
    pub fn new() -> Self {
        GateRunner {
            http: reqwest::Client::new(),
        }
    }

    /// Every gate of `gates`, in order, for the host of `target`.
    pub async fn run(
        &self,
        gates: &Gates,
        executor: &dyn HostExecutor,
        target: &Target,
    ) -> Result<(), String> {
        let failed = |gate: &'static str| {
            move |e: String| {
                metrics::counter!(GATE_FAILURES, "gate" => gate).increment(1);
                e
            }
        };
        for gate in &gates.commands {
            self.command(gate, executor, target)
                .await
                .map_err(failed("command"))?;
        }
        if let Some(gate) = &gates.prometheus {
            self.prometheus(gate).await.map_err(failed("prometheus"))?;
        }
        Ok(())
    }

    async fn command(
        &self,
        gate: &CommandGate,
        executor: &dyn HostExecutor,
        target: &Target,
    ) -> Result<(), String> {
        let tries = gate.tries();
        let what = format!("'{}'", gate.command);
        retried(&what, tries, || {
            executor.check(target, &gate.command, tries.timeout())
        })
        .await
    }

    async fn prometheus(&self, gate: &PrometheusGate) -> Result<(), String> {
        let pattern = regex::Regex::new(&format!("^(?:{})$", gate.alerts))
            .map_err(|e| format!("health check prometheus: bad alerts pattern: {e}"))?;
        let tries = gate.tries();
        retried("prometheus", tries, || async {
            firing_alerts(&self.http, &gate.url, &pattern, tries.timeout())
                .await
                .and_then(|firing| match firing.is_empty() {
                    true => Ok(()),
                    false => Err(format!("firing alerts: {}", firing.join(", "))),
                })
        })
        .await
    }
}

/// Tries `attempt` as `tries` says; the error names the gate and the last failure.
async fn retried<F, Fut>(what: &str, tries: GateTries, mut attempt: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let n = tries.attempts();
    let mut last = String::new();
    for i in 1..=n {
        match tokio::time::timeout(tries.timeout(), attempt()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("no answer within {:?}", tries.timeout()),
        }
        tracing::debug!(gate = what, attempt = i, reason = %last, "health check failed");
        if i < n {
            tokio::time::sleep(tries.interval()).await;
        }
    }
    let tries = if n == 1 {
        "1 try"
    } else {
        &format!("{n} tries")
    };
    Err(format!("health check {what} failed ({tries}): {last}"))
}

/// The firing alerts whose name matches `pattern`, as `Name{label="v", ...}`.
async fn firing_alerts(
    http: &reqwest::Client,
    url: &str,
    pattern: &regex::Regex,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let endpoint = format!("{}/api/v1/alerts", url.trim_end_matches('/'));
    // The URL may carry credentials: the reason names only what answered.
    let server = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)))
        })
        .unwrap_or_else(|| "the server".into());
    let answer = http
        .get(&endpoint)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("cannot ask Prometheus at {server}: {}", e.without_url()))?;
    if !answer.status().is_success() {
        return Err(format!(
            "Prometheus at {server} answered {}",
            answer.status()
        ));
    }
    let body: Value = answer.json().await.map_err(|e| {
        format!(
            "Prometheus at {server} answered no alert list: {}",
            e.without_url()
        )
    })?;
    let alerts = body
        .pointer("/data/alerts")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("Prometheus at {server} answered no alert list"))?;
    let mut firing: Vec<String> = alerts
        .iter()
        .filter(|a| a["state"] == "firing")
        .filter_map(|a| {
            let name = a.pointer("/labels/alertname")?.as_str()?;
            if !pattern.is_match(name) {
                return None;
            }
            let labels: Vec<String> = a["labels"]
                .as_object()?
                .iter()
                .filter(|(k, _)| *k != "alertname")
                .map(|(k, v)| format!("{k}={}", v))
                .collect();
            Some(format!("{name}{{{}}}", labels.join(", ")))
        })
        .collect();
    firing.sort();
    firing.dedup();
    Ok(firing)
}

/// The end of a command's output, for a reason.
pub(crate) fn output_tail(stdout: &[u8], stderr: &[u8]) -> String {
    let text = format!(
        "{} {}",
        String::from_utf8_lossy(stdout).trim(),
        String::from_utf8_lossy(stderr).trim()
    );
    let text = text.trim();
    if text.len() <= OUTPUT_LIMIT {
        return text.to_string();
    }
    let mut start = text.len() - OUTPUT_LIMIT;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_gate_is_retried_and_its_last_failure_is_the_reason() {
        let tries = GateTries {
            retries: Some(2),
            interval_seconds: Some(commissaire_models::Secs(1.0)),
            ..Default::default()
        };
        let mut n = 0;
        let e = retried("'x'", tries, || {
            n += 1;
            let k = n;
            async move { Err(format!("exit {k}")) }
        })
        .await
        .unwrap_err();
        assert_eq!(e, "health check 'x' failed (3 tries): exit 3");
        let mut n = 0;
        retried("'x'", tries, || {
            n += 1;
            let ok = n == 2;
            async move { if ok { Ok(()) } else { Err("no".into()) } }
        })
        .await
        .unwrap();
        assert_eq!(n, 2, "passes on the second try");
    }

    #[test]
    fn long_output_keeps_its_end() {
        let long = "x".repeat(1000) + "the end";
        let t = output_tail(long.as_bytes(), b"");
        assert!(t.starts_with("...") && t.ends_with("the end") && t.len() <= OUTPUT_LIMIT + 3);
    }
}
