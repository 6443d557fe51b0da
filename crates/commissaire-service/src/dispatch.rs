//! Running a service: consume its queue, parse each request, call the
//! declared method, reply and acknowledge.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use commissaire_bus::request_id::REQUEST_ID;
use commissaire_bus::{Bus, Incoming, Request, Response, RpcError, codes, method_of};
use serde_json::Value;
use tracing::Instrument;

use crate::{Methods, Service};

/// A running service; dropping it does not stop it, [`ServiceHandle::stop`] does.
pub struct ServiceHandle {
    workers: Vec<tokio::task::JoinHandle<()>>,
    handled: Arc<AtomicU64>,
    stopping: tokio::sync::watch::Sender<bool>,
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

    /// A graceful stop: the workers take no new message, finish the ones
    /// they are handling (reply, acknowledge) and end; those still at work
    /// after `within` are stopped as [`ServiceHandle::stop`] does (their
    /// messages go back to the queue). Messages taken from the queue but
    /// not started go back to it too.
    pub async fn drain(self, within: std::time::Duration) {
        self.stopping.send_replace(true);
        let aborts: Vec<_> = self.workers.iter().map(|w| w.abort_handle()).collect();
        let all = futures::future::join_all(self.workers);
        if tokio::time::timeout(within, all).await.is_err() {
            tracing::warn!(
                within_seconds = within.as_secs_f64(),
                "messages still in process at the end of the shutdown timeout go back to the queue"
            );
            for a in aborts {
                a.abort();
            }
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
pub async fn run<S: Service>(
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
    let methods = Arc::new(S::methods());
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let workers = (0..workers)
        .map(|_| {
            let stream = stream.clone();
            let service = service.clone();
            let methods = methods.clone();
            let handled = handled.clone();
            let mut stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    // A stop is looked at between messages, never in one.
                    let message = tokio::select! {
                        biased;
                        _ = stop.wait_for(|s| *s) => break,
                        m = stream.recv() => m,
                    };
                    let Ok(message) = message else { break };
                    handle(&service, &methods, message, &handled).await;
                }
            })
        })
        .collect();
    Ok(ServiceHandle {
        workers,
        handled,
        stopping,
    })
}

/// A service with its method table, called in this process without a bus
/// (benchmarks seeding a store, tests).
pub struct Direct<S> {
    service: Arc<S>,
    methods: Methods<S>,
}

impl<S: Service> Direct<S> {
    /// `service` with its methods.
    pub fn new(service: Arc<S>) -> Self {
        Direct {
            service,
            methods: S::methods(),
        }
    }

    /// Runs `method` on `params` as a request from the bus would.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        match self.methods.call(self.service.clone(), method, params) {
            Some(call) => contained(self.service.name(), method, call).await,
            None => Err(RpcError::new(
                codes::METHOD_NOT_FOUND,
                format!("{} has no method '{method}'", self.service.name()),
            )),
        }
    }
}

/// Handles one message: parse, check, call, reply, acknowledge.
async fn handle<S: Service>(
    service: &Arc<S>,
    methods: &Methods<S>,
    message: Incoming,
    handled: &AtomicU64,
) {
    let started = std::time::Instant::now();
    let response = respond(service, methods, &message.routing_key, &message.body).await;
    metrics::histogram!(crate::metrics::names::SERVICE_REQUEST_SECONDS,
        "service" => service.name().to_string(), "method" => method_of(&message.routing_key).to_string())
    .record(started.elapsed().as_secs_f64());
    handled.fetch_add(1, Ordering::Relaxed);
    let reply = response.map(|r| serde_json::to_vec(&r).expect("responses serialise"));
    if let Err(e) = message.finish(reply).await {
        tracing::warn!(service = service.name(), error = %e, "could not reply to or acknowledge a message");
    }
}

/// The response to a raw message; `None` for notifications.
async fn respond<S: Service>(
    service: &Arc<S>,
    methods: &Methods<S>,
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
    } else if !(request.params.is_object() || request.params.is_array() || request.params.is_null())
    {
        Err(RpcError::invalid_params(
            "params must be an object or an array",
        ))
    } else {
        match methods.call(service.clone(), method, request.params) {
            Some(call) => {
                // Lines logged while handling it, and the bus calls it
                // makes, carry the HTTP request's id.
                let span = tracing::info_span!("rpc", method = %routing_key, request_id = tracing::field::Empty);
                let started = std::time::Instant::now();
                let handler = contained(service.name(), method, call);
                let contained = async move {
                    let result = handler.await;
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    tracing::debug!(ms, ok = result.is_ok(), "handled");
                    result
                };
                match request.request_id.clone() {
                    Some(id) => {
                        span.record("request_id", tracing::field::display(&id));
                        REQUEST_ID.scope(id, contained).instrument(span).await
                    }
                    None => contained.instrument(span).await,
                }
            }
            None => Err(RpcError::new(
                codes::METHOD_NOT_FOUND,
                format!("{} has no method '{method}'", service.name()),
            )),
        }
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

/// Runs a method's `call`; a panic inside it becomes a JSON-RPC internal
/// error for this call alone (logged with the method and the panic's
/// message), and the worker goes on with the next message.
async fn contained(
    service: &str,
    method: &str,
    call: futures::future::BoxFuture<'static, Result<Value, RpcError>>,
) -> Result<Value, RpcError> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(call).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            tracing::error!(service, method, panic = %what, "a handler panicked; the call gets an internal error");
            Err(RpcError::new(
                codes::INTERNAL_ERROR,
                format!(
                    "internal error in {service}.{method} (the handler panicked; see the service's log)",
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commissaire_bus::InProcessBus;
    use serde_json::json;
    use std::time::Duration;

    struct Echo;

    impl Service for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn methods() -> Methods<Self> {
            Methods::new()
                .method("say", |_, params: Value| async move { Ok(params) })
                .method("fail", |_, _: Value| async move {
                    Err::<Value, _>(RpcError::conflict("no"))
                })
                .method("slow", |_, params: Value| async move {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    Ok(params)
                })
                .method("panic", |_, params: Value| async move {
                    if params.is_object() || params.is_array() {
                        panic!("the handler broke on {params}");
                    }
                    Ok(params)
                })
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
    async fn a_drain_finishes_the_message_in_process_and_takes_no_other() {
        let bus: Bus = Arc::new(InProcessBus::new());
        let handle = run(Arc::new(Echo), bus.clone(), 1).await.unwrap();
        let t = Duration::from_secs(3);
        let in_flight = {
            let bus = bus.clone();
            tokio::spawn(async move { bus.request("echo.slow", json!({"n": 1}), t).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        handle.drain(Duration::from_secs(5)).await;
        // The drain waited for the handler, and its caller got the answer.
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert_eq!(in_flight.await.unwrap().unwrap(), json!({"n": 1}));
        // Nothing takes messages any more.
        let e = bus
            .request("echo.say", json!({}), Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.rpc().is_none(), "answered after the drain: {e:?}");
    }

    #[tokio::test]
    async fn a_drain_stops_a_message_still_in_process_at_its_timeout() {
        let bus: Bus = Arc::new(InProcessBus::new());
        let handle = run(Arc::new(Echo), bus.clone(), 1).await.unwrap();
        let in_flight = {
            let bus = bus.clone();
            tokio::spawn(async move {
                bus.request("echo.slow", json!({}), Duration::from_secs(2))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        handle.drain(Duration::from_millis(50)).await;
        assert!(started.elapsed() < Duration::from_millis(300));
        assert!(
            in_flight.await.unwrap().is_err(),
            "no answer: the handler was stopped"
        );
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
}
