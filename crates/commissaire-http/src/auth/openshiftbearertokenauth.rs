//! `openshiftbearertokenauth` (alias `kubernetesbearertokenauth`):
//! `Authorization: Bearer TOKEN` checked against an OpenShift / Kubernetes
//! API server.
//!
//! Options:
//! - `url` (required): the API server's base URL;
//! - `method`: `user` (default) asks `GET {url}/apis/user.openshift.io/v1/users/~`
//!   with the caller's token (OpenShift only; 200 => allowed, user =
//!   `metadata.name`); `tokenreview` posts a `TokenReview` to
//!   `{url}/apis/authentication.k8s.io/v1/tokenreviews` (any Kubernetes;
//!   allowed when `status.authenticated`, user = `status.user.username`),
//!   authenticated with the server's own token;
//! - `token` or `token_file`: the server's own (service-account) token, for
//!   `tokenreview`;
//! - `insecure=true`: skip TLS verification (opt-in only); `ca=PATH`: extra
//!   CA certificates (PEM);
//! - `cache_ttl`: seconds an accepted token is remembered (default 60, 0
//!   disables).
//!
//! Unreachable or misbehaving API servers make the plugin abstain (with a
//! warning that never includes a token).

use http::StatusCode;
use serde_json::{Map, Value, json};

use super::cache::SuccessCache;
use super::options::Options;
use super::remote::{RemoteApi, cache_from_options, describe};
use super::{AuthConfigError, AuthDecision, Authenticator, RequestCredentials, bearer_token};

/// The plugin's module name.
pub const NAME: &str = "openshiftbearertokenauth";

/// The plugin's other module name.
pub const KUBERNETES_NAME: &str = "kubernetesbearertokenauth";

/// How long (seconds) an accepted token is remembered unless `cache_ttl` says otherwise.
pub const DEFAULT_CACHE_TTL_SECS: u64 = 60;

/// The path of OpenShift's "who am I" endpoint.
pub const USER_PATH: &str = "/apis/user.openshift.io/v1/users/~";

/// The path of Kubernetes' TokenReview endpoint.
pub const TOKENREVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

/// How a token is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerTokenMethod {
    /// `GET /apis/user.openshift.io/v1/users/~` with the caller's token.
    User,
    /// `POST /apis/authentication.k8s.io/v1/tokenreviews` with the server's token.
    TokenReview,
}

/// What the API server said.
enum Verdict {
    Allowed(String),
    Denied,
    Unavailable,
}

/// The `openshiftbearertokenauth` / `kubernetesbearertokenauth` plugin.
pub struct BearerTokenAuth {
    name: &'static str,
    api: RemoteApi,
    method: BearerTokenMethod,
    /// `Bearer <server token>`, marked sensitive.
    service_auth: Option<http::HeaderValue>,
    cache: SuccessCache,
}

impl std::fmt::Debug for BearerTokenAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerTokenAuth")
            .field("name", &self.name)
            .field("api", &self.api)
            .field("method", &self.method)
            .field(
                "service_token",
                &self.service_auth.as_ref().map(|_| "<redacted>"),
            )
            .field("cache", &self.cache)
            .finish()
    }
}

impl BearerTokenAuth {
    /// Builds the plugin from its options; `name` is the module name it was
    /// configured under ([`NAME`] or [`KUBERNETES_NAME`]).
    pub fn from_options(
        name: &'static str,
        options: &Map<String, Value>,
    ) -> Result<Self, AuthConfigError> {
        let name = if name == KUBERNETES_NAME {
            KUBERNETES_NAME
        } else {
            NAME
        };
        let mut opts = Options::new(name, options)?;
        let api = RemoteApi::from_options(&mut opts, &[USER_PATH, TOKENREVIEW_PATH])?;
        let method = match opts
            .string("method")?
            .map(|m| m.trim().to_ascii_lowercase())
        {
            None => BearerTokenMethod::User,
            Some(m) if m == "user" => BearerTokenMethod::User,
            Some(m) if m == "tokenreview" => BearerTokenMethod::TokenReview,
            Some(_) => return Err(opts.invalid("method", "expected user or tokenreview")),
        };
        let token = opts.string("token")?;
        let token_file = opts.string("token_file")?;
        let token = match (token, token_file) {
            (Some(_), Some(_)) => {
                return Err(opts.invalid("token_file", "give either token or token_file, not both"));
            }
            (Some(token), None) => Some(token),
            (None, Some(path)) => {
                let text =
                    std::fs::read_to_string(&path).map_err(|source| AuthConfigError::File {
                        plugin: name,
                        option: "token_file",
                        path: path.clone(),
                        source,
                    })?;
                Some(text)
            }
            (None, None) => None,
        };
        let service_auth = match (method, token) {
            (BearerTokenMethod::TokenReview, None) => return Err(opts.missing("token")),
            (BearerTokenMethod::User, Some(_)) => {
                return Err(opts.invalid("token", "only used with method=tokenreview"));
            }
            (BearerTokenMethod::User, None) => None,
            (BearerTokenMethod::TokenReview, Some(token)) => {
                let mut value = http::HeaderValue::try_from(format!("Bearer {}", token.trim()))
                    .map_err(|_| {
                        opts.invalid("token", "contains characters not allowed in an HTTP header")
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        let cache = cache_from_options(&mut opts, DEFAULT_CACHE_TTL_SECS)?;
        opts.finish()?;
        Ok(BearerTokenAuth {
            name,
            api,
            method,
            service_auth,
            cache,
        })
    }

    /// How tokens are checked.
    pub fn method(&self) -> BearerTokenMethod {
        self.method
    }

    async fn ask_user(&self, token: &str) -> Verdict {
        let response = self
            .api
            .client
            .get(self.api.endpoint(USER_PATH))
            .bearer_auth(token)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(plugin = self.name, error = %describe(&e), "cannot reach the API server");
                return Verdict::Unavailable;
            }
        };
        match response.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Verdict::Denied,
            StatusCode::NOT_FOUND => {
                tracing::warn!(
                    plugin = self.name,
                    "the API server has no user.openshift.io API (not OpenShift?); use method=tokenreview"
                );
                return Verdict::Unavailable;
            }
            status => {
                tracing::warn!(plugin = self.name, %status, "unexpected answer from the API server");
                return Verdict::Unavailable;
            }
        }
        match response.json::<Value>().await {
            Ok(body) => match body.pointer("/metadata/name").and_then(Value::as_str) {
                Some(user) if !user.is_empty() => Verdict::Allowed(user.to_string()),
                _ => {
                    tracing::warn!(
                        plugin = self.name,
                        "the API server's User has no metadata.name"
                    );
                    Verdict::Unavailable
                }
            },
            Err(e) => {
                tracing::warn!(plugin = self.name, error = %describe(&e), "unreadable answer from the API server");
                Verdict::Unavailable
            }
        }
    }

    async fn ask_tokenreview(&self, token: &str) -> Verdict {
        let Some(service_auth) = &self.service_auth else {
            return Verdict::Unavailable;
        };
        let body = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        });
        let response = self
            .api
            .client
            .post(self.api.endpoint(TOKENREVIEW_PATH))
            .header(http::header::AUTHORIZATION, service_auth.clone())
            .header(http::header::ACCEPT, "application/json")
            .json(&body)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(plugin = self.name, error = %describe(&e), "cannot reach the API server");
                return Verdict::Unavailable;
            }
        };
        let status = response.status();
        if !status.is_success() {
            // 401/403 here mean the *server's* token is wrong or lacks the
            // right to create TokenReviews: worth a warning.
            tracing::warn!(plugin = self.name, %status, "the API server refused the TokenReview");
            return Verdict::Unavailable;
        }
        let body = match response.json::<Value>().await {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(plugin = self.name, error = %describe(&e), "unreadable TokenReview answer");
                return Verdict::Unavailable;
            }
        };
        if body
            .pointer("/status/authenticated")
            .and_then(Value::as_bool)
            != Some(true)
        {
            return Verdict::Denied;
        }
        match body
            .pointer("/status/user/username")
            .and_then(Value::as_str)
        {
            Some(user) if !user.is_empty() => Verdict::Allowed(user.to_string()),
            _ => {
                tracing::warn!(
                    plugin = self.name,
                    "authenticated TokenReview without status.user.username"
                );
                Verdict::Unavailable
            }
        }
    }
}

#[async_trait::async_trait]
impl Authenticator for BearerTokenAuth {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn authenticate(&self, req: &RequestCredentials<'_>) -> AuthDecision {
        let Some(token) = bearer_token(req.headers) else {
            return AuthDecision::Abstain;
        };
        let key = self.cache.key(&[token.as_bytes()]);
        if let Some(user) = self.cache.get(&key) {
            return AuthDecision::Allow { user };
        }
        let verdict = match self.method {
            BearerTokenMethod::User => self.ask_user(token).await,
            BearerTokenMethod::TokenReview => self.ask_tokenreview(token).await,
        };
        match verdict {
            Verdict::Allowed(user) => {
                self.cache.insert(key, user.clone());
                AuthDecision::Allow { user }
            }
            Verdict::Denied => {
                tracing::debug!(
                    plugin = self.name,
                    "bearer token rejected by the API server"
                );
                AuthDecision::Abstain
            }
            Verdict::Unavailable => AuthDecision::Abstain,
        }
    }
}
