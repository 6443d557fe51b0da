//! The all-in-one binary: no external service, data kept across restarts.

use std::time::Duration;

use serde_json::{Value, json};

struct Running {
    child: tokio::process::Child,
    base: String,
}

async fn start(data_dir: &std::path::Path, users: &std::path::Path) -> Running {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_commissaire"))
        .args([
            "--no-config-file",
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
