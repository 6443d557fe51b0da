//! `/host/ADDRESS/hostkey`: the SSH host key recorded at first contact, and
//! the operator's explicit acceptance of a new one (a reinstalled host).

use commissaire_models::*;
use serde_json::{Map, Value, json};

use super::input::optional_string;
use super::{Api, Reply, ok, updated_error};
use crate::error::{ApiError, ApiResult};
use crate::extract::Address;

/// What `GET` and `PUT` answer: the key and its fingerprints, never the
/// credentials.
fn host_key_view(creds: &HostCreds) -> Value {
    json!({
        "address": creds.address,
        "host_key": creds.host_key,
        "fingerprints": host_key_fingerprints(&creds.host_key),
        "accept_fingerprint": creds.accept_fingerprint,
        "recorded": !creds.host_key.trim().is_empty(),
    })
}

/// Whether `fp` reads as an OpenSSH SHA-256 fingerprint
/// (`SHA256:` and 43 unpadded base64 characters).
fn is_fingerprint(fp: &str) -> bool {
    fp.strip_prefix("SHA256:").is_some_and(|b64| {
        b64.len() == 43
            && b64
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    })
}

impl Api {
    /// `GET /host/{address}/hostkey`: the host's recorded SSH host key.
    pub async fn get_host_key(&self, address: &Address) -> ApiResult<Reply> {
        let creds = self
            .get_opt::<HostCreds>(json!({"address": address}))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("host '{address}' does not exist")))?;
        ok(host_key_view(&creds))
    }

    /// `PUT /host/{address}/hostkey` (`{}` or `{"fingerprint":
    /// "SHA256:..."}`): forgets the recorded key, so the next connection
    /// records the key the host shows then (only if it has that
    /// fingerprint, when one is given), and makes the watcher check the
    /// host at once.
    pub async fn accept_host_key(
        &self,
        address: &Address,
        body: Map<String, Value>,
    ) -> ApiResult<Reply> {
        if let Some(unknown) = body.keys().find(|k| k.as_str() != "fingerprint") {
            return Err(ApiError::bad_request(format!(
                "unknown member '{unknown}' (known: fingerprint)"
            ))
            .field(unknown));
        }
        let fingerprint = optional_string(&body, "fingerprint")?.unwrap_or_default();
        let fingerprint = fingerprint.trim().to_string();
        if !fingerprint.is_empty() && !is_fingerprint(&fingerprint) {
            return Err(ApiError::bad_request(
                "fingerprint must be an OpenSSH SHA-256 fingerprint (SHA256:<43 base64 characters>, as ssh-keygen -l prints it)",
            )
            .field("fingerprint"));
        }
        let creds = self
            .storage
            .update(json!({"address": address}), |c: &mut HostCreds| {
                c.host_key.clear();
                c.accept_fingerprint = fingerprint.clone();
                Ok(true)
            })
            .await
            .map_err(|e| updated_error(e, &format!("host '{address}'")))?;
        tracing::info!(%address, fingerprint = %fingerprint, "the host's SSH key is to be recorded again");
        // The watcher checks the host at its next round (the record is due).
        if let Some(mut record) = self
            .get_opt::<WatcherRecord>(json!({"address": address}))
            .await?
        {
            record.last_check.clear();
            self.storage.save(&record).await?;
        }
        ok(host_key_view(&creds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_recognised() {
        assert!(is_fingerprint(
            "SHA256:LHDhK3oGRvkiefQnx7OOczTY5Tic/xZ6HcMOc/gmtoM"
        ));
        for bad in [
            "",
            "MD5:ab:cd",
            "SHA256:short",
            "SHA256:LHDhK3oGRvkiefQnx7OOczTY5Tic/xZ6HcMOc/gmto=",
        ] {
            assert!(!is_fingerprint(bad), "{bad}");
        }
    }
}
