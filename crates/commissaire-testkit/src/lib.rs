//! Access to the testbed that `scripts/testbed.sh up` starts (and
//! `scripts/test.sh` exports): real etcd, RabbitMQ, Redis and sshd hosts.
//!
//! Tests that need a service call these helpers, which panic with a clear
//! message when the testbed is not running, instead of silently passing.

use std::process::Command;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test.sh, which starts the testbed (etcd, RabbitMQ, Redis, sshd hosts)")
    })
}

/// `host:port` of the test etcd.
pub fn etcd_endpoint() -> String {
    var("COMMISSAIRE_TEST_ETCD")
}

/// A fresh etcd key prefix, so that tests do not see each other's records.
pub fn etcd_prefix() -> String {
    format!("/commissaire-test-{}/", uuid::Uuid::new_v4().simple())
}

/// The AMQP URI of the test broker's default vhost.
pub fn amqp_uri() -> String {
    var("COMMISSAIRE_TEST_AMQP")
}

/// Runs `rabbitmqctl ARGS` against the test broker.
pub fn rabbitmqctl(args: &[&str]) -> String {
    let prefix = var("COMMISSAIRE_TEST_RABBITMQCTL");
    let mut parts = prefix.split_whitespace();
    let program = parts.next().expect("COMMISSAIRE_TEST_RABBITMQCTL is empty");
    let output = Command::new(program)
        .args(parts)
        .args(args)
        .output()
        .expect("run rabbitmqctl");
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Creates a fresh vhost on the test broker and returns its AMQP URI, so a
/// test's queues and exchanges are its own.
pub fn fresh_vhost() -> String {
    let vhost = format!("test-{}", uuid::Uuid::new_v4().simple());
    rabbitmqctl(&["add_vhost", &vhost]);
    rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
    let base = amqp_uri();
    let root = base.rsplit_once('/').map(|(r, _)| r).unwrap_or(&base);
    format!("{root}/{vhost}")
}

/// The Redis URI of the test server.
pub fn redis_uri() -> String {
    var("COMMISSAIRE_TEST_REDIS")
}

/// Addresses of the sshd test hosts.
pub fn ssh_hosts() -> Vec<String> {
    var("COMMISSAIRE_TEST_SSH_HOSTS")
        .split(',')
        .map(str::to_string)
        .collect()
}

/// Path of the private key the sshd test hosts accept.
pub fn ssh_key() -> String {
    var("COMMISSAIRE_TEST_SSH_KEY")
}
