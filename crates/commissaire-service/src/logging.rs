//! Logging set-up for service binaries.

use serde_json::Value;

/// Sets up logging to stderr. `logging` is the configuration's `logging`
/// member: `{"level": "info"|"debug"|..., "format": "text"|"json"}`;
/// `RUST_LOG` overrides the level.
pub fn init_logging(debug: bool, logging: Option<&Value>) {
    let level = logging
        .and_then(|l| l.get("level"))
        .and_then(Value::as_str)
        .unwrap_or(if debug { "debug" } else { "info" })
        .to_string();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let json = logging
        .and_then(|l| l.get("format"))
        .and_then(Value::as_str)
        == Some("json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
