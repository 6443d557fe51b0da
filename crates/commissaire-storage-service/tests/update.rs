//! `StorageClient::update`/`upsert`, the one read-modify-write loop, against
//! the real storage service over the in-process bus on a redb file (no
//! test bed needed).

use std::sync::Arc;

use commissaire_bus::{Bus, InProcessBus};
use commissaire_models::{Cluster, Host, HostState};
use commissaire_storage::StorageRouter;
use commissaire_storage_client::{StorageCallError, StorageClient, UpdateError};
use serde_json::json;

async fn storage() -> (StorageClient, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let router = StorageRouter::from_config(Some(&json!([{
        "type": "redb", "path": dir.path().join("store.redb"), "models": ["*"]
    }])))
    .await
    .unwrap();
    let bus: Bus = Arc::new(InProcessBus::new());
    let service = commissaire_storage::start(router, bus.clone(), 4)
        .await
        .unwrap();
    std::mem::forget(service);
    (StorageClient::new(bus), dir)
}

#[tokio::test]
async fn concurrent_updates_lose_no_change() {
    let (storage, _dir) = storage().await;
    let cluster = Cluster {
        name: "c".into(),
        ..Cluster::default()
    };
    storage.save(&cluster).await.unwrap();
    let writers = (0..20).map(|i| {
        let storage = storage.clone().with_update_attempts(100);
        tokio::spawn(async move {
            storage
                .update(json!({"name": "c"}), |c: &mut Cluster| {
                    c.hostset.push(format!("10.0.0.{i}"));
                    Ok::<_, std::convert::Infallible>(true)
                })
                .await
                .map_err(StorageCallError::from)
        })
    });
    for w in writers.collect::<Vec<_>>() {
        w.await.unwrap().unwrap();
    }
    let stored: Cluster = storage.get(json!({"name": "c"})).await.unwrap();
    assert_eq!(stored.hostset.len(), 20, "{:?}", stored.hostset);
}

#[tokio::test]
async fn a_refused_or_unneeded_change_writes_nothing() {
    let (storage, _dir) = storage().await;
    let host = Host {
        address: "10.0.0.1".into(),
        status: HostState::Active,
        ..Host::default()
    };
    storage.save(&host).await.unwrap();
    let refused = storage
        .update(json!({"address": "10.0.0.1"}), |h: &mut Host| {
            h.status = HostState::Failed;
            Err::<bool, _>("no, it is active")
        })
        .await;
    assert!(matches!(
        refused,
        Err(UpdateError::Refused("no, it is active"))
    ));
    let kept = storage
        .update(json!({"address": "10.0.0.1"}), |h: &mut Host| {
            h.status = HostState::Failed;
            Ok::<_, std::convert::Infallible>(false)
        })
        .await
        .unwrap();
    assert_eq!(kept.status, HostState::Active);
    let stored: Host = storage.get(json!({"address": "10.0.0.1"})).await.unwrap();
    assert_eq!(stored.status, HostState::Active);
}

#[tokio::test]
async fn updating_a_missing_record_is_not_found_and_upsert_creates_it() {
    let (storage, _dir) = storage().await;
    let missing = storage
        .update(json!({"address": "10.0.0.9"}), |_: &mut Host| {
            Ok::<_, std::convert::Infallible>(true)
        })
        .await;
    assert!(matches!(
        missing,
        Err(UpdateError::Storage(StorageCallError::NotFound(_)))
    ));
    let created = storage
        .upsert(json!({"address": "10.0.0.9"}), |h: Option<&Host>| {
            assert!(h.is_none());
            Ok::<_, std::convert::Infallible>(Some(Host {
                address: "10.0.0.9".into(),
                ..Host::default()
            }))
        })
        .await
        .unwrap();
    assert_eq!(created.unwrap().address, "10.0.0.9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_writers_winning_every_attempt_is_a_conflict() {
    let (storage, _dir) = storage().await;
    let cluster = Cluster {
        name: "busy".into(),
        ..Cluster::default()
    };
    storage.save(&cluster).await.unwrap();
    let other = storage.clone();
    let mut rounds = 0;
    let lost = storage
        .clone()
        .with_update_attempts(3)
        .update(json!({"name": "busy"}), |c: &mut Cluster| {
            // Another writer changes the record between this read and the
            // write, every time.
            rounds += 1;
            let mut changed = c.clone();
            changed.network = format!("round-{rounds}");
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(other.save(&changed))
            })
            .unwrap();
            c.hostset.push("mine".into());
            Ok::<_, std::convert::Infallible>(true)
        })
        .await;
    assert!(
        lost.as_ref().is_err_and(UpdateError::is_conflict),
        "{lost:?}"
    );
    assert_eq!(rounds, 3);
    let stored: Cluster = storage.get(json!({"name": "busy"})).await.unwrap();
    assert_eq!(stored.network, "round-3");
    assert!(stored.hostset.is_empty(), "the lost writes did not land");
}

#[tokio::test]
async fn secret_records_are_updated_by_compare_and_swap_too() {
    let dir = tempfile::tempdir().unwrap();
    let router = StorageRouter::from_config(Some(&json!([{
        "type": "redb", "path": dir.path().join("store.redb"), "models": ["*"]
    }])))
    .await
    .unwrap();
    let secrets =
        commissaire_storage::SecretBox::load_or_create(&dir.path().join("secrets.key")).unwrap();
    let bus: Bus = Arc::new(InProcessBus::new());
    std::mem::forget(
        commissaire_storage::start_with_secrets(router, secrets, bus.clone(), 4)
            .await
            .unwrap(),
    );
    let storage = StorageClient::new(bus);
    let creds = commissaire_models::HostCreds {
        address: "10.0.0.1".into(),
        ssh_priv_key: "c2VjcmV0".into(),
        ..Default::default()
    };
    storage.save(&creds).await.unwrap();
    // Sealed anew on every write, yet no concurrent change is lost.
    let writers = (0..10).map(|i| {
        let storage = storage.clone().with_update_attempts(100);
        tokio::spawn(async move {
            storage
                .update(
                    json!({"address": "10.0.0.1"}),
                    |c: &mut commissaire_models::HostCreds| {
                        c.host_key.push_str(&format!("{i};"));
                        Ok::<_, std::convert::Infallible>(true)
                    },
                )
                .await
                .map_err(StorageCallError::from)
        })
    });
    for w in writers.collect::<Vec<_>>() {
        w.await.unwrap().unwrap();
    }
    let stored: commissaire_models::HostCreds =
        storage.get(json!({"address": "10.0.0.1"})).await.unwrap();
    assert_eq!(stored.host_key.matches(';').count(), 10, "{stored:?}");
    assert_eq!(stored.ssh_priv_key, "c2VjcmV0");
    // A lost race is a conflict that shows nothing of the record.
    let e = storage.swap(Some(&creds), &creds).await.unwrap_err();
    assert!(e.is_conflict(), "{e}");
    assert!(!format!("{e:?}").contains("c2VjcmV0"), "{e:?}");
}
