//! The session pool: one master connection per host, shared, bounded, closed
//! when idle, opened again when it died.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::SshError;
use crate::secret::SecretFile;

/// Who logs in where, with which key.
#[derive(Clone)]
pub struct Credentials {
    /// The host's address.
    pub address: String,
    /// The remote user.
    pub user: String,
    /// The private key (PEM/OpenSSH format, decoded).
    pub key: Vec<u8>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("address", &self.address)
            .field("user", &self.user)
            .field("key", &"<secret>")
            .finish()
    }
}

/// What the caller knows of the host's SSH host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKey {
    /// Nothing yet: the key the host shows is accepted and returned (trust
    /// on first use); the caller records it.
    FirstContact,
    /// The recorded key(s), as `known_hosts` lines of the address; any
    /// other key is [`SshError::HostKeyChanged`].
    Pinned(String),
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Its exit code (`None`: killed by a signal).
    pub status: Option<i32>,
    /// What it wrote to standard output.
    pub stdout: Vec<u8>,
    /// What it wrote to standard error.
    pub stderr: Vec<u8>,
}

impl Output {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

/// Limits of a pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Open sessions at most; opening one more closes the least recently
    /// used.
    pub max_sessions: usize,
    /// A session unused this long is closed ([`SessionPool::close_idle`]).
    pub idle: Duration,
    /// Time limit of connecting (whole seconds; at least 1).
    pub connect_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_sessions: 512,
            idle: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// An open session (its key and known_hosts files are removed once the
/// master is up).
struct Entry {
    session: Session,
    /// Who it logged in as (the user and a hash of the key): other
    /// credentials need a session of their own.
    opened_as: String,
    /// The host key the session verified (`known_hosts` lines): a caller
    /// with another pinned key needs a session of its own.
    host_key: String,
    last_used: std::sync::Mutex<Instant>,
}

impl Entry {
    /// Whether a caller with these credentials and this knowledge of the
    /// host key can use this session.
    /// A first contact always opens a session of its own: whatever an
    /// open session verified is a key the caller's record no longer holds
    /// (the host was created again, or its new key accepted).
    fn serves(&self, opened_as: &str, host_key: &HostKey) -> bool {
        self.opened_as == opened_as
            && match host_key {
                HostKey::FirstContact => false,
                HostKey::Pinned(lines) => lines.trim() == self.host_key.trim(),
            }
    }

    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
}

/// A host's session held open for a program of its own (`ansible-playbook`
/// multiplexing over [`Lease::control_socket`]): the pool does not close
/// it while the lease lives; it closes when the lease is dropped if the
/// pool let go of it meanwhile (idle, evicted).
pub struct Lease {
    entry: Arc<Entry>,
}

impl Lease {
    /// The master's control socket (`ssh -o ControlPath=...`).
    pub fn control_socket(&self) -> &std::path::Path {
        self.entry.session.control_socket()
    }

    /// The host key the session verified (`known_hosts` lines).
    pub fn host_key(&self) -> &str {
        &self.entry.host_key
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("control_socket", &self.control_socket())
            .finish()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.entry.touch();
    }
}

/// A host's place in the pool: its session, if one is open. Locked while
/// the session is being opened, so callers of the same host wait for that
/// one instead of opening their own.
#[derive(Default)]
struct Slot(Mutex<Option<Arc<Entry>>>);

/// The sessions of a process. Cheap to share behind an `Arc`.
pub struct SessionPool {
    /// Private (0700): key files, known_hosts files, control sockets.
    dir: tempfile::TempDir,
    config: PoolConfig,
    slots: std::sync::Mutex<HashMap<String, Arc<Slot>>>,
    open: AtomicUsize,
    serial: AtomicU64,
    opened: AtomicU64,
}

impl SessionPool {
    /// A pool keeping its files in a new private directory under `parent`.
    pub fn new(parent: &std::path::Path, config: PoolConfig) -> Result<SessionPool, SshError> {
        sweep_dead_pools(parent);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{POOL_PREFIX}{}-", std::process::id()))
            .tempdir_in(parent)
            .map_err(SshError::Files)?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(SshError::Files)?;
        Ok(SessionPool {
            dir,
            config,
            slots: std::sync::Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
            serial: AtomicU64::new(0),
            opened: AtomicU64::new(0),
        })
    }

    /// Where the pool keeps its files.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Sessions open now.
    pub async fn open_sessions(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        // Every use is one map operation: still usable after a panic.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn slot(&self, address: &str) -> Arc<Slot> {
        self.slots().entry(address.to_string()).or_default().clone()
    }

    /// Takes the session out of a slot whose lock is held.
    fn take(&self, current: &mut Option<Arc<Entry>>) -> Option<Arc<Entry>> {
        let taken = current.take();
        if taken.is_some() {
            self.open.fetch_sub(1, Ordering::SeqCst);
        }
        taken
    }

    /// Master connections opened since the pool was made.
    pub fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Runs `command` (a shell command line) on the host within `timeout`,
    /// on the host's session (opened first when there is none, and again
    /// once when the one there is has died: the host restarted). Returns
    /// what it did and the host key the session verified (with
    /// [`HostKey::FirstContact`], the one to record).
    pub async fn run(
        &self,
        creds: &Credentials,
        host_key: &HostKey,
        command: &str,
        timeout: Duration,
    ) -> Result<(Output, String), SshError> {
        let deadline = Instant::now() + timeout;
        let timed_out = || SshError::Timeout {
            address: creds.address.clone(),
            command: command.to_string(),
            after: timeout,
        };
        for attempt in 0..2 {
            let entry = tokio::time::timeout_at(deadline, self.session(creds, host_key))
                .await
                .map_err(|_| timed_out())??;
            let ran =
                tokio::time::timeout_at(deadline, entry.session.raw_command(command).output())
                    .await
                    .map_err(|_| timed_out())?;
            match ran {
                Ok(out) => {
                    entry.touch();
                    let output = Output {
                        status: out.status.code(),
                        stdout: out.stdout,
                        stderr: out.stderr,
                    };
                    return Ok((output, entry.host_key.clone()));
                }
                Err(e) => {
                    // The master is gone (the host restarted, the network
                    // cut it): forget the session, and open a new one once.
                    tracing::debug!(address = %creds.address, error = %e, attempt, "ssh session lost");
                    self.forget(&creds.address, &entry).await;
                    if attempt == 1 {
                        return Err(SshError::Unreachable {
                            address: creds.address.clone(),
                            detail: e.to_string(),
                        });
                    }
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// The host's session, opened when there is none, held for a program
    /// of the caller's own (see [`Lease`]); [`Lease::host_key`] is the key
    /// it verified (with [`HostKey::FirstContact`], the one to record).
    pub async fn lease(&self, creds: &Credentials, host_key: &HostKey) -> Result<Lease, SshError> {
        let entry = self.session(creds, host_key).await?;
        // Another program will use it: it must be alive (a master whose
        // host restarted is replaced).
        let entry = if entry.session.check().await.is_ok() {
            entry
        } else {
            tracing::debug!(address = %creds.address, "ssh session lost");
            self.forget(&creds.address, &entry).await;
            self.session(creds, host_key).await?
        };
        entry.touch();
        Ok(Lease { entry })
    }

    /// The host's session for these credentials and host key, opened when
    /// there is none.
    async fn session(
        &self,
        creds: &Credentials,
        host_key: &HostKey,
    ) -> Result<Arc<Entry>, SshError> {
        let opened_as = identity(creds);
        let slot = self.slot(&creds.address);
        let mut current = slot.0.lock().await;
        if let Some(entry) = current.as_ref()
            && entry.serves(&opened_as, host_key)
        {
            return Ok(entry.clone());
        }
        if let Some(stale) = self.take(&mut current) {
            close(stale).await;
        }
        self.make_room(&creds.address).await;
        let entry = Arc::new(self.open(creds, host_key, opened_as).await?);
        *current = Some(entry.clone());
        self.open.fetch_add(1, Ordering::SeqCst);
        Ok(entry)
    }

    /// Closes the least recently used sessions of other hosts while the
    /// pool is full.
    async fn make_room(&self, address: &str) {
        while self.open.load(Ordering::SeqCst) >= self.config.max_sessions.max(1) {
            let slots: Vec<(String, Arc<Slot>)> = self
                .slots()
                .iter()
                .filter(|(a, _)| a.as_str() != address)
                .map(|(a, s)| (a.clone(), s.clone()))
                .collect();
            let oldest = slots
                .iter()
                .filter_map(|(_, slot)| {
                    let current = slot.0.try_lock().ok()?;
                    let used = *current
                        .as_ref()?
                        .last_used
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    Some((used, slot.clone()))
                })
                .min_by_key(|(used, _)| *used);
            let Some((_, slot)) = oldest else {
                // Every other session is being opened or used: let the
                // pool be one over for now.
                return;
            };
            let taken = match slot.0.try_lock() {
                Ok(mut current) => self.take(&mut current),
                Err(_) => None,
            };
            if let Some(entry) = taken {
                close(entry).await;
            }
        }
    }

    async fn open(
        &self,
        creds: &Credentials,
        host_key: &HostKey,
        opened_as: String,
    ) -> Result<Entry, SshError> {
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        let key = SecretFile::write(self.dir.path().join(format!("key-{n}")), &creds.key)
            .map_err(SshError::Files)?;
        let pinned = match host_key {
            HostKey::FirstContact => String::new(),
            HostKey::Pinned(lines) => lines.clone(),
        };
        let known_hosts = SecretFile::write(
            self.dir.path().join(format!("known-{n}")),
            pinned.as_bytes(),
        )
        .map_err(SshError::Files)?;
        let mut builder = SessionBuilder::default();
        builder
            .user(creds.user.clone())
            .keyfile(key.path())
            .user_known_hosts_file(known_hosts.path())
            // No user or system ssh_config: nothing but these options.
            .config_file("/dev/null")
            .known_hosts_check(match host_key {
                HostKey::FirstContact => KnownHosts::Add,
                HostKey::Pinned(_) => KnownHosts::Strict,
            })
            .connect_timeout(self.config.connect_timeout.max(Duration::from_secs(1)))
            .server_alive_interval(Duration::from_secs(15))
            // A backstop only: the pool closes its masters itself (idle,
            // evicted, dropped) and the next pool stops those of a process
            // killed with -9; a master left anyway exits once idle this
            // long. Never shorter than the pool's own idle time (with a
            // margin): a master must not vanish under a session the pool
            // or a lease still holds, before any command ran on it.
            .control_persist(ControlPersist::IdleFor(
                NonZeroUsize::new(persist_seconds(self.config.idle)).unwrap_or(NonZeroUsize::MIN),
            ))
            .control_directory(self.dir.path());
        let session = builder
            .connect_mux(&creds.address)
            .await
            .map_err(|e| connect_error(creds, &e))?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        let recorded = std::fs::read_to_string(known_hosts.path()).unwrap_or_default();
        // The master is authenticated and has checked the host: the key and
        // the known_hosts files are not needed any more (the sessions on
        // the master do not authenticate again).
        drop(key);
        drop(known_hosts);
        let host_key = match host_key {
            HostKey::Pinned(lines) => lines.clone(),
            HostKey::FirstContact => recorded.trim().to_string(),
        };
        tracing::debug!(address = %creds.address, "ssh session opened");
        Ok(Entry {
            session,
            opened_as,
            host_key,
            last_used: std::sync::Mutex::new(Instant::now()),
        })
    }

    /// Drops the session of `address` if it is `entry`.
    async fn forget(&self, address: &str, entry: &Arc<Entry>) {
        let slot = self.slot(address);
        let mut current = slot.0.lock().await;
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, entry))
            && let Some(gone) = self.take(&mut current)
        {
            drop(current);
            close(gone).await;
        }
    }

    /// Closes the sessions unused for [`PoolConfig::idle`]; returns how
    /// many. Daemons call it every so often.
    pub async fn close_idle(&self) -> usize {
        let now = Instant::now();
        let slots: Vec<Arc<Slot>> = self.slots().values().cloned().collect();
        let mut closed = 0;
        for slot in slots {
            let taken = match slot.0.try_lock() {
                Ok(mut current) => {
                    let idle = current.as_ref().is_some_and(|e| {
                        now.duration_since(*e.last_used.lock().unwrap_or_else(|p| p.into_inner()))
                            >= self.config.idle
                    });
                    if idle { self.take(&mut current) } else { None }
                }
                // Being opened or used right now: not idle.
                Err(_) => None,
            };
            if let Some(entry) = taken {
                closed += 1;
                close(entry).await;
            }
        }
        closed
    }

    /// Closes every session.
    pub async fn close_all(&self) {
        let slots: Vec<Arc<Slot>> = self.slots().values().cloned().collect();
        for slot in slots {
            let taken = self.take(&mut *slot.0.lock().await);
            if let Some(entry) = taken {
                close(entry).await;
            }
        }
    }
}

/// The name of a pool's directory: this, the owner's process id, a dash.
const POOL_PREFIX: &str = "commissaire-ssh-";

/// Removes the directories pools of dead processes left in `parent` (a
/// process killed with -9 cannot remove its own): control sockets, and a
/// key file of a connection that was being opened.
fn sweep_dead_pools(parent: &std::path::Path) {
    for (dir, pid) in crate::orphaned_dirs(parent, POOL_PREFIX) {
        tracing::info!(dir = %dir.display(), pid, "removing the SSH files of a dead process");
        stop_masters(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Stops the masters listening on the control sockets under `dir` (those
/// of a process killed with -9 would otherwise stay until idle).
fn stop_masters(dir: &std::path::Path) {
    use std::os::unix::fs::FileTypeExt;
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_socket() {
                let _ = std::process::Command::new("ssh")
                    .arg("-o")
                    .arg(format!("ControlPath={}", entry.path().display()))
                    .args(["-O", "exit", "commissaire-dead-master"])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
}

/// The `ControlPersist` of a master: twice the pool's idle time, at least
/// a minute.
fn persist_seconds(idle: Duration) -> usize {
    (idle.as_secs().saturating_mul(2)).max(60) as usize
}

/// Who a session logs in as, without the key itself.
fn identity(creds: &Credentials) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    creds.key.hash(&mut hasher);
    format!("{}:{:x}", creds.user, hasher.finish())
}

fn connect_error(creds: &Credentials, e: &openssh::Error) -> SshError {
    use std::error::Error as _;
    let mut said = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        said.push('\n');
        said.push_str(&s.to_string());
        source = s.source();
    }
    SshError::from_connect(&creds.address, &creds.user, &said)
}

/// Closes a session no caller uses any more (the master exits, its files
/// go); one still in use closes when its last user is done.
async fn close(entry: Arc<Entry>) {
    if let Ok(entry) = Arc::try_unwrap(entry) {
        let Entry { session, .. } = entry;
        let _ = session.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_persists_longer_than_the_pool_keeps_it_idle() {
        assert_eq!(persist_seconds(Duration::from_millis(1)), 60);
        assert_eq!(persist_seconds(Duration::from_secs(120)), 240);
    }
}
