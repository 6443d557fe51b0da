//! `commissaire-clusterexec-service`: runs the rolling restarts, upgrades
//! and deploys of clusters (`jobs.clusterexec.*` on the bus).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use commissaire_clusterexec_service::{ClusterExec, ClusterExecConfig};
use commissaire_service::{ServiceArgs, run_daemon_with};
use serde_json::{Map, Value, json};

/// Commissaire clusterexec service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
    /// Directory holding restart.yaml, upgrade.yaml and deploy.yaml.
    #[arg(long, env = "COMMISSAIRE_PLAYBOOK_DIR")]
    playbook_dir: Option<PathBuf>,
    /// Seconds a replica's claim on an operation holds without renewal.
    #[arg(long, env = "COMMISSAIRE_CLUSTEREXEC_LEASE_SECONDS")]
    lease_seconds: Option<f64>,
    /// Seconds between scans for operations to take over (default: half the lease).
    #[arg(long, env = "COMMISSAIRE_CLUSTEREXEC_SCAN_SECONDS")]
    scan_seconds: Option<f64>,
    /// Failed hosts tolerated before a roll stops.
    #[arg(long, env = "COMMISSAIRE_CLUSTEREXEC_MAX_FAILURES")]
    max_failures: Option<u32>,
    /// Hosts worked on at once.
    #[arg(long, env = "COMMISSAIRE_CLUSTEREXEC_BATCH_SIZE")]
    batch_size: Option<u32>,
    /// Time limit of one host's playbook run, in seconds.
    #[arg(long, env = "COMMISSAIRE_CLUSTEREXEC_PLAYBOOK_TIMEOUT_SECONDS")]
    playbook_timeout_seconds: Option<f64>,
    /// Ansible variables over the per-OS defaults, as a JSON object.
    #[arg(long, env = "COMMISSAIRE_CLUSTEREXEC_ANSIBLE_VARS")]
    ansible_vars: Option<String>,
    /// This replica's id (default: host name, process id and a random part).
    #[arg(long, env = "COMMISSAIRE_CLUSTEREXEC_REPLICA_ID")]
    replica_id: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let service_args = cli.service.clone();
    run_daemon_with("clusterexec", &service_args, |settings, bus| async move {
        let config = ClusterExecConfig::from_config(&with_flags(settings.config.clone(), cli)?)?;
        let storage = commissaire_storage_client::StorageClient::new(bus.clone())
            .with_outage_patience(config.storage_retry_timeout);
        let access = commissaire_host_access::HostAccess::start(storage, &config.ssh)?;
        let exec = ClusterExec::new(bus.clone(), config, access);
        let handle = commissaire_clusterexec_service::start(exec, bus, settings.workers).await?;
        Ok(move || async move {
            tracing::info!("handing running operations over");
            handle.shutdown().await;
        })
    })
    .await
}

/// The configuration with the command line's flags over it.
fn with_flags(mut config: Map<String, Value>, cli: Cli) -> anyhow::Result<Map<String, Value>> {
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            config.insert(k.to_string(), v);
        }
    };
    set(
        "playbook_dir",
        cli.playbook_dir.map(|p| json!(p.display().to_string())),
    );
    set("lease_seconds", cli.lease_seconds.map(|v| json!(v)));
    set("scan_seconds", cli.scan_seconds.map(|v| json!(v)));
    set("max_failures", cli.max_failures.map(|v| json!(v)));
    set("batch_size", cli.batch_size.map(|v| json!(v)));
    set(
        "playbook_timeout_seconds",
        cli.playbook_timeout_seconds.map(|v| json!(v)),
    );
    set("replica_id", cli.replica_id.map(|v| json!(v)));
    if let Some(vars) = cli.ansible_vars {
        let vars: Value = serde_json::from_str(&vars).context("--ansible-vars is not JSON")?;
        config.insert("ansible_vars".into(), vars);
    }
    Ok(config)
}
