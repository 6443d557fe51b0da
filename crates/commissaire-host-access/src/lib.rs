//! Commands on a stored host, for every daemon that works on hosts (the
//! watcher, the investigator, clusterexec): the host's credentials come
//! from storage, the connection from the process's shared
//! [`SessionPool`], and its SSH host key is pinned at first contact and
//! verified on every connection after (trust on first use).
//!
//! - [`HostAccess::run`]: one command on a host.
//! - [`HostAccess::open`]: a host's session held for `ansible-playbook`
//!   (its control socket, and the `known_hosts` lines to verify with).
//! - [`SshSettings`]: the `ssh` member of a daemon's configuration.
//! - [`AccessError`]: why not, each reason distinct (no credentials, a bad
//!   key, unreachable, key refused, host key changed, time limit).

#![warn(missing_docs)]

mod access;
mod error;
mod settings;

pub use access::{HostAccess, Opened};
pub use error::AccessError;
pub use settings::SshSettings;
