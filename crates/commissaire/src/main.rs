//! `commissaire`: the all-in-one binary. The REST server and the services
//! run in one process on the in-process bus, with records in an embedded
//! redb file: the quickest way to try the API, with no external service.
//!
//! It accepts the same flags and configuration file as `commissaire-server`,
//! plus `--data-dir` (config member `data-dir`); the services' settings are
//! the members `investigator`, `watcher` and `clusterexec` of that file.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use commissaire_bus::{Bus, InProcessBus};
use commissaire_clusterexec_service::{ClusterExec, ClusterExecConfig};
use commissaire_containermgr_service::ContainerManagerService;
use commissaire_host_access::{HostAccess, SshSettings};
use commissaire_http::{ServerArgs, ServerConfig};
use commissaire_investigator_service::{FirstScan, Investigator, InvestigatorConfig};
use commissaire_storage::{RedbStore, SecretBox, StorageRouter};
use commissaire_storage_client::StorageClient;
use commissaire_watcher_service::{Watcher, WatcherConfig};

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
    #[arg(long = "workers", default_value_t = commissaire_service::DEFAULT_WORKERS)]
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
    const OWN_MEMBERS: [&str; 5] = ["data-dir", "investigator", "watcher", "clusterexec", "ssh"];
    let config = ServerConfig::resolve_with(&cli.server, "inprocess://", &OWN_MEMBERS)?;
    commissaire_service::init_logging(
        config.debug,
        config.file.get("logging"),
        cli.server.log_format,
    );
    commissaire_service::metrics::install();
    let args = cli.server.clone();
    let reloads = commissaire_http::reload::on_sighup(move || {
        ServerConfig::resolve_with(&args, "inprocess://", &OWN_MEMBERS)
    });
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
    // The services, configured by the members of the same name in the
    // configuration file (`"investigator": {...}`, `"watcher": {...}`).
    let section = |name: &str| {
        config
            .file
            .get(name)
            .and_then(|v| v.as_object())
            .cloned()
            .unwrap_or_default()
    };
    // One session pool for every daemon of the process (the top-level
    // `ssh` member).
    for name in ["investigator", "watcher", "clusterexec"] {
        anyhow::ensure!(
            section(name).get("ssh").is_none(),
            "the all-in-one has one SSH session pool: set 'ssh' at the top level of the \
             configuration file, not in '{name}'"
        );
    }
    let ssh: SshSettings = match config.file.get("ssh") {
        Some(v) => commissaire_service::parse_value("ssh", v.clone())?,
        None => SshSettings::default(),
    };
    let access = HostAccess::start(StorageClient::new(bus.clone()), &ssh)?;
    let investigator = InvestigatorConfig::from_config(&section("investigator"))?;
    let investigator = Arc::new(Investigator::new(bus.clone(), investigator, access.clone()));
    let _investigator =
        commissaire_service::run(investigator.clone(), bus.clone(), cli.workers).await?;
    // This process alone opens the embedded store: every investigation in
    // it that has not finished belongs to an earlier run, and is done now.
    let _recovery = investigator.spawn_scanner(FirstScan::TakeOverAll, cli.workers);
    let containermgr = Arc::new(ContainerManagerService::new(bus.clone()));
    let _containermgr = commissaire_service::run(containermgr, bus.clone(), cli.workers).await?;
    let watcher = WatcherConfig::from_config(&section("watcher")).map_err(anyhow::Error::msg)?;
    tokio::spawn(Arc::new(Watcher::new(bus.clone(), watcher, access.clone())).run());
    let clusterexec = ClusterExecConfig::from_config(&section("clusterexec"))?;
    let _clusterexec = commissaire_clusterexec_service::start(
        ClusterExec::new(bus.clone(), clusterexec, access),
        bus.clone(),
        cli.workers,
    )
    .await?;
    commissaire_service::systemd::spawn_watchdog();
    let shutdown = async {
        commissaire_service::shutdown_signal().await;
        tracing::info!("stopping: no new connections; answering the requests in flight");
        commissaire_service::systemd::stopping();
    };
    commissaire_http::run_until(config, bus, shutdown, Some(reloads)).await
}
