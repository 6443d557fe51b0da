//! The Commissaire REST server (`commissaire-server`): the `/api/v0` API of
//! the original documentation, served by axum, answered by JSON-RPC calls on
//! the bus, behind a stack of authentication plugins, over HTTP or TLS.

pub mod access_log;
pub mod api;
pub mod audit;
pub mod auth;
pub mod config;
pub mod dev_user;
pub mod error;
pub mod etag;
pub mod extract;
pub mod fleetlock;
pub mod guards;
pub mod metrics;
pub mod openapi;
pub mod peer;
pub mod probes;
pub mod read_cache;
pub mod reload;
pub mod routes;
pub mod serve;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use commissaire_bus::Bus;
use tokio::sync::mpsc;

pub use config::{ServerArgs, ServerConfig};

/// A built server: its router and what runs alongside it.
pub struct App {
    /// The router (API and probes).
    pub router: axum::Router,
    /// The API handlers.
    pub api: api::Api,
    /// Whether the server has finished starting.
    pub startup: Arc<probes::Startup>,
    /// The authentication a reload replaces.
    pub auth: reload::SharedAuth,
}

/// Builds the router for `config` on `bus` (plugins are set up here).
pub async fn build_app(config: &ServerConfig, bus: Bus) -> anyhow::Result<App> {
    commissaire_service::metrics::install();
    let startup = Arc::new(probes::Startup::default());
    let auth = auth::AuthManager::new(&config.plugins, config.self_auths.clone())
        .await
        .context("setting up authentication")?
        .with_roles(config.roles.clone());
    if auth.is_open() {
        tracing::warn!("no authentication plugin is configured: every request is allowed");
    }
    let auth = reload::SharedAuth::new(auth);
    let cache = read_cache::ReadCache::start(bus.clone(), config.read_cache_ttl);
    let api = api::Api::new(
        read_cache::WriteTracking::wrap(bus, cache.clone()),
        config.request_timeout,
    );
    let state = routes::AppState {
        api: api.clone(),
        auth: auth.clone(),
        cache,
        throttle: Arc::new(auth::throttle::FailureThrottle::new(config.auth_throttle)),
        startup: startup.clone(),
        audit: Default::default(),
        fleetlock: config.fleetlock.clone(),
    };
    Ok(App {
        router: routes::router(state, &config.probes),
        api,
        startup,
        auth,
    })
}

/// Runs the server until the process is stopped: binds, creates the default
/// network (retrying until the storage service answers), and serves.
pub async fn run(config: ServerConfig, bus: Bus) -> anyhow::Result<()> {
    run_until(config, bus, std::future::pending(), None).await
}

/// [`run`] until `shutdown` completes (then the server stops gracefully:
/// [`serve::serve`]), applying each configuration `reloads` delivers
/// ([`reload::apply`]).
pub async fn run_until(
    config: ServerConfig,
    bus: Bus,
    shutdown: impl Future<Output = ()>,
    reloads: Option<mpsc::Receiver<ServerConfig>>,
) -> anyhow::Result<()> {
    let address = format!("{}:{}", config.listen_interface, config.listen_port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    serve_until(listener, config, bus, shutdown, reloads).await
}

/// Like [`run`], on a listener already bound (tests bind port 0).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    bus: Bus,
) -> anyhow::Result<()> {
    serve_until(listener, config, bus, std::future::pending(), None).await
}

/// [`run_until`] on a listener already bound.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    bus: Bus,
    shutdown: impl Future<Output = ()>,
    reloads: Option<mpsc::Receiver<ServerConfig>>,
) -> anyhow::Result<()> {
    let app = build_app(&config, bus).await?;
    let tls = match &config.tls_pemfile {
        Some(pem) => Some(serve::TlsSettings::new(serve::tls_config(
            pem,
            config.tls_clientverifyfile.as_deref(),
        )?)),
        None => None,
    };
    tracing::info!(address = %listener.local_addr()?, tls = tls.is_some(), "commissaire-server listening");
    let exposed = {
        let (addr, auth) = (listener.local_addr()?, app.auth.current());
        tokio::spawn(async move { dev_user::warn_if_exposed(addr, &auth).await })
    };
    let (api, startup) = (app.api.clone(), app.startup.clone());
    let starting = tokio::spawn(async move {
        // Storage may not be up yet: try again, 100 ms apart at first,
        // then up to 2 s apart.
        let mut pause = std::time::Duration::from_millis(100);
        loop {
            match api.ensure_default_network().await {
                Ok(()) => {
                    startup.mark_started();
                    commissaire_service::systemd::ready();
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
    let reloading = reloads.map(|mut reloads| {
        let live = reload::Live {
            auth: app.auth.clone(),
            tls: tls.clone(),
        };
        let mut current = config.clone();
        tokio::spawn(async move {
            while let Some(next) = reloads.recv().await {
                reload::apply(&live, &mut current, next).await;
                commissaire_service::systemd::ready();
            }
        })
    });
    let fleet = config
        .probes
        .metrics
        .is_some()
        .then(|| metrics::spawn_fleet_refresh(app.api.clone()));
    let fl = &config.fleetlock;
    let rules = fl.stale_rules();
    let stale_scan = (!fl.prefix.is_empty()
        && (rules.held_longer_than.is_some() || rules.down_longer_than.is_some()))
    .then(|| {
        api::lock_stale::spawn_stale_scan(
            app.api.clone(),
            rules,
            fl.stale_policy,
            fl.scan_interval(),
        )
    });
    let grace = config.shutdown_timeout;
    let served = serve::serve(
        listener,
        app.router,
        tls,
        config.header_read_timeout,
        shutdown,
        grace,
    )
    .await;
    starting.abort();
    for task in [reloading, fleet, stale_scan, Some(exposed)]
        .into_iter()
        .flatten()
    {
        task.abort();
    }
    served?;
    Ok(())
}
