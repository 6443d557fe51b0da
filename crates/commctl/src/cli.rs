//! The command line: every command and flag of the documentation's commctl
//! chapter, plus machine output (`--json`), endpoint and credential overrides,
//! `--watch` for operation status, and hidden `completions` / `man` commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Command line client for Commissaire, the cluster host management service.
///
/// Connection settings come from a JSON configuration file (default
/// `~/.commissaire.json`) with the keys `endpoint` (a URL or a list of URLs
/// tried in order), `username`, `password` and `kubeconfig`; the flags below
/// override them. A missing password is prompted for when stdin is a terminal.
///
/// Exit codes: 0 ok, 1 error, 2 usage, 3 not found (404), 4 conflict (409),
/// 5 credentials refused (401/403), 6 no endpoint reachable, 7 bad request (400).
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
    /// Server endpoint URL, overriding the configuration file (repeat for fallbacks, tried in order)
    #[arg(long = "endpoint", value_name = "URL")]
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
    /// Print the server's raw JSON instead of tables (for scripts)
    #[arg(long = "json", global = true)]
    pub json: bool,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage clusters and their operations (deploy, restart, upgrade)
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Manage hosts, their cluster membership, and connect to them
    #[command(subcommand)]
    Host(HostCommand),
    /// Manage network configurations
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Manage container manager configurations
    #[command(
        subcommand,
        name = "container_manager",
        visible_alias = "container-manager"
    )]
    ContainerManager(ContainerManagerCommand),
    /// Show the audit trail: who changed what, when, from where (admins)
    Audit(AuditArgs),
    /// Print a bcrypt hash of a password (for the server's users file)
    Passhash(PasshashArgs),
    /// Write a cloud-init user-data file that registers new hosts at boot
    #[command(name = "user-data")]
    UserData(UserDataArgs),
    /// Print a shell completion script
    #[command(hide = true)]
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

/// `audit`: the newest entries first.
#[derive(Debug, Args)]
pub struct AuditArgs {
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
        #[arg(short = 'n', long = "network", value_name = "NAME")]
        network: Option<String>,
        /// Name of the container manager the cluster's hosts are registered with
        #[arg(short = 'c', long = "container-manager", value_name = "NAME")]
        container_manager: Option<String>,
        /// Name of the cluster
        name: String,
    },
    /// Delete clusters
    Delete {
        /// Names of the clusters
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show a cluster, its status and host counts
    Get {
        /// Name of the cluster
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
        name: String,
    },
    /// Replace the cluster's rolling defaults (what is not given is unset)
    Set {
        /// Name of the cluster
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
    pub name: String,
}

/// `cluster restart ...`
#[derive(Debug, Subcommand)]
pub enum OperationCommand {
    /// Start the operation
    Start {
        /// Name of the cluster
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
        #[arg(short = 'c', long = "cluster", value_name = "NAME")]
        cluster: Option<String>,
        /// User the server logs in as over SSH [server default: root]
        #[arg(short = 'u', long = "remote-user", value_name = "USER")]
        remote_user: Option<String>,
        /// Address (IP or DNS name) of the host
        address: String,
        /// The host's SSH private key file (sent base64 encoded; "-" reads stdin)
        ssh_priv_key_file: PathBuf,
    },
    /// Delete hosts
    Delete {
        /// Addresses of the hosts
        #[arg(required = true)]
        addresses: Vec<String>,
    },
    /// Show a host
    Get {
        /// Address of the host
        address: String,
    },
    /// List every host, or the members of a cluster; --status and --os pick
    /// some (the server filters)
    List {
        /// Only the members of this cluster
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
        address: String,
    },
    /// Show a host's status (and its node status in the container manager)
    Status {
        /// Address of the host
        address: String,
    },
    /// Print a host's SSH credentials (remote user and private key)
    Creds {
        /// Address of the host
        address: String,
    },
    /// Show the SSH host key recorded at the first contact with a host
    Key {
        /// Address of the host
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
        address: String,
    },
    /// Add a host to a cluster
    Join {
        /// Address of the host
        address: String,
        /// Name of the cluster
        cluster: String,
    },
    /// Remove a host from a cluster
    Unjoin {
        /// Address of the host
        address: String,
        /// Name of the cluster
        cluster: String,
    },
    /// Connect to a host with ssh, using the credentials stored on the server
    Ssh {
        /// Address of the host
        address: String,
        /// Extra arguments for ssh (options, or a command to run)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        extra_args: Vec<String>,
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
        #[arg(short = 'o', long = "options", value_name = "JSON|KEY=VALUE")]
        options: Vec<String>,
        /// Name of the network
        name: String,
    },
    /// Delete network configurations
    Delete {
        /// Names of the networks
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show a network configuration
    Get {
        /// Name of the network
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
        /// Options: a JSON object, or KEY=VALUE (repeatable), e.g. -o server_url=https://...
        #[arg(short = 'o', long = "options", value_name = "JSON|KEY=VALUE")]
        options: Vec<String>,
        /// Name of the container manager
        name: String,
    },
    /// Delete container manager configurations
    Delete {
        /// Names of the container managers
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show a container manager configuration
    Get {
        /// Name of the container manager
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
    #[arg(short = 'r', long = "rounds", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(4..=31))]
    pub rounds: u32,
}

/// `user-data` arguments.
#[derive(Debug, Args)]
pub struct UserDataArgs {
    /// Commissaire endpoint to use during bootstrapping
    #[arg(short = 'e', long = "endpoint", value_name = "URL")]
    pub endpoint: String,
    /// Name of the cluster for new hosts to join
    #[arg(short = 'c', long = "cluster")]
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
            "commctl", "host", "ssh", "10.0.0.1", "-v", "-p", "9876", "uptime",
        ])
        .unwrap();
        match cli.command {
            Command::Host(HostCommand::Ssh {
                address,
                extra_args,
            }) => {
                assert_eq!(address, "10.0.0.1");
                assert_eq!(extra_args, ["-v", "-p", "9876", "uptime"]);
            }
            other => panic!("{other:?}"),
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
