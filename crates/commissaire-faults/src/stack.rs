//! The split stack of a fault test and the test bed's parts it uses.

use std::time::Duration;

use serde_json::json;

use crate::{Api, Daemon, REQUEST_TIMEOUT, SplitStack, testkit, wait_until};

/// The stack's configuration for fault tests: the server gives up on a
/// backing service after [`REQUEST_TIMEOUT`] seconds.
pub fn stack() -> Stack {
    let mut stack = SplitStack::new(&testkit::fresh_vhost(), 4);
    stack.configure(Daemon::Server, "request-timeout", json!(REQUEST_TIMEOUT));
    Stack(stack)
}

/// A [`SplitStack`] on a vhost of its own, which is deleted with it (a
/// broker holding hundreds of vhosts restarts slowly).
pub struct Stack(SplitStack);

impl std::ops::Deref for Stack {
    type Target = SplitStack;
    fn deref(&self) -> &SplitStack {
        &self.0
    }
}

impl std::ops::DerefMut for Stack {
    fn deref_mut(&mut self) -> &mut SplitStack {
        &mut self.0
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for daemon in Daemon::ALL {
            self.0.kill(daemon);
        }
        // Best effort, and never a panic (this may run while unwinding).
        let Some(vhost) = self.0.bus_uri.rsplit('/').next().map(str::to_string) else {
            return;
        };
        if let Ok(ctl) = std::env::var("COMMISSAIRE_TEST_RABBITMQCTL") {
            let mut parts = ctl.split_whitespace();
            if let Some(program) = parts.next() {
                let _ = std::process::Command::new(program)
                    .args(parts)
                    .args(["delete_vhost", &vhost])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
}

/// Starts `daemons` and waits until the server serves authenticated reads.
pub async fn start(stack: &mut SplitStack, daemons: &[Daemon]) {
    stack.start_all(daemons);
    assert!(
        stack.wait_ready(Duration::from_secs(60)).await,
        "the stack did not come up; server log:\n{}\nstorage log:\n{}",
        stack.log(Daemon::Server),
        stack.log(Daemon::Storage)
    );
    // The server creates the default network in the background.
    let api = Api::new(stack);
    wait_until(
        Duration::from_secs(30),
        "the default network exists",
        || {
            let api = api.clone();
            async move {
                let a = api.get("/api/v0/network/default").await;
                if a.status == Some(200) {
                    Ok(())
                } else {
                    Err(format!("{a:?}"))
                }
            }
        },
    )
    .await;
}

/// The test bed's ssh hosts `range` (0-based; the test bed names them
/// SSH_NET.11, .12, ...). Each test uses its own, so none disturbs another.
pub fn testbed_hosts(range: std::ops::Range<usize>) -> Vec<String> {
    let all = testkit::ssh_hosts();
    assert!(
        all.len() >= range.end,
        "the fault suite needs at least {} ssh hosts in the test bed (N_SSH), it has {}",
        range.end,
        all.len()
    );
    all[range].to_vec()
}

/// The playbooks of the source tree.
pub fn playbook_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../playbooks").to_string()
}

/// The test bed's private key, base64 (the `ssh_priv_key` of a host).
pub fn key_b64() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(testkit::ssh_key()).expect("the test bed's key"))
}

/// Configures the watcher of `stack` to check every `interval` seconds
/// (each check `check_timeout` at most) with its session pool in a
/// directory of its own, which it returns (kept while the test runs).
pub fn configure_watcher(
    stack: &mut SplitStack,
    interval: u64,
    check_timeout: u64,
) -> tempfile::TempDir {
    stack.configure(Daemon::Watcher, "playbook_dir", json!(playbook_dir()));
    stack.configure(Daemon::Watcher, "interval", json!(interval));
    stack.configure(Daemon::Watcher, "check_timeout", json!(check_timeout));
    let runtime = tempfile::tempdir().unwrap();
    stack.configure(
        Daemon::Watcher,
        "ssh",
        json!({"runtime_dir": runtime.path()}),
    );
    runtime
}
