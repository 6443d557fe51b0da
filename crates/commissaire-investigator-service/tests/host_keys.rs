//! Pinned host keys (trust on first use) against real sshd hosts: the key is
//! recorded at the investigation, a host showing another key later fails
//! with a reason that says so, and only the operator's explicit acceptance
//! (`PUT /host/ADDRESS/hostkey`, `commctl host accept-key`) lets it back.

mod common;

use std::sync::Arc;
use std::time::Duration;

use commissaire_host_access::HostAccess;
use commissaire_storage_client::StorageClient;
use commissaire_testkit::TestSshd;
use commissaire_watcher_service::{Watcher, WatcherConfig};
use common::{Stack, key_b64, start};
use serde_json::{Value, json};

/// A watcher checking every second, with a session pool of its own (as
/// the watcher daemon has).
fn watcher(s: &Stack, pool_dir: &std::path::Path) -> tokio::task::JoinHandle<()> {
    let config = WatcherConfig::from_config(
        json!({"interval": 1, "check_timeout": 20, "ssh": {"runtime_dir": pool_dir}})
            .as_object()
            .unwrap(),
    )
    .unwrap();
    let access = HostAccess::start(StorageClient::new(s.bus.clone()), &config.ssh).unwrap();
    tokio::spawn(Arc::new(Watcher::new(s.bus.clone(), config, access)).run())
}

async fn host_when(s: &Stack, address: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let (_, host) = s.get(&format!("/api/v0/host/{address}")).await;
        if ok(&host) {
            return host;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, host) = s.get(&format!("/api/v0/host/{address}")).await;
    panic!("{address} never {what}: {host}");
}

#[tokio::test]
async fn a_changed_host_key_fails_the_host_until_the_operator_accepts_it() {
    let mut sshd = TestSshd::start("127.0.0.37");
    let s = start().await;
    let address = sshd.address.clone();
    let (status, body) = s
        .send(
            "PUT",
            &format!("/api/v0/host/{address}"),
            json!({"ssh_priv_key": key_b64()}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let host = s.settled(&address).await;
    assert_eq!(host["status"], "disassociated", "{host}");

    // Recorded at first contact: the fingerprint ssh-keygen gives.
    let (status, key) = s.get(&format!("/api/v0/host/{address}/hostkey")).await;
    assert_eq!(status, 200, "{key}");
    assert_eq!(key["recorded"], true, "{key}");
    assert_eq!(key["fingerprints"], json!([sshd.fingerprint()]), "{key}");
    assert!(key.get("ssh_priv_key").is_none(), "{key}");
    let old_fingerprint = sshd.fingerprint();

    // The host is reinstalled: another key. The watcher refuses it.
    let pools = tempfile::tempdir().unwrap();
    let watching = watcher(&s, pools.path());
    sshd.new_host_key();
    let failed = host_when(&s, &address, "failed", |h| h["status"] == "failed").await;
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason.contains("host key") && reason.contains("changed") && reason.contains("accept-key"),
        "{reason}"
    );
    // The recorded key is still the old one.
    let (_, key) = s.get(&format!("/api/v0/host/{address}/hostkey")).await;
    assert_eq!(key["fingerprints"], json!([old_fingerprint]), "{key}");

    // Bad input is a 400 naming the field.
    let (status, body) = s
        .send(
            "PUT",
            &format!("/api/v0/host/{address}/hostkey"),
            json!({"fingerprint": "MD5:00"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("fingerprint"), "{body}");
    let (status, _) = s
        .send("PUT", "/api/v0/host/127.0.0.199/hostkey", json!({}))
        .await;
    assert_eq!(status, 404);

    // Accepting a fingerprint the host does not have keeps it failed.
    let other = "SHA256:LHDhK3oGRvkiefQnx7OOczTY5Tic/xZ6HcMOc/gmtoM";
    let (status, body) = s
        .send(
            "PUT",
            &format!("/api/v0/host/{address}/hostkey"),
            json!({"fingerprint": other}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recorded"], false, "{body}");
    let refused = host_when(&s, &address, "refused the unaccepted key", |h| {
        h["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not the accepted"))
    })
    .await;
    assert_eq!(refused["status"], "failed");

    // Accepting the key it shows (its fingerprint, read on its console):
    // recorded, and the host has its status back.
    let (status, body) = s
        .send(
            "PUT",
            &format!("/api/v0/host/{address}/hostkey"),
            json!({"fingerprint": sshd.fingerprint()}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let back = host_when(&s, &address, "came back", |h| {
        h["status"] == "disassociated"
    })
    .await;
    assert!(back.get("reason").is_none(), "{back}");
    let (_, key) = s.get(&format!("/api/v0/host/{address}/hostkey")).await;
    assert_eq!(key["fingerprints"], json!([sshd.fingerprint()]), "{key}");
    assert_eq!(key["accept_fingerprint"], "", "{key}");
    watching.abort();
    assert!(
        commissaire_testkit::session_secret_files(pools.path()).is_empty(),
        "{:?}",
        commissaire_testkit::session_secret_files(pools.path())
    );
}

#[tokio::test]
async fn a_deleted_and_created_again_host_records_its_key_anew() {
    let mut sshd = TestSshd::start("127.0.0.38");
    let s = start().await;
    let address = sshd.address.clone();
    let path = format!("/api/v0/host/{address}");
    let create = json!({"ssh_priv_key": key_b64()});
    assert_eq!(s.send("PUT", &path, create.clone()).await.0, 201);
    assert_eq!(s.settled(&address).await["status"], "disassociated");
    sshd.new_host_key();
    assert_eq!(s.send("DELETE", &path, json!({})).await.0, 200);
    assert_eq!(s.send("PUT", &path, create).await.0, 201);
    let host = s.settled(&address).await;
    assert_eq!(host["status"], "disassociated", "{host}");
    let (_, key) = s.get(&format!("{path}/hostkey")).await;
    assert_eq!(key["fingerprints"], json!([sshd.fingerprint()]), "{key}");
}
