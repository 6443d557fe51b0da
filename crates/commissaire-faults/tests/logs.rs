//! The logs of the split stack, as an operator reads them: the server's
//! access log has one line per request (method, path, status, time, user,
//! peer, request id; never a password), and the request id it gives or
//! keeps is on the lines a daemon logs while handling that request's bus
//! calls, so one id finds a request across every daemon's log.

use std::time::{Duration, Instant};

use commissaire_faults::*;
use serde_json::json;

/// Waits up to 10 s for `daemon`'s log to hold a line with every one of
/// `parts`; returns that line.
fn log_line(stack: &SplitStack, daemon: Daemon, parts: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = stack.log(daemon);
        if let Some(line) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no line of {daemon:?} with {parts:?} in:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_access_log_names_each_request_and_its_id_follows_it_into_the_daemons() {
    let mut stack = stack();
    stack.configure(Daemon::Storage, "logging", json!({"level": "debug"}));
    start(&mut stack, &[Daemon::Storage, Daemon::Server]).await;
    let resp = reqwest::Client::new()
        .put(format!("{}/api/v0/cluster/logged", stack.base_url))
        .basic_auth("a", Some("a"))
        .header("x-request-id", "trace-me-7")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(resp.headers()["x-request-id"], "trace-me-7");
    let refused = reqwest::Client::new()
        .get(format!("{}/api/v0/clusters", stack.base_url))
        .basic_auth("a", Some("not-the-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let refused_id = refused.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();

    let stack = tokio::task::spawn_blocking(move || {
        let access = log_line(
            &stack,
            Daemon::Server,
            &[
                "request_id=trace-me-7",
                "method=PUT",
                "status=201",
                "user=\"a\"",
                "/api/v0/cluster/logged",
            ],
        );
        assert!(access.contains("ms="), "{access}");
        assert!(access.contains("peer=\"127.0.0.1:"), "{access}");
        // The storage daemon handled the request's calls in its span.
        let storage = log_line(
            &stack,
            Daemon::Storage,
            &["request_id=trace-me-7", "handled"],
        );
        assert!(storage.contains("storage."), "{storage}");
        // A refusal is logged with its id, without the password.
        log_line(
            &stack,
            Daemon::Server,
            &[&format!("request_id={refused_id}"), "status=403"],
        );
        assert!(!stack.log(Daemon::Server).contains("not-the-password"));
        stack
    })
    .await
    .unwrap();
    drop(stack);
}
