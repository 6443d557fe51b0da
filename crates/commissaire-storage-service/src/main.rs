//! `commissaire-storage-service`: answers `storage.*` requests on the bus
//! from the store handlers configured in `storage_handlers`.

use commissaire_service::run_daemon;
use commissaire_storage::{SecretBox, StorageRouter};

/// Where the master key that seals host credentials lives unless `secrets_key_file` says otherwise.
const DEFAULT_SECRETS_KEY_FILE: &str = "/etc/commissaire/secrets.key";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run_daemon(
        "storage",
        "Commissaire storage service.",
        |settings, bus| async move {
            let router =
                StorageRouter::from_config(settings.config.get("storage_handlers")).await?;
            let key_file = settings
                .config
                .get("secrets_key_file")
                .and_then(|v| v.as_str())
                .unwrap_or(DEFAULT_SECRETS_KEY_FILE);
            let secrets = SecretBox::load_or_create(std::path::Path::new(key_file))?;
            let handle =
                commissaire_storage::start_with_secrets(router, secrets, bus, settings.workers)
                    .await?;
            Ok(move || async move { handle.stop() })
        },
    )
    .await
}
