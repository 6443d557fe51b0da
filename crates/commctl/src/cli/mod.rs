//! The command line: every command and flag of the documentation's commctl
//! chapter, plus output formats (`-o`, `--json`), `-q`, `-v`, `--timeout`,
//! endpoint, context and credential overrides, `--watch` for operation
//! status, `config get-contexts|use-context`, `version`, `completions` (with
//! server-side name completion) and a hidden `man` command.
//!
//! # One meaning per short flag
//!
//! Each short letter means one thing in every command (a test walks the
//! whole command tree): `-o` output format, `-q` quiet, `-v` verbose, `-c`
//! configuration file, `-t` type, `-n` network, `-w` watch, `-f` file, `-p`
//! password, `-e` endpoint, `-u` username, `-r` remote user, `-s` SSH key
//! path, `-a` authorized-keys path, `-C` cloud-init file, `-h` help, `-V`
//! version. The one exception is `user-data`, which keeps the original
//! commctl's documented flags verbatim: there `-c` is `--cluster` and `-o`
//! is `--outfile` (see [`USER_DATA_EXCEPTIONS`]).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::ArgValueCandidates;

use crate::complete;

/// The short flags of `user-data` that mean something else there than in
/// every other command, as `(letter, long name)`: the original commctl
/// documents `commctl user-data -p -c my_cluster -o cluster.userdata`.
pub const USER_DATA_EXCEPTIONS: &[(char, &str)] = &[('c', "cluster"), ('o', "outfile")];

/// How results are printed (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Tables and messages for people (the default)
    #[default]
    Table,
    /// Tables with more columns (lists fetch each record)
    Wide,
    /// The server's JSON, as `--json`
    Json,
    /// The server's answer as YAML
    Yaml,
    /// `KIND/NAME` lines, one per thing shown, created or deleted
    Name,
}

/// `-o/--output FORMAT`, on every command that prints what the server answered.
#[derive(Debug, Clone, Args, Default)]
pub struct OutputArg {
    /// Output format: table, wide (more columns), json (as --json), yaml, or
    /// name (KIND/NAME lines)
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        value_name = "FORMAT",
        global = true
    )]
    pub output: Option<OutputFormat>,
}

/// Command line client for Commissaire, the cluster host management service.
///
/// Connection settings come from a JSON configuration file (default
/// `~/.commissaire.json`) with the keys `endpoint` (a URL or a list of URLs
/// tried in order), `username`, `password` and `kubeconfig`, or from one of
/// its named `contexts` (see `commctl config get-contexts`). Precedence:
/// flags, then environment variables (COMMCTL_ENDPOINT, COMMCTL_USERNAME,
/// COMMCTL_PASSWORD, COMMCTL_CONTEXT), then the context, then the file's
/// top-level keys. A missing password is prompted for when stdin is a
/// terminal. The connection options go before the command.
///
/// Shell completion (commands, flags, and cluster, host, network and
/// container manager names from the server): `commctl completions bash`.
///
/// Exit codes: 0 ok, 1 error, 2 usage, 3 not found (404), 4 conflict (409),
/// 5 credentials refused (401/403), 6 no endpoint reachable, 7 bad request
/// (400), 8 timed out waiting for the server's answer (--timeout).
#[derive(Debug, Parser)]
#[command(name = "commctl", version)]
pub struct Cli {
    /// Configuration file (JSON) [default: ~/.commissaire.json]
    #[arg(
        short = 'c',
        long = "config",
        env = "COMMCTL_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Use this context of the configuration file instead of its current-context
    #[arg(long = "context", env = "COMMCTL_CONTEXT", value_name = "NAME",
          add = ArgValueCandidates::new(complete::contexts))]
    pub context: Option<String>,
    /// Server endpoint URL, overriding the configuration file (repeat, or
    /// comma separated, for fallbacks tried in order)
    #[arg(
        long = "endpoint",
        env = "COMMCTL_ENDPOINT",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub endpoint: Vec<String>,
    /// User name for HTTP Basic authentication, overriding the configuration file
    #[arg(long = "username", env = "COMMCTL_USERNAME", value_name = "USER")]
    pub username: Option<String>,
    /// Password for HTTP Basic authentication, overriding the configuration file
    #[arg(
        long = "password",
        env = "COMMCTL_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub password: Option<String>,
    /// Output format: table, wide (more columns), json (as --json), yaml, or
    /// name (KIND/NAME lines); also after the command
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
    /// Print the server's raw JSON instead of tables (for scripts; same as -o json)
    #[arg(long = "json", global = true)]
    pub json: bool,
    /// Print only errors and the data asked for: no confirmations, notes,
    /// warnings or progress bars; lists print bare names, one per line
    #[arg(short = 'q', long = "quiet", global = true)]
    pub quiet: bool,
    /// Trace each request on stderr (method, URL, status, milliseconds);
    /// credentials, request and response bodies are never printed
    #[arg(short = 'v', long = "verbose", global = true)]
    pub verbose: bool,
    /// Give up on a request after this many seconds (exit 8) [default: 120]
    #[arg(long = "timeout", value_name = "SECONDS", global = true,
          value_parser = parse_timeout)]
    pub timeout: Option<f64>,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// `--timeout`: a positive number of seconds.
fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(s),
        _ => Err(format!("'{text}' is not a positive number of seconds")),
    }
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage clusters and their operations (deploy, restart, upgrade)
    Cluster {
        /// Output format
        #[command(flatten)]
        output: OutputArg,
        /// The cluster command.
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Manage hosts, their cluster membership, and connect to them
    Host {
        /// Output format
        #[command(flatten)]
        output: OutputArg,
        /// The host command.
        #[command(subcommand)]
        command: HostCommand,
    },
    /// Manage network configurations
    Network {
        /// Output format
        #[command(flatten)]
        output: OutputArg,
        /// The network command.
        #[command(subcommand)]
        command: NetworkCommand,
    },
    /// Manage container manager configurations
    #[command(name = "container_manager", visible_alias = "container-manager")]
    ContainerManager {
        /// Output format
        #[command(flatten)]
        output: OutputArg,
        /// The container manager command.
        #[command(subcommand)]
        command: ContainerManagerCommand,
    },
    /// Show the audit trail: who changed what, when, from where (admins)
    Audit(AuditArgs),
    /// Show or switch the configuration file's contexts
    Config {
        /// Output format
        #[command(flatten)]
        output: OutputArg,
        /// The config command.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print commctl's version and the server's (from its /version probe)
    Version {
        /// Output format
        #[command(flatten)]
        output: OutputArg,
        /// Only commctl's version; the server is not asked
        #[arg(long = "client")]
        client_only: bool,
    },
    /// Print a bcrypt hash of a password (for the server's users file)
    Passhash(PasshashArgs),
    /// Write a cloud-init user-data file that registers new hosts at boot
    #[command(name = "user-data")]
    UserData(UserDataArgs),
    /// Print a shell completion script; it completes commands and flags, and
    /// cluster, host, network and container manager names from the server
    /// (e.g. `source <(commctl completions bash)`)
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
    /// Print the man page (or write every page to a directory)
    #[command(hide = true)]
    Man {
        /// Write commctl.1 and one page per subcommand into this directory
        #[arg(long = "out-dir", value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// `config ...`: the configuration file's contexts.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// List the contexts (the current one marked with *); passwords are never shown
    GetContexts,
    /// Make a context the file's current-context (the file is rewritten, its mode kept)
    UseContext {
        /// Name of the context
        #[arg(add = ArgValueCandidates::new(complete::contexts))]
        name: String,
    },
    /// Print the name of the current context
    CurrentContext,
}

/// `audit`: the newest entries first.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Output format
    #[command(flatten)]
    pub output: OutputArg,
    /// Only this user's changes
    #[arg(long)]
    pub user: Option<String>,
    /// Only this kind of change (`cluster`, `cluster.restart`, `host`, ...; a
    /// kind also matches the kinds under it)
    #[arg(long)]
    pub kind: Option<String>,
    /// Only changes naming this (a cluster, `CLUSTER/ADDRESS`, a host, ...)
    #[arg(long)]
    pub name: Option<String>,
    /// Only changes at or after this UTC time (YYYY-MM-DD[THH:MM[:SS]])
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many entries (default 100)
    #[arg(long)]
    pub limit: Option<u32>,
}

mod cluster;
mod host;
mod local;
mod resources;

pub use cluster::*;
pub use host::*;
pub use local::*;
pub use resources::*;
