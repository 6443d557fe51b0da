//! `commissaire`: the all-in-one binary. The REST server and the services
//! run in one process on the in-process bus, with records in an embedded
//! redb file: the quickest way to try the API, with no external service.
//!
//! It accepts the same flags and configuration file as `commissaire-server`,
//! plus `--data-dir` (config member `data-dir`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use commissaire_bus::{Bus, InProcessBus};
use commissaire_http::{ServerArgs, ServerConfig};
use commissaire_storage::{RedbStore, SecretBox, StorageRouter};

/// Commissaire all-in-one: server and services in one process.
#[derive(Debug, Parser)]
#[command(name = "commissaire", version, about)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    /// Where the embedded store keeps its data (default: the user's data directory, commissaire/).
    #[arg(long = "data-dir")]
    data_dir: Option<PathBuf>,
    /// Workers per service.
    #[arg(long = "workers", default_value_t = 4)]
    workers: usize,
}

fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("/var/lib"))
        .join("commissaire")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let config = ServerConfig::resolve(&cli.server, "inprocess://")?;
    commissaire_service::init_logging(config.debug, config.file.get("logging"));
    let data_dir = cli
        .data_dir
        .clone()
        .or_else(|| {
            config
                .file
                .get("data-dir")
                .and_then(|v| v.as_str())
                .map(PathBuf::from)
        })
        .unwrap_or_else(default_data_dir);
    let store_path = data_dir.join("commissaire.redb");
    let store = RedbStore::open(&store_path)
        .with_context(|| format!("opening {}", store_path.display()))?;
    tracing::info!(store = %store_path.display(), "using the embedded store");
    let mut router = StorageRouter::new();
    router.add("redb", Arc::new(store), &["*".to_string()])?;
    let bus: Bus = Arc::new(InProcessBus::new());
    let secrets = SecretBox::load_or_create(&data_dir.join("secrets.key"))?;
    let _storage =
        commissaire_storage::start_with_secrets(router, secrets, bus.clone(), cli.workers).await?;
    tokio::select! {
        result = commissaire_http::run(config, bus) => result,
        _ = commissaire_service::shutdown_signal() => {
            tracing::info!("stopping");
            Ok(())
        }
    }
}
