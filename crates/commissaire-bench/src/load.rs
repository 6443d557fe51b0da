//! The load test: N concurrent HTTP clients for S seconds mixing reads
//! (cluster GET, host GET, host list) and writes (host create, re-create,
//! delete; cluster member add and remove) against a fresh stack. Any
//! non-2xx answer is an error: each client works only on records it owns
//! (its cluster, its hosts, its pool of joinable hosts), so by design no
//! request should get a 404 or a 409. Afterwards the stored records are
//! compared with what the clients believe they wrote: every host a client
//! created and did not delete exists with the client's credentials, every
//! deleted one is gone, no other host exists, and each client's cluster has
//! exactly the members the client left in it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::measure::Stats;
use crate::memory::{self, Proc, Sampler};
use crate::report::Row;
use crate::stack::{AllInOne, Api, Seeder, Setup, Split, active_host};

/// The load test's settings.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Concurrent clients.
    pub clients: usize,
    /// Duration of the run.
    pub seconds: u64,
    /// Joinable hosts per client (for member add/remove).
    pub pool: usize,
}

/// The kinds of request, with their share of the mix (percent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    ClusterGet,
    HostGet,
    HostsList,
    HostCreate,
    HostRecreate,
    HostDelete,
    MemberAdd,
    MemberRemove,
}

const MIX: [(Kind, u32); 8] = [
    (Kind::ClusterGet, 30),
    (Kind::HostGet, 25),
    (Kind::HostsList, 5),
    (Kind::HostCreate, 14),
    (Kind::HostRecreate, 6),
    (Kind::HostDelete, 8),
    (Kind::MemberAdd, 6),
    (Kind::MemberRemove, 6),
];

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::ClusterGet => "GET /cluster/NAME",
            Kind::HostGet => "GET /host/ADDR",
            Kind::HostsList => "GET /hosts",
            Kind::HostCreate => "PUT /host/ADDR (create)",
            Kind::HostRecreate => "PUT /host/ADDR (again, same creds)",
            Kind::HostDelete => "DELETE /host/ADDR",
            Kind::MemberAdd => "PUT /cluster/NAME/hosts/ADDR",
            Kind::MemberRemove => "DELETE /cluster/NAME/hosts/ADDR",
        }
    }
}

/// What one client owns and believes it wrote.
struct Client {
    id: usize,
    cluster: String,
    key: String,
    next: usize,
    alive: Vec<String>,
    deleted: BTreeSet<String>,
    /// Writes whose outcome is unknown (the request failed).
    uncertain: BTreeSet<String>,
    pool: Vec<String>,
    members: BTreeSet<String>,
    rng: u64,
    stats: BTreeMap<Kind, Stats>,
}

impl Client {
    fn new(id: usize, pool: usize) -> Client {
        Client {
            id,
            cluster: format!("load-{id}"),
            key: base64::engine::general_purpose::STANDARD
                .encode(format!("bench load key of client {id}")),
            next: 0,
            alive: Vec::new(),
            deleted: BTreeSet::new(),
            uncertain: BTreeSet::new(),
            pool: pool_addresses(id, pool),
            members: BTreeSet::new(),
            rng: 0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D),
            stats: BTreeMap::new(),
        }
    }

    /// xorshift64*: a number in 0..n.
    fn random(&mut self, n: usize) -> usize {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }

    fn pick(&mut self) -> Kind {
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        let mut r = self.random(total as usize) as u32;
        let mut kind = Kind::ClusterGet;
        for (k, w) in MIX {
            if r < w {
                kind = k;
                break;
            }
            r -= w;
        }
        // Only requests that must succeed: fall back when there is nothing to work on.
        match kind {
            Kind::HostGet | Kind::HostRecreate | Kind::HostDelete if self.alive.is_empty() => {
                Kind::HostCreate
            }
            Kind::MemberAdd if self.members.len() == self.pool.len() => Kind::MemberRemove,
            Kind::MemberRemove if self.members.is_empty() => Kind::MemberAdd,
            k => k,
        }
    }

    fn new_address(&mut self) -> String {
        let seq = self.next;
        self.next += 1;
        format!("127.{}.{}.{}", 80 + seq / 256, self.id, seq % 256)
    }

    /// Runs one request of `kind`; updates the beliefs when it succeeded.
    async fn step(&mut self, api: &Api, kind: Kind) -> anyhow::Result<()> {
        let creds = json!({"ssh_priv_key": self.key, "remote_user": "root"});
        match kind {
            Kind::ClusterGet => {
                api.get_ok(&format!("/api/v0/cluster/{}", self.cluster))
                    .await?;
            }
            Kind::HostGet => {
                let i = self.random(self.alive.len());
                let a = self.alive[i].clone();
                api.get_ok(&format!("/api/v0/host/{a}")).await?;
            }
            Kind::HostsList => {
                api.get_ok("/api/v0/hosts").await?;
            }
            Kind::HostCreate => {
                let a = self.new_address();
                self.uncertain.insert(a.clone());
                api.put_ok(&format!("/api/v0/host/{a}"), &creds).await?;
                self.uncertain.remove(&a);
                self.alive.push(a);
            }
            Kind::HostRecreate => {
                let i = self.random(self.alive.len());
                let a = self.alive[i].clone();
                api.put_ok(&format!("/api/v0/host/{a}"), &creds).await?;
            }
            Kind::HostDelete => {
                let i = self.random(self.alive.len());
                let a = self.alive.swap_remove(i);
                self.uncertain.insert(a.clone());
                api.delete_ok(&format!("/api/v0/host/{a}")).await?;
                self.uncertain.remove(&a);
                self.deleted.insert(a);
            }
            Kind::MemberAdd => {
                let free: Vec<String> = self
                    .pool
                    .iter()
                    .filter(|a| !self.members.contains(*a))
                    .cloned()
                    .collect();
                let a = free[self.random(free.len())].clone();
                api.put_ok(
                    &format!("/api/v0/cluster/{}/hosts/{a}", self.cluster),
                    &json!({}),
                )
                .await?;
                self.members.insert(a);
            }
            Kind::MemberRemove => {
                let list: Vec<String> = self.members.iter().cloned().collect();
                let i = self.random(list.len());
                let a = list[i].clone();
                api.delete_ok(&format!("/api/v0/cluster/{}/hosts/{a}", self.cluster))
                    .await?;
                self.members.remove(&a);
            }
        }
        Ok(())
    }

    async fn run(mut self, api: Api, until: Instant) -> Client {
        while Instant::now() < until {
            let kind = self.pick();
            let t = Instant::now();
            let result = self.step(&api, kind).await;
            let stats = self.stats.entry(kind).or_default();
            stats.latencies.push(t.elapsed());
            if let Err(e) = result {
                stats.error(format!("{e:#}"));
            }
        }
        self
    }
}

/// Client `id`'s joinable hosts (seeded `active`).
fn pool_addresses(id: usize, pool: usize) -> Vec<String> {
    (0..pool)
        .map(|j| format!("127.79.{id}.{}", j + 1))
        .collect()
}

/// The outcome of a load test.
pub struct LoadOutcome {
    /// The rows to print.
    pub rows: Vec<Row>,
    /// Requests that failed.
    pub errors: usize,
    /// Records that differ from what the clients wrote.
    pub mismatches: usize,
}

/// Starts a fresh stack of `setup`, runs the load test on it, verifies.
pub async fn run(setup: Setup, options: &LoadOptions) -> anyhow::Result<LoadOutcome> {
    let pool: Vec<Value> = (0..options.clients)
        .flat_map(|i| pool_addresses(i, options.pool))
        .map(|a| active_host(&a))
        .collect();
    // Keep the stack alive for the whole test.
    let mut all_in_one = None;
    let mut split = None;
    let (api, procs): (Api, Vec<Proc>) = match setup {
        Setup::AllInOne => {
            let mut a = AllInOne::new()?;
            {
                let seeder: Seeder = a.seeder()?;
                seeder.save_all("Host", &pool).await?;
            }
            a.start().await?;
            let r = (a.api.clone(), a.procs());
            all_in_one = Some(a);
            r
        }
        Setup::Amqp | Setup::Redis => {
            let mut s = Split::start(setup).await?;
            s.seeder().save_all("Host", &pool).await?;
            let r = (s.api.clone(), s.procs());
            split = Some(s);
            r
        }
    };
    let label = format!("load {}", setup.label());
    eprintln!(
        "load: {} clients for {} s against {}",
        options.clients,
        options.seconds,
        setup.label()
    );
    let clients: Vec<Client> = (0..options.clients)
        .map(|i| Client::new(i, options.pool))
        .collect();
    for c in &clients {
        api.put_ok(&format!("/api/v0/cluster/{}", c.cluster), &json!({}))
            .await?;
    }
    let sampler = Sampler::start(procs.clone());
    let started = Instant::now();
    let until = started + Duration::from_secs(options.seconds);
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(c.run(api.clone(), until)))
        .collect();
    let mut clients = Vec::new();
    for t in futures::future::join_all(tasks).await {
        clients.push(t?);
    }
    let elapsed = started.elapsed();
    let peaks = sampler.finish().await;

    // Per kind, and in all.
    let mut by_kind: BTreeMap<Kind, Stats> = BTreeMap::new();
    for c in &mut clients {
        for (k, s) in std::mem::take(&mut c.stats) {
            by_kind.entry(k).or_default().merge(s);
        }
    }
    let mut total = Stats::default();
    let mut rows = Vec::new();
    for (k, mut s) in by_kind {
        s.elapsed = elapsed;
        rows.push(Row::from_stats(&label, k.label(), options.clients, &s));
        total.merge(s);
    }
    total.elapsed = elapsed;
    let errors = total.errors;
    rows.push(
        Row::from_stats(&label, "all requests", options.clients, &total).with_note(format!(
            "{} s, {errors} errors (non-2xx or failed requests)",
            options.seconds
        )),
    );

    // Verification.
    let (checked, problems) = verify(&api, &clients, &pool).await?;
    let mismatches = problems.len();
    let mut note = format!("{checked} records checked, {mismatches} mismatches");
    for p in problems.iter().take(5) {
        note.push_str(&format!("; {p}"));
    }
    for p in &problems {
        eprintln!("load: MISMATCH {p}");
    }
    rows.push(Row::note(&label, "no lost writes", note));
    rows.push(Row::note(
        &label,
        "RSS peak during load",
        peaks
            .iter()
            .map(|(name, kib)| format!("{name} {}", memory::mb(*kib)))
            .collect::<Vec<_>>()
            .join(", "),
    ));
    drop(split);
    drop(all_in_one);
    Ok(LoadOutcome {
        rows,
        errors,
        mismatches,
    })
}

/// Compares the stored records with the clients' beliefs; how many records
/// were checked, and the differences.
async fn verify(
    api: &Api,
    clients: &[Client],
    pool: &[Value],
) -> anyhow::Result<(usize, Vec<String>)> {
    let mut problems = Vec::new();
    // Investigations of the created hosts end first (they update the hosts).
    crate::rest::wait_investigations(api, Duration::from_secs(120)).await?;
    let listed: BTreeSet<String> = api
        .get_json("/api/v0/hosts")
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|h| h["address"].as_str().map(str::to_string))
        .collect();
    let mut expected: BTreeSet<String> = pool
        .iter()
        .filter_map(|h| h["address"].as_str().map(str::to_string))
        .collect();
    let mut uncertain = BTreeSet::new();
    let mut owner_key: HashMap<String, String> = HashMap::new();
    for c in clients {
        for a in &c.alive {
            expected.insert(a.clone());
            owner_key.insert(a.clone(), c.key.clone());
        }
        uncertain.extend(c.uncertain.iter().cloned());
    }
    for a in expected.difference(&listed) {
        if !uncertain.contains(a) {
            problems.push(format!("host {a} is missing"));
        }
    }
    for a in listed.difference(&expected) {
        if !uncertain.contains(a) {
            let deleted = clients.iter().any(|c| c.deleted.contains(a));
            problems.push(format!(
                "host {a} exists but {}",
                if deleted {
                    "was deleted"
                } else {
                    "was never created"
                }
            ));
        }
    }
    // Every live host's credentials are its creator's.
    let results: Vec<Option<String>> = futures::stream::iter(owner_key.iter())
        .map(|(a, key)| async move {
            match api.get_json(&format!("/api/v0/host/{a}/creds")).await {
                Ok(c) if c["ssh_priv_key"] == key.as_str() && c["remote_user"] == "root" => None,
                Ok(c) => Some(format!(
                    "host {a} has other credentials (user {})",
                    c["remote_user"]
                )),
                Err(e) => Some(format!("host {a} credentials: {e:#}")),
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    problems.extend(results.into_iter().flatten());
    // Every cluster has the members its client left in it.
    for c in clients {
        let members: BTreeSet<String> = api
            .get_json(&format!("/api/v0/cluster/{}/hosts", c.cluster))
            .await?
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        if members != c.members {
            problems.push(format!(
                "cluster {} has members {members:?}, expected {:?}",
                c.cluster, c.members
            ));
        }
    }
    let checked = listed.len().max(expected.len()) + owner_key.len() + clients.len();
    Ok((checked, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_only_pick_requests_that_can_succeed() {
        let mut c = Client::new(3, 2);
        for _ in 0..1000 {
            let k = c.pick();
            assert!(!matches!(
                k,
                Kind::HostGet | Kind::HostRecreate | Kind::HostDelete
            ));
            assert_ne!(k, Kind::MemberRemove);
        }
        c.alive.push("127.80.3.0".into());
        c.members = c.pool.iter().cloned().collect();
        for _ in 0..1000 {
            assert_ne!(c.pick(), Kind::MemberAdd);
        }
        let picked: BTreeSet<Kind> = (0..1000).map(|_| c.pick()).collect();
        assert!(picked.contains(&Kind::HostDelete) && picked.contains(&Kind::MemberRemove));
    }

    #[test]
    fn addresses_are_unique_per_client() {
        let mut a = Client::new(1, 4);
        let mut b = Client::new(2, 4);
        let mut all = BTreeSet::new();
        for _ in 0..600 {
            assert!(all.insert(a.new_address()));
            assert!(all.insert(b.new_address()));
        }
        for p in a.pool.iter().chain(&b.pool) {
            assert!(all.insert(p.clone()), "{p}");
        }
    }
}
