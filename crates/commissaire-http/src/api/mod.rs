//! The `/api/v0` handlers. Each turns a request into calls on the bus:
//! `storage.*` for records, `jobs.*` for work, `container.*` for container
//! managers. Nothing here touches a store directly.
//!
//! One module per resource: [`clusters`], [`members`] (a cluster's hosts),
//! [`operations`] (restart, upgrade, deploy; their pause and resume),
//! [`rolling`] (a cluster's defaults for them), [`plan`] (their dry run),
//! [`hosts`], [`host_keys`]
//! (a host's pinned SSH key), [`configs`]
//! (networks and container managers); [`health`] answers the probes;
//! [`lock`] is a cluster's reboot lock and the FleetLock side of it,
//! [`lock_stale`] the scan for its stale holders;
//! [`input`] reads and checks request
//! input; [`list_query`] reads the filters and pages of the lists. This file holds [`Api`] and what they share.

mod audit;
mod clusters;
mod configs;
mod health;
mod host_keys;
mod hosts;
mod input;
pub mod list_query;
pub mod lock;
pub mod lock_stale;
mod members;
mod operations;
mod plan;
mod rolling;

use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use commissaire_bus::Bus;
use commissaire_models::*;
use commissaire_storage_client::{StorageCallError, StorageClient, UpdateError};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
pub use audit::AuditFilter;
pub use clusters::CLUSTER_FILTERS;
pub use health::{FleetCounts, StorageState};
pub use hosts::HOST_FILTERS;
pub use input::{check_address, check_name};
pub use list_query::ListQuery;
pub use operations::Operation;

/// A JSON reply with a status.
pub type Reply = (StatusCode, Json<Value>);

pub(super) fn ok(value: Value) -> ApiResult<Reply> {
    Ok((StatusCode::OK, Json(value)))
}

pub(super) fn created(value: Value) -> ApiResult<Reply> {
    Ok((StatusCode::CREATED, Json(value)))
}

/// The answer for an update of `what` ("host 'h'") that did not happen:
/// the change's own refusal; 404 when there is no record; 503 when other
/// writers won every compare-and-swap (the client may try again).
pub(super) fn updated_error(e: UpdateError<ApiError>, what: &str) -> ApiError {
    match e {
        UpdateError::Refused(e) => e,
        UpdateError::Storage(StorageCallError::NotFound(_)) => {
            ApiError::not_found(format!("{what} does not exist"))
        }
        UpdateError::Storage(e) if e.is_conflict() => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{what} is being changed by others; try again"),
        ),
        UpdateError::Storage(e) => e.into(),
    }
}

/// The API: a storage client and the bus for jobs and container managers.
#[derive(Clone)]
pub struct Api {
    storage: StorageClient,
    bus: Bus,
    timeout: Duration,
}

impl Api {
    /// An API over `bus`, each bus call waiting up to `timeout`.
    pub fn new(bus: Bus, timeout: Duration) -> Self {
        Api {
            storage: StorageClient::new(bus.clone()).with_timeout(timeout),
            bus,
            timeout,
        }
    }

    /// Creates the `default` network if it does not exist yet.
    pub async fn ensure_default_network(&self) -> Result<(), StorageCallError> {
        match self.storage.swap(None, &Network::default_network()).await {
            Ok(_) => Ok(()),
            Err(StorageCallError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn get_opt<M: Model>(&self, key: Value) -> ApiResult<Option<M>> {
        match self.storage.get::<M>(key).await {
            Ok(m) => Ok(Some(m)),
            Err(StorageCallError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn get_cluster_record(&self, name: &str) -> ApiResult<Cluster> {
        check_name("name", name)?;
        self.get_opt::<Cluster>(json!({"name": name}))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("cluster '{name}' does not exist")))
    }

    pub(super) async fn get_host_record(&self, address: &str) -> ApiResult<Host> {
        check_address("address", address)?;
        self.get_opt::<Host>(json!({"address": address}))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("host '{address}' does not exist")))
    }

    /// Updates a cluster with `change` ([`StorageClient::update`]).
    /// `change` returns `false` to leave the cluster as it is.
    pub(super) async fn update_cluster(
        &self,
        name: &str,
        change: impl FnMut(&mut Cluster) -> ApiResult<bool>,
    ) -> ApiResult<Cluster> {
        check_name("name", name)?;
        self.storage
            .update(json!({"name": name}), change)
            .await
            .map_err(|e| updated_error(e, &format!("cluster '{name}'")))
    }

    /// Adds `address` to the host list of cluster `name` (no change when it
    /// is there already); returns the cluster as stored.
    pub(super) async fn add_to_hostset(&self, name: &str, address: &str) -> ApiResult<Cluster> {
        self.update_cluster(name, |c| {
            if c.hostset.iter().any(|a| a == address) {
                return Ok(false);
            }
            c.hostset.push(address.to_string());
            Ok(true)
        })
        .await
    }

    /// Changes the stored host ([`StorageClient::update`]).
    pub(super) async fn update_host(
        &self,
        address: &str,
        mut change: impl FnMut(&mut Host),
    ) -> ApiResult<Host> {
        self.storage
            .update(json!({"address": address}), |h: &mut Host| {
                change(h);
                Ok(true)
            })
            .await
            .map_err(|e| updated_error(e, &format!("host '{address}'")))
    }
}

/// The address a self-registering host is known by: the peer's IP (an
/// IPv4-mapped IPv6 address is given as IPv4).
pub fn peer_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}
