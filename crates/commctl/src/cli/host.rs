//! `commctl host ...`: the host inventory, membership, credentials, SSH host
//! keys and `host ssh`.

use std::path::PathBuf;

use clap::Subcommand;
use clap_complete::ArgValueCandidates;

use super::OutputFormat;
use crate::complete;

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
