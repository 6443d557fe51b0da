//! The typed storage client.

use std::time::Duration;

use commissaire_bus::{Bus, DEFAULT_TIMEOUT};
use commissaire_models::Model;
use serde_json::{Value, json};

use crate::{StorageCallError, retry_while_unavailable};

/// A storage client over a bus.
#[derive(Clone)]
pub struct StorageClient {
    bus: Bus,
    timeout: Duration,
    update_attempts: usize,
    patience: Option<Duration>,
}

/// How many times [`StorageClient::update`] starts over by default.
pub const UPDATE_ATTEMPTS: usize = 16;

impl StorageClient {
    /// A client with the default timeout.
    pub fn new(bus: Bus) -> Self {
        StorageClient {
            bus,
            timeout: DEFAULT_TIMEOUT,
            update_attempts: UPDATE_ATTEMPTS,
            patience: None,
        }
    }

    /// Changes how many times an update starts over while other writers
    /// win the compare-and-swap (default [`UPDATE_ATTEMPTS`]).
    pub fn with_update_attempts(mut self, attempts: usize) -> Self {
        self.update_attempts = attempts.max(1);
        self
    }

    /// Makes every call of this client wait out a storage outage for up to
    /// `within` ([`retry_while_unavailable`]); for daemons doing long work.
    pub fn with_outage_patience(mut self, within: Duration) -> Self {
        self.patience = Some(within);
        self
    }

    /// The same client, failing at once while storage is unavailable.
    pub fn impatient(&self) -> Self {
        StorageClient {
            patience: None,
            ..self.clone()
        }
    }

    pub(crate) fn update_attempts(&self) -> usize {
        self.update_attempts
    }

    /// Changes the per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, StorageCallError> {
        let once = || async {
            self.bus
                .request(&format!("storage.{method}"), params.clone(), self.timeout)
                .await
                .map_err(StorageCallError::from)
        };
        match self.patience {
            Some(within) => retry_while_unavailable(method, within, once).await,
            None => once().await,
        }
    }

    fn decode<M: Model>(value: Value) -> Result<M, StorageCallError> {
        M::from_json(value).map_err(|e| StorageCallError::Decode(e.to_string()))
    }

    /// Reads the record of kind `model` whose key members are set in `key`,
    /// as raw JSON (for records that are not a [`Model`]).
    pub async fn get_value(&self, model: &str, key: Value) -> Result<Value, StorageCallError> {
        self.call(
            "get",
            json!({"model_type_name": model, "model_json_data": key}),
        )
        .await
    }

    /// Reads the record whose key members are set in `key`.
    pub async fn get<M: Model>(&self, key: Value) -> Result<M, StorageCallError> {
        let v = self
            .call(
                "get",
                json!({"model_type_name": M::NAME, "model_json_data": key}),
            )
            .await?;
        Self::decode(v)
    }

    /// Writes a record; returns it as stored.
    pub async fn save<M: Model>(&self, model: &M) -> Result<M, StorageCallError> {
        let v = self
            .call(
                "save",
                json!({"model_type_name": M::NAME, "model_json_data": model.to_json()}),
            )
            .await?;
        Self::decode(v)
    }

    /// Deletes the record whose key members are set in `key`.
    pub async fn delete<M: Model>(&self, key: Value) -> Result<(), StorageCallError> {
        self.call(
            "delete",
            json!({"model_type_name": M::NAME, "model_json_data": key}),
        )
        .await?;
        Ok(())
    }

    /// Every record of a kind.
    pub async fn list<M: Model>(&self) -> Result<Vec<M>, StorageCallError> {
        let v = self
            .call("list", json!({"model_type_name": M::NAME}))
            .await?;
        match v {
            Value::Array(items) => items.into_iter().map(Self::decode).collect(),
            other => Err(StorageCallError::Decode(format!(
                "expected a list, got {other}"
            ))),
        }
    }

    /// Writes the record `new` of kind `model` (raw JSON, for records that
    /// are not a [`Model`], such as clusterexec's operation records) only
    /// if what is stored is `expected` (`null`: nothing); returns what was
    /// stored. A lost race is [`StorageCallError::Conflict`], with what is
    /// stored now.
    pub async fn swap_value(
        &self,
        model: &str,
        expected: &Value,
        new: Value,
    ) -> Result<Value, StorageCallError> {
        self.call(
            "swap",
            json!({"model_type_name": model, "expected": expected, "model_json_data": new}),
        )
        .await
    }

    /// Writes `new` only if what is stored is `expected` (`None`: nothing).
    pub async fn swap<M: Model>(
        &self,
        expected: Option<&M>,
        new: &M,
    ) -> Result<M, StorageCallError> {
        let v = self
            .call(
                "swap",
                json!({"model_type_name": M::NAME, "expected": expected.map(Model::to_json), "model_json_data": new.to_json()}),
            )
            .await?;
        Self::decode(v)
    }
}
