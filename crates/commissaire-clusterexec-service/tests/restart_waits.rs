//! Clusterexec waits for a restarted host itself (TCP and SSH probes on the
//! host's pooled session): a host that never comes back and one that comes
//! back with another SSH host key each fail the roll with a reason of its
//! own. Against sshd hosts of the tests' own (`TestSshd`).

mod common;

use std::time::Duration;

use commissaire_testkit::TestSshd;
use common::*;
use serde_json::{Value, json};

/// Settings whose restart command, detached as a reboot is, writes
/// `DIR/restarting` two seconds later (the playbook is done by then); the
/// test then does to the host what the case needs.
fn config(dir: &std::path::Path, back_timeout: u64) -> Value {
    json!({
        "replica_id": "r1",
        "playbook_dir": commissaire_ansible::source_playbook_dir().display().to_string(),
        "lease_seconds": 10,
        "playbook_timeout_seconds": 120,
        "ansible_vars": {
            "commissaire_restart_command": format!(
                "setsid -f sh -c 'sleep 2; touch {}/restarting' </dev/null >/dev/null 2>&1",
                dir.display()
            ),
            "commissaire_restart_down_timeout": 10,
            "commissaire_restart_wait_timeout": back_timeout,
        },
    })
}

async fn restarting(dir: &std::path::Path) {
    for _ in 0..600 {
        if dir.join("restarting").exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the restart command never ran");
}

fn failure_reason(end: &Value) -> String {
    end["failed_hosts"][0]["reason"]
        .as_str()
        .or_else(|| end["reason"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_that_never_comes_back_fails_the_restart_saying_so() {
    let mut sshd = TestSshd::start("127.0.0.58");
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    stack.cluster("gone", &[sshd.address.as_str()]).await;
    let exec = stack.clusterexec(&config(dir.path(), 3)).await;
    let (s, b) = stack.put("/api/v0/cluster/gone/restart", json!({})).await;
    assert_eq!(s, 201, "{b}");
    restarting(dir.path()).await;
    sshd.stop();
    let (end, _) = stack
        .wait_end("gone", "restart", Duration::from_secs(120))
        .await;
    assert_eq!(end["status"], "failed", "{end}");
    let reason = failure_reason(&end);
    assert!(
        reason.contains("did not come back within 3s") && reason.contains("port stayed closed"),
        "{reason} in {end}"
    );
    exec.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_back_with_another_host_key_fails_the_restart_saying_so() {
    let mut sshd = TestSshd::start("127.0.0.59");
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    stack.cluster("reinstalled", &[sshd.address.as_str()]).await;
    let exec = stack.clusterexec(&config(dir.path(), 60)).await;
    let (s, b) = stack
        .put("/api/v0/cluster/reinstalled/restart", json!({}))
        .await;
    assert_eq!(s, 201, "{b}");
    restarting(dir.path()).await;
    // Comes back reinstalled: another host key.
    sshd.new_host_key();
    let (end, _) = stack
        .wait_end("reinstalled", "restart", Duration::from_secs(120))
        .await;
    assert_eq!(end["status"], "failed", "{end}");
    let reason = failure_reason(&end);
    assert!(
        reason.contains("host key") && reason.contains("changed"),
        "{reason} in {end}"
    );
    exec.shutdown().await;
}
