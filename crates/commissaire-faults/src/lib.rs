//! Commissaire's fault-injection suite (issue 8), run with the rest of the
//! workspace's tests by `scripts/test.sh` (and so by `.ci/run`).
//!
//! Every test starts the real split stack ([`SplitStack`]: the server and the
//! daemon binaries, on a fresh RabbitMQ vhost and etcd prefix of the test
//! bed) and breaks something for real: `kill -9` of a daemon, a RabbitMQ or
//! etcd restart under load, an SSH host cut mid-operation, garbage on the
//! server's port and on the bus. The tests then check that no acknowledged
//! record was lost or corrupted, that no operation stays `in_process`, that
//! clients got clear errors (503 with a JSON body, never a 500 or a hang)
//! during the outage and success after it, and that the daemons recovered by
//! themselves.
//!
//! This library holds what the tests share: an HTTP client for the stack
//! ([`Api`]), a bus client ([`bus`]), polling ([`wait_until`]), guards that
//! bring the broker and etcd back even when an assertion fails
//! ([`BrokerDown`], [`EtcdDown`]), and the lock that serialises the tests
//! ([`serial`]).

mod api;
pub mod load;
mod markers;
mod outage;
mod stack;
mod storage;
mod wait;

use std::time::Duration;

pub use api::*;
pub use commissaire_testkit as testkit;
pub use commissaire_testkit::daemons::{Daemon, SplitStack};
pub use markers::*;
pub use outage::*;
pub use stack::*;
pub use storage::*;
pub use wait::*;

/// Seconds the server waits for a backing service before answering 503.
pub const REQUEST_TIMEOUT: f64 = 2.0;

/// How long the server may answer a GET from its read cache (its
/// `read-cache-seconds` default, 2 s, plus room for a loaded machine).
pub const READ_CACHE: Duration = Duration::from_secs(3);

/// The longest an API call may take: the server's request timeout (a request
/// ends at its first call that times out) plus room for the calls that
/// succeeded before it on a loaded machine.
pub const HANG_LIMIT: Duration = Duration::from_secs(5);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Serialises the fault tests of one test binary (they run in parallel
/// threads otherwise): a broker or etcd restart must not hit another fault
/// test, and the machine is small. Hold the guard for the whole test.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}
