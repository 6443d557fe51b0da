//! `commctl`: the Commissaire operator command line.
//!
//! It talks to the Commissaire REST server (`/api/v0`) to manage clusters,
//! hosts, networks and container managers, starts and watches cluster
//! operations, opens SSH sessions to hosts with their stored credentials,
//! hashes passwords for the server's users file, and writes cloud-init
//! user-data that makes new hosts register themselves.
//!
//! Shell completion comes from `commctl completions
//! bash|zsh|fish|elvish|powershell` (dynamic: names from the server, see
//! [`complete`]); man pages from the hidden `commctl man [--out-dir DIR]`.

#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod commands;
pub mod complete;
pub mod config;
pub mod error;
pub mod kubeconfig;
pub mod output;
pub mod passhash;
pub mod ssh;
pub mod userdata;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, ConfigCommand, OutputArg, OutputFormat, UserDataArgs};
use crate::commands::Ctx;
use crate::error::{CliError, CliResult, exit};

/// Runs commctl with the process's arguments; returns the exit code.
///
/// With `COMPLETE=SHELL` in the environment it answers a shell's completion
/// request instead (see [`complete`]) and exits.
pub fn run() -> i32 {
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    match execute(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// The output format a command line asks for: `--json`, else `-o`, else tables.
pub fn output_format(cli: &Cli) -> OutputFormat {
    if cli.json {
        return OutputFormat::Json;
    }
    if let Some(format) = cli.output {
        return format;
    }
    let arg: Option<&OutputArg> = match &cli.command {
        Command::Cluster { output, .. }
        | Command::Host { output, .. }
        | Command::Network { output, .. }
        | Command::ContainerManager { output, .. }
        | Command::Config { output, .. }
        | Command::Version { output, .. } => Some(output),
        Command::Audit(args) => Some(&args.output),
        _ => None,
    };
    arg.and_then(|a| a.output).unwrap_or_default()
}

/// The connection overrides of a command line.
fn overrides(cli: &Cli) -> config::Overrides {
    config::Overrides {
        config: cli.config.clone(),
        context: cli.context.clone(),
        endpoints: cli.endpoint.clone(),
        username: cli.username.clone(),
        password: cli.password.clone(),
        ..Default::default()
    }
}

/// The client options of a command line (`-v`, `-q`, `--timeout`).
fn client_options(cli: &Cli) -> client::ClientOptions {
    client::ClientOptions {
        verbose: cli.verbose,
        quiet: cli.quiet,
        timeout: cli.timeout.map(std::time::Duration::from_secs_f64),
    }
}

/// Runs a parsed command line; returns the exit code.
pub fn execute(cli: Cli) -> CliResult<i32> {
    let format = output_format(&cli);
    match &cli.command {
        Command::Passhash(args) => {
            let pw = passhash::password(args.password.as_deref(), args.file.as_deref())?;
            output::emit(&passhash::hash(&pw, args.rounds)?);
            return Ok(exit::OK);
        }
        Command::UserData(args) => return user_data(args),
        Command::Completions { shell } => return completions(*shell),
        Command::Man { out_dir } => {
            match out_dir {
                Some(dir) => {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| CliError::io(format!("creating {}", dir.display()), e))?;
                    clap_mangen::generate_to(Cli::command(), dir).map_err(|e| {
                        CliError::io(format!("writing man pages to {}", dir.display()), e)
                    })?;
                }
                None => {
                    let mut buf = Vec::new();
                    clap_mangen::Man::new(Cli::command())
                        .render(&mut buf)
                        .map_err(|e| CliError::io("rendering the man page", e))?;
                    output::emit(&String::from_utf8_lossy(&buf));
                }
            }
            return Ok(exit::OK);
        }
        Command::Config { command, .. } => return config_command(&cli, command, format),
        Command::Version { client_only, .. } => return version(&cli, *client_only, format),
        _ => {}
    }

    let overrides = overrides(&cli);
    if cli.verbose {
        let (path, _) = config::config_path(overrides.config.as_deref());
        let file = config::read_file(&path, false).unwrap_or_default();
        if let Ok((_, Some(name))) = file.with_context(overrides.context.as_deref(), &path) {
            eprintln!("* configuration {}, context '{name}'", path.display());
        } else {
            eprintln!("* configuration {}", path.display());
        }
    }
    let settings = config::resolve(&overrides)?;
    let client = client::Client::with_options(&settings, client_options(&cli))?;
    let ctx = Ctx {
        client: &client,
        format,
        quiet: cli.quiet,
    };
    match &cli.command {
        Command::Cluster { command, .. } => commands::cluster(&ctx, command),
        Command::Host { command, .. } => commands::host(&ctx, command),
        Command::Network { command, .. } => commands::network(&ctx, command),
        Command::Audit(args) => commands::audit(&ctx, args),
        Command::ContainerManager { command, .. } => commands::container_manager(&ctx, command),
        Command::Passhash(_)
        | Command::UserData(_)
        | Command::Completions { .. }
        | Command::Man { .. }
        | Command::Config { .. }
        | Command::Version { .. } => unreachable!("handled above"),
    }
}

/// `completions SHELL`: the script that registers dynamic completion
/// (`COMPLETE=SHELL commctl -- WORDS...`) for the shell.
fn completions(shell: clap_complete::Shell) -> CliResult<i32> {
    let name = shell.to_string();
    let shells = clap_complete::env::Shells::builtins();
    let Some(completer) = shells.completer(&name) else {
        return Err(CliError::Input(format!(
            "no completion for the shell '{name}'"
        )));
    };
    // The script calls `commctl` from PATH, so a script written at build
    // time (a package's) works once installed.
    let program = "commctl";
    let mut buf = Vec::new();
    completer
        .write_registration("COMPLETE", "commctl", "commctl", program, &mut buf)
        .map_err(|e| CliError::io("writing the completion script", e))?;
    output::emit(&String::from_utf8_lossy(&buf));
    Ok(exit::OK)
}

/// `config get-contexts|use-context|current-context`
fn config_command(cli: &Cli, command: &ConfigCommand, format: OutputFormat) -> CliResult<i32> {
    let (path, required) = config::config_path(cli.config.as_deref());
    match command {
        ConfigCommand::GetContexts => {
            let rows = config::contexts(&path, required, cli.context.as_deref())?;
            let value = serde_json::to_value(&rows).expect("context rows serialize");
            match format {
                OutputFormat::Json => output::emit(&output::json(&value)),
                OutputFormat::Yaml => output::emit(&output::yaml(&value)),
                OutputFormat::Name => {
                    for row in &rows {
                        output::emit(&format!("context/{}", row.name));
                    }
                }
                OutputFormat::Table | OutputFormat::Wide if cli.quiet => {
                    for row in &rows {
                        output::emit(&row.name);
                    }
                }
                OutputFormat::Table | OutputFormat::Wide => {
                    if rows.is_empty() {
                        output::emit(&format!(
                            "(no contexts in {}; its top-level endpoint and credentials are used)",
                            path.display()
                        ));
                    } else {
                        let table: Vec<serde_json::Value> = rows
                            .iter()
                            .map(|r| {
                                serde_json::json!({
                                    "current": if r.current { "*" } else { "" },
                                    "name": r.name,
                                    "endpoint": r.endpoint,
                                    "username": r.username,
                                    "auth": match (&r.kubeconfig, r.password_set) {
                                        (Some(k), _) => format!("kubeconfig {k}"),
                                        (None, true) => "password (stored)".to_string(),
                                        (None, false) => "password (prompted)".to_string(),
                                    },
                                })
                            })
                            .collect();
                        output::emit(&output::rows(
                            &[
                                ("CURRENT", "current"),
                                ("NAME", "name"),
                                ("ENDPOINT", "endpoint"),
                                ("USERNAME", "username"),
                                ("AUTH", "auth"),
                            ],
                            "contexts",
                            &serde_json::Value::Array(table),
                        ));
                    }
                }
            }
        }
        ConfigCommand::UseContext { name } => {
            config::use_context(&path, name)?;
            match format {
                OutputFormat::Name => output::emit(&format!("context/{name}")),
                _ if cli.quiet => {}
                _ => output::emit(&format!(
                    "Switched to context '{name}' in {}",
                    path.display()
                )),
            }
        }
        ConfigCommand::CurrentContext => {
            let file = config::read_file(&path, required)?;
            let (_, name) = file.with_context(cli.context.as_deref(), &path)?;
            match name {
                Some(name) => output::emit(&name),
                None => {
                    return Err(CliError::Config(format!(
                        "{} has no current-context",
                        path.display()
                    )));
                }
            }
        }
    }
    Ok(exit::OK)
}

/// `version`: commctl's version, and the server's from its version probe
/// (`GET /version`); the client's is printed even when the server cannot
/// be asked (the exit code then tells why: 6 unreachable, 8 timed out...).
fn version(cli: &Cli, client_only: bool, format: OutputFormat) -> CliResult<i32> {
    let client_version = env!("CARGO_PKG_VERSION");
    let mut server = serde_json::Value::Null;
    let mut problem: Option<CliError> = None;
    if !client_only {
        let mut o = overrides(cli);
        o.credentials_optional = true;
        let asked = config::resolve(&o)
            .and_then(|s| client::Client::with_options(&s, client_options(cli)))
            .and_then(|c| {
                let (status, body) = c.get_plain("/version")?;
                Ok((c.endpoint(), status, body))
            });
        match asked {
            Ok((endpoint, 200, body)) => match serde_json::from_str::<serde_json::Value>(&body) {
                Ok(mut v @ serde_json::Value::Object(_)) => {
                    v["endpoint"] = serde_json::json!(endpoint);
                    server = v;
                }
                _ => {
                    problem = Some(CliError::Protocol(format!(
                        "{endpoint}/version did not answer a JSON object"
                    )))
                }
            },
            Ok((endpoint, status, _)) => {
                problem = Some(CliError::Api {
                    status,
                    message: format!(
                        "{endpoint} answered but does not publish its version at /version"
                    ),
                    field: None,
                })
            }
            Err(e) => problem = Some(e),
        }
    }
    let value = serde_json::json!({
        "client": {"version": client_version},
        "server": server,
        "error": problem.as_ref().map(|e| e.to_string()),
    });
    match format {
        OutputFormat::Json => output::emit(&output::json(&value)),
        OutputFormat::Yaml => output::emit(&output::yaml(&value)),
        OutputFormat::Name => {
            output::emit(&format!("commctl/{client_version}"));
            if let Some(v) = server["version"].as_str() {
                output::emit(&format!("commissaire/{v}"));
            }
        }
        OutputFormat::Table | OutputFormat::Wide => {
            output::emit(&format!("Client: commctl {client_version}"));
            if let Some(v) = server["version"].as_str() {
                let commit = match server["commit"].as_str() {
                    Some(c) if !c.is_empty() => format!(" (commit {c})"),
                    _ => String::new(),
                };
                output::emit(&format!(
                    "Server: commissaire {v}{commit} at {}",
                    server["endpoint"].as_str().unwrap_or("")
                ));
            }
        }
    }
    match problem {
        None => Ok(exit::OK),
        Some(e) => {
            eprintln!("error: the server's version is unknown: {e}");
            Ok(e.exit_code())
        }
    }
}

/// `user-data`
fn user_data(args: &UserDataArgs) -> CliResult<i32> {
    let password = if args.password {
        let pw = passhash::prompt_or_stdin("Password: ")?;
        Some(pw)
    } else {
        None
    };
    let (name, cloud_config) = match &args.cloud_init {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::io(format!("reading {}", path.display()), e))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| userdata::DEFAULT_CLOUD_CONFIG_NAME.into());
            (name, text)
        }
        None => (
            userdata::DEFAULT_CLOUD_CONFIG_NAME.to_string(),
            userdata::DEFAULT_CLOUD_CONFIG.to_string(),
        ),
    };
    let host = userdata::HostSettings {
        endpoint: args.endpoint.clone(),
        username: args.username.clone(),
        password,
        cluster: args.cluster.clone(),
        remote_user: args.remote_user.clone(),
        ssh_key_path: args.ssh_key_path.clone(),
        authorized_keys_path: args.authorized_keys_path.clone(),
    };
    let document = userdata::user_data(&name, &cloud_config, &host);
    match &args.outfile {
        None => output::emit(&document),
        Some(path) => {
            // It may hold a password: readable by its owner only.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| CliError::io(format!("creating {}", path.display()), e))?;
            file.write_all(document.as_bytes())
                .map_err(|e| CliError::io(format!("writing {}", path.display()), e))?;
        }
    }
    Ok(exit::OK)
}
