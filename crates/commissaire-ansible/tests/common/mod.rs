//! Shared helpers of the integration tests: they run against the testbed's
//! real sshd hosts (scripts/testbed.sh; `source /tmp/tb/env`) with the real
//! `ansible-playbook`.  Only hosts 127.0.0.11-14 are used.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use commissaire_ansible::{PlaybookRunner, Target, source_playbook_dir};
use serde_json::{Map, Value};

/// The testbed hosts these tests may use (127.0.0.11 ..= 127.0.0.14).
pub fn hosts() -> Vec<String> {
    let all = commissaire_testkit::ssh_hosts();
    let mine: Vec<String> = (11..=14).map(|i| format!("127.0.0.{i}")).collect();
    for h in &mine {
        assert!(
            all.contains(h),
            "testbed host {h} missing from COMMISSAIRE_TEST_SSH_HOSTS"
        );
    }
    mine
}

/// Host number `n` (1-based) of [`hosts`].
pub fn host(n: usize) -> String {
    hosts()[n - 1].clone()
}

/// The testbed's private key (PEM text).
pub fn key() -> Vec<u8> {
    std::fs::read(commissaire_testkit::ssh_key()).expect("read COMMISSAIRE_TEST_SSH_KEY")
}

/// A root target with the testbed's key.
pub fn target(address: &str) -> Target {
    Target::with_private_key(address, "root", &key())
}

/// A private key the hosts do not accept (freshly generated).
pub fn foreign_key(dir: &Path) -> Vec<u8> {
    let path = dir.join("foreign_ed25519");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&path)
        .status()
        .expect("run ssh-keygen");
    assert!(st.success());
    let key = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(path.with_extension("pub")).unwrap();
    key
}

/// A runner for `<workspace>/playbooks` whose runs keep their temporary
/// files under `temp`.
pub fn runner(temp: &Path) -> PlaybookRunner {
    PlaybookRunner::new(source_playbook_dir())
        .with_temp_dir(temp.to_path_buf())
        .with_timeout(Duration::from_secs(240))
}

/// Asserts that a runner temp dir holds nothing (no key file left behind).
pub fn assert_empty(dir: &Path) {
    let left: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}

/// A vars map from `(name, value)` pairs, `@DIR@` replaced by `dir`.
pub fn vars(dir: &Path, pairs: &[(&str, Value)]) -> Map<String, Value> {
    let d = dir.display().to_string();
    pairs
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => Value::String(s.replace("@DIR@", &d)),
                other => other.clone(),
            };
            (k.to_string(), v)
        })
        .collect()
}

/// A scratch directory the "hosts" (this machine) write markers into.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("commissaire-ansible-test-")
        .tempdir()
        .unwrap()
}

/// Reads a file the playbook wrote, with a helpful message.
pub fn read(path: impl AsRef<Path>) -> String {
    let p = path.as_ref();
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Processes whose command line mentions `needle`, excluding this process.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
            continue;
        }
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{name}: {cmd}"));
            }
        }
    }
    found
}
