//! `commissaire-investigator-service`: bootstraps new hosts (`jobs.investigate`).

use std::sync::Arc;

use commissaire_host_access::HostAccess;
use commissaire_investigator_service::{FirstScan, Investigator, InvestigatorConfig};
use commissaire_service::run_daemon;
use commissaire_storage_client::StorageClient;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run_daemon(
        "investigator",
        "Commissaire investigator service.",
        |settings, bus| async move {
            let config = InvestigatorConfig::from_config(&settings.config)?;
            let storage =
                StorageClient::new(bus.clone()).with_outage_patience(config.storage_retry_timeout);
            let access = HostAccess::start(storage, &config.ssh)?;
            let service = Arc::new(Investigator::new(bus.clone(), config, access));
            let handle = commissaire_service::run(service.clone(), bus, settings.workers).await?;
            // Investigations nobody owns (their announcement was lost, or their
            // replica died) are taken up from storage.
            let scanner = service.spawn_scanner(FirstScan::ExpiredOnly, settings.workers);
            let grace = settings.shutdown_timeout;
            Ok(move || async move {
                scanner.abort();
                handle.drain(grace).await;
            })
        },
    )
    .await
}
