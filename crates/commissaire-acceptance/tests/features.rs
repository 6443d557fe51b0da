//! Runs the Gherkin features in `features/` against a real stack (REST
//! server, storage service, etcd, RabbitMQ), with cucumber-rs.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Stack, StackOptions};
use cucumber::gherkin::Step;
use cucumber::{World, given, then, when};
use serde_json::{Value, json};

/// Who the requests are sent as.
#[derive(Debug, Default, Clone, PartialEq)]
enum Identity {
    #[default]
    Anonymous,
    Basic(String, String),
    ClientCert(String),
}

#[derive(World, Default)]
struct ApiWorld {
    stack: Option<Stack>,
    certs: Option<Certs>,
    identity: Identity,
    status: u16,
    body: Value,
}

impl std::fmt::Debug for ApiWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiWorld")
            .field("identity", &self.identity)
            .field("status", &self.status)
            .field("body", &self.body)
            .finish()
    }
}

/// A CA, a server certificate and client certificates made with openssl.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn make() -> Certs {
        let certs = Certs {
            dir: tempfile::tempdir().unwrap(),
        };
        certs.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
        ]);
        std::fs::write(
            certs.path("server.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        std::fs::write(
            certs.path("client.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        certs.issue("server", Some("server.ext"));
        let server = [
            std::fs::read(certs.path("server.pem")).unwrap(),
            std::fs::read(certs.path("server.key")).unwrap(),
        ]
        .concat();
        std::fs::write(certs.path("server-bundle.pem"), server).unwrap();
        certs.issue("test-client", Some("client.ext"));
        certs.issue("other-client", Some("client.ext"));
        certs
    }

    fn issue(&self, cn: &str, ext: Option<&str>) {
        let (key, csr, pem) = (
            format!("{cn}.key"),
            format!("{cn}.csr"),
            format!("{cn}.pem"),
        );
        self.openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ]);
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
        ];
        if let Some(ext) = ext {
            args.extend(["-extfile", ext]);
        }
        self.openssl(&args);
    }

    fn identity(&self, cn: &str) -> reqwest::Identity {
        let pem = [
            std::fs::read(self.path(&format!("{cn}.pem"))).unwrap(),
            std::fs::read(self.path(&format!("{cn}.key"))).unwrap(),
        ]
        .concat();
        reqwest::Identity::from_pem(&pem).unwrap()
    }
}

impl ApiWorld {
    fn stack(&self) -> &Stack {
        self.stack.as_ref().expect("a running commissaire server")
    }

    async fn request(&mut self, method: &str, path: &str, body: Option<String>) {
        let stack = self.stack.as_ref().expect("a running commissaire server");
        let client = match (&self.identity, &self.certs) {
            (Identity::ClientCert(cn), Some(certs)) => reqwest::Client::builder()
                .add_root_certificate(
                    reqwest::Certificate::from_pem(&std::fs::read(certs.path("ca.pem")).unwrap())
                        .unwrap(),
                )
                .identity(certs.identity(cn))
                .build()
                .unwrap(),
            _ => stack.client.clone(),
        };
        let mut req = client.request(method.parse().unwrap(), stack.url(path));
        if let Identity::Basic(user, password) = &self.identity {
            req = req.basic_auth(user, Some(password));
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let resp = req.send().await.expect("the server answers");
        self.status = resp.status().as_u16();
        self.body = serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null);
    }

    async fn admin(&mut self, method: &str, path: &str, body: Value) {
        let (status, reply) = self
            .stack()
            .send(method, path, Some(&body.to_string()))
            .await;
        assert!(
            status < 300,
            "setting up: {method} {path}: {status} {reply}"
        );
    }
}

fn lookup<'a>(value: &'a Value, dotted: &str) -> &'a Value {
    dotted
        .split('.')
        .fold(value, |v, key| match key.parse::<usize>() {
            Ok(i) => &v[i],
            Err(_) => &v[key],
        })
}

#[given("a running commissaire server")]
async fn running_server(w: &mut ApiWorld) {
    w.stack = Some(Stack::start().await);
}

#[given(expr = "a running commissaire server with TLS client certificates for {string}")]
async fn running_tls_server(w: &mut ApiWorld, cn: String) {
    // openssl runs off the worker threads the scenarios share.
    let certs = tokio::task::spawn_blocking(Certs::make).await.unwrap();
    let mut options = StackOptions::default();
    options.args.tls_pemfile = Some(certs.path("server-bundle.pem"));
    options.args.tls_clientverifyfile = Some(certs.path("ca.pem"));
    options.args.authentication_plugins = vec![format!(
        "commissaire_http.authentication.httpauthclientcert:cn={cn}"
    )];
    w.stack = Some(Stack::start_with(options).await);
    w.certs = Some(certs);
}

#[given("we are anonymous")]
async fn anonymous(w: &mut ApiWorld) {
    w.identity = Identity::Anonymous;
}

#[given("we have a valid username and password")]
async fn valid_user(w: &mut ApiWorld) {
    w.identity = Identity::Basic(common::USER.into(), common::PASSWORD.into());
}

#[given("we have a wrong password")]
async fn wrong_password(w: &mut ApiWorld) {
    w.identity = Identity::Basic(common::USER.into(), "not-the-password".into());
}

#[given(expr = "we have a client certificate for {string}")]
async fn client_cert(w: &mut ApiWorld, cn: String) {
    w.identity = Identity::ClientCert(cn);
}

#[given(expr = "we have a cluster named {string}")]
async fn a_cluster(w: &mut ApiWorld, name: String) {
    w.admin("PUT", &format!("/api/v0/cluster/{name}"), json!({}))
        .await;
}

#[given(expr = "we have a cluster named {string} with container manager {string}")]
async fn a_managed_cluster(w: &mut ApiWorld, name: String, cm: String) {
    w.admin(
        "PUT",
        &format!("/api/v0/containermanager/{cm}"),
        json!({"type": "trivial"}),
    )
    .await;
    w.admin(
        "PUT",
        &format!("/api/v0/cluster/{name}"),
        json!({"container_manager": cm}),
    )
    .await;
}

#[given(expr = "we have a host at {string}")]
async fn a_host(w: &mut ApiWorld, address: String) {
    w.admin(
        "PUT",
        &format!("/api/v0/host/{address}"),
        json!({"ssh_priv_key": common::KEY}),
    )
    .await;
}

#[given(expr = "we have a host at {string} whose status is {string}")]
async fn a_host_with_status(w: &mut ApiWorld, address: String, status: String) {
    a_host(w, address.clone()).await;
    w.stack().set_host_status(&address, &status).await;
}

#[given(expr = "host {string} is in cluster {string}")]
async fn member(w: &mut ApiWorld, address: String, cluster: String) {
    w.admin(
        "PUT",
        &format!("/api/v0/cluster/{cluster}/hosts/{address}"),
        json!({}),
    )
    .await;
}

#[given(expr = "we have a network named {string}")]
async fn a_network(w: &mut ApiWorld, name: String) {
    w.admin(
        "PUT",
        &format!("/api/v0/network/{name}"),
        json!({"type": "flannel_etcd"}),
    )
    .await;
}

#[given(expr = "we have a container manager named {string}")]
async fn a_container_manager(w: &mut ApiWorld, name: String) {
    w.admin(
        "PUT",
        &format!("/api/v0/containermanager/{name}"),
        json!({"type": "trivial"}),
    )
    .await;
}

#[when(expr = "we {word} {string}")]
async fn request(w: &mut ApiWorld, method: String, path: String) {
    w.request(&method.to_uppercase(), &path, None).await;
}

#[when(expr = "we {word} {string} with body:")]
async fn request_with_body(w: &mut ApiWorld, method: String, path: String, step: &Step) {
    let body = step.docstring.clone().expect("a body").trim().to_string();
    w.request(&method.to_uppercase(), &path, Some(body)).await;
}

#[then("commissaire will deny access")]
async fn denied(w: &mut ApiWorld) {
    assert_eq!(w.status, 403, "{}", w.body);
}

#[then("commissaire will allow access")]
async fn allowed(w: &mut ApiWorld) {
    assert_ne!(w.status, 403, "{}", w.body);
}

#[then(expr = "commissaire will note {word}")]
async fn note(w: &mut ApiWorld, what: String) {
    let expected = match what.as_str() {
        "success" => 200,
        "creation" => 201,
        "acceptance" => 202,
        _ => panic!("unknown note '{what}'"),
    };
    assert_eq!(w.status, expected, "{}", w.body);
}

#[then("commissaire will note a bad request")]
async fn bad_request(w: &mut ApiWorld) {
    assert_eq!(w.status, 400, "{}", w.body);
}

#[then("commissaire will note it's not found")]
async fn not_found(w: &mut ApiWorld) {
    assert_eq!(w.status, 404, "{}", w.body);
}

#[then("commissaire will note a conflict")]
async fn conflict(w: &mut ApiWorld) {
    assert_eq!(w.status, 409, "{}", w.body);
}

#[then("commissaire will note the method is not allowed")]
async fn not_allowed(w: &mut ApiWorld) {
    assert_eq!(w.status, 405, "{}", w.body);
}

#[then("the response is:")]
async fn response_is(w: &mut ApiWorld, step: &Step) {
    let expected: Value = serde_json::from_str(step.docstring.as_ref().expect("a JSON document"))
        .expect("valid JSON");
    assert_eq!(w.body, expected);
}

#[then(expr = "the response's {string} is {string}")]
async fn member_is_string(w: &mut ApiWorld, path: String, value: String) {
    assert_eq!(lookup(&w.body, &path), &json!(value), "{}", w.body);
}

#[then(expr = "the response's {string} is true")]
async fn member_is_true(w: &mut ApiWorld, path: String) {
    assert_eq!(lookup(&w.body, &path), &json!(true), "{}", w.body);
}

#[then(expr = "the response's {string} is {int}")]
async fn member_is_int(w: &mut ApiWorld, path: String, value: i64) {
    assert_eq!(lookup(&w.body, &path), &json!(value), "{}", w.body);
}

#[then(expr = "the response names the field {string}")]
async fn names_field(w: &mut ApiWorld, field: String) {
    assert_eq!(w.body["field"], json!(field), "{}", w.body);
}

#[then(expr = "the response lists {string}")]
async fn lists(w: &mut ApiWorld, item: String) {
    let items = w
        .body
        .as_array()
        .unwrap_or_else(|| panic!("a list, got {}", w.body));
    assert!(items.contains(&json!(item)), "{} not in {}", item, w.body);
}

#[then("the response is an empty list")]
async fn empty_list(w: &mut ApiWorld) {
    assert_eq!(w.body, json!([]));
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let features = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../features/api");
    ApiWorld::cucumber()
        .with_default_cli()
        .max_concurrent_scenarios(4)
        .fail_on_skipped()
        .run_and_exit(features)
        .await;
}
