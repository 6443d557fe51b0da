//! `commissaire-containermgr-service`: the `container.*` methods.

use std::sync::Arc;

use commissaire_containermgr_service::ContainerManagerService;
use commissaire_service::{parse_members, run_daemon};

/// The container manager service has no members of its own (the managers
/// are records in storage): any other member is a mistake.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Members {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    run_daemon(
        "containermgr",
        "Commissaire container manager service.",
        |settings, bus| async move {
            let _: Members = parse_members("containermgr", &settings.config)?;
            let service = Arc::new(ContainerManagerService::new(bus.clone()));
            let handle = commissaire_service::run(service, bus, settings.workers).await?;
            let grace = settings.shutdown_timeout;
            Ok(move || async move { handle.drain(grace).await })
        },
    )
    .await
}
