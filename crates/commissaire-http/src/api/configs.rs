//! `/networks`, `/network/NAME`, `/container_managers`,
//! `/container_manager/NAME`: named configuration records.

use commissaire_models::*;
use commissaire_storage_client::StorageCallError;
use serde_json::{Map, Value, json};

use super::list_query::ListQuery;
use super::{Api, Reply, created, ok};
use crate::error::{ApiError, ApiResult};
use crate::extract::Name;

impl Api {
    /// `GET /networks`: the network names.
    pub async fn list_networks(&self) -> ApiResult<Reply> {
        self.list_names::<Network>().await
    }

    /// `GET /network/{name}`.
    pub async fn get_network(&self, name: &Name) -> ApiResult<Reply> {
        self.get_named::<Network>(name, "network").await
    }

    /// `PUT /network/{name}`: 201 when created or identical, 409 when it differs.
    pub async fn put_network(&self, name: &Name, body: Map<String, Value>) -> ApiResult<Reply> {
        self.put_named::<Network>(name, body, "network").await
    }

    /// `DELETE /network/{name}`: refused (409) while a cluster uses it.
    pub async fn delete_network(&self, name: &Name) -> ApiResult<Reply> {
        self.delete_named::<Network>(name, "network", |c| c.network == name)
            .await
    }

    /// `GET /containermanagers`: the container manager names.
    pub async fn list_container_managers(&self) -> ApiResult<Reply> {
        self.list_names::<ContainerManagerConfig>().await
    }

    /// `GET /containermanager/{name}`.
    pub async fn get_container_manager(&self, name: &Name) -> ApiResult<Reply> {
        self.get_named::<ContainerManagerConfig>(name, "container manager")
            .await
    }

    /// `PUT /containermanager/{name}`: 201 when created or identical, 409 when it differs.
    pub async fn put_container_manager(
        &self,
        name: &Name,
        body: Map<String, Value>,
    ) -> ApiResult<Reply> {
        self.put_named::<ContainerManagerConfig>(name, body, "container manager")
            .await
    }

    /// `DELETE /containermanager/{name}`: refused (409) while a cluster uses it.
    pub async fn delete_container_manager(&self, name: &Name) -> ApiResult<Reply> {
        self.delete_named::<ContainerManagerConfig>(name, "container manager", |c| {
            c.container_manager == name
        })
        .await
    }

    /// The names of every record of a named configuration kind.
    /// The names of the records of `M`, as the plain list or a page.
    pub(super) async fn list_names_matching<M: Model>(
        &self,
        query: &ListQuery,
    ) -> ApiResult<Reply> {
        let items = self
            .storage
            .list::<M>()
            .await?
            .iter()
            .map(|m| (m.primary_key(), json!(m.primary_key())))
            .collect();
        ok(query.answer(items))
    }

    /// `GET /networks?limit=...`.
    pub async fn list_networks_matching(&self, query: &ListQuery) -> ApiResult<Reply> {
        self.list_names_matching::<Network>(query).await
    }

    /// `GET /containermanagers?limit=...`.
    pub async fn list_container_managers_matching(&self, query: &ListQuery) -> ApiResult<Reply> {
        self.list_names_matching::<ContainerManagerConfig>(query)
            .await
    }

    pub(super) async fn list_names<M: Model>(&self) -> ApiResult<Reply> {
        let names: Vec<String> = self
            .storage
            .list::<M>()
            .await?
            .iter()
            .map(Model::primary_key)
            .collect();
        ok(json!(names))
    }

    /// One named configuration record.
    pub(super) async fn get_named<M: Model>(&self, name: &Name, what: &str) -> ApiResult<Reply> {
        let record = self
            .get_opt::<M>(json!({"name": name}))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("{what} '{name}' does not exist")))?;
        ok(record.to_safe_json())
    }

    /// Creates a named configuration record from a request body.
    pub(super) async fn put_named<M: Model + PartialEq>(
        &self,
        name: &Name,
        mut body: Map<String, Value>,
        what: &str,
    ) -> ApiResult<Reply> {
        body.insert("name".into(), json!(name));
        let record = M::from_json(Value::Object(body))?;
        self.create_config(record, what).await
    }

    /// Deletes a named configuration record unless a cluster uses it (409).
    pub(super) async fn delete_named<M: Model>(
        &self,
        name: &Name,
        what: &str,
        used_by: impl Fn(&Cluster) -> bool,
    ) -> ApiResult<Reply> {
        if let Some(c) = self.clusters().await?.into_iter().find(|c| used_by(c)) {
            return Err(ApiError::conflict(format!(
                "{what} '{name}' is used by cluster '{}'",
                c.name
            )));
        }
        self.storage.delete::<M>(json!({"name": name})).await?;
        ok(json!([]))
    }

    /// Creates a named configuration record; identical re-creation is a 201, a different one a 409.
    pub(super) async fn create_config<M: Model + PartialEq>(
        &self,
        record: M,
        what: &str,
    ) -> ApiResult<Reply> {
        match self.storage.swap(None, &record).await {
            Ok(saved) => created(saved.to_safe_json()),
            Err(StorageCallError::Conflict { .. }) => {
                let existing: M = self
                    .storage
                    .get(json!({"name": record.primary_key()}))
                    .await?;
                if existing == record {
                    created(existing.to_safe_json())
                } else {
                    Err(ApiError::conflict(format!(
                        "{what} '{}' already exists with other settings",
                        record.primary_key()
                    )))
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}
