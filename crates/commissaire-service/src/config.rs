//! Service configuration: a JSON document from `/etc/commissaire/<service>.conf`,
//! `-c FILE`, or etcd key `/commissaire/config/<service>` when `ETCD_MACHINES` is set.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::etcd::{EtcdError, EtcdSettings};

/// Where service configuration files live by default.
pub const CONFIG_DIR: &str = "/etc/commissaire";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The document is not a JSON object.
    #[error("configuration {origin} is not a valid JSON object: {reason}")]
    Parse {
        /// File path or etcd key.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A member is unknown or has the wrong type.
    #[error(transparent)]
    Member(#[from] crate::MemberError),
    /// etcd could not be read.
    #[error("reading {key} from etcd: {source}")]
    Etcd {
        /// The key.
        key: String,
        /// Why.
        source: EtcdError,
    },
}

/// The default configuration file of a service.
pub fn default_config_path(service: &str) -> PathBuf {
    Path::new(CONFIG_DIR).join(format!("{service}.conf"))
}

/// The etcd key holding a service's configuration.
pub fn etcd_config_key(service: &str) -> String {
    format!("/commissaire/config/{service}")
}

fn parse(origin: String, text: &[u8]) -> Result<Map<String, Value>, ConfigError> {
    match serde_json::from_slice::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ConfigError::Parse {
            origin,
            reason: "expected a JSON object".into(),
        }),
        Err(e) => Err(ConfigError::Parse {
            origin,
            reason: e.to_string(),
        }),
    }
}

/// Loads a service's configuration.
///
/// With `ETCD_MACHINES` set (`etcd` given), the document at
/// `/commissaire/config/<service>` is read (a missing key means no settings).
/// Otherwise `file` is read, which must exist when given explicitly; the
/// default file may be absent.
pub async fn load(
    service: &str,
    file: Option<&Path>,
    etcd: Option<&EtcdSettings>,
) -> Result<Map<String, Value>, ConfigError> {
    if let Some(settings) = etcd {
        let key = etcd_config_key(service);
        let value = settings
            .read(&key)
            .await
            .map_err(|source| ConfigError::Etcd {
                key: key.clone(),
                source,
            })?;
        return match value {
            Some(value) => parse(format!("etcd key {key}"), &value),
            None => {
                tracing::info!(%key, "no configuration in etcd; using defaults");
                Ok(Map::new())
            }
        };
    }
    let (path, required) = match file {
        Some(p) => (p.to_path_buf(), true),
        None => (default_config_path(service), false),
    };
    match std::fs::read(&path) {
        Ok(text) => parse(path.display().to_string(), &text),
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(source) => Err(ConfigError::Read { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_config_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("storage.conf");
        std::fs::write(&path, r#"{"bus_uri": "amqp://x", "debug": true}"#).unwrap();
        let cfg = load("storage", Some(&path), None).await.unwrap();
        assert_eq!(cfg["bus_uri"], "amqp://x");
        std::fs::write(&path, "[1]").unwrap();
        assert!(matches!(
            load("storage", Some(&path), None).await,
            Err(ConfigError::Parse { .. })
        ));
        std::fs::write(&path, "{oops").unwrap();
        assert!(matches!(
            load("storage", Some(&path), None).await,
            Err(ConfigError::Parse { .. })
        ));
        let missing = dir.path().join("missing.conf");
        assert!(matches!(
            load("storage", Some(&missing), None).await,
            Err(ConfigError::Read { .. })
        ));
        assert_eq!(
            default_config_path("watcher"),
            PathBuf::from("/etc/commissaire/watcher.conf")
        );
    }
}
