//! Fact gathering over SSH against the testbed hosts.

mod common;

use std::time::{Duration, Instant};

use commissaire_ansible::{AnsibleError, Target, gather_facts_in};
use common::*;

#[tokio::test]
async fn facts_of_a_host() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let facts = gather_facts_in(&target(&host(1)), Duration::from_secs(30), tmp.path())
        .await
        .unwrap();
    eprintln!("facts of {}: {facts:?} in {:?}", host(1), t0.elapsed());
    // The testbed hosts are this Debian 12 machine.
    assert_eq!(facts.os, "debian");
    assert!(facts.cpus >= 1);
    assert!(facts.memory > 0 && facts.space > 0);
    let meminfo = read("/proc/meminfo");
    let local_kb: i64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(facts.memory, local_kb);
    assert_empty(tmp.path());
}

#[tokio::test]
async fn facts_of_an_address_without_sshd() {
    let tmp = tempfile::tempdir().unwrap();
    let e = gather_facts_in(&target("127.0.0.99"), Duration::from_secs(30), tmp.path())
        .await
        .unwrap_err();
    match &e {
        AnsibleError::Unreachable { address, msg } => {
            assert_eq!(address, "127.0.0.99");
            assert!(msg.contains("refused"), "{msg}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_empty(tmp.path());
}

#[tokio::test]
async fn facts_with_a_key_the_host_does_not_accept() {
    let tmp = tempfile::tempdir().unwrap();
    let keydir = tempfile::tempdir().unwrap();
    let t = Target::with_private_key(host(2), "root", &foreign_key(keydir.path()));
    let e = gather_facts_in(&t, Duration::from_secs(30), tmp.path())
        .await
        .unwrap_err();
    match &e {
        AnsibleError::Unreachable { msg, .. } => {
            assert!(msg.contains("Permission denied"), "{msg}")
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    // The message names neither the key nor its base64 text.
    assert!(!format!("{e} {e:?}").contains(&t.ssh_priv_key_b64));
    assert_empty(tmp.path());
}

#[tokio::test]
async fn facts_with_invalid_base64_key() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Target::new(host(2), "root", "this is not base64!");
    let e = gather_facts_in(&t, Duration::from_secs(30), tmp.path())
        .await
        .unwrap_err();
    assert!(matches!(e, AnsibleError::KeyFile { .. }), "{e:?}");
    assert_empty(tmp.path());
}

#[tokio::test]
async fn facts_timeout_removes_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let e = gather_facts_in(&target(&host(3)), Duration::from_millis(50), tmp.path())
        .await
        .unwrap_err();
    assert!(matches!(e, AnsibleError::Timeout { .. }), "{e:?}");
    assert_empty(tmp.path());
}
