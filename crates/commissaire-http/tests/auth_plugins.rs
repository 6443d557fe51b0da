//! The authentication plugins, end to end: option parsing, bcrypt users from
//! a file and inline (users kept in a real etcd: `commissaire-acceptance`'s
//! `tests/auth_etcd.rs`), client certificates, and the remote identity
//! services (OpenShift / Kubernetes, Keystone) played by small axum servers
//! answering on their real paths as the real APIs do.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use commissaire_http::auth::{
    AuthConfigError, AuthDecision, AuthManager, Authenticator, ClientCertAuth, HttpBasicAuth,
    PluginSpec, RequestCredentials,
};
use commissaire_http::peer::PeerInfo;
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------- helpers

fn peer(cn: Option<&str>) -> PeerInfo {
    PeerInfo {
        addr: "127.0.0.1:40000".parse().unwrap(),
        client_cert_cn: cn.map(str::to_string),
    }
}

fn header(name: &str, value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
        value.parse().unwrap(),
    );
    headers
}

fn basic(user: &str, password: &str) -> HeaderMap {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    header("authorization", &format!("Basic {encoded}"))
}

fn bearer(token: &str) -> HeaderMap {
    header("authorization", &format!("Bearer {token}"))
}

async fn check_with(
    manager: &AuthManager,
    headers: &HeaderMap,
    peer: &PeerInfo,
    path: &str,
) -> Option<String> {
    manager
        .check(&RequestCredentials {
            headers,
            peer,
            path,
        })
        .await
}

async fn check(manager: &AuthManager, headers: &HeaderMap) -> Option<String> {
    check_with(manager, headers, &peer(None), "/api/v0/clusters").await
}

async fn manager_from_cli(specs: &[&str]) -> Result<AuthManager, AuthConfigError> {
    let specs: Vec<PluginSpec> = specs
        .iter()
        .map(|s| PluginSpec::parse_cli(s))
        .collect::<Result<_, _>>()?;
    AuthManager::new(&specs, vec![]).await
}

async fn manager_from_config(entry: Value) -> Result<AuthManager, AuthConfigError> {
    AuthManager::new(&[PluginSpec::from_config(&entry)?], vec![]).await
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn hash(password: &str, cost: u32) -> String {
    bcrypt::hash(password, cost).unwrap()
}

/// Serves `router` on 127.0.0.1 and returns its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

/// A URL nothing listens on.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn err_text(result: Result<AuthManager, AuthConfigError>) -> (AuthConfigError, String) {
    let error = result.expect_err("configuration should be rejected");
    let text = error.to_string();
    (error, text)
}

// ---------------------------------------------------------------- spec parsing

#[test]
fn cli_specs_full_and_short_names() {
    let spec = PluginSpec::parse_cli(
        "commissaire_http.authentication.httpbasicauth:filepath=conf/users.json",
    )
    .unwrap();
    assert_eq!(spec.name, "commissaire_http.authentication.httpbasicauth");
    assert_eq!(spec.module(), Some("httpbasicauth"));
    assert_eq!(spec.options, object(json!({"filepath": "conf/users.json"})));

    let spec =
        PluginSpec::parse_cli("keystonepasswordauth:url=https://example.com:5000,domain=Default")
            .unwrap();
    assert_eq!(spec.name, "keystonepasswordauth");
    assert_eq!(spec.module(), Some("keystonepasswordauth"));
    assert_eq!(
        spec.options,
        object(json!({"url": "https://example.com:5000", "domain": "Default"}))
    );

    // Values stay strings, may contain '=' and (for lists) ','.
    let spec = PluginSpec::parse_cli(
        "httpbasicauth:etcd=http://10.0.0.1:2379,http://10.0.0.2:2379,etcd_key=/a=b,cache_ttl=10",
    )
    .unwrap();
    assert_eq!(
        spec.options,
        object(json!({
            "etcd": "http://10.0.0.1:2379,http://10.0.0.2:2379",
            "etcd_key": "/a=b",
            "cache_ttl": "10",
        }))
    );

    let spec = PluginSpec::parse_cli("httpauthclientcert").unwrap();
    assert_eq!(spec.module(), Some("httpauthclientcert"));
    assert!(spec.options.is_empty());
    let spec = PluginSpec::parse_cli(
        "commissaire_http.authentication.kubernetesbearertokenauth:url=https://k",
    )
    .unwrap();
    assert_eq!(spec.module(), Some("kubernetesbearertokenauth"));

    assert!(PluginSpec::parse_cli(":filepath=x").is_err());
    assert!(PluginSpec::parse_cli("httpbasicauth:filepath").is_err());
    assert!(PluginSpec::parse_cli("httpbasicauth:=x").is_err());
    assert!(PluginSpec::parse_cli("httpbasicauth:filepath=a,filepath=b").is_err());
}

#[test]
fn config_specs() {
    let spec = PluginSpec::from_config(&json!({
        "name": "commissaire_http.authentication.httpbasicauth",
        "filepath": "conf/users.json",
    }))
    .unwrap();
    assert_eq!(spec.name, "commissaire_http.authentication.httpbasicauth");
    assert_eq!(spec.options, object(json!({"filepath": "conf/users.json"})));

    let spec =
        PluginSpec::from_config(&json!({"name": "httpbasicauth", "users": {"a": {"hash": "x"}}}))
            .unwrap();
    assert_eq!(spec.options, object(json!({"users": {"a": {"hash": "x"}}})));

    assert!(matches!(
        PluginSpec::from_config(&json!({"filepath": "x"})),
        Err(AuthConfigError::MissingName)
    ));
    assert!(matches!(
        PluginSpec::from_config(&json!("httpbasicauth")),
        Err(AuthConfigError::NotAnObject)
    ));
}

#[test]
fn spec_debug_hides_secrets() {
    let spec = PluginSpec::from_config(&json!({
        "name": "openshiftbearertokenauth",
        "url": "https://api.example.com",
        "method": "tokenreview",
        "token": "sa-token-value",
    }))
    .unwrap();
    let shown = format!("{spec:?}");
    assert!(!shown.contains("sa-token-value"), "{shown}");
    assert!(shown.contains("api.example.com"), "{shown}");
}

#[tokio::test]
async fn unknown_module_is_an_error() {
    // The docs' own typo, "httbasicauth".
    let (error, text) = err_text(
        manager_from_cli(&["commissaire_http.authentication.httbasicauth:filepath=x"]).await,
    );
    assert!(
        matches!(error, AuthConfigError::UnknownPlugin { .. }),
        "{error:?}"
    );
    assert!(text.contains("httbasicauth"), "{text}");
    let (error, _) = err_text(manager_from_config(json!({"name": "nosuchplugin"})).await);
    assert!(
        matches!(error, AuthConfigError::UnknownPlugin { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn missing_and_bad_options_are_errors() {
    for module in [
        "keystonetokenauth",
        "keystonepasswordauth",
        "openshiftbearertokenauth",
        "commissaire_http.authentication.kubernetesbearertokenauth",
    ] {
        let (error, text) = err_text(manager_from_cli(&[module]).await);
        assert!(
            matches!(error, AuthConfigError::MissingOption { option: "url", .. }),
            "{module}: {error:?}"
        );
        assert!(text.contains("url"), "{text}");
    }
    let (error, text) = err_text(
        manager_from_cli(&["openshiftbearertokenauth:url=https://k,method=tokenreview"]).await,
    );
    assert!(
        matches!(
            error,
            AuthConfigError::MissingOption {
                option: "token",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(text.contains("openshiftbearertokenauth"), "{text}");

    let (error, _) =
        err_text(manager_from_cli(&["openshiftbearertokenauth:url=https://k,method=magic"]).await);
    assert!(
        matches!(
            error,
            AuthConfigError::InvalidOption {
                option: "method",
                ..
            }
        ),
        "{error:?}"
    );

    let (error, text) =
        err_text(manager_from_cli(&["keystonetokenauth:url=https://k,colour=blue"]).await);
    assert!(
        matches!(error, AuthConfigError::UnknownOption { .. }),
        "{error:?}"
    );
    assert!(
        text.contains("colour") && text.contains("keystonetokenauth"),
        "{text}"
    );

    let (error, _) = err_text(manager_from_cli(&["keystonetokenauth:url=ftp://k"]).await);
    assert!(
        matches!(error, AuthConfigError::InvalidOption { option: "url", .. }),
        "{error:?}"
    );

    let (error, _) =
        err_text(manager_from_cli(&["httpbasicauth:filepath=/nonexistent/users.json"]).await);
    assert!(
        matches!(
            error,
            AuthConfigError::File {
                option: "filepath",
                ..
            }
        ),
        "{error:?}"
    );

    let (error, text) = err_text(
        manager_from_config(json!({"name": "httpbasicauth", "users": {"a": {"hash": "$2a$12$not-a-secret-but-bad"}}})).await,
    );
    assert!(matches!(error, AuthConfigError::Users { .. }), "{error:?}");
    assert!(!text.contains("not-a-secret-but-bad"), "{text}");

    let (error, _) =
        err_text(manager_from_cli(&["keystonetokenauth:url=https://k,cache_ttl=soon"]).await);
    assert!(
        matches!(
            error,
            AuthConfigError::InvalidOption {
                option: "cache_ttl",
                ..
            }
        ),
        "{error:?}"
    );
}

// ---------------------------------------------------------------- manager

#[tokio::test]
async fn no_plugins_means_open_and_self_auths_bypass() {
    let open = AuthManager::new(&[], vec![]).await.unwrap();
    assert!(open.is_open());
    assert_eq!(
        check(&open, &HeaderMap::new()).await.as_deref(),
        Some("anonymous")
    );

    let manager = AuthManager::new(
        &[PluginSpec::parse_cli("httpauthclientcert:cn=admin").unwrap()],
        vec!["/api/v0/secrets".into()],
    )
    .await
    .unwrap();
    assert!(!manager.is_open());
    assert_eq!(manager.plugin_names(), vec!["httpauthclientcert"]);
    let none = peer(None);
    assert_eq!(
        check_with(&manager, &HeaderMap::new(), &none, "/api/v0/secrets")
            .await
            .as_deref(),
        Some("self-auth")
    );
    // Exact match only.
    assert_eq!(
        check_with(&manager, &HeaderMap::new(), &none, "/api/v0/secrets/x").await,
        None
    );
    assert_eq!(
        check_with(&manager, &HeaderMap::new(), &none, "/api/v0/clusters").await,
        None
    );
}

#[tokio::test]
async fn first_allowing_plugin_wins() {
    let users = json!({"alice": {"hash": hash("pw", 4)}});
    let manager = AuthManager::new(
        &[
            PluginSpec::from_config(&json!({"name": "httpbasicauth", "users": users})).unwrap(),
            PluginSpec::parse_cli("httpauthclientcert").unwrap(),
        ],
        vec![],
    )
    .await
    .unwrap();
    let cert = peer(Some("machine-1"));
    // Both would allow: basic auth comes first.
    assert_eq!(
        check_with(&manager, &basic("alice", "pw"), &cert, "/x")
            .await
            .as_deref(),
        Some("alice")
    );
    // Basic auth abstains (wrong password): the certificate still gets in.
    assert_eq!(
        check_with(&manager, &basic("alice", "nope"), &cert, "/x")
            .await
            .as_deref(),
        Some("machine-1")
    );
    assert_eq!(
        check_with(&manager, &basic("alice", "nope"), &peer(None), "/x").await,
        None
    );
}

// ---------------------------------------------------------------- httpbasicauth

async fn assert_basic_users(manager: &AuthManager) {
    assert_eq!(
        check(manager, &basic("a", "secret-a")).await.as_deref(),
        Some("a")
    );
    assert_eq!(
        check(manager, &basic("b", "pass:with:colons"))
            .await
            .as_deref(),
        Some("b")
    );
    assert_eq!(check(manager, &basic("a", "wrong")).await, None);
    assert_eq!(check(manager, &basic("a", "")).await, None);
    assert_eq!(check(manager, &basic("a", "secret-b")).await, None);
    assert_eq!(check(manager, &basic("nobody", "secret-a")).await, None);
    assert_eq!(check(manager, &HeaderMap::new()).await, None);
    for garbage in [
        "Basic",
        "Basic ",
        "Basic !!!not-base64!!!",
        "Basic YQ==",         // "a": no colon
        "Basic OnNlY3JldC1h", // ":secret-a": no user
        "Basic /w==",         // not UTF-8
        "Bearer secret-a",
        "Digest username=\"a\"",
        "YTpzZWNyZXQtYQ==",
    ] {
        assert_eq!(
            check(manager, &header("authorization", garbage)).await,
            None,
            "{garbage}"
        );
    }
    let mut non_ascii = HeaderMap::new();
    non_ascii.insert(
        "authorization",
        axum::http::HeaderValue::from_bytes(b"Basic \xe9\xe9").unwrap(),
    );
    assert_eq!(check(manager, &non_ascii).await, None);
}

fn users_document() -> Value {
    json!({
        "a": {"hash": hash("secret-a", 4)},
        "b": {"hash": hash("pass:with:colons", 4).replacen("$2b$", "$2y$", 1)},
    })
}

#[tokio::test]
async fn basic_auth_with_users_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&users_document()).unwrap()).unwrap();
    let manager = manager_from_cli(&[&format!(
        "commissaire_http.authentication.httpbasicauth:filepath={}",
        path.display()
    )])
    .await
    .unwrap();
    assert_basic_users(&manager).await;

    // The same through the configuration file form.
    let manager = manager_from_config(json!({"name": "httpbasicauth", "filepath": path}))
        .await
        .unwrap();
    assert_basic_users(&manager).await;
}

#[tokio::test]
async fn basic_auth_with_inline_users() {
    let manager = manager_from_config(json!({
        "name": "commissaire_http.authentication.httpbasicauth",
        "users": users_document(),
    }))
    .await
    .unwrap();
    assert_basic_users(&manager).await;
}

#[tokio::test]
async fn basic_auth_caches_successes_only() {
    // A real-strength (cost 12) hash, as `commctl passhash` makes.
    let hash12 = tokio::task::spawn_blocking(|| {
        bcrypt::hash("correct horse", 12)
            .unwrap()
            .replacen("$2b$", "$2a$", 1)
    })
    .await
    .unwrap();
    assert!(hash12.starts_with("$2a$12$"));
    let plugin = Arc::new(
        HttpBasicAuth::from_options(&object(json!({"users": {"ops": {"hash": hash12}}})))
            .await
            .unwrap(),
    );
    let manager = AuthManager::with_authenticators(vec![plugin.clone()], vec![]);
    assert_eq!(plugin.verifications(), 0);

    assert_eq!(
        check(&manager, &basic("ops", "correct horse"))
            .await
            .as_deref(),
        Some("ops")
    );
    assert_eq!(plugin.verifications(), 1);
    let started = std::time::Instant::now();
    assert_eq!(
        check(&manager, &basic("ops", "correct horse"))
            .await
            .as_deref(),
        Some("ops")
    );
    assert_eq!(
        plugin.verifications(),
        1,
        "the second check must come from the cache"
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(200));

    // Failures are never cached: each one is checked again.
    assert_eq!(check(&manager, &basic("ops", "wrong horse")).await, None);
    assert_eq!(check(&manager, &basic("ops", "wrong horse")).await, None);
    assert_eq!(plugin.verifications(), 3);
    // Unknown users cost what a wrong password costs: one check, against a
    // dummy hash of the known users' cost (timing tells no user names apart).
    assert_eq!(
        check(&manager, &basic("stranger", "correct horse")).await,
        None
    );
    assert_eq!(plugin.verifications(), 4);
    assert_eq!(plugin.dummy_cost(), Some(12));
    // The cached success is still there.
    assert_eq!(
        check(&manager, &basic("ops", "correct horse"))
            .await
            .as_deref(),
        Some("ops")
    );
    assert_eq!(plugin.verifications(), 4);
}

#[tokio::test]
async fn basic_auth_cache_can_be_disabled() {
    let plugin = HttpBasicAuth::from_options(&object(json!({
        "users": {"a": {"hash": hash("pw", 4)}},
        "cache_ttl": 0,
    })))
    .await
    .unwrap();
    let headers = basic("a", "pw");
    let peer = peer(None);
    let req = RequestCredentials {
        headers: &headers,
        peer: &peer,
        path: "/",
    };
    for expected in 1..=3 {
        assert_eq!(
            plugin.authenticate(&req).await,
            AuthDecision::Allow { user: "a".into() }
        );
        assert_eq!(plugin.verifications(), expected);
    }
    assert_eq!(plugin.name(), "httpbasicauth");
}

#[tokio::test]
async fn basic_auth_with_unreachable_etcd_denies() {
    let dead = dead_url().await;
    let manager = manager_from_cli(&[&format!("httpbasicauth:etcd={dead},etcd_refresh=0")])
        .await
        .expect("an unreachable etcd is not a configuration error");
    assert_eq!(check(&manager, &basic("a", "secret-a")).await, None);
}

// ---------------------------------------------------------------- httpauthclientcert

#[tokio::test]
async fn client_cert_common_name() {
    let plugin = ClientCertAuth::from_options(&object(json!({"cn": "admin"}))).unwrap();
    let manager = AuthManager::with_authenticators(vec![Arc::new(plugin)], vec![]);
    let none = HeaderMap::new();
    assert_eq!(
        check_with(&manager, &none, &peer(Some("admin")), "/x")
            .await
            .as_deref(),
        Some("admin")
    );
    assert_eq!(
        check_with(&manager, &none, &peer(Some("intruder")), "/x").await,
        None
    );
    assert_eq!(
        check_with(&manager, &none, &peer(Some("Admin")), "/x").await,
        None
    );
    assert_eq!(check_with(&manager, &none, &peer(None), "/x").await, None);

    // Without cn: any verified certificate.
    let manager = manager_from_cli(&["commissaire_http.authentication.httpauthclientcert"])
        .await
        .unwrap();
    assert_eq!(
        check_with(&manager, &none, &peer(Some("anyone")), "/x")
            .await
            .as_deref(),
        Some("anyone")
    );
    assert_eq!(check_with(&manager, &none, &peer(None), "/x").await, None);
}

// ---------------------------------------------------------------- OpenShift / Kubernetes

const SERVICE_TOKEN: &str = "service-account-token";
const GOOD_TOKEN: &str = "sha256~valid-user-token";

#[derive(Clone, Default)]
struct Calls(Arc<AtomicUsize>);

impl Calls {
    fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn unauthorized_status() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401,
        })),
    )
        .into_response()
}

async fn openshift_user(State(calls): State<Calls>, headers: HeaderMap) -> Response {
    calls.bump();
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {GOOD_TOKEN}"))
    {
        return unauthorized_status();
    }
    Json(json!({
        "kind": "User",
        "apiVersion": "user.openshift.io/v1",
        "metadata": {"name": "alice", "uid": "6f2b1c8e-0000-4000-8000-000000000001"},
        "identities": ["htpasswd:alice"],
        "groups": ["system:authenticated", "system:authenticated:oauth"],
    }))
    .into_response()
}

async fn token_review(
    State(calls): State<Calls>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    calls.bump();
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {SERVICE_TOKEN}"))
    {
        return unauthorized_status();
    }
    if body["apiVersion"] != "authentication.k8s.io/v1" || body["kind"] != "TokenReview" {
        return (StatusCode::BAD_REQUEST, "bad TokenReview").into_response();
    }
    let token = body["spec"]["token"].as_str().unwrap_or_default();
    let status = if token == GOOD_TOKEN {
        json!({
            "authenticated": true,
            "user": {"username": "system:serviceaccount:ops:robot", "uid": "1", "groups": ["system:authenticated"]},
            "audiences": ["https://kubernetes.default.svc"],
        })
    } else {
        json!({"user": {}, "error": "invalid bearer token"})
    };
    (
        StatusCode::CREATED,
        Json(json!({
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": {"token": token},
            "status": status,
        })),
    )
        .into_response()
}

async fn kube_api() -> (String, Calls) {
    let calls = Calls::default();
    let router = axum::Router::new()
        .route("/apis/user.openshift.io/v1/users/~", get(openshift_user))
        .route(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            post(token_review),
        )
        .with_state(calls.clone());
    (serve(router).await, calls)
}

#[tokio::test]
async fn bearer_token_user_method() {
    let (url, calls) = kube_api().await;
    let manager = manager_from_cli(&[&format!(
        "commissaire_http.authentication.openshiftbearertokenauth:url={url}/"
    )])
    .await
    .unwrap();
    assert_eq!(
        check(&manager, &bearer(GOOD_TOKEN)).await.as_deref(),
        Some("alice")
    );
    assert_eq!(calls.get(), 1);
    // Cached: no second call.
    assert_eq!(
        check(&manager, &bearer(GOOD_TOKEN)).await.as_deref(),
        Some("alice")
    );
    assert_eq!(calls.get(), 1);
    // Invalid tokens are asked about every time.
    assert_eq!(check(&manager, &bearer("sha256~forged")).await, None);
    assert_eq!(check(&manager, &bearer("sha256~forged")).await, None);
    assert_eq!(calls.get(), 3);
    // No or malformed credentials: nothing asked.
    assert_eq!(check(&manager, &HeaderMap::new()).await, None);
    assert_eq!(check(&manager, &basic("alice", GOOD_TOKEN)).await, None);
    assert_eq!(
        check(&manager, &header("authorization", "Bearer")).await,
        None
    );
    assert_eq!(calls.get(), 3);

    let dead = dead_url().await;
    let manager = manager_from_cli(&[&format!("openshiftbearertokenauth:url={dead}")])
        .await
        .unwrap();
    assert_eq!(check(&manager, &bearer(GOOD_TOKEN)).await, None);
}

#[tokio::test]
async fn bearer_token_tokenreview_method() {
    let (url, calls) = kube_api().await;
    let manager = manager_from_config(json!({
        "name": "kubernetesbearertokenauth",
        "url": url,
        "method": "tokenreview",
        "token": SERVICE_TOKEN,
    }))
    .await
    .unwrap();
    assert_eq!(manager.plugin_names(), vec!["kubernetesbearertokenauth"]);
    assert_eq!(
        check(&manager, &bearer(GOOD_TOKEN)).await.as_deref(),
        Some("system:serviceaccount:ops:robot")
    );
    assert_eq!(
        check(&manager, &bearer(GOOD_TOKEN)).await.as_deref(),
        Some("system:serviceaccount:ops:robot")
    );
    assert_eq!(calls.get(), 1, "the second check comes from the cache");
    assert_eq!(check(&manager, &bearer("expired-token")).await, None);
    assert_eq!(calls.get(), 2);

    // The server's own token is wrong: the API refuses the review -> denied.
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "not-the-service-token\n").unwrap();
    let manager = manager_from_cli(&[&format!(
        "openshiftbearertokenauth:url={url},method=tokenreview,token_file={}",
        token_file.display()
    )])
    .await
    .unwrap();
    assert_eq!(check(&manager, &bearer(GOOD_TOKEN)).await, None);

    let dead = dead_url().await;
    let manager = manager_from_cli(&[&format!(
        "openshiftbearertokenauth:url={dead},method=tokenreview,token={SERVICE_TOKEN}"
    )])
    .await
    .unwrap();
    assert_eq!(check(&manager, &bearer(GOOD_TOKEN)).await, None);
}

// ---------------------------------------------------------------- Keystone

const KEYSTONE_TOKEN: &str = "gAAAAABkeystone-valid-token";

fn keystone_error(code: StatusCode, message: &str) -> Response {
    (
        code,
        Json(json!({"error": {"code": code.as_u16(), "message": message, "title": code.canonical_reason()}})),
    )
        .into_response()
}

fn keystone_token_body(user: &str) -> Value {
    json!({"token": {
        "methods": ["password"],
        "user": {"domain": {"id": "default", "name": "Default"}, "id": "423f19a4ac1e4f48bbb4180756e6eb6c", "name": user, "password_expires_at": null},
        "audit_ids": ["ZzZwkUflQfygX7pdYDBCQQ"],
        "expires_at": "2030-01-01T00:00:00.000000Z",
        "issued_at": "2029-12-31T23:00:00.000000Z",
    }})
}

async fn keystone_validate(State(calls): State<Calls>, headers: HeaderMap) -> Response {
    calls.bump();
    let auth = headers.get("x-auth-token").and_then(|v| v.to_str().ok());
    let subject = headers.get("x-subject-token").and_then(|v| v.to_str().ok());
    if auth != Some(KEYSTONE_TOKEN) {
        return keystone_error(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        );
    }
    if subject != Some(KEYSTONE_TOKEN) {
        return keystone_error(StatusCode::NOT_FOUND, "Could not find token.");
    }
    let mut response = Json(keystone_token_body("bob")).into_response();
    response
        .headers_mut()
        .insert("x-subject-token", KEYSTONE_TOKEN.parse().unwrap());
    response
}

async fn keystone_issue(State(calls): State<Calls>, Json(body): Json<Value>) -> Response {
    calls.bump();
    let identity = &body["auth"]["identity"];
    let user = &identity["password"]["user"];
    let ok = identity["methods"] == json!(["password"])
        && user["name"] == "carol"
        && user["password"] == "keystone-pw"
        && user["domain"]["name"] == "default";
    if !ok {
        return keystone_error(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        );
    }
    let mut response = (StatusCode::CREATED, Json(keystone_token_body("carol"))).into_response();
    response
        .headers_mut()
        .insert("x-subject-token", "gAAAAABnew-token".parse().unwrap());
    response
}

async fn keystone() -> (String, Calls) {
    let calls = Calls::default();
    let router = axum::Router::new()
        .route(
            "/v3/auth/tokens",
            get(keystone_validate).post(keystone_issue),
        )
        .with_state(calls.clone());
    (serve(router).await, calls)
}

#[tokio::test]
async fn keystone_token() {
    let (url, calls) = keystone().await;
    let manager = manager_from_cli(&[&format!(
        "commissaire_http.authentication.keystonetokenauth:url={url}"
    )])
    .await
    .unwrap();
    let valid = header("x-auth-token", KEYSTONE_TOKEN);
    assert_eq!(check(&manager, &valid).await.as_deref(), Some("bob"));
    assert_eq!(check(&manager, &valid).await.as_deref(), Some("bob"));
    assert_eq!(calls.get(), 1, "the second check comes from the cache");
    assert_eq!(
        check(&manager, &header("x-auth-token", "gAAAAABforged")).await,
        None
    );
    assert_eq!(calls.get(), 2);
    assert_eq!(check(&manager, &HeaderMap::new()).await, None);
    assert_eq!(check(&manager, &bearer(KEYSTONE_TOKEN)).await, None);
    assert_eq!(calls.get(), 2);

    // A URL that already ends in /v3 works as well.
    let manager = manager_from_cli(&[&format!("keystonetokenauth:url={url}/v3,cache_ttl=0")])
        .await
        .unwrap();
    assert_eq!(check(&manager, &valid).await.as_deref(), Some("bob"));

    let dead = dead_url().await;
    let manager = manager_from_cli(&[&format!("keystonetokenauth:url={dead}")])
        .await
        .unwrap();
    assert_eq!(check(&manager, &valid).await, None);
}

#[tokio::test]
async fn keystone_password() {
    let (url, calls) = keystone().await;
    let manager = manager_from_config(json!({"name": "keystonepasswordauth", "url": url}))
        .await
        .unwrap();
    assert_eq!(
        check(&manager, &basic("carol", "keystone-pw"))
            .await
            .as_deref(),
        Some("carol")
    );
    assert_eq!(
        check(&manager, &basic("carol", "keystone-pw"))
            .await
            .as_deref(),
        Some("carol")
    );
    assert_eq!(calls.get(), 1, "the second check comes from the cache");
    assert_eq!(check(&manager, &basic("carol", "wrong")).await, None);
    assert_eq!(check(&manager, &basic("carol", "wrong")).await, None);
    assert_eq!(calls.get(), 3, "failures are not cached");
    assert_eq!(
        check(&manager, &basic("mallory", "keystone-pw")).await,
        None
    );
    assert_eq!(
        check(&manager, &header("authorization", "Basic ???")).await,
        None
    );
    assert_eq!(calls.get(), 4);

    // Another domain: Keystone refuses.
    let manager = manager_from_cli(&[&format!(
        "keystonepasswordauth:url={url}/v3/auth/tokens,domain=ldap"
    )])
    .await
    .unwrap();
    assert_eq!(check(&manager, &basic("carol", "keystone-pw")).await, None);

    let dead = dead_url().await;
    let manager = manager_from_cli(&[&format!("keystonepasswordauth:url={dead}")])
        .await
        .unwrap();
    assert_eq!(check(&manager, &basic("carol", "keystone-pw")).await, None);
}
