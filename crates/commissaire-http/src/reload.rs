//! A reload (SIGHUP, systemd's `ExecReload=`): the configuration is read
//! again and what can change without dropping a connection does:
//! authentication (the plugins and what they read: a users file, ...), the
//! TLS certificate (for new connections), the log level. Members that need
//! a restart are named in the log. A configuration that does not load (a
//! typo, a missing users file) changes nothing and is logged.

use std::sync::{Arc, RwLock};

use crate::ServerConfig;
use crate::auth::AuthManager;
use crate::serve::TlsSettings;

/// The authentication the server asks, replaced whole by a reload.
#[derive(Clone)]
pub struct SharedAuth(Arc<RwLock<Arc<AuthManager>>>);

impl SharedAuth {
    /// Requests are authenticated by `auth`.
    pub fn new(auth: AuthManager) -> Self {
        SharedAuth(Arc::new(RwLock::new(Arc::new(auth))))
    }

    /// The authentication in force now.
    pub fn current(&self) -> Arc<AuthManager> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn replace(&self, auth: AuthManager) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(auth);
    }
}

/// What a reload changes in a running server.
#[derive(Clone)]
pub struct Live {
    /// The authentication plugins.
    pub auth: SharedAuth,
    /// The TLS certificate, when the server serves TLS.
    pub tls: Option<TlsSettings>,
}

/// Applies `next` (the configuration read again) to the server running
/// with `current`, logging what changed; `current` becomes `next`.
pub async fn apply(live: &Live, current: &mut ServerConfig, next: ServerConfig) {
    commissaire_service::reload_log_level(
        (current.debug, current.file.get("logging")),
        (next.debug, next.file.get("logging")),
    );
    match AuthManager::new(&next.plugins, next.self_auths.clone()).await {
        Ok(auth) => {
            let auth = auth.with_roles(next.roles.clone());
            let before = live.auth.current().summary();
            let after = auth.summary();
            live.auth.replace(auth);
            if before == after {
                tracing::info!(plugins = ?after, "reload: authentication read again");
            } else {
                tracing::info!(before = ?before, after = ?after, "reload: authentication changed");
            }
        }
        Err(e) => tracing::warn!(error = %e, "reload: authentication left as it was"),
    }
    match (&live.tls, &next.tls_pemfile) {
        (Some(tls), Some(pem)) => {
            match crate::serve::tls_config(pem, next.tls_clientverifyfile.as_deref()) {
                Ok(config) => {
                    tls.replace(config);
                    tracing::info!(pemfile = %pem.display(), "reload: TLS certificate read again (new connections use it)");
                }
                Err(e) => tracing::warn!(error = %e, "reload: TLS certificate left as it was"),
            }
        }
        (None, None) => {}
        _ => tracing::warn!("reload: turning TLS on or off takes a restart"),
    }
    for member in restart_only_changes(current, &next) {
        tracing::warn!(
            member,
            "reload: this change takes effect at the next restart"
        );
    }
    *current = next;
}

/// The members that differ between `a` and `b` and that only a restart
/// applies.
pub fn restart_only_changes(a: &ServerConfig, b: &ServerConfig) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |member: &'static str, differs: bool| {
        if differs {
            changed.push(member);
        }
    };
    check("listen-interface", a.listen_interface != b.listen_interface);
    check("listen-port", a.listen_port != b.listen_port);
    check("bus-uri", a.bus_uri != b.bus_uri);
    check("bus-exchange", a.bus_exchange != b.bus_exchange);
    check("request-timeout", a.request_timeout != b.request_timeout);
    check("read-cache-seconds", a.read_cache_ttl != b.read_cache_ttl);
    check(
        "header-read-timeout",
        a.header_read_timeout != b.header_read_timeout,
    );
    check("shutdown-timeout", a.shutdown_timeout != b.shutdown_timeout);
    check("probes", a.probes != b.probes);
    check(
        "authentication-throttle",
        format!("{:?}", a.auth_throttle) != format!("{:?}", b.auth_throttle),
    );
    changed
}

/// From now on each SIGHUP reads the configuration again with `resolve`
/// and delivers it on the returned channel (for [`crate::run_until`]); one
/// that does not load is logged and changes nothing.
pub fn on_sighup<F>(resolve: F) -> tokio::sync::mpsc::Receiver<ServerConfig>
where
    F: Fn() -> Result<ServerConfig, crate::config::ServerConfigError> + Send + Sync + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let resolve = Arc::new(resolve);
    commissaire_service::on_sighup(move || {
        let (tx, resolve) = (tx.clone(), resolve.clone());
        async move {
            match resolve() {
                Ok(next) => {
                    let _ = tx.send(next).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reload: the configuration does not load; nothing changed");
                    commissaire_service::systemd::ready();
                }
            }
        }
    });
    rx
}
