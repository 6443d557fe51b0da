//! `commissaire-containermgr-service`: the `container.*` methods.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use commissaire_containermgr_service::ContainerManagerService;
use commissaire_service::{ServiceArgs, init_logging, load_settings, shutdown_signal};

/// Commissaire container manager service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let settings = load_settings("containermgr", &cli.service).await?;
    init_logging(settings.debug, settings.config.get("logging"));
    let bus = commissaire_bus::connect(
        &settings.bus_uri,
        &settings.bus_exchange,
        commissaire_service::STARTUP_BUS_WAIT,
    )
    .await
    .context("connecting to the message bus")?;
    let service = Arc::new(ContainerManagerService::new(bus.clone()));
    let handle = commissaire_service::run(service, bus, settings.workers).await?;
    shutdown_signal().await;
    handle.stop();
    Ok(())
}
