//! `commctl`: the Commissaire operator command line.
//!
//! It talks to the Commissaire REST server (`/api/v0`) to manage clusters,
//! hosts, networks and container managers, starts and watches cluster
//! operations, opens SSH sessions to hosts with their stored credentials,
//! hashes passwords for the server's users file, and writes cloud-init
//! user-data that makes new hosts register themselves.
//!
//! Shell completions and man pages come from hidden subcommands:
//! `commctl completions bash|zsh|fish|elvish|powershell` and
//! `commctl man [--out-dir DIR]`.

#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod commands;
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

use crate::cli::{Cli, Command, UserDataArgs};
use crate::commands::{Ctx, Mode};
use crate::error::{CliError, CliResult, exit};

/// Runs commctl with the process's arguments; returns the exit code.
pub fn run() -> i32 {
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

/// Runs a parsed command line; returns the exit code.
pub fn execute(cli: Cli) -> CliResult<i32> {
    let mode = if cli.json { Mode::Json } else { Mode::Human };
    match &cli.command {
        Command::Passhash(args) => {
            let pw = passhash::password(args.password.as_deref(), args.file.as_deref())?;
            output::emit(&passhash::hash(&pw, args.rounds)?);
            return Ok(exit::OK);
        }
        Command::UserData(args) => return user_data(args),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "commctl", &mut buf);
            output::emit(&String::from_utf8_lossy(&buf));
            return Ok(exit::OK);
        }
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
        _ => {}
    }

    let overrides = config::Overrides {
        config: cli.config.clone(),
        endpoints: cli.endpoint.clone(),
        username: cli.username.clone(),
        password: cli.password.clone(),
    };
    let settings = config::resolve(&overrides)?;
    let client = client::Client::new(&settings)?;
    let ctx = Ctx {
        client: &client,
        mode,
    };
    match &cli.command {
        Command::Cluster(c) => commands::cluster(&ctx, c),
        Command::Host(c) => commands::host(&ctx, c),
        Command::Network(c) => commands::network(&ctx, c),
        Command::Audit(args) => commands::audit(&ctx, args),
        Command::ContainerManager(c) => commands::container_manager(&ctx, c),
        Command::Passhash(_)
        | Command::UserData(_)
        | Command::Completions { .. }
        | Command::Man { .. } => unreachable!("handled above"),
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
