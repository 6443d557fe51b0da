//! `keystonepasswordauth`: HTTP Basic user and password checked by
//! OpenStack Keystone.
//!
//! Options: `url` (required, the Keystone base such as
//! `https://keystone.example.com:5000`; a trailing `/v3` or `/v3/auth/tokens`
//! is accepted too, the original took the full tokens URL), `domain` (the
//! user's domain name, default `default`), `insecure=true`, `ca=PATH`,
//! `cache_ttl` (seconds a successful check is remembered; default 300, 0
//! disables).
//!
//! The credentials are valid when `POST {url}/v3/auth/tokens` with a
//! password-method body answers 201. Successes are cached under an HMAC of
//! user, password and domain; failures never are.

use http::StatusCode;
use serde_json::{Map, Value, json};

use super::cache::SuccessCache;
use super::options::Options;
use super::remote::{RemoteApi, cache_from_options, describe};
use super::{AuthConfigError, AuthDecision, Authenticator, RequestCredentials, basic_credentials};

/// The plugin's module name.
pub const NAME: &str = "keystonepasswordauth";

/// The user domain unless `domain` says otherwise.
pub const DEFAULT_DOMAIN: &str = "default";

/// How long (seconds) a successful check is remembered unless `cache_ttl` says otherwise.
pub const DEFAULT_CACHE_TTL_SECS: u64 = 300;

/// The Keystone v3 token path.
pub const TOKENS_PATH: &str = "/v3/auth/tokens";

/// The token path asking Keystone to leave the (large) service catalog out.
const NOCATALOG_TOKENS_PATH: &str = "/v3/auth/tokens?nocatalog";

/// The `keystonepasswordauth` plugin.
pub struct KeystonePasswordAuth {
    api: RemoteApi,
    domain: String,
    cache: SuccessCache,
}

impl std::fmt::Debug for KeystonePasswordAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystonePasswordAuth")
            .field("api", &self.api)
            .field("domain", &self.domain)
            .field("cache", &self.cache)
            .finish()
    }
}

impl KeystonePasswordAuth {
    /// Builds the plugin from its options (see the module documentation).
    pub fn from_options(options: &Map<String, Value>) -> Result<Self, AuthConfigError> {
        let mut opts = Options::new(NAME, options)?;
        let api = RemoteApi::from_options(&mut opts, &[TOKENS_PATH, "/v3"])?;
        let domain = opts
            .string("domain")?
            .map(|d| d.trim().to_string())
            .unwrap_or_else(|| DEFAULT_DOMAIN.to_string());
        let cache = cache_from_options(&mut opts, DEFAULT_CACHE_TTL_SECS)?;
        opts.finish()?;
        Ok(KeystonePasswordAuth { api, domain, cache })
    }

    /// Asks Keystone for a token with these credentials.
    async fn check(&self, user: &str, password: &str) -> bool {
        let body = json!({
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": user,
                            "domain": {"name": self.domain},
                            "password": password,
                        }
                    }
                }
            }
        });
        let response = self
            .api
            .client
            .post(self.api.endpoint(NOCATALOG_TOKENS_PATH))
            .header(http::header::ACCEPT, "application/json")
            .json(&body)
            .send()
            .await;
        match response {
            Ok(response) => match response.status() {
                StatusCode::CREATED => true,
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
                    tracing::debug!(plugin = NAME, %user, "Keystone rejected the password");
                    false
                }
                status => {
                    tracing::warn!(plugin = NAME, %status, "unexpected answer from Keystone");
                    false
                }
            },
            Err(e) => {
                tracing::warn!(plugin = NAME, error = %describe(&e), "cannot reach Keystone");
                false
            }
        }
    }
}

#[async_trait::async_trait]
impl Authenticator for KeystonePasswordAuth {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn authenticate(&self, req: &RequestCredentials<'_>) -> AuthDecision {
        let Some((user, password)) = basic_credentials(req.headers) else {
            return AuthDecision::Abstain;
        };
        let key = self
            .cache
            .key(&[user.as_bytes(), password.as_bytes(), self.domain.as_bytes()]);
        if self.cache.get(&key).is_some() {
            return AuthDecision::Allow { user };
        }
        if self.check(&user, &password).await {
            self.cache.insert(key, user.clone());
            AuthDecision::Allow { user }
        } else {
            AuthDecision::Abstain
        }
    }
}
