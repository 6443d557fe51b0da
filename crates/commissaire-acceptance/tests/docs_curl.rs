//! The `curl` examples of the docs' Operations chapter, run with the real
//! `curl` against a running stack (only the server address is changed, and
//! `-s -w` is appended to read the status).

mod common;

use common::Stack;
use serde_json::Value;

async fn curl(stack: &Stack, command: &str) -> (u16, Value) {
    let command = command.replace("http://localhost:8000", &stack.base);
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{command} -s -w '\\n%{{http_code}}'"))
        .output()
        .await
        .expect("run curl");
    assert!(
        output.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (
        status.trim().parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_operations_chapter_curl_examples_work() {
    let s = Stack::start().await;
    // The examples use cluster `datacenter1`, which must exist first.
    let (status, _) = curl(&s, r#"curl -u "a:a" -XPUT -H "Content-Type: application/json" http://localhost:8000/api/v0/cluster/datacenter1"#).await;
    assert_eq!(status, 201);

    // Bootstrapping
    let (status, host) = curl(
        &s,
        r#"curl -u "a:a" -XPUT -H "Content-Type: application/json" http://localhost:8000/api/v0/host/192.168.1.100 -d '{"host": "192.168.1.100", "cluster": "datacenter1", "remote_user": "root", "ssh_priv_key": "dGVzdAo="}'"#,
    )
    .await;
    assert_eq!(status, 201, "{host}");
    assert_eq!(host["address"], "192.168.1.100");

    // Restart
    let (status, record) =
        curl(&s, r#"curl -u "a:a" -XPUT -H "Content-Type: application/json" http://localhost:8000/api/v0/cluster/datacenter1/restart"#).await;
    assert_eq!(
        (status, record["status"].as_str()),
        (201, Some("in_process"))
    );
    let (status, record) =
        curl(&s, r#"curl -u "a:a" -XGET -H "Content-Type: application/json" http://localhost:8000/api/v0/cluster/datacenter1/restart"#).await;
    assert_eq!(
        (status, record["status"].as_str()),
        (200, Some("in_process"))
    );

    // Upgrade
    let (status, record) =
        curl(&s, r#"curl -u "a:a" -XPUT -H "Content-Type: application/json" http://localhost:8000/api/v0/cluster/datacenter1/upgrade"#).await;
    assert_eq!(
        (status, record["status"].as_str()),
        (201, Some("in_process"))
    );
    let (status, record) =
        curl(&s, r#"curl -u "a:a" -XGET -H "Content-Type: application/json" http://localhost:8000/api/v0/cluster/datacenter1/upgrade"#).await;
    assert_eq!((status, record["upgraded"].is_array()), (200, true));

    // Deploy. The docs write `--data='{...}'`, which curl does not accept
    // (long options take their value as the next argument); the same request
    // with `--data '{...}'`:
    let (status, record) = curl(
        &s,
        r#"curl -u "a:a" -XPUT -H "Content-Type: application/json" --data '{"version": "7.2.1"}' http://localhost:8000/api/v0/cluster/datacenter1/deploy"#,
    )
    .await;
    assert_eq!((status, record["version"].as_str()), (201, Some("7.2.1")));
    let (status, record) =
        curl(&s, r#"curl -u "a:a" -XGET -H "Content-Type: application/json" http://localhost:8000/api/v0/cluster/datacenter1/deploy"#).await;
    assert_eq!(
        (status, record["status"].as_str()),
        (200, Some("in_process"))
    );
}
