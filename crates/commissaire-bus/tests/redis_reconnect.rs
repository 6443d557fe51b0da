//! Connection loss on the Redis bus: `CLIENT KILL TYPE normal` drops every
//! (non pub/sub) client connection of the test server, ours included. Calls
//! in flight fail with `Unavailable` instead of hanging, and client, consumer
//! and subscriptions work again once reconnected.
//!
//! Its own test binary, because the kill hits every client of the server:
//! it must not run next to the rest of this crate's tests. (The AMQP loss
//! test lives with the storage service; closing all RabbitMQ connections
//! would disturb others.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use commissaire_bus::{Bus, BusError, RedisBus, Request, Response, Transport};
use commissaire_testkit as testkit;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// Kills every normal client connection of the test Redis.
fn kill_clients() {
    let uri = testkit::redis_uri();
    let hostport = uri
        .trim_start_matches("redis://")
        .split(['/', '@'])
        .find(|part| part.contains(':'))
        .expect("host:port in the Redis URI");
    let (host, port) = hostport.rsplit_once(':').unwrap();
    let output = std::process::Command::new("redis-cli")
        .args(["-h", host, "-p", port, "CLIENT", "KILL", "TYPE", "normal"])
        .output()
        .expect("run redis-cli");
    assert!(
        output.status.success(),
        "redis-cli: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "CLIENT KILL TYPE normal: {} connections",
        String::from_utf8_lossy(&output.stdout).trim()
    );
}

/// Echoes params; `slow` waits `params.ms` first.
fn serve(stream: commissaire_bus::IncomingStream) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(msg) = stream.recv().await {
            tokio::spawn(async move {
                let request: Request = serde_json::from_slice(&msg.body).unwrap();
                if request.method == "slow" {
                    let ms = request.params["ms"].as_u64().unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                let reply = Response::success(request.id.clone().unwrap(), request.params);
                // Settling may fail while the connection is down; the message is then given back.
                let _ = msg.finish(Some(serde_json::to_vec(&reply).unwrap())).await;
            });
        }
    })
}

/// Retries `svc.echo` until it succeeds (the consumer reconnects too).
async fn until_answered(client: &RedisBus, n: u64) -> Duration {
    let started = Instant::now();
    let mut failures = Vec::new();
    loop {
        match client
            .request("svc.echo", json!({"n": n}), Duration::from_secs(1))
            .await
        {
            Ok(reply) => {
                assert_eq!(reply, json!({"n": n}));
                eprintln!(
                    "answered after {:?}; meanwhile: {failures:?}",
                    started.elapsed()
                );
                return started.elapsed();
            }
            Err(e) => {
                assert!(
                    e.is_unavailable(),
                    "only Unavailable/Timeout meanwhile: {e:?}"
                );
                failures.push(e.to_string());
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "never answered again: {failures:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_survives_connection_loss() {
    let uri = testkit::redis_uri();
    let exchange = format!("test-{}", uuid::Uuid::new_v4().simple());
    let service: Bus = Arc::new(RedisBus::connect(&uri, &exchange, WAIT).await.unwrap());
    let client = RedisBus::connect(&uri, &exchange, WAIT).await.unwrap();
    let stream = service.consume("svc", &["svc.*".into()], 8).await.unwrap();
    let worker = serve(stream);
    let events = client.subscribe(&["ev.#".into()]).await.unwrap();
    until_answered(&client, 0).await;

    // A call in flight when the connection drops fails with Unavailable, at once.
    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = client
                .request("svc.slow", json!({"ms": 2000}), Duration::from_secs(20))
                .await;
            (outcome, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill_clients();
    let (outcome, took) = in_flight.await.unwrap();
    let err = outcome.expect_err("the connection was lost while waiting");
    assert!(matches!(err, BusError::Unavailable(_)), "{err:?}");
    assert!(
        took < Duration::from_secs(2),
        "failed on the loss, not later: {took:?}"
    );

    // Reconnects by itself; the consumer is re-established.
    assert!(client.wait_connected(WAIT).await);
    until_answered(&client, 1).await;

    // Again, with calls going on while the connections drop: each ends with
    // an answer or Unavailable/Timeout, never a hang.
    let calls: Vec<_> = (0..50u64)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(n * 10)).await;
                client
                    .request("svc.echo", json!({"n": n}), Duration::from_secs(3))
                    .await
                    .map(|reply| assert_eq!(reply, json!({"n": n})))
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    kill_clients();
    let mut answered = 0;
    let mut failed = Vec::new();
    for call in calls {
        match tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("no call hangs")
            .unwrap()
        {
            Ok(()) => answered += 1,
            Err(e) => {
                assert!(e.is_unavailable(), "{e:?}");
                failed.push(e.to_string());
            }
        }
    }
    eprintln!(
        "during the second loss: {answered} answered, {} failed: {failed:?}",
        failed.len()
    );
    until_answered(&client, 2).await;
    for n in 10..30 {
        let reply = client
            .request("svc.echo", json!({"n": n}), WAIT)
            .await
            .unwrap();
        assert_eq!(reply, json!({"n": n}));
    }

    // Publishing works again, and the subscription still gets copies.
    client
        .publish("ev.after", &json!({"ok": true}))
        .await
        .unwrap();
    let copy = tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("a copy after reconnecting")
        .unwrap();
    assert_eq!(copy.routing_key, "ev.after");
    assert_eq!(
        serde_json::from_slice::<Value>(&copy.body).unwrap(),
        json!({"ok": true})
    );

    worker.abort();
    let mut con = redis::Client::open(uri)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("commissaire:{exchange}:*"))
        .query_async(&mut con)
        .await
        .unwrap();
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut con)
            .await
            .unwrap();
    }
}
