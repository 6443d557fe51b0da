//! One behaviour suite run against every transport: in-process, AMQP
//! (RabbitMQ, a fresh vhost per test) and Redis (a unique exchange, hence
//! key prefix, per test), plus Redis-specific checks of what the suite cannot
//! see from outside (envelopes, redelivery, recovery of a gone consumer).
//!
//! The AMQP and Redis runs need the testbed (`source /tmp/tb/env`, or
//! `scripts/test.sh`). Connection loss is tested in `redis_reconnect.rs`
//! (its own binary, since it kills every client of the test Redis).

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use commissaire_bus::{
    Bus, BusError, InProcessBus, Incoming, IncomingStream, RedisBus, Request, Response, RpcError,
    Transport, codes,
};
use commissaire_testkit as testkit;
use serde_json::{Value, json};

/// Which transport a run is for (where their documented behaviour differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    InProcess,
    Amqp,
    Redis,
}

type Factory = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Bus> + Send>> + Send + Sync>;

/// An isolated bus namespace; `connect()` gives a new client of it (for
/// in-process, a handle on the same bus).
struct Env {
    kind: Kind,
    factory: Factory,
    /// The AMQP vhost or Redis exchange to remove afterwards.
    namespace: Option<String>,
}

impl Env {
    async fn connect(&self) -> Bus {
        (self.factory)().await
    }

    async fn cleanup(self) {
        match (self.kind, self.namespace) {
            (Kind::Amqp, Some(vhost)) => {
                testkit::rabbitmqctl(&["delete_vhost", &vhost]);
            }
            (Kind::Redis, Some(exchange)) => delete_redis_keys(&exchange).await,
            _ => {}
        }
    }
}

const WAIT: Duration = Duration::from_secs(10);

fn in_process() -> Env {
    let bus: Bus = Arc::new(InProcessBus::new());
    Env {
        kind: Kind::InProcess,
        factory: Arc::new(move || {
            let bus = bus.clone();
            Box::pin(async move { bus })
        }),
        namespace: None,
    }
}

fn amqp() -> Env {
    let uri = testkit::fresh_vhost();
    let vhost = uri.rsplit('/').next().unwrap().to_string();
    Env {
        kind: Kind::Amqp,
        factory: Arc::new(move || {
            let uri = uri.clone();
            Box::pin(async move {
                commissaire_bus::connect(&uri, "commissaire", WAIT)
                    .await
                    .expect("connect to the test RabbitMQ")
            })
        }),
        namespace: Some(vhost),
    }
}

fn unique_exchange() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}

fn redis() -> Env {
    let uri = testkit::redis_uri();
    let exchange = unique_exchange();
    let ex = exchange.clone();
    Env {
        kind: Kind::Redis,
        factory: Arc::new(move || {
            let (uri, ex) = (uri.clone(), ex.clone());
            Box::pin(async move {
                commissaire_bus::connect(&uri, &ex, WAIT)
                    .await
                    .expect("connect to the test Redis")
            })
        }),
        namespace: Some(exchange),
    }
}

/// A plain Redis connection to look at (or tamper with) the bus's keys.
async fn raw_redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(testkit::redis_uri())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn delete_redis_keys(exchange: &str) {
    let mut con = raw_redis().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("commissaire:{exchange}:*"))
        .query_async(&mut con)
        .await
        .unwrap();
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut con)
            .await
            .unwrap();
    }
}

/// Answers a JSON-RPC request: `fail` -> a conflict error with data, `slow`
/// -> waits `params.ms` first, anything else -> its params, with `by` added
/// when the params are an object.
async fn answer(msg: Incoming, by: &str) {
    let request: Request = serde_json::from_slice(&msg.body).expect("a JSON-RPC request");
    let id = request.id.clone().unwrap_or(Value::Null);
    let response = match request.method.as_str() {
        "fail" => Response::failure(
            id,
            RpcError::conflict("already there").with_data(json!({"field": "name"})),
        ),
        method => {
            if method == "slow" {
                let ms = request.params["ms"].as_u64().unwrap_or(100);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let mut result = request.params.clone();
            if let Some(map) = result.as_object_mut() {
                map.insert("by".into(), json!(by));
            }
            Response::success(id, result)
        }
    };
    let reply = request
        .id
        .is_some()
        .then(|| serde_json::to_vec(&response).unwrap());
    msg.finish(reply).await.expect("settle");
}

/// Serves `stream` with `workers` tasks, recording what each handled.
fn serve(
    stream: IncomingStream,
    by: &str,
    workers: usize,
    log: Arc<Mutex<Vec<(String, Value)>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|_| {
            let (stream, by, log) = (stream.clone(), by.to_string(), log.clone());
            tokio::spawn(async move {
                while let Ok(msg) = stream.recv().await {
                    let request: Value = serde_json::from_slice(&msg.body).unwrap();
                    log.lock()
                        .unwrap()
                        .push((by.clone(), request["params"].clone()));
                    answer(msg, &by).await;
                }
            })
        })
        .collect()
}

async fn recv_within(stream: &IncomingStream, wait: Duration) -> Option<Incoming> {
    tokio::time::timeout(wait, stream.recv())
        .await
        .ok()
        .map(|r| r.expect("stream open"))
}

/// Request/reply across two clients; JSON-RPC errors pass through intact.
async fn request_reply(env: &Env) {
    let service = env.connect().await;
    let client = env.connect().await;
    let stream = service
        .consume("echo", &["echo.*".into()], 4)
        .await
        .unwrap();
    let workers = serve(stream, "echo", 1, Arc::default());

    let got = client
        .request("echo.say", json!({"a": [1, 2]}), WAIT)
        .await
        .unwrap();
    assert_eq!(got, json!({"a": [1, 2], "by": "echo"}));

    let err = client
        .request("echo.fail", json!({}), WAIT)
        .await
        .unwrap_err();
    let rpc = err
        .rpc()
        .unwrap_or_else(|| panic!("not an RPC error: {err}"));
    assert_eq!(rpc.code, codes::CONFLICT);
    assert_eq!(rpc.message, "already there");
    assert_eq!(rpc.data, Some(json!({"field": "name"})));

    // A notification is consumed without a reply.
    client
        .notify("echo.note", json!({"quiet": true}))
        .await
        .unwrap();
    let got = client.request("echo.after", json!(7), WAIT).await.unwrap();
    assert_eq!(got, json!(7));
    workers.iter().for_each(|w| w.abort());
}

/// Two consumers of one queue both get work; each message is handled once.
async fn competing_consumers(env: &Env) {
    let (a, b, client) = (
        env.connect().await,
        env.connect().await,
        env.connect().await,
    );
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut workers = serve(
        a.consume("work", &["work.*".into()], 1).await.unwrap(),
        "a",
        1,
        log.clone(),
    );
    workers.extend(serve(
        b.consume("work", &["work.*".into()], 1).await.unwrap(),
        "b",
        1,
        log.clone(),
    ));
    let calls = (0..20).map(|n| {
        let client = client.clone();
        async move {
            client
                .request("work.slow", json!({"n": n, "ms": 30}), WAIT)
                .await
        }
    });
    let replies = futures::future::join_all(calls).await;
    let mut by = BTreeMap::<String, usize>::new();
    for (n, reply) in replies.into_iter().enumerate() {
        let reply = reply.unwrap_or_else(|e| panic!("request {n}: {e}"));
        assert_eq!(reply["n"], json!(n));
        *by.entry(reply["by"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(by.len(), 2, "both consumers should get work: {by:?}");
    let log = log.lock().unwrap();
    let handled: HashSet<u64> = log
        .iter()
        .map(|(_, params)| params["n"].as_u64().unwrap())
        .collect();
    assert_eq!(log.len(), 20, "each message handled once: {log:?}");
    assert_eq!(handled.len(), 20);
    workers.iter().for_each(|w| w.abort());
}

/// A work queue keeps what is published while no consumer is attached.
async fn queued_until_consumed(env: &Env) {
    let bus = env.connect().await;
    let stream = bus.consume("later", &["later.#".into()], 4).await.unwrap();
    drop(stream);
    // Let the dropped consumer go away for good.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let publisher = env.connect().await;
    for n in 0..3 {
        publisher
            .notify("later.job.run", json!({"n": n}))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let consumer = env.connect().await;
    let stream = consumer
        .consume("later", &["later.#".into()], 4)
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let msg = recv_within(&stream, WAIT)
            .await
            .expect("a message published before the consumer attached");
        assert_eq!(msg.routing_key, "later.job.run");
        assert!(!msg.wants_reply);
        let request: Request = serde_json::from_slice(&msg.body).unwrap();
        got.push(request.params["n"].as_u64().unwrap());
        msg.finish(None).await.unwrap();
    }
    got.sort();
    assert_eq!(got, vec![0, 1, 2]);
    assert!(
        recv_within(&stream, Duration::from_millis(500))
            .await
            .is_none(),
        "each message is delivered once"
    );
}

async fn collect(stream: &IncomingStream, count: usize) -> Vec<(String, Value)> {
    let mut got = Vec::new();
    while got.len() < count {
        let msg = recv_within(stream, WAIT)
            .await
            .unwrap_or_else(|| panic!("only {} of {count} copies: {got:?}", got.len()));
        got.push((
            msg.routing_key.clone(),
            serde_json::from_slice(&msg.body).unwrap(),
        ));
        msg.finish(None).await.unwrap();
    }
    // Nothing more.
    if let Some(extra) = recv_within(stream, Duration::from_millis(300)).await {
        panic!("unexpected copy {}: {got:?}", extra.routing_key);
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    got
}

/// Subscriptions get copies of what matches `*` / `#` patterns, once each,
/// and go away when dropped.
async fn subscriptions(env: &Env) {
    let bus = env.connect().await;
    let publisher = env.connect().await;
    let created = bus.subscribe(&["ev.*.created".into()]).await.unwrap();
    let all = bus.subscribe(&["ev.#".into()]).await.unwrap();
    let overlapping = bus
        .subscribe(&["ev.host.*".into(), "ev.#".into()])
        .await
        .unwrap();
    for key in [
        "ev.host.created",
        "ev.host.deleted",
        "ev.cluster.x.created",
        "other.host.created",
        "ev",
    ] {
        publisher.publish(key, &json!({"key": key})).await.unwrap();
    }
    let keys = |got: Vec<(String, Value)>| {
        got.into_iter()
            .map(|(key, body)| {
                assert_eq!(body, json!({"key": key}), "the body as published");
                key
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(collect(&created, 1).await), vec!["ev.host.created"]);
    let everything = vec![
        "ev",
        "ev.cluster.x.created",
        "ev.host.created",
        "ev.host.deleted",
    ];
    assert_eq!(keys(collect(&all, 4).await), everything);
    assert_eq!(keys(collect(&overlapping, 4).await), everything);

    // Dropped subscriptions stop; publishing goes on, the others still get copies.
    drop(created);
    drop(all);
    tokio::time::sleep(Duration::from_millis(700)).await;
    for n in 0..50 {
        publisher
            .publish("ev.host.created", &json!({"n": n}))
            .await
            .unwrap();
    }
    let got = collect(&overlapping, 50).await;
    assert!(got.iter().all(|(key, _)| key == "ev.host.created"));
}

/// A request nobody consumes fails with a clear error instead of hanging.
async fn nobody_consumes(env: &Env) {
    let bus = env.connect().await;
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = bus
        .request("nobody.home", json!({}), timeout)
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(err.to_string().contains("nobody.home"), "{err}");
    match env.kind {
        // RabbitMQ drops what no queue is bound to; the caller times out.
        Kind::Amqp => assert!(
            matches!(&err, BusError::Timeout { routing_key, timeout: t } if routing_key == "nobody.home" && *t == timeout),
            "{err:?}"
        ),
        // These know at once that no queue is bound to the key.
        Kind::InProcess | Kind::Redis => {
            assert!(matches!(err, BusError::Unavailable(_)), "{err:?}");
            assert!(started.elapsed() < timeout, "failed fast");
        }
    }
    assert!(started.elapsed() < timeout * 4, "no hang");
}

/// A job announced before its service ever consumed (no queue existed
/// yet) waits in the service's queue and is delivered once it consumes.
async fn a_job_announced_before_its_service_ever_ran_waits_for_it(env: &Env) {
    let publisher = env.connect().await;
    for n in 0..3 {
        publisher
            .notify(
                "jobs.investigate",
                json!({"address": format!("10.9.0.{n}")}),
            )
            .await
            .unwrap();
    }
    publisher
        .notify("jobs.clusterexec.restart", json!({"name": "c"}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let service = env.connect().await;
    let stream = service
        .consume(
            "investigator",
            &commissaire_bus::job_bindings("investigator"),
            4,
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let msg = recv_within(&stream, WAIT)
            .await
            .expect("a job announced before its service consumed");
        assert_eq!(msg.routing_key, "jobs.investigate");
        let request: Request = serde_json::from_slice(&msg.body).unwrap();
        got.push(request.params["address"].as_str().unwrap().to_string());
        msg.finish(None).await.unwrap();
    }
    got.sort();
    assert_eq!(got, vec!["10.9.0.0", "10.9.0.1", "10.9.0.2"]);
    let clusterexec = service
        .consume(
            "clusterexec",
            &commissaire_bus::job_bindings("clusterexec"),
            4,
        )
        .await
        .unwrap();
    let msg = recv_within(&clusterexec, WAIT)
        .await
        .expect("the clusterexec job");
    assert_eq!(msg.routing_key, "jobs.clusterexec.restart");
    msg.finish(None).await.unwrap();
}

/// Many concurrent requests are all answered, each with its own reply.
async fn many_concurrent(env: &Env) {
    let service = env.connect().await;
    let client = env.connect().await;
    let stream = service
        .consume("many", &["many.*".into()], 16)
        .await
        .unwrap();
    let workers = serve(stream, "many", 4, Arc::default());
    let started = Instant::now();
    let calls = (0..200).map(|n| {
        let client = client.clone();
        async move { (n, client.request("many.echo", json!({"n": n}), WAIT).await) }
    });
    for (n, reply) in futures::future::join_all(calls).await {
        let reply = reply.unwrap_or_else(|e| panic!("request {n}: {e}"));
        assert_eq!(reply, json!({"n": n, "by": "many"}));
    }
    eprintln!(
        "{:?}: 200 concurrent requests in {:?}",
        env.kind,
        started.elapsed()
    );
    workers.iter().for_each(|w| w.abort());
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let env = super::in_process();
                    super::$test(&env).await;
                    env.cleanup().await;
                }
            )*
        }
        mod amqp {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let env = super::amqp();
                    super::$test(&env).await;
                    env.cleanup().await;
                }
            )*
        }
        mod redis_bus {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let env = super::redis();
                    super::$test(&env).await;
                    env.cleanup().await;
                }
            )*
        }
    };
}

suite!(
    request_reply,
    competing_consumers,
    queued_until_consumed,
    subscriptions,
    nobody_consumes,
    many_concurrent,
    a_job_announced_before_its_service_ever_ran_waits_for_it,
);

// ---- AMQP-specific ----

/// `bus_uri` with several brokers: the first that answers is used (here the
/// first refuses), and `queue_type=quorum` makes the service queues quorum
/// queues (jobs published to them included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_tries_each_broker_and_declares_quorum_queues() {
    let uri = testkit::fresh_vhost();
    let vhost = uri.rsplit('/').next().unwrap().to_string();
    let refused = uri.replacen(
        &format!(
            ":{}/",
            uri.split(':').nth(3).unwrap().split('/').next().unwrap()
        ),
        ":1/",
        1,
    );
    assert_ne!(refused, uri);
    let both = format!("{refused},{uri}?queue_type=quorum");
    let bus = commissaire_bus::connect(&both, "commissaire", WAIT)
        .await
        .unwrap();
    assert!(bus.describe().contains(":1/"), "{}", bus.describe());
    assert!(
        !bus.describe().contains("guest:guest"),
        "{}",
        bus.describe()
    );
    let stream = bus.consume("svc", &["svc.*".into()], 4).await.unwrap();
    let workers = serve(stream, "svc", 1, Arc::default());
    assert_eq!(
        bus.request("svc.echo", json!({"x": 1}), WAIT)
            .await
            .unwrap(),
        json!({"x": 1, "by": "svc"})
    );
    bus.notify("jobs.investigate", json!({"address": "10.9.1.1"}))
        .await
        .unwrap();
    let queues = testkit::rabbitmqctl(&["list_queues", "-p", &vhost, "name", "type", "messages"]);
    let types: BTreeMap<&str, &str> = queues
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?, f.next()?))
        })
        .collect();
    assert_eq!(types.get("svc"), Some(&"quorum"), "{queues}");
    assert_eq!(types.get("investigator"), Some(&"quorum"), "{queues}");
    workers.iter().for_each(|w| w.abort());
    testkit::rabbitmqctl(&["delete_vhost", &vhost]);
}

// ---- Redis-specific ----

#[tokio::test]
async fn redis_connect_picks_the_scheme_and_fails_fast_when_unreachable() {
    let err = commissaire_bus::connect(
        "redis://:secret@127.0.0.1:1/",
        "x",
        Duration::from_millis(300),
    )
    .await
    .err()
    .expect("nothing listens on port 1");
    assert!(matches!(err, BusError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("secret"), "{err}");
    let exchange = unique_exchange();
    let bus = commissaire_bus::connect(&testkit::redis_uri(), &exchange, WAIT)
        .await
        .unwrap();
    assert_eq!(bus.describe(), testkit::redis_uri());
    delete_redis_keys(&exchange).await;
}

/// Queue items are JSON envelopes with the body as is, readable by anyone.
#[tokio::test]
async fn redis_messages_are_plain_json_envelopes() {
    let exchange = unique_exchange();
    let bus = RedisBus::connect(&testkit::redis_uri(), &exchange, WAIT)
        .await
        .unwrap();
    assert_eq!(bus.key_prefix(), format!("commissaire:{exchange}"));
    drop(bus.consume("jobs", &["jobs.*".into()], 1).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    bus.publish("jobs.run", &json!({"x": [1, "two"]}))
        .await
        .unwrap();
    let mut con = raw_redis().await;
    let bindings: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("commissaire:{exchange}:bindings"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(bindings, vec![r#"["jobs","jobs.*"]"#.to_string()]);
    let items: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("commissaire:{exchange}:queue:jobs"))
        .arg(0)
        .arg(-1)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    let envelope: Value = serde_json::from_str(&items[0]).unwrap();
    assert_eq!(envelope["routing_key"], "jobs.run");
    assert_eq!(envelope["body"], json!({"x": [1, "two"]}));
    assert!(envelope.get("reply_to").is_none());
    delete_redis_keys(&exchange).await;
}

/// A message dropped without `finish` goes back to the queue.
#[tokio::test]
async fn redis_unfinished_message_is_redelivered() {
    let exchange = unique_exchange();
    let bus = RedisBus::connect(&testkit::redis_uri(), &exchange, WAIT)
        .await
        .unwrap();
    let stream = bus.consume("jobs", &["jobs.*".into()], 1).await.unwrap();
    bus.notify("jobs.run", json!({"n": 1})).await.unwrap();
    let first = recv_within(&stream, WAIT).await.expect("delivered");
    let body = first.body.clone();
    drop(first);
    let again = recv_within(&stream, WAIT).await.expect("redelivered");
    assert_eq!(again.body, body);
    again.finish(None).await.unwrap();
    assert!(
        recv_within(&stream, Duration::from_millis(1500))
            .await
            .is_none()
    );
    delete_redis_keys(&exchange).await;
}

/// What a consumer that is gone (its heartbeat expired) had taken but not
/// acknowledged is delivered to the next consumer that starts.
#[tokio::test]
async fn redis_gone_consumer_messages_are_recovered() {
    let exchange = unique_exchange();
    let prefix = format!("commissaire:{exchange}");
    let mut con = raw_redis().await;
    // What a crashed consumer leaves behind: registered, a message in its
    // processing list, and no heartbeat.
    let envelope = json!({"id": "m1", "routing_key": "jobs.run", "body": {"n": 42}}).to_string();
    redis::pipe()
        .cmd("SADD")
        .arg(format!("{prefix}:consumers:jobs"))
        .arg("crashed")
        .cmd("LPUSH")
        .arg(format!("{prefix}:processing:jobs:crashed"))
        .arg(&envelope)
        .query_async::<()>(&mut con)
        .await
        .unwrap();
    let bus = RedisBus::connect(&testkit::redis_uri(), &exchange, WAIT)
        .await
        .unwrap();
    let stream = bus.consume("jobs", &["jobs.*".into()], 1).await.unwrap();
    let msg = recv_within(&stream, WAIT).await.expect("recovered");
    assert_eq!(msg.routing_key, "jobs.run");
    assert_eq!(
        serde_json::from_slice::<Value>(&msg.body).unwrap(),
        json!({"n": 42})
    );
    msg.finish(None).await.unwrap();
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{prefix}:consumers:jobs"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(!members.contains(&"crashed".to_string()), "{members:?}");
    let left: i64 = redis::cmd("LLEN")
        .arg(format!("{prefix}:processing:jobs:crashed"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(left, 0);
    delete_redis_keys(&exchange).await;
}

/// Dropped streams release their Redis resources: the subscription's
/// pub/sub connection, and the consumer's registration.
#[tokio::test]
async fn redis_dropped_streams_release_their_connections() {
    let exchange = unique_exchange();
    let prefix = format!("commissaire:{exchange}");
    let bus = RedisBus::connect(&testkit::redis_uri(), &exchange, WAIT)
        .await
        .unwrap();
    let mut con = raw_redis().await;
    let channel = format!("{prefix}:topic:ev.exact");
    let receivers = |con: &mut redis::aio::MultiplexedConnection| {
        let mut con = con.clone();
        let channel = channel.clone();
        async move {
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg("{}")
                .query_async::<i64>(&mut con)
                .await
                .unwrap()
        }
    };
    let sub = bus.subscribe(&["ev.exact".into()]).await.unwrap();
    assert_eq!(receivers(&mut con).await, 1);
    let work = bus.consume("jobs", &["jobs.*".into()], 1).await.unwrap();
    let consumers = |con: &mut redis::aio::MultiplexedConnection| {
        let mut con = con.clone();
        let key = format!("{prefix}:consumers:jobs");
        async move {
            redis::cmd("SCARD")
                .arg(key)
                .query_async::<i64>(&mut con)
                .await
                .unwrap()
        }
    };
    assert_eq!(consumers(&mut con).await, 1);
    drop(sub);
    drop(work);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (subs, cons) = (receivers(&mut con).await, consumers(&mut con).await);
        if subs == 0 && cons == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {subs} subscribers, {cons} consumers"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    delete_redis_keys(&exchange).await;
}
