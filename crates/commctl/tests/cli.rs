//! The real `commctl` binary against a running stack: every command, its
//! output (tables and `--json`) and exit codes.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use common::{DATE, Stack, commctl_in, dead_port};
use serde_json::{Value, json};

const NOT_FOUND: i32 = 3;
const CONFLICT: i32 = 4;
const AUTH: i32 = 5;
const UNREACHABLE: i32 = 6;
const BAD_REQUEST: i32 = 7;

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[test]
fn cluster_create_get_list_delete() {
    let s = Stack::start();
    let out = s.commctl(&["cluster", "create", "alpha"]).expect(0);
    assert!(out.stdout.contains("alpha"), "{out:?}");
    assert!(out.stdout.contains("FIELD"), "{out:?}");
    // Re-creating an identical cluster succeeds.
    s.commctl(&["cluster", "create", "alpha"]).expect(0);
    // --type is accepted (documented) and ignored.
    let out = s
        .commctl(&[
            "cluster",
            "create",
            "-t",
            "kubernetes",
            "-n",
            "default",
            "beta",
        ])
        .expect(0);
    assert!(out.stderr.contains("--type is ignored"), "{out:?}");

    // A different network for an existing cluster: 409.
    s.commctl(&["network", "create", "othernet"]).expect(0);
    let out = s
        .commctl(&["cluster", "create", "--network", "othernet", "alpha"])
        .expect(CONFLICT);
    assert!(out.stderr.starts_with("error: "), "{out:?}");
    assert!(out.stderr.contains("(409)"), "{out:?}");
    // An unknown network: 400.
    let out = s
        .commctl(&["cluster", "create", "-n", "nosuchnet", "gamma"])
        .expect(BAD_REQUEST);
    assert!(out.stderr.contains("nosuchnet"), "{out:?}");
    assert!(out.stderr.contains("(400)"), "{out:?}");

    // get: table and JSON.
    let out = s.commctl(&["cluster", "get", "alpha"]).expect(0);
    assert!(out.stdout.contains("hosts.total"), "{out:?}");
    assert!(out.stdout.contains("network"), "{out:?}");
    let got = s
        .commctl(&["--json", "cluster", "get", "alpha"])
        .expect(0)
        .json();
    assert_eq!(got["name"], "alpha");
    assert_eq!(got["network"], "default");
    assert_eq!(got["status"], "ok");
    assert_eq!(
        got["hosts"],
        json!({"total": 0, "available": 0, "unavailable": 0})
    );
    // --json also works after the subcommand.
    let got = s
        .commctl(&["cluster", "get", "beta", "--json"])
        .expect(0)
        .json();
    assert_eq!(got["name"], "beta");

    // list
    let out = s.commctl(&["cluster", "list"]).expect(0);
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    assert_eq!(lines, ["NAME", "alpha", "beta"], "{out:?}");
    let list = s.commctl(&["cluster", "list", "--json"]).expect(0).json();
    assert_eq!(list, json!(["alpha", "beta"]));

    // missing: 404 with the server's message.
    let out = s.commctl(&["cluster", "get", "nope"]).expect(NOT_FOUND);
    assert_eq!(
        out.stderr.trim(),
        "error: cluster 'nope' does not exist (404)"
    );

    // delete several; a missing one is reported, the others still go.
    let out = s
        .commctl(&["cluster", "delete", "alpha", "nope", "beta"])
        .expect(NOT_FOUND);
    assert!(out.stdout.contains("Deleted cluster 'alpha'"), "{out:?}");
    assert!(out.stdout.contains("Deleted cluster 'beta'"), "{out:?}");
    assert!(
        out.stderr.contains("cluster 'nope' does not exist (404)"),
        "{out:?}"
    );
    let out = s.commctl(&["cluster", "list"]).expect(0);
    assert_eq!(out.stdout.trim(), "(no clusters)");
    assert_eq!(
        s.commctl(&["cluster", "list", "--json"]).expect(0).json(),
        json!([])
    );
    let del = s
        .commctl(&["--json", "cluster", "delete", "nope"])
        .expect(NOT_FOUND);
    assert!(del.stdout.is_empty(), "{del:?}");
}

#[test]
fn cluster_with_container_manager_and_operations() {
    let s = Stack::start();
    s.commctl(&["container_manager", "create", "-t", "trivial", "cm1"])
        .expect(0);
    let got = s
        .commctl(&[
            "--json",
            "cluster",
            "create",
            "--container-manager",
            "cm1",
            "--network",
            "default",
            "ops",
        ])
        .expect(0)
        .json();
    assert_eq!(got["container_manager"], "cm1");
    // An unknown container manager: 400.
    s.commctl(&["cluster", "create", "--container-manager", "nocm", "x"])
        .expect(BAD_REQUEST);

    // deploy
    let out = s
        .commctl(&["cluster", "deploy", "status", "ops"])
        .expect(NOT_FOUND);
    assert!(out.stderr.contains("no deploy was ever started"), "{out:?}");
    let rec = s
        .commctl(&["--json", "cluster", "deploy", "start", "ops", "7.4.1"])
        .expect(0)
        .json();
    assert_eq!(rec["status"], "in_process");
    assert_eq!(rec["version"], "7.4.1");
    let out = s.commctl(&["cluster", "deploy", "status", "ops"]).expect(0);
    assert!(out.stdout.contains("in_process"), "{out:?}");
    assert!(out.stdout.contains("7.4.1"), "{out:?}");
    // One at a time.
    s.commctl(&["cluster", "deploy", "start", "ops", "7.4.2"])
        .expect(CONFLICT);
    s.commctl(&["cluster", "deploy", "start", "nocluster", "1"])
        .expect(NOT_FOUND);

    // restart
    let out = s.commctl(&["cluster", "restart", "start", "ops"]).expect(0);
    assert!(out.stdout.contains("in_process"), "{out:?}");
    let rec = s
        .commctl(&["cluster", "restart", "status", "ops", "--json"])
        .expect(0)
        .json();
    assert_eq!(rec["name"], "ops");
    assert_eq!(rec["restarted"], json!([]));
    s.commctl(&["cluster", "restart", "start", "ops"])
        .expect(CONFLICT);

    // upgrade (the documented VERSION argument is accepted and ignored)
    let out = s
        .commctl(&["cluster", "upgrade", "start", "ops", "7.2.2"])
        .expect(0);
    assert!(out.stderr.contains("VERSION is ignored"), "{out:?}");
    let rec = s
        .commctl(&["--json", "cluster", "upgrade", "status", "ops"])
        .expect(0)
        .json();
    assert_eq!(rec["status"], "in_process");
    assert_eq!(rec["upgraded"], json!([]));
    s.commctl(&["cluster", "upgrade", "status", "nocluster"])
        .expect(NOT_FOUND);
}

fn restart_record(status: &str, restarted: &[&str], in_process: &[&str]) -> Value {
    json!({
        "name": "w", "status": status, "restarted": restarted, "in_process": in_process,
        "started_at": DATE, "finished_at": if status == "in_process" { "" } else { DATE },
    })
}

fn watch_until(s: &Stack, last: Value, expected_code: i32) -> common::Run {
    s.commctl(&["cluster", "create", "w"]).expect(0);
    for address in ["10.9.0.1", "10.9.0.2"] {
        s.commctl(&[
            "host",
            "create",
            "--cluster",
            "w",
            address,
            s.write("key", "KEY").to_str().unwrap(),
        ])
        .expect(0);
    }
    s.commctl(&["cluster", "restart", "start", "w"]).expect(0);
    let mut child = s
        .command(&[
            "cluster",
            "restart",
            "status",
            "w",
            "--watch",
            "--interval",
            "0.1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Follow the progress lines (stderr is not a terminal) to change the
    // record only once the watcher has seen the previous state.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    let wait_for = |needle: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => {}
                Err(e) => panic!("the watcher never printed '{needle}': {e}"),
            }
        }
    };
    wait_for("0/2 hosts");
    s.save(
        "ClusterRestart",
        restart_record("in_process", &["10.9.0.1"], &["10.9.0.2"]),
    );
    wait_for("1/2 hosts");
    s.save("ClusterRestart", last);
    let output = child.wait_with_output().unwrap();
    let run = common::Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: reader.join().unwrap(),
    };
    run.expect(expected_code)
}

#[test]
fn restart_status_watch_until_finished() {
    let s = Stack::start();
    let out = watch_until(
        &s,
        restart_record("finished", &["10.9.0.1", "10.9.0.2"], &[]),
        0,
    );
    // Progress (stderr is not a terminal: one line per change).
    assert!(
        out.stderr.contains("restart of cluster 'w': 0/2 hosts"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("restart of cluster 'w': 1/2 hosts (in_process: 10.9.0.2)"),
        "{out:?}"
    );
    assert!(out.stdout.contains("finished"), "{out:?}");
    assert!(out.stdout.contains("10.9.0.1, 10.9.0.2"), "{out:?}");
}

#[test]
fn restart_status_watch_until_failed() {
    let s = Stack::start();
    let out = watch_until(
        &s,
        restart_record("failed", &["10.9.0.1"], &["10.9.0.2"]),
        1,
    );
    assert!(
        out.stderr
            .contains("error: the restart of cluster 'w' failed (at host 10.9.0.2)"),
        "{out:?}"
    );
    assert!(out.stdout.contains("failed"), "{out:?}");
}

#[test]
fn watch_json_prints_the_final_record() {
    let s = Stack::start();
    s.commctl(&["cluster", "create", "u"]).expect(0);
    s.save(
        "ClusterUpgrade",
        json!({"name": "u", "status": "finished", "upgraded": [], "in_process": [],
               "started_at": DATE, "finished_at": DATE}),
    );
    let rec = s
        .commctl(&["--json", "cluster", "upgrade", "status", "-w", "u"])
        .expect(0)
        .json();
    assert_eq!(rec["status"], "finished");
    s.commctl(&[
        "cluster",
        "upgrade",
        "status",
        "--watch",
        "--interval",
        "0",
        "u",
    ])
    .expect(1);
}

#[test]
fn host_commands() {
    let s = Stack::start();
    let key = s.write("id_test", "-----BEGIN KEY-----\nabc\n-----END KEY-----\n");
    let key = key.to_str().unwrap();
    s.commctl(&["cluster", "create", "hc"]).expect(0);

    // create (with a cluster and remote user)
    let out = s
        .commctl(&[
            "host",
            "create",
            "--cluster",
            "hc",
            "-r",
            "core",
            "10.1.0.1",
            key,
        ])
        .expect(0);
    assert!(out.stdout.contains("10.1.0.1"), "{out:?}");
    assert!(
        !out.stdout.contains("abc"),
        "the key must not be printed: {out:?}"
    );
    let host = s
        .commctl(&[
            "--json",
            "host",
            "create",
            "--cluster",
            "hc",
            "10.1.0.1",
            key,
        ])
        .expect(0)
        .json();
    assert_eq!(host["address"], "10.1.0.1");
    // same address, another key: 409
    let other = s.write("other", "OTHER");
    s.commctl(&["host", "create", "10.1.0.1", other.to_str().unwrap()])
        .expect(CONFLICT);
    // unknown cluster: 409 (as the original)
    s.commctl(&["host", "create", "--cluster", "nocluster", "10.1.0.9", key])
        .expect(CONFLICT);
    // unreadable key file: local error
    let out = s
        .commctl(&["host", "create", "10.1.0.8", "/nonexistent/key"])
        .expect(1);
    assert!(out.stderr.contains("/nonexistent/key"), "{out:?}");
    // key from stdin
    let mut child = s
        .command(&["host", "create", "10.1.0.2", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"STDINKEY").unwrap();
    let run: common::Run = child.wait_with_output().unwrap().into();
    run.expect(0);

    // get
    let out = s.commctl(&["host", "get", "10.1.0.1"]).expect(0);
    assert!(out.stdout.contains("investigating"), "{out:?}");
    let got = s
        .commctl(&["host", "get", "10.1.0.1", "--json"])
        .expect(0)
        .json();
    assert_eq!(got["status"], "investigating");
    let out = s.commctl(&["host", "get", "10.1.0.77"]).expect(NOT_FOUND);
    assert_eq!(
        out.stderr.trim(),
        "error: host '10.1.0.77' does not exist (404)"
    );

    // list: all hosts, and a cluster's members
    let out = s.commctl(&["host", "list"]).expect(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ADDRESS") && lines[0].contains("STATUS"),
        "{out:?}"
    );
    assert!(
        lines[1].starts_with("10.1.0.1") && lines[1].contains("investigating"),
        "{out:?}"
    );
    assert!(lines[2].starts_with("10.1.0.2"), "{out:?}");
    let all = s.commctl(&["--json", "host", "list"]).expect(0).json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    let out = s.commctl(&["host", "list", "hc"]).expect(0);
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    assert_eq!(lines, ["ADDRESS", "10.1.0.1"], "{out:?}");
    assert_eq!(
        s.commctl(&["--json", "host", "list", "hc"])
            .expect(0)
            .json(),
        json!(["10.1.0.1"])
    );
    s.commctl(&["host", "list", "nocluster"]).expect(NOT_FOUND);
    // filtered by the server: status, os, a cluster's members
    let listed = s
        .commctl(&["--json", "host", "list", "--status", "investigating"])
        .expect(0)
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let out = s
        .commctl(&["host", "list", "--status", "failed,active"])
        .expect(0);
    assert_eq!(out.stdout.trim(), "(no hosts)", "{out:?}");
    let listed = s
        .commctl(&["--json", "host", "list", "hc", "--status", "investigating"])
        .expect(0)
        .json();
    assert_eq!(listed[0]["address"], "10.1.0.1", "{listed}");
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let out = s
        .commctl(&["host", "list", "--status", "bogus"])
        .expect(BAD_REQUEST);
    assert!(out.stderr.contains("status"), "{out:?}");

    // retry: nothing to retry while it is queued; a failed host is
    // investigated again
    let out = s.commctl(&["host", "retry", "10.1.0.2"]).expect(CONFLICT);
    assert!(out.stderr.contains("nothing to retry"), "{out:?}");
    s.bus_request(
        "storage.delete",
        json!({"model_type_name": "Investigation", "model_json_data": {"address": "10.1.0.2"}}),
    )
    .unwrap();
    s.set_host_status("10.1.0.2", "failed");
    let out = s.commctl(&["host", "retry", "10.1.0.2"]).expect(0);
    assert_eq!(
        out.stdout.trim(),
        "Host '10.1.0.2' is investigating again",
        "{out:?}"
    );
    s.commctl(&["host", "retry", "10.1.0.77"]).expect(NOT_FOUND);

    // status
    let st = s
        .commctl(&["--json", "host", "status", "10.1.0.1"])
        .expect(0)
        .json();
    assert_eq!(st["type"], "host_only");
    assert_eq!(st["host"]["status"], "investigating");
    let out = s.commctl(&["host", "status", "10.1.0.1"]).expect(0);
    assert!(out.stdout.contains("host.status"), "{out:?}");
    s.commctl(&["host", "status", "10.1.0.77"])
        .expect(NOT_FOUND);

    // creds: the one command that prints the key
    let creds = s
        .commctl(&["--json", "host", "creds", "10.1.0.1"])
        .expect(0)
        .json();
    assert_eq!(creds["remote_user"], "core");
    assert_eq!(
        creds["ssh_priv_key"],
        b64(b"-----BEGIN KEY-----\nabc\n-----END KEY-----\n")
    );
    let out = s.commctl(&["host", "creds", "10.1.0.1"]).expect(0);
    assert!(out.stdout.contains("remote_user: core"), "{out:?}");
    assert!(out.stdout.contains("-----BEGIN KEY-----\nabc"), "{out:?}");
    let creds = s
        .commctl(&["--json", "host", "creds", "10.1.0.2"])
        .expect(0)
        .json();
    assert_eq!(creds["ssh_priv_key"], b64(b"STDINKEY"));
    assert_eq!(creds["remote_user"], "root");
    s.commctl(&["host", "creds", "10.1.0.77"]).expect(NOT_FOUND);

    // join: the host must be active or disassociated
    s.commctl(&["cluster", "create", "other"]).expect(0);
    let out = s
        .commctl(&["host", "join", "10.1.0.2", "other"])
        .expect(CONFLICT);
    assert!(out.stderr.contains("investigating"), "{out:?}");
    s.set_host_status("10.1.0.2", "active");
    let out = s.commctl(&["host", "join", "10.1.0.2", "other"]).expect(0);
    assert_eq!(
        out.stdout.trim(),
        "Host '10.1.0.2' is a member of cluster 'other'"
    );
    assert_eq!(
        s.commctl(&["--json", "host", "join", "10.1.0.2", "other"])
            .expect(0)
            .json(),
        json!(["10.1.0.2"])
    );
    assert_eq!(
        s.commctl(&["--json", "host", "list", "other"])
            .expect(0)
            .json(),
        json!(["10.1.0.2"])
    );
    let got = s
        .commctl(&["--json", "cluster", "get", "other"])
        .expect(0)
        .json();
    assert_eq!(got["hosts"]["available"], 1);
    s.commctl(&["host", "join", "10.1.0.77", "other"])
        .expect(NOT_FOUND);
    s.commctl(&["host", "join", "10.1.0.2", "nocluster"])
        .expect(NOT_FOUND);

    // unjoin
    let out = s
        .commctl(&["host", "unjoin", "10.1.0.2", "other"])
        .expect(0);
    assert_eq!(
        out.stdout.trim(),
        "Host '10.1.0.2' is not a member of cluster 'other'"
    );
    assert_eq!(
        s.commctl(&["--json", "host", "list", "other"])
            .expect(0)
            .json(),
        json!([])
    );
    s.commctl(&["host", "unjoin", "10.1.0.2", "nocluster"])
        .expect(NOT_FOUND);

    // delete several
    let out = s
        .commctl(&["host", "delete", "10.1.0.1", "10.1.0.2"])
        .expect(0);
    assert!(out.stdout.contains("Deleted host '10.1.0.1'"), "{out:?}");
    assert!(out.stdout.contains("Deleted host '10.1.0.2'"), "{out:?}");
    assert_eq!(
        s.commctl(&["host", "list"]).expect(0).stdout.trim(),
        "(no hosts)"
    );
    s.commctl(&["host", "delete", "10.1.0.1"]).expect(NOT_FOUND);
    // A bad address is the server's 400.
    s.commctl(&["host", "get", "bad address!"])
        .expect(BAD_REQUEST);
}

#[test]
fn network_commands() {
    let s = Stack::start();
    let got = s
        .commctl(&[
            "--json",
            "network",
            "create",
            "--type",
            "flannel_server",
            "--options",
            r#"{"address": "192.168.152.100:8080"}"#,
            "fs",
        ])
        .expect(0)
        .json();
    assert_eq!(
        got,
        json!({"name": "fs", "type": "flannel_server", "options": {"address": "192.168.152.100:8080"}})
    );
    // KEY=VALUE works too; re-creating identically is fine.
    s.commctl(&[
        "network",
        "create",
        "-t",
        "flannel_server",
        "--options",
        "address=192.168.152.100:8080",
        "fs",
    ])
    .expect(0);
    // Different settings: 409.
    s.commctl(&["network", "create", "fs"]).expect(CONFLICT);
    // flannel_server needs an address: 400 naming the field.
    let out = s
        .commctl(&["network", "create", "-t", "flannel_server", "bad"])
        .expect(BAD_REQUEST);
    assert!(out.stderr.contains("options.address"), "{out:?}");
    // Bad local input.
    let out = s
        .commctl(&["network", "create", "--options", "{not json", "x"])
        .expect(1);
    assert!(out.stderr.contains("not a valid JSON object"), "{out:?}");
    // clap rejects unknown types.
    s.commctl(&["network", "create", "-t", "vxlan", "x"])
        .expect(2);

    let out = s.commctl(&["network", "get", "fs"]).expect(0);
    assert!(out.stdout.contains("options.address"), "{out:?}");
    assert!(out.stdout.contains("192.168.152.100:8080"), "{out:?}");
    let out = s.commctl(&["network", "list"]).expect(0);
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    assert_eq!(lines, ["NAME", "default", "fs"], "{out:?}");
    assert_eq!(
        s.commctl(&["network", "list", "--json"]).expect(0).json(),
        json!(["default", "fs"])
    );
    // In use by a cluster: 409.
    s.commctl(&["cluster", "create", "-n", "fs", "c"]).expect(0);
    s.commctl(&["network", "delete", "fs"]).expect(CONFLICT);
    s.commctl(&["cluster", "delete", "c"]).expect(0);
    let out = s.commctl(&["network", "delete", "fs"]).expect(0);
    assert_eq!(out.stdout.trim(), "Deleted network 'fs'");
    s.commctl(&["network", "get", "fs"]).expect(NOT_FOUND);
    s.commctl(&["network", "delete", "fs"]).expect(NOT_FOUND);
}

#[test]
fn container_manager_commands() {
    let s = Stack::start();
    // Both option forms, merged.
    let got = s
        .commctl(&[
            "--json",
            "container_manager",
            "create",
            "-t",
            "kubernetes",
            "--options",
            r#"{"server_url": "https://k8s.example.com:6443"}"#,
            "--options",
            "token=aaa",
            "k8s",
        ])
        .expect(0)
        .json();
    assert_eq!(got["type"], "kubernetes");
    // The token is a secret: never shown back.
    assert_eq!(
        got["options"],
        json!({"server_url": "https://k8s.example.com:6443", "token": "********"})
    );
    // Default type is openshift; the documented --options= form.
    let got = s
        .commctl(&[
            "--json",
            "container_manager",
            "create",
            r#"--options={ "server_url": "https://openshift.example.com", "token": "aaa"}"#,
            "ocp",
        ])
        .expect(0)
        .json();
    assert_eq!(got["type"], "openshift");
    s.commctl(&["container-manager", "create", "-t", "trivial", "triv"])
        .expect(0);
    s.commctl(&["container_manager", "create", "-t", "trivial", "k8s"])
        .expect(CONFLICT);

    let out = s.commctl(&["container_manager", "get", "k8s"]).expect(0);
    assert!(out.stdout.contains("options.server_url"), "{out:?}");
    assert!(!out.stdout.contains("aaa"), "the token is masked: {out:?}");
    assert!(out.stdout.contains("********"), "{out:?}");
    assert_eq!(
        s.commctl(&["--json", "container_manager", "list"])
            .expect(0)
            .json(),
        json!(["k8s", "ocp", "triv"])
    );
    let out = s.commctl(&["container_manager", "list"]).expect(0);
    assert!(out.stdout.starts_with("NAME"), "{out:?}");
    s.commctl(&["container_manager", "get", "nope"])
        .expect(NOT_FOUND);
    let out = s
        .commctl(&["container_manager", "delete", "k8s", "ocp"])
        .expect(0);
    assert!(
        out.stdout.contains("Deleted container manager 'ocp'"),
        "{out:?}"
    );
    assert_eq!(
        s.commctl(&["--json", "container_manager", "list"])
            .expect(0)
            .json(),
        json!(["triv"])
    );
    s.commctl(&["container_manager", "delete", "k8s"])
        .expect(NOT_FOUND);
}

#[test]
fn endpoint_fallback() {
    let s = Stack::start();
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let config = s.write(
        "fallback.json",
        &json!({"endpoint": [dead, s.base], "username": "a", "password": "a"}).to_string(),
    );
    let out = common::commctl_in(
        s.path(),
        &["-c", config.to_str().unwrap(), "--json", "network", "list"],
    )
    .expect(0);
    assert_eq!(out.json(), json!(["default"]));
    assert!(
        out.stderr.contains(&format!(
            "cannot reach {dead} : connection refused; trying {}",
            s.base
        )),
        "{out:?}"
    );
    // All unreachable: exit 6, every endpoint named.
    let dead2 = format!("http://127.0.0.1:{}", dead_port());
    let config = s.write(
        "dead.json",
        &json!({"endpoint": [dead, dead2], "username": "a", "password": "a"}).to_string(),
    );
    let out = commctl_in(
        s.path(),
        &["-c", config.to_str().unwrap(), "cluster", "list"],
    )
    .expect(UNREACHABLE);
    assert!(
        out.stderr
            .contains(&format!("error: cannot reach {dead} : connection refused")),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains(&format!("error: cannot reach {dead2} : connection refused")),
        "{out:?}"
    );
    // --endpoint overrides the file (repeatable, in order).
    let out = commctl_in(
        s.path(),
        &[
            "-c",
            config.to_str().unwrap(),
            "--endpoint",
            &dead,
            "--endpoint",
            &s.base,
            "--json",
            "cluster",
            "list",
        ],
    )
    .expect(0);
    assert_eq!(out.json(), json!([]));
}

#[test]
fn credentials() {
    let s = Stack::start();
    // Wrong password in the file.
    let bad = s.write(
        "bad.json",
        &json!({"endpoint": s.base, "username": "a", "password": "wrong"}).to_string(),
    );
    let out = commctl_in(s.path(), &["-c", bad.to_str().unwrap(), "cluster", "list"]).expect(AUTH);
    assert_eq!(
        out.stderr.trim(),
        "error: the provided credentials were incorrect (403)"
    );
    assert!(!out.stderr.contains("wrong"));
    // --password overrides the file.
    commctl_in(
        s.path(),
        &[
            "-c",
            bad.to_str().unwrap(),
            "--password",
            "a",
            "cluster",
            "list",
        ],
    )
    .expect(0);
    // COMMCTL_CONFIG and COMMCTL_PASSWORD.
    let nopass = s.write(
        "nopass.json",
        &json!({"endpoint": s.base, "username": "a"}).to_string(),
    );
    let out = common::commctl_command(s.path())
        .env("COMMCTL_CONFIG", &nopass)
        .args(["cluster", "list"])
        .output()
        .unwrap();
    let out: common::Run = out.into();
    // No password and stdin is not a terminal: a clear error, no prompt.
    let out = out.expect(1);
    assert!(out.stderr.contains("no password is configured"), "{out:?}");
    assert!(out.stderr.contains("not a terminal"), "{out:?}");
    let out: common::Run = common::commctl_command(s.path())
        .env("COMMCTL_CONFIG", &nopass)
        .env("COMMCTL_PASSWORD", "a")
        .args(["cluster", "list"])
        .output()
        .unwrap()
        .into();
    out.expect(0);
    // The default file is ~/.commissaire.json.
    std::fs::write(
        s.path().join(".commissaire.json"),
        json!({"endpoint": s.base, "username": "a", "password": "a"}).to_string(),
    )
    .unwrap();
    commctl_in(s.path(), &["cluster", "list"]).expect(0);
    // A missing explicit file is an error; a broken one too.
    let out = commctl_in(s.path(), &["-c", "/nonexistent.json", "cluster", "list"]).expect(1);
    assert!(out.stderr.contains("/nonexistent.json"), "{out:?}");
    let broken = s.write("broken.json", "{'endpoint': 1,}");
    let out = commctl_in(
        s.path(),
        &["-c", broken.to_str().unwrap(), "cluster", "list"],
    )
    .expect(1);
    assert!(out.stderr.contains("is not valid"), "{out:?}");
    // No endpoint anywhere.
    let empty = s.write("empty.json", "{}");
    let out = commctl_in(
        s.path(),
        &["-c", empty.to_str().unwrap(), "cluster", "list"],
    )
    .expect(1);
    assert!(out.stderr.contains("no endpoint is configured"), "{out:?}");
}

#[test]
fn kubeconfig_password_user() {
    let s = Stack::start();
    let kube = s.write(
        "kubeconfig",
        "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: x, user: u}\nusers:\n- name: u\n  user:\n    username: a\n    password: a\n",
    );
    // kubeconfig wins over the file's username/password (documented).
    let config = s.write(
        "kc.json",
        &json!({"endpoint": s.base, "username": "a", "password": "wrong", "kubeconfig": kube})
            .to_string(),
    );
    commctl_in(
        s.path(),
        &["-c", config.to_str().unwrap(), "cluster", "list"],
    )
    .expect(0);
    // Relative to the config file's directory.
    let config = s.write(
        "kc2.json",
        &json!({"endpoint": s.base, "kubeconfig": "kubeconfig"}).to_string(),
    );
    commctl_in(
        s.path(),
        &["-c", config.to_str().unwrap(), "cluster", "list"],
    )
    .expect(0);
    // A kubeconfig without a usable user.
    let badkube = s.write("badkube", "current-context: c\ncontexts: []\n");
    let config = s.write(
        "kc3.json",
        &json!({"endpoint": s.base, "kubeconfig": badkube}).to_string(),
    );
    let out = commctl_in(
        s.path(),
        &["-c", config.to_str().unwrap(), "cluster", "list"],
    )
    .expect(1);
    assert!(out.stderr.contains("'c' is not defined"), "{out:?}");
}

/// A minimal OpenShift API server: `GET /apis/user.openshift.io/v1/users/~`
/// answers 200 for `Bearer good-token`, 401 otherwise.
fn fake_openshift() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut authorized = false;
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if lower.starts_with("authorization: bearer good-token") {
                    authorized = true;
                }
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let (status, body) = if authorized {
                ("200 OK", r#"{"metadata": {"name": "kubeuser"}}"#)
            } else {
                ("401 Unauthorized", "{}")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn kubeconfig_bearer_token() {
    let openshift = fake_openshift();
    let s = Stack::start_with(vec![format!(
        "openshiftbearertokenauth:url={openshift},cache_ttl=0"
    )]);
    let kube = |token: &str| {
        format!(
            "current-context: c\ncontexts:\n- name: c\n  context:\n    user: u\nusers:\n- name: u\n  user:\n    token: {token}\n"
        )
    };
    s.write("good-kube", &kube("good-token"));
    s.write("bad-kube", &kube("bad-token"));
    let good = s.write(
        "good.json",
        &json!({"endpoint": s.base, "kubeconfig": "good-kube"}).to_string(),
    );
    let out = commctl_in(
        s.path(),
        &["-c", good.to_str().unwrap(), "--json", "network", "list"],
    )
    .expect(0);
    assert_eq!(out.json(), json!(["default"]));
    let bad = s.write(
        "bad.json",
        &json!({"endpoint": s.base, "kubeconfig": "bad-kube"}).to_string(),
    );
    let out = commctl_in(s.path(), &["-c", bad.to_str().unwrap(), "network", "list"]).expect(AUTH);
    assert!(!out.stderr.contains("bad-token"), "{out:?}");
    // --username/--password override the kubeconfig.
    commctl_in(
        s.path(),
        &[
            "-c",
            bad.to_str().unwrap(),
            "--username",
            "a",
            "--password",
            "a",
            "network",
            "list",
        ],
    )
    .expect(0);
}

#[test]
fn passhash() {
    let dir = tempfile::tempdir().unwrap();
    let out = commctl_in(dir.path(), &["passhash", "--password", "bad_idea"]).expect(0);
    let hash = out.stdout.trim();
    assert!(hash.starts_with("$2b$12$"), "{out:?}");
    assert!(bcrypt::verify("bad_idea", hash).unwrap());

    let file = dir.path().join("pw.txt");
    std::fs::write(&file, "from file\n").unwrap();
    let out = commctl_in(
        dir.path(),
        &["passhash", "-f", file.to_str().unwrap(), "--rounds", "5"],
    )
    .expect(0);
    let hash = out.stdout.trim();
    assert!(hash.starts_with("$2b$05$"), "{out:?}");
    assert!(bcrypt::verify("from file", hash).unwrap());

    // No flag: the prompt reads stdin when it is not a terminal.
    let mut child = common::commctl_command(dir.path())
        .args(["passhash", "--rounds", "4"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"typed\n").unwrap();
    let run: common::Run = child.wait_with_output().unwrap().into();
    let run = run.expect(0);
    assert!(bcrypt::verify("typed", run.stdout.trim()).unwrap());

    commctl_in(dir.path(), &["passhash", "--rounds", "3", "-p", "x"]).expect(2);
    commctl_in(dir.path(), &["passhash", "-p", "x", "-f", "y"]).expect(2);
    commctl_in(dir.path(), &["passhash", "-f", "/nonexistent"]).expect(1);
}

#[test]
fn usage_help_completions_and_man() {
    let dir = tempfile::tempdir().unwrap();
    let out = commctl_in(dir.path(), &["cluster", "frobnicate"]).expect(2);
    assert!(out.stderr.contains("frobnicate"), "{out:?}");
    commctl_in(dir.path(), &["host", "create", "only-address"]).expect(2);
    commctl_in(dir.path(), &["cluster", "delete"]).expect(2);
    let out = commctl_in(dir.path(), &["--help"]).expect(0);
    for command in [
        "cluster",
        "host",
        "network",
        "container_manager",
        "passhash",
        "user-data",
    ] {
        assert!(out.stdout.contains(command), "{command}: {out:?}");
    }
    // Completions are listed; the script calls commctl back (dynamic completion).
    assert!(out.stdout.contains("completions"), "listed: {out:?}");
    assert!(!out.stdout.contains("\n  man "), "hidden: {out:?}");
    let out = commctl_in(dir.path(), &["completions", "bash"]).expect(0);
    assert!(out.stdout.contains("COMPLETE=\"bash\""), "{out:?}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = commctl_in(dir.path(), &["completions", shell]).expect(0);
        assert!(out.stdout.contains("COMPLETE"), "{shell}: {out:?}");
    }
    let out = commctl_in(dir.path(), &["man"]).expect(0);
    assert!(out.stdout.contains(".TH commctl"), "{out:?}");
    let mandir = dir.path().join("man");
    commctl_in(dir.path(), &["man", "--out-dir", mandir.to_str().unwrap()]).expect(0);
    assert!(mandir.join("commctl.1").exists());
    assert!(mandir.join("commctl-host-ssh.1").exists());
}

#[test]
fn rolling_operations_are_started_with_budgets_planned_paused_resumed_and_cancelled() {
    let s = Stack::start();
    s.commctl(&["cluster", "create", "r"]).expect(0);
    let key = s.write("key", "KEY");
    for address in ["10.9.1.1", "10.9.1.2", "10.9.1.3"] {
        s.commctl(&[
            "host",
            "create",
            "--cluster",
            "r",
            address,
            key.to_str().unwrap(),
        ])
        .expect(0);
    }
    // Defaults on the cluster.
    let out = s
        .commctl(&[
            "cluster",
            "rolling",
            "set",
            "r",
            "--batch-size",
            "50%",
            "--last",
            "10.9.1.1",
        ])
        .expect(0);
    assert!(out.stdout.contains("50%"), "{out:?}");
    let got = s
        .commctl(&["--json", "cluster", "rolling", "get", "r"])
        .expect(0)
        .json();
    assert_eq!(got, json!({"batch_size": "50%", "last": ["10.9.1.1"]}));
    s.commctl(&["cluster", "rolling", "set", "r", "--batch-size", "0"])
        .expect(BAD_REQUEST);
    let file = s.write(
        "rolling.json",
        r#"{"batch_size": 1, "windows": [{"start": "01:00", "end": "05:00", "timezone": "Europe/Paris"}],
            "gates": {"commands": [{"command": "true"}]}}"#,
    );
    let got = s
        .commctl(&[
            "--json",
            "cluster",
            "rolling",
            "set",
            "r2",
            "-f",
            file.to_str().unwrap(),
        ])
        .expect(NOT_FOUND);
    assert!(got.stdout.is_empty());
    s.commctl(&["cluster", "create", "r2"]).expect(0);
    let got = s
        .commctl(&[
            "--json",
            "cluster",
            "rolling",
            "set",
            "r2",
            "-f",
            file.to_str().unwrap(),
            "--batch-size",
            "10%",
        ])
        .expect(0)
        .json();
    assert_eq!(got["batch_size"], "10%", "the flag wins: {got}");
    assert_eq!(got["windows"][0]["timezone"], "Europe/Paris");
    assert_eq!(got["gates"]["commands"][0]["command"], "true");
    let bad = s.write(
        "bad.json",
        r#"{"windows": [{"start": "1 am", "end": "05:00"}]}"#,
    );
    let out = s
        .commctl(&[
            "cluster",
            "rolling",
            "set",
            "r2",
            "-f",
            bad.to_str().unwrap(),
        ])
        .expect(BAD_REQUEST);
    assert!(out.stderr.contains("windows[0].start"), "{out:?}");

    // The plan, as a table, changes nothing.
    let out = s
        .commctl(&[
            "cluster",
            "restart",
            "plan",
            "r",
            "--max-failures",
            "1",
            "--order",
            "10.9.1.3",
        ])
        .expect(0);
    assert!(
        out.stdout.contains("dry run: nothing was changed"),
        "{out:?}"
    );
    assert!(out.stdout.contains("1 host(s) (request: 1)"), "{out:?}");
    let rows: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("10.9.1."))
        .collect();
    assert_eq!(rows.len(), 3, "{out:?}");
    assert!(
        rows[0].contains("10.9.1.3") && rows[2].contains("10.9.1.1"),
        "{out:?}"
    );
    s.commctl(&["cluster", "restart", "status", "r"])
        .expect(NOT_FOUND);

    // Start with flags; a bad percent is the server's 400.
    s.commctl(&["cluster", "restart", "start", "r", "--batch-size", "150%"])
        .expect(BAD_REQUEST);
    let rec = s
        .commctl(&[
            "--json",
            "cluster",
            "restart",
            "start",
            "r",
            "--batch-size",
            "2",
            "--max-failures",
            "34%",
            "--order",
            "10.9.1.2,10.9.1.3",
        ])
        .expect(0)
        .json();
    assert_eq!(
        (rec["batch_size"].clone(), rec["max_failures"].clone()),
        (json!(2), json!("34%"))
    );
    assert_eq!(rec["order"], json!(["10.9.1.2", "10.9.1.3"]));
    assert_eq!(rec["started_by"], common::USER);
    // Pause, resume, cancel.
    let out = s.commctl(&["cluster", "restart", "pause", "r"]).expect(0);
    assert!(out.stdout.contains("to pause"), "{out:?}");
    let rec = s
        .commctl(&["--json", "cluster", "restart", "status", "r"])
        .expect(0)
        .json();
    assert_eq!(rec["pause_requested"], true);
    s.commctl(&["cluster", "restart", "resume", "r"]).expect(0);
    s.commctl(&["cluster", "restart", "cancel", "r"]).expect(0);
    let out = s.commctl(&["cluster", "restart", "status", "r"]).expect(0);
    for event in [
        "pause requested by a",
        "resume requested by a",
        "cancel requested by a",
    ] {
        assert!(out.stdout.contains(event), "{event}: {out:?}");
    }
    // Nothing in process: the verbs are conflicts.
    s.save(
        "ClusterRestart",
        json!({"name": "r", "status": "cancelled", "restarted": [], "in_process": [],
            "started_at": DATE, "finished_at": DATE}),
    );
    for verb in ["pause", "resume", "cancel"] {
        s.commctl(&["cluster", "restart", verb, "r"])
            .expect(CONFLICT);
    }
    s.commctl(&["cluster", "upgrade", "pause", "r"])
        .expect(NOT_FOUND);
}

#[test]
fn audit_lists_the_changes_newest_first_and_filters_them() {
    let s = Stack::start();
    s.commctl(&["cluster", "create", "audited"]).expect(0);
    s.commctl(&["cluster", "delete", "audited"]).expect(0);
    s.commctl(&["cluster", "get", "audited"]).expect(NOT_FOUND);
    let out = s.commctl(&["audit", "--kind", "cluster"]).expect(0);
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("/api/v0/cluster/audited"))
        .collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(
        lines[0].contains("DELETE") && lines[1].contains("PUT"),
        "newest first: {out:?}"
    );
    assert!(
        out.stdout.contains("USER") && out.stdout.contains("STATUS"),
        "{out:?}"
    );
    let entries = s
        .commctl(&["--json", "audit", "--name", "audited", "--limit", "1"])
        .expect(0)
        .json();
    let entries = entries["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["method"], "DELETE");
    assert_eq!(entries[0]["outcome"], "ok");
    // A bad filter: the server's 400, naming it.
    let out = s
        .commctl(&["audit", "--since", "yesterday"])
        .expect(BAD_REQUEST);
    assert!(out.stderr.contains("since"), "{out:?}");
}
