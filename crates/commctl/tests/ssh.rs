//! `commctl host ssh` against a real sshd test host (the testbed's
//! 127.0.0.19, `host9.test`): the stored key is used, ssh's exit code is
//! returned, and the temporary key file is gone afterwards.

mod common;

use common::Stack;

const SSH_OPTIONS: &[&str] = &[
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ConnectTimeout=10",
];

/// The testbed's SSH host and key, if the testbed is set up (`source /tmp/tb/env`).
fn testbed() -> Option<(String, String)> {
    let hosts = std::env::var("COMMISSAIRE_TEST_SSH_HOSTS").ok()?;
    let key = std::env::var("COMMISSAIRE_TEST_SSH_KEY").ok()?;
    // Only 127.0.0.19 and 127.0.0.20 are ours; the others belong to other tests.
    let host = hosts
        .split(',')
        .map(str::trim)
        .find(|h| *h == "127.0.0.19")?
        .to_string();
    Some((host, key))
}

fn is_empty_dir(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

fn ssh_run(s: &Stack, tmp: &std::path::Path, address: &str, remote: &[&str]) -> common::Run {
    let mut args = vec!["host", "ssh", address];
    args.extend_from_slice(SSH_OPTIONS);
    args.extend_from_slice(remote);
    s.command(&args).env("TMPDIR", tmp).output().unwrap().into()
}

#[test]
fn host_ssh_runs_ssh_with_the_stored_key() {
    let Some((host, key)) = testbed() else {
        panic!(
            "the sshd testbed is required: source /tmp/tb/env (COMMISSAIRE_TEST_SSH_HOSTS, COMMISSAIRE_TEST_SSH_KEY)"
        );
    };
    let s = Stack::start();
    s.commctl(&["host", "create", &host, &key]).expect(0);
    let tmp = tempfile::tempdir().unwrap();

    let out = ssh_run(&s, tmp.path(), &host, &["hostname"]).expect(0);
    assert_eq!(out.stdout.trim(), "host9.test", "{out:?}");
    assert!(
        is_empty_dir(tmp.path()),
        "the temporary key file was left behind"
    );

    // ssh's exit code is commctl's.
    let out = ssh_run(&s, tmp.path(), &host, &["exit 7"]);
    assert_eq!(out.code, 7, "{out:?}");
    assert!(is_empty_dir(tmp.path()));

    // ssh failing (nothing listens on port 1) still removes the key.
    let out = ssh_run(&s, tmp.path(), &host, &["-p", "1", "hostname"]);
    assert_eq!(out.code, 255, "{out:?}");
    assert!(is_empty_dir(tmp.path()));

    // An ssh that cannot be started: an error, and no key left either.
    let out: common::Run = s
        .command(&["host", "ssh", &host, "hostname"])
        .env("TMPDIR", tmp.path())
        .env("COMMCTL_SSH", "/nonexistent/ssh")
        .output()
        .unwrap()
        .into();
    let out = out.expect(1);
    assert!(out.stderr.contains("/nonexistent/ssh"), "{out:?}");
    assert!(is_empty_dir(tmp.path()));

    // Unknown host: 404, no key file written.
    let out = ssh_run(&s, tmp.path(), "127.0.0.20", &["hostname"]).expect(3);
    assert!(out.stderr.contains("127.0.0.20"), "{out:?}");
    assert!(is_empty_dir(tmp.path()));
}

#[test]
fn host_ssh_uses_the_stored_remote_user() {
    let Some((_, key)) = testbed() else {
        panic!("the sshd testbed is required: source /tmp/tb/env");
    };
    let s = Stack::start();
    // A stored user that does not exist on 127.0.0.20 must be what ssh uses.
    s.commctl(&[
        "host",
        "create",
        "--remote-user",
        "commctl-nouser",
        "127.0.0.20",
        &key,
    ])
    .expect(0);
    let tmp = tempfile::tempdir().unwrap();
    let out = ssh_run(&s, tmp.path(), "127.0.0.20", &["-v", "hostname"]);
    assert_eq!(out.code, 255, "{out:?}");
    assert!(out.stderr.contains("as 'commctl-nouser'"), "{out:?}");
    assert!(is_empty_dir(tmp.path()));
}

#[test]
fn host_key_and_accept_key_show_and_reset_the_pinned_key() {
    let Some((_, key)) = testbed() else {
        panic!("the sshd testbed is required: source /tmp/tb/env");
    };
    let s = Stack::start();
    // Nothing contacted the host yet (this stack has no investigator).
    s.commctl(&["host", "create", "192.0.2.77", &key]).expect(0);
    let out = s.commctl(&["host", "key", "192.0.2.77"]).expect(0);
    assert!(
        out.stdout.contains("no SSH host key recorded yet"),
        "{out:?}"
    );
    // A fingerprint that is not one: the server's 400, named.
    let out = s.commctl(&[
        "host",
        "accept-key",
        "--fingerprint",
        "MD5:00",
        "192.0.2.77",
    ]);
    let out = out.expect(7);
    assert!(out.stderr.contains("fingerprint"), "{out:?}");
    let fp = "SHA256:LHDhK3oGRvkiefQnx7OOczTY5Tic/xZ6HcMOc/gmtoM";
    let out = s
        .commctl(&["host", "accept-key", "--fingerprint", fp, "192.0.2.77"])
        .expect(0);
    assert!(out.stdout.contains(fp), "{out:?}");
    let out = s.commctl(&["host", "key", "192.0.2.77"]).expect(0);
    assert!(
        out.stdout
            .contains(&format!("only a key with fingerprint {fp}")),
        "{out:?}"
    );
    let out = s
        .commctl(&["--json", "host", "key", "192.0.2.77"])
        .expect(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["accept_fingerprint"], fp, "{v}");
    assert!(v.get("ssh_priv_key").is_none(), "{v}");
    // No such host: 404.
    s.commctl(&["host", "accept-key", "192.0.2.78"]).expect(3);
}
