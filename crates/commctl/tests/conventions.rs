//! The commctl conventions against a running stack: output formats (`-o`),
//! `-q`, `-v` (no secrets), `--timeout`, `COMMCTL_ENDPOINT`, named
//! contexts, `version`, and completion of names from the server.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Stack, commctl_command, commctl_in, dead_port};
use serde_json::{Value, json};

const UNREACHABLE: i32 = 6;
const TIMEOUT: i32 = 8;

fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn output_name_prints_kind_slash_name_for_lists_records_and_changes() {
    let s = Stack::start();
    let out = s
        .commctl(&["cluster", "create", "-o", "name", "alpha"])
        .expect(0);
    assert_eq!(out.stdout.trim(), "cluster/alpha");
    s.commctl(&["cluster", "create", "beta"]).expect(0);
    let out = s.commctl(&["cluster", "list", "-o", "name"]).expect(0);
    assert_eq!(lines(&out.stdout), ["cluster/alpha", "cluster/beta"]);
    // -o before the command and after the group mean the same.
    let out = s
        .commctl(&["-o", "name", "cluster", "get", "alpha"])
        .expect(0);
    assert_eq!(out.stdout.trim(), "cluster/alpha");
    let out = s.commctl(&["network", "-o", "name", "list"]).expect(0);
    assert_eq!(lines(&out.stdout), ["network/default"]);

    let key = s.write("key", "KEY");
    let key = key.to_str().unwrap();
    s.commctl(&["host", "create", "--cluster", "alpha", "10.4.0.1", key])
        .expect(0);
    let out = s.commctl(&["host", "list", "-o", "name"]).expect(0);
    assert_eq!(lines(&out.stdout), ["host/10.4.0.1"]);
    let out = s
        .commctl(&["host", "list", "alpha", "-o", "name"])
        .expect(0);
    assert_eq!(lines(&out.stdout), ["host/10.4.0.1"]);

    let out = s
        .commctl(&["cluster", "delete", "-o", "name", "beta", "nope"])
        .expect(3);
    assert_eq!(lines(&out.stdout), ["cluster/beta"]);
    assert!(out.stderr.contains("'nope' does not exist"), "{out:?}");
}

#[test]
fn output_yaml_and_json_are_the_servers_answer() {
    let s = Stack::start();
    s.commctl(&["cluster", "create", "alpha"]).expect(0);
    let json_flag = s.commctl(&["--json", "cluster", "get", "alpha"]).expect(0);
    let json_o = s
        .commctl(&["cluster", "get", "alpha", "-o", "json"])
        .expect(0);
    assert_eq!(json_flag.stdout, json_o.stdout);
    let yaml = s
        .commctl(&["cluster", "get", "alpha", "-o", "yaml"])
        .expect(0);
    let from_yaml: Value = serde_norway::from_str(&yaml.stdout).unwrap();
    assert_eq!(from_yaml, json_o.json());
    assert!(yaml.stdout.contains("name: alpha"), "{yaml:?}");
    let list = s.commctl(&["cluster", "list", "-o", "yaml"]).expect(0);
    assert_eq!(
        serde_norway::from_str::<Value>(&list.stdout).unwrap(),
        json!(["alpha"])
    );
}

#[test]
fn output_wide_adds_columns_to_lists() {
    let s = Stack::start();
    s.commctl(&["cluster", "create", "-n", "default", "alpha"])
        .expect(0);
    let out = s.commctl(&["cluster", "list", "-o", "wide"]).expect(0);
    let header = out.stdout.lines().next().unwrap();
    for column in ["NAME", "STATUS", "NETWORK", "HOSTS"] {
        assert!(header.contains(column), "{column}: {out:?}");
    }
    let row = out.stdout.lines().nth(1).unwrap();
    assert!(row.contains("alpha") && row.contains("default"), "{out:?}");

    let out = s.commctl(&["network", "list", "-o", "wide"]).expect(0);
    assert!(
        out.stdout.lines().next().unwrap().contains("TYPE"),
        "{out:?}"
    );
    assert!(out.stdout.contains("flannel_etcd"), "{out:?}");

    let key = s.write("key", "KEY");
    s.commctl(&[
        "host",
        "create",
        "--cluster",
        "alpha",
        "10.4.0.2",
        key.to_str().unwrap(),
    ])
    .expect(0);
    let table = s.commctl(&["host", "list"]).expect(0);
    assert!(!table.stdout.contains("SOURCE"), "{table:?}");
    for args in [
        &["host", "list", "-o", "wide"][..],
        &["host", "list", "alpha", "-o", "wide"],
    ] {
        let out = s.commctl(args).expect(0);
        let header = out.stdout.lines().next().unwrap();
        assert!(
            header.contains("SOURCE") && header.contains("REASON") && header.contains("STATUS"),
            "{args:?}: {out:?}"
        );
        assert!(out.stdout.contains("10.4.0.2"), "{args:?}: {out:?}");
    }
}

#[test]
fn an_unknown_output_format_is_a_usage_error_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["cluster", "list", "-o", "xml"][..],
        &["-o", "xml", "cluster", "list"],
        &["version", "--output", "toml"],
    ] {
        let out = commctl_in(dir.path(), args).expect(2);
        assert!(out.stderr.contains("possible values"), "{args:?}: {out:?}");
    }
}

#[test]
fn quiet_prints_only_errors_and_the_data_asked_for() {
    let s = Stack::start();
    // A create's record, a note and a delete's confirmation are not printed.
    let out = s
        .commctl(&["-q", "cluster", "create", "-t", "kubernetes", "alpha"])
        .expect(0);
    assert_eq!(out.stdout, "", "{out:?}");
    assert_eq!(out.stderr, "", "{out:?}");
    s.commctl(&["cluster", "create", "beta", "-q"]).expect(0);
    // Lists print bare names.
    let out = s.commctl(&["cluster", "list", "-q"]).expect(0);
    assert_eq!(out.stdout, "alpha\nbeta\n");
    // Records asked for are printed.
    let out = s.commctl(&["-q", "cluster", "get", "alpha"]).expect(0);
    assert!(out.stdout.contains("FIELD"), "{out:?}");
    let out = s.commctl(&["-q", "cluster", "delete", "beta"]).expect(0);
    assert_eq!(out.stdout, "", "{out:?}");
    // Errors still are.
    let out = s.commctl(&["-q", "cluster", "get", "beta"]).expect(3);
    assert!(out.stderr.contains("does not exist"), "{out:?}");
    // Machine formats are unchanged by -q.
    let out = s
        .commctl(&["-q", "cluster", "list", "-o", "json"])
        .expect(0);
    assert_eq!(out.json(), json!(["alpha"]));
}

#[test]
fn commctl_endpoint_overrides_the_file_and_endpoint_overrides_it() {
    let s = Stack::start();
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let config = s.write(
        "dead.json",
        &json!({"endpoint": dead, "username": "a", "password": "a"}).to_string(),
    );
    let config = config.to_str().unwrap();
    commctl_in(s.path(), &["-c", config, "cluster", "list"]).expect(UNREACHABLE);
    let run = |env: &str, args: &[&str]| -> common::Run {
        commctl_command(s.path())
            .env("COMMCTL_ENDPOINT", env)
            .args(["-c", config])
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    run(&s.base, &["cluster", "list"]).expect(0);
    // A comma-separated list: fallbacks in order.
    let out = run(&format!("{dead},{}", s.base), &["cluster", "list"]).expect(0);
    assert!(out.stderr.contains("trying"), "{out:?}");
    // The flag beats the variable.
    run(&s.base, &["--endpoint", &dead, "cluster", "list"]).expect(UNREACHABLE);
}

/// A configuration file with three contexts: `dead` (current), `live`
/// and `other` (whose password is `ctx-secret-1`).
fn contexts_file(s: &Stack) -> std::path::PathBuf {
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let path = s.write(
        "contexts.json",
        &serde_json::to_string_pretty(&json!({
            "current-context": "dead",
            "username": "flat-user-not-used",
            "contexts": {
                "dead": {"endpoint": dead, "username": "a", "password": "a"},
                "live": {"endpoint": s.base, "username": "a", "password": "a"},
                "other": {"endpoint": dead, "username": "b", "password": "ctx-secret-1"}
            }
        }))
        .unwrap(),
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[test]
fn the_current_context_is_used_unless_context_or_commctl_context_picks_another() {
    let s = Stack::start();
    let path = contexts_file(&s);
    let config = path.to_str().unwrap();
    commctl_in(s.path(), &["-c", config, "cluster", "list"]).expect(UNREACHABLE);
    commctl_in(
        s.path(),
        &["-c", config, "--context", "live", "cluster", "list"],
    )
    .expect(0);
    let out: common::Run = commctl_command(s.path())
        .env("COMMCTL_CONTEXT", "live")
        .args(["-c", config, "cluster", "list"])
        .output()
        .unwrap()
        .into();
    out.expect(0);
    // The environment's endpoint beats the context's.
    let out: common::Run = commctl_command(s.path())
        .env("COMMCTL_ENDPOINT", &s.base)
        .args(["-c", config, "cluster", "list"])
        .output()
        .unwrap()
        .into();
    out.expect(0);
    let out = commctl_in(
        s.path(),
        &["-c", config, "--context", "nope", "cluster", "list"],
    )
    .expect(1);
    assert!(
        out.stderr.contains("no context 'nope'") && out.stderr.contains("dead, live, other"),
        "{out:?}"
    );
}

#[test]
fn get_contexts_marks_the_current_one_and_never_prints_passwords() {
    let s = Stack::start();
    let path = contexts_file(&s);
    let config = path.to_str().unwrap();
    let out = commctl_in(s.path(), &["-c", config, "config", "get-contexts"]).expect(0);
    let dead = out.stdout.lines().find(|l| l.contains("dead")).unwrap();
    let live = out.stdout.lines().find(|l| l.contains("live")).unwrap();
    assert!(dead.trim_start().starts_with('*'), "{out:?}");
    assert!(!live.contains('*'), "{out:?}");
    assert!(live.contains(&s.base), "{out:?}");
    let json = commctl_in(
        s.path(),
        &["-c", config, "config", "get-contexts", "-o", "json"],
    )
    .expect(0);
    for out in [&out, &json] {
        assert!(!out.stdout.contains("ctx-secret-1"), "{out:?}");
    }
    assert_eq!(json.json()[0]["name"], "dead");
    assert_eq!(json.json()[0]["current"], true);
    assert_eq!(json.json()[0]["password_set"], true);
    let names = commctl_in(
        s.path(),
        &["-c", config, "config", "get-contexts", "-o", "name"],
    )
    .expect(0);
    assert_eq!(
        lines(&names.stdout),
        ["context/dead", "context/live", "context/other"]
    );
    // A flat file has no contexts.
    let out = s.commctl(&["config", "get-contexts"]).expect(0);
    assert!(out.stdout.contains("no contexts"), "{out:?}");
}

#[test]
fn use_context_rewrites_the_file_keeping_its_mode_and_refuses_unknown_names() {
    let s = Stack::start();
    let path = contexts_file(&s);
    let config = path.to_str().unwrap();
    let out = commctl_in(s.path(), &["-c", config, "config", "use-context", "live"]).expect(0);
    assert!(out.stdout.contains("Switched to context 'live'"), "{out:?}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(file["current-context"], "live");
    // The rest of the file is kept.
    assert_eq!(file["contexts"]["other"]["password"], "ctx-secret-1");
    assert_eq!(file["username"], "flat-user-not-used");
    commctl_in(s.path(), &["-c", config, "cluster", "list"]).expect(0);
    let out = commctl_in(s.path(), &["-c", config, "config", "current-context"]).expect(0);
    assert_eq!(out.stdout.trim(), "live");

    let before = std::fs::read_to_string(&path).unwrap();
    let out = commctl_in(s.path(), &["-c", config, "config", "use-context", "nope"]).expect(1);
    assert!(out.stderr.contains("no context 'nope'"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}

#[test]
fn verbose_traces_requests_without_passwords_or_keys() {
    let s = Stack::start();
    // A password given on the command line (refused: not the user's).
    let password = "cmdline-Secret-42";
    let out = s
        .commctl(&["--password", password, "-v", "cluster", "list"])
        .expect(5);
    assert!(
        out.stderr.contains("GET ") && out.stderr.contains("/api/v0/clusters -> 403"),
        "{out:?}"
    );
    assert!(out.stderr.contains(" ms)"), "{out:?}");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("a:{password}"));
    for secret in [password, basic.as_str(), "Authorization", "authorization"] {
        assert!(!out.stderr.contains(secret), "{secret}: {out:?}");
        assert!(!out.stdout.contains(secret), "{secret}: {out:?}");
    }

    // A host's private key: not in the trace of its create or its creds.
    let key_text = "-----BEGIN OPENSSH PRIVATE KEY-----\nPRIVATEKEYMATERIALxyz\n-----END OPENSSH PRIVATE KEY-----\n";
    let key = s.write("key", key_text);
    let encoded = base64::engine::general_purpose::STANDARD.encode(key_text);
    let create = s
        .commctl(&["-v", "host", "create", "10.4.0.3", key.to_str().unwrap()])
        .expect(0);
    let creds = s.commctl(&["host", "creds", "10.4.0.3", "-v"]).expect(0);
    assert!(creds.stdout.contains("PRIVATEKEYMATERIALxyz"), "{creds:?}");
    for out in [&create, &creds] {
        assert!(
            out.stderr.contains("PUT ") || out.stderr.contains("GET "),
            "{out:?}"
        );
        assert!(!out.stderr.contains("PRIVATEKEYMATERIALxyz"), "{out:?}");
        assert!(!out.stderr.contains(&encoded), "{out:?}");
        // The configured password ("a") is never named either.
        assert!(out.stderr.contains("password not shown"), "{out:?}");
    }
}

#[test]
fn timeout_gives_up_on_a_silent_server_with_exit_8() {
    // A server that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            let mut s = stream;
            let mut buf = [0u8; 1024];
            let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
            let _ = s.read(&mut buf);
            held.push(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let out = commctl_in(
        dir.path(),
        &[
            "--endpoint",
            &endpoint,
            "--username",
            "a",
            "--password",
            "a",
            "--timeout",
            "0.5",
            "cluster",
            "list",
        ],
    )
    .expect(TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(10), "{out:?}");
    assert!(
        out.stderr
            .contains("no answer to GET /api/v0/clusters from http://127.0.0.1"),
        "{out:?}"
    );
    assert!(out.stderr.contains("within 0.5 s"), "{out:?}");
    let out = commctl_in(dir.path(), &["--timeout", "0", "cluster", "list"]).expect(2);
    assert!(out.stderr.contains("positive number"), "{out:?}");
}

#[test]
fn version_shows_the_client_and_the_server_or_says_the_server_is_unreachable() {
    let s = Stack::start();
    let client = format!("Client: commctl {}", env!("CARGO_PKG_VERSION"));
    let out = s.commctl(&["version"]).expect(0);
    assert!(out.stdout.contains(&client), "{out:?}");
    assert!(out.stdout.contains("Server: commissaire "), "{out:?}");
    assert!(out.stdout.contains(&s.base), "{out:?}");
    let got = s.commctl(&["version", "-o", "json"]).expect(0).json();
    assert_eq!(got["client"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(got["server"]["version"].is_string(), "{got}");

    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let out = commctl_in(dir.path(), &["--endpoint", &dead, "version"]).expect(UNREACHABLE);
    assert!(out.stdout.contains(&client), "{out:?}");
    assert!(!out.stdout.contains("Server:"), "{out:?}");
    assert!(
        out.stderr.contains("the server's version is unknown")
            && out.stderr.contains("cannot reach"),
        "{out:?}"
    );
    // Without credentials (the version probe needs none) and with --client.
    commctl_in(dir.path(), &["--endpoint", &s.base, "version"]).expect(0);
    let out = commctl_in(dir.path(), &["version", "--client"]).expect(0);
    assert_eq!(out.stdout.trim(), client);
}

/// What `COMPLETE=fish commctl -- WORDS` offers (the values, one a line),
/// less the flags clap offers beside them.
fn complete(s: &Stack, words: &[&str]) -> Vec<String> {
    let out: common::Run = commctl_command(s.path())
        .env("COMPLETE", "fish")
        .arg("--")
        .args(words)
        .output()
        .unwrap()
        .into();
    let out = out.expect(0);
    out.stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .filter(|v| !v.starts_with('-'))
        .collect()
}

#[test]
fn completion_offers_names_from_the_server() {
    let s = Stack::start();
    s.commctl(&["cluster", "create", "alpha-one"]).expect(0);
    s.commctl(&["network", "create", "net-x"]).expect(0);
    s.commctl(&["container_manager", "create", "-t", "trivial", "cm-x"])
        .expect(0);
    let key = s.write("key", "KEY");
    s.commctl(&["host", "create", "10.7.0.1", key.to_str().unwrap()])
        .expect(0);
    let config = s.config.to_str().unwrap();
    let got = complete(&s, &["commctl", "-c", config, "host", "get", ""]);
    assert!(got.contains(&"10.7.0.1".to_string()), "{got:?}");
    let got = complete(&s, &["commctl", "-c", config, "cluster", "get", ""]);
    assert!(got.contains(&"alpha-one".to_string()), "{got:?}");
    let got = complete(
        &s,
        &["commctl", "-c", config, "host", "create", "--cluster", "al"],
    );
    assert_eq!(got, ["alpha-one"]);
    let got = complete(&s, &["commctl", "-c", config, "network", "delete", ""]);
    assert!(
        got.contains(&"net-x".to_string()) && got.contains(&"default".to_string()),
        "{got:?}"
    );
    let got = complete(
        &s,
        &["commctl", "-c", config, "container_manager", "get", ""],
    );
    assert!(got.contains(&"cm-x".to_string()), "{got:?}");
    // The configuration named by COMMCTL_CONFIG works too.
    let out: common::Run = commctl_command(s.path())
        .env("COMPLETE", "fish")
        .env("COMMCTL_CONFIG", &s.config)
        .args(["--", "commctl", "host", "join", "10.7.0.1", ""])
        .output()
        .unwrap()
        .into();
    assert!(out.expect(0).stdout.contains("alpha-one"));
    // Commands and flags complete from the command tree.
    let got = complete(&s, &["commctl", "-c", config, "cl"]);
    assert_eq!(got, ["cluster"]);
    let got = complete(&s, &["commctl", "cluster", "list", "-o", ""]);
    for format in ["table", "wide", "json", "yaml", "name"] {
        assert!(got.contains(&format.to_string()), "{got:?}");
    }
    // No server: no names, quickly, and no noise.
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let started = Instant::now();
    let got = complete(
        &s,
        &[
            "commctl",
            "--endpoint",
            &dead,
            "-c",
            config,
            "host",
            "get",
            "",
        ],
    );
    assert!(got.is_empty(), "{got:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn completion_offers_the_configuration_files_contexts() {
    let s = Stack::start();
    let path = contexts_file(&s);
    let got = complete(
        &s,
        &[
            "commctl",
            "-c",
            path.to_str().unwrap(),
            "config",
            "use-context",
            "",
        ],
    );
    assert_eq!(got, ["dead", "live", "other"]);
}

#[test]
fn the_bash_completion_script_completes_host_addresses_from_the_server() {
    let s = Stack::start();
    let key = s.write("key", "KEY");
    s.commctl(&["host", "create", "10.7.0.9", key.to_str().unwrap()])
        .expect(0);
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_commctl"))
        .parent()
        .unwrap();
    let script = format!(
        r#"source <(commctl completions bash)
COMP_WORDS=(commctl -c '{}' host get "")
COMP_CWORD=5
COMP_TYPE=9
_clap_complete_commctl commctl "" get
printf '%s\n' "${{COMPREPLY[@]}}""#,
        s.config.display()
    );
    let out: common::Run = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
        .env("HOME", s.path())
        .env_remove("COMMCTL_CONFIG")
        .output()
        .unwrap()
        .into();
    let out = out.expect(0);
    assert!(lines(&out.stdout).contains(&"10.7.0.9"), "{out:?}");
}

#[test]
fn host_ssh_passes_v_q_and_o_after_the_address_to_ssh() {
    let s = Stack::start();
    let key = s.write("key", "KEY");
    s.commctl(&["host", "create", "10.7.0.5", key.to_str().unwrap()])
        .expect(0);
    // COMMCTL_SSH names the program `host ssh` runs: one that prints its arguments.
    let program = s.write("print-args", "#!/bin/sh\nprintf '%s\\n' \"$@\"\n");
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out: common::Run = s
        .command(&[
            "-v",
            "host",
            "ssh",
            "10.7.0.5",
            "-v",
            "-q",
            "-o",
            "BatchMode=yes",
            "uptime",
        ])
        .env("COMMCTL_SSH", &program)
        .output()
        .unwrap()
        .into();
    let out = out.expect(0);
    let args = lines(&out.stdout);
    let tail = &args[args.len() - 5..];
    assert_eq!(
        tail,
        ["-v", "-q", "-o", "BatchMode=yes", "uptime"],
        "{out:?}"
    );
    // commctl's own -v (before the command) traced the credentials request.
    assert!(
        out.stderr.contains("/api/v0/host/10.7.0.5/creds -> 200"),
        "{out:?}"
    );
}
