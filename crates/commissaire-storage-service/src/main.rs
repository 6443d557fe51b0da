//! `commissaire-storage-service`: answers `storage.*` requests on the bus
//! from the store handlers configured in `storage_handlers`.

use commissaire_service::{parse_members, run_daemon};
use commissaire_storage::{SecretBox, StorageRouter};

/// Where the master key that seals host credentials lives unless `secrets_key_file` says otherwise.
const DEFAULT_SECRETS_KEY_FILE: &str = "/etc/commissaire/secrets.key";

/// The storage service's own members of its document.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Members {
    /// The store handlers (see `StorageRouter::from_config`).
    storage_handlers: Option<serde_json::Value>,
    /// The master key sealing host credentials.
    secrets_key_file: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run_daemon(
        "storage",
        "Commissaire storage service.",
        |settings, bus| async move {
            let members: Members = parse_members("storage", &settings.config)?;
            let router = StorageRouter::from_config(members.storage_handlers.as_ref()).await?;
            let key_file = members
                .secrets_key_file
                .unwrap_or_else(|| DEFAULT_SECRETS_KEY_FILE.into());
            let secrets = SecretBox::load_or_create(&key_file)?;
            let handle =
                commissaire_storage::start_with_secrets(router, secrets, bus, settings.workers)
                    .await?;
            let grace = settings.shutdown_timeout;
            Ok(move || async move { handle.drain(grace).await })
        },
    )
    .await
}
