//! The REST client: JSON requests to `/api/v0`, endpoint fallback on
//! connection errors, authentication, and error statuses turned into
//! [`CliError`]s; `-v` traces (never a credential or a body) and `--timeout`.

use std::cell::Cell;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::blocking::{Client as HttpClient, RequestBuilder};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;

use crate::config::{Credentials, Settings};
use crate::error::{CliError, CliResult, Unreachable};

/// How long to wait for a connection to an endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for a whole request (unless `--timeout` says).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How the client behaves (from `-v`, `-q` and `--timeout`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientOptions {
    /// Trace each request on stderr (`-v`).
    pub verbose: bool,
    /// No warnings (`-q`): e.g. none when falling back to the next endpoint.
    pub quiet: bool,
    /// The whole-request timeout; [`REQUEST_TIMEOUT`] when `None`.
    pub timeout: Option<Duration>,
}

/// A client for the Commissaire REST API.
pub struct Client {
    http: HttpClient,
    endpoints: Vec<reqwest::Url>,
    /// The endpoint that answered last; later requests start there.
    current: Cell<usize>,
    credentials: Credentials,
    options: ClientOptions,
}

/// One `-v` line on stderr.
fn trace(line: &str) {
    eprintln!("* {line}");
}

/// An endpoint URL for messages: no user info.
pub fn display_url(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.as_str().trim_end_matches('/').to_string()
}

/// The API path for messages, e.g. `/api/v0/cluster/x`.
pub fn display_path(segments: &[&str]) -> String {
    format!("/{}", segments.join("/"))
}

/// Why a connection failed, in a few words (e.g. `connection refused`).
fn connect_reason(error: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut deepest = error.to_string();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            let text = match io.kind() {
                ConnectionRefused => "connection refused".to_string(),
                ConnectionReset => "connection reset".to_string(),
                TimedOut => "connection timed out".to_string(),
                HostUnreachable => "host unreachable".to_string(),
                NetworkUnreachable => "network unreachable".to_string(),
                AddrNotAvailable => "address not available".to_string(),
                _ => io.to_string(),
            };
            return text;
        }
        deepest = s.to_string();
        source = s.source();
    }
    if error.is_timeout() {
        return "connection timed out".into();
    }
    deepest
}

impl Client {
    /// A client for the resolved settings, with the default options.
    pub fn new(settings: &Settings) -> CliResult<Client> {
        Self::with_options(settings, ClientOptions::default())
    }

    /// A client for the resolved settings.
    pub fn with_options(settings: &Settings, options: ClientOptions) -> CliResult<Client> {
        let mut endpoints = Vec::new();
        for e in &settings.endpoints {
            let mut text = e.trim().to_string();
            if !text.ends_with('/') {
                text.push('/');
            }
            let url = reqwest::Url::parse(&text).map_err(|err| {
                CliError::Config(format!("the endpoint '{}' is not a URL: {err}", e.trim()))
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(CliError::Config(format!(
                    "the endpoint '{}' must be an http or https URL",
                    display_url(&url)
                )));
            }
            endpoints.push(url);
        }
        if endpoints.is_empty() {
            return Err(CliError::Config("no endpoint is configured".into()));
        }
        let timeout = options.timeout.unwrap_or(REQUEST_TIMEOUT);
        let mut builder = HttpClient::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .user_agent(concat!("commctl/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &settings.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                CliError::Config(format!("the certificate authority file is not PEM: {e}"))
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        if let Credentials::ClientCert(pem) = &settings.credentials {
            let identity = reqwest::Identity::from_pem(pem).map_err(|e| {
                CliError::Config(format!(
                    "the kubeconfig's client certificate or key is not usable: {e}"
                ))
            })?;
            builder = builder.identity(identity);
        }
        let http = builder
            .build()
            .map_err(|e| CliError::Config(format!("cannot set up the HTTP client: {e}")))?;
        if options.verbose {
            let auth = match &settings.credentials {
                Credentials::Basic { username, .. } => {
                    format!("HTTP Basic as '{username}' (password not shown)")
                }
                Credentials::Bearer(_) => "a bearer token (not shown)".to_string(),
                Credentials::ClientCert(_) => "a TLS client certificate".to_string(),
                Credentials::Anonymous => "none".to_string(),
            };
            let list: Vec<String> = endpoints.iter().map(display_url).collect();
            trace(&format!(
                "endpoints {}; authentication: {auth}; timeout {} s",
                list.join(", "),
                timeout.as_secs_f64()
            ));
        }
        Ok(Client {
            http,
            endpoints,
            current: Cell::new(0),
            credentials: settings.credentials.clone(),
            options,
        })
    }

    /// The options the client was made with.
    pub fn options(&self) -> ClientOptions {
        self.options
    }

    /// The endpoint that answered last (or the first one), for messages.
    pub fn endpoint(&self) -> String {
        display_url(&self.endpoints[self.current.get()])
    }

    /// GET of a path outside the API (`/version`), from the endpoint that
    /// answered last; the status and body.
    pub fn get_plain(&self, path: &str) -> CliResult<(u16, String)> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.send(Method::GET, &segments, None)
    }

    fn url(base: &reqwest::Url, segments: &[&str]) -> reqwest::Url {
        let mut url = base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn url_query(base: &reqwest::Url, segments: &[&str], query: &[(&str, String)]) -> reqwest::Url {
        let mut url = Self::url(base, segments);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    fn authenticate(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.credentials {
            Credentials::Basic { username, password } => {
                request.basic_auth(username, Some(password))
            }
            Credentials::Bearer(token) => request.bearer_auth(token),
            Credentials::ClientCert(_) | Credentials::Anonymous => request,
        }
    }

    /// Sends a request to the first endpoint that accepts a connection and
    /// returns the status and body.
    pub fn send(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
    ) -> CliResult<(u16, String)> {
        self.send_query(method, segments, &[], body)
    }

    /// [`Client::send`] with a query string (`?user=alice&...`).
    pub fn send_query(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> CliResult<(u16, String)> {
        let n = self.endpoints.len();
        let start = self.current.get();
        let mut failures = Vec::new();
        for i in 0..n {
            let index = (start + i) % n;
            let base = &self.endpoints[index];
            let mut request = self
                .http
                .request(method.clone(), Self::url_query(base, segments, query))
                .header(ACCEPT, "application/json");
            if let Some(body) = body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.to_string());
            }
            let url = display_url(&Self::url_query(base, segments, query));
            let started = Instant::now();
            let result = self.authenticate(request).send();
            let ms = started.elapsed().as_millis();
            if self.options.verbose {
                match &result {
                    Ok(r) => trace(&format!("{method} {url} -> {} ({ms} ms)", r.status())),
                    Err(e) => trace(&format!(
                        "{method} {url} -> {} ({ms} ms)",
                        connect_reason(e)
                    )),
                }
            }
            match result {
                Ok(response) => {
                    self.current.set(index);
                    let status = response.status().as_u16();
                    let text = response.text().map_err(|e| {
                        CliError::Protocol(format!(
                            "reading the answer from {}: {e}",
                            display_url(base)
                        ))
                    })?;
                    return Ok((status, text));
                }
                Err(e) if e.is_connect() => {
                    let failure = Unreachable {
                        endpoint: display_url(base),
                        reason: connect_reason(&e),
                    };
                    if i + 1 < n && !self.options.quiet {
                        eprintln!(
                            "warning: cannot reach {} : {}; trying {}",
                            failure.endpoint,
                            failure.reason,
                            display_url(&self.endpoints[(index + 1) % n])
                        );
                    }
                    failures.push(failure);
                }
                Err(e) if e.is_timeout() => {
                    return Err(CliError::Timeout {
                        request: format!("{method} {}", display_path(segments)),
                        endpoint: display_url(base),
                        seconds: self
                            .options
                            .timeout
                            .unwrap_or(REQUEST_TIMEOUT)
                            .as_secs_f64(),
                    });
                }
                Err(e) => {
                    return Err(CliError::Protocol(format!(
                        "{method} {} on {} failed: {}",
                        display_path(segments),
                        display_url(base),
                        connect_reason(&e)
                    )));
                }
            }
        }
        Err(CliError::Unreachable(failures))
    }

    /// Sends a request and returns the JSON body of a 2xx answer (`null` when
    /// empty); other statuses become [`CliError::Api`].
    pub fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
    ) -> CliResult<Value> {
        self.call_query(method, segments, &[], body)
    }

    /// GET with a query string.
    pub fn get_query(&self, segments: &[&str], query: &[(&str, String)]) -> CliResult<Value> {
        self.call_query(Method::GET, segments, query, None)
    }

    /// [`Client::call`] with a query string.
    pub fn call_query(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> CliResult<Value> {
        let (status, text) = self.send_query(method.clone(), segments, query, body)?;
        let json: Option<Value> = serde_json::from_str(&text).ok();
        if (200..300).contains(&status) {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return json.ok_or_else(|| {
                CliError::Protocol(format!(
                    "the server's answer to {method} {} is not JSON",
                    display_path(segments)
                ))
            });
        }
        let server_message = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let field = json
            .as_ref()
            .and_then(|j| j.get("field"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let message = match status {
            401 | 403 => "the provided credentials were incorrect".to_string(),
            _ => server_message.unwrap_or_else(|| {
                let snippet: String = text.trim().chars().take(200).collect();
                if snippet.is_empty() {
                    format!("unable to {method} {}", display_path(segments))
                } else {
                    format!("unable to {method} {}: {snippet}", display_path(segments))
                }
            }),
        };
        Err(CliError::Api {
            status,
            message,
            field,
        })
    }

    /// GET.
    pub fn get(&self, segments: &[&str]) -> CliResult<Value> {
        self.call(Method::GET, segments, None)
    }

    /// PUT with a JSON body.
    pub fn put(&self, segments: &[&str], body: &Value) -> CliResult<Value> {
        self.call(Method::PUT, segments, Some(body))
    }

    /// DELETE.
    pub fn delete(&self, segments: &[&str]) -> CliResult<Value> {
        self.call(Method::DELETE, segments, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_base_paths_and_escape() {
        let base = reqwest::Url::parse("https://u:p@example.com/commissaire/").unwrap();
        let url = Client::url(&base, &["api", "v0", "host", "fe80::1"]);
        assert_eq!(url.path(), "/commissaire/api/v0/host/fe80::1");
        assert_eq!(display_url(&base), "https://example.com/commissaire");
        let base = reqwest::Url::parse("http://127.0.0.1:8000/").unwrap();
        assert_eq!(
            Client::url(&base, &["api", "v0", "clusters"]).as_str(),
            "http://127.0.0.1:8000/api/v0/clusters"
        );
    }
}
