//! `commctl network ...` and `commctl container_manager ...`.

use clap::Subcommand;
use clap_complete::ArgValueCandidates;

use crate::complete;

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
