//! The commands that do not talk to the server: `passhash` and `user-data`
//! (the original commctl's flags verbatim).

use std::path::PathBuf;

use clap::Args;
use clap_complete::ArgValueCandidates;

use crate::complete;

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
