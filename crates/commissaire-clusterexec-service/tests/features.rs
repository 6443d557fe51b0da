//! Runs `features/operations/*.feature` against a real stack
//! (REST server, storage service on etcd, RabbitMQ, clusterexec) and the
//! testbed's sshd hosts 127.0.0.15 to .17, with cucumber-rs. Scenarios run
//! one at a time (they share the hosts).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use commissaire_clusterexec_service::ClusterExecHandle;
use common::{Markers, Stack, exec_config, strs};
use cucumber::gherkin::Step;
use cucumber::{World, given, then, when};
use futures::FutureExt;
use serde_json::{Value, json};

#[derive(World, Default)]
struct ExecWorld {
    stack: Option<Stack>,
    exec: Option<ClusterExecHandle>,
    markers: Option<Markers>,
    hosts: Vec<String>,
    status: u16,
    body: Value,
    seen: Vec<Value>,
}

impl std::fmt::Debug for ExecWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecWorld")
            .field("hosts", &self.hosts)
            .field("status", &self.status)
            .field("body", &self.body)
            .finish()
    }
}

impl ExecWorld {
    fn stack(&self) -> &Stack {
        self.stack.as_ref().expect("a running stack")
    }

    fn markers(&self) -> &Markers {
        self.markers.as_ref().expect("a running stack")
    }

    async fn request(&mut self, method: &str, path: &str, body: Option<String>) {
        let (status, body) = self.stack().send(method, path, body.as_deref()).await;
        self.status = status;
        self.body = body;
    }
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[given("a commissaire stack with a clusterexec service")]
async fn a_stack(w: &mut ExecWorld) {
    let stack = Stack::start().await;
    let markers = Markers::new();
    w.exec = Some(
        stack
            .clusterexec(&exec_config(&markers, "features", 10.0))
            .await,
    );
    w.stack = Some(stack);
    w.markers = Some(markers);
}

#[given(expr = "a cluster {string} of the test hosts {string}")]
async fn a_cluster(w: &mut ExecWorld, name: String, hosts: String) {
    w.hosts = words(&hosts);
    let hosts: Vec<&str> = w.hosts.iter().map(String::as_str).collect();
    w.stack().cluster(&name, &hosts).await;
}

#[when(expr = "we {word} {string}")]
async fn request(w: &mut ExecWorld, method: String, path: String) {
    w.request(&method.to_uppercase(), &path, None).await;
}

#[when(expr = "we {word} {string} with body:")]
async fn request_with_body(w: &mut ExecWorld, method: String, path: String, step: &Step) {
    let body = step.docstring.clone().expect("a body").trim().to_string();
    w.request(&method.to_uppercase(), &path, Some(body)).await;
}

#[when(expr = "we wait for {string} to end")]
async fn wait_end(w: &mut ExecWorld, path: String) {
    let mut parts = path.trim_start_matches("/api/v0/cluster/").split('/');
    let (name, op) = (parts.next().unwrap(), parts.next().unwrap());
    let (end, seen) = w.stack().wait_end(name, op, Duration::from_secs(180)).await;
    w.status = 200;
    w.body = end;
    w.seen = seen;
}

#[when("the first host has begun")]
async fn first_host_begun(w: &mut ExecWorld) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while w.markers().lines("upgrade.log").is_empty() {
        assert!(Instant::now() < deadline, "the first host never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[then(expr = "commissaire will note {word}")]
async fn note(w: &mut ExecWorld, what: String) {
    let expected = match what.as_str() {
        "success" => 200,
        "creation" => 201,
        "acceptance" => 202,
        _ => panic!("unknown note '{what}'"),
    };
    assert_eq!(w.status, expected, "{}", w.body);
}

#[when(expr = "we wait until {string} says {string} is {string}")]
async fn wait_until(w: &mut ExecWorld, path: String, member: String, value: String) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        w.request("GET", &path, None).await;
        if w.body[&member] == json!(value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{member} never became '{value}': {}",
            w.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[then("commissaire will note it's not found")]
async fn not_found(w: &mut ExecWorld) {
    assert_eq!(w.status, 404, "{}", w.body);
}

#[then(expr = "every host's timeline is {string}, done")]
async fn timeline_is(w: &mut ExecWorld, phases: String) {
    let timeline = w.body["timeline"].as_array().expect("a timeline");
    let hosts: Vec<&str> = timeline
        .iter()
        .map(|t| t["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, w.hosts, "{}", w.body);
    for entry in timeline {
        assert_eq!(entry["state"], "done", "{entry}");
        let got: Vec<&str> = entry["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["phase"].as_str().unwrap())
            .collect();
        assert_eq!(got, words(&phases), "{entry}");
    }
}

#[then(expr = "the operation's events are {string}")]
async fn events_are(w: &mut ExecWorld, events: String) {
    let got: Vec<String> = w.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    // "paused on request" stands for the pause request, by whoever made it.
    let expected: Vec<&str> = events.split("; ").collect();
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for (g, e) in got.iter().zip(expected) {
        let e = match e {
            "paused on request" => "pause requested by",
            "resume requested" => "resume requested by",
            other => other,
        };
        assert!(g.starts_with(e), "{g} is not {e}: {got:?}");
    }
}

#[then(expr = "the plan's batches are {string}")]
async fn batches_are(w: &mut ExecWorld, batches: String) {
    let expected: Vec<Vec<String>> = batches.split(" | ").map(words).collect();
    let got: Vec<Vec<String>> = w.body["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .map(strs)
        .collect();
    assert_eq!(got, expected, "{}", w.body);
}

#[then("no host was worked on")]
async fn no_host_worked_on(w: &mut ExecWorld) {
    for file in ["restart.log", "upgrade.log", "deploy.log"] {
        assert!(w.markers().lines(file).is_empty(), "{file}");
    }
}

#[then("commissaire will note a conflict")]
async fn conflict(w: &mut ExecWorld) {
    assert_eq!(w.status, 409, "{}", w.body);
}

#[then(expr = "the response's {string} is {string}")]
async fn member_is(w: &mut ExecWorld, member: String, value: String) {
    assert_eq!(w.body[&member], json!(value), "{}", w.body);
}

#[then(expr = "the response's {string} lists {string}")]
async fn member_lists(w: &mut ExecWorld, member: String, items: String) {
    assert_eq!(strs(&w.body[&member]), words(&items), "{}", w.body);
}

#[then("the operation was seen in process with its hosts done one by one")]
async fn seen_partial(w: &mut ExecWorld) {
    let done = w
        .body
        .as_object()
        .unwrap()
        .keys()
        .find(|k| ["restarted", "upgraded", "deployed"].contains(&k.as_str()));
    let done = done.expect("a done list").clone();
    for (i, h) in w.hosts.iter().enumerate() {
        assert!(
            w.seen.iter().any(|r| r["status"] == "in_process"
                && strs(&r["in_process"]) == [h.clone()]
                && strs(&r[&done]) == w.hosts[..i]),
            "never saw {h} alone in process after {:?}: {:#?}",
            &w.hosts[..i],
            w.seen
        );
    }
}

#[then(expr = "the hosts were {word} one after another")]
async fn one_after_another(w: &mut ExecWorld, what: String) {
    let (file, first, last) = match what.as_str() {
        "restarted" => ("restart.log", "start", "up"),
        "upgraded" => ("upgrade.log", "start", "end"),
        other => panic!("unknown operation '{other}'"),
    };
    let ev = w.markers().events(file);
    let t = |h: &str, e: &str| {
        *ev.get(&(h.to_string(), e.to_string()))
            .unwrap_or_else(|| panic!("no '{e}' mark for {h}: {ev:?}"))
    };
    for pair in w.hosts.windows(2) {
        assert!(t(&pair[0], first) < t(&pair[0], last), "{ev:?}");
        assert!(
            t(&pair[0], last) < t(&pair[1], first),
            "{} began before {} was done: {ev:?}",
            pair[1],
            pair[0]
        );
    }
}

#[then(expr = "every host got version {string}, one after another")]
async fn got_version(w: &mut ExecWorld, version: String) {
    let got: Vec<(String, String)> = w
        .markers()
        .lines("deploy.log")
        .into_iter()
        .map(|l| (l[0].clone(), l[1].clone()))
        .collect();
    let expected: Vec<(String, String)> = w
        .hosts
        .iter()
        .map(|h| (h.clone(), version.clone()))
        .collect();
    assert_eq!(got, expected);
}

#[tokio::main]
async fn main() {
    let feature = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../features/operations");
    ExecWorld::cucumber()
        .with_default_cli()
        .max_concurrent_scenarios(1)
        // The feature allows skipped steps for the other runners; here every step must run.
        .fail_on_skipped_with(|_, _, _| true)
        .after(|_, _, _, _, world| {
            async move {
                if let Some(w) = world
                    && let Some(exec) = w.exec.take()
                {
                    exec.shutdown().await;
                }
            }
            .boxed()
        })
        .run_and_exit(feature)
        .await;
}
