//! `commissaire-investigator-service`: bootstraps new hosts (`jobs.investigate`).

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use commissaire_investigator_service::{FirstScan, Investigator, InvestigatorConfig};
use commissaire_service::{ServiceArgs, init_logging, load_settings, shutdown_signal};

/// Commissaire investigator service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = load_settings("investigator", &cli.service).await?;
    init_logging(settings.debug, settings.config.get("logging"));
    let config = InvestigatorConfig::from_config(&settings.config)?;
    let bus = commissaire_bus::connect(
        &settings.bus_uri,
        &settings.bus_exchange,
        commissaire_service::STARTUP_BUS_WAIT,
    )
    .await
    .context("connecting to the message bus")?;
    let service = Arc::new(Investigator::new(bus.clone(), config));
    let handle = commissaire_service::run(service.clone(), bus, settings.workers).await?;
    // Investigations nobody owns (their announcement was lost, or their
    // replica died) are taken up from storage.
    let scanner = service.spawn_scanner(FirstScan::ExpiredOnly, settings.workers);
    shutdown_signal().await;
    scanner.abort();
    handle.stop();
    Ok(())
}
