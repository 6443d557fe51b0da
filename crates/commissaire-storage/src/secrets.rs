//! Secrets at rest (the docs' CPD-101, without Custodia): secret records
//! (HostCreds) are sealed with XChaCha20-Poly1305 under a master key file
//! before they reach any store, and opened when read. The record's key is
//! authenticated too, so a sealed value copied to another record fails to open.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::{Value, json};

/// The algorithm name written next to sealed values.
pub const ALGORITHM: &str = "XChaCha20-Poly1305";

const NONCE_LEN: usize = 24;

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The master key file is unusable.
    #[error("master key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A sealed value does not open (wrong master key, or tampered).
    #[error("the sealed secret at {0} cannot be opened (wrong master key or tampered data)")]
    Open(String),
}

/// Seals and opens secret records with the master key.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    path: PathBuf,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SecretBox {
    /// Loads the 32-byte master key at `path`, creating it (random, mode 0600,
    /// parent directories 0700) if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        let err = |reason: String| SecretError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        if !path.exists() {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| err(e.to_string()))?;
            }
            let key = XChaCha20Poly1305::generate_key(&mut OsRng);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| err(format!("cannot create: {e}")))?;
            file.write_all(key.as_slice())
                .map_err(|e| err(e.to_string()))?;
            file.sync_all().map_err(|e| err(e.to_string()))?;
            tracing::info!(path = %path.display(), "created a new master key for secrets");
        }
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(err(
                "must not be readable by group or others (chmod 600)".into()
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        if bytes.len() != 32 {
            return Err(err(format!(
                "must hold exactly 32 bytes, holds {}",
                bytes.len()
            )));
        }
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|e| err(e.to_string()))?;
        Ok(SecretBox {
            cipher,
            path: path.to_path_buf(),
        })
    }

    /// A box with a random key that lives only in this process: secrets stay
    /// encrypted at rest but cannot be read after a restart (tests, or a
    /// storage service started without a key file).
    pub fn ephemeral() -> Self {
        SecretBox {
            cipher: XChaCha20Poly1305::new(&XChaCha20Poly1305::generate_key(&mut OsRng)),
            path: PathBuf::from("<ephemeral>"),
        }
    }

    /// Seals `record` stored at `key`: `{address, sealed, algorithm}` (the
    /// address stays readable so records can be listed and deleted).
    pub fn seal(&self, key: &str, record: &Value) -> Value {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let plaintext = record.to_string();
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: key.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption does not fail");
        let mut blob = nonce.to_vec();
        blob.extend(sealed);
        json!({
            "address": record.get("address").cloned().unwrap_or(Value::Null),
            "sealed": base64::engine::general_purpose::STANDARD.encode(blob),
            "algorithm": ALGORITHM,
        })
    }

    /// Opens a value read from `key`. Values that were never sealed (written
    /// before encryption was introduced) are returned as they are.
    pub fn open(&self, key: &str, stored: Value) -> Result<Value, SecretError> {
        let Some(sealed) = stored.get("sealed").and_then(Value::as_str) else {
            return Ok(stored);
        };
        let blob = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| SecretError::Open(key.to_string()))?;
        if blob.len() <= NONCE_LEN {
            return Err(SecretError::Open(key.to_string()));
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let plaintext = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: key.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Open(key.to_string()))?;
        serde_json::from_slice(&plaintext).map_err(|_| SecretError::Open(key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/secrets.key");
        let sb = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let record =
            json!({"address": "10.0.0.1", "ssh_priv_key": "S3CR3T", "remote_user": "root"});
        let sealed = sb.seal("hostcreds/10.0.0.1", &record);
        assert!(!sealed.to_string().contains("S3CR3T"));
        assert_eq!(sealed["address"], "10.0.0.1");
        assert_eq!(
            sb.open("hostcreds/10.0.0.1", sealed.clone()).unwrap(),
            record
        );
        // Another record's key does not open it.
        assert!(sb.open("hostcreds/10.0.0.2", sealed.clone()).is_err());
        // Tampering is detected.
        let mut bad = sealed.clone();
        let mut blob = base64::engine::general_purpose::STANDARD
            .decode(bad["sealed"].as_str().unwrap())
            .unwrap();
        *blob.last_mut().unwrap() ^= 1;
        bad["sealed"] = json!(base64::engine::general_purpose::STANDARD.encode(blob));
        assert!(sb.open("hostcreds/10.0.0.1", bad).is_err());
        // The same file gives the same key; another key file does not open it.
        let again = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(
            again.open("hostcreds/10.0.0.1", sealed.clone()).unwrap(),
            record
        );
        let other = SecretBox::load_or_create(&dir.path().join("other.key")).unwrap();
        assert!(other.open("hostcreds/10.0.0.1", sealed).is_err());
        // Loose permissions are refused.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(SecretBox::load_or_create(&path).is_err());
    }
}
