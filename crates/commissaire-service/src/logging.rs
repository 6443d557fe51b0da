//! Logging set-up for every binary: to stderr, as text or JSON, coloured
//! only when stderr is a terminal (never in a file or the journal), with a
//! level that a reload (SIGHUP) can change.

use std::io::IsTerminal;
use std::sync::OnceLock;

use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::LogFormat;

/// The environment variable that picks the format when no flag does.
pub const LOG_FORMAT_ENV: &str = "COMMISSAIRE_LOG_FORMAT";

static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// The level `logging` (the configuration's `logging` member:
/// `{"level": "info"|"debug"|..., "format": "text"|"json"}`) and `debug`
/// ask for.
pub fn configured_level(debug: bool, logging: Option<&Value>) -> String {
    logging
        .and_then(|l| l.get("level"))
        .and_then(Value::as_str)
        .unwrap_or(if debug { "debug" } else { "info" })
        .to_string()
}

/// Sets up logging to stderr. The format is `format` (the `--log-format`
/// flag, or `COMMISSAIRE_LOG_FORMAT`) if given, else `logging`'s, else
/// text; `RUST_LOG` overrides the level.
pub fn init_logging(debug: bool, logging: Option<&Value>, format: Option<LogFormat>) {
    let level = configured_level(debug, logging);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let json = match format {
        Some(f) => f == LogFormat::Json,
        None => {
            logging
                .and_then(|l| l.get("format"))
                .and_then(Value::as_str)
                == Some("json")
        }
    };
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let installed = if json {
        registry.with(fmt.json()).try_init()
    } else {
        registry
            .with(fmt.with_ansi(std::io::stderr().is_terminal()))
            .try_init()
    };
    if installed.is_ok() {
        let _ = FILTER.set(handle);
    }
}

/// At a reload: applies the level the configuration read again asks for
/// (`debug` and the `logging` member, before and after) and logs what was
/// done; nothing when the level is the same.
pub fn reload_log_level(before: (bool, Option<&Value>), after: (bool, Option<&Value>)) {
    let old_level = configured_level(before.0, before.1);
    let new_level = configured_level(after.0, after.1);
    if old_level == new_level {
        return;
    }
    match set_log_level(&new_level) {
        Ok(true) => tracing::info!(from = %old_level, to = %new_level, "reload: log level changed"),
        Ok(false) => {
            tracing::info!("reload: RUST_LOG sets the log level; the file's level is not used")
        }
        Err(e) => tracing::warn!(error = %e, "reload: log level left as it was"),
    }
}

/// Changes the log level (a reload): `Ok(true)` when it changed it,
/// `Ok(false)` when `RUST_LOG` rules the level (or logging was set up by
/// someone else), `Err` naming what is wrong with `level`.
pub fn set_log_level(level: &str) -> Result<bool, String> {
    let filter = EnvFilter::try_new(level).map_err(|e| format!("log level '{level}': {e}"))?;
    if std::env::var_os(EnvFilter::DEFAULT_ENV).is_some() {
        return Ok(false);
    }
    match FILTER.get() {
        Some(handle) => handle
            .reload(filter)
            .map(|_| true)
            .map_err(|e| e.to_string()),
        None => Ok(false),
    }
}
