//! Polling: until a probe answers, a file appears, an investigation or an operation ends.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Api, Daemon, SplitStack, testkit};

/// Polls `probe` every 200 ms until it returns `Some`, for up to `within`;
/// panics with `what` and the last value seen otherwise.
pub async fn wait_until<T, F, Fut>(within: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; last seen: {last}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits up to `within` until `path` exists (a test host's marker file).
pub async fn wait_for_file(path: &std::path::Path, within: Duration, what: &str) {
    wait_until(within, what, || {
        let reached = path.exists();
        async move {
            if reached {
                Ok(())
            } else {
                Err(format!("{} does not exist yet", path.display()))
            }
        }
    })
    .await
}

/// Waits up to `within` until the host at `path` (`/api/v0/host/ADDR`) is
/// no longer `investigating` or `bootstrapping`; returns its record.
pub async fn wait_investigation_ends(api: &Api, path: &str, within: Duration, what: &str) -> Value {
    wait_until(within, what, || async move {
        let a = api.get(path).await;
        match a.body["status"].as_str() {
            Some("investigating" | "bootstrapping") | None => Err(format!("{a:?}")),
            Some(_) => Ok(a.body),
        }
    })
    .await
}

/// Waits up to `within` for the investigation of the host at `path` to end
/// and asserts it ended `status`; on failure the message shows the host and
/// the investigator's log. Returns the host record.
pub async fn assert_investigation_ends(
    api: &Api,
    stack: &SplitStack,
    path: &str,
    status: &str,
    within: Duration,
    what: &str,
) -> Value {
    let host = wait_investigation_ends(api, path, within, what).await;
    assert_eq!(
        host["status"],
        status,
        "{what}: {host}\ninvestigator log:\n{}",
        stack.log(Daemon::Investigator)
    );
    host
}

/// Waits until the cluster operation `op` of `cluster` is no longer
/// `in_process` (reading it through the API) and returns its record.
pub async fn wait_op_end(api: &Api, cluster: &str, op: &str, within: Duration) -> Value {
    let path = format!("/api/v0/cluster/{cluster}/{op}");
    wait_until(within, &format!("the {op} of {cluster} ends"), || async {
        let a = api.get(&path).await;
        match a.status {
            Some(200) if a.body["status"] != "in_process" => Ok(a.body),
            _ => Err(format!("{a:?}")),
        }
    })
    .await
}

/// Waits up to a minute until host `address` is `active` and `kube` has
/// its node (a join is a job: the server does not wait for it).
pub async fn wait_joined(api: &Api, kube: &testkit::kube_api::RealKube, address: &str, what: &str) {
    wait_until(Duration::from_secs(60), what, || {
        let (api, kube) = (api.clone(), kube.clone());
        async move {
            let registered = kube.node(address).await.is_some();
            let host = api.get_ok(&format!("/api/v0/host/{address}")).await;
            if registered && host["status"] == "active" {
                Ok(())
            } else {
                Err(format!("registered: {registered}, host: {host}"))
            }
        }
    })
    .await;
}

/// Has the watcher watch stored host `address` (its record, as the
/// investigator writes it once a host is bootstrapped) and waits up to
/// 30 s for a first check that finds it `active`; the host then.
pub async fn watch_and_wait_first_check(
    api: &Api,
    bus: &commissaire_bus::Bus,
    address: &str,
) -> Value {
    crate::storage_save(
        bus,
        "WatcherRecord",
        serde_json::json!({"address": address, "last_check": "2000-01-01T00:00:00.000000", "previous_status": ""}),
    )
    .await;
    let path = format!("/api/v0/host/{address}");
    wait_until(Duration::from_secs(30), "a first check", || {
        let api = api.clone();
        let path = path.clone();
        async move {
            let h = api.get_ok(&path).await;
            if h["status"] == "active" && h["last_check"].as_str().is_some_and(|c| !c.is_empty()) {
                Ok(h)
            } else {
                Err(h.to_string())
            }
        }
    })
    .await
}
