//! Authentication of REST requests.
//!
//! The server is configured with a list of authentication plugins (the
//! `--authentication-plugin MODULE:key=value,...` flag or the config file's
//! `authentication-plugins` list). For every request the [`AuthManager`]
//! asks each plugin in turn; the first plugin that allows the request wins.
//! When every plugin abstains the server answers `403 Forbidden`. Paths listed
//! as "self-auths" bypass authentication (they authenticate themselves), and a
//! server configured without any plugin lets everything through, like the
//! original with no authenticator.
//!
//! Plugins (module names may be given short, `httpbasicauth`, or as the
//! original's full Python module path,
//! `commissaire_http.authentication.httpbasicauth`):
//!
//! | module | credentials | checked against |
//! |---|---|---|
//! | `httpbasicauth` | HTTP Basic | bcrypt hashes from a file, inline, or etcd ([`httpbasicauth`]) |
//! | `httpauthclientcert` | TLS client certificate | its common name ([`httpauthclientcert`]) |
//! | `openshiftbearertokenauth`, `kubernetesbearertokenauth` | `Authorization: Bearer` | an OpenShift / Kubernetes API server ([`openshiftbearertokenauth`]) |
//! | `keystonetokenauth` | `X-Auth-Token` | OpenStack Keystone ([`keystonetokenauth`]) |
//! | `keystonepasswordauth` | HTTP Basic | OpenStack Keystone ([`keystonepasswordauth`]) |

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

mod cache;
pub mod httpauthclientcert;
pub mod httpbasicauth;
pub mod keystonepasswordauth;
pub mod keystonetokenauth;
pub mod openshiftbearertokenauth;
mod options;
mod remote;
pub mod roles;
pub mod throttle;

pub use httpauthclientcert::ClientCertAuth;
pub use httpbasicauth::HttpBasicAuth;
pub use keystonepasswordauth::KeystonePasswordAuth;
pub use keystonetokenauth::KeystoneTokenAuth;
pub use openshiftbearertokenauth::{BearerTokenAuth, BearerTokenMethod};

/// The prefix of the original's (Python) plugin module names.
pub const MODULE_PREFIX: &str = "commissaire_http.authentication.";

/// The user name reported for requests to a self-authenticating path.
pub const SELF_AUTH_USER: &str = "self-auth";

/// The user name reported when no plugin is configured.
pub const ANONYMOUS_USER: &str = "anonymous";

/// Option names whose values are never shown in `Debug` output or errors.
const SECRET_OPTIONS: &[&str] = &["token", "password", "etcd_password", "users"];

/// What a plugin sees of a request.
pub struct RequestCredentials<'a> {
    /// The request headers.
    pub headers: &'a http::HeaderMap,
    /// Who is on the other end of the connection.
    pub peer: &'a crate::peer::PeerInfo,
    /// The request path (without the query string).
    pub path: &'a str,
}

impl fmt::Debug for RequestCredentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers carry passwords and tokens: only their names are shown.
        f.debug_struct("RequestCredentials")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("peer", self.peer)
            .field("path", &self.path)
            .finish()
    }
}

/// A plugin's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// The request is authenticated as `user`.
    Allow {
        /// Who the caller is.
        user: String,
    },
    /// This plugin does not vouch for the request (no, bad or unverifiable
    /// credentials); the next plugin is asked.
    Abstain,
}

/// An authentication plugin.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync {
    /// The plugin's (short) module name, e.g. `httpbasicauth`.
    fn name(&self) -> &'static str;

    /// The role this plugin gives `user` (one it allowed), if it knows
    /// one ([`roles`]); `None` leaves it to the server's `roles`.
    fn role_of(&self, _user: &str) -> Option<roles::Role> {
        None
    }

    /// What the plugin holds, for the log line of a reload (never a
    /// secret): its name unless it says more (`httpbasicauth: 3 users`).
    fn summary(&self) -> String {
        self.name().to_string()
    }

    /// Looks at the request's credentials. Never fails: missing, malformed
    /// or unverifiable credentials give [`AuthDecision::Abstain`].
    async fn authenticate(&self, req: &RequestCredentials<'_>) -> AuthDecision;
}

/// A configured plugin: module name + options.
#[derive(Clone, PartialEq)]
pub struct PluginSpec {
    /// The module name as configured (short or full).
    pub name: String,
    /// The plugin's options (keyword arguments of the original).
    pub options: Map<String, Value>,
}

impl fmt::Debug for PluginSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(&'a Map<String, Value>);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut map = f.debug_map();
                for (key, value) in self.0 {
                    if is_secret_option(key) {
                        map.entry(key, &"<redacted>");
                    } else {
                        map.entry(key, value);
                    }
                }
                map.finish()
            }
        }
        f.debug_struct("PluginSpec")
            .field("name", &self.name)
            .field("options", &Redacted(&self.options))
            .finish()
    }
}

/// Whether an option's value must never be shown.
fn is_secret_option(key: &str) -> bool {
    let key = key.replace('-', "_").to_ascii_lowercase();
    SECRET_OPTIONS.contains(&key.as_str())
}

impl PluginSpec {
    /// `MODULE:key=value,key=value` (the --authentication-plugin flag). Values stay strings.
    ///
    /// A comma-separated piece without `=` continues the previous value, so
    /// `httpbasicauth:etcd=http://a:2379,http://b:2379,etcd_key=/users`
    /// gives `etcd` = `http://a:2379,http://b:2379`.
    pub fn parse_cli(s: &str) -> Result<Self, AuthConfigError> {
        let (module, rest) = match s.split_once(':') {
            Some((module, rest)) => (module.trim(), Some(rest)),
            None => (s.trim(), None),
        };
        if module.is_empty() {
            return Err(AuthConfigError::Syntax {
                reason: "the module name before `:` is empty".into(),
            });
        }
        let mut options = Map::new();
        let mut last_key: Option<String> = None;
        for piece in rest.unwrap_or("").split(',') {
            match piece.split_once('=') {
                Some((key, value)) => {
                    let key = key.trim();
                    if key.is_empty() {
                        return Err(AuthConfigError::Syntax {
                            reason: format!("an option of plugin {module} has an empty name"),
                        });
                    }
                    if options.contains_key(key) {
                        return Err(AuthConfigError::Syntax {
                            reason: format!("option {key} of plugin {module} is given twice"),
                        });
                    }
                    options.insert(key.to_string(), Value::String(value.to_string()));
                    last_key = Some(key.to_string());
                }
                None if piece.trim().is_empty() => {}
                None => {
                    let continued = last_key
                        .as_ref()
                        .and_then(|key| options.get_mut(key))
                        .and_then(|value| match value {
                            Value::String(text) => Some(text),
                            _ => None,
                        });
                    match continued {
                        Some(text) => {
                            text.push(',');
                            text.push_str(piece);
                        }
                        None => {
                            return Err(AuthConfigError::Syntax {
                                reason: format!(
                                    "options of plugin {module} must be key=value pairs separated by commas"
                                ),
                            });
                        }
                    }
                }
            }
        }
        Ok(PluginSpec {
            name: module.to_string(),
            options,
        })
    }

    /// `{"name": MODULE, ...options}` (an entry of the config file's `authentication-plugins` list).
    pub fn from_config(v: &Value) -> Result<Self, AuthConfigError> {
        let Value::Object(object) = v else {
            return Err(AuthConfigError::NotAnObject);
        };
        let name = match object.get("name") {
            Some(Value::String(name)) if !name.trim().is_empty() => name.trim().to_string(),
            _ => return Err(AuthConfigError::MissingName),
        };
        let options = object
            .iter()
            .filter(|(key, _)| key.as_str() != "name")
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        Ok(PluginSpec { name, options })
    }

    /// The canonical short module name, or `None` for an unknown module.
    pub fn module(&self) -> Option<&'static str> {
        canonical_module(&self.name)
    }
}

/// Maps a configured module name (short or full) to its short name.
fn canonical_module(name: &str) -> Option<&'static str> {
    let name = name.trim();
    let short = name.strip_prefix(MODULE_PREFIX).unwrap_or(name);
    Some(match short {
        httpbasicauth::NAME => httpbasicauth::NAME,
        httpauthclientcert::NAME => httpauthclientcert::NAME,
        openshiftbearertokenauth::NAME => openshiftbearertokenauth::NAME,
        openshiftbearertokenauth::KUBERNETES_NAME => openshiftbearertokenauth::KUBERNETES_NAME,
        keystonetokenauth::NAME => keystonetokenauth::NAME,
        keystonepasswordauth::NAME => keystonepasswordauth::NAME,
        _ => return None,
    })
}

/// Why the authentication configuration is unusable. Messages name the
/// plugin and option but never show secret values.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// An `--authentication-plugin` value is malformed.
    #[error("invalid --authentication-plugin value: {reason}")]
    Syntax {
        /// What is wrong.
        reason: String,
    },
    /// An `authentication-plugins` entry is not a JSON object.
    #[error("each authentication-plugins entry must be a JSON object with a \"name\"")]
    NotAnObject,
    /// An `authentication-plugins` entry has no (string) `name`.
    #[error("an authentication-plugins entry has no \"name\" (the plugin module)")]
    MissingName,
    /// No such plugin module.
    #[error(
        "unknown authentication plugin {name:?} (known: httpbasicauth, httpauthclientcert, \
         openshiftbearertokenauth, kubernetesbearertokenauth, keystonetokenauth, \
         keystonepasswordauth, optionally prefixed by {MODULE_PREFIX})"
    )]
    UnknownPlugin {
        /// The configured module name.
        name: String,
    },
    /// The plugin does not take this option.
    #[error("authentication plugin {plugin} has no option {option:?}")]
    UnknownOption {
        /// The plugin.
        plugin: &'static str,
        /// The option.
        option: String,
    },
    /// A required option is missing.
    #[error("authentication plugin {plugin} needs the option {option}")]
    MissingOption {
        /// The plugin.
        plugin: &'static str,
        /// The option.
        option: &'static str,
    },
    /// An option has an unusable value.
    #[error("authentication plugin {plugin}, option {option}: {reason}")]
    InvalidOption {
        /// The plugin.
        plugin: &'static str,
        /// The option.
        option: &'static str,
        /// What is wrong (never the value of a secret option).
        reason: String,
    },
    /// A file named by an option cannot be read.
    #[error("authentication plugin {plugin}, option {option}: cannot read {path}: {source}")]
    File {
        /// The plugin.
        plugin: &'static str,
        /// The option.
        option: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A user list (file, inline or etcd) is malformed.
    #[error("authentication plugin {plugin}: user list from {origin} is invalid: {reason}")]
    Users {
        /// The plugin.
        plugin: &'static str,
        /// Where the list came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client for a remote identity service could not be built.
    #[error("authentication plugin {plugin}: cannot set up the HTTP client: {reason}")]
    HttpClient {
        /// The plugin.
        plugin: &'static str,
        /// Why.
        reason: String,
    },
}

/// The configured authentication plugins plus the self-authenticating paths.
pub struct AuthManager {
    authenticators: Vec<Arc<dyn Authenticator>>,
    self_auths: BTreeSet<String>,
    roles: roles::RoleSettings,
}

/// Who a request is from and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name the plugin gave.
    pub user: String,
    /// The user's role.
    pub role: roles::Role,
}

impl AuthManager {
    /// Each plugin's [`Authenticator::summary`], in order.
    pub fn summary(&self) -> Vec<String> {
        self.authenticators.iter().map(|a| a.summary()).collect()
    }
}

impl fmt::Debug for AuthManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthManager")
            .field(
                "authenticators",
                &self
                    .authenticators
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>(),
            )
            .field("self_auths", &self.self_auths)
            .finish()
    }
}

impl AuthManager {
    /// Builds every plugin; unknown module names and bad options are errors.
    pub async fn new(
        specs: &[PluginSpec],
        self_auths: Vec<String>,
    ) -> Result<Self, AuthConfigError> {
        let mut authenticators: Vec<Arc<dyn Authenticator>> = Vec::with_capacity(specs.len());
        for spec in specs {
            authenticators.push(build_plugin(spec).await?);
        }
        Ok(Self::with_authenticators(authenticators, self_auths))
    }

    /// A manager over already-built plugins (asked in the given order).
    pub fn with_authenticators(
        authenticators: Vec<Arc<dyn Authenticator>>,
        self_auths: Vec<String>,
    ) -> Self {
        AuthManager {
            authenticators,
            self_auths: self_auths.into_iter().collect(),
            roles: roles::RoleSettings::default(),
        }
    }

    /// The same manager giving roles as `roles` says.
    pub fn with_roles(mut self, roles: roles::RoleSettings) -> Self {
        self.roles = roles;
        self
    }

    /// No plugins => everything allowed (like the original with no authenticator).
    pub fn is_open(&self) -> bool {
        self.authenticators.is_empty()
    }

    /// The short module names of the configured plugins, in order.
    pub fn plugin_names(&self) -> Vec<&'static str> {
        self.authenticators.iter().map(|a| a.name()).collect()
    }

    /// Some(user) if allowed (first plugin that allows wins; `self_auths` paths — exact path
    /// match — are allowed as user "self-auth"; no plugins => Some("anonymous")), None => the
    /// server answers 403.
    pub async fn check(&self, req: &RequestCredentials<'_>) -> Option<String> {
        self.identify(req).await.map(|i| i.user)
    }

    /// [`AuthManager::check`] with the user's role ([`roles`]). The
    /// self-authenticating paths' user and, with no plugin, the anonymous
    /// user are admins (they do what the original let them).
    pub async fn identify(&self, req: &RequestCredentials<'_>) -> Option<Identity> {
        if self.self_auths.contains(req.path) {
            return Some(Identity {
                user: SELF_AUTH_USER.to_string(),
                role: roles::Role::Admin,
            });
        }
        if self.is_open() {
            return Some(Identity {
                user: ANONYMOUS_USER.to_string(),
                role: roles::Role::Admin,
            });
        }
        for authenticator in &self.authenticators {
            if let AuthDecision::Allow { user } = authenticator.authenticate(req).await {
                let role = self.roles.role_of(&user, authenticator.role_of(&user));
                tracing::debug!(plugin = authenticator.name(), %user, %role, path = req.path, "request authenticated");
                return Some(Identity { user, role });
            }
        }
        tracing::debug!(peer = %req.peer.addr, path = req.path, "no authentication plugin allowed the request");
        None
    }
}

/// Builds the plugin a spec names.
async fn build_plugin(spec: &PluginSpec) -> Result<Arc<dyn Authenticator>, AuthConfigError> {
    let Some(module) = spec.module() else {
        return Err(AuthConfigError::UnknownPlugin {
            name: spec.name.clone(),
        });
    };
    let plugin: Arc<dyn Authenticator> = match module {
        httpbasicauth::NAME => Arc::new(HttpBasicAuth::from_options(&spec.options).await?),
        httpauthclientcert::NAME => Arc::new(ClientCertAuth::from_options(&spec.options)?),
        openshiftbearertokenauth::NAME | openshiftbearertokenauth::KUBERNETES_NAME => {
            Arc::new(BearerTokenAuth::from_options(module, &spec.options)?)
        }
        keystonetokenauth::NAME => Arc::new(KeystoneTokenAuth::from_options(&spec.options)?),
        keystonepasswordauth::NAME => Arc::new(KeystonePasswordAuth::from_options(&spec.options)?),
        _ => {
            return Err(AuthConfigError::UnknownPlugin {
                name: spec.name.clone(),
            });
        }
    };
    tracing::info!(plugin = module, "authentication plugin configured");
    Ok(plugin)
}

/// The user and password of an `Authorization: Basic ...` header, if there
/// is a well-formed one.
pub(crate) fn basic_credentials(headers: &http::HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let value = headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = LENIENT.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some((user.to_string(), password.to_string()))
}

/// The token of an `Authorization: Bearer ...` header, if there is a
/// well-formed one.
pub(crate) fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return None;
    }
    Some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &[u8]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_bytes(value).unwrap(),
        );
        headers
    }

    #[test]
    fn basic_header_parsing() {
        // "a:b:c" -> user a, password b:c
        assert_eq!(
            basic_credentials(&headers(b"Basic YTpiOmM=")),
            Some(("a".into(), "b:c".into()))
        );
        assert_eq!(
            basic_credentials(&headers(b"basic YTpiOmM")),
            Some(("a".into(), "b:c".into()))
        );
        assert_eq!(basic_credentials(&headers(b"Basic")), None);
        assert_eq!(basic_credentials(&headers(b"Basic !!!")), None);
        assert_eq!(basic_credentials(&headers(b"Basic YWJj")), None); // "abc", no colon
        assert_eq!(basic_credentials(&headers(b"Basic OmI=")), None); // ":b", empty user
        assert_eq!(basic_credentials(&headers(b"Bearer YTpi")), None);
        assert_eq!(basic_credentials(&headers(b"Basic \xff\xfe")), None);
        assert_eq!(basic_credentials(&http::HeaderMap::new()), None);
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token(&headers(b"Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers(b"bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(&headers(b"Bearer")), None);
        assert_eq!(bearer_token(&headers(b"Bearer a b")), None);
        assert_eq!(bearer_token(&headers(b"Basic abc")), None);
    }

    #[test]
    fn debug_hides_secret_options() {
        let spec =
            PluginSpec::parse_cli("openshiftbearertokenauth:url=https://x,token=s3cret").unwrap();
        let shown = format!("{spec:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("https://x"), "{shown}");
    }
}
