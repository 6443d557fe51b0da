//! Lists that scale, fast tier: filters on the host and cluster lists,
//! pages with a total and continue tokens on every list, 400s naming a bad
//! parameter, ETags with 304s, and compressed answers.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{PASSWORD, Stack, USER};
use serde_json::{Value, json};

fn address(i: usize) -> String {
    format!("10.1.0.{i}")
}

/// Host `i`: failed when `i % 3 == 0`, else active; rhel when `i % 5 == 0`,
/// else fedora.
fn host(i: usize) -> Value {
    json!({
        "address": address(i),
        "status": if i.is_multiple_of(3) { "failed" } else { "active" },
        "os": if i.is_multiple_of(5) { "rhel" } else { "fedora" },
        "cpus": 2, "memory": 1000, "space": 1000,
        "last_check": "2020-01-01T00:00:00.000000",
    })
}

/// Stores hosts `0..n` through the storage service (as the investigator would).
async fn seed(s: &Stack, n: usize) {
    let hosts: Vec<Value> = (0..n).map(host).collect();
    s.bus
        .request(
            "storage.save",
            json!({"model_type_name": "Host", "model_json_data": hosts}),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
}

fn addresses(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|h| h["address"].as_str().unwrap().to_string())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The addresses of hosts `0..n` passing `keep`, in the lists' order.
fn expected(n: usize, keep: impl Fn(usize) -> bool) -> Vec<String> {
    sorted((0..n).filter(|i| keep(*i)).map(address).collect())
}

#[tokio::test]
async fn host_lists_are_filtered_by_status_cluster_os_and_source() {
    let s = Stack::start().await;
    seed(&s, 30).await;
    // No query: every host, as always.
    let (status, all) = s.get("/api/v0/hosts").await;
    assert_eq!(status, 200);
    assert_eq!(addresses(&all).len(), 30);

    let (status, failed) = s.get("/api/v0/hosts?status=failed").await;
    assert_eq!(status, 200);
    assert_eq!(addresses(&failed), expected(30, |i| i % 3 == 0));
    assert!(
        failed
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["status"] == "failed")
    );

    let (_, either) = s.get("/api/v0/hosts?status=failed,active").await;
    assert_eq!(addresses(&either).len(), 30);
    let (_, repeated) = s.get("/api/v0/hosts?status=failed&status=active").await;
    assert_eq!(addresses(&repeated).len(), 30);

    let (_, both) = s.get("/api/v0/hosts?os=rhel&status=failed").await;
    assert_eq!(addresses(&both), expected(30, |i| i % 15 == 0));

    let (_, none) = s.get("/api/v0/hosts?source=elsewhere").await;
    assert_eq!(none, json!([]));

    // Members of a cluster.
    assert_eq!(s.put("/api/v0/cluster/c1", json!({})).await.0, 201);
    for i in [1, 2] {
        let path = format!("/api/v0/cluster/c1/hosts/{}", address(i));
        assert_eq!(s.put(&path, json!({})).await.0, 200, "{path}");
    }
    let (status, members) = s.get("/api/v0/hosts?cluster=c1").await;
    assert_eq!(status, 200);
    assert_eq!(addresses(&members), vec![address(1), address(2)]);
    let (_, active_members) = s.get("/api/v0/hosts?cluster=c1&status=failed").await;
    assert_eq!(active_members, json!([]));

    // The cluster list by computed status.
    assert_eq!(s.put("/api/v0/cluster/empty", json!({})).await.0, 201);
    assert_eq!(s.put("/api/v0/cluster/c2", json!({})).await.0, 201);
    let path = format!("/api/v0/cluster/c2/hosts/{}", address(4));
    assert_eq!(s.put(&path, json!({})).await.0, 200);
    s.set_host_status(&address(4), "failed").await;
    let (status, ok) = s.get("/api/v0/clusters?status=ok").await;
    assert_eq!(status, 200);
    assert_eq!(ok, json!(["c1", "empty"]));
    let (_, failed) = s.get("/api/v0/clusters?status=failed,degraded").await;
    assert_eq!(failed, json!(["c2"]));
}

#[tokio::test]
async fn pages_walk_every_list_with_their_tokens_and_count_the_total() {
    let s = Stack::start().await;
    seed(&s, 25).await;
    let mut seen = Vec::new();
    let mut path = "/api/v0/hosts?limit=10".to_string();
    let mut pages = 0;
    loop {
        let (status, page) = s.get(&path).await;
        assert_eq!(status, 200, "{path}: {page}");
        assert_eq!(page["total"], 25, "{page}");
        pages += 1;
        seen.extend(addresses(&page["items"]));
        match page["continue"].as_str() {
            Some(token) => path = format!("/api/v0/hosts?continue={token}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected(25, |_| true));

    // Filters and a page: the total counts what passes.
    let (_, page) = s.get("/api/v0/hosts?status=failed&limit=3").await;
    assert_eq!(page["total"], 9, "{page}");
    assert_eq!(addresses(&page["items"]).len(), 3);
    let token = page["continue"].as_str().unwrap().to_string();
    let firsts = addresses(&page["items"]);
    assert_eq!(firsts, ["10.1.0.0", "10.1.0.12", "10.1.0.15"]);
    // A host stored meanwhile before the page's end ("10.1.0.100" sorts
    // between "10.1.0.0" and "10.1.0.12") does not shift the next page.
    let mut early = host(0);
    early["address"] = json!("10.1.0.100");
    s.bus
        .request(
            "storage.save",
            json!({"model_type_name": "Host", "model_json_data": early}),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let (_, next) = s
        .get(&format!("/api/v0/hosts?status=failed&continue={token}"))
        .await;
    assert_eq!(next["total"], 10, "{next}");
    assert_eq!(
        addresses(&next["items"]),
        ["10.1.0.18", "10.1.0.21", "10.1.0.24"]
    );

    // The other lists page too.
    for name in ["a", "b", "c"] {
        assert_eq!(
            s.put(&format!("/api/v0/cluster/{name}"), json!({})).await.0,
            201
        );
    }
    let (_, page) = s.get("/api/v0/clusters?limit=2").await;
    assert_eq!(page["items"], json!(["a", "b"]));
    assert_eq!(page["total"], 3);
    let token = page["continue"].as_str().unwrap().to_string();
    let (_, page) = s.get(&format!("/api/v0/clusters?continue={token}")).await;
    assert_eq!(page, json!({"items": ["c"], "total": 3, "continue": null}));

    let (_, page) = s.get("/api/v0/networks?limit=1").await;
    assert_eq!(page["items"], json!(["default"]), "{page}");
    let (_, page) = s.get("/api/v0/containermanagers?limit=5").await;
    assert_eq!(page, json!({"items": [], "total": 0, "continue": null}));
    for i in [1, 2] {
        let path = format!("/api/v0/cluster/a/hosts/{}", address(i));
        assert_eq!(s.put(&path, json!({})).await.0, 200);
    }
    let (_, page) = s.get("/api/v0/cluster/a/hosts?limit=1").await;
    assert_eq!(page["items"], json!([address(1)]), "{page}");
    assert_eq!(page["total"], 2);
}

#[tokio::test]
async fn bad_filters_limits_and_tokens_are_400s_naming_the_parameter() {
    let s = Stack::start().await;
    seed(&s, 5).await;
    let (_, page) = s.get("/api/v0/hosts?status=active&limit=1").await;
    let token = page["continue"].as_str().unwrap().to_string();
    for (path, field) in [
        ("/api/v0/hosts?statu=active".to_string(), "statu"),
        ("/api/v0/hosts?status=bogus".to_string(), "status"),
        ("/api/v0/hosts?status=".to_string(), "status"),
        ("/api/v0/hosts?os=windows".to_string(), "os"),
        ("/api/v0/hosts?cluster=nowhere".to_string(), "cluster"),
        ("/api/v0/hosts?limit=0".to_string(), "limit"),
        ("/api/v0/hosts?limit=10001".to_string(), "limit"),
        ("/api/v0/hosts?limit=ten".to_string(), "limit"),
        ("/api/v0/hosts?continue=not-a-token".to_string(), "continue"),
        (
            format!("/api/v0/hosts?status=failed&continue={token}"),
            "continue",
        ),
        ("/api/v0/clusters?status=fine".to_string(), "status"),
        ("/api/v0/networks?status=ok".to_string(), "status"),
        ("/api/v0/containermanagers?x=1".to_string(), "x"),
        ("/api/v0/cluster/a/hosts?limit=-1".to_string(), "limit"),
    ] {
        let (status, body) = s.get(&path).await;
        // (the cluster of the last one does not exist: the query is read first)
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["field"], field, "{path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    let (_, body) = s.get("/api/v0/hosts?statu=active").await;
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("did you mean 'status'"),
        "{body}"
    );
}

async fn raw_get(s: &Stack, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = s.client.get(s.url(path)).basic_auth(USER, Some(PASSWORD));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn an_unchanged_answer_is_a_304_to_its_etag_and_a_change_gives_a_new_one() {
    let s = Stack::start().await;
    seed(&s, 5).await;
    let first = raw_get(&s, "/api/v0/hosts", &[]).await;
    assert_eq!(first.status(), 200);
    let tag = first.headers()["etag"].to_str().unwrap().to_string();
    assert!(tag.starts_with("W/\""), "{tag}");
    let again = raw_get(&s, "/api/v0/hosts", &[("if-none-match", &tag)]).await;
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), tag);
    assert!(again.bytes().await.unwrap().is_empty());
    // Another tag, or a filtered list, is answered in full.
    let other = raw_get(&s, "/api/v0/hosts", &[("if-none-match", "W/\"0\"")]).await;
    assert_eq!(other.status(), 200);
    let filtered = raw_get(
        &s,
        "/api/v0/hosts?status=failed",
        &[("if-none-match", &tag)],
    )
    .await;
    assert_eq!(filtered.status(), 200);
    // A change: a new tag, the old one is answered in full.
    s.set_host_status(&address(1), "failed").await;
    let changed = raw_get(&s, "/api/v0/hosts", &[("if-none-match", &tag)]).await;
    assert_eq!(changed.status(), 200);
    let new_tag = changed.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(new_tag, tag);
    // Errors carry no tag.
    let missing = raw_get(&s, "/api/v0/host/10.9.9.9", &[]).await;
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().get("etag").is_none());
}

#[tokio::test]
async fn big_answers_are_compressed_as_the_client_asks() {
    let s = Stack::start().await;
    seed(&s, 50).await;
    let plain = raw_get(&s, "/api/v0/hosts", &[]).await;
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    let hosts: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(addresses(&hosts).len(), 50);

    let gzip = raw_get(&s, "/api/v0/hosts", &[("accept-encoding", "gzip")]).await;
    assert_eq!(gzip.status(), 200);
    assert_eq!(gzip.headers()["content-encoding"], "gzip");
    let gzip = gzip.bytes().await.unwrap();
    assert_eq!(&gzip[..2], &[0x1f, 0x8b], "a gzip stream");
    assert!(
        gzip.len() * 3 < plain.len(),
        "{} vs {}",
        gzip.len(),
        plain.len()
    );

    let br = raw_get(&s, "/api/v0/hosts", &[("accept-encoding", "br")]).await;
    assert_eq!(br.headers()["content-encoding"], "br");
    assert!(br.bytes().await.unwrap().len() * 3 < plain.len());

    // A small answer is sent as it is.
    let small = raw_get(
        &s,
        "/api/v0/network/default",
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(small.status(), 200);
    assert!(small.headers().get("content-encoding").is_none());
    let names: BTreeSet<String> = serde_json::from_slice::<Value>(&small.bytes().await.unwrap())
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(names.contains("name"), "{names:?}");
}
