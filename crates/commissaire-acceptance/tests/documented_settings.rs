//! docs/configuration.md documents every setting the binaries read, and
//! nothing they do not: each binary is started with a configuration file
//! holding a member nobody has, and the members its start-up error says it
//! knows are compared with the members of its section's tables. No test bed
//! is needed (the binaries stop at the configuration).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use commissaire_testkit::daemons;

fn doc() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of the section under `heading` (a whole line, e.g.
/// `"### watcher"`), up to the next heading of any level.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .lines()
        .position(|l| l.trim_end() == heading)
        .unwrap_or_else(|| panic!("configuration.md has no '{heading}'"));
    let lines: Vec<&str> = doc.lines().collect();
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with('#'))
        .map_or(lines.len(), |i| start + 1 + i);
    let from = lines[..start].iter().map(|l| l.len() + 1).sum::<usize>();
    let to = lines[..end].iter().map(|l| l.len() + 1).sum::<usize>();
    &doc[from..to.min(doc.len())]
}

/// The cells of a table row (`\|` is a `|` inside a cell).
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().strip_prefix('|').unwrap_or(line.trim());
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut cells = vec![String::new()];
    let mut escaped = false;
    for ch in inner.chars() {
        match ch {
            '|' if !escaped => cells.push(String::new()),
            _ => cells.last_mut().unwrap().push(ch),
        }
        escaped = ch == '\\';
    }
    cells.into_iter().map(|c| c.trim().to_string()).collect()
}

/// The `backticked` names in the cells of column `column` (its header) in
/// the tables of `text`.
fn column(text: &str, column: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut index = None;
    for line in text.lines() {
        if !line.trim_start().starts_with('|') {
            index = None;
            continue;
        }
        let row = cells(line);
        if row
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ' '))
        {
            continue;
        }
        match index {
            None => index = Some(row.iter().position(|c| c == column)),
            Some(None) => {}
            Some(Some(i)) => {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                found.extend(cell.split('`').skip(1).step_by(2).map(str::to_string));
            }
        }
    }
    found
}

/// The members `binary` says it knows when its file holds an unknown one.
fn known(binary: &str, flag: &str) -> BTreeSet<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    std::fs::write(&file, r#"{"zznosuchmember": 1}"#).unwrap();
    let out = Command::new(daemons::binary(binary))
        .arg(flag)
        .arg(&file)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "{binary} started with an unknown member"
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    // Daemons: serde's "unknown field `zz`, expected one of `a`, `b`"
    // (or "expected `a`", or "there are no fields"); the server:
    // "unknown member 'zz' (known: a, b)".
    let names: BTreeSet<String> = if let Some((_, rest)) = stderr.split_once("known: ") {
        rest.split(')')
            .next()
            .unwrap()
            .split(", ")
            .map(|s| s.trim().to_string())
            .collect()
    } else if let Some((_, rest)) = stderr.split_once("expected ") {
        // "`a`", "`a` or `b`", "one of `a`, `b`, `c`".
        let rest = rest.lines().next().unwrap();
        let rest = rest.split(" (did you mean").next().unwrap();
        rest.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    } else {
        assert!(stderr.contains("there are no fields"), "{binary}: {stderr}");
        BTreeSet::new()
    };
    assert!(stderr.contains("zznosuchmember"), "{binary}: {stderr}");
    names
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_server_setting_is_documented_and_every_documented_one_is_read() {
    let doc = doc();
    let server = column(section(&doc, "## The REST server"), "file key");
    assert_eq!(known("commissaire-server", "-c"), server);
    let own = column(section(&doc, "### The all-in-one"), "file key");
    assert!(!own.is_empty());
    let all: BTreeSet<String> = server.union(&own).cloned().collect();
    assert_eq!(known("commissaire", "-c"), all);
}

#[test]
fn every_service_setting_is_documented_and_every_documented_one_is_read() {
    let doc = doc();
    let services = section(&doc, "## The services");
    assert_eq!(
        column(services, "config key"),
        set(&commissaire_service::SHARED_MEMBERS),
        "the members every service shares"
    );
    // The "service | members" table: backticked members, or a section below.
    let mut rows = 0;
    for line in services.lines().filter(|l| l.starts_with("| ")) {
        let row = cells(line);
        let service = row[0].clone();
        let members = row.get(1).cloned().unwrap_or_default();
        let binary = match service.as_str() {
            "storage" => "commissaire-storage-service",
            "clusterexec" => "commissaire-clusterexec-service",
            "investigator" => "commissaire-investigator-service",
            "watcher" => "commissaire-watcher-service",
            "containermgr" => "commissaire-containermgr-service",
            _ => continue,
        };
        rows += 1;
        let documented = if members.contains("[below]") && !members.contains('`') {
            column(section(&doc, &format!("### {service}")), "member")
        } else {
            members
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        assert_eq!(known(binary, "-c"), documented, "{service}");
    }
    assert_eq!(rows, 5, "a row for each service");
}
