//! The commands that talk to the server (`host ...` in [`host`]).

use serde_json::{Map, Value, json};

use crate::cli::{ClusterCommand, ContainerManagerCommand, NetworkCommand};
use crate::client::Client;
use crate::error::{CliError, CliResult, exit};
use crate::output::{self, emit};

mod host;
mod operation;

pub use host::host;
pub use operation::{Operation, operation_status};

pub use crate::cli::OutputFormat;

/// What a command's output is about, for `-o name` and `-q`.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// One thing: its kind (`cluster`, `host`...) and name.
    One(&'a str, &'a str),
    /// A list of things of a kind: the items are names, or records whose
    /// `member` is the name (`""` for plain names).
    List(&'a str, &'a str),
}

impl Subject<'_> {
    /// The names of what `value` shows.
    fn names(&self, value: &Value) -> Vec<String> {
        match self {
            Subject::One(_, name) => vec![name.to_string()],
            Subject::List(_, member) => value
                .as_array()
                .into_iter()
                .flatten()
                .map(|item| match item.get(*member) {
                    Some(v) if !member.is_empty() => output::cell(v),
                    _ => output::cell(item),
                })
                .collect(),
        }
    }

    fn kind(&self) -> &str {
        match self {
            Subject::One(kind, _) | Subject::List(kind, _) => kind,
        }
    }
}

/// A context for running commands.
pub struct Ctx<'a> {
    /// The REST client.
    pub client: &'a Client,
    /// The output format (`-o`, `--json`).
    pub format: OutputFormat,
    /// `-q`: no confirmations, notes or progress; lists print bare names.
    pub quiet: bool,
}

impl Ctx<'_> {
    /// Whether the output is for people (`table` or `wide`).
    pub fn human(&self) -> bool {
        matches!(self.format, OutputFormat::Table | OutputFormat::Wide)
    }

    /// A note on stderr (nothing with `-q`).
    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("note: {text}");
        }
    }

    /// Prints `value` for a machine (`json`, `yaml`, `name`); false for people.
    fn machine(&self, value: &Value, subject: Subject) -> bool {
        match self.format {
            OutputFormat::Json => emit(&output::json(value)),
            OutputFormat::Yaml => emit(&output::yaml(value)),
            OutputFormat::Name => {
                let lines: Vec<String> = subject
                    .names(value)
                    .iter()
                    .map(|n| format!("{}/{n}", subject.kind()))
                    .collect();
                if !lines.is_empty() {
                    emit(&lines.join("\n"));
                }
            }
            OutputFormat::Table | OutputFormat::Wide => return false,
        }
        true
    }

    /// Data asked for: printed in every format, with `-q` too (a list then
    /// prints bare names).
    fn show(&self, value: &Value, subject: Subject, human: impl FnOnce(&Value) -> String) {
        if self.machine(value, subject) {
            return;
        }
        if self.quiet && matches!(subject, Subject::List(..)) {
            let names = subject.names(value);
            if !names.is_empty() {
                emit(&names.join("\n"));
            }
            return;
        }
        emit(&human(value));
    }

    fn show_record(&self, value: &Value, subject: Subject) {
        self.show(value, subject, output::record)
    }

    /// The answer to a change (create, join, pause...): for people, `human`'s
    /// text unless `-q`.
    pub(crate) fn confirm(
        &self,
        value: &Value,
        subject: Subject,
        human: impl FnOnce(&Value) -> String,
    ) {
        if self.machine(value, subject) || self.quiet {
            return;
        }
        emit(&human(value));
    }

    /// Runs `f` for each name; errors are reported and the rest still run.
    /// Returns the exit code of the first failure (0 if none).
    fn each(
        &self,
        kind: &str,
        names: &[String],
        mut f: impl FnMut(&str) -> CliResult<Value>,
        done: impl Fn(&str) -> String,
    ) -> CliResult<i32> {
        let mut code = exit::OK;
        let mut replies = Vec::new();
        for name in names {
            match f(name) {
                Ok(reply) => {
                    match self.format {
                        OutputFormat::Table | OutputFormat::Wide if !self.quiet => {
                            emit(&done(name))
                        }
                        OutputFormat::Name => emit(&format!("{kind}/{name}")),
                        _ => {}
                    }
                    replies.push(reply);
                }
                Err(e @ (CliError::Unreachable(_) | CliError::Timeout { .. })) => return Err(e),
                Err(e) => {
                    eprintln!("error: {e}");
                    if code == exit::OK {
                        code = e.exit_code();
                    }
                }
            }
        }
        let all = match replies.len() {
            0 => None,
            1 if names.len() == 1 => replies.pop(),
            _ => Some(Value::Array(replies)),
        };
        if let Some(all) = all {
            match self.format {
                OutputFormat::Json => emit(&output::json(&all)),
                OutputFormat::Yaml => emit(&output::yaml(&all)),
                _ => {}
            }
        }
        Ok(code)
    }
}

/// The records behind a list of names (for `-o wide`), one GET each.
fn records(c: &Client, one: &str, names: &Value) -> CliResult<Value> {
    let mut out = Vec::new();
    for name in names.as_array().into_iter().flatten() {
        let name = output::cell(name);
        out.push(c.get(&["api", "v0", one, &name])?);
    }
    Ok(Value::Array(out))
}

/// Parses `--options` values: JSON objects (merged) or `KEY=VALUE` pairs (string values).
pub fn parse_options(values: &[String]) -> CliResult<Map<String, Value>> {
    let mut options = Map::new();
    for value in values {
        let trimmed = value.trim();
        if trimmed.starts_with('{') {
            match serde_json::from_str::<Value>(trimmed) {
                Ok(Value::Object(map)) => options.extend(map),
                Ok(_) => unreachable!("a JSON text starting with '{{' is an object"),
                Err(e) => {
                    return Err(CliError::Input(format!(
                        "the options '{value}' are not a valid JSON object: {e}"
                    )));
                }
            }
        } else if let Some((k, v)) = value.split_once('=')
            && !k.trim().is_empty()
        {
            options.insert(k.trim().to_string(), json!(v));
        } else {
            return Err(CliError::Input(format!(
                "the option '{value}' is neither a JSON object nor KEY=VALUE"
            )));
        }
    }
    Ok(options)
}

/// `cluster ...`
pub fn cluster(ctx: &Ctx, command: &ClusterCommand) -> CliResult<i32> {
    let c = ctx.client;
    match command {
        ClusterCommand::Create {
            kind,
            network,
            container_manager,
            name,
        } => {
            if kind.is_some() {
                ctx.note("the server keeps no cluster type; --type is ignored");
            }
            let mut body = Map::new();
            if let Some(n) = network {
                body.insert("network".into(), json!(n));
            }
            if let Some(cm) = container_manager {
                body.insert("container_manager".into(), json!(cm));
            }
            let reply = c.put(&["api", "v0", "cluster", name], &Value::Object(body))?;
            ctx.confirm(&reply, Subject::One("cluster", name), output::record);
        }
        ClusterCommand::Delete { names } => {
            return ctx.each(
                "cluster",
                names,
                |n| c.delete(&["api", "v0", "cluster", n]),
                |n| format!("Deleted cluster '{n}'"),
            );
        }
        ClusterCommand::Get { name } => {
            let reply = c.get(&["api", "v0", "cluster", name])?;
            ctx.show_record(&reply, Subject::One("cluster", name));
        }
        ClusterCommand::List => {
            let reply = c.get(&["api", "v0", "clusters"])?;
            let subject = Subject::List("cluster", "");
            if ctx.format == OutputFormat::Wide && !ctx.quiet {
                let all = records(c, "cluster", &reply)?;
                emit(&output::rows(CLUSTER_WIDE, "clusters", &all));
            } else {
                ctx.show(&reply, subject, |v| output::names("NAME", "clusters", v));
            }
        }
        ClusterCommand::Deploy(command) => return operation::deploy(ctx, command),
        ClusterCommand::Restart(command) => return operation::restart(ctx, command),
        ClusterCommand::Upgrade(command) => return operation::upgrade(ctx, command),
        ClusterCommand::Rolling(command) => return operation::rolling(ctx, command),
        ClusterCommand::Lock(command) => return operation::lock(ctx, command),
    }
    Ok(exit::OK)
}

/// `cluster list -o wide`.
const CLUSTER_WIDE: &[(&str, &str)] = &[
    ("NAME", "name"),
    ("STATUS", "status"),
    ("NETWORK", "network"),
    ("CONTAINER MANAGER", "container_manager"),
    ("HOSTS", "hosts.total"),
    ("AVAILABLE", "hosts.available"),
    ("UNAVAILABLE", "hosts.unavailable"),
];

/// `network list -o wide` and `container_manager list -o wide`.
const CONFIG_WIDE: &[(&str, &str)] = &[("NAME", "name"), ("TYPE", "type")];

/// The create/delete/get/list commands shared by networks and container managers.
struct ConfigResource {
    /// Path segment of one record.
    one: &'static str,
    /// Path segment of the list.
    many: &'static str,
    /// Noun for messages.
    noun: &'static str,
    /// Plural noun.
    plural: &'static str,
    /// Kind for `-o name` (the command's name).
    kind: &'static str,
}

enum ConfigOp<'a> {
    Create {
        kind: &'a str,
        options: &'a [String],
        name: &'a str,
    },
    Delete(&'a [String]),
    Get(&'a str),
    List,
}

fn config_command(ctx: &Ctx, r: &ConfigResource, op: ConfigOp) -> CliResult<i32> {
    let c = ctx.client;
    match op {
        ConfigOp::Create {
            kind,
            options,
            name,
        } => {
            let options = parse_options(options)?;
            let reply = c.put(
                &["api", "v0", r.one, name],
                &json!({"type": kind, "options": options}),
            )?;
            ctx.confirm(&reply, Subject::One(r.kind, name), output::record);
        }
        ConfigOp::Delete(names) => {
            return ctx.each(
                r.kind,
                names,
                |n| c.delete(&["api", "v0", r.one, n]),
                |n| format!("Deleted {} '{n}'", r.noun),
            );
        }
        ConfigOp::Get(name) => {
            let reply = c.get(&["api", "v0", r.one, name])?;
            ctx.show_record(&reply, Subject::One(r.kind, name));
        }
        ConfigOp::List => {
            let reply = c.get(&["api", "v0", r.many])?;
            if ctx.format == OutputFormat::Wide && !ctx.quiet {
                let all = records(c, r.one, &reply)?;
                emit(&output::rows(CONFIG_WIDE, r.plural, &all));
            } else {
                ctx.show(&reply, Subject::List(r.kind, ""), |v| {
                    output::names("NAME", r.plural, v)
                });
            }
        }
    }
    Ok(exit::OK)
}

/// `network ...`
pub fn network(ctx: &Ctx, command: &NetworkCommand) -> CliResult<i32> {
    let r = ConfigResource {
        one: "network",
        many: "networks",
        noun: "network",
        plural: "networks",
        kind: "network",
    };
    let op = match command {
        NetworkCommand::Create {
            kind,
            options,
            name,
        } => ConfigOp::Create {
            kind,
            options,
            name,
        },
        NetworkCommand::Delete { names } => ConfigOp::Delete(names),
        NetworkCommand::Get { name } => ConfigOp::Get(name),
        NetworkCommand::List => ConfigOp::List,
    };
    config_command(ctx, &r, op)
}

/// `audit`
pub fn audit(ctx: &Ctx, args: &crate::cli::AuditArgs) -> CliResult<i32> {
    let mut query = Vec::new();
    for (key, value) in [
        ("user", &args.user),
        ("kind", &args.kind),
        ("name", &args.name),
        ("since", &args.since),
    ] {
        if let Some(v) = value {
            query.push((key, v.clone()));
        }
    }
    if let Some(limit) = args.limit {
        query.push(("limit", limit.to_string()));
    }
    let answer = ctx.client.get_query(&["api", "v0", "audit"], &query)?;
    let entries = answer.get("entries").cloned().unwrap_or(Value::Null);
    let names: Vec<Value> = entries
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| json!(output::cell(e.get("path").unwrap_or(&Value::Null))))
        .collect();
    if ctx.format == OutputFormat::Name {
        // One `audit/PATH` line per entry: what was changed.
        ctx.show(&Value::Array(names), Subject::List("audit", ""), |_| {
            String::new()
        });
        return Ok(exit::OK);
    }
    ctx.show(&answer, Subject::One("audit", ""), |a| {
        output::rows(
            &[
                ("AT", "at"),
                ("USER", "user"),
                ("ROLE", "role"),
                ("METHOD", "method"),
                ("PATH", "path"),
                ("STATUS", "status"),
                ("PEER", "peer"),
                ("ERROR", "error"),
            ],
            "audit entries",
            a.get("entries").unwrap_or(&Value::Null),
        )
    });
    Ok(exit::OK)
}

/// `container_manager ...`
pub fn container_manager(ctx: &Ctx, command: &ContainerManagerCommand) -> CliResult<i32> {
    let r = ConfigResource {
        one: "containermanager",
        many: "containermanagers",
        noun: "container manager",
        plural: "container managers",
        kind: "container_manager",
    };
    let op = match command {
        ContainerManagerCommand::Create {
            kind,
            options,
            name,
        } => ConfigOp::Create {
            kind,
            options,
            name,
        },
        ContainerManagerCommand::Delete { names } => ConfigOp::Delete(names),
        ContainerManagerCommand::Get { name } => ConfigOp::Get(name),
        ContainerManagerCommand::List => ConfigOp::List,
    };
    config_command(ctx, &r, op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_both_forms() {
        let o = parse_options(&[
            r#"{"server_url": "https://x", "n": 1}"#.into(),
            "token=abc=def".into(),
        ])
        .unwrap();
        assert_eq!(
            Value::Object(o),
            json!({"server_url": "https://x", "n": 1, "token": "abc=def"})
        );
        assert!(parse_options(&["{bad".into()]).is_err());
        assert!(parse_options(&["novalue".into()]).is_err());
        assert!(parse_options(&["=v".into()]).is_err());
        assert!(parse_options(&[]).unwrap().is_empty());
    }
}
