//! `commissaire-watcher-service`: keeps bootstrapped hosts' status current.

use std::sync::Arc;

use clap::Parser;
use commissaire_service::{ServiceArgs, run_daemon};
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
    run_daemon("watcher", &cli.service, |settings, bus| async move {
        let config = WatcherConfig::from_config(&settings.config).map_err(anyhow::Error::msg)?;
        let watching = tokio::spawn(Arc::new(Watcher::new(bus, config)).run());
        Ok(move || async move { watching.abort() })
    })
    .await
}
