//! The README's first command, safe by default: served on an address other
//! hosts can reach, a users file that lets the development user (`a`/`a`,
//! `conf/users.json`) in is warned about at start; on the loopback address,
//! or with other users, it is not.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const WARNING: &str = "the development user (a, password a) is let in";

fn repo_users_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conf/users.json")
}

/// Starts the all-in-one on `interface` with `users`, logging at debug to a
/// file; waits until its development-user check has said what it found and
/// returns the log.
fn start_and_read_log(dir: &Path, interface: &str, users: &Path) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = dir.join(format!("{interface}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_commissaire"))
        .arg("--no-config-file")
        .args(["--listen-interface", interface])
        .args(["--listen-port", &port.to_string()])
        .arg("--data-dir")
        .arg(dir.join(format!("data-{interface}")))
        .arg("--authentication-plugin")
        .arg(format!("httpbasicauth:filepath={}", users.display()))
        .env("RUST_LOG", "commissaire_http::dev_user=debug,info")
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("development user check") || text.contains(WARNING) {
            break text;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("the development-user check never logged:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    text
}

#[test]
fn the_development_user_on_a_reachable_address_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let log = start_and_read_log(dir.path(), "0.0.0.0", &repo_users_file());
    assert!(log.contains(WARNING), "{log}");
    assert!(log.contains("WARN"), "{log}");
    assert!(!log.contains("password\":"), "no secret in the log: {log}");
}

#[test]
fn the_loopback_address_or_other_users_are_not_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let log = start_and_read_log(dir.path(), "127.0.0.1", &repo_users_file());
    assert!(
        log.contains("development user check: a loopback address"),
        "{log}"
    );
    assert!(!log.contains(WARNING), "{log}");

    let users = dir.path().join("users.json");
    let hash = bcrypt::hash("a long password", 4).unwrap();
    std::fs::write(&users, serde_json::json!({"a": {"hash": hash}}).to_string()).unwrap();
    let log = start_and_read_log(dir.path(), "0.0.0.0", &users);
    assert!(log.contains("development user check: not let in"), "{log}");
    assert!(!log.contains(WARNING), "{log}");
}
