//! `commissaire-bench`: prints throughput and p50/p99 latency of
//! `storage.get` round trips (AMQP+etcd, in-process+redb) and of
//! authenticated REST reads (`GET /api/v0/cluster/NAME`, `GET /api/v0/hosts`
//! with 1,000 hosts stored) over AMQP+etcd and all-in-one, at concurrency 1
//! and 16. Needs the test bed (run it through `scripts/bench.sh`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use commissaire_bus::{Bus, InProcessBus};
use commissaire_http::{ServerArgs, ServerConfig};
use commissaire_storage::StorageRouter;
use commissaire_testkit as testkit;
use serde_json::json;

/// Benchmark options.
#[derive(Debug, Parser)]
struct Cli {
    /// Requests per storage.get measurement.
    #[arg(long, default_value_t = 4000)]
    storage_requests: usize,
    /// Requests per cluster GET measurement.
    #[arg(long, default_value_t = 4000)]
    cluster_requests: usize,
    /// Requests per hosts-list measurement.
    #[arg(long, default_value_t = 200)]
    hosts_requests: usize,
    /// Hosts stored for the hosts-list measurement.
    #[arg(long, default_value_t = 1000)]
    hosts: usize,
}

/// Runs `total` calls of `call` with `concurrency` callers; prints a line.
async fn measure<F, Fut>(label: &str, total: usize, concurrency: usize, call: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let per_caller = total / concurrency;
    let start = Instant::now();
    let callers = (0..concurrency).map(|_| {
        let call = call.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_caller);
            for _ in 0..per_caller {
                let t = Instant::now();
                call().await.expect("request failed");
                latencies.push(t.elapsed());
            }
            latencies
        })
    });
    let mut latencies: Vec<Duration> = Vec::new();
    for caller in futures::future::join_all(callers).await {
        latencies.extend(caller.expect("caller task"));
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{label:<48} c={concurrency:<3} n={:<6} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}

async fn etcd_router() -> anyhow::Result<StorageRouter> {
    Ok(StorageRouter::from_config(Some(&json!({
        "type": "etcd", "server_url": format!("http://{}", testkit::etcd_endpoint()), "prefix": testkit::etcd_prefix()
    })))
    .await?)
}

async fn redb_router(dir: &tempfile::TempDir) -> anyhow::Result<StorageRouter> {
    Ok(StorageRouter::from_config(Some(
        &json!({"type": "redb", "path": dir.path().join("bench.redb")}),
    ))
    .await?)
}

async fn bench_storage_get(
    label: &str,
    bus: Bus,
    router: StorageRouter,
    total: usize,
) -> anyhow::Result<()> {
    let _service =
        commissaire_storage::start(router, bus.clone(), commissaire_service::DEFAULT_WORKERS)
            .await?;
    let t = Duration::from_secs(10);
    bus.request(
        "storage.save",
        json!({"model_type_name": "Network", "model_json_data": {"name": "bench"}}),
        t,
    )
    .await?;
    for concurrency in [1, 16] {
        let bus = bus.clone();
        measure(label, total, concurrency, move || {
            let bus = bus.clone();
            async move {
                bus.request(
                    "storage.get",
                    json!({"model_type_name": "Network", "model_json_data": {"name": "bench"}}),
                    t,
                )
                .await?;
                Ok(())
            }
        })
        .await;
    }
    Ok(())
}

/// Starts a storage service and the REST server on `bus`; returns the base URL.
async fn start_stack(
    bus: Bus,
    router: StorageRouter,
    users: &std::path::Path,
    bus_uri: &str,
) -> anyhow::Result<String> {
    std::mem::forget(
        commissaire_storage::start(router, bus.clone(), commissaire_service::DEFAULT_WORKERS)
            .await?,
    );
    let args = ServerArgs {
        no_config_file: true,
        authentication_plugins: vec![format!("httpbasicauth:filepath={}", users.display())],
        ..Default::default()
    };
    let config = ServerConfig::resolve(&args, bus_uri)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { commissaire_http::serve_on(listener, config, bus).await });
    Ok(base)
}

async fn bench_http(label: &str, base: String, bus: Bus, cli: &Cli) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let put = |path: String, body: serde_json::Value| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let r = client
                .put(format!("{base}{path}"))
                .basic_auth("a", Some("a"))
                .json(&body)
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "PUT {path}: {}", r.status());
            anyhow::Ok(())
        }
    };
    // wait for the default network
    for _ in 0..100 {
        if put("/api/v0/cluster/bench".into(), json!({})).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t = Duration::from_secs(30);
    let hosts: Vec<serde_json::Value> = (0..cli.hosts)
        .map(|i| json!({"address": format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256), "status": "active", "os": "fedora", "cpus": 4, "memory": 8_000_000, "space": 50_000_000}))
        .collect();
    for chunk in hosts.chunks(100) {
        bus.request(
            "storage.save",
            json!({"model_type_name": "Host", "model_json_data": chunk}),
            t,
        )
        .await?;
    }
    let members: Vec<&serde_json::Value> = hosts.iter().take(3).map(|h| &h["address"]).collect();
    let cluster = bus
        .request(
            "storage.get",
            json!({"model_type_name": "Cluster", "model_json_data": {"name": "bench"}}),
            t,
        )
        .await?;
    let mut next = cluster.clone();
    next["hostset"] = json!(members);
    bus.request(
        "storage.save",
        json!({"model_type_name": "Cluster", "model_json_data": next}),
        t,
    )
    .await?;
    for (what, path, total) in [
        (
            "GET /api/v0/cluster/bench",
            "/api/v0/cluster/bench",
            cli.cluster_requests,
        ),
        (
            "GET /api/v0/hosts (1000 hosts)",
            "/api/v0/hosts",
            cli.hosts_requests,
        ),
    ] {
        for concurrency in [1, 16] {
            let client = client.clone();
            let url = format!("{base}{path}");
            measure(&format!("{label}: {what}"), total, concurrency, move || {
                let client = client.clone();
                let url = url.clone();
                async move {
                    let r = client.get(&url).basic_auth("a", Some("a")).send().await?;
                    anyhow::ensure!(r.status() == 200, "GET {url}: {}", r.status());
                    r.bytes().await?;
                    Ok(())
                }
            })
            .await;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let dir = tempfile::tempdir()?;
    let users = dir.path().join("users.json");
    // A realistic cost-12 hash: the server's credential cache pays it once.
    std::fs::write(
        &users,
        json!({"a": {"hash": bcrypt::hash("a", 12)?}}).to_string(),
    )?;
    println!("# storage.get round trips");
    let amqp = testkit::fresh_vhost();
    let bus = commissaire_bus::connect(&amqp, "commissaire", Duration::from_secs(10))
        .await
        .context("AMQP")?;
    bench_storage_get(
        "storage.get AMQP+etcd",
        bus,
        etcd_router().await?,
        cli.storage_requests,
    )
    .await?;
    let bus: Bus = Arc::new(InProcessBus::new());
    bench_storage_get(
        "storage.get in-process+redb",
        bus,
        redb_router(&dir).await?,
        cli.storage_requests,
    )
    .await?;

    println!("# REST reads, HTTP basic auth (bcrypt cost 12)");
    let amqp = testkit::fresh_vhost();
    let bus = commissaire_bus::connect(&amqp, "commissaire", Duration::from_secs(10)).await?;
    let base = start_stack(bus.clone(), etcd_router().await?, &users, &amqp).await?;
    bench_http("AMQP+etcd", base, bus, &cli).await?;
    let redb_dir = tempfile::tempdir()?;
    let bus: Bus = Arc::new(InProcessBus::new());
    let base = start_stack(
        bus.clone(),
        redb_router(&redb_dir).await?,
        &users,
        "inprocess://",
    )
    .await?;
    bench_http("all-in-one (in-process+redb)", base, bus, &cli).await?;
    Ok(())
}
