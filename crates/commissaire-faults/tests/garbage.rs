//! Garbage: raw non-HTTP bytes and truncated requests on the server's port,
//! garbage request bodies, and garbage messages published straight onto the
//! bus to every daemon's routing keys. The server answers 4xx for bad input
//! (never a 5xx), and every daemon keeps running and still answers valid
//! requests afterwards.

use std::time::{Duration, Instant};

use commissaire_bus::{Response, codes};
use commissaire_faults::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `bytes` on a new connection to the server (optionally closing the
/// sending side) and returns what came back before the server closed the
/// connection or `wait` passed.
async fn raw(port: u16, bytes: &[u8], half_close: bool, wait: Duration) -> (Vec<u8>, bool) {
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the server");
    let _ = conn.write_all(bytes).await;
    if half_close {
        let _ = conn.shutdown().await;
    }
    let mut got = Vec::new();
    let closed = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (got, closed)
}

/// The status of an HTTP/1.1 response's first line, if there is one.
fn http_status(bytes: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().next()?;
    let mut parts = line.split_whitespace();
    parts
        .next()
        .filter(|v| v.starts_with("HTTP/1"))
        .and(parts.next())
        .and_then(|s| s.parse().ok())
}

async fn still_serves(stack: &mut SplitStack, api: &Api, after: &str) {
    assert!(
        stack.is_running(Daemon::Server),
        "the server died after {after}:\n{}",
        stack.log(Daemon::Server)
    );
    let a = api.get("/api/v0/network/default").await;
    assert_eq!(a.status, Some(200), "after {after}: {a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_on_the_servers_port() {
    let _serial = serial().await;
    let mut stack = stack();
    stack.configure(Daemon::Server, "header-read-timeout", json!(2));
    start(&mut stack, &[Daemon::Storage, Daemon::Server]).await;
    let api = Api::new(&stack);
    let port = stack.port;
    let mut noise = vec![0u8; 64 * 1024];
    for (i, b) in noise.iter_mut().enumerate() {
        *b = (i * 7919 % 251) as u8;
    }
    let long_header = format!(
        "GET /api/v0/networks HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n\r\n",
        "a".repeat(500_000)
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("binary noise", noise),
        ("a line of text", b"HELLO THERE\r\n\r\n".to_vec()),
        ("a TLS hello on the plain port", vec![0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]),
        ("a request line with no version", b"GET /api/v0/networks\r\n\r\n".to_vec()),
        ("a bad method", b"G\x01T /api/v0/networks HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("a header without a colon", b"GET /api/v0/networks HTTP/1.1\r\nHost x\r\n\r\n".to_vec()),
        ("a 500 kB header", long_header.into_bytes()),
        ("a bad content length", b"PUT /api/v0/network/n HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}".to_vec()),
        ("a bad chunk", b"PUT /api/v0/network/n HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n".to_vec()),
    ];
    for (what, bytes) in &cases {
        let t0 = Instant::now();
        let (got, closed) = raw(port, bytes, false, Duration::from_secs(10)).await;
        assert!(
            closed,
            "{what}: the server neither answered nor closed within 10 s"
        );
        if let Some(status) = http_status(&got) {
            assert!(
                (400..500).contains(&status),
                "{what}: {status}: {}",
                String::from_utf8_lossy(&got)
            );
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{what}");
        still_serves(&mut stack, &api, what).await;
    }
    // Truncated requests: the client goes away mid-request.
    let auth = "Authorization: Basic YTph\r\n";
    let truncated: Vec<(&str, String)> = vec![
        ("half a request line", "PUT /api/v0/clu".to_string()),
        (
            "an HTTP/2 preface and half a frame",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00".to_string(),
        ),
        (
            "headers without their end",
            format!("PUT /api/v0/cluster/t HTTP/1.1\r\nHost: x\r\n{auth}Content-Le"),
        ),
        (
            "a body shorter than its length",
            format!(
                "PUT /api/v0/cluster/t HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"netw"
            ),
        ),
    ];
    for (what, text) in &truncated {
        let (got, closed) = raw(port, text.as_bytes(), true, Duration::from_secs(10)).await;
        assert!(closed, "{what}: not closed within 10 s");
        if let Some(status) = http_status(&got) {
            assert!((400..500).contains(&status), "{what}: {status}");
        }
        still_serves(&mut stack, &api, what).await;
    }
    // Truncated requests on connections left open: closed once the header
    // read timeout (2 s here) passes, not held for ever.
    // (Not an incomplete HTTP/2 handshake: hyper has no handshake timeout.)
    for (what, text) in truncated.iter().filter(|(w, _)| !w.contains("HTTP/2")) {
        let t0 = Instant::now();
        let (got, closed) = raw(port, text.as_bytes(), false, Duration::from_secs(8)).await;
        assert!(
            closed,
            "{what} on an open connection: not closed within 8 s"
        );
        assert!(
            t0.elapsed() >= Duration::from_secs(1),
            "{what}: closed at once?"
        );
        if what.contains("body") {
            // The head was complete: the request is answered, with a JSON error.
            let text = String::from_utf8_lossy(&got);
            assert_eq!(http_status(&got), Some(400), "{what}: {text}");
            assert!(text.contains("\"error\""), "{what}: {text}");
        }
        if let Some(status) = http_status(&got) {
            assert!((400..500).contains(&status), "{what}: {status}");
        }
    }
    still_serves(&mut stack, &api, "truncated requests left open").await;
    // Nothing was created by the truncated PUTs.
    assert_eq!(api.get("/api/v0/cluster/t").await.status, Some(404));
    // Many connections that send nothing and go away.
    let idle: Vec<_> = (0..200)
        .map(|_| tokio::spawn(tokio::net::TcpStream::connect(("127.0.0.1", port))))
        .collect();
    for c in idle {
        drop(c.await.unwrap());
    }
    still_serves(&mut stack, &api, "200 idle connections").await;
    // A well-formed request on a connection after garbage still works.
    let (got, _) = raw(
        port,
        format!("GET /api/v0/networks HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
        false,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        http_status(&got),
        Some(200),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_request_bodies_get_4xx() {
    let _serial = serial().await;
    let mut stack = stack();
    start(&mut stack, &[Daemon::Storage, Daemon::Server]).await;
    let api = Api::unpooled(&stack);
    api.put_expect("/api/v0/cluster/kix", json!({}), 201).await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let huge = format!("{{\"network\": \"{}\"}}", "n".repeat(2 * 1024 * 1024));
    let bodies: Vec<String> = vec![
        "{".into(),
        "}".into(),
        "[]".into(),
        "null".into(),
        "\"a string\"".into(),
        "5".into(),
        "1e999".into(),
        "{\"network\": {}}".into(),
        "{\"network\": [1, 2]}".into(),
        "{\"network\": 1e400}".into(),
        "{\"container_manager\": true}".into(),
        "{\"ssh_priv_key\": 5}".into(),
        "{\"ssh_priv_key\": \"not base64!\"}".into(),
        "{\"ssh_priv_key\": \"\", \"remote_user\": \"a b\"}".into(),
        "{\"type\": \"nope\"}".into(),
        "{\"type\": \"kubernetes\", \"options\": 5}".into(),
        "{\"old\": 5, \"new\": \"x\"}".into(),
        "{\"old\": [], \"new\": [{}]}".into(),
        "{\"batch_size\": -1}".into(),
        "{\"max_failures\": \"x\"}".into(),
        "{\"version\": {\"a\": 1}}".into(),
        "\u{0}\u{1}\u{2}".into(),
        deep,
        huge,
    ];
    let paths = [
        "/api/v0/cluster/kix",
        "/api/v0/cluster/new1",
        "/api/v0/cluster/kix/hosts",
        "/api/v0/cluster/kix/restart",
        "/api/v0/cluster/kix/upgrade",
        "/api/v0/cluster/kix/deploy",
        "/api/v0/host/10.5.0.1",
        "/api/v0/host",
        "/api/v0/network/n1",
        "/api/v0/containermanager/cm1",
    ];
    let mut seen = std::collections::BTreeMap::new();
    for path in paths {
        for body in &bodies {
            let a = api.send("PUT", path, Some(body.clone())).await;
            let status = a
                .status
                .unwrap_or_else(|| panic!("PUT {path}: no answer: {a:?}"));
            let shown: String = body.chars().take(60).collect();
            // 201 only where the garbage is a valid (ignored) member, e.g. an
            // operation's unknown options: then it must be a real record.
            assert!(
                (400..500).contains(&status) || status == 201,
                "PUT {path} {shown:?}: {status} {}",
                a.text
            );
            if status == 201 {
                assert!(a.body.is_object(), "PUT {path} {shown:?}: {}", a.text);
                // Clean up, so the next body meets the same state.
                if path.ends_with("restart")
                    || path.ends_with("upgrade")
                    || path.ends_with("deploy")
                {
                    let _ = api.delete(path).await;
                }
            } else if status != 413 {
                assert!(
                    a.body["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "PUT {path} {shown:?}: {status} without a JSON error: {}",
                    a.text
                );
            }
            *seen.entry(status).or_insert(0) += 1;
        }
    }
    // Bad paths and methods.
    for (method, path) in [
        ("GET", "/api/v0/host/..%2F..%2Fetc%2Fpasswd"),
        ("GET", "/api/v0/host/a%00b"),
        ("PUT", "/api/v0/cluster/%ff%fe"),
        ("GET", "/api/v0/cluster/a b"),
        ("POST", "/api/v0/clusters"),
        ("PATCH", "/api/v0/cluster/kix"),
        ("GET", "/api/v0/nothing/here"),
        ("DELETE", "/api/v0/networks"),
    ] {
        let a = api.send(method, path, None).await;
        let status = a.status.unwrap_or(0);
        assert!((400..500).contains(&status), "{method} {path}: {a:?}");
        *seen.entry(status).or_insert(0) += 1;
    }
    still_serves(&mut stack, &api, "garbage bodies").await;
    // The cluster is unchanged by all of it.
    let kix = api.get_ok("/api/v0/cluster/kix").await;
    assert_eq!(kix["network"], "default");
    assert_eq!(kix["container_manager"], "");
    println!("garbage bodies: statuses {seen:?}");
}

/// Garbage bodies for the bus, each published with a reply address and
/// without one.
fn bus_garbage(method: &str) -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\x00\xff\xfe garbage".to_vec(),
        b"not json".to_vec(),
        b"{".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"{}".to_vec(),
        b"5".to_vec(),
        br#"{"jsonrpc": "2.0"}"#.to_vec(),
        format!("{}{}", "[".repeat(50_000), "]".repeat(50_000)).into_bytes(),
        format!(
            "{{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"{method}\", \"params\": \"{}\"}}",
            "x".repeat(4 * 1024 * 1024)
        )
        .into_bytes(),
    ];
    for v in [
        json!({"jsonrpc": "1.0", "id": 1, "method": method, "params": {}}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "other", "params": {}}),
        json!({"jsonrpc": "2.0", "id": {"a": [1]}, "method": method, "params": 5}),
        json!({"jsonrpc": "2.0", "id": 1, "method": 7, "params": {}}),
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": "string"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": method}),
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}}),
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}),
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": [null, 5, {"x": []}]}),
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"model_type_name": "Nope", "model_json_data": {}}}),
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"model_type_name": "Host", "model_json_data": "x"}}),
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"model_type_name": "Host", "model_json_data": {"address": 5, "status": "nope"}}}),
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"model_type_name": "Cluster", "model_json_data": {"name": "", "hostset": "x"}}}),
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"address": 5, "cluster_data": "x", "name": ["x"]}}),
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"name": {"a": 1}}}),
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": [5, 6, "x"]}),
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"container_manager": 5, "address": null}}),
    ] {
        bodies.push(serde_json::to_vec(&v).unwrap());
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_on_the_bus_leaves_every_daemon_serving() {
    let _serial = serial().await;
    let mut stack = stack();
    let daemons = [
        Daemon::Storage,
        Daemon::Server,
        Daemon::Investigator,
        Daemon::ClusterExec,
        Daemon::ContainerMgr,
    ];
    stack.configure(Daemon::Investigator, "playbook_dir", json!(playbook_dir()));
    stack.configure(Daemon::ClusterExec, "playbook_dir", json!(playbook_dir()));
    start(&mut stack, &daemons).await;
    let pids: Vec<_> = daemons.iter().map(|d| (*d, stack.pid(*d))).collect();
    let api = Api::new(&stack);
    let bus = bus(&stack).await;
    api.put_expect(
        "/api/v0/containermanager/triv",
        json!({"type": "trivial"}),
        201,
    )
    .await;
    api.put_expect("/api/v0/cluster/kept", json!({}), 201).await;

    let keys: Vec<String> = [
        "storage.save",
        "storage.get",
        "storage.expand",
        "storage.delete",
        "storage.list",
        "storage.swap",
        "storage.list_store_handlers",
        "storage.nope",
        "jobs.investigate",
        "jobs.clusterexec.restart",
        "jobs.clusterexec.upgrade",
        "jobs.clusterexec.deploy",
        "jobs.clusterexec.nope",
        "container.register_node",
        "container.node_registered",
        "container.get_node_status",
        "container.remove_node",
        "container.cordon",
        "container.uncordon",
        "container.drain",
        "container.nope",
    ]
    .map(str::to_string)
    .to_vec();
    let mut replies = 0;
    for key in &keys {
        let method = key.rsplit('.').next().unwrap();
        for body in bus_garbage(method) {
            bus.publish_raw(key, body.clone())
                .await
                .unwrap_or_else(|e| panic!("publish to {key}: {e}"));
            // With a reply address: a JSON-RPC error comes back.
            match bus
                .call_raw(key, body.clone(), Duration::from_secs(10))
                .await
            {
                Ok(reply) => {
                    let reply: Response = serde_json::from_slice(&reply).unwrap_or_else(|e| {
                        panic!(
                            "{key}: the reply is not JSON-RPC ({e}): {}",
                            String::from_utf8_lossy(&reply)
                        )
                    });
                    let shown: String = String::from_utf8_lossy(&body).chars().take(80).collect();
                    let Some(error) = reply.error else {
                        // Listing ignores what it does not need: a valid call.
                        assert!(
                            key == "storage.list" || key == "storage.list_store_handlers",
                            "{key} {shown:?}: garbage succeeded: {:?}",
                            reply.result
                        );
                        continue;
                    };
                    assert!(
                        error.code != codes::INTERNAL_ERROR,
                        "{key} {shown:?}: an internal error for bad input: {error:?}"
                    );
                    replies += 1;
                }
                Err(e) => panic!("{key}: no reply to garbage: {e}"),
            }
        }
    }
    // Every daemon still runs (the same process) and answers a valid request.
    for (daemon, pid) in &pids {
        assert_eq!(
            stack.pid(*daemon),
            *pid,
            "{daemon:?} died:\n{}",
            stack.log(*daemon)
        );
    }
    let t = Duration::from_secs(10);
    let network = bus
        .request(
            "storage.get",
            json!({"model_type_name": "Network", "model_json_data": {"name": "default"}}),
            t,
        )
        .await
        .expect("storage answers");
    assert_eq!(network["name"], "default");
    let err = bus
        .request("jobs.investigate", json!({"address": "10.4.0.1"}), t)
        .await
        .expect_err("no such host");
    assert_eq!(
        err.rpc().map(|e| e.code),
        Some(codes::STORAGE_LOOKUP_ERROR),
        "the investigator looked the host up: {err}"
    );
    let started = bus
        .request("jobs.clusterexec.upgrade", json!({"name": "kept"}), t)
        .await
        .expect("clusterexec answers");
    assert_eq!(started["state"], "not_claimed", "{started}");
    let state = bus
        .request("container.node_registered", json!(["triv", "10.4.0.2"]), t)
        .await
        .expect("containermgr answers");
    assert_eq!(state, json!({"registered": false, "ready": false}));
    still_serves(&mut stack, &api, "garbage on the bus").await;
    // Nothing the garbage named was stored.
    let hosts = api.get_ok("/api/v0/hosts").await;
    assert_eq!(hosts, json!([]), "{hosts}");
    let clusters = api.get_ok("/api/v0/clusters").await;
    assert_eq!(clusters, json!(["kept"]));
    println!("bus garbage: {replies} error replies, every daemon alive");
}
