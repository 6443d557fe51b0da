//! The session pool against real sshd hosts (a test's own `TestSshd` on
//! 127.0.0.5x, accepting the test bed's key).

use std::time::Duration;

use commissaire_ssh::{Credentials, HostKey, PoolConfig, SessionPool, SshError};
use commissaire_testkit::{self as testkit, TestSshd};

const T: Duration = Duration::from_secs(20);

fn creds(address: &str) -> Credentials {
    Credentials {
        address: address.to_string(),
        user: "root".into(),
        key: std::fs::read(testkit::ssh_key()).expect("the test bed's key"),
    }
}

fn pool(config: PoolConfig) -> (SessionPool, tempfile::TempDir) {
    let parent = tempfile::tempdir().unwrap();
    (SessionPool::new(parent.path(), config).unwrap(), parent)
}

#[tokio::test]
async fn commands_share_one_master_and_the_first_host_key_is_recorded() {
    let sshd = TestSshd::start("127.0.0.51");
    let (pool, _parent) = pool(PoolConfig::default());
    let c = creds(&sshd.address);
    let (out, key) = pool
        .run(&c, &HostKey::FirstContact, "echo hi", T)
        .await
        .unwrap();
    assert_eq!((out.status, out.stdout.as_slice()), (Some(0), &b"hi\n"[..]));
    let shown = sshd.host_key();
    assert!(
        key.contains(&shown),
        "recorded {key:?}, the host has {shown:?}"
    );
    let pinned = HostKey::Pinned(key);
    let runs = (0..8).map(|i| {
        let (pool, c, pinned) = (&pool, &c, &pinned);
        async move { pool.run(c, pinned, &format!("exit {}", i % 3), T).await }
    });
    let codes: Vec<_> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(|r| r.unwrap().0.status)
        .collect();
    assert_eq!(codes, [0, 1, 2, 0, 1, 2, 0, 1].map(Some));
    assert_eq!(
        pool.connections_opened(),
        1,
        "the first contact's master serves the callers that pinned its key"
    );
    assert_eq!(pool.open_sessions().await, 1);
    assert!(
        testkit::session_secret_files(pool.dir()).is_empty(),
        "{:?}",
        testkit::session_secret_files(pool.dir())
    );
    pool.close_all().await;
    assert_eq!(pool.open_sessions().await, 0);
}

#[tokio::test]
async fn the_session_is_opened_again_after_the_host_restarts() {
    let mut sshd = TestSshd::start("127.0.0.52");
    let (pool, _parent) = pool(PoolConfig::default());
    let c = creds(&sshd.address);
    let (_, key) = pool
        .run(&c, &HostKey::FirstContact, "true", T)
        .await
        .unwrap();
    let pinned = HostKey::Pinned(key);
    pool.run(&c, &pinned, "true", T).await.unwrap();
    let before = pool.connections_opened();
    sshd.stop();
    let down = pool.run(&c, &pinned, "true", T).await.unwrap_err();
    assert!(matches!(down, SshError::Unreachable { .. }), "{down}");
    sshd.resume();
    let (out, _) = pool.run(&c, &pinned, "echo back", T).await.unwrap();
    assert_eq!(out.stdout, b"back\n");
    assert!(pool.connections_opened() > before);
}

#[tokio::test]
async fn a_changed_host_key_is_refused_until_the_new_one_is_accepted() {
    let mut sshd = TestSshd::start("127.0.0.53");
    let (pool, _parent) = pool(PoolConfig::default());
    let c = creds(&sshd.address);
    let (_, first) = pool
        .run(&c, &HostKey::FirstContact, "true", T)
        .await
        .unwrap();
    pool.close_all().await;
    sshd.new_host_key();
    let refused = pool
        .run(&c, &HostKey::Pinned(first.clone()), "true", T)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, SshError::HostKeyChanged { .. }),
        "{refused}"
    );
    assert!(
        refused
            .to_string()
            .contains("host key of 127.0.0.53 changed"),
        "{refused}"
    );
    // Accepting the new key: a first contact again, which records it.
    let (_, second) = pool
        .run(&c, &HostKey::FirstContact, "true", T)
        .await
        .unwrap();
    assert_ne!(first, second);
    assert!(second.contains(&sshd.host_key()));
    pool.run(&c, &HostKey::Pinned(second), "true", T)
        .await
        .unwrap();
    assert!(
        testkit::session_secret_files(pool.dir()).is_empty(),
        "{:?}",
        testkit::session_secret_files(pool.dir())
    );
}

#[tokio::test]
async fn a_refused_key_an_unreachable_host_and_a_slow_command_are_distinct() {
    let sshd = TestSshd::start("127.0.0.54");
    let (pool, parent) = pool(PoolConfig {
        connect_timeout: Duration::from_secs(3),
        ..PoolConfig::default()
    });
    // A key the host does not know.
    let other = parent.path().join("other");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(made.success());
    let wrong = Credentials {
        key: std::fs::read(&other).unwrap(),
        ..creds(&sshd.address)
    };
    let e = pool
        .run(&wrong, &HostKey::FirstContact, "true", T)
        .await
        .unwrap_err();
    assert!(matches!(e, SshError::KeyRefused { .. }), "{e}");
    // Nothing listens on .59.
    let e = pool
        .run(&creds("127.0.0.59"), &HostKey::FirstContact, "true", T)
        .await
        .unwrap_err();
    assert!(matches!(e, SshError::Unreachable { .. }), "{e}");
    let e = pool
        .run(
            &creds(&sshd.address),
            &HostKey::FirstContact,
            "sleep 30",
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, SshError::Timeout { .. }), "{e}");
    assert!(
        testkit::session_secret_files(pool.dir()).is_empty(),
        "{:?}",
        testkit::session_secret_files(pool.dir())
    );
}

#[tokio::test]
async fn the_pool_is_bounded_and_idle_sessions_close() {
    let a = TestSshd::start("127.0.0.55");
    let b = TestSshd::start("127.0.0.56");
    let (pool, _parent) = pool(PoolConfig {
        max_sessions: 1,
        idle: Duration::from_millis(300),
        ..PoolConfig::default()
    });
    pool.run(&creds(&a.address), &HostKey::FirstContact, "true", T)
        .await
        .unwrap();
    pool.run(&creds(&b.address), &HostKey::FirstContact, "true", T)
        .await
        .unwrap();
    assert_eq!(pool.open_sessions().await, 1, "at most max_sessions");
    assert_eq!(pool.close_idle().await, 0, "just used");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(pool.close_idle().await, 1);
    assert_eq!(pool.open_sessions().await, 0);
}

#[tokio::test]
async fn a_dead_process_s_pool_directory_and_master_are_swept() {
    let parent = tempfile::tempdir().unwrap();
    // A pid that cannot be alive (above the kernel's pid_max).
    let stale = parent.path().join("commissaire-ssh-4999999-abc");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("key-0"), "secret").unwrap();
    // A master the dead process left running (killed with -9, it could
    // not close it).
    let sshd = TestSshd::start("127.0.0.50");
    let socket = stale.join("master");
    let started = std::process::Command::new("ssh")
        .args(["-F", "/dev/null", "-i", &testkit::ssh_key()])
        .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "LogLevel=ERROR", "-M", "-f", "-N", "-S"])
        .arg(&socket)
        .arg(format!("root@{}", sshd.address))
        .status()
        .unwrap();
    assert!(started.success());
    let master_alive = || {
        std::process::Command::new("pgrep")
            .args(["-f", &socket.display().to_string()])
            .status()
            .unwrap()
            .success()
    };
    assert!(master_alive());
    let _pool = SessionPool::new(parent.path(), PoolConfig::default()).unwrap();
    assert!(!stale.exists(), "the dead process's key file is gone");
    for _ in 0..50 {
        if !master_alive() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the dead process's master still runs");
}

#[tokio::test]
async fn a_leased_session_serves_other_programs_and_outlives_the_pool_s_closing() {
    let sshd = TestSshd::start("127.0.0.57");
    let (pool, _parent) = pool(PoolConfig {
        idle: Duration::from_millis(1),
        ..PoolConfig::default()
    });
    let c = creds(&sshd.address);
    let lease = pool.lease(&c, &HostKey::FirstContact).await.unwrap();
    assert!(lease.host_key().contains(&sshd.host_key()));
    let socket = lease.control_socket().to_path_buf();
    // Another program (as Ansible does) multiplexes over the master: no
    // key, no login of its own.
    let through_master = || {
        std::process::Command::new("ssh")
            .args(["-o", "ControlMaster=no", "-o", "BatchMode=yes", "-S"])
            .arg(&socket)
            .args(["-l", "root", &sshd.address, "echo", "multiplexed"])
            .output()
            .unwrap()
    };
    // Longer than the pool's idle time, with no command run yet: the
    // master is still there (its ControlPersist outlasts the pool's idle).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let out = through_master();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"multiplexed\n");
    // The pool lets go of it (idle), the lease still holds it.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(pool.close_idle().await, 1);
    assert!(through_master().status.success());
    drop(lease);
    assert!(!socket.exists(), "the master is gone with its last user");
    assert!(
        testkit::session_secret_files(pool.dir()).is_empty(),
        "{:?}",
        testkit::session_secret_files(pool.dir())
    );
}
