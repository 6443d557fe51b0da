//! The storage service: JSON-RPC methods over the configured store handlers.
//!
//! | method | params | result |
//! |---|---|---|
//! | `save` | `model_type_name`, `model_json_data` (object or list) | the stored record(s) |
//! | `get` | `model_type_name`, `model_json_data` (object with the key, or list) | the record(s); -20000 if missing |
//! | `delete` | as `get` | `null`; -20000 if missing |
//! | `list` | `model_type_name` (`Hosts` or `Host`) | every record of that kind |
//! | `expand` | `model_type_name`, `model_json_data`, `member` (a list of keys), `member_type_name` | `{record, members}`: the record and the records it names (missing ones left out) |
//! | `swap` | `model_type_name`, `expected` (record or `null`), `model_json_data` | the stored record; 409 if what is stored is not `expected` |
//! | `list_store_handlers` | none | `[{name, handler_type, model_types}]` |
//!
//! After each write a notification `notify.storage.<Model>.<created|updated|deleted>`
//! carrying `{event, class, model}` (the model without hidden members) is published;
//! secret models (HostCreds) are never published.

use std::collections::HashSet;
use std::sync::Arc;

use commissaire_bus::{Bus, RpcError, codes};
use commissaire_models::{ModelError, ModelKind};
use commissaire_service::{Methods, Service};
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use crate::params::{ExpandParams, KindParams, RecordParams, SwapParams};
use crate::router::{RoutedHandler, StorageRouter};
use crate::secrets::SecretBox;
use crate::store::{StoreError, Written, list_prefix, record_key};

/// The storage service.
pub struct StorageService {
    router: StorageRouter,
    bus: Option<Bus>,
    secrets: SecretBox,
}

fn model_error(e: ModelError) -> RpcError {
    let data = match e.field() {
        Some(field) => json!({"field": field}),
        None => json!({}),
    };
    RpcError::invalid_request(e.to_string()).with_data(data)
}

fn store_error(e: StoreError) -> RpcError {
    match e {
        StoreError::Unavailable(m) => RpcError::unavailable(m),
        other => RpcError::internal(other.to_string()),
    }
}

fn storable(kind: ModelKind) -> Result<(), RpcError> {
    if kind.is_storable() {
        Ok(())
    } else {
        Err(RpcError::invalid_params(format!(
            "{kind} records are not stored"
        )))
    }
}

impl StorageService {
    /// A service over `router`, publishing notifications on `bus` when
    /// given, sealing secret records with `secrets`.
    pub fn new(router: StorageRouter, bus: Option<Bus>, secrets: SecretBox) -> Self {
        StorageService {
            router,
            bus,
            secrets,
        }
    }

    /// What is written to the store for `record`: secret records are sealed.
    fn for_store(&self, kind: ModelKind, key: &str, record: &Value) -> Value {
        if kind.is_secret() {
            self.secrets.seal(key, record)
        } else {
            record.clone()
        }
    }

    /// Announces a record written: `created` or `updated`.
    async fn notify_written(&self, kind: ModelKind, written: Written, record: &Value) {
        let event = if written == Written::Created {
            "created"
        } else {
            "updated"
        };
        self.notify(kind, event, record).await;
    }

    /// A stored value as a record: secret records are opened.
    fn open_stored(&self, kind: ModelKind, key: &str, stored: Value) -> Result<Value, RpcError> {
        if kind.is_secret() {
            self.secrets
                .open(key, stored)
                .map_err(|e| RpcError::internal(e.to_string()))
        } else {
            Ok(stored)
        }
    }

    /// The handler a record is written to: the one its `source` names, else
    /// the first one claiming its kind.
    fn write_handler(&self, kind: ModelKind, record: &Value) -> Result<&RoutedHandler, RpcError> {
        if let Some(source) = record
            .get("source")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            return self.router.by_name(source).ok_or_else(|| {
                RpcError::invalid_request(format!(
                    "source '{source}' names no configured storage handler"
                ))
                .with_data(json!({"field": "source"}))
            });
        }
        self.router
            .for_kind(kind)
            .ok_or_else(|| RpcError::internal(format!("no storage handler claims {kind} records")))
    }

    /// The handlers to look for a record in: the one named by `source` if
    /// given, else the claiming handler first and then the others (records
    /// owned by another handler through `source`).
    fn read_handlers(
        &self,
        kind: ModelKind,
        record: &Value,
    ) -> Result<Vec<&RoutedHandler>, RpcError> {
        if record
            .get("source")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            return Ok(vec![self.write_handler(kind, record)?]);
        }
        Ok(self.router.claiming_first(kind))
    }

    fn key(kind: ModelKind, record: &Value) -> Result<String, RpcError> {
        let pk = kind.primary_key(record).map_err(model_error)?;
        record_key(kind, &pk)
            .ok_or_else(|| RpcError::invalid_params(format!("{kind} records are not stored")))
    }

    async fn notify(&self, kind: ModelKind, event: &str, record: &Value) {
        if kind.is_secret() {
            return;
        }
        let Some(bus) = &self.bus else { return };
        let body =
            json!({"event": event, "class": kind.name(), "model": kind.safe(record.clone())});
        let key = format!("notify.storage.{kind}.{event}");
        if let Err(e) = bus.publish(&key, &body).await {
            tracing::warn!(%key, error = %e, "could not publish a storage notification");
        }
    }

    async fn save_one(&self, kind: ModelKind, data: Value) -> Result<Value, RpcError> {
        storable(kind)?;
        let record = kind.normalize(data).map_err(model_error)?;
        let key = Self::key(kind, &record)?;
        let handler = self.write_handler(kind, &record)?;
        let stored = self.for_store(kind, &key, &record);
        let written = handler
            .handler
            .put(&key, &stored)
            .await
            .map_err(store_error)?;
        self.notify_written(kind, written, &record).await;
        Ok(record)
    }

    async fn find(
        &self,
        kind: ModelKind,
        data: &Value,
    ) -> Result<(String, &RoutedHandler, Value), RpcError> {
        storable(kind)?;
        let key = Self::key(kind, data)?;
        for handler in self.read_handlers(kind, data)? {
            if let Some(value) = handler.handler.get(&key).await.map_err(store_error)? {
                return Ok((key, handler, value));
            }
        }
        let pk = kind.primary_key(data).unwrap_or_default();
        Err(RpcError::lookup(format!("no {kind} record for '{pk}'")))
    }

    async fn get_one(&self, kind: ModelKind, data: Value) -> Result<Value, RpcError> {
        let (key, _, value) = self.find(kind, &data).await?;
        let value = self.open_stored(kind, &key, value)?;
        kind.normalize(value)
            .map_err(|e| RpcError::internal(format!("stored record {key} is invalid: {e}")))
    }

    async fn delete_one(&self, kind: ModelKind, data: Value) -> Result<Value, RpcError> {
        let (key, handler, _) = self.find(kind, &data).await?;
        if let Some(previous) = handler.handler.delete(&key).await.map_err(store_error)? {
            self.notify(kind, "deleted", &previous).await;
        }
        Ok(Value::Null)
    }

    async fn list(&self, kind: ModelKind) -> Result<Value, RpcError> {
        let item = kind.item_kind().unwrap_or(kind);
        let prefix = list_prefix(item)
            .ok_or_else(|| RpcError::invalid_params(format!("{kind} cannot be listed")))?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for handler in self.router.claiming_first(item) {
            for value in handler.handler.list(&prefix).await.map_err(store_error)? {
                let opened = match item
                    .primary_key(&value)
                    .ok()
                    .and_then(|pk| record_key(item, &pk))
                {
                    Some(key) => self.open_stored(item, &key, value),
                    None => Ok(value),
                };
                let Ok(value) = opened else {
                    tracing::warn!(handler = %handler.name, "skipping a secret record that cannot be opened");
                    continue;
                };
                match item.normalize(value) {
                    Ok(record) => {
                        let pk = item.primary_key(&record).unwrap_or_default();
                        if seen.insert(pk) {
                            out.push(record);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(handler = %handler.name, error = %e, "skipping an invalid stored record")
                    }
                }
            }
        }
        Ok(Value::Array(out))
    }

    async fn swap(&self, kind: ModelKind, expected: Value, data: Value) -> Result<Value, RpcError> {
        storable(kind)?;
        let record = kind.normalize(data).map_err(model_error)?;
        let expected = match expected {
            Value::Null => None,
            other => Some(kind.normalize(other).map_err(model_error)?),
        };
        let key = Self::key(kind, &record)?;
        let handler = self.write_handler(kind, &record)?;
        if kind.is_secret() {
            return self
                .swap_secret(kind, handler, &key, expected, record)
                .await;
        }
        match handler
            .handler
            .compare_and_swap(&key, expected.as_ref(), &record)
            .await
            .map_err(store_error)?
        {
            Ok(written) => {
                self.notify_written(kind, written, &record).await;
                Ok(record)
            }
            Err(stored) => {
                let stored = stored.map(|s| kind.safe(s)).unwrap_or(Value::Null);
                Err(
                    RpcError::conflict(format!("the stored {kind} changed meanwhile"))
                        .with_data(json!({"stored": stored})),
                )
            }
        }
    }

    /// [`Self::swap`] of a secret record: stored sealed (every seal of the
    /// same record differs), so the opened stored record is compared with
    /// `expected`, and the sealed value read is the one the store's own
    /// compare-and-swap expects. A conflict never returns the stored
    /// record.
    async fn swap_secret(
        &self,
        kind: ModelKind,
        handler: &RoutedHandler,
        key: &str,
        expected: Option<Value>,
        record: Value,
    ) -> Result<Value, RpcError> {
        let conflict = || RpcError::conflict(format!("the stored {kind} changed meanwhile"));
        let sealed = handler.handler.get(key).await.map_err(store_error)?;
        let current = match &sealed {
            Some(stored) => Some(
                kind.normalize(self.open_stored(kind, key, stored.clone())?)
                    .map_err(|e| {
                        RpcError::internal(format!("stored record {key} is invalid: {e}"))
                    })?,
            ),
            None => None,
        };
        if current != expected {
            return Err(conflict());
        }
        let new = self.for_store(kind, key, &record);
        match handler
            .handler
            .compare_and_swap(key, sealed.as_ref(), &new)
            .await
            .map_err(store_error)?
        {
            Ok(written) => {
                self.notify_written(kind, written, &record).await;
                Ok(record)
            }
            Err(_) => Err(conflict()),
        }
    }

    /// A record and the records its list member names (e.g. a Cluster and
    /// the Hosts of its `hostset`) in one call; missing members are left out.
    async fn expand(
        &self,
        kind: ModelKind,
        data: Value,
        member: &str,
        member_kind: ModelKind,
    ) -> Result<Value, RpcError> {
        let field = match member_kind {
            ModelKind::Host
            | ModelKind::HostCreds
            | ModelKind::WatcherRecord
            | ModelKind::Investigation => "address",
            _ => "name",
        };
        if member_kind.is_secret() {
            return Err(RpcError::invalid_params(
                "secret records cannot be expanded",
            ));
        }
        let record = self.get_one(kind, data).await?;
        let keys: Vec<String> = match record.get(member) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => {
                return Err(RpcError::invalid_params(format!(
                    "{kind} has no list member '{member}'"
                )));
            }
        };
        let lookups = keys
            .iter()
            .map(|k| self.get_one(member_kind, json!({ field: k })));
        let mut members = Vec::with_capacity(keys.len());
        for found in futures::future::join_all(lookups).await {
            match found {
                Ok(m) => members.push(m),
                Err(e) if e.code == codes::STORAGE_LOOKUP_ERROR => {}
                Err(e) => return Err(e),
            }
        }
        Ok(json!({"record": record, "members": members}))
    }

    /// Each store handler: its name, type, the kinds it stores and its patterns.
    fn store_handlers(&self) -> Value {
        Value::Array(
            self.router
                .handlers()
                .iter()
                .map(|h| {
                    let kinds: Vec<&str> = ModelKind::ALL
                        .iter()
                        .filter(|k| k.is_storable() && h.claims(**k))
                        .map(|k| k.name())
                        .collect();
                    json!({"name": h.name, "handler_type": h.handler.handler_type(), "model_types": kinds, "patterns": h.patterns})
                })
                .collect(),
        )
    }

    /// Applies `one` to a record or to each record of a list, in order
    /// (writes), or all at once when `concurrently` (reads).
    async fn each<'a, F, Fut>(
        &'a self,
        data: Value,
        concurrently: bool,
        one: F,
    ) -> Result<Value, RpcError>
    where
        F: Fn(Value) -> Fut,
        Fut: std::future::Future<Output = Result<Value, RpcError>> + 'a,
    {
        match data {
            Value::Array(items) if concurrently => {
                let results = futures::future::try_join_all(items.into_iter().map(one)).await?;
                Ok(Value::Array(results))
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(one(item).await?);
                }
                Ok(Value::Array(out))
            }
            single => one(single).await,
        }
    }
}

impl Service for StorageService {
    fn name(&self) -> &str {
        "storage"
    }

    fn methods() -> Methods<Self> {
        Methods::new()
            .method("save", |me: Arc<Self>, p: RecordParams| async move {
                let (kind, data) = p.parts()?;
                me.each(data, false, |d| me.save_one(kind, d)).await
            })
            .method("get", |me: Arc<Self>, p: RecordParams| async move {
                let (kind, data) = p.parts()?;
                me.each(data, true, |d| me.get_one(kind, d)).await
            })
            .method("expand", |me: Arc<Self>, p: ExpandParams| async move {
                let (kind, data) = p.record.parts()?;
                me.expand(kind, data, &p.member, p.member_type_name).await
            })
            .method("delete", |me: Arc<Self>, p: RecordParams| async move {
                let (kind, data) = p.parts()?;
                me.each(data, false, |d| me.delete_one(kind, d)).await
            })
            .method("list", |me: Arc<Self>, p: KindParams| async move {
                me.list(p.model_type_name).await
            })
            .method("swap", |me: Arc<Self>, p: SwapParams| async move {
                let (kind, data) = p.record.parts()?;
                me.swap(kind, p.expected, data).await
            })
            .method("list_store_handlers", |me: Arc<Self>, _: IgnoredAny| async move {
                Ok::<_, RpcError>(me.store_handlers())
            })
    }
}

/// Starts the storage service on `bus` with `workers` workers, sealing
/// secrets with an ephemeral key (see [`start_with_secrets`] for a key file).
pub async fn start(
    router: StorageRouter,
    bus: Bus,
    workers: usize,
) -> Result<commissaire_service::ServiceHandle, commissaire_bus::BusError> {
    start_with_secrets(router, SecretBox::ephemeral(), bus, workers).await
}

/// Starts the storage service on `bus` with `workers` workers, sealing
/// secrets with `secrets`.
pub async fn start_with_secrets(
    router: StorageRouter,
    secrets: SecretBox,
    bus: Bus,
    workers: usize,
) -> Result<commissaire_service::ServiceHandle, commissaire_bus::BusError> {
    let service = Arc::new(StorageService::new(router, Some(bus.clone()), secrets));
    commissaire_service::run(service, bus, workers).await
}
