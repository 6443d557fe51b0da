//! `commctl cluster ...`: clusters, their rolling operations (deploy,
//! restart, upgrade) and rolling defaults.

use clap::{Args, Subcommand};
use clap_complete::ArgValueCandidates;

use crate::complete;

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
    /// Show or release a cluster's reboot lock (shared with FleetLock hosts)
    #[command(subcommand)]
    Lock(LockCommand),
}

/// `cluster lock ...`
#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Show the lock's slots and who holds them, since when and why
    Status {
        /// Name of the cluster
        #[arg(add = ArgValueCandidates::new(complete::clusters))]
        name: String,
    },
    /// Give back the slots a holder (a FleetLock client id, or restart,
    /// upgrade, deploy) holds; its node is left as it is
    Release {
        /// Name of the cluster
        #[arg(add = ArgValueCandidates::new(complete::clusters))]
        name: String,
        /// The holder's id, as `status` shows it
        id: String,
    },
    /// Make a new FleetLock token for the cluster's hosts (shown once; the
    /// one before stops working)
    Token {
        /// Name of the cluster
        #[arg(add = ArgValueCandidates::new(complete::clusters))]
        name: String,
    },
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
        /// Hosts that may be out at once, by FleetLock or a roll: the slots of
        /// the cluster's reboot lock, a count or a percent [server default: 1]
        #[arg(long = "max-unavailable", value_name = "N|P%")]
        max_unavailable: Option<String>,
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
