//! `commissaire-watcher-service`: keeps bootstrapped hosts' status current.

use std::sync::Arc;

use commissaire_host_access::HostAccess;
use commissaire_service::run_daemon;
use commissaire_storage_client::StorageClient;
use commissaire_watcher_service::{Watcher, WatcherConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run_daemon(
        "watcher",
        "Commissaire watcher service.",
        |settings, bus| async move {
            let config =
                WatcherConfig::from_config(&settings.config).map_err(anyhow::Error::msg)?;
            let access = HostAccess::start(StorageClient::new(bus.clone()), &config.ssh)?;
            let watching = tokio::spawn(Arc::new(Watcher::new(bus, config, access)).run());
            Ok(move || async move { watching.abort() })
        },
    )
    .await
}
