//! Server configuration: `/etc/commissaire/commissaire.conf` (JSON, keys named
//! like the flags: `listen-port`, `authentication-plugins`, ...), `-c FILE`,
//! `--no-config-file`, and command-line flags over all of it.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::auth::{AuthConfigError, PluginSpec};

/// The default configuration file.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/commissaire/commissaire.conf";

/// How long a GET answer may be served from the read cache unless configured.
/// Changes announced by the storage service drop entries at once; the limit
/// bounds staleness from changes nobody announced (e.g. etcd edited by hand).
pub const DEFAULT_READ_CACHE_SECONDS: f64 = 2.0;

/// The server's command line (the docs' flags, plus `--request-timeout`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// Turn on debug logging.
    #[arg(long)]
    pub debug: bool,
    /// Log lines as text or JSON (overrides the file's logging.format).
    #[arg(long = "log-format", env = "COMMISSAIRE_LOG_FORMAT", value_enum)]
    pub log_format: Option<commissaire_service::LogFormat>,
    /// Full path to a JSON configuration file (command-line arguments override).
    #[arg(short = 'c', long = "config-file", visible_alias = "config")]
    pub config_file: Option<PathBuf>,
    /// Disregard the default configuration file, if it exists.
    #[arg(long = "no-config-file", alias = "no-config")]
    pub no_config_file: bool,
    /// Interface to listen on.
    #[arg(short = 'i', long = "listen-interface")]
    pub listen_interface: Option<String>,
    /// Port to listen on.
    #[arg(short = 'p', long = "listen-port")]
    pub listen_port: Option<u16>,
    /// Full path to the TLS PEM (certificate and key) for the server.
    #[arg(long = "tls-pemfile")]
    pub tls_pemfile: Option<PathBuf>,
    /// Full path to the certificate authorities that client certificates are verified against.
    #[arg(long = "tls-clientverifyfile")]
    pub tls_clientverifyfile: Option<PathBuf>,
    /// Authentication plugin and its configuration (repeatable): MODULE_NAME:key=value,...
    #[arg(
        long = "authentication-plugin",
        value_name = "MODULE_NAME:key=value,.."
    )]
    pub authentication_plugins: Vec<String>,
    /// URI paths which provide their own authentication (repeatable).
    #[arg(long = "self-auth")]
    pub self_auths: Vec<String>,
    /// Message bus exchange name.
    #[arg(long = "bus-exchange")]
    pub bus_exchange: Option<String>,
    /// Message bus connection URI.
    #[arg(long = "bus-uri")]
    pub bus_uri: Option<String>,
    /// Seconds to wait for a service's answer before replying 503.
    #[arg(long = "request-timeout")]
    pub request_timeout: Option<f64>,
    /// Seconds a GET answer may be served from the read cache (0: no cache).
    /// Entries are dropped at once when the storage service announces a change.
    #[arg(long = "read-cache-seconds")]
    pub read_cache_seconds: Option<f64>,
    /// Seconds a stop (SIGTERM) waits for the requests in flight to be
    /// answered before closing their connections.
    #[arg(long = "shutdown-timeout")]
    pub shutdown_timeout: Option<f64>,
    /// Seconds a client has to send a request's headers before its
    /// connection is closed (also the longest an idle connection is kept).
    #[arg(long = "header-read-timeout")]
    pub header_read_timeout: Option<f64>,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ServerConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A member is malformed.
    #[error("{origin}: {reason}")]
    Invalid {
        /// File or flag.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// An authentication plugin is misconfigured.
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
}

/// The resolved server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Interface to listen on.
    pub listen_interface: String,
    /// Port to listen on.
    pub listen_port: u16,
    /// TLS certificate and key.
    pub tls_pemfile: Option<PathBuf>,
    /// CA for client certificates.
    pub tls_clientverifyfile: Option<PathBuf>,
    /// Authentication plugins, in order.
    pub plugins: Vec<PluginSpec>,
    /// Paths that bypass authentication.
    pub self_auths: Vec<String>,
    /// Bus URI.
    pub bus_uri: String,
    /// Exchange name.
    pub bus_exchange: String,
    /// Debug logging.
    pub debug: bool,
    /// How long to wait for services.
    pub request_timeout: Duration,
    /// How long a cached GET answer may be served (zero: no read cache).
    pub read_cache_ttl: Duration,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// How refused credentials slow their client address down.
    pub auth_throttle: crate::auth::throttle::ThrottleSettings,
    /// Where the unauthenticated probes and `/metrics` are served.
    pub probes: crate::probes::ProbePaths,
    /// How long a stop waits for the requests in flight.
    pub shutdown_timeout: Duration,
    /// Who has which role.
    pub roles: crate::auth::roles::RoleSettings,
    /// Where the FleetLock endpoints are served, and how long they wait.
    pub fleetlock: crate::fleetlock::FleetLockSettings,
    /// The whole file, for members other binaries add (e.g. the all-in-one's).
    pub file: Map<String, Value>,
}

fn read_file(args: &ServerArgs) -> Result<(String, Map<String, Value>), ServerConfigError> {
    if args.no_config_file && args.config_file.is_none() {
        return Ok(("no file".into(), Map::new()));
    }
    let (path, required) = match &args.config_file {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(("no file".into(), Map::new()));
        }
        Err(source) => return Err(ServerConfigError::Read { path, source }),
    };
    let origin = path.display().to_string();
    match serde_json::from_slice::<Value>(&text) {
        Ok(Value::Object(map)) => {
            // Accept `listen_port` as well as `listen-port`.
            let map = map
                .into_iter()
                .map(|(k, v)| (k.replace('_', "-"), v))
                .collect();
            Ok((origin, map))
        }
        Ok(_) => Err(ServerConfigError::Invalid {
            origin,
            reason: "must be a JSON object".into(),
        }),
        Err(e) => Err(ServerConfigError::Invalid {
            origin,
            reason: e.to_string(),
        }),
    }
}

/// The members of the server's configuration file (`_` may stand for `-`).
pub const FILE_MEMBERS: [&str; 19] = [
    "listen-interface",
    "listen-port",
    "tls-pemfile",
    "tls-clientverifyfile",
    "authentication-plugins",
    "authentication-plugin",
    "self-auths",
    "bus-uri",
    "bus-exchange",
    "debug",
    "request-timeout",
    "read-cache-seconds",
    "header-read-timeout",
    "logging",
    "authentication-throttle",
    "probes",
    "shutdown-timeout",
    "roles",
    "fleetlock",
];

impl ServerConfig {
    /// Resolves the settings: flags over the file over the defaults. A
    /// member the server does not know (a typo: `listen_prot`) or one of
    /// the wrong type (`"request-timeout": "30"`) is an error naming it.
    pub fn resolve(args: &ServerArgs, default_bus_uri: &str) -> Result<Self, ServerConfigError> {
        Self::resolve_with(args, default_bus_uri, &[])
    }

    /// [`ServerConfig::resolve`] for a binary whose file holds members of
    /// its own besides the server's (the all-in-one's `data-dir`,
    /// `investigator`, ...), which it reads from [`ServerConfig::file`].
    pub fn resolve_with(
        args: &ServerArgs,
        default_bus_uri: &str,
        own_members: &[&str],
    ) -> Result<Self, ServerConfigError> {
        let (origin, file) = read_file(args)?;
        if let Some(unknown) = file
            .keys()
            .find(|k| !FILE_MEMBERS.contains(&k.as_str()) && !own_members.contains(&k.as_str()))
        {
            let mut known: Vec<&str> = FILE_MEMBERS.iter().chain(own_members).copied().collect();
            known.sort_unstable();
            let meant = commissaire_service::did_you_mean(unknown, known.iter().copied())
                .map(|m| format!("did you mean '{m}'? "))
                .unwrap_or_default();
            return Err(ServerConfigError::Invalid {
                origin,
                reason: format!(
                    "unknown member '{unknown}' ({meant}known: {})",
                    known.join(", ")
                ),
            });
        }
        let invalid = |key: &str, what: &str| ServerConfigError::Invalid {
            origin: origin.clone(),
            reason: format!("'{key}' must be {what}"),
        };
        let number = |key: &str, default: f64| -> Result<f64, ServerConfigError> {
            match file.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v
                    .as_f64()
                    .ok_or_else(|| invalid(key, "a number of seconds")),
            }
        };
        let debug = match file.get("debug") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid("debug", "true or false")),
        };
        if let Some(logging) = file.get("logging") {
            commissaire_service::parse_value::<commissaire_service::LoggingSettings>(
                "server",
                logging.clone(),
            )
            .map_err(|e| ServerConfigError::Invalid {
                origin: origin.clone(),
                reason: format!("'logging': {}", e.reason),
            })?;
        }
        let text = |key: &str| -> Result<Option<String>, ServerConfigError> {
            match file.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(invalid(key, "a string")),
            }
        };
        let listen_port = match (args.listen_port, file.get("listen-port")) {
            (Some(p), _) => p,
            (None, None) => 8000,
            (None, Some(v)) => v
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| invalid("listen-port", "a port number"))?,
        };
        let plugins = if !args.authentication_plugins.is_empty() {
            args.authentication_plugins
                .iter()
                .map(|s| PluginSpec::parse_cli(s))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            match file
                .get("authentication-plugins")
                .or_else(|| file.get("authentication-plugin"))
            {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(list)) => list
                    .iter()
                    .map(PluginSpec::from_config)
                    .collect::<Result<Vec<_>, _>>()?,
                Some(obj @ Value::Object(_)) => vec![PluginSpec::from_config(obj)?],
                Some(Value::String(s)) => vec![PluginSpec::parse_cli(s)?],
                Some(_) => {
                    return Err(invalid(
                        "authentication-plugins",
                        "a list of plugin objects",
                    ));
                }
            }
        };
        let self_auths = if !args.self_auths.is_empty() {
            args.self_auths.clone()
        } else {
            match file.get("self-auths") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(list)) => list
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid("self-auths", "a list of paths"))?,
                Some(_) => return Err(invalid("self-auths", "a list of paths")),
            }
        };
        let request_timeout = match args.request_timeout {
            Some(t) => t,
            None => number("request-timeout", 10.0)?,
        };
        if !(request_timeout > 0.0 && request_timeout < 3600.0) {
            return Err(invalid(
                "request-timeout",
                "a number of seconds between 0 and 3600",
            ));
        }
        let read_cache_seconds = match (args.read_cache_seconds, file.get("read-cache-seconds")) {
            (Some(t), _) => t,
            (None, None | Some(Value::Null)) => DEFAULT_READ_CACHE_SECONDS,
            (None, Some(v)) => v
                .as_f64()
                .ok_or_else(|| invalid("read-cache-seconds", "a number of seconds"))?,
        };
        if !(0.0..=3600.0).contains(&read_cache_seconds) {
            return Err(invalid(
                "read-cache-seconds",
                "a number of seconds between 0 and 3600",
            ));
        }
        let header_read_timeout = match args.header_read_timeout {
            Some(t) => t,
            None => number("header-read-timeout", 30.0)?,
        };
        if !(header_read_timeout > 0.0 && header_read_timeout < 3600.0) {
            return Err(invalid(
                "header-read-timeout",
                "a number of seconds between 0 and 3600",
            ));
        }
        let shutdown_timeout = match args.shutdown_timeout {
            Some(t) => t,
            None => number("shutdown-timeout", 30.0)?,
        };
        if !(0.0..=3600.0).contains(&shutdown_timeout) {
            return Err(invalid(
                "shutdown-timeout",
                "a number of seconds between 0 and 3600",
            ));
        }
        let auth_throttle = match file.get("authentication-throttle") {
            None | Some(Value::Null) => Default::default(),
            Some(v) => {
                let t: crate::auth::throttle::ThrottleSettings = serde_json::from_value(v.clone())
                    .map_err(|e| ServerConfigError::Invalid {
                        origin: origin.clone(),
                        reason: format!("'authentication-throttle': {e}"),
                    })?;
                t.check().map_err(|e| ServerConfigError::Invalid {
                    origin: origin.clone(),
                    reason: format!("'authentication-throttle': {e}"),
                })?;
                t
            }
        };
        let probes = match file.get("probes") {
            None | Some(Value::Null) => Default::default(),
            Some(v) => {
                let p: crate::probes::ProbePaths =
                    serde_json::from_value(v.clone()).map_err(|e| ServerConfigError::Invalid {
                        origin: origin.clone(),
                        reason: format!("'probes': {e}"),
                    })?;
                p.check().map_err(|e| ServerConfigError::Invalid {
                    origin: origin.clone(),
                    reason: format!("'probes': {e}"),
                })?;
                p
            }
        };
        let fleetlock = match file.get("fleetlock") {
            None | Some(Value::Null) => Default::default(),
            Some(v) => {
                let f: crate::fleetlock::FleetLockSettings = serde_json::from_value(v.clone())
                    .map_err(|e| ServerConfigError::Invalid {
                        origin: origin.clone(),
                        reason: format!("'fleetlock': {e}"),
                    })?;
                f.check().map_err(|e| ServerConfigError::Invalid {
                    origin: origin.clone(),
                    reason: format!("'fleetlock': {e}"),
                })?;
                f
            }
        };
        let roles = match file.get("roles") {
            None | Some(Value::Null) => Default::default(),
            Some(v) => {
                serde_json::from_value(v.clone()).map_err(|e| ServerConfigError::Invalid {
                    origin: origin.clone(),
                    reason: format!("'roles': {e}"),
                })?
            }
        };
        Ok(ServerConfig {
            listen_interface: match &args.listen_interface {
                Some(i) => i.clone(),
                None => text("listen-interface")?.unwrap_or_else(|| "0.0.0.0".into()),
            },
            listen_port,
            tls_pemfile: args
                .tls_pemfile
                .clone()
                .or(text("tls-pemfile")?.map(PathBuf::from)),
            tls_clientverifyfile: args
                .tls_clientverifyfile
                .clone()
                .or(text("tls-clientverifyfile")?.map(PathBuf::from)),
            plugins,
            self_auths,
            bus_uri: match &args.bus_uri {
                Some(u) => u.clone(),
                None => text("bus-uri")?.unwrap_or_else(|| default_bus_uri.to_string()),
            },
            bus_exchange: match &args.bus_exchange {
                Some(e) => e.clone(),
                None => text("bus-exchange")?
                    .unwrap_or_else(|| commissaire_bus::DEFAULT_EXCHANGE.to_string()),
            },
            debug: args.debug || debug,
            request_timeout: Duration::from_secs_f64(request_timeout),
            read_cache_ttl: Duration::from_secs_f64(read_cache_seconds),
            header_read_timeout: Duration::from_secs_f64(header_read_timeout),
            auth_throttle,
            probes,
            shutdown_timeout: Duration::from_secs_f64(shutdown_timeout),
            roles,
            fleetlock,
            file,
        })
    }
}
