//! A host, its SSH credentials and its status view.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::null_as_empty;
use super::{HostState, Os};
use crate::{Model, ModelError, check_address};

/// A managed host (`/api/v0/host/{IP}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(default)]
pub struct Host {
    /// IP address (or resolvable name) of the host.
    pub address: String,
    /// Life-cycle status.
    pub status: HostState,
    /// Operating system.
    pub os: Os,
    /// Number of CPUs.
    pub cpus: i64,
    /// Memory in kilobytes.
    pub memory: i64,
    /// Disk space in kilobytes.
    pub space: i64,
    /// When the host was last checked ([`crate::DATE_FORMAT`]).
    #[serde(deserialize_with = "null_as_empty")]
    pub last_check: String,
    /// Name of the storage handler that owns this record (CPD-61); empty for the default.
    #[serde(deserialize_with = "null_as_empty")]
    pub source: String,
    /// Why the host is `failed` (absent otherwise).
    #[serde(
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub reason: String,
}

impl Model for Host {
    const NAME: &'static str = "Host";
    fn primary_key(&self) -> String {
        self.address.clone()
    }
    fn validate(&self) -> Result<(), ModelError> {
        check_address(Self::NAME, &self.address)?;
        for (field, value) in [
            ("cpus", self.cpus),
            ("memory", self.memory),
            ("space", self.space),
        ] {
            if value < 0 {
                return Err(ModelError::invalid(
                    Self::NAME,
                    field,
                    "must not be negative",
                ));
            }
        }
        Ok(())
    }
}

/// The SSH credentials of a host (`/api/v0/host/{IP}/creds`). A secret model.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostCreds {
    /// Address of the host these credentials open.
    pub address: String,
    /// Base64 encoded SSH private key.
    pub ssh_priv_key: String,
    /// SSH user (default `root`).
    pub remote_user: String,
    /// The host's SSH host key as `known_hosts` lines, recorded at first
    /// contact (trust on first use); every later connection verifies it.
    /// Empty: not recorded yet (a new host, or the operator accepted a new
    /// key).
    #[serde(
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub host_key: String,
    /// The fingerprint (`SHA256:...`) an operator accepted for the next
    /// first contact: a host showing another key is refused. Empty: the
    /// next first contact records whatever key the host shows.
    #[serde(
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub accept_fingerprint: String,
}

impl Default for HostCreds {
    fn default() -> Self {
        HostCreds {
            address: String::new(),
            ssh_priv_key: String::new(),
            remote_user: "root".into(),
            host_key: String::new(),
            accept_fingerprint: String::new(),
        }
    }
}

impl std::fmt::Debug for HostCreds {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCreds")
            .field("address", &self.address)
            .field("ssh_priv_key", &"<redacted>")
            .field("remote_user", &self.remote_user)
            .field("host_key", &host_key_fingerprints(&self.host_key))
            .finish()
    }
}

impl Model for HostCreds {
    const NAME: &'static str = "HostCreds";
    fn primary_key(&self) -> String {
        self.address.clone()
    }
    fn validate(&self) -> Result<(), ModelError> {
        check_address(Self::NAME, &self.address)?;
        if self.remote_user.is_empty() {
            return Err(ModelError::invalid(
                Self::NAME,
                "remote_user",
                "must not be empty",
            ));
        }
        Ok(())
    }
}

/// The OpenSSH fingerprints (`SHA256:<base64>`, as `ssh-keygen -l`
/// prints them) of the keys in `known_hosts` lines (`[marker] hosts type
/// key [comment]`); lines that hold no key are skipped.
pub fn host_key_fingerprints(known_hosts: &str) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    use sha2::Digest as _;
    known_hosts
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let mut first = fields.next()?;
            if first.starts_with('@') {
                first = fields.next()?;
            }
            let _hosts = first;
            let _kind = fields.next()?;
            let blob = STANDARD.decode(fields.next()?).ok()?;
            Some(format!(
                "SHA256:{}",
                STANDARD_NO_PAD.encode(sha2::Sha256::digest(&blob))
            ))
        })
        .collect()
}

/// A host's status as shown by `/api/v0/host/{IP}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(default)]
pub struct HostStatus {
    /// `host_only` when the host has no container manager, else the manager type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Status members of the host record (`status`, `last_check`).
    #[schema(value_type = Object)]
    pub host: Map<String, Value>,
    /// The node's status as the container manager reports it.
    #[schema(value_type = Object)]
    pub container_manager: Map<String, Value>,
}

impl Model for HostStatus {
    const NAME: &'static str = "HostStatus";
    fn primary_key(&self) -> String {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_openssh_s() {
        // Lines without a (base64) key give nothing.
        let lines = "10.0.0.1 ssh-ed25519 \n# comment\n@cert-authority * ssh-rsa  x\n";
        assert!(host_key_fingerprints(lines).is_empty());
        let blob = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"key");
        // The SHA-256 of the blob, unpadded base64 (`printf key | sha256sum`).
        let fp = host_key_fingerprints(&format!("10.0.0.1 ssh-ed25519 {blob} root@h\n"));
        assert_eq!(fp, ["SHA256:LHDhK3oGRvkiefQnx7OOczTY5Tic/xZ6HcMOc/gmtoM"]);
    }

    #[test]
    fn credentials_debug_shows_no_key() {
        let creds = HostCreds {
            address: "10.0.0.1".into(),
            ssh_priv_key: "c2VjcmV0".into(),
            ..HostCreds::default()
        };
        let shown = format!("{creds:?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }
}
