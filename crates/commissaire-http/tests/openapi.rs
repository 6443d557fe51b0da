//! The API described: the OpenAPI document served at
//! `/api/v0/openapi.json` names every endpoint docs/api.md documents, and
//! every operation it describes is served (neither "no such endpoint" nor
//! "not allowed"). A real validator and a property-based run against the
//! all-in-one are in scripts/check-openapi.sh (run by scripts/test.sh).

mod common;

use std::collections::BTreeSet;

use common::Stack;
use serde_json::Value;

const METHODS: [&str; 4] = ["get", "put", "post", "delete"];

/// Every `(METHOD, path)` the document describes.
fn described(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// Every `(METHOD, path)` of docs/api.md's `### METHOD /api/v0/...`
/// headings, `{restart|upgrade|deploy}` and "/pause and /resume" spelled out.
fn documented() -> BTreeSet<(String, String)> {
    let text = include_str!("../../../docs/api.md");
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("### ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(method), Some(path)) = (words.next(), words.next()) else {
            continue;
        };
        if !path.starts_with("/api/v0") {
            continue;
        }
        let mut paths = vec![path.to_string()];
        if rest.contains(" and /resume") {
            paths.push(path.replace("/pause", "/resume"));
        }
        for path in paths {
            for path in spell_out(&path) {
                out.insert((method.to_string(), path));
            }
        }
    }
    out
}

/// The statuses docs/api.md's table under each `### METHOD PATH` heading
/// lists, by `(METHOD, path)` as [`documented`] spells them.
fn documented_statuses() -> Vec<((String, String), Vec<String>)> {
    let text = include_str!("../../../docs/api.md");
    let mut out = Vec::new();
    for section in text.split("\n### ").skip(1) {
        let head = section.lines().next().unwrap_or("");
        let mut words = head.split_whitespace();
        let (Some(method), Some(path)) = (words.next(), words.next()) else {
            continue;
        };
        let statuses: Vec<String> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| "))
            .filter_map(|l| l.split(' ').next())
            .filter(|code| code.len() == 3 && code.chars().all(|c| c.is_ascii_digit()))
            .map(str::to_string)
            .collect();
        let mut paths = vec![path.to_string()];
        if head.contains(" and /resume") {
            paths.push(path.replace("/pause", "/resume"));
        }
        for path in paths.iter().flat_map(|p| spell_out(p)) {
            out.push(((method.to_string(), path), statuses.clone()));
        }
    }
    out
}

/// `/a/{x|y}/b` -> `/a/x/b`, `/a/y/b`.
fn spell_out(path: &str) -> Vec<String> {
    let Some(start) = path.find("{").filter(|&i| path[i..].find('}').is_some()) else {
        return vec![path.to_string()];
    };
    let end = start + path[start..].find('}').unwrap();
    let inner = &path[start + 1..end];
    if !inner.contains('|') {
        let rest = spell_out(&path[end + 1..]);
        return rest
            .into_iter()
            .map(|r| format!("{}{r}", &path[..=end]))
            .collect();
    }
    inner
        .split('|')
        .flat_map(|alt| spell_out(&format!("{}{alt}{}", &path[..start], &path[end + 1..])))
        .collect()
}

#[tokio::test]
async fn the_document_describes_every_documented_endpoint() {
    let s = Stack::start().await;
    let (status, doc) = s.get("/api/v0/openapi.json").await;
    assert_eq!(status, 200, "{doc}");
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with("3."),
        "{doc}"
    );
    let described = described(&doc);
    let documented = documented();
    assert!(documented.len() > 30, "{documented:?}");
    let missing: Vec<_> = documented.difference(&described).collect();
    assert!(
        missing.is_empty(),
        "docs/api.md documents these, the OpenAPI document does not: {missing:?}"
    );
    // Each answer docs/api.md lists is one the description lists.
    for ((method, path), statuses) in documented_statuses() {
        let listed = &doc["paths"][&path][method.to_lowercase()]["responses"];
        for status in statuses {
            assert!(
                listed.get(&status).is_some(),
                "docs/api.md lists {status} for {method} {path}, the OpenAPI document does not"
            );
        }
    }
    // And it describes nothing docs/api.md leaves out but the alias of
    // the original's path and the document itself.
    let extra: Vec<_> = described.difference(&documented).collect();
    assert_eq!(
        extra,
        vec![
            &("GET".to_string(), "/api/v0/cluster".to_string()),
            &("GET".to_string(), "/api/v0/openapi.json".to_string()),
        ],
        "described, not in docs/api.md"
    );
}

#[tokio::test]
async fn every_described_operation_is_served() {
    let s = Stack::start().await;
    let (_, doc) = s.get("/api/v0/openapi.json").await;
    for (method, path) in described(&doc) {
        let concrete = path
            .replace("{name}", "described-route-check")
            .replace("{address}", "192.0.2.1");
        let body = (method == "PUT").then_some("{}");
        let (status, answer) = s.send(&method, &concrete, body).await;
        let unknown = answer["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("no such endpoint") || e.contains("is not allowed on"));
        assert!(
            !unknown && status != 405 && status < 500,
            "{method} {path} ({concrete}) answered {status}: {answer}"
        );
        // Every answer is one the document lists for the operation (or the
        // statuses every route shares).
        let listed = &doc["paths"][&path][method.to_lowercase()]["responses"];
        assert!(
            listed.get(status.to_string()).is_some(),
            "{method} {path} answered {status}, which its description does not list: {answer}"
        );
    }
}

#[tokio::test]
async fn the_document_is_served_without_credentials() {
    let s = Stack::start().await;
    let response = reqwest::get(s.url("/api/v0/openapi.json")).await.unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["info"]["title"], "Commissaire");
    assert_eq!(
        doc["components"]["securitySchemes"]["basic"]["scheme"],
        "basic"
    );
}

#[test]
fn alternatives_in_documented_paths_are_spelled_out() {
    assert_eq!(
        spell_out("/api/v0/cluster/{name}/{restart|upgrade}"),
        vec![
            "/api/v0/cluster/{name}/restart",
            "/api/v0/cluster/{name}/upgrade"
        ]
    );
}
