//! The reboot lock over the real storage service (on an embedded redb
//! store, through the in-process bus): slots taken by compare-and-swap, so
//! of many takers at once only as many as there are slots win.

use std::sync::Arc;

use commissaire_bus::{Bus, InProcessBus};
use commissaire_models::{HolderKind, HolderState, LockHolder};
use commissaire_reboot_lock::{LockError, RebootLock};
use commissaire_storage::StorageRouter;
use commissaire_storage_client::StorageClient;
use serde_json::json;

async fn lock() -> (
    RebootLock,
    commissaire_service::ServiceHandle,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let bus: Bus = Arc::new(InProcessBus::new());
    let router = StorageRouter::from_config(Some(&json!([{
        "type": "redb", "path": dir.path().join("store.redb"), "models": ["*"]
    }])))
    .await
    .unwrap();
    let storage = commissaire_storage::start(router, bus.clone(), 8)
        .await
        .unwrap();
    (RebootLock::new(StorageClient::new(bus)), storage, dir)
}

fn node(id: &str, host: &str) -> LockHolder {
    LockHolder {
        id: id.into(),
        kind: HolderKind::Fleetlock,
        hosts: vec![host.into()],
        since: commissaire_reboot_lock::now(),
        ..LockHolder::default()
    }
}

#[tokio::test]
async fn of_many_takers_at_once_only_as_many_as_there_are_slots_win() {
    let (lock, _storage, _dir) = lock().await;
    for slots in [1, 3] {
        let cluster = format!("c{slots}");
        let takers = (0..12).map(|i| {
            let lock = lock.clone();
            let cluster = cluster.clone();
            tokio::spawn(async move {
                lock.take(
                    &cluster,
                    node(&format!("n{i}"), &format!("10.0.0.{i}")),
                    slots,
                )
                .await
            })
        });
        let mut won = 0;
        for taker in takers {
            match taker.await.unwrap() {
                Ok(_) => won += 1,
                Err(LockError::Full(full)) => assert_eq!(full.holders.len(), slots),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(won, slots);
        assert_eq!(lock.get(&cluster).await.unwrap().holders.len(), slots);
    }
}

#[tokio::test]
async fn a_holder_taking_again_keeps_its_slot_and_giving_back_frees_it() {
    let (lock, _storage, _dir) = lock().await;
    lock.take("prod", node("a", "10.0.0.1"), 1).await.unwrap();
    let again = lock.take("prod", node("a", "10.0.0.1"), 1).await.unwrap();
    assert_eq!(again.id, "a");
    assert!(matches!(
        lock.take("prod", node("b", "10.0.0.2"), 1).await,
        Err(LockError::Full(_))
    ));
    let changed = lock
        .change("prod", "a", |h| h.state = HolderState::Held)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.state, HolderState::Held);
    assert_eq!(lock.give_back("prod", "a").await.unwrap().unwrap().id, "a");
    assert!(lock.give_back("prod", "a").await.unwrap().is_none());
    assert!(lock.give_back("nowhere", "a").await.unwrap().is_none());
    lock.take("prod", node("b", "10.0.0.2"), 1).await.unwrap();
}
