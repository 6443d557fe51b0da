//! Typed calls to the storage service over the bus.

use std::time::Duration;

use commissaire_bus::{Bus, BusError, DEFAULT_TIMEOUT, codes};
use commissaire_models::Model;
use serde_json::{Value, json};

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageCallError {
    /// No such record.
    #[error("{0}")]
    NotFound(String),
    /// The bus or the service failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The service's answer is not the expected model.
    #[error("unexpected answer from storage: {0}")]
    Decode(String),
}

impl StorageCallError {
    /// Whether a compare-and-swap lost: what is stored is not what the
    /// caller expected.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StorageCallError::Bus(e) if e.rpc().is_some_and(|r| r.code == codes::CONFLICT))
    }

    /// Whether storage is unavailable right now (the bus, the storage
    /// service or its store is down): the same call may succeed later.
    /// A time limit is not one: the call may have been carried out.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageCallError::Bus(b)
            if b.is_unavailable() || b.rpc().is_some_and(|r| r.code == codes::UNAVAILABLE))
    }

    fn from_bus(e: BusError) -> Self {
        match e.rpc() {
            Some(rpc) if rpc.code == codes::STORAGE_LOOKUP_ERROR => {
                StorageCallError::NotFound(rpc.message.clone())
            }
            _ => StorageCallError::Bus(e),
        }
    }
}

/// Runs a storage call again and again while storage is unavailable
/// ([`StorageCallError::is_unavailable`]), for up to `within`, pausing
/// 200 ms, then twice as long each time, up to 5 s; each retry is logged
/// with `what` ("read the host"). Daemons doing long work use it so that
/// an outage of storage, the bus or a store member delays the work
/// instead of failing it.
pub async fn retry_while_unavailable<T, F, Fut>(
    what: &str,
    within: Duration,
    mut call: F,
) -> Result<T, StorageCallError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StorageCallError>>,
{
    let deadline = tokio::time::Instant::now() + within;
    let mut pause = Duration::from_millis(200);
    loop {
        match call().await {
            Err(e) if e.is_unavailable() && tokio::time::Instant::now() < deadline => {
                tracing::warn!(what, error = %e, retry_in = ?pause, "storage unavailable; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// A storage client over a bus.
#[derive(Clone)]
pub struct StorageClient {
    bus: Bus,
    timeout: Duration,
}

impl StorageClient {
    /// A client with the default timeout.
    pub fn new(bus: Bus) -> Self {
        StorageClient {
            bus,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Changes the per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, StorageCallError> {
        self.bus
            .request(&format!("storage.{method}"), params, self.timeout)
            .await
            .map_err(StorageCallError::from_bus)
    }

    fn decode<M: Model>(value: Value) -> Result<M, StorageCallError> {
        M::from_json(value).map_err(|e| StorageCallError::Decode(e.to_string()))
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

    /// Reads the record at `key`, applies `change` and writes it back by
    /// compare-and-swap, starting over (at most `attempts` times) while
    /// other writers get there first. `change` returns `false` to leave the
    /// record as it is (then it is returned unwritten). When every attempt
    /// lost, the last conflict is returned ([`StorageCallError::is_conflict`]).
    pub async fn update<M: Model + Clone>(
        &self,
        key: Value,
        attempts: usize,
        mut change: impl FnMut(&mut M) -> bool,
    ) -> Result<M, StorageCallError> {
        let mut last = None;
        for _ in 0..attempts.max(1) {
            let current: M = self.get(key.clone()).await?;
            let mut next = current.clone();
            if !change(&mut next) {
                return Ok(current);
            }
            match self.swap(Some(&current), &next).await {
                Ok(saved) => return Ok(saved),
                Err(e) if e.is_conflict() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }
}
