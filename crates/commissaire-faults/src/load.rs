//! Clients writing and reading through the API while a fault happens.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{Answer, Api, HANG_LIMIT, READ_CACHE, key_b64, strs};

/// Running clients.
pub struct Load {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<(String, Answer)>>>,
    clients: Vec<tokio::task::JoinHandle<(Vec<String>, Vec<String>)>>,
}

/// What the clients did.
pub struct Report {
    /// Every answer, with what was asked (`PUT cluster c0-1`).
    pub answers: Vec<(String, Answer)>,
    /// Clusters acknowledged with 201.
    pub clusters: Vec<String>,
    /// Hosts acknowledged with 201.
    pub hosts: Vec<String>,
}

impl Load {
    /// Starts `n` clients, each creating clusters (`c<id>-<i>`) and hosts
    /// (`10.<id>.x.y`, prefix `net`) and reading them back, in a loop.
    pub fn start(api: &Api, n: usize, net: u8) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let clients = (0..n)
            .map(|id| tokio::spawn(client(api.clone(), id, net, stop.clone(), log.clone())))
            .collect();
        Load { stop, log, clients }
    }

    /// Stops the clients and returns what they did.
    pub async fn finish(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        let mut clusters = Vec::new();
        let mut hosts = Vec::new();
        for c in self.clients {
            let (c, h) = c.await.expect("a load client panicked");
            clusters.extend(c);
            hosts.extend(h);
        }
        let answers = std::mem::take(&mut *self.log.lock().unwrap());
        Report {
            answers,
            clusters,
            hosts,
        }
    }
}

async fn client(
    api: Api,
    id: usize,
    net: u8,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<(String, Answer)>>>,
) -> (Vec<String>, Vec<String>) {
    let mut clusters = Vec::new();
    let mut hosts = Vec::new();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let name = format!("c{id}-{i}");
        let a = api
            .put(
                &format!("/api/v0/cluster/{name}"),
                json!({"network": "default"}),
            )
            .await;
        if a.status == Some(201) {
            clusters.push(name.clone());
        }
        log.lock().unwrap().push((format!("PUT cluster {name}"), a));
        let address = format!("10.{net}.{}.{}", id * 50 + i / 200, i % 200 + 1);
        let a = api.put_host(&address).await;
        if a.status == Some(201) {
            hosts.push(address.clone());
        }
        log.lock().unwrap().push((format!("PUT host {address}"), a));
        if let Some(known) = clusters.last() {
            let a = api.get(&format!("/api/v0/cluster/{known}")).await;
            log.lock()
                .unwrap()
                .push((format!("GET cluster {known}"), a));
        }
    }
    (clusters, hosts)
}

impl Report {
    /// Checks the answers around an outage from `down` to `up`: only
    /// success or a clear 503, never slower than [`HANG_LIMIT`]; every
    /// request sent after `down` (plus `grace`) and answered before `up`
    /// got a clear 503 (or, for a read within [`READ_CACHE`] of `down`,
    /// the right record from the server's read cache); some writes were
    /// acknowledged before and after.
    /// Returns (the 503s during the outage, the slowest answer).
    pub fn check_outage(&self, down: Instant, up: Instant, grace: Duration) -> (usize, Duration) {
        let mut outage_503 = 0;
        let mut slowest = Duration::ZERO;
        for (what, a) in &self.answers {
            slowest = slowest.max(a.took);
            assert!(a.took <= HANG_LIMIT, "{what} took {:?}: {a:?}", a.took);
            assert!(
                matches!(a.status, Some(200 | 201 | 503)),
                "{what}: only success or a clear 503: {a:?}"
            );
            if a.status == Some(503) {
                assert!(a.is_clear_503(), "{what}: a 503 says what is wrong: {a:?}");
            }
            if a.sent > down + grace && a.sent + a.took < up {
                // A read may come from the server's read cache for a
                // while (READ_CACHE): then it must be the right record.
                if let Some(name) = what.strip_prefix("GET cluster ")
                    && a.status == Some(200)
                {
                    assert_eq!(a.body["name"], name, "{what} during the outage: {a:?}");
                    assert!(
                        a.sent < down + READ_CACHE + grace,
                        "{what}: a cached answer long into the outage: {a:?}"
                    );
                    continue;
                }
                assert!(a.is_clear_503(), "{what} during the outage: {a:?}");
                outage_503 += 1;
            }
        }
        assert!(
            outage_503 >= 3,
            "clients kept asking during the outage ({outage_503} answers)"
        );
        let acked = |pred: &dyn Fn(&Answer) -> bool| {
            self.answers
                .iter()
                .filter(|(_, a)| a.status == Some(201) && pred(a))
                .count()
        };
        let before = acked(&|a| a.sent + a.took < down);
        let after = acked(&|a| a.sent > up);
        assert!(
            before > 0 && after > 0,
            "writes acknowledged before ({before}) and after ({after}) the outage"
        );
        (outage_503, slowest)
    }

    /// Every cluster and host acknowledged is there, intact.
    pub async fn check_intact(&self, api: &Api) {
        for name in &self.clusters {
            let body = api.get_ok(&format!("/api/v0/cluster/{name}")).await;
            assert_eq!(body["name"], name.as_str(), "{body}");
            assert_eq!(body["network"], "default", "{body}");
        }
        for address in &self.hosts {
            let body = api.get_ok(&format!("/api/v0/host/{address}")).await;
            assert_eq!(body["address"], address.as_str(), "{body}");
            let creds = api.get_ok(&format!("/api/v0/host/{address}/creds")).await;
            assert_eq!(
                creds["ssh_priv_key"],
                key_b64(),
                "the credentials of {address}"
            );
        }
        let listed = strs(&api.get_ok("/api/v0/clusters").await);
        for name in &self.clusters {
            assert!(listed.contains(name), "{name} is not listed");
        }
        let hosts: Vec<String> = api
            .get_ok("/api/v0/hosts")
            .await
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| h["address"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for address in &self.hosts {
            assert!(hosts.contains(address), "{address} is not listed");
        }
    }
}

/// Waits until a write through the API succeeds again (up to `within`).
pub async fn recovered(api: &Api, within: Duration) -> Duration {
    let t0 = Instant::now();
    let name = format!("probe-{}", uuid::Uuid::new_v4().simple());
    crate::wait_until(within, "a write succeeds after the outage", || {
        let api = api.clone();
        let name = name.clone();
        async move {
            let a = api.put(&format!("/api/v0/network/{name}"), json!({})).await;
            if a.status == Some(201) {
                Ok(())
            } else {
                Err(format!("{a:?}"))
            }
        }
    })
    .await;
    t0.elapsed()
}
