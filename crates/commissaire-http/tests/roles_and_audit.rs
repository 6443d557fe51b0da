//! Roles and the audit trail on the fast tier's stack: a viewer reads and
//! is refused every change (403 naming the role needed), an operator runs
//! operations and manages hosts but gives no command gate and changes no
//! cluster, an admin does all and reads `/api/v0/audit`, where each change
//! (refused ones too) has its entry.

mod common;

use common::{Stack, StackOptions};
use serde_json::{Value, json};

/// A users file of `viewer`, `operator` and `boss` (role admin), each with
/// password `pw`, written in `dir`.
fn users_with_roles(dir: &std::path::Path) -> std::path::PathBuf {
    let hash = bcrypt::hash("pw", 4).unwrap();
    let path = dir.join("roles.json");
    std::fs::write(
        &path,
        json!({
            "viewer": {"hash": hash, "role": "viewer"},
            "operator": {"hash": hash, "role": "operator"},
            "boss": {"hash": hash, "role": "admin"},
        })
        .to_string(),
    )
    .unwrap();
    path
}

async fn stack_with_roles(dir: &std::path::Path, config: Option<Value>) -> Stack {
    let mut options = StackOptions::default();
    options.args.authentication_plugins.push(format!(
        "commissaire_http.authentication.httpbasicauth:filepath={}",
        users_with_roles(dir).display()
    ));
    if let Some(config) = config {
        let file = dir.join("server.conf");
        std::fs::write(&file, config.to_string()).unwrap();
        options.args.config_file = Some(file);
    }
    Stack::start_with(options).await
}

async fn as_user(
    s: &Stack,
    user: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = s
        .client
        .request(method.parse().unwrap(), s.url(path))
        .basic_auth(user, Some("pw"));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn each_role_may_do_what_it_says_and_is_refused_the_rest_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = stack_with_roles(dir.path(), None).await;
    // The admin (`a`: no role in its users file, so admin) sets things up.
    assert_eq!(s.put("/api/v0/cluster/prod", json!({})).await.0, 201);

    // A viewer reads, and is refused changes, naming the role needed.
    assert_eq!(
        as_user(&s, "viewer", "GET", "/api/v0/clusters", None)
            .await
            .0,
        200
    );
    let (status, body) = as_user(
        &s,
        "viewer",
        "PUT",
        "/api/v0/cluster/other",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["required_role"], "admin", "{body}");
    assert_eq!(body["role"], "viewer", "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("needs the admin role"),
        "{body}"
    );
    let (status, body) = as_user(&s, "viewer", "PUT", "/api/v0/cluster/prod/restart", None).await;
    assert_eq!(
        (status, body["required_role"].clone()),
        (403, json!("operator"))
    );
    assert_eq!(
        as_user(&s, "viewer", "GET", "/api/v0/audit", None).await.0,
        403
    );

    // An operator manages hosts and runs operations.
    let (status, body) = as_user(
        &s,
        "operator",
        "PUT",
        "/api/v0/host/10.6.0.1",
        Some(json!({"ssh_priv_key": common::KEY, "remote_user": "root"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // Credentials are an admin's.
    assert_eq!(
        as_user(&s, "operator", "GET", "/api/v0/host/10.6.0.1/creds", None)
            .await
            .0,
        403
    );
    assert_eq!(s.get("/api/v0/host/10.6.0.1/creds").await.0, 200);
    // Command gates run commands on the hosts: not an operator's to give.
    let gated = json!({"gates": {"commands": [{"command": "true"}]}});
    let (status, body) = as_user(
        &s,
        "operator",
        "PUT",
        "/api/v0/cluster/prod/restart",
        Some(gated),
    )
    .await;
    assert_eq!(
        (status, body["required_role"].clone()),
        (403, json!("admin")),
        "{body}"
    );
    let (status, body) = as_user(&s, "operator", "PUT", "/api/v0/cluster/prod/restart", None).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["started_by"], "operator", "{body}");
    let (status, _) = as_user(
        &s,
        "operator",
        "PUT",
        "/api/v0/cluster/prod/restart/pause",
        None,
    )
    .await;
    assert_eq!(status, 202);
    // But changes no cluster, network or container manager.
    for (method, path) in [
        ("DELETE", "/api/v0/cluster/prod"),
        ("PUT", "/api/v0/cluster/prod/rolling"),
        ("PUT", "/api/v0/network/n1"),
    ] {
        let (status, body) = as_user(&s, "operator", method, path, Some(json!({}))).await;
        assert_eq!(
            (status, body["required_role"].clone()),
            (403, json!("admin")),
            "{method} {path}"
        );
    }
    // An admin from the users file may.
    assert_eq!(
        as_user(
            &s,
            "boss",
            "PUT",
            "/api/v0/network/n1",
            Some(json!({"type": "flannel_etcd"}))
        )
        .await
        .0,
        201
    );
}

#[tokio::test]
async fn every_change_is_in_the_audit_trail_with_who_what_and_how_it_ended() {
    let dir = tempfile::tempdir().unwrap();
    let s = stack_with_roles(dir.path(), None).await;
    let since = commissaire_models::now_iso();
    let resp = s
        .client
        .put(s.url("/api/v0/host/10.6.0.2"))
        .basic_auth("operator", Some("pw"))
        .header("x-request-id", "audit-me-1")
        .json(&json!({"ssh_priv_key": common::KEY}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(
        as_user(&s, "viewer", "DELETE", "/api/v0/host/10.6.0.2", None)
            .await
            .0,
        403
    );
    assert_eq!(s.put("/api/v0/cluster/audited", json!({})).await.0, 201);
    // Refused (the host is still being investigated): audited all the same.
    assert_eq!(
        s.put("/api/v0/cluster/audited/hosts/10.6.0.2", json!({}))
            .await
            .0,
        409
    );
    // A failed change is there too, with the answer's error.
    assert_eq!(
        s.put("/api/v0/cluster/nope/restart", json!({})).await.0,
        404
    );
    // Reads are not.
    assert_eq!(s.get("/api/v0/clusters").await.0, 200);

    // Refused and failed changes are written just after their answer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let body = loop {
        let (status, body) = s.get("/api/v0/audit").await;
        assert_eq!(status, 200, "{body}");
        if body["entries"].as_array().unwrap().len() >= 5 || std::time::Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let entries = body["entries"].as_array().unwrap();
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/api/v0/cluster/nope/restart",
            "/api/v0/cluster/audited/hosts/10.6.0.2",
            "/api/v0/cluster/audited",
            "/api/v0/host/10.6.0.2",
            "/api/v0/host/10.6.0.2",
        ],
        "newest first: {body}"
    );
    let created = &entries[4];
    for (member, want) in [
        ("user", json!("operator")),
        ("role", json!("operator")),
        ("method", json!("PUT")),
        ("kind", json!("host")),
        ("name", json!("10.6.0.2")),
        ("status", json!(201)),
        ("outcome", json!("ok")),
        ("request_id", json!("audit-me-1")),
    ] {
        assert_eq!(created[member], want, "{member}: {created}");
    }
    assert!(
        created["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{created}"
    );
    assert!(
        created["at"].as_str().unwrap() >= since.as_str(),
        "{created}"
    );
    assert!(
        !created.to_string().contains(common::KEY),
        "the body is not recorded: {created}"
    );
    let refused = &entries[3];
    assert_eq!(
        (refused["user"].clone(), refused["outcome"].clone()),
        (json!("viewer"), json!("refused"))
    );
    assert!(
        refused["error"].as_str().unwrap().contains("operator role"),
        "{refused}"
    );
    assert_eq!(entries[1]["kind"], "cluster.hosts");
    assert_eq!(entries[1]["name"], "audited/10.6.0.2");
    assert_eq!(entries[1]["status"], 409);
    assert_eq!(entries[1]["outcome"], "failed");
    assert_eq!(entries[0]["outcome"], "failed");
    assert!(
        entries[0]["error"].as_str().unwrap().contains("nope"),
        "{}",
        entries[0]
    );

    // Filters.
    let only = |q: &str| {
        let q = q.to_string();
        let s = &s;
        async move {
            let (status, body) = s.get(&format!("/api/v0/audit?{q}")).await;
            assert_eq!(status, 200, "{q}: {body}");
            body["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["path"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(only("user=viewer").await, ["/api/v0/host/10.6.0.2"]);
    assert_eq!(only("kind=cluster").await.len(), 3);
    assert_eq!(
        only("kind=cluster.hosts").await,
        ["/api/v0/cluster/audited/hosts/10.6.0.2"]
    );
    assert_eq!(only("name=audited").await, ["/api/v0/cluster/audited"]);
    assert_eq!(only("limit=2").await.len(), 2);
    assert_eq!(only("since=2999-01-01").await.len(), 0);
    let (status, body) = s.get("/api/v0/audit?who=me").await;
    assert_eq!(
        (status, body["field"].clone()),
        (400, json!("who")),
        "{body}"
    );
    let (status, body) = s.get("/api/v0/audit?limit=0").await;
    assert_eq!(
        (status, body["field"].clone()),
        (400, json!("limit")),
        "{body}"
    );
}

#[tokio::test]
async fn the_server_s_roles_map_gives_roles_to_any_plugin_s_users() {
    let dir = tempfile::tempdir().unwrap();
    // Everyone a viewer unless named; `a` (no role in its file) an operator.
    let s = stack_with_roles(
        dir.path(),
        Some(
            json!({"roles": {"default": "viewer", "users": {"a": "operator", "viewer": "admin"}}}),
        ),
    )
    .await;
    let (status, body) = s.put("/api/v0/cluster/x", json!({})).await;
    assert_eq!(
        (status, body["role"].clone()),
        (403, json!("operator")),
        "{body}"
    );
    // The map wins over the users file.
    assert_eq!(
        as_user(&s, "viewer", "PUT", "/api/v0/cluster/x", Some(json!({})))
            .await
            .0,
        201
    );
    // A role the server does not know stops it at start.
    let bad = commissaire_http::ServerConfig::resolve(
        &commissaire_http::ServerArgs {
            config_file: Some({
                let f = dir.path().join("bad.conf");
                std::fs::write(&f, json!({"roles": {"default": "root"}}).to_string()).unwrap();
                f
            }),
            ..Default::default()
        },
        "inprocess://",
    )
    .unwrap_err();
    assert!(bad.to_string().contains("'roles'"), "{bad}");
}
