//! The rules of `ARCHITECTURE.md` that a test can check.

use commissaire_tidy::{root, source_files, without_tests, workspace_crates};

/// Crates that may link the store handlers (and so redb and the etcd
/// gRPC client): the storage service, the all-in-one that runs it, and the
/// bench that starts both.
const STORE_LINKERS: [&str; 3] = [
    "commissaire-storage-service",
    "commissaire",
    "commissaire-bench",
];

#[test]
fn only_the_storage_service_and_the_all_in_one_link_the_store_handlers() {
    let crates = workspace_crates();
    assert!(crates.contains_key("commissaire-storage"), "{crates:?}");
    for (name, deps) in &crates {
        if deps.iter().any(|d| d == "commissaire-storage") {
            assert!(
                STORE_LINKERS.contains(&name.as_str()),
                "{name} links commissaire-storage (the store handlers); use commissaire-storage-client"
            );
        }
        for store in ["redb", "etcd-client"] {
            if deps.iter().any(|d| d == store) {
                assert_eq!(
                    name, "commissaire-storage",
                    "{name} depends on {store}: only the store handlers may"
                );
            }
        }
    }
    // And the daemons do reach storage, through the client.
    for daemon in [
        "commissaire-http",
        "commissaire-investigator-service",
        "commissaire-watcher-service",
        "commissaire-clusterexec-service",
        "commissaire-containermgr-service",
    ] {
        assert!(
            crates[daemon]
                .iter()
                .any(|d| d == "commissaire-storage-client"),
            "{daemon} uses the storage client"
        );
    }
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    let undocumented: Vec<_> = source_files()
        .into_iter()
        .filter(|(_, path)| {
            let text = std::fs::read_to_string(path).expect("read");
            !text.trim_start().starts_with("//!")
        })
        .map(|(_, path)| path)
        .collect();
    assert!(
        undocumented.is_empty(),
        "no `//!` module doc: {undocumented:?}"
    );
}

#[test]
fn daemon_code_does_not_unwrap() {
    // Test helpers may; everything that runs in a daemon, the server or the
    // CLI handles its errors (`expect` with a reason is allowed at start-up).
    let exempt = [
        "commissaire-testkit",
        "commissaire-faults",
        "commissaire-bench",
        "commissaire-tidy",
    ];
    let mut found = Vec::new();
    for (krate, path) in source_files() {
        if exempt.contains(&krate.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        for (n, line) in without_tests(&text).lines().enumerate() {
            if line.contains(".unwrap()") && !line.trim_start().starts_with("//") {
                found.push(format!("{}:{}", path.display(), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "unwrap() in daemon code: {found:#?}");
}

#[test]
fn no_source_file_grows_past_600_lines() {
    let root = root();
    let mut over = Vec::new();
    for (_, path) in source_files() {
        let lines = std::fs::read_to_string(&path)
            .expect("read")
            .lines()
            .count();
        let relative = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        if lines > 600 {
            over.push(format!("{relative}: {lines} lines"));
        }
    }
    assert!(over.is_empty(), "split these by concept: {over:#?}");
}

#[test]
fn the_server_s_tests_need_no_test_bed() {
    // The fast tier: `cargo test -p commissaire-http` runs on a machine with
    // nothing installed but Rust; what needs the test bed lives in
    // commissaire-acceptance.
    let dir = root().join("crates/commissaire-http/tests");
    let mut found = Vec::new();
    let mut files = vec![dir];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .expect("list")
                    .map(|e| e.expect("entry").path()),
            );
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read");
            for needle in ["commissaire_testkit", "COMMISSAIRE_TEST_", "etcd_client"] {
                if text.contains(needle) {
                    found.push(format!("{}: {needle}", path.display()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "test-bed parts in the fast tier: {found:#?}"
    );
}

/// The exposure `systemd-analyze security` gives a unit at most
/// (ARCHITECTURE.md, "Hardened units"; docs/install.md lists the figures).
const MAX_UNIT_EXPOSURE: f64 = 3.0;

#[test]
fn every_systemd_unit_is_hardened_to_an_exposure_of_3_or_less() {
    let dir = root().join("conf/systemd");
    let mut units: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "service"))
        .collect();
    units.sort();
    assert!(units.len() >= 7, "{units:?}");
    let mut too_exposed = Vec::new();
    for unit in &units {
        let out = std::process::Command::new("systemd-analyze")
            .args(["security", "--offline=true"])
            .arg(unit)
            .output()
            .expect(
                "systemd-analyze (Debian's systemd package; scripts/install-deps.sh installs it)",
            );
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let exposure: f64 = text
            .lines()
            .find_map(|l| {
                let rest = l.split("Overall exposure level for ").nth(1)?;
                rest.split(": ")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no exposure for {}: {text}", unit.display()));
        // The unit's own settings must also be valid for systemd.
        assert!(
            !text.contains("Unknown key") && !text.contains("Failed to parse"),
            "{}: {text}",
            unit.display()
        );
        if exposure > MAX_UNIT_EXPOSURE {
            too_exposed.push(format!("{}: {exposure}", unit.display()));
        }
    }
    assert!(
        too_exposed.is_empty(),
        "harden these units: {too_exposed:?}"
    );
}

#[test]
fn the_image_ships_every_binary_with_a_healthcheck_and_no_build_tree_in_its_context() {
    let metadata = commissaire_tidy::metadata();
    // The binaries an operator runs (not the bench's, not a test tool's).
    let skip = [
        "commissaire-bench",
        "commissaire-tidy",
        "commissaire-testkit",
    ];
    let mut binaries = Vec::new();
    for package in metadata["packages"].as_array().unwrap() {
        if skip.contains(&package["name"].as_str().unwrap()) {
            continue;
        }
        for target in package["targets"].as_array().unwrap() {
            if target["kind"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == "bin")
            {
                binaries.push(target["name"].as_str().unwrap().to_string());
            }
        }
    }
    assert!(binaries.len() >= 8, "{binaries:?}");
    let containerfile = std::fs::read_to_string(root().join("Containerfile.server")).unwrap();
    for binary in &binaries {
        assert!(
            containerfile.contains(&format!("/src/target/release/{binary} ")),
            "Containerfile.server does not ship {binary}"
        );
    }
    let healthcheck = containerfile
        .lines()
        .skip_while(|l| !l.starts_with("HEALTHCHECK"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        healthcheck.contains("/healthz"),
        "a HEALTHCHECK on the liveness probe: {healthcheck}"
    );
    for ignore in [".containerignore", ".dockerignore"] {
        let text = std::fs::read_to_string(root().join(ignore)).unwrap_or_default();
        assert!(
            text.lines()
                .any(|l| l.trim() == "target/" || l.trim() == "target"),
            "{ignore} keeps target/ out of the build context"
        );
    }
}
