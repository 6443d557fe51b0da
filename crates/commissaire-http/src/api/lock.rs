//! A cluster's reboot lock: `/cluster/NAME/lock` (who holds its slots,
//! since when and why; an operator's release; the cluster's FleetLock
//! token), and the lock server's side of FleetLock for the hosts that
//! reboot themselves: a pre-reboot takes a slot, cordons and drains the
//! node, and only then grants it; a steady-state gives the slot back once
//! the node is Ready again and uncordoned.

use commissaire_models::{Cluster, ClusterLock, HolderKind, HolderState, LockHolder};
use commissaire_reboot_lock::{LockError, RebootLock, now};
use commissaire_service::node_drain::{BusDrainer, NodeDrainer, node_is_ready};
use serde_json::{Value, json};
use sha2::Digest;

use super::{Api, Reply, ok};
use crate::error::{ApiError, ApiResult};
use crate::extract::Name;

/// A FleetLock request's answer, as the protocol shapes it.
#[derive(Debug)]
pub enum FleetLockAnswer {
    /// Done: the slot is the host's (pre-reboot) or given back (steady-state).
    Done(String),
    /// Not yet: the node is being drained, or is not Ready again; ask again.
    NotYet {
        /// `draining` or `node_not_ready`.
        kind: &'static str,
        /// What it waits for.
        why: String,
    },
    /// Refused: `kind` is the protocol's error kind.
    Refused {
        /// The HTTP status.
        status: http::StatusCode,
        /// A bounded error kind (`unknown_group`, `failed_lock_semaphore_full`, ...).
        kind: &'static str,
        /// What is wrong.
        why: String,
    },
}

fn refused(
    status: http::StatusCode,
    kind: &'static str,
    why: impl Into<String>,
) -> FleetLockAnswer {
    FleetLockAnswer::Refused {
        status,
        kind,
        why: why.into(),
    }
}

fn unavailable(e: impl std::fmt::Display) -> FleetLockAnswer {
    refused(
        http::StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!("a backing service is unavailable: {e}"),
    )
}

/// The SHA-256 (hex) of a token, as the lock record keeps it.
pub fn token_digest(token: &str) -> String {
    let digest = sha2::Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Api {
    pub(super) fn reboot_lock(&self) -> RebootLock {
        RebootLock::new(self.storage.clone())
    }

    fn drainer(&self, drain_wait: std::time::Duration) -> BusDrainer {
        BusDrainer::new(self.bus.clone(), self.timeout, drain_wait)
    }

    async fn lock_view(&self, cluster: &Cluster) -> ApiResult<Value> {
        let lock = self
            .reboot_lock()
            .get(&cluster.name)
            .await
            .map_err(ApiError::from)?;
        Ok(json!({
            "name": cluster.name,
            "slots": RebootLock::slots(cluster),
            "used": lock.used(),
            "holders": lock.holders,
            "token": !lock.token_sha256.is_empty(),
        }))
    }

    async fn lock_cluster(&self, name: &str) -> ApiResult<Cluster> {
        self.get_opt::<Cluster>(json!({"name": name}))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("cluster '{name}' does not exist")))
    }

    /// `GET /cluster/NAME/lock`: the slots, how many are used, and each
    /// holder (FleetLock nodes and operations) with since when and why.
    pub async fn get_lock(&self, name: &Name) -> ApiResult<Reply> {
        let cluster = self.lock_cluster(name).await?;
        ok(self.lock_view(&cluster).await?)
    }

    /// `DELETE /cluster/NAME/lock/holders/ID`: gives the holder's slots back
    /// (a stale FleetLock node, say). Its node is left as it is.
    pub async fn release_lock_holder(&self, name: &Name, id: &str) -> ApiResult<Reply> {
        let cluster = self.lock_cluster(name).await?;
        let gone = self
            .reboot_lock()
            .give_back(&cluster.name, id)
            .await
            .map_err(ApiError::from)?;
        let Some(holder) = gone else {
            return Err(ApiError::not_found(format!(
                "'{id}' holds no slot of cluster '{}'",
                cluster.name
            )));
        };
        tracing::info!(cluster = %cluster.name, holder = %holder.id, kind = ?holder.kind, "reboot lock slot released by the API");
        ok(self.lock_view(&cluster).await?)
    }

    /// `PUT /cluster/NAME/lock/token`: a new FleetLock token for the
    /// cluster's hosts (the one before stops working); answered once, kept
    /// only as its SHA-256.
    pub async fn new_lock_token(&self, name: &Name) -> ApiResult<Reply> {
        use rand::Rng;
        let cluster = self.lock_cluster(name).await?;
        let bytes: [u8; 32] = rand::rng().random();
        let token =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
        let digest = token_digest(&token);
        self.storage
            .upsert(
                json!({"name": cluster.name}),
                |current: Option<&ClusterLock>| {
                    let mut lock = current.cloned().unwrap_or_else(|| ClusterLock {
                        name: cluster.name.clone(),
                        ..ClusterLock::default()
                    });
                    lock.token_sha256 = digest.clone();
                    Ok::<_, std::convert::Infallible>(Some(lock))
                },
            )
            .await
            .map_err(|e| ApiError::from(commissaire_storage_client::StorageCallError::from(e)))?;
        ok(json!({
            "cluster": cluster.name,
            "user": "fleetlock",
            "token": token,
            "group": cluster.name,
        }))
    }

    /// Whether `token` is the FleetLock token of cluster `name`.
    pub async fn lock_token_matches(&self, name: &str, token: &str) -> bool {
        match self.reboot_lock().get(name).await {
            Ok(lock) => !lock.token_sha256.is_empty() && lock.token_sha256 == token_digest(token),
            Err(_) => false,
        }
    }

    /// The member of `cluster` a FleetLock client is: the caller's address
    /// when it is a member, else its id.
    fn fleetlock_host(cluster: &Cluster, id: &str, peer: &str) -> Option<String> {
        [peer, id]
            .into_iter()
            .find(|h| cluster.hostset.iter().any(|m| m == h))
            .map(str::to_string)
    }

    /// FleetLock `pre-reboot` of client `id` (calling from `peer`) in
    /// group (cluster) `group`: takes a slot, cordons and drains the node
    /// (waiting up to `drain_wait`), then grants it.
    pub async fn fleetlock_pre_reboot(
        &self,
        group: &str,
        id: &str,
        peer: &str,
        drain_wait: std::time::Duration,
    ) -> FleetLockAnswer {
        use http::StatusCode;
        let cluster = match self.get_opt::<Cluster>(json!({"name": group})).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                return refused(
                    StatusCode::NOT_FOUND,
                    "unknown_group",
                    format!("group '{group}' is not a cluster of this Commissaire"),
                );
            }
            Err(e) => return unavailable(e.message),
        };
        let Some(host) = Self::fleetlock_host(&cluster, id, peer) else {
            return refused(
                StatusCode::NOT_FOUND,
                "unknown_host",
                format!(
                    "neither the caller's address {peer} nor the id '{id}' is a host of cluster '{group}'"
                ),
            );
        };
        let locks = self.reboot_lock();
        let manager = cluster.container_manager.clone();
        let wanted = LockHolder {
            id: id.to_string(),
            kind: HolderKind::Fleetlock,
            state: if manager.is_empty() {
                HolderState::Held
            } else {
                HolderState::Draining
            },
            hosts: vec![host.clone()],
            since: now(),
            why: format!("FleetLock pre-reboot of {host}"),
            ..LockHolder::default()
        };
        let holder = match locks.take(group, wanted, RebootLock::slots(&cluster)).await {
            Ok(h) => h,
            Err(LockError::Full(full)) => {
                return refused(
                    StatusCode::CONFLICT,
                    "failed_lock_semaphore_full",
                    full.to_string(),
                );
            }
            Err(LockError::Storage(e)) => return unavailable(e),
        };
        if holder.kind != HolderKind::Fleetlock {
            return refused(
                StatusCode::CONFLICT,
                "failed_lock_semaphore_full",
                format!(
                    "'{id}' is the id of a rolling operation holding slots of cluster '{group}'"
                ),
            );
        }
        match holder.state {
            HolderState::Held => {
                return FleetLockAnswer::Done(format!("slot held for {host}; reboot"));
            }
            HolderState::Returning => {
                // Asked to reboot again before it gave the slot back.
                if let Err(e) = locks
                    .change(group, id, |h| h.state = HolderState::Held)
                    .await
                {
                    return unavailable(e);
                }
                return FleetLockAnswer::Done(format!("slot held for {host}; reboot"));
            }
            HolderState::Draining => {}
        }
        let drainer = self.drainer(drain_wait);
        if !holder.cordoned {
            match drainer.is_cordoned(&manager, &host).await {
                Ok(true) => {}
                Ok(false) => {
                    // Recorded first: a node this server cordons is always
                    // uncordoned at steady-state, even after a crash here.
                    if let Err(e) = locks.change(group, id, |h| h.cordoned = true).await {
                        return unavailable(e);
                    }
                }
                Err(e) => {
                    return FleetLockAnswer::NotYet {
                        kind: "draining",
                        why: e.0,
                    };
                }
            }
        }
        if let Err(e) = drainer.cordon(&manager, &host).await {
            return FleetLockAnswer::NotYet {
                kind: "draining",
                why: e.0,
            };
        }
        if let Err(e) = drainer.drain(&manager, &host).await {
            return FleetLockAnswer::NotYet {
                kind: "draining",
                why: format!("draining node {host}: {}", e.0),
            };
        }
        match locks
            .change(group, id, |h| h.state = HolderState::Held)
            .await
        {
            Ok(Some(_)) => {
                tracing::info!(cluster = group, id, %host, "FleetLock slot granted after the drain");
                FleetLockAnswer::Done(format!("node {host} drained; slot held; reboot"))
            }
            Ok(None) => refused(
                StatusCode::CONFLICT,
                "lock_released",
                format!("the slot of '{id}' was released while its node drained; ask again"),
            ),
            Err(e) => unavailable(e),
        }
    }

    /// FleetLock `steady-state` of client `id` in group `group`: once the
    /// node is Ready again, uncordons it (when this server cordoned it)
    /// and gives the slot back. A client holding nothing is answered done.
    pub async fn fleetlock_steady_state(
        &self,
        group: &str,
        id: &str,
        drain_wait: std::time::Duration,
    ) -> FleetLockAnswer {
        use http::StatusCode;
        let cluster = match self.get_opt::<Cluster>(json!({"name": group})).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                return refused(
                    StatusCode::NOT_FOUND,
                    "unknown_group",
                    format!("group '{group}' is not a cluster of this Commissaire"),
                );
            }
            Err(e) => return unavailable(e.message),
        };
        let locks = self.reboot_lock();
        let lock = match locks.get(group).await {
            Ok(l) => l,
            Err(e) => return unavailable(e),
        };
        let Some(holder) = lock
            .holder(id)
            .filter(|h| h.kind == HolderKind::Fleetlock)
            .cloned()
        else {
            return FleetLockAnswer::Done(format!("'{id}' holds no slot of cluster '{group}'"));
        };
        let manager = cluster.container_manager.clone();
        if !manager.is_empty()
            && let Some(host) = holder.hosts.first()
        {
            let drainer = self.drainer(drain_wait);
            let ready = self
                .bus
                .request(
                    "container.get_node_status",
                    json!([manager, host]),
                    self.timeout,
                )
                .await
                .map(|status| node_is_ready(&status));
            if ready.as_ref().ok() != Some(&true) {
                if holder.state != HolderState::Returning
                    && let Err(e) = locks
                        .change(group, id, |h| h.state = HolderState::Returning)
                        .await
                {
                    return unavailable(e);
                }
                let why = match ready {
                    Ok(_) => format!("node {host} is not Ready yet"),
                    Err(e) => format!("the status of node {host}: {e}"),
                };
                return FleetLockAnswer::NotYet {
                    kind: "node_not_ready",
                    why,
                };
            }
            if holder.cordoned
                && let Err(e) = drainer.uncordon(&manager, host).await
            {
                return FleetLockAnswer::NotYet {
                    kind: "node_not_ready",
                    why: e.0,
                };
            }
        }
        match locks.give_back(group, id).await {
            Ok(_) => {
                tracing::info!(cluster = group, id, "FleetLock slot given back");
                FleetLockAnswer::Done(format!("slot of '{id}' given back"))
            }
            Err(e) => unavailable(e),
        }
    }
}
