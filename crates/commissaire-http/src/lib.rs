//! The Commissaire REST server (`commissaire-server`): the `/api/v0` API of
//! the original documentation, served by axum, answered by JSON-RPC calls on
//! the bus, behind a stack of authentication plugins, over HTTP or TLS.

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod peer;
pub mod probes;
pub mod read_cache;
pub mod routes;
pub mod serve;

use std::sync::Arc;

use anyhow::Context;
use commissaire_bus::Bus;

pub use config::{ServerArgs, ServerConfig};

/// Builds the router for `config` on `bus` (plugins are set up here).
pub async fn build_app(
    config: &ServerConfig,
    bus: Bus,
) -> anyhow::Result<(axum::Router, api::Api, Arc<probes::Startup>)> {
    commissaire_service::metrics::install();
    let startup = Arc::new(probes::Startup::default());
    let auth = auth::AuthManager::new(&config.plugins, config.self_auths.clone())
        .await
        .context("setting up authentication")?;
    if auth.is_open() {
        tracing::warn!("no authentication plugin is configured: every request is allowed");
    }
    let cache = read_cache::ReadCache::start(bus.clone(), config.read_cache_ttl);
    let api = api::Api::new(
        read_cache::WriteTracking::wrap(bus, cache.clone()),
        config.request_timeout,
    );
    let state = routes::AppState {
        api: api.clone(),
        auth: Arc::new(auth),
        cache,
        throttle: Arc::new(auth::throttle::FailureThrottle::new(config.auth_throttle)),
        startup: startup.clone(),
    };
    Ok((routes::router(state, &config.probes), api, startup))
}

/// Runs the server until the process is stopped: binds, creates the default
/// network (retrying until the storage service answers), and serves.
pub async fn run(config: ServerConfig, bus: Bus) -> anyhow::Result<()> {
    let address = format!("{}:{}", config.listen_interface, config.listen_port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    serve_on(listener, config, bus).await
}

/// Like [`run`], on a listener already bound (tests bind port 0).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    bus: Bus,
) -> anyhow::Result<()> {
    let (app, api, startup) = build_app(&config, bus).await?;
    let tls = match &config.tls_pemfile {
        Some(pem) => Some(serve::tls_config(
            pem,
            config.tls_clientverifyfile.as_deref(),
        )?),
        None => None,
    };
    tracing::info!(address = %listener.local_addr()?, tls = tls.is_some(), "commissaire-server listening");
    tokio::spawn(async move {
        // Storage may not be up yet: try again, 100 ms apart at first,
        // then up to 2 s apart.
        let mut pause = std::time::Duration::from_millis(100);
        loop {
            match api.ensure_default_network().await {
                Ok(()) => {
                    startup.mark_started();
                    tracing::info!("ready: storage answers and the default network exists");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot create the default network yet; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(2));
                }
            }
        }
    });
    serve::serve(listener, app, tls, config.header_read_timeout).await?;
    Ok(())
}
