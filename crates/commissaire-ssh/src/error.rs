//! Why a command could not run on a host.

use std::time::Duration;

/// Why a command could not run on a host. The messages are a host's
/// failure reasons: they say what happened in the operator's words.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// Nothing answered, or the connection was refused or cut.
    #[error("host {address} is unreachable: {detail}")]
    Unreachable {
        /// The host.
        address: String,
        /// ssh's own words.
        detail: String,
    },
    /// The host refused the key.
    #[error("host {address} refused the SSH key of user {user}: {detail}")]
    KeyRefused {
        /// The host.
        address: String,
        /// The remote user.
        user: String,
        /// ssh's own words.
        detail: String,
    },
    /// The host answered with another host key than the pinned one.
    #[error(
        "the SSH host key of {address} changed (it is not the key recorded at first contact); \
         if the host was reinstalled, accept its new key (`commctl host accept-key {address}`)"
    )]
    HostKeyChanged {
        /// The host.
        address: String,
    },
    /// The command did not end within its time limit.
    #[error("'{command}' on {address} did not end within {after:?}")]
    Timeout {
        /// The host.
        address: String,
        /// The command.
        command: String,
        /// The time limit.
        after: Duration,
    },
    /// The pool's private files could not be written.
    #[error("cannot prepare the SSH session files: {0}")]
    Files(#[source] std::io::Error),
    /// Anything else the ssh client reported.
    #[error("ssh to {address} failed: {detail}")]
    Other {
        /// The host.
        address: String,
        /// ssh's own words.
        detail: String,
    },
}

impl SshError {
    /// Classifies what an ssh client said when it could not connect to
    /// `address` as `user` (also used for the `ssh` runs of Ansible's
    /// pre-flight, so a reason reads the same whoever connected).
    pub fn from_connect(address: &str, user: &str, said: &str) -> SshError {
        let detail = said.trim().lines().last().unwrap_or("").trim().to_string();
        let said_lower = said.to_ascii_lowercase();
        if said_lower.contains("host key verification failed")
            || said_lower.contains("remote host identification has changed")
            || said_lower.contains("host key for") && said_lower.contains("has changed")
        {
            SshError::HostKeyChanged {
                address: address.to_string(),
            }
        } else if said_lower.contains("permission denied") {
            SshError::KeyRefused {
                address: address.to_string(),
                user: user.to_string(),
                detail,
            }
        } else if [
            "connection refused",
            "connection timed out",
            "no route to host",
            "network is unreachable",
            "connection closed",
            "connection reset",
            "could not resolve",
            "operation timed out",
        ]
        .iter()
        .any(|m| said_lower.contains(m))
        {
            SshError::Unreachable {
                address: address.to_string(),
                detail,
            }
        } else {
            SshError::Other {
                address: address.to_string(),
                detail: if detail.is_empty() {
                    said.trim().to_string()
                } else {
                    detail
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_s_words_become_distinct_reasons() {
        let e = SshError::from_connect(
            "10.0.0.1",
            "root",
            "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.",
        );
        assert!(matches!(e, SshError::HostKeyChanged { .. }), "{e}");
        let e = SshError::from_connect(
            "10.0.0.1",
            "root",
            "root@10.0.0.1: Permission denied (publickey).",
        );
        assert!(matches!(e, SshError::KeyRefused { .. }), "{e}");
        let e = SshError::from_connect(
            "10.0.0.1",
            "root",
            "ssh: connect to host 10.0.0.1 port 22: Connection refused",
        );
        assert!(matches!(e, SshError::Unreachable { .. }), "{e}");
        assert!(e.to_string().contains("Connection refused"), "{e}");
    }
}
