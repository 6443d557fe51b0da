//! HTTP Basic users kept in etcd (`httpbasicauth:etcd=...`), read by the
//! running server from a real etcd: a changed list is seen at once with
//! `etcd_refresh=0`, a broken document keeps the last good list, a deleted
//! key leaves no users.

mod common;

use commissaire_testkit as testkit;
use common::{Stack, StackOptions};
use serde_json::{Map, Value, json};

/// A users document: each user with a bcrypt hash (cost 4, for speed).
fn users(pairs: &[(&str, &str)]) -> String {
    let users: Map<String, Value> = pairs
        .iter()
        .map(|(user, password)| {
            let hash = bcrypt::hash(password, 4).unwrap();
            (user.to_string(), json!({"hash": hash}))
        })
        .collect();
    Value::Object(users).to_string()
}

async fn status(s: &Stack, user: &str, password: &str) -> u16 {
    s.client
        .get(s.url("/api/v0/clusters"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn basic_auth_users_kept_in_etcd_are_read_from_it() {
    let endpoint = testkit::etcd_endpoint();
    let key = format!("{}httpbasicauthbyuserlist", testkit::etcd_prefix());
    let mut etcd = etcd_client::Client::connect([endpoint.clone()], None)
        .await
        .unwrap();
    etcd.put(
        key.as_str(),
        users(&[(common::USER, common::PASSWORD), ("b", "pass:with:colons")]),
        None,
    )
    .await
    .unwrap();
    let mut options = StackOptions {
        open: true,
        ..Default::default()
    };
    options.args.authentication_plugins = vec![format!(
        "commissaire_http.authentication.httpbasicauth:etcd=http://{endpoint},etcd_key={key},etcd_refresh=0"
    )];
    let s = Stack::start_with(options).await;
    assert_eq!(status(&s, common::USER, common::PASSWORD).await, 200);
    assert_eq!(status(&s, "b", "pass:with:colons").await, 200);
    assert_eq!(status(&s, common::USER, "wrong").await, 403);
    assert_eq!(status(&s, "nobody", common::PASSWORD).await, 403);

    // A new list is seen at once; the cached success of the old password
    // goes with its hash.
    etcd.put(key.as_str(), users(&[(common::USER, "new-secret")]), None)
        .await
        .unwrap();
    assert_eq!(status(&s, common::USER, common::PASSWORD).await, 403);
    assert_eq!(status(&s, common::USER, "new-secret").await, 200);
    assert_eq!(status(&s, "b", "pass:with:colons").await, 403);

    // A broken document keeps the last good list.
    etcd.put(key.as_str(), "{not json", None).await.unwrap();
    assert_eq!(status(&s, common::USER, "new-secret").await, 200);

    // No key, no users.
    etcd.delete(key.as_str(), None).await.unwrap();
    assert_eq!(status(&s, common::USER, "new-secret").await, 403);
}
