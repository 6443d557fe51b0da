//! Output: tables for people; the server's raw JSON (`-o json`, `--json`)
//! or YAML (`-o yaml`) for scripts.

use std::io::Write;

use comfy_table::{Table, presets};
use serde_json::{Value, json};

/// Writes text to stdout. A closed pipe (`commctl host list | head -1`)
/// ends the process quietly instead of panicking.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let result = out
        .write_all(text.as_bytes())
        .and_then(|_| {
            if text.ends_with('\n') {
                Ok(())
            } else {
                out.write_all(b"\n")
            }
        })
        .and_then(|_| out.flush());
    if let Err(e) = result {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(crate::error::exit::ERROR);
    }
}

/// Pretty JSON for `--json`.
pub fn json(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// The same value as YAML for `-o yaml`.
pub fn yaml(value: &Value) -> String {
    serde_norway::to_string(value).unwrap_or_else(|_| json(value))
}

/// A member of a record; `a.b` looks inside `a`.
fn member<'v>(item: &'v Value, path: &str) -> &'v Value {
    path.split('.')
        .try_fold(item, |v, key| v.get(key))
        .unwrap_or(&Value::Null)
}

fn new_table() -> Table {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    table
}

fn finish(table: &Table) -> String {
    // The preset pads every line; drop the pad so columns start at the margin.
    table
        .lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(&l).trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A scalar (or a list of scalars) as table text.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            items.iter().map(cell).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

fn flatten(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, rows);
            }
        }
        Value::Object(_) => rows.push((prefix.to_string(), String::new())),
        other => rows.push((prefix.to_string(), cell(other))),
    }
}

/// A record as a FIELD / VALUE table (nested members as `a.b`).
pub fn record(value: &Value) -> String {
    if !value.is_object() {
        return cell(value);
    }
    let mut rows = Vec::new();
    flatten("", value, &mut rows);
    let mut table = new_table();
    table.set_header(vec!["FIELD", "VALUE"]);
    for (k, v) in rows {
        table.add_row(vec![k, v]);
    }
    finish(&table)
}

/// An operation record: its members as a FIELD / VALUE table, then a
/// table of its hosts' progress (`timeline`), its events and past runs.
pub fn operation(value: &Value) -> String {
    let Some(map) = value.as_object() else {
        return cell(value);
    };
    let nested = ["timeline", "events", "history"];
    let summary: serde_json::Map<String, Value> = map
        .iter()
        .filter(|(k, _)| !nested.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut out = record(&Value::Object(summary));
    let empty = Vec::new();
    let list = |m: &str| value.get(m).and_then(Value::as_array).unwrap_or(&empty);
    let text = |v: &Value, m: &str| v.get(m).map(cell).unwrap_or_default();
    let timeline = list("timeline");
    if !timeline.is_empty() {
        let mut table = new_table();
        table.set_header(vec![
            "HOST", "STATE", "PHASE", "STARTED", "FINISHED", "REASON",
        ]);
        for host in timeline {
            let phases = host
                .get("phases")
                .and_then(Value::as_array)
                .unwrap_or(&empty);
            let state = text(host, "state");
            let phase = match text(host, "failed_phase") {
                f if !f.is_empty() => f,
                _ => phases.last().map(|p| text(p, "phase")).unwrap_or_default(),
            };
            let started = phases
                .first()
                .map(|p| text(p, "started_at"))
                .unwrap_or_default();
            let finished = match state.as_str() {
                "in_process" => String::new(),
                _ => phases
                    .last()
                    .map(|p| text(p, "finished_at"))
                    .unwrap_or_default(),
            };
            table.add_row(vec![
                text(host, "host"),
                state,
                phase,
                started,
                finished,
                text(host, "reason"),
            ]);
        }
        out.push_str("\n\n");
        out.push_str(&finish(&table));
    }
    let events = list("events");
    if !events.is_empty() {
        out.push_str("\n\n");
        out.push_str(&rows(
            &[("AT", "at"), ("EVENT", "event")],
            "events",
            &json!(events),
        ));
    }
    let history = list("history");
    if !history.is_empty() {
        out.push_str("\n\nPAST RUNS\n");
        out.push_str(&rows(
            &[
                ("STARTED", "started_at"),
                ("BY", "started_by"),
                ("STATUS", "status"),
                ("DONE", "done"),
                ("FAILED", "failed_hosts"),
                ("MEAN HOST MS", "mean_host_ms"),
            ],
            "past runs",
            &json!(history),
        ));
    }
    out
}

/// A dry-run plan: the budgets, window and estimate, then one row per
/// host (BATCH, HOST, STATUS, NODE, EVICTIONS), then the gates.
pub fn plan(value: &Value) -> String {
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        other => cell(other),
    };
    let budget = |b: &Value| {
        format!(
            "{} host(s) ({}: {})",
            text(&b["hosts"]),
            text(&b["from"]),
            match &b["value"] {
                Value::Null => b["note"].as_str().unwrap_or("-").to_string(),
                v => cell(v),
            }
        )
    };
    let mut out = format!(
        "Plan of the {} of cluster '{}' (dry run: nothing was changed)\n",
        text(&value["operation"]),
        text(&value["cluster"])
    );
    out.push_str(&format!("batch size:   {}\n", budget(&value["batch_size"])));
    out.push_str(&format!(
        "max failures: {}\n",
        budget(&value["max_failures"])
    ));
    out.push_str(&format!("window:       {}\n", text(&value["window"])));
    let estimate = match &value["estimate"] {
        Value::Null => "none (no earlier run to time)".to_string(),
        e => format!(
            "{} s ({} s per host, from {} run(s))",
            text(&e["seconds"]),
            text(&e["mean_host_seconds"]),
            text(&e["from_runs"])
        ),
    };
    out.push_str(&format!("estimate:     {estimate}\n"));
    if let Some(note) = value["note"].as_str() {
        out.push_str(&format!("note:         {note}\n"));
    }
    out.push('\n');
    let mut table = new_table();
    table.set_header(vec!["BATCH", "HOST", "STATUS", "NODE", "EVICTIONS"]);
    for row in value["hosts"].as_array().into_iter().flatten() {
        let evictions = match &row["evictions"] {
            Value::Array(p) if p.is_empty() => "none".to_string(),
            other => text(other),
        };
        table.add_row(vec![
            text(&row["batch"]),
            text(&row["host"]),
            text(&row["status"]),
            text(&row["node"]),
            evictions,
        ]);
    }
    out.push_str(&finish(&table));
    let gates = value["gates"].as_array().cloned().unwrap_or_default();
    out.push_str("\n\nGates after each host: ");
    if gates.is_empty() {
        out.push_str("none");
    }
    for g in &gates {
        out.push_str(&format!("\n  {}: {}", text(&g["gate"]), text(&g["what"])));
    }
    out
}

/// A list of names (or addresses) as a one-column table; `what` names the
/// items when there are none (e.g. `clusters`).
pub fn names(header: &str, what: &str, value: &Value) -> String {
    let items = match value {
        Value::Array(items) => items,
        other => return cell(other),
    };
    if items.is_empty() {
        return format!("(no {what})");
    }
    let mut table = new_table();
    table.set_header(vec![header]);
    for item in items {
        table.add_row(vec![cell(item)]);
    }
    finish(&table)
}

/// A cluster's reboot lock: its slots, then a row per holder.
pub fn lock(value: &Value) -> String {
    let summary: serde_json::Map<String, Value> = value
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.as_str() != "holders")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let holders = value.get("holders").cloned().unwrap_or(json!([]));
    format!(
        "{}\n\n{}",
        record(&Value::Object(summary)),
        rows(
            &[
                ("ID", "id"),
                ("KIND", "kind"),
                ("STATE", "state"),
                ("HOSTS", "hosts"),
                ("SINCE", "since"),
                ("WHY", "why"),
                ("STALE", "stale"),
            ],
            "holders",
            &holders,
        )
    )
}

/// Rows of records with the given columns (`(header, member)`).
pub fn rows(columns: &[(&str, &str)], what: &str, value: &Value) -> String {
    let items = match value {
        Value::Array(items) => items,
        other => return record(other),
    };
    if items.is_empty() {
        return format!("(no {what})");
    }
    let mut table = new_table();
    table.set_header(columns.iter().map(|(h, _)| *h).collect::<Vec<_>>());
    for item in items {
        if item.is_object() {
            table.add_row(
                columns
                    .iter()
                    .map(|(_, m)| cell(member(item, m)))
                    .collect::<Vec<_>>(),
            );
        } else {
            let mut row = vec![cell(item)];
            row.resize(columns.len(), String::new());
            table.add_row(row);
        }
    }
    finish(&table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_flattens() {
        let text = record(&json!({"name": "c", "hosts": {"total": 2}, "list": ["a", "b"]}));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("FIELD"), "{text}");
        assert!(text.contains("hosts.total"), "{text}");
        assert!(text.contains("a, b"), "{text}");
    }

    #[test]
    fn an_operation_shows_its_hosts_events_and_past_runs() {
        let text = operation(&json!({"name": "c", "status": "failed", "restarted": ["a"],
                "timeline": [
                    {"host": "a", "state": "done", "phases": [
                        {"phase": "run", "started_at": "t1", "finished_at": "t2"}]},
                    {"host": "b", "state": "failed", "failed_phase": "drain", "reason": "pods stayed",
                        "phases": [{"phase": "drain", "started_at": "t3", "finished_at": "t4"}]}],
                "events": [{"at": "t0", "event": "paused"}],
                "history": [{"status": "finished", "started_at": "t", "started_by": "ops", "done": 2}]}));
        assert!(!text.contains("timeline"), "{text}");
        let b = text.lines().find(|l| l.starts_with('b')).unwrap();
        for w in ["failed", "drain", "t3", "t4", "pods stayed"] {
            assert!(b.contains(w), "{w}: {text}");
        }
        assert!(
            text.contains("paused") && text.contains("PAST RUNS"),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.contains("ops") && l.contains("finished")),
            "{text}"
        );
    }

    #[test]
    fn a_plan_shows_budgets_hosts_and_gates() {
        let text = plan(&json!({"operation": "restart", "cluster": "c",
            "batch_size": {"value": "50%", "from": "request", "hosts": 2},
            "max_failures": {"value": null, "from": "clusterexec's setting", "hosts": 0, "note": "0 unless configured"},
            "window": "no maintenance windows", "estimate": null,
            "hosts": [{"host": "h1", "batch": 1, "status": "active", "node": "schedulable", "evictions": ["default/a"]}],
            "gates": [{"gate": "node_ready", "what": "the node reports Ready"}]}));
        assert!(text.contains("2 host(s) (request: 50%)"), "{text}");
        assert!(text.contains("0 unless configured"), "{text}");
        let row = text.lines().find(|l| l.contains("h1")).unwrap();
        assert!(
            row.contains("schedulable") && row.contains("default/a"),
            "{text}"
        );
        assert!(
            text.contains("node_ready: the node reports Ready"),
            "{text}"
        );
    }

    #[test]
    fn yaml_keeps_the_records_members() {
        let text = yaml(&json!({"name": "c", "hosts": {"total": 2}}));
        let back: Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(back, json!({"name": "c", "hosts": {"total": 2}}));
    }

    #[test]
    fn rows_reach_nested_members() {
        let text = rows(
            &[("HOSTS", "hosts.total")],
            "x",
            &json!([{"hosts": {"total": 3}}]),
        );
        assert_eq!(text.lines().nth(1).map(str::trim), Some("3"), "{text}");
    }

    #[test]
    fn names_table() {
        assert_eq!(names("NAME", "clusters", &json!([])), "(no clusters)");
        let text = names("NAME", "clusters", &json!(["x", "y"]));
        assert_eq!(
            text.lines().map(str::trim).collect::<Vec<_>>(),
            ["NAME", "x", "y"]
        );
    }

    #[test]
    fn rows_table() {
        let text = rows(
            &[("ADDRESS", "address"), ("STATUS", "status")],
            "hosts",
            &json!([{"address": "10.0.0.1", "status": "active"}]),
        );
        let second = text.lines().nth(1).unwrap();
        assert!(
            second.contains("10.0.0.1") && second.contains("active"),
            "{text}"
        );
    }
}
