//! The `ssh` member of a daemon's configuration: the limits of its session
//! pool.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use commissaire_service::Seconds;
use commissaire_ssh::{PoolConfig, SessionPool, SshError};
use commissaire_storage_client::StorageClient;
use serde::Deserialize;

use crate::HostAccess;

/// The `ssh` member: `{"max_sessions": 512, "idle_seconds": 120,
/// "connect_timeout": 10, "runtime_dir": "/run/commissaire"}`, each
/// optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    /// Master connections open at most (default 512); one more closes the
    /// least recently used.
    pub max_sessions: Option<NonZeroUsize>,
    /// A master unused this long is closed (default 120 s).
    pub idle_seconds: Option<Seconds>,
    /// Time limit of a TCP connection and login (default 10 s).
    pub connect_timeout: Option<Seconds>,
    /// Where the pool's private directory (control sockets, key files
    /// while a master logs in) is made (default: the temporary directory).
    pub runtime_dir: Option<PathBuf>,
}

impl SshSettings {
    /// The pool's limits.
    pub fn pool_config(&self) -> PoolConfig {
        let default = PoolConfig::default();
        PoolConfig {
            max_sessions: self.max_sessions.map_or(default.max_sessions, |n| n.get()),
            idle: self.idle_seconds.map_or(default.idle, |s| s.0),
            connect_timeout: self
                .connect_timeout
                .map_or(default.connect_timeout, |s| s.0),
        }
    }

    /// Where the pool's directory goes.
    pub fn runtime_dir(&self) -> PathBuf {
        self.runtime_dir.clone().unwrap_or_else(std::env::temp_dir)
    }
}

impl HostAccess {
    /// Makes the process's session pool and closes its idle sessions every
    /// so often (a task of the current runtime).
    pub fn start(storage: StorageClient, settings: &SshSettings) -> Result<HostAccess, SshError> {
        let config = settings.pool_config();
        let sweep = (config.idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
        let pool = Arc::new(SessionPool::new(&settings.runtime_dir(), config)?);
        let weak = Arc::downgrade(&pool);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(sweep).await;
                let Some(pool) = weak.upgrade() else { return };
                let closed = pool.close_idle().await;
                if closed > 0 {
                    tracing::debug!(closed, "closed idle ssh sessions");
                }
            }
        });
        Ok(HostAccess::new(storage, pool))
    }
}
