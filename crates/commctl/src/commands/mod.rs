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

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Tables and messages.
    Human,
    /// The server's raw JSON.
    Json,
}

/// A context for running commands.
pub struct Ctx<'a> {
    /// The REST client.
    pub client: &'a Client,
    /// The output mode.
    pub mode: Mode,
}

impl Ctx<'_> {
    fn show(&self, value: &Value, human: impl FnOnce(&Value) -> String) {
        match self.mode {
            Mode::Json => emit(&output::json(value)),
            Mode::Human => emit(&human(value)),
        }
    }

    fn show_record(&self, value: &Value) {
        self.show(value, output::record)
    }

    /// Runs `f` for each name; errors are reported and the rest still run.
    /// Returns the exit code of the first failure (0 if none).
    fn each(
        &self,
        names: &[String],
        mut f: impl FnMut(&str) -> CliResult<Value>,
        done: impl Fn(&str) -> String,
    ) -> CliResult<i32> {
        let mut code = exit::OK;
        let mut replies = Vec::new();
        for name in names {
            match f(name) {
                Ok(reply) => {
                    if self.mode == Mode::Human {
                        emit(&done(name));
                    }
                    replies.push(reply);
                }
                Err(e @ CliError::Unreachable(_)) => return Err(e),
                Err(e) => {
                    eprintln!("error: {e}");
                    if code == exit::OK {
                        code = e.exit_code();
                    }
                }
            }
        }
        if self.mode == Mode::Json {
            match replies.len() {
                0 => {}
                1 if names.len() == 1 => emit(&output::json(&replies[0])),
                _ => emit(&output::json(&Value::Array(replies))),
            }
        }
        Ok(code)
    }
}

/// Parses `-o` values: JSON objects (merged) or `KEY=VALUE` pairs (string values).
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
                eprintln!("note: the server keeps no cluster type; --type is ignored");
            }
            let mut body = Map::new();
            if let Some(n) = network {
                body.insert("network".into(), json!(n));
            }
            if let Some(cm) = container_manager {
                body.insert("container_manager".into(), json!(cm));
            }
            let reply = c.put(&["api", "v0", "cluster", name], &Value::Object(body))?;
            ctx.show_record(&reply);
        }
        ClusterCommand::Delete { names } => {
            return ctx.each(
                names,
                |n| c.delete(&["api", "v0", "cluster", n]),
                |n| format!("Deleted cluster '{n}'"),
            );
        }
        ClusterCommand::Get { name } => {
            let reply = c.get(&["api", "v0", "cluster", name])?;
            ctx.show_record(&reply);
        }
        ClusterCommand::List => {
            let reply = c.get(&["api", "v0", "clusters"])?;
            ctx.show(&reply, |v| output::names("NAME", "clusters", v));
        }
        ClusterCommand::Deploy(command) => return operation::deploy(ctx, command),
        ClusterCommand::Restart(command) => return operation::restart(ctx, command),
        ClusterCommand::Upgrade(command) => return operation::upgrade(ctx, command),
        ClusterCommand::Rolling(command) => return operation::rolling(ctx, command),
    }
    Ok(exit::OK)
}

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
            ctx.show_record(&reply);
        }
        ConfigOp::Delete(names) => {
            return ctx.each(
                names,
                |n| c.delete(&["api", "v0", r.one, n]),
                |n| format!("Deleted {} '{n}'", r.noun),
            );
        }
        ConfigOp::Get(name) => {
            let reply = c.get(&["api", "v0", r.one, name])?;
            ctx.show_record(&reply);
        }
        ConfigOp::List => {
            let reply = c.get(&["api", "v0", r.many])?;
            ctx.show(&reply, |v| output::names("NAME", r.plural, v));
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
    ctx.show(&answer, |a| {
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
