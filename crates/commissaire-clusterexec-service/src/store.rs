//! Reading and compare-and-swapping operation records through the storage service.

use std::time::Duration;

use commissaire_bus::Bus;
use commissaire_storage_client::{StorageCallError, StorageClient, UpdateError};
use serde_json::{Value, json};

use crate::ExecError;
use crate::record::{OpKind, OpRecord};

/// A record as stored (the exact JSON, needed as `expected` of the next
/// swap) and its parsed view.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub raw: Value,
    pub rec: OpRecord,
}

/// Why a swap did not write.
#[derive(Debug)]
pub(crate) enum SwapError {
    /// The stored record is not the expected one; carries what is stored (`None`: nothing).
    Conflict(Option<Value>),
    /// Anything else (bus down, timeout, invalid record).
    Other(ExecError),
}

/// Operation records over the bus.
#[derive(Clone)]
pub(crate) struct OpStore {
    storage: StorageClient,
}

impl OpStore {
    pub fn new(bus: Bus, timeout: Duration) -> Self {
        OpStore {
            storage: StorageClient::new(bus).with_timeout(timeout),
        }
    }

    fn stored(kind: OpKind, raw: Value) -> Result<Stored, ExecError> {
        let rec = OpRecord::from_value(kind, raw.clone())?;
        Ok(Stored { raw, rec })
    }

    /// The record of `kind` for cluster `name`, if there is one.
    pub async fn get(&self, kind: OpKind, name: &str) -> Result<Option<Stored>, ExecError> {
        match self
            .storage
            .get_value(kind.model_name(), json!({"name": name}))
            .await
        {
            Ok(raw) => Ok(Some(Self::stored(kind, raw)?)),
            Err(StorageCallError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `new` if `expected` is what is stored.
    pub async fn swap(
        &self,
        kind: OpKind,
        expected: &Value,
        new: &OpRecord,
    ) -> Result<Stored, SwapError> {
        match self
            .storage
            .swap_value(kind.model_name(), expected, new.to_value(kind))
            .await
        {
            Ok(raw) => Self::stored(kind, raw).map_err(SwapError::Other),
            Err(StorageCallError::Conflict { stored, .. }) => Err(SwapError::Conflict(stored)),
            Err(e) => Err(SwapError::Other(e.into())),
        }
    }

    /// Changes the record of `kind` for cluster `name` by compare-and-swap
    /// ([`StorageClient::upsert_value`], `attempts` times at most): `change`
    /// sees the record (`None`: there is none) and returns the one to
    /// write, or why it leaves it alone (`Ok(Err(why))`, also when other
    /// writers kept winning).
    pub async fn update(
        &self,
        kind: OpKind,
        name: &str,
        attempts: usize,
        mut change: impl FnMut(Option<&OpRecord>) -> Result<OpRecord, String>,
    ) -> Result<Result<Stored, String>, ExecError> {
        enum Refusal {
            Declined(String),
            Invalid(ExecError),
        }
        let updated = self
            .storage
            .clone()
            .with_update_attempts(attempts)
            .upsert_value(kind.model_name(), json!({"name": name}), |raw| {
                let current = raw
                    .map(|raw| OpRecord::from_value(kind, raw.clone()))
                    .transpose()
                    .map_err(Refusal::Invalid)?;
                let next = change(current.as_ref()).map_err(Refusal::Declined)?;
                Ok(Some(next.to_value(kind)))
            })
            .await;
        match updated {
            Ok(raw) => Ok(Ok(Self::stored(kind, raw.unwrap_or_default())?)),
            Err(UpdateError::Refused(Refusal::Declined(why))) => Ok(Err(why)),
            Err(UpdateError::Refused(Refusal::Invalid(e))) => Err(e),
            Err(e) if e.is_conflict() => Ok(Err("the record kept changing".into())),
            Err(UpdateError::Storage(e)) => Err(e.into()),
        }
    }
}
