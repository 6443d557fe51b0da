//! The life of a daemon binary, shared by every one of them: settings,
//! logging, the bus, start, wait for SIGTERM or Ctrl-C, stop.

use std::future::Future;

use anyhow::Context;
use commissaire_bus::Bus;

use crate::{STARTUP_BUS_WAIT, ServiceArgs, ServiceSettings, init_logging, load_settings};

/// Connects to the bus at `uri` (exchange `exchange`), waiting up to
/// [`STARTUP_BUS_WAIT`] for it to come up.
pub async fn connect_bus(uri: &str, exchange: &str) -> anyhow::Result<Bus> {
    commissaire_bus::connect(uri, exchange, STARTUP_BUS_WAIT)
        .await
        .context("connecting to the message bus")
}

/// The command line of daemon `name` (binary `commissaire-<name>-service`):
/// [`ServiceArgs`], with `--help` saying `about` and `--version`.
pub fn parse_args(name: &str, about: &'static str) -> ServiceArgs {
    use clap::{Args, FromArgMatches};
    let command =
        ServiceArgs::augment_args(clap::Command::new(format!("commissaire-{name}-service")))
            .about(about)
            .version(env!("CARGO_PKG_VERSION"));
    ServiceArgs::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit())
}

/// [`run_daemon_with`] on the command line [`parse_args`] reads.
pub async fn run_daemon<F, Fut, Stop, StopFut>(
    name: &str,
    about: &'static str,
    start: F,
) -> anyhow::Result<()>
where
    F: FnOnce(ServiceSettings, Bus) -> Fut,
    Fut: Future<Output = anyhow::Result<Stop>>,
    Stop: FnOnce() -> StopFut,
    StopFut: Future<Output = ()>,
{
    run_daemon_with(name, &parse_args(name, about), start).await
}

/// Runs daemon `name`: loads its settings (`args` over its configuration
/// file over the defaults), sets up logging, connects to the bus, calls
/// `start` with both, waits for SIGTERM or Ctrl-C, then runs the stop
/// `start` returned (graceful hand-over where the daemon has one).
pub async fn run_daemon_with<F, Fut, Stop, StopFut>(
    name: &str,
    args: &ServiceArgs,
    start: F,
) -> anyhow::Result<()>
where
    F: FnOnce(ServiceSettings, Bus) -> Fut,
    Fut: Future<Output = anyhow::Result<Stop>>,
    Stop: FnOnce() -> StopFut,
    StopFut: Future<Output = ()>,
{
    let settings = load_settings(name, args).await?;
    init_logging(
        settings.debug,
        settings.config.get("logging"),
        args.log_format,
    );
    reload_on_sighup(name, args, &settings);
    crate::metrics::install();
    if let Some(address) = settings.metrics_listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address} for metrics"))?;
        tracing::info!(daemon = name, %address, "serving /metrics");
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve(listener).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    let bus = connect_bus(&settings.bus_uri, &settings.bus_exchange).await?;
    let stop = start(settings, bus).await?;
    crate::systemd::spawn_watchdog();
    crate::systemd::ready();
    crate::shutdown_signal().await;
    tracing::info!(daemon = name, "stopping");
    crate::systemd::stopping();
    stop().await;
    Ok(())
}

/// At each SIGHUP: reads the settings again and applies the log level;
/// names the members whose change needs a restart.
fn reload_on_sighup(name: &str, args: &ServiceArgs, settings: &ServiceSettings) {
    let (name, args) = (name.to_string(), args.clone());
    let current = std::sync::Arc::new(tokio::sync::Mutex::new(settings.clone()));
    crate::on_sighup(move || {
        let (name, args, current) = (name.clone(), args.clone(), current.clone());
        async move {
            match load_settings(&name, &args).await {
                Ok(next) => {
                    let mut current = current.lock().await;
                    crate::reload_log_level(
                        (current.debug, current.config.get("logging")),
                        (next.debug, next.config.get("logging")),
                    );
                    let mut members: Vec<&String> = current
                        .config
                        .keys()
                        .chain(next.config.keys())
                        .filter(|k| k.as_str() != "logging" && k.as_str() != "debug")
                        .filter(|k| current.config.get(k.as_str()) != next.config.get(k.as_str()))
                        .collect();
                    members.sort();
                    members.dedup();
                    for member in members {
                        tracing::warn!(daemon = %name, member = %member, "reload: this change takes effect at the next restart");
                    }
                    *current = next;
                }
                Err(e) => {
                    tracing::warn!(daemon = %name, error = %e, "reload: the configuration does not load; nothing changed")
                }
            }
            crate::systemd::ready();
        }
    });
}
