//! [`HostAccess`]: credentials from storage, sessions from the pool, host
//! keys pinned.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use commissaire_models::{HostCreds, host_key_fingerprints};
use commissaire_ssh::{Credentials, HostKey, Lease, Output, SessionPool, SshError};
use commissaire_storage_client::{StorageCallError, StorageClient, UpdateError};
use serde_json::json;

use crate::AccessError;

/// Commands on stored hosts through a shared session pool. Cheap to clone.
#[derive(Clone)]
pub struct HostAccess {
    storage: StorageClient,
    pool: Arc<SessionPool>,
}

/// A host's session held open, with what a playbook run needs to use it.
#[derive(Debug)]
pub struct Opened {
    /// The host's credentials, with [`HostCreds::host_key`] as verified.
    pub creds: HostCreds,
    /// The session (its control socket), held while this lives.
    pub lease: Lease,
}

impl HostAccess {
    /// Access through `storage` and `pool`.
    pub fn new(storage: StorageClient, pool: Arc<SessionPool>) -> Self {
        HostAccess { storage, pool }
    }

    /// The session pool.
    pub fn pool(&self) -> &Arc<SessionPool> {
        &self.pool
    }

    /// The host's stored credentials.
    pub async fn credentials(&self, address: &str) -> Result<HostCreds, AccessError> {
        match self.storage.get(json!({"address": address})).await {
            Ok(c) => Ok(c),
            Err(StorageCallError::NotFound(_)) => Err(AccessError::NoCredentials {
                address: address.to_string(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens (or reuses) the host's session within `timeout`, verifying
    /// the pinned host key; at first contact the key the host shows is
    /// recorded (after checking it against a fingerprint the operator
    /// accepted, if any).
    pub async fn open(&self, address: &str, timeout: Duration) -> Result<Opened, AccessError> {
        let creds = self.credentials(address).await?;
        self.open_with(creds, timeout).await
    }

    /// [`HostAccess::open`] with the host's credentials read already.
    pub async fn open_with(
        &self,
        mut creds: HostCreds,
        timeout: Duration,
    ) -> Result<Opened, AccessError> {
        let ssh = credentials(&creds)?;
        let known = pinned(&creds);
        let lease = tokio::time::timeout(timeout, self.pool.lease(&ssh, &known))
            .await
            .map_err(|_| SshError::Timeout {
                address: creds.address.clone(),
                command: "(connecting)".into(),
                after: timeout,
            })??;
        if known == HostKey::FirstContact {
            creds = self.record(&creds, lease.host_key()).await?;
        }
        Ok(Opened { creds, lease })
    }

    /// Runs `command` on the host within `timeout` (connecting included).
    pub async fn run(
        &self,
        address: &str,
        command: &str,
        timeout: Duration,
    ) -> Result<Output, AccessError> {
        let creds = self.credentials(address).await?;
        self.run_with(creds, command, timeout).await
    }

    /// [`HostAccess::run`] with the host's credentials read already.
    pub async fn run_with(
        &self,
        creds: HostCreds,
        command: &str,
        timeout: Duration,
    ) -> Result<Output, AccessError> {
        let started = tokio::time::Instant::now();
        let ssh = credentials(&creds)?;
        let known = if creds.host_key.trim().is_empty() {
            // First contact: connect and record the key before the command.
            pinned(&self.open_with(creds, timeout).await?.creds)
        } else {
            pinned(&creds)
        };
        let left = timeout.saturating_sub(started.elapsed());
        let (output, _) = self.pool.run(&ssh, &known, command, left).await?;
        Ok(output)
    }

    /// Records `shown` as the host's key if none is recorded yet (another
    /// component may have been first: then its key must be the same).
    async fn record(&self, creds: &HostCreds, shown: &str) -> Result<HostCreds, AccessError> {
        let address = creds.address.clone();
        let shown_fingerprints = host_key_fingerprints(shown);
        let saved = self
            .storage
            .update(json!({"address": address}), |c: &mut HostCreds| {
                if !c.host_key.is_empty() {
                    if c.host_key.trim() == shown.trim() {
                        return Ok(false);
                    }
                    return Err(AccessError::Ssh(SshError::HostKeyChanged {
                        address: address.clone(),
                    }));
                }
                if !c.accept_fingerprint.is_empty()
                    && !shown_fingerprints.contains(&c.accept_fingerprint)
                {
                    return Err(AccessError::NotTheAcceptedKey {
                        address: address.clone(),
                        accepted: c.accept_fingerprint.clone(),
                        shown: shown_fingerprints.join(", "),
                    });
                }
                c.host_key = shown.trim().to_string();
                c.accept_fingerprint.clear();
                Ok(true)
            })
            .await
            .map_err(|e| match e {
                UpdateError::Refused(e) => e,
                UpdateError::Storage(StorageCallError::NotFound(_)) => AccessError::NoCredentials {
                    address: creds.address.clone(),
                },
                UpdateError::Storage(e) => AccessError::Storage(e),
            })?;
        tracing::info!(address = %creds.address, fingerprints = ?shown_fingerprints, "recorded the host's SSH key (first contact)");
        Ok(saved)
    }
}

/// What the stored record knows of the host's key.
pub(crate) fn pinned(creds: &HostCreds) -> HostKey {
    if creds.host_key.trim().is_empty() {
        HostKey::FirstContact
    } else {
        HostKey::Pinned(creds.host_key.clone())
    }
}

/// The session pool's credentials from the stored ones (the key decoded).
pub(crate) fn credentials(creds: &HostCreds) -> Result<Credentials, AccessError> {
    let bad = |reason: &str| AccessError::BadKey {
        address: creds.address.clone(),
        reason: reason.to_string(),
    };
    let compact: String = creds
        .ssh_priv_key
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    // The decoder's messages quote offending symbols: say it without them.
    let key = STANDARD
        .decode(&compact)
        .or_else(|_| STANDARD_NO_PAD.decode(&compact))
        .map_err(|_| bad("the key is not valid base64"))?;
    if key.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("the key is empty"));
    }
    Ok(Credentials {
        address: creds.address.clone(),
        user: creds.remote_user.clone(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_without_a_key_is_a_first_contact() {
        let mut creds = HostCreds {
            address: "10.0.0.1".into(),
            ssh_priv_key: STANDARD.encode("KEY"),
            ..HostCreds::default()
        };
        assert_eq!(pinned(&creds), HostKey::FirstContact);
        creds.host_key = "10.0.0.1 ssh-ed25519 AAAA".into();
        assert_eq!(pinned(&creds), HostKey::Pinned(creds.host_key.clone()));
        assert_eq!(credentials(&creds).unwrap().key, b"KEY");
    }

    #[test]
    fn an_unusable_key_is_named_without_its_content() {
        let creds = HostCreds {
            address: "10.0.0.1".into(),
            ssh_priv_key: "%%secret%%".into(),
            ..HostCreds::default()
        };
        let e = credentials(&creds).unwrap_err().to_string();
        assert!(
            e.contains("not valid base64") && !e.contains("secret"),
            "{e}"
        );
    }
}
