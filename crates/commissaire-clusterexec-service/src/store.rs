//! Reading and compare-and-swapping operation records through the storage service.

use std::time::Duration;

use commissaire_bus::{Bus, codes};
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
    bus: Bus,
    timeout: Duration,
}

impl OpStore {
    pub fn new(bus: Bus, timeout: Duration) -> Self {
        OpStore { bus, timeout }
    }

    fn stored(kind: OpKind, raw: Value) -> Result<Stored, ExecError> {
        let rec = OpRecord::from_value(kind, raw.clone())?;
        Ok(Stored { raw, rec })
    }

    /// The record of `kind` for cluster `name`, if there is one.
    pub async fn get(&self, kind: OpKind, name: &str) -> Result<Option<Stored>, ExecError> {
        let params =
            json!({"model_type_name": kind.model_name(), "model_json_data": {"name": name}});
        match self.bus.request("storage.get", params, self.timeout).await {
            Ok(raw) => Ok(Some(Self::stored(kind, raw)?)),
            Err(e)
                if e.rpc()
                    .is_some_and(|r| r.code == codes::STORAGE_LOOKUP_ERROR) =>
            {
                Ok(None)
            }
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
        let params = json!({"model_type_name": kind.model_name(), "expected": expected,
            "model_json_data": new.to_value(kind)});
        match self.bus.request("storage.swap", params, self.timeout).await {
            Ok(raw) => Self::stored(kind, raw).map_err(SwapError::Other),
            Err(e) => match e.rpc() {
                Some(r) if r.code == codes::CONFLICT => {
                    let stored = r
                        .data
                        .as_ref()
                        .and_then(|d| d.get("stored"))
                        .cloned()
                        .filter(|v| !v.is_null());
                    Err(SwapError::Conflict(stored))
                }
                _ => Err(SwapError::Other(e.into())),
            },
        }
    }
}
