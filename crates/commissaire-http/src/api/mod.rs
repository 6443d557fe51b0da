//! The `/api/v0` handlers. Each turns a request into calls on the bus:
//! `storage.*` for records, `jobs.*` for work, `container.*` for container
//! managers. Nothing here touches a store directly.
//!
//! One module per resource: [`clusters`], [`members`] (a cluster's hosts),
//! [`operations`] (restart, upgrade, deploy), [`hosts`], [`configs`]
//! (networks and container managers); [`input`] reads and checks request
//! input. This file holds [`Api`] and what they share.

mod clusters;
mod configs;
mod hosts;
mod input;
mod members;
mod operations;

use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use commissaire_bus::Bus;
use commissaire_models::*;
use commissaire_storage_client::{StorageCallError, StorageClient};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
pub use input::{check_address, check_name, parse_body};
pub use operations::Operation;

/// How many times a compare-and-swap update is retried when another writer got there first.
pub(super) const CAS_ATTEMPTS: usize = 16;

/// A JSON reply with a status.
pub type Reply = (StatusCode, Json<Value>);

pub(super) fn ok(value: Value) -> ApiResult<Reply> {
    Ok((StatusCode::OK, Json(value)))
}

pub(super) fn created(value: Value) -> ApiResult<Reply> {
    Ok((StatusCode::CREATED, Json(value)))
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

    /// Updates a cluster with `change` using compare-and-swap, retrying when
    /// another writer changed it meanwhile. `change` returns `false` to leave
    /// the cluster as it is.
    pub(super) async fn update_cluster(
        &self,
        name: &str,
        mut change: impl FnMut(&mut Cluster) -> ApiResult<bool>,
    ) -> ApiResult<Cluster> {
        for _ in 0..CAS_ATTEMPTS {
            let current = self.get_cluster_record(name).await?;
            let mut next = current.clone();
            if !change(&mut next)? {
                return Ok(current);
            }
            match self.storage.swap(Some(&current), &next).await {
                Ok(saved) => return Ok(saved),
                Err(StorageCallError::Conflict { .. }) => {
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cluster '{name}' is being changed by others; try again"),
        ))
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

    /// Changes the stored host by compare-and-swap (starting over while
    /// others write it).
    pub(super) async fn update_host(
        &self,
        address: &str,
        mut change: impl FnMut(&mut Host),
    ) -> ApiResult<Host> {
        match self
            .storage
            .update(json!({"address": address}), CAS_ATTEMPTS, |h: &mut Host| {
                change(h);
                true
            })
            .await
        {
            Ok(h) => Ok(h),
            Err(e) if e.is_conflict() => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("host '{address}' is being changed by others; try again"),
            )),
            Err(StorageCallError::NotFound(_)) => Err(ApiError::not_found(format!(
                "host '{address}' does not exist"
            ))),
            Err(e) => Err(e.into()),
        }
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
