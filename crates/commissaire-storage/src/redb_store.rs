//! The embedded store handler: one durable redb file, for the all-in-one binary.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;

use crate::store::{StoreError, StoreHandler, Written};

const RECORDS: TableDefinition<&str, &str> = TableDefinition::new("records");

/// Records in a local redb file; every write is a committed (fsynced) transaction.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn decode(key: &str, value: &str) -> Result<Value, StoreError> {
    serde_json::from_str(value).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

impl RedbStore {
    /// Opens (creating if needed) the database at `path`; parent directories are created.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| backend(format!("{}: {e}", parent.display())))?;
        }
        let db = Database::create(path).map_err(|e| backend(format!("{}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(backend)?;
        txn.open_table(RECORDS).map_err(backend)?;
        txn.commit().map_err(backend)?;
        Ok(RedbStore { db: Arc::new(db) })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(backend)?
    }
}

#[async_trait]
impl StoreHandler for RedbStore {
    fn handler_type(&self) -> &'static str {
        "redb"
    }

    async fn get(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let key = key.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(RECORDS).map_err(backend)?;
            let value = table.get(key.as_str()).map_err(backend)?;
            value.map(|v| decode(&key, v.value())).transpose()
        })
        .await
    }

    async fn put(&self, key: &str, value: &Value) -> Result<Written, StoreError> {
        let (key, text) = (key.to_string(), value.to_string());
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            let existed = {
                let mut table = txn.open_table(RECORDS).map_err(backend)?;
                table
                    .insert(key.as_str(), text.as_str())
                    .map_err(backend)?
                    .is_some()
            };
            txn.commit().map_err(backend)?;
            Ok(if existed {
                Written::Updated
            } else {
                Written::Created
            })
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let key = key.to_string();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            let previous = {
                let mut table = txn.open_table(RECORDS).map_err(backend)?;
                let removed = table.remove(key.as_str()).map_err(backend)?;
                removed.map(|v| v.value().to_string())
            };
            txn.commit().map_err(backend)?;
            previous.map(|v| decode(&key, &v)).transpose()
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Value>, StoreError> {
        let prefix = prefix.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(RECORDS).map_err(backend)?;
            let mut out = Vec::new();
            for entry in table.range(prefix.as_str()..).map_err(backend)? {
                let (k, v) = entry.map_err(backend)?;
                if !k.value().starts_with(prefix.as_str()) {
                    break;
                }
                out.push(decode(k.value(), v.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&Value>,
        new: &Value,
    ) -> Result<Result<Written, Option<Value>>, StoreError> {
        let (key, expected, text) = (key.to_string(), expected.cloned(), new.to_string());
        // redb has one writer at a time: reading and writing in the same
        // write transaction is atomic.
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            let outcome = {
                let mut table = txn.open_table(RECORDS).map_err(backend)?;
                let stored = table
                    .get(key.as_str())
                    .map_err(backend)?
                    .map(|v| decode(&key, v.value()))
                    .transpose()?;
                if stored != expected {
                    Err(stored)
                } else {
                    table.insert(key.as_str(), text.as_str()).map_err(backend)?;
                    Ok(if stored.is_some() {
                        Written::Updated
                    } else {
                        Written::Created
                    })
                }
            };
            if outcome.is_ok() {
                txn.commit().map_err(backend)?;
            } else {
                txn.abort().map_err(backend)?;
            }
            Ok(outcome)
        })
        .await
    }
}
