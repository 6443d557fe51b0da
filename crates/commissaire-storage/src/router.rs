//! Which store handler keeps which model: the `storage_handlers` configuration.

use std::path::PathBuf;
use std::sync::Arc;

use commissaire_models::ModelKind;
#[cfg(feature = "etcd")]
use commissaire_service::EtcdSettings;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde_json::Value;

#[cfg(feature = "etcd")]
use crate::etcd::EtcdStore;
use crate::redb_store::RedbStore;
use crate::store::StoreHandler;

/// Why the `storage_handlers` configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The configuration is malformed.
    #[error("storage_handlers: {0}")]
    Config(String),
    /// A handler could not be opened.
    #[error("storage handler '{name}': {reason}")]
    Open {
        /// Handler name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// One configured handler.
pub struct RoutedHandler {
    /// Its unique name (what a record's `source` refers to).
    pub name: String,
    /// The handler.
    pub handler: Arc<dyn StoreHandler>,
    /// The model name patterns it claims.
    pub patterns: Vec<String>,
    matcher: GlobSet,
}

impl RoutedHandler {
    /// Whether this handler claims `kind`.
    pub fn claims(&self, kind: ModelKind) -> bool {
        self.matcher.is_match(kind.name())
    }
}

/// The configured handlers, in configuration order.
#[derive(Default)]
pub struct StorageRouter {
    handlers: Vec<RoutedHandler>,
}

impl StorageRouter {
    /// A router with no handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a handler claiming the models matching `patterns` (globs such as `*`, `Host*`).
    pub fn add(
        &mut self,
        name: &str,
        handler: Arc<dyn StoreHandler>,
        patterns: &[String],
    ) -> Result<(), RouterError> {
        if self.by_name(name).is_some() {
            return Err(RouterError::Config(format!(
                "two handlers are named '{name}'"
            )));
        }
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            builder.add(
                Glob::new(p)
                    .map_err(|e| RouterError::Config(format!("bad model pattern '{p}': {e}")))?,
            );
        }
        let matcher = builder
            .build()
            .map_err(|e| RouterError::Config(e.to_string()))?;
        self.handlers.push(RoutedHandler {
            name: name.to_string(),
            handler,
            patterns: patterns.to_vec(),
            matcher,
        });
        Ok(())
    }

    /// Every handler, those claiming `kind` first (a read tries where
    /// the record should be, then anywhere it may have been written).
    pub fn claiming_first(&self, kind: ModelKind) -> Vec<&RoutedHandler> {
        let mut order: Vec<&RoutedHandler> =
            self.handlers().iter().filter(|h| h.claims(kind)).collect();
        order.extend(self.handlers().iter().filter(|h| !h.claims(kind)));
        order
    }

    /// Every handler.
    pub fn handlers(&self) -> &[RoutedHandler] {
        &self.handlers
    }

    /// The handler named `name`.
    pub fn by_name(&self, name: &str) -> Option<&RoutedHandler> {
        self.handlers.iter().find(|h| h.name == name)
    }

    /// The first handler claiming `kind`.
    pub fn for_kind(&self, kind: ModelKind) -> Option<&RoutedHandler> {
        self.handlers.iter().find(|h| h.claims(kind))
    }

    /// Builds the handlers described by a `storage_handlers` member (an
    /// object or a list of objects with `type`, optional `name` and `models`,
    /// and handler settings). `None` means the default: one etcd handler at
    /// `http://127.0.0.1:2379` claiming every model.
    pub async fn from_config(config: Option<&Value>) -> Result<Self, RouterError> {
        let default = serde_json::json!([{"type": "etcd", "models": ["*"]}]);
        let entries = match config.unwrap_or(&default) {
            Value::Array(list) => list.clone(),
            obj @ Value::Object(_) => vec![obj.clone()],
            _ => {
                return Err(RouterError::Config(
                    "must be an object or a list of objects".into(),
                ));
            }
        };
        if entries.is_empty() {
            return Err(RouterError::Config("no handler configured".into()));
        }
        let mut router = StorageRouter::new();
        for entry in &entries {
            let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_string);
            let handler_type = text("type")
                .ok_or_else(|| RouterError::Config("every handler needs a 'type'".into()))?;
            let short_type = handler_type
                .rsplit('.')
                .next()
                .unwrap_or(&handler_type)
                .to_string();
            let name = text("name").unwrap_or_else(|| short_type.clone());
            let patterns: Vec<String> = match entry.get("models") {
                None => vec!["*".into()],
                Some(Value::Array(models)) => models
                    .iter()
                    .map(|m| m.as_str().map(str::to_string))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        RouterError::Config(format!("{name}: 'models' must be a list of strings"))
                    })?,
                Some(_) => {
                    return Err(RouterError::Config(format!(
                        "{name}: 'models' must be a list of strings"
                    )));
                }
            };
            let open_error = |reason: String| RouterError::Open {
                name: name.clone(),
                reason,
            };
            let handler: Arc<dyn StoreHandler> = match short_type.as_str() {
                #[cfg(feature = "etcd")]
                "etcd" => {
                    let settings = etcd_settings(entry);
                    let client = crate::etcd::connect(&settings).await.map_err(open_error)?;
                    let prefix = text("prefix").unwrap_or_else(|| "/commissaire/".into());
                    Arc::new(EtcdStore::with_prefix(client, &prefix))
                }
                #[cfg(not(feature = "etcd"))]
                "etcd" => {
                    return Err(open_error(
                        "this build has no etcd support (commissaire-storage's `etcd` feature is off)"
                            .into(),
                    ));
                }
                "redb" => {
                    let path = text("path")
                        .ok_or_else(|| open_error("a redb handler needs a 'path'".into()))?;
                    Arc::new(
                        RedbStore::open(&PathBuf::from(path))
                            .map_err(|e| open_error(e.to_string()))?,
                    )
                }
                other => {
                    return Err(RouterError::Config(format!(
                        "unknown handler type '{other}' (known: etcd, redb)"
                    )));
                }
            };
            router.add(&name, handler, &patterns)?;
        }
        Ok(router)
    }
}

#[cfg(feature = "etcd")]
/// etcd settings of a handler entry: `server_url` (or `endpoints`),
/// `certificate_ca_path`, `certificate_path`, `certificate_key_path`,
/// `username`, `password`.
fn etcd_settings(entry: &Value) -> EtcdSettings {
    let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_string);
    let endpoints = match entry.get("endpoints") {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => text("server_url")
            .unwrap_or_else(|| "http://127.0.0.1:2379".into())
            .split(',')
            .map(|s| s.trim().to_string())
            .collect(),
    };
    EtcdSettings {
        endpoints,
        ca_cert: text("certificate_ca_path").map(PathBuf::from),
        cert: text("certificate_path").map(PathBuf::from),
        key: text("certificate_key_path").map(PathBuf::from),
        username: text("username"),
        password: text("password"),
    }
}
