//! `commissaire-watcher-service`: keeps bootstrapped hosts' status current.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use commissaire_service::{ServiceArgs, init_logging, load_settings, shutdown_signal};
use commissaire_watcher_service::{Watcher, WatcherConfig};

/// Commissaire watcher service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = load_settings("watcher", &cli.service).await?;
    init_logging(settings.debug, settings.config.get("logging"));
    let config = WatcherConfig::from_config(&settings.config).map_err(anyhow::Error::msg)?;
    let bus = commissaire_bus::connect(
        &settings.bus_uri,
        &settings.bus_exchange,
        commissaire_service::STARTUP_BUS_WAIT,
    )
    .await
    .context("connecting to the message bus")?;
    let watcher = Arc::new(Watcher::new(bus, config));
    tokio::select! {
        _ = watcher.run() => {}
        _ = shutdown_signal() => {}
    }
    Ok(())
}
