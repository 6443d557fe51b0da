//! The one read-modify-write loop: read a record, change it, write it back
//! by compare-and-swap, start over when another writer got there first.
//!
//! Every read-modify-write of a shared record in the server and the
//! daemons goes through here (Invariant "one CAS loop" of
//! `ARCHITECTURE.md`), so none can lose a concurrent writer's change.

use commissaire_models::Model;
use serde_json::Value;

use crate::{StorageCallError, StorageClient};

/// Why an update did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError<E> {
    /// The change refused the record as it is (its own error).
    #[error("{0}")]
    Refused(E),
    /// Storage failed; [`StorageCallError::Conflict`] when other writers
    /// won every attempt, [`StorageCallError::NotFound`] when there is no
    /// record to update.
    #[error(transparent)]
    Storage(#[from] StorageCallError),
}

impl<E> UpdateError<E> {
    /// Whether other writers won every attempt.
    pub fn is_conflict(&self) -> bool {
        matches!(self, UpdateError::Storage(e) if e.is_conflict())
    }
}

/// An update whose change cannot refuse fails only in storage.
impl From<UpdateError<std::convert::Infallible>> for StorageCallError {
    fn from(e: UpdateError<std::convert::Infallible>) -> Self {
        match e {
            UpdateError::Storage(e) => e,
            UpdateError::Refused(never) => match never {},
        }
    }
}

impl StorageClient {
    /// Reads the raw record of kind `model` at `key` (`None` when there is
    /// none), lets `change` decide what to write (`Some`: this record;
    /// `None`: leave it as it is) and writes it by compare-and-swap,
    /// starting over with a fresh read while other writers get there
    /// first, up to [`StorageClient::with_update_attempts`] times. Returns
    /// the record as stored afterwards.
    pub async fn upsert_value<E>(
        &self,
        model: &str,
        key: Value,
        mut change: impl FnMut(Option<&Value>) -> Result<Option<Value>, E>,
    ) -> Result<Option<Value>, UpdateError<E>> {
        let mut lost = None;
        for _ in 0..self.update_attempts() {
            let current = match self.get_value(model, key.clone()).await {
                Ok(v) => Some(v),
                Err(StorageCallError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            };
            let Some(next) = change(current.as_ref()).map_err(UpdateError::Refused)? else {
                return Ok(current);
            };
            let expected = current.unwrap_or(Value::Null);
            match self.swap_value(model, &expected, next).await {
                Ok(saved) => return Ok(Some(saved)),
                Err(e) if e.is_conflict() => lost = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(lost.expect("at least one attempt").into())
    }

    /// [`StorageClient::upsert_value`] for a model: `change` sees the record
    /// (`None`: there is none) and returns the one to write (`None`: no
    /// write).
    pub async fn upsert<M: Model, E>(
        &self,
        key: Value,
        mut change: impl FnMut(Option<&M>) -> Result<Option<M>, E>,
    ) -> Result<Option<M>, UpdateError<E>> {
        let mut undecodable = None;
        let saved = self
            .upsert_value(M::NAME, key, |current| {
                let current = match current.cloned().map(M::from_json).transpose() {
                    Ok(c) => c,
                    Err(e) => {
                        undecodable = Some(StorageCallError::Decode(e.to_string()));
                        return Ok(None);
                    }
                };
                Ok(change(current.as_ref())
                    .map_err(UpdateError::Refused)?
                    .map(|m| m.to_json()))
            })
            .await
            .map_err(|e| match e {
                UpdateError::Refused(UpdateError::Refused(e)) => UpdateError::Refused(e),
                UpdateError::Refused(UpdateError::Storage(e)) | UpdateError::Storage(e) => {
                    UpdateError::Storage(e)
                }
            })?;
        if let Some(e) = undecodable {
            return Err(e.into());
        }
        saved
            .map(|v| M::from_json(v).map_err(|e| StorageCallError::Decode(e.to_string())))
            .transpose()
            .map_err(UpdateError::from)
    }

    /// Changes the record at `key` in place: `change` returns `Ok(false)`
    /// to leave it as it is (it is returned unwritten) or an error to
    /// refuse. No record is [`StorageCallError::NotFound`].
    pub async fn update<M: Model, E>(
        &self,
        key: Value,
        mut change: impl FnMut(&mut M) -> Result<bool, E>,
    ) -> Result<M, UpdateError<E>> {
        let missing = key.clone();
        self.upsert(key, |current: Option<&M>| {
            let Some(current) = current else {
                return Ok(None);
            };
            let mut next = current.clone();
            Ok(change(&mut next)?.then_some(next))
        })
        .await?
        .ok_or_else(|| {
            StorageCallError::NotFound(format!("no {} record at {missing}", M::NAME)).into()
        })
    }
}
