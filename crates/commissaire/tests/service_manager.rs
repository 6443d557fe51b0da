//! The all-in-one binary under a service manager, as systemd runs it with
//! `Type=notify`, `WatchdogSec=` and `ExecReload=kill -HUP`: the test
//! plays systemd's side of the protocol (a `$NOTIFY_SOCKET` datagram
//! socket, `$WATCHDOG_USEC`, the signals). Nothing else is needed: the
//! all-in-one runs every daemon in its process on an embedded store.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

/// systemd's end: what the process sends to `$NOTIFY_SOCKET`.
struct Manager {
    socket: UnixDatagram,
    seen: Vec<String>,
}

impl Manager {
    fn bind(path: &Path) -> Manager {
        let socket = UnixDatagram::bind(path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Manager {
            socket,
            seen: Vec::new(),
        }
    }

    /// Waits up to `within` for a message holding `line`; returns it.
    fn expect(&mut self, line: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).to_string();
                self.seen.push(message.clone());
                if message.lines().any(|l| l == line) {
                    return message;
                }
            }
        }
        panic!("no {line} within {within:?}; got {:?}", self.seen);
    }

    /// How many messages holding `line` arrive within `during`.
    fn count(&mut self, line: &str, during: Duration) -> usize {
        let deadline = Instant::now() + during;
        let mut buf = [0u8; 4096];
        let mut n_seen = 0;
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).to_string();
                n_seen += message.lines().filter(|l| *l == line).count();
                self.seen.push(message);
            }
        }
        n_seen
    }
}

fn users(path: &Path, users: &[&str]) {
    let hash = bcrypt::hash("pw", 4).unwrap();
    let doc: serde_json::Map<_, _> = users
        .iter()
        .map(|u| (u.to_string(), json!({"hash": hash})))
        .collect();
    std::fs::write(path, serde_json::Value::Object(doc).to_string()).unwrap();
}

fn status_as(base: &str, user: &str, path: &str) -> u16 {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(["-u", &format!("{user}:pw")])
        .arg(format!("{base}{path}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

fn kill(pid: u32, signal: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal} {pid}");
}

#[test]
fn it_notifies_ready_pings_the_watchdog_reloads_users_on_sighup_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let users_file = dir.path().join("users.json");
    users(&users_file, &["alice"]);
    let mut manager = Manager::bind(&dir.path().join("notify.sock"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = dir.path().join("commissaire.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_commissaire"))
        .arg("--no-config-file")
        .args([
            "--listen-interface",
            "127.0.0.1",
            "--listen-port",
            &port.to_string(),
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--authentication-plugin")
        .arg(format!(
            "commissaire_http.authentication.httpbasicauth:filepath={}",
            users_file.display()
        ))
        .env("NOTIFY_SOCKET", dir.path().join("notify.sock"))
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .env_remove("RUST_LOG")
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let base = format!("http://127.0.0.1:{port}");

    // READY=1 once it really serves: the API answers at once.
    manager.expect("READY=1", Duration::from_secs(60));
    assert_eq!(
        status_as(&base, "alice", "/api/v0/network/default"),
        200,
        "{}",
        log()
    );
    // The watchdog is pinged every 200 ms (half of WATCHDOG_USEC).
    let pings = manager.count("WATCHDOG=1", Duration::from_millis(1500));
    assert!(pings >= 4, "{pings} pings in 1.5 s: {:?}", manager.seen);

    // SIGHUP: the users file is read again, without a restart.
    assert_eq!(status_as(&base, "bob", "/api/v0/clusters"), 403);
    users(&users_file, &["alice", "bob"]);
    kill(child.id(), "HUP");
    let reloading = manager.expect("RELOADING=1", Duration::from_secs(10));
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    manager.expect("READY=1", Duration::from_secs(10));
    assert_eq!(
        status_as(&base, "bob", "/api/v0/clusters"),
        200,
        "{}",
        log()
    );
    assert!(
        matches!(child.try_wait(), Ok(None)),
        "SIGHUP ended the process"
    );
    let text = log();
    assert!(
        text.contains("reload: authentication changed")
            && text.contains("httpbasicauth: 1 users")
            && text.contains("httpbasicauth: 2 users"),
        "{text}"
    );
    // A users file that does not load changes nothing.
    std::fs::write(&users_file, "{not json").unwrap();
    kill(child.id(), "HUP");
    manager.expect("RELOADING=1", Duration::from_secs(10));
    manager.expect("READY=1", Duration::from_secs(10));
    assert_eq!(status_as(&base, "bob", "/api/v0/clusters"), 200);
    assert!(log().contains("authentication left as it was"), "{}", log());

    // SIGTERM: STOPPING=1, then exit 0.
    kill(child.id(), "TERM");
    manager.expect("STOPPING=1", Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 30 s after SIGTERM: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{}", log());
    // No colour codes in a log written to a file.
    assert!(!log().contains('\u{1b}'), "ANSI codes in the log file");
}
