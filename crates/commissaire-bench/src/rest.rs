//! REST measurements against a running stack: cluster GET, the host list,
//! host creation; each at concurrency 1 and 16, with the processes' RSS
//! sampled during the concurrent runs.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::measure::{self, Stats};
use crate::memory::{Peaks, Proc, Sampler};
use crate::report::{self, Row};
use crate::stack::Api;

/// The concurrency levels of every REST measurement.
pub const LEVELS: [usize; 2] = [1, 16];

/// Runs `total` authenticated GETs of `path` (each must answer 200) at
/// `concurrency`.
pub async fn get_many(api: &Api, path: &str, total: usize, concurrency: usize) -> Stats {
    let api = api.clone();
    let path = path.to_string();
    measure::run(total, concurrency, move |_| {
        let api = api.clone();
        let path = path.clone();
        async move {
            api.get_ok(&path).await?;
            Ok(())
        }
    })
    .await
}

/// GET `path` at c=1 and c=16 (`total` requests each); RSS of `procs` is
/// sampled during the c=16 run into `peaks`.
pub async fn get_rows(
    setup: &str,
    what: &str,
    api: &Api,
    path: &str,
    total: usize,
    procs: &[Proc],
    peaks: &mut Peaks,
) -> Vec<Row> {
    let mut rows = Vec::new();
    // A few requests first: connections, the credential cache.
    let _ = get_many(api, path, 16, 16).await;
    for c in LEVELS {
        let sampler = (c > 1).then(|| Sampler::start(procs.to_vec()));
        let stats = get_many(api, path, total, c).await;
        if let Some(s) = sampler {
            peaks.add(s.finish().await);
        }
        let row = Row::from_stats(setup, what, c, &stats);
        eprintln!("  {what} c={c}: {:.0} req/s", stats.rate());
        rows.push(row);
    }
    rows
}

/// Joins `members` (joinable hosts) to cluster `name` through the API.
pub async fn join(api: &Api, name: &str, members: &[String]) -> anyhow::Result<()> {
    for m in members {
        api.put_ok(&format!("/api/v0/cluster/{name}/hosts/{m}"), &json!({}))
            .await?;
    }
    Ok(())
}

/// Address number `k` of the host-creation measurement: loopback addresses
/// where nothing listens, so the investigator's SSH attempt fails at once.
pub fn created_address(k: usize) -> String {
    format!("127.{}.{}.{}", 192 + k / 65536, (k / 256) % 256, k % 256)
}

/// `PUT /api/v0/host/ADDR` of `total` new hosts at c=1 and c=16 (each 201).
/// Every creation also starts an investigation (which fails quickly: nobody
/// answers SSH there); this waits for those to end before returning. RSS of
/// `procs` is sampled into `peaks` from the c=16 run to that end.
pub async fn host_create_rows(
    setup: &str,
    api: &Api,
    total: usize,
    key_b64: &str,
    procs: &[Proc],
    peaks: &mut Peaks,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    // Sampled from the c=16 run until the investigations ended.
    let mut sampler = None;
    let body = json!({"ssh_priv_key": key_b64, "remote_user": "root"});
    for (round, c) in LEVELS.into_iter().enumerate() {
        if c > 1 {
            sampler = Some(Sampler::start(procs.to_vec()));
        }
        let api2 = api.clone();
        let body = body.clone();
        let stats = measure::run(total, c, move |i| {
            let api = api2.clone();
            let body = body.clone();
            async move {
                let address = created_address(round * total + i);
                let (status, b) = api
                    .send(
                        reqwest::Method::PUT,
                        &format!("/api/v0/host/{address}"),
                        Some(&body),
                    )
                    .await?;
                anyhow::ensure!(status == 201, "PUT host {address}: {status} {}", b.text());
                Ok(())
            }
        })
        .await;
        eprintln!("  host create c={c}: {:.0} req/s", stats.rate());
        rows.push(Row::from_stats(setup, "PUT /host/ADDR (create)", c, &stats));
    }
    let t = Instant::now();
    let left = wait_investigations(api, Duration::from_secs(120)).await?;
    if let Some(s) = sampler {
        peaks.add(s.finish().await);
    }
    let note = format!(
        "{} investigations (SSH refused) ended {:.1} s after the last PUT{}",
        2 * total,
        t.elapsed().as_secs_f64(),
        if left > 0 {
            format!(", {left} still investigating")
        } else {
            String::new()
        }
    );
    if let Some(last) = rows.last_mut() {
        *last = last.clone().with_note(note);
    }
    Ok(rows)
}

/// Waits until no host is `investigating` any more; how many still are.
pub async fn wait_investigations(api: &Api, within: Duration) -> anyhow::Result<usize> {
    let deadline = Instant::now() + within;
    loop {
        let hosts = api.get_json("/api/v0/hosts").await?;
        let busy = hosts
            .as_array()
            .map(|a| a.iter().filter(|h| h["status"] == "investigating").count())
            .unwrap_or(0);
        if busy == 0 || Instant::now() > deadline {
            return Ok(busy);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The cluster GET rows' target note (c=16 rows only).
pub fn cluster_target(row: Row, min_rate: f64) -> Row {
    if row.concurrency == Some(16) {
        let note = report::target(&row, min_rate, Duration::from_millis(20));
        row.with_note(note)
    } else {
        row
    }
}

/// The 10k-host list target note: a list answered in < 150 ms (c=1 median).
pub fn list_target(row: Row) -> Row {
    if row.concurrency == Some(1) {
        let ok = row.p50.is_some_and(|p| p < Duration::from_millis(150));
        row.with_note(format!(
            "target < 150 ms: {}",
            if ok { "met" } else { "MISSED" }
        ))
    } else {
        row
    }
}

/// `count` hosts numbered from `from` (see [`crate::stack::seeded_address`]):
/// active, but one in a hundred failed (the 100th, 200th, ...), and one in
/// ten running rhel instead of fedora, so that filters have something to
/// pick out.
pub fn seeded_hosts(from: usize, count: usize) -> Vec<Value> {
    (from..from + count)
        .map(|i| {
            let status = if i % 100 == 99 { "failed" } else { "active" };
            let os = if i % 10 == 9 { "rhel" } else { "fedora" };
            crate::stack::seeded_host(&crate::stack::seeded_address(i), status, os)
        })
        .collect()
}

/// The filtered and paged host lists with `hosts` (a label: "10k") stored:
/// the failed hosts (one in a hundred) as a plain list, a first page of 100
/// and the rhel hosts' first page of 100 (with the total).
pub async fn filtered_list_rows(
    setup: &str,
    hosts: &str,
    api: &Api,
    total: usize,
    procs: &[Proc],
    peaks: &mut Peaks,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for (path, what) in [
        ("/api/v0/hosts?status=failed", "GET /hosts?status=failed"),
        ("/api/v0/hosts?limit=100", "GET /hosts?limit=100"),
        (
            "/api/v0/hosts?os=rhel&limit=100",
            "GET /hosts?os=rhel&limit=100",
        ),
    ] {
        let what = format!("{what} ({hosts} hosts)");
        rows.extend(get_rows(setup, &what, api, path, total, procs, peaks).await);
    }
    rows
}
