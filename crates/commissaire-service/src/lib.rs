//! The Commissaire service framework.
//!
//! A service is a long-running process that answers JSON-RPC requests from
//! the bus. It declares its name (which is also its queue, its config file
//! name and the first segment of its routing keys) and the methods it
//! answers ([`Service::methods`], typed: see [`Methods`]); [`run`] does the rest: consume
//! the shared queue, run `workers` concurrent workers (replicas of the same
//! service on other machines compete for the same queue), parse requests,
//! reply, and acknowledge.
//!
//! [`ServiceArgs`] and [`load_settings`] give every service binary the same
//! command line (`-c/--config`, `--bus-uri`, `--bus-exchange`, `--workers`,
//! `--debug`) and configuration rules.

mod config;
mod daemon;
mod dispatch;
mod etcd;
mod logging;
mod members;
mod methods;
pub mod metrics;
pub mod node_drain;
mod replica;
mod settings;
pub mod systemd;

use std::time::Duration;

pub use config::{
    CONFIG_DIR, ConfigError, default_config_path, etcd_config_key, load as load_config,
};
pub use daemon::{connect_bus, parse_args, run_daemon, run_daemon_with};
pub use dispatch::{Direct, ServiceHandle, run};
pub use etcd::{EtcdError, EtcdSettings};
pub use logging::{
    LOG_FORMAT_ENV, configured_level, init_logging, reload_log_level, set_log_level,
};
pub use members::{
    LogFormat, LoggingSettings, MemberError, SHARED_MEMBERS, Seconds, did_you_mean, parse_members,
    parse_value,
};
pub use methods::Methods;
pub use replica::replica_id;

/// The git commit these binaries were built from (`unknown` when the
/// source had no git history and the build was given none).
pub const GIT_COMMIT: &str = env!("COMMISSAIRE_GIT_COMMIT");

/// This build's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub use settings::{ServiceArgs, ServiceSettings, load_settings};

/// Concurrent workers of a service unless `--workers` or `workers` says
/// otherwise (workers are tasks waiting on I/O, so many are cheap).
pub const DEFAULT_WORKERS: usize = 32;

/// The bus URI used when neither the command line nor the configuration gives one.
pub const DEFAULT_BUS_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A service: a named set of JSON-RPC methods.
pub trait Service: Send + Sync + Sized + 'static {
    /// The service name (`storage`): its queue, its config file, its routing prefix.
    fn name(&self) -> &str;

    /// The routing-key patterns its queue is bound to (default `<name>.*`).
    fn bindings(&self) -> Vec<String> {
        vec![format!("{}.*", self.name())]
    }

    /// Its methods, each declared once with its params type; others get
    /// -32601 (method not found).
    fn methods() -> Methods<Self>;
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// From now on each SIGHUP calls `reload` (instead of ending the process,
/// SIGHUP's default), after telling systemd `RELOADING=1`; `reload` ends
/// with [`systemd::ready`]. Call it from within the runtime, early.
pub fn on_sighup<F, Fut>(mut reload: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    #[cfg(unix)]
    {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "cannot handle SIGHUP: reloads are off");
                return;
            }
        };
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading");
                systemd::reloading();
                reload().await;
            }
        });
    }
    #[cfg(not(unix))]
    let _ = &mut reload;
}

/// How long a service binary waits for the bus at start-up.
pub const STARTUP_BUS_WAIT: Duration = Duration::from_secs(30);
