//! The HTTP client the plugins that ask a remote identity service share:
//! the `url`, `insecure`, `ca` and `cache_ttl` options.

use std::time::Duration;

use super::AuthConfigError;
use super::cache::{DEFAULT_CAPACITY, SuccessCache};
use super::options::Options;

/// How long a remote identity service may take to answer.
pub(crate) const REMOTE_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest `cache_ttl` accepted (one day).
const MAX_CACHE_TTL: u64 = 24 * 60 * 60;

/// A remote identity service.
pub(crate) struct RemoteApi {
    /// The base URL, without a trailing slash.
    pub(crate) base: String,
    /// The client (timeouts, TLS settings, no redirects).
    pub(crate) client: reqwest::Client,
}

impl std::fmt::Debug for RemoteApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl RemoteApi {
    /// Reads `url` (required), `insecure` and `ca`. `strip_suffixes` are
    /// path endings removed from `url` (so a URL that already names the API
    /// path, as the original accepted, still works).
    pub(crate) fn from_options(
        opts: &mut Options,
        strip_suffixes: &[&str],
    ) -> Result<Self, AuthConfigError> {
        let plugin = opts.plugin();
        let url = opts.required_string("url")?;
        let parsed = reqwest::Url::parse(url.trim())
            .map_err(|e| opts.invalid("url", format!("not a valid URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(opts.invalid("url", "must be an http:// or https:// URL"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(opts.invalid("url", "must not have a query or fragment"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(opts.invalid("url", "must not contain credentials"));
        }
        let mut base = parsed.as_str().trim_end_matches('/').to_string();
        for suffix in strip_suffixes {
            if let Some(stripped) = base.strip_suffix(suffix) {
                base = stripped.trim_end_matches('/').to_string();
                break;
            }
        }

        let insecure = opts.bool("insecure")?.unwrap_or(false);
        let ca = opts.string("ca")?;
        let mut builder = reqwest::Client::builder()
            .timeout(REMOTE_TIMEOUT)
            .connect_timeout(REMOTE_TIMEOUT)
            // Never follow a redirect with the caller's credentials.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("commissaire-server/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca {
            let pem = std::fs::read(&path).map_err(|source| AuthConfigError::File {
                plugin,
                option: "ca",
                path: path.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                opts.invalid("ca", format!("{path} is not a PEM certificate bundle: {e}"))
            })?;
            if certs.is_empty() {
                return Err(opts.invalid("ca", format!("{path} holds no certificate")));
            }
            builder = builder.tls_certs_merge(certs);
        }
        if insecure {
            tracing::warn!(
                plugin,
                url = %base,
                "TLS certificate verification is DISABLED for this authentication plugin (insecure=true)"
            );
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let client = builder.build().map_err(|e| AuthConfigError::HttpClient {
            plugin,
            reason: e.to_string(),
        })?;
        Ok(RemoteApi { base, client })
    }

    /// `base` + `path` (`path` starts with `/`).
    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// Reads `cache_ttl` (seconds; 0 disables the cache) and makes the cache.
pub(crate) fn cache_from_options(
    opts: &mut Options,
    default_ttl_secs: u64,
) -> Result<SuccessCache, AuthConfigError> {
    let ttl = opts.u64("cache_ttl")?.unwrap_or(default_ttl_secs);
    if ttl > MAX_CACHE_TTL {
        return Err(opts.invalid("cache_ttl", format!("at most {MAX_CACHE_TTL} seconds")));
    }
    Ok(SuccessCache::new(
        Duration::from_secs(ttl),
        DEFAULT_CAPACITY,
    ))
}

/// Describes a failed request without its URL's secrets (there are none in
/// our URLs) or any header: reqwest errors never include request headers.
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_decode() {
        "unreadable answer"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
