//! Agentless host management for Commissaire: the Ansible playbooks
//! (bootstrap, restart, upgrade, deploy, availability check) run over SSH
//! with `ansible-playbook`, per-OS command sets, and the facts command.
//!
//! ```no_run
//! # async fn demo() -> Result<(), commissaire_ansible::AnsibleError> {
//! use commissaire_ansible::*;
//! let target = Target::new("10.0.0.5", "root", "<base64 private key>");
//! let vars = merged_vars("fedora", &serde_json::Map::new());
//! let report = PlaybookRunner::new(default_playbook_dir())
//!     .run(Playbook::CheckHostAvailability, &[target], vars)
//!     .await?;
//! assert!(report.failed_hosts().is_empty());
//! # Ok(()) }
//! ```
//!
//! Requirements on the controller: `ansible-playbook` (ansible-core ≥ 2.14)
//! with the `ansible.posix` collection (for the `jsonl` callback) and the
//! OpenSSH client; on the hosts: SSH, `/usr/bin/python3` and a POSIX shell.

#![warn(missing_docs)]

mod error;
mod events;
mod facts;
mod playbook;
mod preflight;
mod runner;
mod target;
mod vars;

pub use error::AnsibleError;
pub use facts::Facts;
pub use playbook::{HostOutcome, PLAYBOOK_RUNS, PLAYBOOK_SECONDS, Playbook, PlaybookReport};
pub use runner::{
    DEFAULT_PLAYBOOK_DIR, PLAYBOOK_DIR_ENV, PlaybookRunner, default_playbook_dir,
    source_playbook_dir,
};
pub use target::Target;
pub use vars::{SUPPORTED_OS, is_supported_os, merged_vars, os_vars};
