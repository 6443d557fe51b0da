//! A real Prometheus (Debian's `prometheus` package) for the tests: it
//! scrapes a [`MetricsEndpoint`] whose text the test sets, evaluates the
//! test's alerting rules every second, and answers its HTTP API on a free
//! loopback port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `/metrics` endpoint serving whatever text [`MetricsEndpoint::set`] last gave.
pub struct MetricsEndpoint {
    /// `127.0.0.1:PORT`
    pub address: String,
    text: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsEndpoint {
    /// Serves `text` (the Prometheus exposition format) at `/metrics`.
    pub async fn start(text: &str) -> MetricsEndpoint {
        let shared = Arc::new(Mutex::new(text.to_string()));
        let served = shared.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let served = served.clone();
                async move { served.lock().unwrap().clone() }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MetricsEndpoint {
            address,
            text: shared,
            task,
        }
    }

    /// Serves `text` from now on.
    pub fn set(&self, text: &str) {
        *self.text.lock().unwrap() = text.to_string();
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A running Prometheus; stopped when dropped.
pub struct TestPrometheus {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    address: String,
    child: Child,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.0 GET: the status and body, or `None` if nothing answered.
pub fn http_get(address: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(address).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

impl TestPrometheus {
    /// Starts `prometheus` scraping `targets` (`host:port`) every second,
    /// with `rules` (the text of a rule file) evaluated every second; waits
    /// until it is ready.
    pub fn start(targets: &[&str], rules: &str) -> TestPrometheus {
        Self::start_job("test", targets, rules)
    }

    /// [`TestPrometheus::start`] with the scrape job named `job` (rules may
    /// select on it, as `up{job=~"commissaire-.*"}` does).
    pub fn start_job(job: &str, targets: &[&str], rules: &str) -> TestPrometheus {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}']\n\
             scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
            dir.path().join("rules.yml").display(),
            targets.join(", ")
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus (Debian's package; scripts/install-deps.sh installs it)");
        let prometheus = TestPrometheus {
            url: format!("http://{address}"),
            address,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http_get(&prometheus.address, "/-/ready").map(|r| r.0) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "prometheus did not get ready: {}",
                prometheus.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        prometheus
    }

    /// What Prometheus logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The answer of `GET /api/v1/alerts`.
    pub fn alerts(&self) -> serde_json::Value {
        http_get(&self.address, "/api/v1/alerts")
            .and_then(|(_, body)| serde_json::from_str(&body).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// The samples of instant query `expr`: (labels, value) of each.
    pub fn query(&self, expr: &str) -> Vec<(serde_json::Value, f64)> {
        let encoded: String = expr
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let answer = http_get(&self.address, &format!("/api/v1/query?query={encoded}"))
            .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
            .unwrap_or(serde_json::Value::Null);
        answer
            .pointer("/data/result")
            .and_then(|r| r.as_array())
            .map(|results| {
                results
                    .iter()
                    .filter_map(|r| {
                        let value = r["value"][1].as_str()?.parse().ok()?;
                        Some((r["metric"].clone(), value))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The state (`pending`, `firing`) of alert `name`, if it is active.
    pub fn alert_state(&self, name: &str) -> Option<String> {
        self.alerts()
            .pointer("/data/alerts")?
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == name)
            .and_then(|a| a["state"].as_str().map(str::to_string))
    }

    /// Waits until alert `name` is firing (`firing`) or not (`!firing`).
    pub fn wait_alert(&self, name: &str, firing: bool, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let alerts = self.alerts();
            let is_firing = alerts
                .pointer("/data/alerts")
                .and_then(|a| a.as_array())
                .is_some_and(|a| {
                    a.iter()
                        .any(|a| a["labels"]["alertname"] == name && a["state"] == "firing")
                });
            if is_firing == firing {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "alert {name} never became {}: {alerts}",
                if firing { "firing" } else { "inactive" }
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
