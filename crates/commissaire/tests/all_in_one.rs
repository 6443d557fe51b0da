//! The all-in-one binary: no external service, data kept across restarts.

use std::time::Duration;

use serde_json::{Value, json};

struct Running {
    child: tokio::process::Child,
    base: String,
}

async fn start(data_dir: &std::path::Path, users: &std::path::Path) -> Running {
    start_with(data_dir, users, None).await
}

/// [`start`] with a configuration file (`None`: `--no-config-file`).
async fn start_with(
    data_dir: &std::path::Path,
    users: &std::path::Path,
    config: Option<&std::path::Path>,
) -> Running {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_commissaire"));
    match config {
        Some(file) => command.arg("--config-file").arg(file),
        None => command.arg("--no-config-file"),
    };
    // The server's log goes to a file beside the data directory (its
    // investigations would flood the test output).
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.with_extension("log"))
        .unwrap();
    let child = command
        .stderr(log)
        .args([
            "--listen-interface",
            "127.0.0.1",
            "--listen-port",
            &port.to_string(),
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--authentication-plugin")
        .arg(format!(
            "commissaire_http.authentication.httpbasicauth:filepath={}",
            users.display()
        ))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client
            .get(format!("{base}/api/v0/network/default"))
            .basic_auth("a", Some("a"))
            .send()
            .await
            && r.status() == 200
        {
            return Running { child, base };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the all-in-one server did not come up");
}

async fn send(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .basic_auth("a", Some("a"));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn serves_the_api_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.json");
    // `a` / `a`, bcrypt cost 4.
    let hash = bcrypt::hash("a", 4).unwrap();
    std::fs::write(&users, json!({"a": {"hash": hash}}).to_string()).unwrap();
    let data = dir.path().join("data");
    let mut server = start(&data, &users).await;
    assert_eq!(
        send(
            &server.base,
            "PUT",
            "/api/v0/cluster/mycluster",
            Some(json!({}))
        )
        .await
        .0,
        201
    );
    assert_eq!(
        send(
            &server.base,
            "PUT",
            "/api/v0/host/10.3.0.1",
            Some(json!({"ssh_priv_key": "dGVzdAo=", "cluster": "mycluster"}))
        )
        .await
        .0,
        201
    );
    let anonymous = reqwest::get(format!("{}/api/v0/clusters", server.base))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 403);
    server.child.kill().await.unwrap();

    let mut server = start(&data, &users).await;
    assert_eq!(
        send(&server.base, "GET", "/api/v0/clusters", None).await,
        (200, json!(["mycluster"]))
    );
    assert_eq!(
        send(&server.base, "GET", "/api/v0/cluster/mycluster/hosts", None).await,
        (200, json!(["10.3.0.1"]))
    );
    assert!(data.join("commissaire.redb").exists());
    server.child.kill().await.unwrap();
}

fn users_file(dir: &std::path::Path) -> std::path::PathBuf {
    let users = dir.join("users.json");
    let hash = bcrypt::hash("a", 4).unwrap();
    std::fs::write(&users, json!({"a": {"hash": hash}}).to_string()).unwrap();
    users
}

/// Investigations under way or queued when the process is killed are all
/// carried out after its restart: every host ends in a final status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn investigations_pending_at_a_kill_are_carried_out_after_the_restart() {
    const HOSTS: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    let config = dir.path().join("commissaire.conf");
    std::fs::write(
        &config,
        json!({"investigator": {"facts_timeout": 3}}).to_string(),
    )
    .unwrap();
    let data = dir.path().join("data");
    // The hosts accept SSH connections and then say nothing: each
    // investigation hangs in fact gathering until it times out.
    let addresses: Vec<String> = (1..=HOSTS).map(|i| format!("127.0.4.{i}")).collect();
    let mut silent = Vec::new();
    for a in &addresses {
        let listener = tokio::net::TcpListener::bind((a.as_str(), 22))
            .await
            .unwrap();
        silent.push(tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        }));
    }
    let mut server = start_with(&data, &users, Some(&config)).await;
    for a in &addresses {
        let (status, body) = send(
            &server.base,
            "PUT",
            &format!("/api/v0/host/{a}"),
            Some(json!({"ssh_priv_key": "dGVzdAo="})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    server.child.kill().await.unwrap();
    for task in silent {
        task.abort();
    }

    // Nothing listens now: each investigation fails at once, with a reason.
    let mut server = start_with(&data, &users, Some(&config)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (status, hosts) = send(&server.base, "GET", "/api/v0/hosts", None).await;
        assert_eq!(status, 200);
        let hosts = hosts.as_array().unwrap().clone();
        assert_eq!(hosts.len(), HOSTS);
        let pending: Vec<&Value> = hosts
            .iter()
            .filter(|h| {
                matches!(
                    h["status"].as_str(),
                    Some("investigating" | "bootstrapping")
                )
            })
            .collect();
        if pending.is_empty() {
            for h in &hosts {
                assert_eq!(h["status"], "failed", "{h}");
                assert!(
                    h["reason"]
                        .as_str()
                        .unwrap()
                        .contains("investigation failed"),
                    "{h}"
                );
            }
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} hosts still pending after the restart, e.g. {}",
            pending.len(),
            pending[0]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    server.child.kill().await.unwrap();
}
