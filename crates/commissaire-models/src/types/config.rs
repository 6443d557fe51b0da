//! Network and container manager configurations.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ContainerManagerType, NetworkType};
use crate::{Model, ModelError, check_name};

/// A network configuration (`/api/v0/network/{NAME}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Network {
    /// Name of the network.
    pub name: String,
    /// How flannel is configured.
    #[serde(rename = "type")]
    pub kind: NetworkType,
    /// Type-specific options.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ContainerManagerConfig {
    /// Name of the configuration.
    pub name: String,
    /// Kind of manager.
    #[serde(rename = "type")]
    pub kind: ContainerManagerType,
    /// Type-specific options (`server_url`, `token`, ...).
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
}
