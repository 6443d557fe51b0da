//! `cluster {restart,upgrade,deploy} start|status|pause|resume|cancel` and
//! `cluster rolling get|set`: rolling operations and their defaults.

use std::io::IsTerminal;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{Ctx, Subject};
use crate::cli::{
    Control, DeployCommand, OperationCommand, RollArgs, RollingCommand, StatusArgs, UpgradeCommand,
};
use crate::error::{CliError, CliResult, exit};
use crate::output;

/// A cluster operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `deploy`
    Deploy,
    /// `restart`
    Restart,
    /// `upgrade`
    Upgrade,
}

impl Operation {
    /// The path segment.
    pub fn segment(self) -> &'static str {
        match self {
            Operation::Deploy => "deploy",
            Operation::Restart => "restart",
            Operation::Upgrade => "upgrade",
        }
    }

    /// The record member listing the hosts done.
    pub fn done_member(self) -> &'static str {
        match self {
            Operation::Deploy => "deployed",
            Operation::Restart => "restarted",
            Operation::Upgrade => "upgraded",
        }
    }

    /// A noun for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Operation::Deploy => "deployment",
            Operation::Restart => "restart",
            Operation::Upgrade => "upgrade",
        }
    }
}

/// What was asked of an operation, whichever it is.
enum Action<'a> {
    Start {
        name: &'a str,
        body: Map<String, Value>,
        roll: &'a RollArgs,
    },
    Plan {
        name: &'a str,
        body: Map<String, Value>,
        roll: &'a RollArgs,
    },
    Status(&'a StatusArgs),
    Control(&'a str, Control),
}

/// `cluster restart ...`
pub fn restart(ctx: &Ctx, command: &OperationCommand) -> CliResult<i32> {
    let action = match command {
        OperationCommand::Start { name, roll } => Action::Start {
            name,
            body: Map::new(),
            roll,
        },
        OperationCommand::Status(args) => Action::Status(args),
        OperationCommand::Plan { name, roll } => Action::Plan {
            name,
            body: Map::new(),
            roll,
        },
        OperationCommand::Pause(n) => Action::Control(&n.name, Control::Pause),
        OperationCommand::Resume(n) => Action::Control(&n.name, Control::Resume),
        OperationCommand::Cancel(n) => Action::Control(&n.name, Control::Cancel),
    };
    run(ctx, Operation::Restart, action)
}

/// `cluster upgrade ...`
pub fn upgrade(ctx: &Ctx, command: &UpgradeCommand) -> CliResult<i32> {
    let action = match command {
        UpgradeCommand::Start {
            name,
            version,
            roll,
        } => {
            if version.is_some() {
                ctx.note(
                    "upgrades take no version (the hosts' own update source decides); VERSION is ignored",
                );
            }
            Action::Start {
                name,
                body: Map::new(),
                roll,
            }
        }
        UpgradeCommand::Status(args) => Action::Status(args),
        UpgradeCommand::Plan { name, roll } => Action::Plan {
            name,
            body: Map::new(),
            roll,
        },
        UpgradeCommand::Pause(n) => Action::Control(&n.name, Control::Pause),
        UpgradeCommand::Resume(n) => Action::Control(&n.name, Control::Resume),
        UpgradeCommand::Cancel(n) => Action::Control(&n.name, Control::Cancel),
    };
    run(ctx, Operation::Upgrade, action)
}

/// `cluster deploy ...`
pub fn deploy(ctx: &Ctx, command: &DeployCommand) -> CliResult<i32> {
    let action = match command {
        DeployCommand::Start {
            name,
            version,
            roll,
        } => {
            let mut body = Map::new();
            body.insert("version".into(), json!(version));
            Action::Start { name, body, roll }
        }
        DeployCommand::Status(args) => Action::Status(args),
        DeployCommand::Plan {
            name,
            version,
            roll,
        } => {
            let mut body = Map::new();
            body.insert("version".into(), json!(version));
            Action::Plan { name, body, roll }
        }
        DeployCommand::Pause(n) => Action::Control(&n.name, Control::Pause),
        DeployCommand::Resume(n) => Action::Control(&n.name, Control::Resume),
        DeployCommand::Cancel(n) => Action::Control(&n.name, Control::Cancel),
    };
    run(ctx, Operation::Deploy, action)
}

/// A budget flag as JSON: a number when it is one, else the text
/// (`"25%"`), which the server checks.
fn budget(text: &str) -> Value {
    match text.trim().parse::<u64>() {
        Ok(n) => json!(n),
        Err(_) => json!(text.trim()),
    }
}

/// Adds the roll flags to a start or plan body.
fn roll_body(body: &mut Map<String, Value>, roll: &RollArgs) {
    if let Some(b) = &roll.batch_size {
        body.insert("batch_size".into(), budget(b));
    }
    if let Some(m) = &roll.max_failures {
        body.insert("max_failures".into(), budget(m));
    }
    if !roll.order.is_empty() {
        body.insert("order".into(), json!(roll.order));
    }
    if !roll.last.is_empty() {
        body.insert("last".into(), json!(roll.last));
    }
}

fn run(ctx: &Ctx, op: Operation, action: Action) -> CliResult<i32> {
    let c = ctx.client;
    match action {
        Action::Plan {
            name,
            mut body,
            roll,
        } => {
            roll_body(&mut body, roll);
            body.insert("dry_run".into(), json!(true));
            let plan = c.put(
                &["api", "v0", "cluster", name, op.segment()],
                &Value::Object(body),
            )?;
            ctx.show(&plan, Subject::One("cluster", name), output::plan);
            Ok(exit::OK)
        }
        Action::Start {
            name,
            mut body,
            roll,
        } => {
            roll_body(&mut body, roll);
            let reply = c.put(
                &["api", "v0", "cluster", name, op.segment()],
                &Value::Object(body),
            )?;
            if !roll.watch {
                ctx.confirm(&reply, Subject::One("cluster", name), output::operation);
                return Ok(exit::OK);
            }
            let args = StatusArgs {
                name: name.to_string(),
                watch: true,
                interval: roll.interval,
            };
            operation_status(ctx, op, &args)
        }
        Action::Status(args) => operation_status(ctx, op, args),
        Action::Control(name, control) => {
            let path = ["api", "v0", "cluster", name, op.segment()];
            let (reply, said) = match control {
                Control::Cancel => (c.delete(&path)?, "cancel"),
                Control::Pause => (
                    c.put(&[&path[..], &["pause"]].concat(), &json!({}))?,
                    "pause",
                ),
                Control::Resume => (
                    c.put(&[&path[..], &["resume"]].concat(), &json!({}))?,
                    "resume",
                ),
            };
            if ctx.human() && !ctx.quiet {
                output::emit(&format!(
                    "Asked the {} of cluster '{name}' to {said} (after the hosts in process)",
                    op.noun()
                ));
            }
            ctx.confirm(&reply, Subject::One("cluster", name), output::operation);
            Ok(exit::OK)
        }
    }
}

fn show_operation(ctx: &Ctx, cluster: &str, record: &Value) {
    ctx.show(record, Subject::One("cluster", cluster), output::operation)
}

/// `cluster rolling get|set NAME`
pub fn rolling(ctx: &Ctx, command: &RollingCommand) -> CliResult<i32> {
    let c = ctx.client;
    let name = match command {
        RollingCommand::Get { name } | RollingCommand::Set { name, .. } => name,
    };
    let reply = match command {
        RollingCommand::Get { name } => c.get(&["api", "v0", "cluster", name, "rolling"])?,
        RollingCommand::Set {
            name,
            batch_size,
            max_failures,
            last,
            keep_runs,
            max_unavailable,
            file,
        } => {
            let mut body = match file {
                None => Map::new(),
                Some(path) => read_object(path)?,
            };
            if let Some(b) = batch_size {
                body.insert("batch_size".into(), budget(b));
            }
            if let Some(m) = max_failures {
                body.insert("max_failures".into(), budget(m));
            }
            if !last.is_empty() {
                body.insert("last".into(), json!(last));
            }
            if let Some(k) = keep_runs {
                body.insert("keep_runs".into(), json!(k));
            }
            if let Some(m) = max_unavailable {
                body.insert("max_unavailable".into(), budget(m));
            }
            c.put(
                &["api", "v0", "cluster", name, "rolling"],
                &Value::Object(body),
            )?
        }
    };
    ctx.show_record(&reply, Subject::One("cluster", name));
    Ok(exit::OK)
}

/// `cluster lock status|release|token NAME`
pub fn lock(ctx: &Ctx, command: &crate::cli::LockCommand) -> CliResult<i32> {
    use crate::cli::LockCommand;
    let c = ctx.client;
    match command {
        LockCommand::Status { name } => {
            let reply = c.get(&["api", "v0", "cluster", name, "lock"])?;
            ctx.show(&reply, Subject::One("cluster", name), output::lock);
        }
        LockCommand::Release { name, id } => {
            let reply = c.delete(&["api", "v0", "cluster", name, "lock", "holders", id])?;
            ctx.confirm(&reply, Subject::One("cluster", name), |v| {
                format!("released the slots of '{id}'\n\n{}", output::lock(v))
            });
        }
        LockCommand::Token { name } => {
            let reply = c.put(&["api", "v0", "cluster", name, "lock", "token"], &json!({}))?;
            ctx.show(&reply, Subject::One("cluster", name), |v| {
                let token = v.get("token").and_then(Value::as_str).unwrap_or_default();
                format!(
                    "FleetLock token of cluster '{name}' (shown this once):\n{token}\n\n\
                     Zincati: [identity] group = \"{name}\"; [updates] strategy = \"fleet_lock\";\n\
                     [updates.fleet_lock] base_url = \"https://fleetlock:{token}@SERVER:8000/fleetlock/\""
                )
            });
        }
    }
    Ok(exit::OK)
}

/// A JSON object from `path` ("-": stdin).
fn read_object(path: &std::path::Path) -> CliResult<Map<String, Value>> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(CliError::Input(format!(
            "{} does not hold a JSON object",
            path.display()
        ))),
        Err(e) => Err(CliError::Input(format!(
            "{} is not JSON: {e}",
            path.display()
        ))),
    }
}

fn string_list(record: &Value, member: &str) -> Vec<String> {
    record
        .get(member)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

fn status_of(record: &Value) -> &str {
    record.get("status").and_then(Value::as_str).unwrap_or("")
}

/// The hosts in process, each with the phase it is in when the record's
/// timeline says (`10.0.0.2 drain`).
fn in_process_with_phases(record: &Value) -> Vec<String> {
    let timeline = record
        .get("timeline")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    string_list(record, "in_process")
        .into_iter()
        .map(|host| {
            let phase = timeline
                .iter()
                .find(|t| t["host"] == host.as_str())
                .and_then(|t| t["phases"].as_array()?.last().cloned())
                .filter(|p| p["finished_at"].as_str().unwrap_or("").is_empty())
                .and_then(|p| p["phase"].as_str().map(str::to_string));
            match phase {
                Some(p) => format!("{host} {p}"),
                None => host,
            }
        })
        .collect()
}

/// `cluster {deploy,restart,upgrade} status NAME [--watch]`
pub fn operation_status(ctx: &Ctx, op: Operation, args: &StatusArgs) -> CliResult<i32> {
    let c = ctx.client;
    let path = ["api", "v0", "cluster", args.name.as_str(), op.segment()];
    if !args.watch {
        let reply = c.get(&path)?;
        show_operation(ctx, &args.name, &reply);
        return Ok(exit::OK);
    }
    if !(args.interval.is_finite() && args.interval > 0.0) {
        return Err(CliError::Input(
            "--interval must be a positive number of seconds".into(),
        ));
    }
    let interval = Duration::from_secs_f64(args.interval.max(0.05));
    // The cluster's size, for the bar's length (the record only lists hosts
    // already started).
    let cluster_total = c
        .get(&["api", "v0", "cluster", args.name.as_str()])
        .ok()
        .and_then(|v| v.pointer("/hosts/total").and_then(Value::as_u64));
    let bar = indicatif::ProgressBar::new(cluster_total.unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:30}] {pos}/{len} hosts {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{} of {}", op.noun(), args.name));
    if ctx.quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    } else {
        bar.enable_steady_tick(Duration::from_millis(120));
    }
    let plain = !ctx.quiet && !std::io::stderr().is_terminal();
    let mut last_line = String::new();
    let record = loop {
        let record = c.get(&path)?;
        let done = string_list(&record, op.done_member());
        let in_process = in_process_with_phases(&record);
        let total = cluster_total
            .unwrap_or(0)
            .max((done.len() + in_process.len()) as u64);
        let status = status_of(&record).to_string();
        bar.set_length(total);
        bar.set_position(done.len() as u64);
        let waiting = record
            .get("waiting")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty());
        let msg = match (waiting, in_process.is_empty()) {
            (Some(w), _) => format!("({status}, {w})"),
            (None, true) => format!("({status})"),
            (None, false) => format!("({status}: {})", in_process.join(", ")),
        };
        bar.set_message(msg.clone());
        bar.tick();
        if plain {
            let line = format!(
                "{} of cluster '{}': {}/{} hosts {msg}",
                op.noun(),
                args.name,
                done.len(),
                total
            );
            if line != last_line {
                eprintln!("{line}");
                last_line = line;
            }
        }
        if status != "in_process" {
            break record;
        }
        std::thread::sleep(interval);
    };
    bar.finish_and_clear();
    show_operation(ctx, &args.name, &record);
    // Newer servers name the failed hosts and a reason; older records leave
    // the failed host in `in_process`.
    let mut failed = string_list(&record, "failed_hosts");
    if failed.is_empty() {
        failed = string_list(&record, "in_process");
    }
    let mut detail = if failed.is_empty() {
        String::new()
    } else {
        format!(" (at host {})", failed.join(", "))
    };
    if let Some(reason) = record
        .get("reason")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        detail.push_str(&format!(": {reason}"));
    }
    match status_of(&record) {
        "finished" => Ok(exit::OK),
        "failed" => Err(CliError::OperationFailed(format!(
            "the {} of cluster '{}' failed{detail}",
            op.noun(),
            args.name
        ))),
        other => Err(CliError::OperationFailed(format!(
            "the {} of cluster '{}' ended with status '{other}'{detail}",
            op.noun(),
            args.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_go_as_numbers_or_text() {
        assert_eq!(budget("3"), json!(3));
        assert_eq!(budget("25%"), json!("25%"));
        assert_eq!(budget("x"), json!("x"), "the server names what is wrong");
    }

    #[test]
    fn hosts_in_process_show_their_phase() {
        let r = json!({"in_process": ["a", "b"], "timeline": [
            {"host": "a", "phases": [{"phase": "cordon", "started_at": "t", "finished_at": "t"},
                                      {"phase": "drain", "started_at": "t", "finished_at": ""}]},
            {"host": "b", "phases": [{"phase": "run", "started_at": "t", "finished_at": "t"}]}]});
        assert_eq!(in_process_with_phases(&r), ["a drain", "b"]);
    }
}
