//! `httpbasicauth`: HTTP Basic authentication against bcrypt hashes.
//!
//! Users are `{"username": {"hash": "$2a$12$..."}}` documents (the docs'
//! `users.json`), taken from:
//!
//! - `filepath=PATH`: a JSON file;
//! - `users`: inline (config file form: `{"users": {"a": {"hash": "..."}}}`,
//!   or the same JSON as a string);
//! - `etcd=http://host:port[,http://host2:port]`: an etcd key, `etcd_key`
//!   (default `/commissaire/config/httpbasicauthbyuserlist`), re-read at most
//!   every `etcd_refresh` seconds (default 30). Optional `etcd_cacert`,
//!   `etcd_tlspem`, `etcd_tlskey`, `etcd_username`, `etcd_password`.
//!
//! File and inline users are merged (the file wins); etcd users take
//! precedence over both. With no option at all, etcd is used when
//! `ETCD_MACHINES` is set (like the original, which fell back to etcd).
//!
//! Checking a bcrypt hash is deliberately slow (about 0.25 s at cost 12), so
//! successful checks are remembered for `cache_ttl` seconds (default 300, 0
//! disables) under an HMAC of user, password and stored hash (a changed hash
//! invalidates them). Failures are never cached.
//!
//! An unknown user costs what a wrong password costs: the password is
//! checked against a dummy hash of the same bcrypt cost as the known users'
//! (so the answer's timing does not tell user names apart). At most one
//! check per CPU runs at a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use commissaire_service::EtcdSettings;
use serde_json::{Map, Value};
use tokio::sync::{Mutex, Semaphore};

use super::cache::SuccessCache;
use super::options::Options;
use super::remote::cache_from_options;
use super::{AuthConfigError, AuthDecision, Authenticator, RequestCredentials, basic_credentials};

/// The plugin's module name.
pub const NAME: &str = "httpbasicauth";

/// The etcd key holding the user list unless `etcd_key` says otherwise.
pub const DEFAULT_ETCD_KEY: &str = "/commissaire/config/httpbasicauthbyuserlist";

/// How often (seconds) the etcd user list is re-read unless `etcd_refresh` says otherwise.
pub const DEFAULT_ETCD_REFRESH_SECS: u64 = 30;

/// How long (seconds) a successful check is remembered unless `cache_ttl` says otherwise.
pub const DEFAULT_CACHE_TTL_SECS: u64 = 300;

/// User name -> bcrypt hash.
type Users = HashMap<String, String>;

/// The `httpbasicauth` plugin.
pub struct HttpBasicAuth {
    static_users: Users,
    /// The `"role"` of users from the file or the `users` option.
    static_roles: HashMap<String, super::roles::Role>,
    etcd: Option<EtcdUsers>,
    cache: SuccessCache,
    verifications: AtomicU64,
    bcrypt_slots: Semaphore,
    /// A hash of nothing anyone knows, at the known users' cost, checked
    /// for unknown users (made at the first one).
    dummy: tokio::sync::OnceCell<String>,
}

impl std::fmt::Debug for HttpBasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No hashes: only how many users there are.
        f.debug_struct("HttpBasicAuth")
            .field("static_users", &self.static_users.len())
            .field("etcd", &self.etcd)
            .field("cache", &self.cache)
            .field("verifications", &self.verifications())
            .finish()
    }
}

impl HttpBasicAuth {
    /// Builds the plugin from its options (see the module documentation).
    pub async fn from_options(options: &Map<String, Value>) -> Result<Self, AuthConfigError> {
        let mut opts = Options::new(NAME, options)?;
        let mut static_users = Users::new();
        let mut static_roles = HashMap::new();
        let mut have_static = false;
        if let Some(inline) = opts.take("users") {
            let document = match inline {
                Value::String(text) => {
                    serde_json::from_str(&text).map_err(|e| AuthConfigError::Users {
                        plugin: NAME,
                        origin: "option users".into(),
                        reason: format!("not JSON: {e}"),
                    })?
                }
                other => other,
            };
            static_users = parse_users(&document).map_err(|reason| AuthConfigError::Users {
                plugin: NAME,
                origin: "option users".into(),
                reason: reason.clone(),
            })?;
            static_roles = parse_roles(&document).map_err(|reason| AuthConfigError::Users {
                plugin: NAME,
                origin: "option users".into(),
                reason,
            })?;
            have_static = true;
        }
        if let Some(path) = opts.string("filepath")? {
            let text = std::fs::read(&path).map_err(|source| AuthConfigError::File {
                plugin: NAME,
                option: "filepath",
                path: path.clone(),
                source,
            })?;
            let origin = format!("file {path}");
            let document: Value =
                serde_json::from_slice(&text).map_err(|e| AuthConfigError::Users {
                    plugin: NAME,
                    origin: origin.clone(),
                    reason: format!("not JSON: {e}"),
                })?;
            let users = parse_users(&document).map_err(|reason| AuthConfigError::Users {
                plugin: NAME,
                origin: origin.clone(),
                reason,
            })?;
            let roles = parse_roles(&document).map_err(|reason| AuthConfigError::Users {
                plugin: NAME,
                origin,
                reason,
            })?;
            tracing::info!(plugin = NAME, %path, users = users.len(), "loaded users from file");
            static_users.extend(users);
            static_roles.extend(roles);
            have_static = true;
        }

        let endpoints = opts.string("etcd")?;
        let key = opts.string("etcd_key")?;
        let refresh = opts.u64("etcd_refresh")?;
        let tls = (
            opts.string("etcd_cacert")?,
            opts.string("etcd_tlspem")?,
            opts.string("etcd_tlskey")?,
        );
        let login = (opts.string("etcd_username")?, opts.string("etcd_password")?);
        let cache = cache_from_options(&mut opts, DEFAULT_CACHE_TTL_SECS)?;
        opts.finish()?;

        let settings = match endpoints {
            Some(endpoints) => {
                let endpoints: Vec<String> = endpoints
                    .split(',')
                    .map(|e| e.trim().to_string())
                    .filter(|e| !e.is_empty())
                    .collect();
                if endpoints.is_empty() {
                    return Err(AuthConfigError::InvalidOption {
                        plugin: NAME,
                        option: "etcd",
                        reason: "no endpoint given".into(),
                    });
                }
                Some(EtcdSettings {
                    endpoints,
                    ca_cert: tls.0.map(Into::into),
                    cert: tls.1.map(Into::into),
                    key: tls.2.map(Into::into),
                    username: login.0,
                    password: login.1,
                })
            }
            None => {
                let given = [
                    ("etcd_key", key.is_some()),
                    ("etcd_refresh", refresh.is_some()),
                    ("etcd_cacert", tls.0.is_some()),
                    ("etcd_tlspem", tls.1.is_some()),
                    ("etcd_tlskey", tls.2.is_some()),
                    ("etcd_username", login.0.is_some()),
                    ("etcd_password", login.1.is_some()),
                ];
                if let Some((option, _)) = given.iter().find(|(_, given)| *given) {
                    return Err(AuthConfigError::InvalidOption {
                        plugin: NAME,
                        option,
                        reason: "only makes sense together with the etcd option".into(),
                    });
                }
                if have_static {
                    None
                } else {
                    EtcdSettings::from_env()
                }
            }
        };
        if settings.is_none() && !have_static {
            return Err(AuthConfigError::MissingOption {
                plugin: NAME,
                option: "filepath, users or etcd",
            });
        }
        let etcd = match settings {
            Some(settings) => {
                let etcd = EtcdUsers::new(
                    settings,
                    key.unwrap_or_else(|| DEFAULT_ETCD_KEY.to_string()),
                    Duration::from_secs(refresh.unwrap_or(DEFAULT_ETCD_REFRESH_SECS)),
                );
                etcd.refresh(true).await;
                Some(etcd)
            }
            None => None,
        };
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(HttpBasicAuth {
            static_users,
            static_roles,
            etcd,
            cache,
            verifications: AtomicU64::new(0),
            bcrypt_slots: Semaphore::new(parallel),
            dummy: tokio::sync::OnceCell::new(),
        })
    }

    /// How many bcrypt hash checks this plugin has run (cache hits do not count).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// The bcrypt cost of the dummy hash, once an unknown user made it.
    pub fn dummy_cost(&self) -> Option<u32> {
        self.dummy.get().and_then(|h| hash_cost(h))
    }

    /// The dummy hash: the cost of a known user's hash (12 when there is none).
    async fn dummy_hash(&self) -> Option<String> {
        let cost = match &self.etcd {
            Some(etcd) => etcd.users().values().find_map(|h| hash_cost(h)),
            None => None,
        }
        .or_else(|| self.static_users.values().find_map(|h| hash_cost(h)))
        .unwrap_or(12);
        self.dummy
            .get_or_try_init(|| async move {
                let mut secret = [0u8; 24];
                rand::Rng::fill(&mut rand::rng(), &mut secret[..]);
                tokio::task::spawn_blocking(move || bcrypt::hash(secret, cost))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| tracing::warn!(plugin = NAME, error = %e, "could not make the dummy hash"))
            .ok()
            .cloned()
    }

    /// The stored hash of `user`, etcd first.
    async fn stored_hash(&self, user: &str) -> Option<String> {
        if let Some(etcd) = &self.etcd {
            etcd.refresh(false).await;
            if let Some(hash) = etcd.users().get(user) {
                return Some(hash.clone());
            }
        }
        self.static_users.get(user).cloned()
    }

    /// Runs bcrypt off the async threads, at most one per CPU at a time.
    async fn verify(&self, user: &str, password: String, hash: String) -> bool {
        let Ok(_permit) = self.bcrypt_slots.acquire().await else {
            return false;
        };
        self.verifications.fetch_add(1, Ordering::Relaxed);
        match tokio::task::spawn_blocking(move || bcrypt::verify(password.as_bytes(), &hash)).await
        {
            Ok(Ok(matches)) => matches,
            Ok(Err(e)) => {
                tracing::warn!(plugin = NAME, %user, error = %e, "stored bcrypt hash cannot be used");
                false
            }
            Err(e) => {
                tracing::warn!(plugin = NAME, error = %e, "bcrypt check did not finish");
                false
            }
        }
    }
}

#[async_trait::async_trait]
impl Authenticator for HttpBasicAuth {
    fn name(&self) -> &'static str {
        NAME
    }

    fn role_of(&self, user: &str) -> Option<super::roles::Role> {
        self.static_roles.get(user).copied()
    }

    fn summary(&self) -> String {
        match &self.etcd {
            None => format!("{NAME}: {} users", self.static_users.len()),
            Some(_) => format!("{NAME}: {} users besides etcd's", self.static_users.len()),
        }
    }

    async fn authenticate(&self, req: &RequestCredentials<'_>) -> AuthDecision {
        let Some((user, password)) = basic_credentials(req.headers) else {
            return AuthDecision::Abstain;
        };
        let Some(hash) = self.stored_hash(&user).await else {
            // As long as a wrong password takes.
            if let Some(dummy) = self.dummy_hash().await {
                self.verify(&user, password, dummy).await;
            }
            tracing::debug!(plugin = NAME, %user, "unknown user");
            return AuthDecision::Abstain;
        };
        let key = self
            .cache
            .key(&[user.as_bytes(), password.as_bytes(), hash.as_bytes()]);
        if self.cache.get(&key).is_some() {
            return AuthDecision::Allow { user };
        }
        if self.verify(&user, password, hash).await {
            self.cache.insert(key, user.clone());
            AuthDecision::Allow { user }
        } else {
            tracing::debug!(plugin = NAME, %user, "wrong password");
            AuthDecision::Abstain
        }
    }
}

/// Reads a `{"username": {"hash": "$2a$..."}}` document. Errors name the
/// user, never the hash.
fn parse_users(document: &Value) -> Result<Users, String> {
    let Value::Object(entries) = document else {
        return Err("expected a JSON object of user names".into());
    };
    let mut users = Users::with_capacity(entries.len());
    for (user, entry) in entries {
        if user.is_empty() {
            return Err("a user name is empty".into());
        }
        if user.contains(':') {
            return Err(format!("user name {user:?} contains ':'"));
        }
        let hash = entry
            .get("hash")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("user {user:?} has no \"hash\" string"))?;
        check_hash(hash).map_err(|reason| format!("user {user:?}: {reason}"))?;
        users.insert(user.clone(), hash.to_string());
    }
    Ok(users)
}

/// The `"role"` of each user entry that has one (`viewer`, `operator`,
/// `admin`); another value is an error naming the user.
fn parse_roles(document: &Value) -> Result<HashMap<String, super::roles::Role>, String> {
    let mut roles = HashMap::new();
    if let Value::Object(entries) = document {
        for (user, entry) in entries {
            match entry.get("role") {
                None | Some(Value::Null) => {}
                Some(Value::String(role)) => {
                    let role = super::roles::Role::parse(role)
                        .map_err(|e| format!("user {user:?}: {e}"))?;
                    roles.insert(user.clone(), role);
                }
                Some(_) => return Err(format!("user {user:?}: \"role\" must be a string")),
            }
        }
    }
    Ok(roles)
}

/// The cost of a bcrypt hash, if it is one.
fn hash_cost(hash: &str) -> Option<u32> {
    hash.parse::<bcrypt::HashParts>().ok().map(|p| p.get_cost())
}

/// Accepts `$2a$`, `$2b$` and `$2y$` bcrypt hashes with a usable cost.
fn check_hash(hash: &str) -> Result<(), String> {
    if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) {
        return Err("hash is not a $2a$, $2b$ or $2y$ bcrypt hash".into());
    }
    let parts: bcrypt::HashParts = hash
        .parse()
        .map_err(|e| format!("hash is not a valid bcrypt hash ({e})"))?;
    if !(4..=31).contains(&parts.get_cost()) {
        return Err("hash has a bcrypt cost outside 4..31".into());
    }
    Ok(())
}

/// Users kept in etcd.
struct EtcdUsers {
    settings: EtcdSettings,
    key: String,
    every: Duration,
    users: RwLock<Arc<Users>>,
    state: Mutex<EtcdState>,
}

#[derive(Default)]
struct EtcdState {
    last_attempt: Option<Instant>,
}

impl std::fmt::Debug for EtcdUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdUsers")
            .field("endpoints", &self.settings.endpoints)
            .field("key", &self.key)
            .field("every", &self.every)
            .field("users", &self.users().len())
            .finish()
    }
}

impl EtcdUsers {
    fn new(settings: EtcdSettings, key: String, every: Duration) -> Self {
        EtcdUsers {
            settings,
            key,
            every,
            users: RwLock::new(Arc::new(Users::new())),
            state: Mutex::new(EtcdState::default()),
        }
    }

    /// The current user list.
    fn users(&self) -> Arc<Users> {
        self.users.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads the list if the last attempt is older than `every` (or
    /// `wait` is set: startup). Without `wait`, a reload already running in
    /// another request is not waited for.
    async fn refresh(&self, wait: bool) {
        let mut state = if wait {
            self.state.lock().await
        } else {
            match self.state.try_lock() {
                Ok(state) => state,
                Err(_) => return,
            }
        };
        if let Some(last) = state.last_attempt
            && last.elapsed() < self.every
        {
            return;
        }
        state.last_attempt = Some(Instant::now());
        self.reload().await;
    }

    async fn reload(&self) {
        let value = match self.settings.read(&self.key).await {
            Ok(value) => value,
            Err(e) => {
                tracing::warn!(plugin = NAME, key = %self.key, error = %e, "cannot read the user list from etcd; keeping the previous one");
                return;
            }
        };
        let users = match value {
            None => {
                tracing::warn!(plugin = NAME, key = %self.key, "no user list in etcd: nobody can log in through it");
                Users::new()
            }
            Some(value) => {
                let parsed = serde_json::from_slice::<Value>(&value)
                    .map_err(|e| format!("not JSON: {e}"))
                    .and_then(|document| parse_users(&document));
                match parsed {
                    Ok(users) => users,
                    Err(reason) => {
                        tracing::warn!(plugin = NAME, key = %self.key, %reason, "invalid user list in etcd; keeping the previous one");
                        return;
                    }
                }
            }
        };
        tracing::debug!(plugin = NAME, key = %self.key, users = users.len(), "loaded users from etcd");
        *self.users.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(users);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_documents_are_checked() {
        let good = bcrypt::hash("pw", 4).unwrap();
        assert!(parse_users(&serde_json::json!({"a": {"hash": good}})).is_ok());
        let bad_cost = format!("$2b$99${}", &good[7..]);
        assert!(parse_users(&serde_json::json!({"a": {"hash": bad_cost}})).is_err());
        assert!(parse_users(&serde_json::json!([])).is_err());
        assert!(parse_users(&serde_json::json!({"a": {}})).is_err());
        assert!(parse_users(&serde_json::json!({"a": {"hash": "plain"}})).is_err());
        assert!(parse_users(&serde_json::json!({"a": {"hash": "$1$abc"}})).is_err());
        let error = parse_users(&serde_json::json!({"a": {"hash": "$2a$12$short"}})).unwrap_err();
        assert!(!error.contains("short"), "{error}");
    }
}
