//! The rules of `ARCHITECTURE.md` ("Invariants") that a test can check,
//! in the spirit of rust-analyzer's `tidy`: `cargo test -p
//! commissaire-tidy` fails when one is broken. No test bed needed.
//!
//! This library reads the workspace: its crates and their normal
//! dependencies ([`workspace_crates`], from `cargo metadata`) and the
//! Rust files under each crate's `src/` ([`source_files`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace's root directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// `cargo metadata --no-deps` of the workspace (offline), parsed.
pub fn metadata() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("metadata JSON")
}

/// Every workspace crate and the names of its normal (not dev, not build)
/// dependencies, from `cargo metadata`.
pub fn workspace_crates() -> BTreeMap<String, Vec<String>> {
    let metadata = metadata();
    let mut crates = BTreeMap::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("name").to_string();
        let deps = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str().map(str::to_string))
            .collect();
        crates.insert(name, deps);
    }
    crates
}

/// Every `.rs` file under `crates/*/src`, with its crate's directory name.
pub fn source_files() -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    let crates = std::fs::read_dir(root().join("crates")).expect("crates/");
    for krate in crates.flatten() {
        let name = krate.file_name().to_string_lossy().into_owned();
        let mut found = Vec::new();
        walk(&krate.path().join("src"), &mut found);
        files.extend(found.into_iter().map(|f| (name.clone(), f)));
    }
    files.sort();
    files
}

/// The part of a source file that is not its unit tests (everything
/// before the first `#[cfg(test)]`).
pub fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}
