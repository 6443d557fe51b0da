//! Network and container manager configurations.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ContainerManagerType, NetworkType};
use crate::{Model, ModelError, check_name};

/// A network configuration (`/api/v0/network/{NAME}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(default)]
pub struct Network {
    /// Name of the network.
    pub name: String,
    /// How flannel is configured.
    #[serde(rename = "type")]
    pub kind: NetworkType,
    /// Type-specific options.
    #[schema(value_type = Object)]
    pub options: Map<String, Value>,
}

impl Network {
    /// The network every installation starts with: `default`, `flannel_etcd`.
    pub fn default_network() -> Network {
        Network {
            name: "default".into(),
            kind: NetworkType::FlannelEtcd,
            options: Map::new(),
        }
    }
}

impl Model for Network {
    const NAME: &'static str = "Network";
    /// The record with its secret options masked ([`mask_secret_options`]).
    fn to_safe_json(&self) -> Value {
        crate::ModelKind::Network.safe(self.to_json())
    }
    fn primary_key(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), ModelError> {
        check_name(Self::NAME, "name", &self.name)?;
        if self.kind == NetworkType::FlannelServer {
            match self.options.get("address") {
                Some(Value::String(a)) if a.contains(':') => {}
                _ => {
                    return Err(ModelError::invalid(
                        Self::NAME,
                        "options.address",
                        "flannel_server networks need options.address as 'host:port'",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A container manager configuration (`/api/v0/containermanager/{NAME}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(default)]
pub struct ContainerManagerConfig {
    /// Name of the configuration.
    pub name: String,
    /// Kind of manager.
    #[serde(rename = "type")]
    pub kind: ContainerManagerType,
    /// Type-specific options (`server_url`, `token`, ...).
    #[schema(value_type = Object)]
    pub options: Map<String, Value>,
}

impl Model for ContainerManagerConfig {
    const NAME: &'static str = "ContainerManagerConfig";
    fn primary_key(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), ModelError> {
        check_name(Self::NAME, "name", &self.name)
    }
    /// The record with its secret options masked ([`mask_secret_options`]).
    fn to_safe_json(&self) -> Value {
        crate::ModelKind::ContainerManagerConfig.safe(self.to_json())
    }
}

/// What a secret option's value is shown as.
pub const MASKED: &str = "********";

/// Whether an option holds a secret (a token, password, secret or key, not
/// a path to one): its value is never shown.
pub fn is_secret_option(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    if n.ends_with("_path") || n.ends_with("_file") || n.ends_with("_url") {
        return false;
    }
    ["token", "password", "secret", "passphrase"]
        .iter()
        .any(|s| n.contains(s))
        || n == "key"
        || n.ends_with("_key")
}

/// Masks the values of the secret options ([`is_secret_option`]), at any depth.
pub fn mask_secret_options(options: &mut Map<String, Value>) {
    for (name, value) in options.iter_mut() {
        match value {
            Value::Object(inner) => mask_secret_options(inner),
            v if is_secret_option(name) && !v.is_null() => *v = Value::String(MASKED.into()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_options_are_masked_and_paths_are_not() {
        let cm = ContainerManagerConfig {
            name: "k".into(),
            kind: ContainerManagerType::Kubernetes,
            options: json!({"server_url": "https://k:6443", "token": "t0p", "client_key": "k3y",
                "certificate_key_path": "/etc/k.pem", "auth": {"password": "pw"}})
            .as_object()
            .unwrap()
            .clone(),
        };
        let shown = cm.to_safe_json();
        assert_eq!(
            shown["options"],
            json!({"server_url": "https://k:6443", "token": MASKED, "client_key": MASKED,
                "certificate_key_path": "/etc/k.pem", "auth": {"password": MASKED}})
        );
        assert_eq!(cm.to_json()["options"]["token"], "t0p", "stored as given");
        let announced = crate::ModelKind::ContainerManagerConfig.safe(cm.to_json());
        assert_eq!(
            announced["options"]["token"], MASKED,
            "storage notifications carry no secret"
        );
    }
}
