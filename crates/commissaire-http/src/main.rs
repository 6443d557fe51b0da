//! `commissaire-server`: the REST API, talking to the services over the bus.

use clap::Parser;
use commissaire_http::{ServerArgs, ServerConfig};

/// Commissaire REST server.
#[derive(Debug, Parser)]
#[command(name = "commissaire-server", version, about)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let config = ServerConfig::resolve(&cli.server, commissaire_service::DEFAULT_BUS_URI)?;
    commissaire_service::init_logging(
        config.debug,
        config.file.get("logging"),
        cli.server.log_format,
    );
    commissaire_service::metrics::install();
    let args = cli.server.clone();
    let reloads = commissaire_http::reload::on_sighup(move || {
        ServerConfig::resolve(&args, commissaire_service::DEFAULT_BUS_URI)
    });
    let bus = commissaire_service::connect_bus(&config.bus_uri, &config.bus_exchange).await?;
    commissaire_service::systemd::spawn_watchdog();
    let shutdown = async {
        commissaire_service::shutdown_signal().await;
        tracing::info!("stopping: no new connections; answering the requests in flight");
        commissaire_service::systemd::stopping();
    };
    commissaire_http::run_until(config, bus, shutdown, Some(reloads)).await
}
