//! `commissaire-bench`: brings up the real stack and prints one table of
//! measurements, for the all-in-one binary (`commissaire`: in-process bus,
//! redb) and for the split daemons over AMQP+etcd and Redis+etcd:
//!
//! * REST: `GET /cluster/NAME`, `GET /hosts` with 1,000 and 10,000 hosts
//!   (and 100,000 on the all-in-one), filtered and paged lists
//!   stored, `PUT /host/ADDR` (create), each at concurrency 1 and 16;
//! * authentication refusals (all-in-one): an unknown user against a known
//!   user with a wrong password, which must cost the same within 2x;
//! * bus round trips (`storage.get`) over AMQP, Redis and in-process;
//! * rolling restart overhead per host on test sshd hosts (split, AMQP);
//! * watcher capacity on 50 test sshd hosts (split, AMQP): checks per
//!   second with the SSH check at concurrency 10 and 50 and with the playbook
//!   check, CPU per check, the projected 10,000-host sweep;
//! * resident memory of every process idle and under load;
//! * a load test: N clients for S seconds mixing reads and writes, then a
//!   check that no write was lost (exit status 1 on any error).
//!
//! Needs the test bed and the release binaries: run it through
//! `scripts/bench.sh`, which provides both.

mod auth;
mod bus;
mod load;
mod measure;
mod memory;
mod report;
mod rest;
mod rolling;
mod stack;
mod watcher;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use commissaire_testkit as testkit;

use crate::memory::Peaks;
use crate::report::Row;
use crate::stack::{AllInOne, Setup, Split};

/// What to run: everything (`run`, the default) or only the load test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// The measurements chosen with --only (default: all of them).
    Run,
    /// The load test only (same as `--only load`).
    Load,
}

/// A stack to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SetupArg {
    /// The all-in-one binary.
    AllInOne,
    /// The split daemons over RabbitMQ, etcd.
    Amqp,
    /// The split daemons over Redis, etcd.
    Redis,
}

impl From<SetupArg> for Setup {
    fn from(s: SetupArg) -> Setup {
        match s {
            SetupArg::AllInOne => Setup::AllInOne,
            SetupArg::Amqp => Setup::Amqp,
            SetupArg::Redis => Setup::Redis,
        }
    }
}

/// A group of measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Part {
    /// REST req/s and p50/p99: cluster GET, host list (1k, 10k hosts), host create.
    Rest,
    /// Bus round trips (storage.get) over AMQP, Redis, in-process.
    Bus,
    /// Rolling restart overhead per host (split AMQP+etcd, test sshd hosts).
    Rolling,
    /// Watcher checks per second (split AMQP+etcd, test sshd hosts).
    Watcher,
    /// Refusal times: an unknown user against a wrong password (all-in-one).
    Auth,
    /// Resident memory of every process, idle and under load.
    Memory,
    /// The mixed load test (--clients for --seconds), with the lost-write check.
    Load,
}

/// Benchmarks of the real Commissaire stack. Prints one table: setup, what,
/// concurrency, n, req/s, p50, p99 and notes (targets, memory, breakdowns).
/// By default every part runs, the 60 s load test included; `--quick`
/// makes every count small. Exits 1 if a measurement failed, a request
/// errored, or the load test found a lost write.
#[derive(Debug, Parser)]
#[command(name = "commissaire-bench")]
struct Cli {
    /// `run` (default) or `load` (only the load test).
    #[arg(value_enum, default_value = "run")]
    mode: Mode,
    /// The parts to run (comma separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Part::Rest, Part::Auth, Part::Bus, Part::Rolling, Part::Watcher, Part::Memory, Part::Load])]
    only: Vec<Part>,
    /// The stacks for the REST, bus and memory parts (comma separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [SetupArg::AllInOne, SetupArg::Amqp, SetupArg::Redis])]
    setups: Vec<SetupArg>,
    /// Small counts and short windows, for a quick look.
    #[arg(long)]
    quick: bool,
    /// Refusals of each kind in the authentication measurement.
    #[arg(long, default_value_t = 40)]
    auth_requests: usize,
    /// Requests per cluster GET measurement.
    #[arg(long, default_value_t = 4000)]
    cluster_requests: usize,
    /// Requests per host-list measurement with 1,000 hosts.
    #[arg(long, default_value_t = 200)]
    hosts_requests: usize,
    /// Requests per host-list measurement with 10,000 hosts.
    #[arg(long, default_value_t = 40)]
    hosts_10k_requests: usize,
    /// Requests per host-list measurement with 100,000 hosts (all-in-one).
    #[arg(long, default_value_t = 10)]
    hosts_100k_requests: usize,
    /// Hosts created per host-create measurement.
    #[arg(long, default_value_t = 300)]
    create_requests: usize,
    /// Calls per bus round-trip measurement.
    #[arg(long, default_value_t = 4000)]
    bus_requests: usize,
    /// Test sshd hosts restarted in the rolling restart.
    #[arg(long, default_value_t = 5)]
    rolling_hosts: usize,
    /// Seconds a test host stays down when "restarted".
    #[arg(long, default_value_t = 3.0)]
    restart_down_seconds: f64,
    /// Test sshd hosts the watcher checks.
    #[arg(long, default_value_t = 50)]
    watcher_hosts: usize,
    /// Seconds over which watcher checks are counted.
    #[arg(long, default_value_t = 30)]
    watcher_seconds: u64,
    /// The watcher's interval (seconds) during the measurement.
    #[arg(long, default_value_t = 0.15)]
    watcher_interval: f64,
    /// The watcher's concurrency values, a row each (its default is 10).
    #[arg(long, value_delimiter = ',', default_values_t = [10, 50])]
    watcher_concurrency: Vec<usize>,
    /// Leave out the row of the playbook check (`check: playbook`).
    #[arg(long)]
    no_watcher_playbook: bool,
    /// Load test: concurrent clients.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Load test: seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Load test: the stack.
    #[arg(long, value_enum, default_value = "amqp")]
    load_setup: SetupArg,
    /// The servers' --read-cache-seconds (default: theirs, 2 s); 0 measures
    /// every GET going to storage.
    #[arg(long)]
    read_cache_seconds: Option<f64>,
}

impl Cli {
    fn quick(&mut self) {
        self.cluster_requests = self.cluster_requests.min(500);
        self.auth_requests = self.auth_requests.min(10);
        self.hosts_requests = self.hosts_requests.min(40);
        self.hosts_10k_requests = self.hosts_10k_requests.min(10);
        self.hosts_100k_requests = self.hosts_100k_requests.min(4);
        self.create_requests = self.create_requests.min(50);
        self.bus_requests = self.bus_requests.min(500);
        self.watcher_seconds = self.watcher_seconds.min(10);
        self.seconds = self.seconds.min(10);
    }

    fn has(&self, part: Part) -> bool {
        self.only.contains(&part)
    }
}

/// Hosts stored for the small and the large host list.
const SMALL: usize = 1000;
const LARGE: usize = 10_000;
/// Hosts stored for the largest host lists (all-in-one only).
const HUGE: usize = 100_000;
/// Members of the cluster read by the cluster GET measurement.
const MEMBERS: usize = 3;

/// Prints a row as soon as it is measured (stderr), and keeps it.
struct Rows(Vec<Row>);

impl Rows {
    fn add(&mut self, rows: Vec<Row>) {
        for r in rows {
            eprintln!(
                "{}",
                report::table(std::slice::from_ref(&r))
                    .lines()
                    .nth(2)
                    .unwrap_or("")
            );
            self.0.push(r);
        }
    }
}

/// The all-in-one: REST (1k then 10k hosts), refusal times and its memory.
async fn all_in_one(cli: &Cli, rows: &mut Rows) -> anyhow::Result<()> {
    let setup = Setup::AllInOne.label();
    let rest = cli.has(Part::Rest);
    let mut aio = AllInOne::new()?;
    if rest {
        aio.seeder()?
            .save_all("Host", &rest::seeded_hosts(0, SMALL))
            .await?;
    }
    aio.start().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = memory::snapshot(&aio.procs());
    let mut load: BTreeMap<String, Peaks> = BTreeMap::new();
    if rest {
        let api = aio.api.clone();
        let members: Vec<String> = (0..MEMBERS).map(stack::seeded_address).collect();
        rest::join(&api, "bench", &members).await?;
        let procs = aio.procs();
        let mut create_peaks = Peaks::default();
        let peaks = load.entry("REST c=16".into()).or_default();
        let r = rest::get_rows(
            setup,
            "GET /cluster/NAME",
            &api,
            "/api/v0/cluster/bench",
            cli.cluster_requests,
            &procs,
            peaks,
        )
        .await;
        rows.add(
            r.into_iter()
                .map(|r| rest::cluster_target(r, 10_000.0))
                .collect(),
        );
        let r = rest::get_rows(
            setup,
            "GET /hosts (1k hosts)",
            &api,
            "/api/v0/hosts",
            cli.hosts_requests,
            &procs,
            peaks,
        )
        .await;
        rows.add(r);
        rows.add(
            rest::host_create_rows(
                setup,
                &api,
                cli.create_requests,
                &stack::ssh_key_b64()?,
                &procs,
                &mut create_peaks,
            )
            .await?,
        );
        // 10k hosts: stopped, seeded through the redb file, started again.
        aio.stop();
        aio.seeder()?
            .save_all("Host", &rest::seeded_hosts(SMALL, LARGE - SMALL))
            .await?;
        aio.start().await?;
        let procs = aio.procs();
        let r = rest::get_rows(
            setup,
            "GET /hosts (10k hosts)",
            &api,
            "/api/v0/hosts",
            cli.hosts_10k_requests,
            &procs,
            peaks,
        )
        .await;
        rows.add(r.into_iter().map(rest::list_target).collect());
        rows.add(
            rest::filtered_list_rows(setup, "10k", &api, cli.hosts_10k_requests, &procs, peaks)
                .await,
        );
        // 100k hosts: the same, seeded the same way.
        aio.stop();
        aio.seeder()?
            .save_all("Host", &rest::seeded_hosts(LARGE, HUGE - LARGE))
            .await?;
        aio.start().await?;
        let procs = aio.procs();
        let r = rest::get_rows(
            setup,
            "GET /hosts (100k hosts)",
            &api,
            "/api/v0/hosts",
            cli.hosts_100k_requests,
            &procs,
            peaks,
        )
        .await;
        rows.add(r);
        rows.add(
            rest::filtered_list_rows(setup, "100k", &api, cli.hosts_100k_requests, &procs, peaks)
                .await,
        );
        load.insert("host create".into(), create_peaks);
    }
    if cli.has(Part::Auth) {
        rows.add(auth::refusal_rows(setup, &aio.api, cli.auth_requests).await?);
    }
    if cli.has(Part::Memory) {
        rows.add(memory::rows(setup, &aio.procs(), &idle, &load));
    }
    aio.stop();
    Ok(())
}

/// A split stack: bus round trips, REST, rolling restart and watcher (AMQP
/// only), and the daemons' memory.
async fn split(
    cli: &Cli,
    setup_kind: Setup,
    selected: bool,
    rows: &mut Rows,
) -> anyhow::Result<()> {
    let setup = setup_kind.label();
    let mut s = Split::start(setup_kind).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let procs = s.procs();
    let idle = memory::snapshot(&procs);
    let mut load: BTreeMap<String, Peaks> = BTreeMap::new();
    if selected && cli.has(Part::Bus) {
        rows.add(bus::storage_get_rows(setup, s.bus.clone(), cli.bus_requests).await?);
    }
    if selected && cli.has(Part::Rest) {
        let api = s.api.clone();
        let seeder = s.seeder();
        seeder
            .save_all("Host", &rest::seeded_hosts(0, SMALL))
            .await?;
        let members: Vec<String> = (0..MEMBERS).map(stack::seeded_address).collect();
        rest::join(&api, "bench", &members).await?;
        let mut create_peaks = Peaks::default();
        let peaks = load.entry("REST c=16".into()).or_default();
        let r = rest::get_rows(
            setup,
            "GET /cluster/NAME",
            &api,
            "/api/v0/cluster/bench",
            cli.cluster_requests,
            &procs,
            peaks,
        )
        .await;
        rows.add(
            r.into_iter()
                .map(|r| {
                    if setup_kind == Setup::Amqp {
                        rest::cluster_target(r, 3_000.0)
                    } else {
                        r
                    }
                })
                .collect(),
        );
        let r = rest::get_rows(
            setup,
            "GET /hosts (1k hosts)",
            &api,
            "/api/v0/hosts",
            cli.hosts_requests,
            &procs,
            peaks,
        )
        .await;
        rows.add(r);
        rows.add(
            rest::host_create_rows(
                setup,
                &api,
                cli.create_requests,
                &stack::ssh_key_b64()?,
                &procs,
                &mut create_peaks,
            )
            .await?,
        );
        seeder
            .save_all("Host", &rest::seeded_hosts(SMALL, LARGE - SMALL))
            .await?;
        let r = rest::get_rows(
            setup,
            "GET /hosts (10k hosts)",
            &api,
            "/api/v0/hosts",
            cli.hosts_10k_requests,
            &procs,
            peaks,
        )
        .await;
        rows.add(r.into_iter().map(rest::list_target).collect());
        rows.add(
            rest::filtered_list_rows(setup, "10k", &api, cli.hosts_10k_requests, &procs, peaks)
                .await,
        );
        load.insert("host create".into(), create_peaks);
    }
    let ssh_needed =
        (cli.has(Part::Rolling) || cli.has(Part::Watcher)) && setup_kind == Setup::Amqp;
    if ssh_needed {
        let hosts = testkit::ssh_hosts();
        let key = stack::ssh_key_b64()?;
        if cli.has(Part::Rolling) {
            anyhow::ensure!(
                hosts.len() >= cli.rolling_hosts,
                "the test bed has {} ssh hosts, the rolling restart needs {}",
                hosts.len(),
                cli.rolling_hosts
            );
            let peaks = load.entry("rolling restart".into()).or_default();
            let r = rolling::rolling_rows(
                &mut s,
                &hosts[..cli.rolling_hosts],
                &key,
                cli.restart_down_seconds,
                peaks,
            )
            .await;
            rows.add(r.context("rolling restart")?);
        }
        if cli.has(Part::Watcher) {
            anyhow::ensure!(
                hosts.len() >= cli.watcher_hosts,
                "the test bed has {} ssh hosts, the watcher measurement needs {} (scripts/testbed.sh up STATE {})",
                hosts.len(),
                cli.watcher_hosts,
                cli.watcher_hosts
            );
            let bench = watcher::WatcherBench {
                interval: cli.watcher_interval,
                concurrency: cli.watcher_concurrency.clone(),
                playbook_row: !cli.no_watcher_playbook,
                window: Duration::from_secs(cli.watcher_seconds),
            };
            let peaks = load.entry("watcher run".into()).or_default();
            let r = watcher::watcher_rows(&mut s, &hosts[..cli.watcher_hosts], &key, &bench, peaks)
                .await;
            rows.add(r.context("watcher")?);
        }
    }
    if selected && cli.has(Part::Memory) {
        rows.add(memory::rows(setup, &procs, &idle, &load));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut cli = Cli::parse();
    if cli.mode == Mode::Load {
        cli.only = vec![Part::Load];
    }
    if cli.quick {
        cli.quick();
    }
    if let Some(seconds) = cli.read_cache_seconds {
        let _ = stack::READ_CACHE_SECONDS.set(seconds);
    }
    let started = Instant::now();
    let mut rows = Rows(Vec::new());
    let mut failed = false;
    let setups: BTreeSet<Setup> = cli.setups.iter().map(|s| Setup::from(*s)).collect();
    let per_setup = [
        Part::Rest,
        Part::Auth,
        Part::Bus,
        Part::Memory,
        Part::Rolling,
        Part::Watcher,
    ]
    .iter()
    .any(|p| cli.has(*p));
    if per_setup {
        for setup in [Setup::AllInOne, Setup::Amqp, Setup::Redis] {
            let measured = [Part::Rest, Part::Bus, Part::Memory]
                .iter()
                .any(|p| cli.has(*p))
                || (setup == Setup::AllInOne && cli.has(Part::Auth));
            let wanted = (setups.contains(&setup) && measured)
                || (setup == Setup::Amqp && (cli.has(Part::Rolling) || cli.has(Part::Watcher)));
            if !wanted {
                continue;
            }
            eprintln!("# {}", setup.label());
            let result = match setup {
                Setup::AllInOne
                    if cli.has(Part::Rest) || cli.has(Part::Auth) || cli.has(Part::Memory) =>
                {
                    all_in_one(&cli, &mut rows).await
                }
                Setup::AllInOne => Ok(()),
                other => split(&cli, other, setups.contains(&other), &mut rows).await,
            };
            if let Err(e) = result {
                eprintln!("{}: FAILED: {e:#}", setup.label());
                rows.add(vec![Row::note(setup.label(), "FAILED", format!("{e:#}"))]);
                failed = true;
            }
        }
        if cli.has(Part::Bus) {
            eprintln!("# in-process");
            match bus::in_process_rows(cli.bus_requests).await {
                Ok(r) => rows.add(r),
                Err(e) => {
                    rows.add(vec![Row::note(
                        "in-process+redb",
                        "FAILED",
                        format!("{e:#}"),
                    )]);
                    failed = true;
                }
            }
        }
    }
    if cli.has(Part::Load) {
        let options = load::LoadOptions {
            clients: cli.clients,
            seconds: cli.seconds,
            pool: 4,
        };
        match load::run(cli.load_setup.into(), &options).await {
            Ok(outcome) => {
                failed |= outcome.errors > 0 || outcome.mismatches > 0;
                rows.add(outcome.rows);
            }
            Err(e) => {
                rows.add(vec![Row::note("load", "FAILED", format!("{e:#}"))]);
                failed = true;
            }
        }
    }
    println!();
    println!(
        "# commissaire-bench, {} cores, {:.0} s, server read cache: {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        started.elapsed().as_secs_f64(),
        match cli.read_cache_seconds {
            Some(0.0) => "off".to_string(),
            Some(s) => format!("{s} s"),
            None => "default (2 s)".to_string(),
        }
    );
    print!("{}", report::table(&rows.0));
    failed |= rows.0.iter().any(|r| r.note.contains("ERRORS"));
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
