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

/// `cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Create a cluster (re-creating an identical one succeeds)
    Create {
        /// Type of the cluster; accepted for compatibility, the server keeps no cluster type
        #[arg(short = 't', long = "type", value_parser = ["kubernetes", "host_only"])]
        kind: Option<String>,
        /// Name of the cluster's network [server default: default]
        #[arg(short = 'n', long = "network", value_name = "NAME",
              add = ArgValueCandidates::new(complete::networks))]
        network: Option<String>,
        /// Name of the container manager the cluster's hosts are registered with
        #[arg(long = "container-manager", value_name = "NAME",
              add = ArgValueCandidates::new(complete::container_managers))]
        container_manager: Option<String>,
        /// Name of the cluster
        #[arg(add = ArgValueCandidates::new(complete::clusters))]
        name: String,
    },
    /// Delete clusters
    Delete {
        /// Names of the clusters
        #[arg(required = true, add = ArgValueCandidates::new(complete::clusters))]
        names: Vec<String>,
    },
    /// Show a cluster, its status and host counts
    Get {
        /// Name of the cluster
        #[arg(add = ArgValueCandidates::new(complete::clusters))]
        name: String,
    },
    /// List the clusters
    List,
    /// Deploy a tree image version on a cluster's hosts
    #[command(subcommand)]
    Deploy(DeployCommand),
    /// Restart a cluster's hosts one by one
    #[command(subcommand)]
    Restart(OperationCommand),
    /// Upgrade a cluster's hosts one by one
    #[command(subcommand)]
    Upgrade(UpgradeCommand),
    /// Show or set a cluster's defaults for its rolling operations
    #[command(subcommand)]
    Rolling(RollingCommand),
}

/// `cluster rolling ...`
#[derive(Debug, Subcommand)]
pub enum RollingCommand {
    /// Show the cluster's rolling defaults
    Get {
        /// Name of the cluster
        #[arg(add = ArgValueCandidates::new(complete::clusters))]
        name: String,
    },
    /// Replace the cluster's rolling defaults (what is not given is unset)
    Set {
        /// Name of the cluster
        #[arg(add = ArgValueCandidates::new(complete::clusters))]
        name: String,
        /// Hosts worked on at once: a count or a percent of the cluster's hosts ("25%")
        #[arg(long = "batch-size", value_name = "N|P%")]
        batch_size: Option<String>,
        /// Failed hosts tolerated before a roll stops: a count or a percent
        #[arg(long = "max-failures", value_name = "N|P%")]
        max_failures: Option<String>,
        /// Hosts rolled last, in this order (comma-separated or repeated)
        #[arg(long = "last", value_name = "HOST", value_delimiter = ',')]
        last: Vec<String>,
        /// Past runs an operation record keeps [server default: 10]
        #[arg(long = "keep-runs", value_name = "N")]
        keep_runs: Option<u32>,
        /// A JSON file of the defaults, with maintenance `windows` and health
        /// `gates` ("-" reads stdin); the flags above override its members
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<std::path::PathBuf>,
    },
}

/// How a rolling operation runs (each overrides the cluster's default).
#[derive(Debug, Args, Default)]
pub struct RollArgs {
    /// Hosts worked on at once: a count or a percent of the cluster's hosts ("25%")
    #[arg(long = "batch-size", value_name = "N|P%")]
    pub batch_size: Option<String>,
    /// Failed hosts tolerated before the roll stops: a count or a percent
    #[arg(long = "max-failures", value_name = "N|P%")]
    pub max_failures: Option<String>,
    /// Hosts rolled first, in this order (comma-separated or repeated)
    #[arg(long = "order", value_name = "HOST", value_delimiter = ',')]
    pub order: Vec<String>,
    /// Hosts rolled last, in this order (comma-separated or repeated)
    #[arg(long = "last", value_name = "HOST", value_delimiter = ',')]
    pub last: Vec<String>,
    /// Follow the operation until it ends, as `status --watch` does
    #[arg(short = 'w', long = "watch")]
    pub watch: bool,
    /// Seconds between polls with --watch
    #[arg(long = "interval", value_name = "SECONDS", default_value_t = 2.0)]
    pub interval: f64,
}

/// The verbs that steer an operation in process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop between hosts until resumed.
    Pause,
    /// Go on after a pause.
    Resume,
    /// Stop after the hosts in process.
    Cancel,
}

/// `cluster deploy ...`
#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Start a deployment
    Start {
        /// Name of the cluster
        #[arg(add = ArgValueCandidates::new(complete::clusters))]
        name: String,
        /// Version to deploy
        #[arg(id = "deploy_version", value_name = "VERSION")]
        version: String,
        /// How it rolls
        #[command(flatten)]
        roll: RollArgs,
    },
    /// Show the state of the latest deployment
    Status(StatusArgs),
    /// Show what a deployment would do (dry run: hosts, batches, gates, evictions), changing nothing
    Plan {
        /// Name of the cluster
        #[arg(add = ArgValueCandidates::new(complete::clusters))]
        name: String,
        /// Version to deploy
        #[arg(id = "deploy_version", value_name = "VERSION")]
        version: String,
        /// How it would roll
        #[command(flatten)]
        roll: RollArgs,
    },
    /// Pause the deployment in process after the hosts it is working on
    Pause(NameArg),
    /// Resume a paused deployment
    Resume(NameArg),
    /// Cancel the deployment in process after the hosts it is working on
    Cancel(NameArg),
}

/// A cluster's name.
#[derive(Debug, Args)]
pub struct NameArg {
    /// Name of the cluster
    #[arg(add = ArgValueCandidates::new(complete::clusters))]
    pub name: String,
}

/// `cluster restart ...`
#[derive(Debug, Subcommand)]
pub enum OperationCommand {
    /// Start the operation
    Start {
        /// Name of the cluster
        #[arg(add = ArgValueCandidates::new(complete::clusters))]
        name: String,
        /// How it rolls
        #[command(flatten)]
        roll: RollArgs,
    },
    /// Show the state of the latest operation
    Status(StatusArgs),
    /// Show what the operation would do (dry run: hosts, batches, gates, evictions), changing nothing
    Plan {
        /// Name of the cluster
        #[arg(add = ArgValueCandidates::new(complete::clusters))]
        name: String,
        /// How it would roll
        #[command(flatten)]
        roll: RollArgs,
    },
    /// Pause the operation in process after the hosts it is working on
    Pause(NameArg),
    /// Resume a paused operation
    Resume(NameArg),
    /// Cancel the operation in process after the hosts it is working on
    Cancel(NameArg),
}

/// `cluster upgrade ...`
#[derive(Debug, Subcommand)]
pub enum UpgradeCommand {
    /// Start an upgrade
    Start {
        /// Name of the cluster
        #[arg(add = ArgValueCandidates::new(complete::clusters))]
        name: String,
        /// Accepted for compatibility with the documentation's example; upgrades take no version
        #[arg(id = "upgrade_version", value_name = "VERSION")]
        version: Option<String>,
        /// How it rolls
        #[command(flatten)]
        roll: RollArgs,
    },
    /// Show the state of the latest upgrade
    Status(StatusArgs),
    /// Show what an upgrade would do (dry run: hosts, batches, gates, evictions), changing nothing
    Plan {
        /// Name of the cluster
        #[arg(add = ArgValueCandidates::new(complete::clusters))]
        name: String,
        /// How it would roll
        #[command(flatten)]
        roll: RollArgs,
    },
    /// Pause the upgrade in process after the hosts it is working on
    Pause(NameArg),
    /// Resume a paused upgrade
    Resume(NameArg),
    /// Cancel the upgrade in process after the hosts it is working on
    Cancel(NameArg),
}

/// Arguments of the `status` commands.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Name of the cluster
    #[arg(add = ArgValueCandidates::new(complete::clusters))]
    pub name: String,
    /// Poll until the operation is no longer in process, showing a progress bar
    /// (exit 0 when it finished, 1 when it failed)
    #[arg(short = 'w', long = "watch")]
    pub watch: bool,
    /// Seconds between polls with --watch
    #[arg(long = "interval", value_name = "SECONDS", default_value_t = 2.0)]
    pub interval: f64,
}

/// `host ...`
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Register a host; the server then bootstraps it over SSH
    Create {
        /// Add the host to this cluster
        #[arg(long = "cluster", value_name = "NAME", add = ArgValueCandidates::new(complete::clusters))]
        cluster: Option<String>,
        /// User the server logs in as over SSH [server default: root]
        #[arg(short = 'r', long = "remote-user", value_name = "USER")]
        remote_user: Option<String>,
        /// Address (IP or DNS name) of the host
        address: String,
        /// The host's SSH private key file (sent base64 encoded; "-" reads stdin)
        ssh_priv_key_file: PathBuf,
    },
    /// Delete hosts
    Delete {
        /// Addresses of the hosts
        #[arg(required = true, add = ArgValueCandidates::new(complete::hosts))]
        addresses: Vec<String>,
    },
    /// Show a host
    Get {
        /// Address of the host
        #[arg(add = ArgValueCandidates::new(complete::hosts))]
        address: String,
    },
    /// List every host, or the members of a cluster; --status and --os pick
    /// some (the server filters)
    List {
        /// Only the members of this cluster
        #[arg(add = ArgValueCandidates::new(complete::clusters))]
        cluster: Option<String>,
        /// Only hosts with this status (repeat, or comma separated, for any of several)
        #[arg(long = "status", value_name = "STATUS", value_delimiter = ',')]
        status: Vec<String>,
        /// Only hosts running this OS (repeat, or comma separated)
        #[arg(long = "os", value_name = "OS", value_delimiter = ',')]
        os: Vec<String>,
    },
    /// Investigate a failed host again, with the credentials it has (after
    /// fixing what made it fail: its network, its key, a package)
    Retry {
        /// Address of the host
        #[arg(add = ArgValueCandidates::new(complete::hosts))]
        address: String,
    },
    /// Show a host's status (and its node status in the container manager)
    Status {
        /// Address of the host
        #[arg(add = ArgValueCandidates::new(complete::hosts))]
        address: String,
    },
    /// Print a host's SSH credentials (remote user and private key)
    Creds {
        /// Address of the host
        #[arg(add = ArgValueCandidates::new(complete::hosts))]
        address: String,
    },
    /// Show the SSH host key recorded at the first contact with a host
    Key {
        /// Address of the host
        #[arg(add = ArgValueCandidates::new(complete::hosts))]
        address: String,
    },
    /// Accept a host's new SSH host key (after a reinstall): the key it
    /// shows at the next connection is recorded
    AcceptKey {
        /// Only accept a key with this fingerprint (SHA256:..., as
        /// `ssh-keygen -l` prints it, read on the host's console)
        #[arg(long, value_name = "FINGERPRINT")]
        fingerprint: Option<String>,
        /// Address of the host
        #[arg(add = ArgValueCandidates::new(complete::hosts))]
        address: String,
    },
    /// Add a host to a cluster
    Join {
        /// Address of the host
        #[arg(add = ArgValueCandidates::new(complete::hosts))]
        address: String,
        /// Name of the cluster
        #[arg(add = ArgValueCandidates::new(complete::clusters))]
        cluster: String,
    },
    /// Remove a host from a cluster
    Unjoin {
        /// Address of the host
        #[arg(add = ArgValueCandidates::new(complete::hosts))]
        address: String,
        /// Name of the cluster
        #[arg(add = ArgValueCandidates::new(complete::clusters))]
        cluster: String,
    },
    /// Connect to a host with ssh, using the credentials stored on the server
    Ssh {
        /// Address of the host
        #[arg(add = ArgValueCandidates::new(complete::hosts))]
        address: String,
        /// Extra arguments for ssh (options, or a command to run); `-v`, `-q`
        /// and `-o` here are ssh's own (commctl's are `--verbose`, `--quiet`
        /// and `--output`, or go before the address)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        extra_args: Vec<String>,
        /// commctl's `-v`, long only here: ssh's `-v` stays ssh's
        #[arg(id = "verbose", long = "verbose", hide = true)]
        verbose: bool,
        /// commctl's `-q`, long only here: ssh's `-q` stays ssh's
        #[arg(id = "quiet", long = "quiet", hide = true)]
        quiet: bool,
        /// commctl's `-o`, long only here: ssh's `-o OPTION` stays ssh's
        #[arg(id = "output", long = "output", value_enum, hide = true)]
        output: Option<OutputFormat>,
    },
}

/// `network ...`
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network configuration
    Create {
        /// Type of the network
        #[arg(
            short = 't',
            long = "type",
            default_value = "flannel_etcd",
            value_parser = ["flannel_etcd", "flannel_server"]
        )]
        kind: String,
        /// Options: a JSON object, or KEY=VALUE (repeatable)
        #[arg(long = "options", value_name = "JSON|KEY=VALUE")]
        options: Vec<String>,
        /// Name of the network
        name: String,
    },
    /// Delete network configurations
    Delete {
        /// Names of the networks
        #[arg(required = true, add = ArgValueCandidates::new(complete::networks))]
        names: Vec<String>,
    },
    /// Show a network configuration
    Get {
        /// Name of the network
        #[arg(add = ArgValueCandidates::new(complete::networks))]
        name: String,
    },
    /// List the network configurations
    List,
}

/// `container_manager ...`
#[derive(Debug, Subcommand)]
pub enum ContainerManagerCommand {
    /// Create a container manager configuration
    Create {
        /// Type of the container manager
        #[arg(
            short = 't',
            long = "type",
            default_value = "openshift",
            value_parser = ["openshift", "kubernetes", "trivial"]
        )]
        kind: String,
        /// Options: a JSON object, or KEY=VALUE (repeatable), e.g. --options server_url=https://...
        #[arg(long = "options", value_name = "JSON|KEY=VALUE")]
        options: Vec<String>,
        /// Name of the container manager
        name: String,
    },
    /// Delete container manager configurations
    Delete {
        /// Names of the container managers
        #[arg(required = true, add = ArgValueCandidates::new(complete::container_managers))]
        names: Vec<String>,
    },
    /// Show a container manager configuration
    Get {
        /// Name of the container manager
        #[arg(add = ArgValueCandidates::new(complete::container_managers))]
        name: String,
    },
    /// List the container manager configurations
    List,
}

/// `passhash` arguments.
#[derive(Debug, Args)]
pub struct PasshashArgs {
    /// Password to hash (visible in the process list and shell history: prefer the prompt)
    #[arg(short = 'p', long = "password", conflicts_with = "file")]
    pub password: Option<String>,
    /// Read the password from a file ("-" for stdin); one trailing newline is dropped
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// bcrypt cost (4 to 31)
    #[arg(long = "rounds", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(4..=31))]
    pub rounds: u32,
}

/// `user-data` arguments.
#[derive(Debug, Args)]
pub struct UserDataArgs {
    /// Commissaire endpoint to use during bootstrapping
    #[arg(short = 'e', long = "endpoint", value_name = "URL")]
    pub endpoint: String,
    /// Name of the cluster for new hosts to join (`-c` here is the original commctl's)
    #[arg(short = 'c', long = "cluster", add = ArgValueCandidates::new(complete::clusters))]
    pub cluster: Option<String>,
    /// Commissaire user to use when bootstrapping
    #[arg(short = 'u', long = "username")]
    pub username: Option<String>,
    /// Prompt for a Commissaire password to use when bootstrapping (read from stdin when it is not a terminal)
    #[arg(short = 'p', long = "password")]
    pub password: bool,
    /// Remote user to provide to Commissaire for ssh access
    #[arg(short = 'r', long = "remote-user")]
    pub remote_user: Option<String>,
    /// Path to the private key of the remote user (on the new host)
    #[arg(short = 's', long = "ssh-key-path")]
    pub ssh_key_path: Option<String>,
    /// Path to the authorized_keys file of the remote user (on the new host)
    #[arg(short = 'a', long = "authorized-keys-path")]
    pub authorized_keys_path: Option<String>,
    /// cloud-config file to include instead of the bundled one
    #[arg(short = 'C', long = "cloud-init", value_name = "FILE")]
    pub cloud_init: Option<PathBuf>,
    /// Output file (created mode 0600; it may hold a password). If omitted stdout is used
    /// (`-o` here is the original commctl's)
    #[arg(short = 'o', long = "outfile", value_name = "FILE")]
    pub outfile: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ssh_extra_args_keep_hyphens() {
        let cli = Cli::try_parse_from([
            "commctl",
            "host",
            "ssh",
            "10.0.0.1",
            "-v",
            "-q",
            "-o",
            "BatchMode=yes",
            "-p",
            "9876",
            "uptime",
        ])
        .unwrap();
        match cli.command {
            Command::Host {
                command:
                    HostCommand::Ssh {
                        address,
                        extra_args,
                        ..
                    },
                ..
            } => {
                assert_eq!(address, "10.0.0.1");
                assert_eq!(
                    extra_args,
                    ["-v", "-q", "-o", "BatchMode=yes", "-p", "9876", "uptime"]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// Every `(letter, long name, command path)` in the tree, globals included.
    fn short_flags(cmd: &clap::Command, path: &str, out: &mut Vec<(char, String, String)>) {
        for arg in cmd.get_arguments() {
            if let Some(short) = arg.get_short() {
                let long = arg
                    .get_long()
                    .map(str::to_string)
                    .unwrap_or_else(|| arg.get_id().to_string());
                out.push((short, long, path.to_string()));
            }
        }
        for sub in cmd.get_subcommands() {
            short_flags(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_short_flag_has_one_meaning_in_every_command() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut flags = Vec::new();
        short_flags(&cmd, "commctl", &mut flags);
        let mut meaning: std::collections::BTreeMap<char, (String, String)> = Default::default();
        let mut exceptions_seen = Vec::new();
        for (short, long, path) in &flags {
            if path == "commctl user-data"
                && USER_DATA_EXCEPTIONS.contains(&(*short, long.as_str()))
            {
                exceptions_seen.push((*short, long.clone()));
                continue;
            }
            match meaning.get(short) {
                Some((first, where_)) => assert_eq!(
                    first, long,
                    "-{short} is --{first} in '{where_}' but --{long} in '{path}'"
                ),
                None => {
                    meaning.insert(*short, (long.clone(), path.clone()));
                }
            }
        }
        // The exceptions exist (the original's user-data flags) and are
        // exceptions: elsewhere the letter means something else.
        exceptions_seen.sort();
        let mut expected: Vec<(char, String)> = USER_DATA_EXCEPTIONS
            .iter()
            .map(|(c, l)| (*c, l.to_string()))
            .collect();
        expected.sort();
        assert_eq!(exceptions_seen, expected);
        assert_eq!(meaning[&'c'].0, "config");
        assert_eq!(meaning[&'o'].0, "output");
        assert_eq!(meaning[&'q'].0, "quiet");
        assert_eq!(meaning[&'v'].0, "verbose");
    }

    #[test]
    fn the_old_long_flags_still_parse() {
        for args in [
            &[
                "commctl",
                "host",
                "create",
                "--cluster",
                "c",
                "--remote-user",
                "u",
                "h",
                "k",
            ][..],
            &[
                "commctl",
                "cluster",
                "create",
                "--container-manager",
                "m",
                "c",
            ],
            &["commctl", "network", "create", "--options", "a=b", "n"],
            &[
                "commctl",
                "container_manager",
                "create",
                "--options",
                "a=b",
                "m",
            ],
            &["commctl", "passhash", "--rounds", "4", "--password", "x"],
            &[
                "commctl",
                "user-data",
                "-e",
                "http://x",
                "-c",
                "cl",
                "-o",
                "f",
                "-p",
                "-u",
                "u",
            ],
            &[
                "commctl",
                "user-data",
                "--endpoint",
                "http://x",
                "--cluster",
                "cl",
                "--outfile",
                "f",
            ],
        ] {
            Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }

    /// The invocations the original commctl's documentation (0.0.6) shows.
    #[test]
    fn the_original_commctls_documented_invocations_still_parse() {
        let documented: &[&[&str]] = &[
            &[
                "container_manager",
                "create",
                "--type",
                "openshift",
                r#"--options={"server_url": "https://openshift.example.com", "token": "aaa"}"#,
                "ocp",
            ],
            &[
                "cluster",
                "create",
                "--container-manager",
                "ocp",
                "mycluster",
            ],
            &[
                "cluster",
                "create",
                "--type",
                "kubernetes",
                "--network",
                "default",
                "my_cluster",
            ],
            &[
                "cluster",
                "create",
                "-t",
                "kubernetes",
                "-n",
                "default",
                "my_cluster",
            ],
            &[
                "host",
                "create",
                "--cluster",
                "my_cluster",
                "192.168.152.110",
                "/path/key",
            ],
            &["cluster", "restart", "start", "my_cluster"],
            &["cluster", "deploy", "start", "mycluster", "7.4.1"],
            &["cluster", "upgrade", "start", "datacenter1", "7.2.2"],
            &["host", "ssh", "192.168.1.100", "-v", "-p", "9876"],
            &[
                "network",
                "create",
                "--type",
                "flannel_server",
                "--options",
                r#"{"address": "192.168.152.100:8080"}"#,
                "my_network",
            ],
            &["host", "list", "datacenter1"],
            &["passhash", "--file", "my_password.txt"],
            &["passhash", "--rounds", "15"],
            &["passhash", "--password", "bad_idea"],
            &[
                "user-data",
                "-p",
                "-c",
                "my_cluster",
                "-o",
                "cluster.userdata",
                "-e",
                "https://example.com/",
            ],
            &[
                "user-data",
                "--password",
                "--username",
                "USER",
                "--cluster",
                "CLUSTER",
                "--endpoint",
                "https://example.com/",
                "--outfile",
                "CLUSTER.userdata",
            ],
            &[
                "user-data",
                "-e",
                "https://e/",
                "-c",
                "c",
                "-u",
                "u",
                "-p",
                "-r",
                "root",
                "-s",
                "/k",
                "-a",
                "/a",
                "-C",
                "/ci",
                "-o",
                "/out",
            ],
        ];
        for args in documented {
            let line = [&["commctl", "-c", "/etc/commissaire.json"][..], args].concat();
            let cli = Cli::try_parse_from(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            assert_eq!(
                cli.config.as_deref(),
                Some(std::path::Path::new("/etc/commissaire.json"))
            );
        }
        let cli = Cli::try_parse_from([
            "commctl",
            "user-data",
            "-p",
            "-c",
            "my_cluster",
            "-o",
            "cluster.userdata",
            "-e",
            "http://e",
        ])
        .unwrap();
        match cli.command {
            Command::UserData(a) => {
                assert_eq!(a.cluster.as_deref(), Some("my_cluster"));
                assert_eq!(a.outfile, Some(PathBuf::from("cluster.userdata")));
                assert!(a.password);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_output_format_is_a_usage_error() {
        let e = Cli::try_parse_from(["commctl", "cluster", "list", "-o", "xml"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("xml"), "{e}");
    }

    #[test]
    fn output_format_after_the_group_or_the_command() {
        for args in [
            &["commctl", "cluster", "list", "-o", "yaml"][..],
            &["commctl", "cluster", "-o", "yaml", "list"],
            &["commctl", "cluster", "list", "--output=yaml"],
            &["commctl", "-o", "yaml", "cluster", "list"],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(crate::output_format(&cli), OutputFormat::Yaml, "{args:?}");
        }
    }

    #[test]
    fn json_flag_anywhere() {
        let cli = Cli::try_parse_from(["commctl", "cluster", "list", "--json"]).unwrap();
        assert!(cli.json);
        let cli = Cli::try_parse_from(["commctl", "--json", "cluster", "list"]).unwrap();
        assert!(cli.json);
    }
}
