//! Docs you can run: every `curl` and `commctl` line in the shell blocks of
//! README.md and docs/*.md is run, file by file and in the order written,
//! against a fresh all-in-one (`commissaire`, embedded store) with the
//! real `curl` and the real `commctl`. Only placeholders are filled (the
//! server address, `USER`, `$TOKEN`, files an example names); each example
//! must succeed (exit 0; `curl` with a status below 400), unless the table
//! [`EXPECTED`] says what else it answers here and why, or [`NOT_RUN`] says
//! why it cannot run here. An example in neither that fails, or an entry in
//! either that no longer matches an example, fails the test: the docs
//! cannot rot unnoticed.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use commissaire_testkit::daemons::{binary, free_port};

/// Examples that cannot run here, with the reason (matched as the whole
/// example line, after `$ ` and line continuations are removed).
const NOT_RUN: &[(&str, &str)] = &[
    (
        r#"curl -u "USERNAME:PASSWORD" -H "Content-Type: application/json" -XPUT ..."#,
        "a template of a request, not a request",
    ),
    (
        "commctl host ssh 192.168.1.100",
        "opens an interactive SSH session (crates/commctl/tests/ssh.rs runs it against a real sshd)",
    ),
    (
        "commctl host ssh 192.168.1.100 -v -p 9876",
        "SSH to a real host (crates/commctl/tests/ssh.rs)",
    ),
    (
        "commctl host ssh 192.168.1.100 uptime",
        "SSH to a real host (crates/commctl/tests/ssh.rs)",
    ),
];

/// The records the docs' examples name, put in place before each example
/// (path under `/api/v0`, body, the records it needs), in this order: an example runs in a world
/// where everything the docs name exists, as a reader assumes of a
/// reference page, except the records it creates itself, which are deleted
/// first. The hosts are not reachable from here: the API stores them, their
/// investigation fails.
const FIXTURE: &[(&str, &str, &[&str])] = &[
    (
        "network/my_network",
        r#"{"type": "flannel_server", "options": {"address": "192.168.152.100:8080"}}"#,
        &[],
    ),
    (
        "containermanager/ocp",
        r#"{"type": "openshift", "options": {"server_url": "https://openshift.example.com", "token": "aaa"}}"#,
        &[],
    ),
    (
        "containermanager/k3s",
        r#"{"type": "kubernetes", "options": {"server_url": "https://192.168.152.102:6443", "token": "example-token"}}"#,
        &[],
    ),
    ("cluster/datacenter1", r#"{"network": "default"}"#, &[]),
    ("cluster/my_cluster", r#"{"network": "default"}"#, &[]),
    (
        "cluster/mycluster",
        r#"{"container_manager": "ocp"}"#,
        &["containermanager/ocp"],
    ),
    ("cluster/prod", "{}", &[]),
    (
        "host/192.168.152.110",
        r#"{"ssh_priv_key": "dGVzdAo="}"#,
        &[],
    ),
    (
        "host/192.168.1.100",
        r#"{"cluster": "datacenter1", "ssh_priv_key": "dGVzdAo="}"#,
        &["cluster/datacenter1"],
    ),
    (
        "host/10.0.0.1",
        r#"{"cluster": "prod", "ssh_priv_key": "dGVzdAo="}"#,
        &["cluster/prod"],
    ),
    (
        "host/10.0.0.2",
        r#"{"cluster": "prod", "ssh_priv_key": "dGVzdAo="}"#,
        &["cluster/prod"],
    ),
];

/// The docs' host addresses and the loopback addresses they stand for
/// here: nothing listens on them, so a connection is refused at once and
/// an investigation, a restart or a check of such a host fails within
/// milliseconds, never after a timeout that would make an example's
/// answer depend on timing.
const ADDRESSES: &[(&str, &str)] = &[
    ("192.168.152.110", "127.0.0.210"),
    ("192.168.1.100", "127.0.0.200"),
    ("10.0.0.1", "127.0.0.201"),
    ("10.0.0.2", "127.0.0.202"),
    ("10.0.0.3", "127.0.0.203"),
];

/// `text` with the docs' host addresses replaced by [`ADDRESSES`].
fn local(text: &str) -> String {
    ADDRESSES
        .iter()
        .fold(text.to_string(), |t, (doc, here)| t.replace(doc, here))
}

/// The fixture records `line` creates (`verb` `create`) or deletes
/// (`delete`): a commctl `KIND VERB ... NAME`, or a curl `-XPUT`/`-XDELETE`
/// of a record's own path.
fn touched(line: &str, verb: &str) -> Vec<&'static str> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let method = if verb == "create" {
        "-XPUT"
    } else {
        "-XDELETE"
    };
    FIXTURE
        .iter()
        .map(|(path, _, _)| *path)
        .filter(|path| {
            let (kind, name) = path.split_once('/').unwrap();
            let commctl_kind = match kind {
                "containermanager" => "container_manager",
                other => other,
            };
            let by_commctl = words.first() == Some(&"commctl")
                && words.get(1) == Some(&commctl_kind)
                && words.get(2) == Some(&verb)
                && words.contains(&name);
            let by_curl = words.first() == Some(&"curl")
                && line.contains(method)
                && line.contains(&format!("/api/v0/{path}"))
                && !line.contains(&format!("/api/v0/{path}/"));
            by_commctl || by_curl
        })
        .collect()
}

/// The operation an example pauses, resumes or cancels: (cluster,
/// operation, action), from a commctl `cluster OP ACTION NAME` or a curl
/// of `/api/v0/cluster/NAME/OP/pause|resume` or `-XDELETE` of its record.
fn acts_on_a_running_roll(line: &str) -> Option<(String, String, String)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let ops = ["restart", "upgrade", "deploy"];
    if words.first() == Some(&"commctl") && words.get(1) == Some(&"cluster") {
        let (op, action) = (words.get(2)?, words.get(3)?);
        if ops.contains(op) && matches!(*action, "pause" | "resume" | "cancel") {
            return Some((
                words.last()?.to_string(),
                op.to_string(),
                action.to_string(),
            ));
        }
        return None;
    }
    let url = words.iter().find(|w| w.contains("/api/v0/cluster/"))?;
    let rest = url.split("/api/v0/cluster/").nth(1)?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [name, op, action] if ops.contains(op) && matches!(*action, "pause" | "resume") => {
            Some((name.to_string(), op.to_string(), action.to_string()))
        }
        [name, op] if ops.contains(op) && line.contains("-XDELETE") => {
            Some((name.to_string(), op.to_string(), "cancel".into()))
        }
        _ => None,
    }
}

/// A maintenance window that is closed now and for the next two days: a
/// roll started with it waits, in process, until it is cancelled.
fn closed_window() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    // 1970-01-01 was a Thursday (index 3, Monday being 0).
    let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let in_three_days = names[((days + 3 + 3) % 7) as usize];
    format!(
        r#"{{"windows": [{{"days": ["{in_three_days}"], "start": "00:00", "end": "00:01", "timezone": "UTC"}}]}}"#
    )
}

/// Examples that answer otherwise here, on purpose: (example, what it
/// gives: `exit N` or `http N`, why).
const EXPECTED: &[(&str, &str, &str)] = &[
    (
        "commctl cluster upgrade status --watch datacenter1",
        "exit 1",
        "the example hosts are unreachable here, so the roll fails, and watching a failed roll exits 1 \
         (rolls of real hosts: crates/commissaire-clusterexec-service/tests/engine.rs)",
    ),
    (
        "commctl cluster restart start --batch-size 25% --max-failures 1 --last 10.0.0.1,10.0.0.2 --watch prod",
        "exit 1",
        "both hosts are unreachable here: two failures exceed --max-failures 1, and the watch exits 1",
    ),
    (
        "commctl cluster restart status --watch mycluster",
        "exit 1",
        "the example host is unreachable here, so the roll fails, and watching a failed roll exits 1",
    ),
    (
        "commctl cluster upgrade start --watch prod",
        "exit 1",
        "the example hosts are unreachable here, so the roll fails, and watching a failed roll exits 1",
    ),
    (
        "commctl host join 192.168.152.110 my_cluster",
        "exit 4",
        "the example host is unreachable here, so its investigation failed, and only an active or \
         disassociated host joins a cluster (409; joins of bootstrapped hosts: crates/commissaire-investigator-service/tests/bootstrap.rs)",
    ),
];

/// One example: the command as written.
#[derive(Debug, Clone)]
struct Example {
    line: String,
}

/// The `curl`/`commctl` lines of the shell blocks of `text`.
fn examples_in(text: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for raw in text.lines() {
        let trimmed = raw.trim_start();
        match &mut block {
            None => {
                if let Some(lang) = trimmed.strip_prefix("```")
                    && matches!(lang.trim(), "sh" | "bash" | "console" | "shell")
                {
                    block = Some(String::new());
                }
            }
            Some(body) => {
                if trimmed.starts_with("```") {
                    for line in commands_of(body) {
                        let line = line.trim();
                        let line = line.strip_prefix("$ ").unwrap_or(line);
                        let squeezed = line.split_whitespace().collect::<Vec<_>>().join(" ");
                        if squeezed.starts_with("curl ") || squeezed.starts_with("commctl ") {
                            out.push(Example { line: squeezed });
                        }
                    }
                    block = None;
                } else {
                    body.push_str(raw);
                    body.push('\n');
                }
            }
        }
    }
    out
}

/// The commands of a shell block: `\\` continuations joined, and lines
/// joined while a single-quoted string is open.
fn commands_of(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(line.trim());
        if let Some(open) = current.strip_suffix('\\') {
            current = open.trim_end().to_string();
            continue;
        }
        if current.matches('\'').count() % 2 == 1 {
            continue;
        }
        out.push(std::mem::take(&mut current));
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every example of the README and docs/, by file.
fn all_examples() -> Vec<(String, Vec<Example>)> {
    let mut files = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .iter()
        .map(|path| {
            let name = path
                .strip_prefix(repo())
                .unwrap_or(path)
                .display()
                .to_string();
            let text = std::fs::read_to_string(path).unwrap();
            (name, examples_in(&text))
        })
        .filter(|(_, e)| !e.is_empty())
        .collect()
}

/// A running all-in-one in a scratch home with a commctl configuration.
struct World {
    child: Child,
    base: String,
    home: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl World {
    fn start() -> World {
        let home = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(binary("commissaire"))
            .arg("--no-config-file")
            .args(["--listen-interface", "127.0.0.1"])
            .args(["--listen-port", &port.to_string()])
            .arg("--data-dir")
            .arg(home.path().join("data"))
            .arg("--authentication-plugin")
            .arg(format!(
                "httpbasicauth:filepath={}",
                repo().join("conf/users.json").display()
            ))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(home.path().join("server.log")).unwrap())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let world = World { child, base, home };
        world.fill_home();
        world.write_config();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !world
            .run_shell("curl -fs -o /dev/null $BASE/readyz")
            .0
            .success()
        {
            assert!(Instant::now() < deadline, "the all-in-one never got ready");
            std::thread::sleep(Duration::from_millis(200));
        }
        world
    }

    /// The files and settings the examples name.
    fn fill_home(&self) {
        let home = self.home.path();
        std::fs::create_dir_all(home.join(".config/fish/completions")).unwrap();
        // A private key for the examples that register hosts (the hosts
        // are not reachable here; the API only stores the key).
        let key = home.join("key");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(made.success());
        for name in [
            "path/to/key",
            "path/to/remote/hosts/priv/ssh_key",
            ".ssh/commissaire_id_ed25519",
        ] {
            let path = home.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::copy(&key, &path).unwrap();
        }
        std::fs::write(home.join("my_password.txt"), "secret\n").unwrap();
        std::fs::write(
            home.join("prod-rolling.json"),
            r#"{"keep_runs": 5, "windows": [{"start": "00:00", "end": "23:59"}]}"#,
        )
        .unwrap();
    }

    /// `command` run by `sh` in the scratch home, `commctl` on the PATH.
    fn run_shell(&self, command: &str) -> (std::process::ExitStatus, String, String) {
        let path = format!(
            "{}:{}",
            binary("commctl").parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env("PATH", path)
            .env("BASE", &self.base)
            .env("TOKEN", "example-token")
            .env_remove("COMMCTL_CONFIG")
            .env_remove("COMMCTL_ENDPOINT")
            .env_remove("COMMCTL_USERNAME")
            .env_remove("COMMCTL_PASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // For the examples that ask for a password.
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(b"secret\nsecret\n");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("`{command}` did not finish in 90 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `curl -s -o /dev/null -w '%{http_code}' ARGS` against the server.
    fn status_of(&self, args: &str) -> String {
        let (_, out, _) = self.run_shell(&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' -u a:a {args}"
        ));
        out
    }

    /// Puts the fixture in place for `line` (docs' addresses): the records
    /// it creates are absent, those it deletes present, and whatever needs
    /// either is absent; every other record is created if it is missing.
    /// The fixture clusters' rolling defaults are cleared. Then waits for a
    /// quiet world: no fixture host still being investigated, no operation
    /// of a fixture cluster in process.
    fn prepare(&self, line: &str) {
        self.write_config();
        // Rolls an earlier example left held by a closed window end.
        for (path, _, _) in FIXTURE.iter().filter(|(p, _, _)| p.starts_with("cluster/")) {
            for op in ["restart", "upgrade", "deploy"] {
                self.status_of(&format!("-XDELETE $BASE/api/v0/{path}/{op}"));
            }
        }
        let created = touched(line, "create");
        let deleted = touched(line, "delete");
        let absent = |(path, _, needs): &&(&str, &str, &[&str])| {
            created.contains(path)
                || needs
                    .iter()
                    .any(|n| created.contains(n) || deleted.contains(n))
        };
        // Those that need another first (they come after it).
        for (path, _, _) in FIXTURE.iter().rev().filter(|f| absent(f)) {
            let path = local(path);
            let status = self.status_of(&format!("-XDELETE $BASE/api/v0/{path}"));
            assert!(
                matches!(status.as_str(), "200" | "404"),
                "deleting {path}: {status}"
            );
        }
        for (path, body, _) in FIXTURE.iter().filter(|f| !absent(f)) {
            let path = local(path);
            if self.status_of(&format!("$BASE/api/v0/{path}")) == "200" {
                continue;
            }
            let status = self.status_of(&format!("-XPUT $BASE/api/v0/{path} -d '{body}'"));
            assert_eq!(status, "201", "putting the fixture's {path}");
        }
        // No rolling defaults: an example's maintenance windows would hold
        // every later roll until they open.
        for (path, _, _) in FIXTURE.iter().filter(|(p, _, _)| p.starts_with("cluster/")) {
            let status = self.status_of(&format!("-XPUT $BASE/api/v0/{path}/rolling -d '{{}}'"));
            assert!(
                matches!(status.as_str(), "200" | "404"),
                "resetting {path}/rolling: {status}"
            );
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let busy = self.busy();
            if busy.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still busy after 60 s before `{line}`: {busy:?}\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // An example that pauses, resumes or cancels a roll gets one that
        // runs: held by a closed window (and paused, to be resumed).
        if let Some((cluster, op, action)) = acts_on_a_running_roll(line) {
            let path = format!("$BASE/api/v0/cluster/{cluster}");
            let status = self.status_of(&format!("-XPUT {path}/rolling -d '{}'", closed_window()));
            assert_eq!(status, "200", "closing {cluster}'s windows");
            let body = if op == "deploy" {
                r#"{"version": "7.2.1"}"#
            } else {
                "{}"
            };
            let status = self.status_of(&format!("-XPUT {path}/{op} -d '{body}'"));
            assert_eq!(status, "201", "starting the {op} of {cluster} for `{line}`");
            if action == "resume" {
                let status = self.status_of(&format!("-XPUT {path}/{op}/pause"));
                assert_eq!(status, "202", "pausing the {op} of {cluster} for `{line}`");
            }
        }
    }

    /// The commctl configuration of the docs' Contexts section, every
    /// context pointing at this server.
    fn write_config(&self) {
        let config = serde_json::json!({
            "endpoint": self.base, "username": "a", "password": "a",
            "current-context": "lab",
            "contexts": {
                "lab": {"endpoint": self.base, "username": "a", "password": "a"},
                "prod": {"endpoint": [self.base], "username": "a", "password": "a"},
            }
        });
        std::fs::write(
            self.home.path().join(".commissaire.json"),
            config.to_string(),
        )
        .unwrap();
    }

    /// The server log's last lines.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.home.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The fixture hosts still investigating or bootstrapping, and the
    /// fixture clusters' operations in process.
    fn busy(&self) -> Vec<String> {
        let mut busy = Vec::new();
        for (path, _, _) in FIXTURE {
            let path = local(path);
            let (_, body, _) = self.run_shell(&format!("curl -s -u a:a $BASE/api/v0/{path}"));
            let record: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if path.starts_with("host/")
                && matches!(
                    record["status"].as_str(),
                    Some("investigating" | "bootstrapping")
                )
            {
                busy.push(path.clone());
            }
            if path.starts_with("cluster/") && record.is_object() {
                for op in ["restart", "upgrade", "deploy"] {
                    let (_, body, _) =
                        self.run_shell(&format!("curl -s -u a:a $BASE/api/v0/{path}/{op}"));
                    let record: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    if record["status"] == "in_process" {
                        busy.push(format!("{path}/{op}"));
                    }
                }
            }
        }
        busy
    }

    /// The example with its placeholders filled.
    fn fill(&self, line: &str) -> String {
        let mut command = local(line);
        for server in [
            "https://commissaire:8000",
            "http://localhost:8000",
            "http://127.0.0.1:8000",
        ] {
            command = command.replace(server, &self.base);
        }
        command = command
            .replace("USERNAME:PASSWORD", "a:a")
            .replace("admin:…", "a:a")
            .replace(
                "SHA256:...",
                "SHA256:4mS0u3y1s1q1vO3kq9hYq3GJkU2m0Yb5r0w9yq6bQnE",
            )
            .replace("--username USER", "--username a")
            .replace("--cluster CLUSTER", "--cluster datacenter1")
            .replace("CLUSTER.userdata", "datacenter1.userdata")
            .replace(
                " /path/to/remote/hosts/priv/ssh_key",
                " path/to/remote/hosts/priv/ssh_key",
            );
        if command.starts_with("curl ") {
            // The status, after the body.
            command.push_str(" -s -w '\\n%{http_code}'");
        }
        command
    }

    /// What the example gives: `exit N` for commctl, `http N` for curl.
    fn outcome(&self, example: &Example) -> (String, String) {
        let command = self.fill(&example.line);
        let (status, stdout, stderr) = self.run_shell(&command);
        let shown = format!("{stdout}{stderr}");
        if example.line.starts_with("curl ") {
            let code = stdout.rsplit('\n').next().unwrap_or("").trim().to_string();
            if !status.success() {
                return (format!("curl exit {:?}", status.code()), shown);
            }
            return (format!("http {code}"), shown);
        }
        (format!("exit {}", status.code().unwrap_or(-1)), shown)
    }
}

fn succeeded(outcome: &str) -> bool {
    outcome == "exit 0"
        || outcome
            .strip_prefix("http ")
            .and_then(|c| c.parse::<u16>().ok())
            .is_some_and(|c| (200..400).contains(&c))
}

#[test]
fn every_curl_and_commctl_example_in_the_docs_runs() {
    let mut used = BTreeSet::new();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (file, examples) in all_examples() {
        let world = World::start();
        for example in &examples {
            if let Some((_, _why)) = NOT_RUN.iter().find(|(l, _)| *l == example.line) {
                used.insert(example.line.clone());
                continue;
            }
            ran += 1;
            world.prepare(&example.line);
            let (outcome, shown) = world.outcome(example);
            let expected = EXPECTED.iter().find(|(l, _, _)| *l == example.line);
            let ok = match expected {
                Some((line, want, _why)) => {
                    used.insert(line.to_string());
                    outcome == *want
                }
                None => succeeded(&outcome),
            };
            if !ok {
                failures.push(format!(
                    "{file}: `{}` gave {outcome}{}:\n{}",
                    example.line,
                    expected.map_or(String::new(), |(_, want, _)| format!(" (expected {want})")),
                    shown.trim_end()
                ));
            }
        }
    }
    for (line, _) in NOT_RUN {
        if !used.contains(*line) {
            failures.push(format!("NOT_RUN names no example any more: `{line}`"));
        }
    }
    for (line, _, _) in EXPECTED {
        if !used.contains(*line) {
            failures.push(format!("EXPECTED names no example any more: `{line}`"));
        }
    }
    assert!(ran > 50, "only {ran} examples found");
    assert!(
        failures.is_empty(),
        "{} of {ran} examples failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn examples_are_read_from_shell_blocks_with_continuations_joined() {
    let text = "intro\n```sh\n$ commctl host list\ncurl -u a:a \\\n     http://x/api\necho no\n```\n```json\ncurl not\n```\n";
    let found: Vec<String> = examples_in(text).into_iter().map(|e| e.line).collect();
    assert_eq!(found, vec!["commctl host list", "curl -u a:a http://x/api"]);
}
