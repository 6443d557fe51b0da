//! Stopping the split stack's server as systemd does (SIGTERM): it answers
//! the request it is working on before it exits 0, and takes no new
//! connection meanwhile. The request is held in flight by stopping
//! (SIGSTOP) the storage daemon it waits for, a real process on the real
//! broker. (A daemon's drain of its bus messages: `commissaire-service`'s
//! `a_drain_finishes_the_message_in_process_and_takes_no_other`.)

use std::time::{Duration, Instant};

use commissaire_faults::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_the_request_in_flight_be_answered_then_the_server_exits_0() {
    let mut stack = stack();
    start(&mut stack, &[Daemon::Storage, Daemon::Server]).await;
    let api = Api::new(&stack);
    // Storage stops answering: the next write waits for it.
    stack.signal(Daemon::Storage, "STOP");
    let writer = {
        let api = api.clone();
        tokio::spawn(async move { api.put("/api/v0/cluster/in-flight", json!({})).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!writer.is_finished(), "the write did not wait for storage");
    stack.signal(Daemon::Server, "TERM");
    let termed = Instant::now();
    // The server still runs (the request is in flight) but accepts no
    // new connection.
    let server = stack.base_url.trim_start_matches("http://").to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(&server).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        stack.wait_exit(Daemon::Server, Duration::from_millis(500)),
        None
    );
    // Storage is back: the request is answered, then the server exits.
    stack.signal(Daemon::Storage, "CONT");
    let answer = tokio::time::timeout(Duration::from_secs(15), writer)
        .await
        .expect("the request in flight was answered")
        .unwrap();
    assert_eq!(answer.status, Some(201), "{answer:?}");
    let status = tokio::task::spawn_blocking(move || {
        let status = stack.wait_exit(Daemon::Server, Duration::from_secs(15));
        (status, stack.log(Daemon::Server))
    })
    .await
    .unwrap();
    let (status, log) = status;
    let status = status.unwrap_or_else(|| panic!("the server did not exit; its log:\n{log}"));
    assert_eq!(status.code(), Some(0), "its log:\n{log}");
    assert!(log.contains("finishing the requests in flight"), "{log}");
    println!(
        "graceful stop: the request in flight answered {answer:?}, the server exited 0 {:?} after SIGTERM",
        termed.elapsed()
    );
}
