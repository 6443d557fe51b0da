//! Access to the testbed that `scripts/testbed.sh up` starts (and
//! `scripts/test.sh` exports): real etcd, RabbitMQ, Redis and sshd hosts.
//!
//! Tests that need a service call these helpers, which panic with a clear
//! message when the testbed is not running, instead of silently passing.

pub mod daemons;
pub mod kube;
pub mod kube_api;
pub mod prometheus;

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

/// Runs `scripts/testbed.sh SUBCOMMAND STATE ARGS...` on the running test
/// bed (`COMMISSAIRE_TEST_TESTBED`, `COMMISSAIRE_TEST_STATE`) and returns its
/// standard output; panics when it fails.
pub fn testbed(subcommand: &str, args: &[&str]) -> String {
    let output = Command::new(var("COMMISSAIRE_TEST_TESTBED"))
        .arg(subcommand)
        .arg(var("COMMISSAIRE_TEST_STATE"))
        .args(args)
        .output()
        .expect("run testbed.sh");
    assert!(
        output.status.success(),
        "testbed.sh {subcommand} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Stops the test bed's etcd (by PID; its data is kept). Every test using
/// etcd fails meanwhile: only tests that serialise themselves may call it.
pub fn etcd_stop() {
    testbed("etcd-stop", &[]);
}

/// Starts the test bed's etcd again (same data and ports) and waits until it is healthy.
pub fn etcd_start() {
    testbed("etcd-start", &[]);
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

/// The files under `dir` (recursively) that hold an SSH session's key or
/// known_hosts copy (`key-*`, `known-*`, as the session pool names them):
/// none may outlive the login of a master.
pub fn session_secret_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if e.path().is_dir() {
                dirs.push(e.path());
            } else if name.starts_with("key-") || name.starts_with("known-") {
                found.push(e.path());
            }
        }
    }
    found
}

/// An sshd of a test's own on a loopback address (e.g. `127.0.0.31`),
/// accepting the testbed's key ([`ssh_key`]): a "host" the test may stop and
/// start without disturbing other tests. Stopped when dropped.
pub struct TestSshd {
    /// The address it listens on (port 22).
    pub address: String,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl TestSshd {
    /// Starts an sshd on `address`:22 and waits until it accepts connections.
    pub fn start(address: &str) -> TestSshd {
        let dir = std::env::temp_dir().join(format!(
            "commissaire-sshd-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.join("hostkey"))
            .status()
            .expect("run ssh-keygen");
        assert!(status.success());
        let public = std::fs::read_to_string(format!("{}.pub", ssh_key()))
            .expect("the testbed's public key");
        std::fs::write(dir.join("authorized_keys"), public).unwrap();
        let config = format!(
            "ListenAddress {address}:22\nHostKey {d}/hostkey\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\nStrictModes no\n\
             MaxStartups 100:30:200\nSubsystem sftp internal-sftp\nSetEnv HOME={d}/home\n",
            d = dir.display()
        );
        // An empty home, as a plain host's root has (see scripts/testbed.sh).
        std::fs::create_dir_all(dir.join("home")).unwrap();
        std::fs::write(dir.join("sshd_config"), config).unwrap();
        let mut sshd = TestSshd {
            address: address.to_string(),
            dir,
            child: None,
        };
        sshd.resume();
        sshd
    }

    /// Its public host key (`ssh-ed25519 AAAA...`).
    pub fn host_key(&self) -> String {
        let line = std::fs::read_to_string(self.dir.join("hostkey.pub")).expect("host key");
        line.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Its host key's fingerprint as `ssh-keygen -l` prints it
    /// (`SHA256:...`).
    pub fn fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.join("hostkey.pub"))
            .output()
            .expect("run ssh-keygen");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .expect("a fingerprint")
            .to_string()
    }

    /// Gives it a new host key (as a reinstalled host has): stops it, makes
    /// the key, starts it again.
    pub fn new_host_key(&mut self) {
        self.stop();
        for f in ["hostkey", "hostkey.pub"] {
            let _ = std::fs::remove_file(self.dir.join(f));
        }
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(self.dir.join("hostkey"))
            .status()
            .expect("run ssh-keygen");
        assert!(status.success());
        self.resume();
    }

    /// Starts it again after [`TestSshd::stop`].
    pub fn resume(&mut self) {
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-f"])
            .arg(self.dir.join("sshd_config"))
            .arg("-E")
            .arg(self.dir.join("sshd.log"))
            .spawn()
            .expect("start sshd");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect((self.address.as_str(), 22)).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("sshd on {} did not start", self.address);
    }

    /// Stops it (the listener; connections already open end too).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("pkill")
                .args(["-P", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
