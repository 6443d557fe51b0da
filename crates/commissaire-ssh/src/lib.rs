//! Host sessions over the system OpenSSH client ([`openssh`]): one
//! multiplexed master connection per host, opened on demand and shared by
//! every caller in the process, bounded in number, closed when idle, opened
//! again when the host restarted; commands with time limits; the host's key
//! pinned (trust on first use, then verified on every connection).
//!
//! - [`SessionPool`]: the sessions of a process, and [`SessionPool::run`];
//!   [`Lease`]: a session held for `ansible-playbook` to multiplex over.
//! - [`Credentials`]: who logs in where, with which key (kept in a 0600
//!   file of the pool's private directory only while a session uses it).
//! - [`HostKey`]: what the caller knows of the host's key.
//! - [`orphaned_dirs`]: what processes killed with -9 left behind.
//! - [`SshError`]: why a command could not run, each reason distinct
//!   (unreachable, key refused, host key changed, time limit).

mod error;
mod orphans;
mod pool;
mod secret;

pub use error::SshError;
pub use orphans::orphaned_dirs;
pub use pool::{Credentials, HostKey, Lease, Output, PoolConfig, SessionPool};
