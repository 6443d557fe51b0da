//! `commissaire-containermgr-service`: the `container.*` methods.

use std::sync::Arc;

use clap::Parser;
use commissaire_containermgr_service::ContainerManagerService;
use commissaire_service::{ServiceArgs, run_daemon};

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
    run_daemon("containermgr", &cli.service, |settings, bus| async move {
        let service = Arc::new(ContainerManagerService::new(bus.clone()));
        let handle = commissaire_service::run(service, bus, settings.workers).await?;
        Ok(move || async move { handle.stop() })
    })
    .await
}
