//! The command line and settings every service binary shares.

use std::path::PathBuf;

use serde_json::{Map, Value};

use std::num::NonZeroUsize;

use serde::Deserialize;

use crate::{
    ConfigError, DEFAULT_BUS_URI, DEFAULT_WORKERS, EtcdSettings, LoggingSettings, SHARED_MEMBERS,
    config, parse_value,
};

/// How long a daemon's stop waits for the messages in process unless
/// `shutdown_timeout` says otherwise.
pub const DEFAULT_SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The command line every service binary accepts.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServiceArgs {
    /// Configuration file (JSON); default /etc/commissaire/<service>.conf.
    #[arg(short = 'c', long = "config", visible_alias = "config-file")]
    pub config: Option<PathBuf>,
    /// Message bus URI (overrides the configuration's bus_uri).
    #[arg(long = "bus-uri")]
    pub bus_uri: Option<String>,
    /// Name of the topic exchange.
    #[arg(long = "bus-exchange")]
    pub bus_exchange: Option<String>,
    /// Number of concurrent workers.
    #[arg(long = "workers")]
    pub workers: Option<usize>,
    /// Log at debug level.
    #[arg(long = "debug")]
    pub debug: bool,
    /// Log lines as text or JSON (overrides the configuration's
    /// logging.format).
    #[arg(long = "log-format", env = "COMMISSAIRE_LOG_FORMAT", value_enum)]
    pub log_format: Option<crate::LogFormat>,
    /// Serve Prometheus metrics at http://ADDRESS/metrics (e.g.
    /// 127.0.0.1:9101; overrides the configuration's metrics_listen).
    #[arg(long = "metrics-listen", value_name = "ADDRESS")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// A service's resolved settings.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Bus URI.
    pub bus_uri: String,
    /// Exchange name.
    pub bus_exchange: String,
    /// Worker count.
    pub workers: usize,
    /// Debug logging.
    pub debug: bool,
    /// Where `/metrics` is served (none: not served).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// How long a stop waits for the messages in process (default 30 s).
    pub shutdown_timeout: std::time::Duration,
    /// The whole configuration document (service-specific members included).
    pub config: Map<String, Value>,
}

/// The members every daemon's document may hold ([`SHARED_MEMBERS`]), typed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Shared {
    bus_uri: Option<String>,
    bus_exchange: Option<String>,
    workers: Option<NonZeroUsize>,
    debug: Option<bool>,
    metrics_listen: Option<std::net::SocketAddr>,
    shutdown_timeout: Option<crate::Seconds>,
    /// Checked here, read by [`crate::init_logging`].
    #[serde(rename = "logging")]
    _logging: Option<LoggingSettings>,
}

/// Loads a service's settings: the command line over the configuration
/// over the defaults. A shared member of the wrong type is an error naming
/// it (the daemon's own members are checked by its own settings type,
/// [`crate::parse_members`]).
pub async fn load_settings(
    service: &str,
    args: &ServiceArgs,
) -> Result<ServiceSettings, ConfigError> {
    let etcd = EtcdSettings::from_env();
    let config = config::load(service, args.config.as_deref(), etcd.as_ref()).await?;
    let shared: Map<String, Value> = config
        .iter()
        .filter(|(k, _)| SHARED_MEMBERS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let shared: Shared = parse_value(service, Value::Object(shared))?;
    Ok(ServiceSettings {
        bus_uri: args
            .bus_uri
            .clone()
            .or(shared.bus_uri)
            .unwrap_or_else(|| DEFAULT_BUS_URI.to_string()),
        bus_exchange: args
            .bus_exchange
            .clone()
            .or(shared.bus_exchange)
            .unwrap_or_else(|| commissaire_bus::DEFAULT_EXCHANGE.to_string()),
        workers: args
            .workers
            .or(shared.workers.map(NonZeroUsize::get))
            .unwrap_or(DEFAULT_WORKERS),
        debug: args.debug || shared.debug.unwrap_or(false),
        metrics_listen: args.metrics_listen.or(shared.metrics_listen),
        shutdown_timeout: shared
            .shutdown_timeout
            .map(|s| s.0)
            .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT),
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settings_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.conf");
        std::fs::write(
            &path,
            r#"{"bus_uri": "amqp://file", "workers": 3, "debug": true}"#,
        )
        .unwrap();
        let mut args = ServiceArgs {
            config: Some(path),
            ..Default::default()
        };
        let s = load_settings("svc", &args).await.unwrap();
        assert_eq!(
            (s.bus_uri.as_str(), s.workers, s.debug),
            ("amqp://file", 3, true)
        );
        args.bus_uri = Some("amqp://cli".into());
        args.workers = Some(9);
        let s = load_settings("svc", &args).await.unwrap();
        assert_eq!((s.bus_uri.as_str(), s.workers), ("amqp://cli", 9));
        assert_eq!(s.bus_exchange, "commissaire");
    }

    #[tokio::test]
    async fn a_shared_member_of_the_wrong_type_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.conf");
        for bad in [
            r#"{"workers": "3"}"#,
            r#"{"workers": 0}"#,
            r#"{"debug": "yes"}"#,
            r#"{"logging": {"format": "xml"}}"#,
            r#"{"logging": {"levle": "debug"}}"#,
        ] {
            std::fs::write(&path, bad).unwrap();
            let args = ServiceArgs {
                config: Some(path.clone()),
                ..Default::default()
            };
            let e = load_settings("svc", &args).await.unwrap_err();
            assert!(e.to_string().contains("svc configuration"), "{bad}: {e}");
        }
    }
}
