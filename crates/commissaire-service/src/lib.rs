//! The Commissaire service framework.
//!
//! A service is a long-running process that answers JSON-RPC requests from
//! the bus. It declares its name (which is also its queue, its config file
//! name and the first segment of its routing keys) and the methods it
//! answers, and implements [`Service::call`]; [`run`] does the rest: consume
//! the shared queue, run `workers` concurrent workers (replicas of the same
//! service on other machines compete for the same queue), parse requests,
//! reply, and acknowledge.
//!
//! [`ServiceArgs`] and [`load_settings`] give every service binary the same
//! command line (`-c/--config`, `--bus-uri`, `--bus-exchange`, `--workers`,
//! `--debug`) and configuration rules.

mod config;
mod etcd;
mod replica;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use commissaire_bus::{Bus, Incoming, Request, Response, RpcError, codes, method_of};
use serde_json::{Map, Value};

pub use config::{
    CONFIG_DIR, ConfigError, default_config_path, etcd_config_key, load as load_config,
};
pub use etcd::{EtcdError, EtcdSettings};
pub use replica::replica_id;

/// Concurrent workers of a service unless `--workers` or `workers` says
/// otherwise (workers are tasks waiting on I/O, so many are cheap).
pub const DEFAULT_WORKERS: usize = 32;

/// The bus URI used when neither the command line nor the configuration gives one.
pub const DEFAULT_BUS_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A service: a named set of JSON-RPC methods.
#[async_trait]
pub trait Service: Send + Sync + 'static {
    /// The service name (`storage`): its queue, its config file, its routing prefix.
    fn name(&self) -> &str;

    /// The routing-key patterns its queue is bound to (default `<name>.*`).
    fn bindings(&self) -> Vec<String> {
        vec![format!("{}.*", self.name())]
    }

    /// The methods it answers; others get -32601.
    fn methods(&self) -> &[&'static str];

    /// Runs `method` with `params` (an object or an array).
    async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError>;
}

/// A running service; dropping it does not stop it, [`ServiceHandle::stop`] does.
pub struct ServiceHandle {
    workers: Vec<tokio::task::JoinHandle<()>>,
    handled: Arc<AtomicU64>,
}

impl ServiceHandle {
    /// How many messages this instance has handled.
    pub fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    /// Stops the workers (messages not yet acknowledged go back to the queue).
    pub fn stop(&self) {
        for w in &self.workers {
            w.abort();
        }
    }

    /// Waits until every worker has ended.
    pub async fn join(self) {
        for w in self.workers {
            let _ = w.await;
        }
    }
}

/// Starts `workers` workers answering `service`'s requests from `bus`.
pub async fn run<S: Service + ?Sized>(
    service: Arc<S>,
    bus: Bus,
    workers: usize,
) -> Result<ServiceHandle, commissaire_bus::BusError> {
    let workers = workers.max(1);
    let stream = bus
        .consume(
            service.name(),
            &service.bindings(),
            workers.min(u16::MAX as usize) as u16,
        )
        .await?;
    tracing::info!(service = service.name(), workers, bus = %bus.describe(), "service started");
    let handled = Arc::new(AtomicU64::new(0));
    let workers = (0..workers)
        .map(|_| {
            let stream = stream.clone();
            let service = service.clone();
            let handled = handled.clone();
            tokio::spawn(async move {
                while let Ok(message) = stream.recv().await {
                    handle(&*service, message, &handled).await;
                }
            })
        })
        .collect();
    Ok(ServiceHandle { workers, handled })
}

/// Handles one message: parse, check, call, reply, acknowledge.
async fn handle<S: Service + ?Sized>(service: &S, message: Incoming, handled: &AtomicU64) {
    let response = respond(service, &message.routing_key, &message.body).await;
    handled.fetch_add(1, Ordering::Relaxed);
    let reply = response.map(|r| serde_json::to_vec(&r).expect("responses serialise"));
    if let Err(e) = message.finish(reply).await {
        tracing::warn!(service = service.name(), error = %e, "could not reply to or acknowledge a message");
    }
}

/// The response to a raw message; `None` for notifications.
async fn respond<S: Service + ?Sized>(
    service: &S,
    routing_key: &str,
    body: &[u8],
) -> Option<Response> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Some(Response::failure(
                Value::Null,
                RpcError::new(codes::PARSE_ERROR, format!("message is not JSON: {e}")),
            ));
        }
    };
    let id = value.get("id").cloned();
    let request: Request = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => {
            return Some(Response::failure(
                id.unwrap_or(Value::Null),
                RpcError::invalid_request(format!("not a JSON-RPC request: {e}")),
            ));
        }
    };
    let method = method_of(routing_key);
    let result = if request.jsonrpc != "2.0" {
        Err(RpcError::invalid_request("jsonrpc must be \"2.0\""))
    } else if request.method != method {
        Err(RpcError::invalid_request(format!(
            "method '{}' does not match routing key '{routing_key}'",
            request.method
        )))
    } else if !service.methods().contains(&method) {
        Err(RpcError::new(
            codes::METHOD_NOT_FOUND,
            format!("{} has no method '{method}'", service.name()),
        ))
    } else if !(request.params.is_object() || request.params.is_array() || request.params.is_null())
    {
        Err(RpcError::invalid_params(
            "params must be an object or an array",
        ))
    } else {
        call_contained(service, method, request.params).await
    };
    if let Err(e) = &result {
        tracing::debug!(service = service.name(), method, code = e.code, error = %e.message, "request failed");
    }
    let id = request.id?;
    Some(match result {
        Ok(v) => Response::success(id, v),
        Err(e) => Response::failure(id, e),
    })
}

/// Runs `service.call`; a panic inside it becomes a JSON-RPC internal
/// error for this call alone (logged with the method and the panic's
/// message), and the worker goes on with the next message.
async fn call_contained<S: Service + ?Sized>(
    service: &S,
    method: &str,
    params: Value,
) -> Result<Value, RpcError> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(service.call(method, params))
        .catch_unwind()
        .await
    {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            tracing::error!(service = service.name(), method, panic = %what, "a handler panicked; the call gets an internal error");
            Err(RpcError::new(
                codes::INTERNAL_ERROR,
                format!(
                    "internal error in {}.{method} (the handler panicked; see the service's log)",
                    service.name()
                ),
            ))
        }
    }
}

/// The command line every service binary accepts.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServiceArgs {
    /// Configuration file (JSON); default /etc/commissaire/<service>.conf.
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Message bus URI (overrides the configuration's bus_uri).
    #[arg(long = "bus-uri")]
    pub bus_uri: Option<String>,
    /// Name of the topic exchange.
    #[arg(long = "bus-exchange")]
    pub bus_exchange: Option<String>,
    /// Number of concurrent workers.
    #[arg(long = "workers")]
    pub workers: Option<usize>,
    /// Log at debug level.
    #[arg(long = "debug")]
    pub debug: bool,
}

/// A service's resolved settings.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Bus URI.
    pub bus_uri: String,
    /// Exchange name.
    pub bus_exchange: String,
    /// Worker count.
    pub workers: usize,
    /// Debug logging.
    pub debug: bool,
    /// The whole configuration document (service-specific members included).
    pub config: Map<String, Value>,
}

/// Loads a service's settings: the command line over the configuration over the defaults.
pub async fn load_settings(
    service: &str,
    args: &ServiceArgs,
) -> Result<ServiceSettings, ConfigError> {
    let etcd = EtcdSettings::from_env();
    let config = config::load(service, args.config.as_deref(), etcd.as_ref()).await?;
    let string = |key: &str| config.get(key).and_then(Value::as_str).map(str::to_string);
    Ok(ServiceSettings {
        bus_uri: args
            .bus_uri
            .clone()
            .or_else(|| string("bus_uri"))
            .unwrap_or_else(|| DEFAULT_BUS_URI.to_string()),
        bus_exchange: args
            .bus_exchange
            .clone()
            .or_else(|| string("bus_exchange"))
            .unwrap_or_else(|| commissaire_bus::DEFAULT_EXCHANGE.to_string()),
        workers: args
            .workers
            .or_else(|| {
                config
                    .get("workers")
                    .and_then(Value::as_u64)
                    .map(|w| w as usize)
            })
            .unwrap_or(DEFAULT_WORKERS),
        debug: args.debug
            || config
                .get("debug")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        config,
    })
}

/// Sets up logging to stderr. `logging` is the configuration's `logging`
/// member: `{"level": "info"|"debug"|..., "format": "text"|"json"}`;
/// `RUST_LOG` overrides the level.
pub fn init_logging(debug: bool, logging: Option<&Value>) {
    let level = logging
        .and_then(|l| l.get("level"))
        .and_then(Value::as_str)
        .unwrap_or(if debug { "debug" } else { "info" })
        .to_string();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let json = logging
        .and_then(|l| l.get("format"))
        .and_then(Value::as_str)
        == Some("json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// How long a service binary waits for the bus at start-up.
pub const STARTUP_BUS_WAIT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;
    use commissaire_bus::InProcessBus;
    use serde_json::json;

    struct Echo;

    #[async_trait]
    impl Service for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn methods(&self) -> &[&'static str] {
            &["say", "fail", "panic"]
        }
        async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
            match method {
                "say" => Ok(params),
                "panic" => panic!("the handler broke on {params}"),
                _ => Err(RpcError::conflict("no")),
            }
        }
    }

    #[tokio::test]
    async fn dispatches_and_maps_errors() {
        let bus: Bus = Arc::new(InProcessBus::new());
        let handle = run(Arc::new(Echo), bus.clone(), 2).await.unwrap();
        let t = Duration::from_secs(2);
        assert_eq!(
            bus.request("echo.say", json!({"x": 1}), t).await.unwrap(),
            json!({"x": 1})
        );
        let e = bus.request("echo.fail", json!({}), t).await.unwrap_err();
        assert_eq!(e.rpc().unwrap().code, codes::CONFLICT);
        let e = bus.request("echo.nope", json!({}), t).await.unwrap_err();
        assert_eq!(e.rpc().unwrap().code, codes::METHOD_NOT_FOUND);
        let reply = bus
            .call_raw("echo.say", b"{not json".to_vec(), t)
            .await
            .unwrap();
        let reply: Response = serde_json::from_slice(&reply).unwrap();
        assert_eq!(reply.error.unwrap().code, codes::PARSE_ERROR);
        let reply = bus
            .call_raw(
                "echo.say",
                br#"{"jsonrpc":"2.0","id":7,"method":"other","params":{}}"#.to_vec(),
                t,
            )
            .await
            .unwrap();
        let reply: Response = serde_json::from_slice(&reply).unwrap();
        assert_eq!(reply.id, json!(7));
        assert_eq!(reply.error.unwrap().code, codes::INVALID_REQUEST);
        assert_eq!(handle.handled(), 5);
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_an_internal_error_and_the_worker_lives_on() {
        let bus: Bus = Arc::new(InProcessBus::new());
        // One worker: if a panic ended it, nothing would answer afterwards.
        let handle = run(Arc::new(Echo), bus.clone(), 1).await.unwrap();
        let t = Duration::from_secs(2);
        for i in 0..3 {
            let e = bus
                .request("echo.panic", json!({"n": i}), t)
                .await
                .unwrap_err();
            let rpc = e.rpc().expect("a JSON-RPC error, not a timeout");
            assert_eq!(rpc.code, codes::INTERNAL_ERROR, "{rpc:?}");
            assert!(rpc.message.contains("echo.panic"), "{}", rpc.message);
        }
        assert_eq!(
            bus.request("echo.say", json!({"still": "here"}), t)
                .await
                .unwrap(),
            json!({"still": "here"})
        );
        // A panicking notification is contained too.
        bus.notify("echo.panic", json!({})).await.unwrap();
        assert_eq!(
            bus.request("echo.say", json!([1]), t).await.unwrap(),
            json!([1])
        );
        assert_eq!(handle.handled(), 6);
    }

    #[tokio::test]
    async fn settings_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.conf");
        std::fs::write(
            &path,
            r#"{"bus_uri": "amqp://file", "workers": 3, "debug": true}"#,
        )
        .unwrap();
        let mut args = ServiceArgs {
            config: Some(path),
            ..Default::default()
        };
        let s = load_settings("svc", &args).await.unwrap();
        assert_eq!(
            (s.bus_uri.as_str(), s.workers, s.debug),
            ("amqp://file", 3, true)
        );
        args.bus_uri = Some("amqp://cli".into());
        args.workers = Some(9);
        let s = load_settings("svc", &args).await.unwrap();
        assert_eq!((s.bus_uri.as_str(), s.workers), ("amqp://cli", 9));
        assert_eq!(s.bus_exchange, "commissaire");
    }
}
