//! `keystonetokenauth`: an OpenStack Keystone token in `X-Auth-Token`.
//!
//! Options: `url` (required, the Keystone base such as
//! `https://keystone.example.com:5000`; a trailing `/v3` or `/v3/auth/tokens`
//! is accepted too), `insecure=true`, `ca=PATH`, `cache_ttl` (seconds an
//! accepted token is remembered; default 60, 0 disables).
//!
//! A token is valid when `GET {url}/v3/auth/tokens` with `X-Auth-Token` and
//! `X-Subject-Token` both set to it answers 200. The user is the body's
//! `token.user.name` (else `token.user.id`, else `keystone`).

use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value};

use super::cache::SuccessCache;
use super::options::Options;
use super::remote::{RemoteApi, cache_from_options, describe};
use super::{AuthConfigError, AuthDecision, Authenticator, RequestCredentials};

/// The plugin's module name.
pub const NAME: &str = "keystonetokenauth";

/// How long (seconds) an accepted token is remembered unless `cache_ttl` says otherwise.
pub const DEFAULT_CACHE_TTL_SECS: u64 = 60;

/// The Keystone v3 token path.
pub const TOKENS_PATH: &str = "/v3/auth/tokens";

/// The token path asking Keystone to leave the (large) service catalog out.
const NOCATALOG_TOKENS_PATH: &str = "/v3/auth/tokens?nocatalog";

/// The header the caller's token comes in (and is checked with).
pub const AUTH_TOKEN_HEADER: HeaderName = HeaderName::from_static("x-auth-token");

/// The header naming the token to validate.
pub const SUBJECT_TOKEN_HEADER: HeaderName = HeaderName::from_static("x-subject-token");

/// The user reported when Keystone's answer names none.
const FALLBACK_USER: &str = "keystone";

/// The `keystonetokenauth` plugin.
pub struct KeystoneTokenAuth {
    api: RemoteApi,
    cache: SuccessCache,
}

impl std::fmt::Debug for KeystoneTokenAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneTokenAuth")
            .field("api", &self.api)
            .field("cache", &self.cache)
            .finish()
    }
}

impl KeystoneTokenAuth {
    /// Builds the plugin from its options (see the module documentation).
    pub fn from_options(options: &Map<String, Value>) -> Result<Self, AuthConfigError> {
        let mut opts = Options::new(NAME, options)?;
        let api = RemoteApi::from_options(&mut opts, &[TOKENS_PATH, "/v3"])?;
        let cache = cache_from_options(&mut opts, DEFAULT_CACHE_TTL_SECS)?;
        opts.finish()?;
        Ok(KeystoneTokenAuth { api, cache })
    }

    /// Asks Keystone; `Some(user)` for a valid token, `None` otherwise.
    async fn validate(&self, token: &HeaderValue) -> Option<String> {
        let response = self
            .api
            .client
            .get(self.api.endpoint(NOCATALOG_TOKENS_PATH))
            .header(AUTH_TOKEN_HEADER, token.clone())
            .header(SUBJECT_TOKEN_HEADER, token.clone())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(plugin = NAME, error = %describe(&e), "cannot reach Keystone");
                return None;
            }
        };
        match response.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
                tracing::debug!(plugin = NAME, "Keystone rejected the token");
                return None;
            }
            status => {
                tracing::warn!(plugin = NAME, %status, "unexpected answer from Keystone");
                return None;
            }
        }
        // The token is valid whatever the body says; it only names the user.
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        let user = ["/token/user/name", "/token/user/id"]
            .iter()
            .find_map(|pointer| body.pointer(pointer).and_then(Value::as_str))
            .filter(|user| !user.is_empty())
            .unwrap_or(FALLBACK_USER);
        Some(user.to_string())
    }
}

#[async_trait::async_trait]
impl Authenticator for KeystoneTokenAuth {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn authenticate(&self, req: &RequestCredentials<'_>) -> AuthDecision {
        let Some(token) = req.headers.get(AUTH_TOKEN_HEADER) else {
            return AuthDecision::Abstain;
        };
        let Ok(text) = token.to_str() else {
            return AuthDecision::Abstain;
        };
        let text = text.trim();
        if text.is_empty() {
            return AuthDecision::Abstain;
        }
        let Ok(mut token) = HeaderValue::from_str(text) else {
            return AuthDecision::Abstain;
        };
        token.set_sensitive(true);
        let key = self.cache.key(&[text.as_bytes()]);
        if let Some(user) = self.cache.get(&key) {
            return AuthDecision::Allow { user };
        }
        match self.validate(&token).await {
            Some(user) => {
                self.cache.insert(key, user.clone());
                AuthDecision::Allow { user }
            }
            None => AuthDecision::Abstain,
        }
    }
}
