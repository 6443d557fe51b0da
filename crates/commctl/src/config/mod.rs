//! The client configuration: `~/.commissaire.json` (or `--config` /
//! `COMMCTL_CONFIG`), command-line overrides, and prompts for what is
//! missing.
//!
//! ```json
//! {
//!   "endpoint": ["http://127.0.0.1:8000", "http://192.168.122.100:8000"],
//!   "username": "a",
//!   "password": "a",
//!   "kubeconfig": "~/.kube/config",
//!   "certificate_authority": "/etc/pki/commissaire/ca.pem"
//! }
//! ```
//!
//! Named contexts (like kubectl's) keep several servers in one file; the
//! `current-context` one is used unless `--context NAME` or `COMMCTL_CONTEXT`
//! picks another:
//!
//! ```json
//! {
//!   "current-context": "lab",
//!   "contexts": {
//!     "lab":  {"endpoint": "http://127.0.0.1:8000", "username": "a", "password": "a"},
//!     "prod": {"endpoint": ["https://c1:8000", "https://c2:8000"], "kubeconfig": "~/.kube/config"}
//!   }
//! }
//! ```
//!
//! Precedence, member by member: a flag, then its environment variable
//! (`COMMCTL_ENDPOINT`, `COMMCTL_USERNAME`, `COMMCTL_PASSWORD`), then the
//! context, then the file's top-level keys. Credentials go together: a
//! context naming any of `username`, `password` or `kubeconfig` uses only
//! its own. A file without contexts works as before.
//!
//! `endpoint` is a URL or a list tried in order (on a connection error the
//! next one is tried). With `kubeconfig` the current context's user
//! credentials (a token, a client certificate, or a user name and password)
//! are used instead of `username`/`password`, unless `--username` or
//! `--password` is given. `certificate_authority` (optional) adds CA
//! certificates (PEM) to trust for `https` endpoints.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{CliError, CliResult};
use crate::kubeconfig::{self, KubeCredentials};

mod context_file;

pub use context_file::{ContextRow, contexts, use_context};

/// The default configuration file name, in the home directory.
pub const DEFAULT_FILE_NAME: &str = ".commissaire.json";

/// One endpoint or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Endpoints {
    /// A single URL.
    One(String),
    /// URLs tried in order.
    Many(Vec<String>),
}

impl Endpoints {
    /// The URLs, in order.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Endpoints::One(e) => vec![e],
            Endpoints::Many(v) => v,
        }
    }
}

/// The configuration file's members (an unknown member is an error naming
/// it, with a guess for a near miss).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Server URL(s).
    pub endpoint: Option<Endpoints>,
    /// HTTP Basic user name.
    pub username: Option<String>,
    /// HTTP Basic password.
    pub password: Option<String>,
    /// A kubeconfig whose current user's credentials are used.
    pub kubeconfig: Option<PathBuf>,
    /// Extra CA certificates (PEM) for `https` endpoints.
    #[serde(alias = "certificate-authority", alias = "ca_file")]
    pub certificate_authority: Option<PathBuf>,
    /// The context used when neither `--context` nor `COMMCTL_CONTEXT` names one.
    #[serde(rename = "current-context", alias = "current_context")]
    pub current_context: Option<String>,
    /// Named contexts.
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// One named context of the configuration file: the same members as the
/// file's top level (each optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// Server URL(s).
    pub endpoint: Option<Endpoints>,
    /// HTTP Basic user name.
    pub username: Option<String>,
    /// HTTP Basic password.
    pub password: Option<String>,
    /// A kubeconfig whose current user's credentials are used.
    pub kubeconfig: Option<PathBuf>,
    /// Extra CA certificates (PEM) for `https` endpoints.
    #[serde(alias = "certificate-authority", alias = "ca_file")]
    pub certificate_authority: Option<PathBuf>,
}

impl Context {
    pub(crate) fn has_credentials(&self) -> bool {
        self.username.is_some() || self.password.is_some() || self.kubeconfig.is_some()
    }
}

impl ConfigFile {
    /// The file with the context `name` (or, with `None`, its
    /// `current-context`, if any) laid over its top-level keys; the name of
    /// the context used. An unknown name is an error listing the known ones.
    pub fn with_context(
        &self,
        name: Option<&str>,
        path: &Path,
    ) -> CliResult<(ConfigFile, Option<String>)> {
        let Some(name) = name.or(self.current_context.as_deref()) else {
            return Ok((self.clone(), None));
        };
        let Some(context) = self.contexts.get(name) else {
            return Err(unknown_context(name, self, path));
        };
        let mut merged = self.clone();
        if context.endpoint.is_some() {
            merged.endpoint = context.endpoint.clone();
        }
        if context.certificate_authority.is_some() {
            merged.certificate_authority = context.certificate_authority.clone();
        }
        if context.has_credentials() {
            merged.username = context.username.clone();
            merged.password = context.password.clone();
            merged.kubeconfig = context.kubeconfig.clone();
        }
        Ok((merged, Some(name.to_string())))
    }
}

/// "no context 'x' in FILE (its contexts: a, b)".
pub(crate) fn unknown_context(name: &str, file: &ConfigFile, path: &Path) -> CliError {
    let known = if file.contexts.is_empty() {
        "it has no contexts".to_string()
    } else {
        format!(
            "its contexts: {}",
            file.contexts.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    };
    CliError::Config(format!(
        "there is no context '{name}' in {} ({known})",
        path.display()
    ))
}

/// How requests authenticate.
#[derive(Clone)]
pub enum Credentials {
    /// HTTP Basic.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer TOKEN`.
    Bearer(String),
    /// A TLS client certificate and key (PEM, concatenated).
    ClientCert(Vec<u8>),
    /// None (only for what needs none: `commctl version`).
    Anonymous,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never show secrets.
        match self {
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<hidden>")
                .finish(),
            Credentials::Bearer(_) => f.write_str("Bearer(<hidden>)"),
            Credentials::ClientCert(_) => f.write_str("ClientCert(<hidden>)"),
            Credentials::Anonymous => f.write_str("Anonymous"),
        }
    }
}

/// Everything needed to talk to the server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Endpoint URLs, in order.
    pub endpoints: Vec<String>,
    /// Credentials.
    pub credentials: Credentials,
    /// Extra CA certificates (PEM) to trust.
    pub ca_pem: Option<Vec<u8>>,
}

/// Command-line overrides of the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config`
    pub config: Option<PathBuf>,
    /// `--context` / `COMMCTL_CONTEXT`
    pub context: Option<String>,
    /// Never prompt (for shell completion), even on a terminal.
    pub no_prompt: bool,
    /// Without configured credentials, go on without any (instead of
    /// prompting or failing): for requests that need none.
    pub credentials_optional: bool,
    /// `--endpoint` (repeatable)
    pub endpoints: Vec<String>,
    /// `--username`
    pub username: Option<String>,
    /// `--password`
    pub password: Option<String>,
}

/// The default configuration file path (`~/.commissaire.json`).
pub fn default_path() -> Option<PathBuf> {
    dirs::home_dir().map(|h| h.join(DEFAULT_FILE_NAME))
}

/// Expands a leading `~/` to the home directory.
pub fn expand_home(path: &Path) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~")
        && let Some(home) = dirs::home_dir()
    {
        return home.join(rest);
    }
    path.to_path_buf()
}

/// Reads a configuration file. A missing file is an error only when `required`.
pub fn read_file(path: &Path, required: bool) -> CliResult<ConfigFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ConfigFile::default());
        }
        Err(e) => {
            return Err(CliError::Config(format!(
                "cannot read the configuration file {}: {e}",
                path.display()
            )));
        }
    };
    serde_json::from_str(&text).map_err(|e| {
        let e = e.to_string();
        let hint = match guess_member(&e) {
            Some(meant) => format!("did you mean '{meant}'?"),
            None => "it must be a JSON object; use double quotes and no trailing commas".into(),
        };
        CliError::Config(format!(
            "the configuration file {} is not valid: {e} ({hint})",
            path.display()
        ))
    })
}

/// For serde's "unknown field `X`, expected one of `a`, `b`", the known
/// member nearest `X` if it is near enough to be a typo.
fn guess_member(error: &str) -> Option<String> {
    let rest = error.split("unknown field `").nth(1)?;
    let (unknown, rest) = rest.split_once('`')?;
    let plain = |s: &str| s.replace('-', "_").to_ascii_lowercase();
    rest.split('`')
        .skip(1)
        .step_by(2)
        .map(|k| (strsim::jaro_winkler(&plain(unknown), &plain(k)), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.to_string())
}

/// Reads one line from stdin after printing `prompt` on stderr (terminal only).
fn prompt_line(prompt: &str) -> CliResult<String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::io("reading from the terminal", e))?;
    Ok(line.trim().to_string())
}

/// Prompts for a password without echo.
pub fn prompt_password(prompt: &str) -> CliResult<String> {
    rpassword::prompt_password(prompt).map_err(|e| CliError::io("reading the password", e))
}

/// Resolves the settings: overrides, then the file, then prompts (only when
/// stdin is a terminal).
pub fn resolve(overrides: &Overrides) -> CliResult<Settings> {
    let (path, required) = config_path(overrides.config.as_deref());
    let file = read_file(&path, required)?;
    let (file, _) = file.with_context(overrides.context.as_deref(), &path)?;
    let interactive = !overrides.no_prompt && std::io::stdin().is_terminal();

    let mut endpoints = if overrides.endpoints.is_empty() {
        file.endpoint
            .clone()
            .map(Endpoints::into_vec)
            .unwrap_or_default()
    } else {
        overrides.endpoints.clone()
    };
    endpoints.retain(|e| !e.trim().is_empty());
    if endpoints.is_empty() {
        if !interactive {
            return Err(CliError::Config(format!(
                "no endpoint is configured: set \"endpoint\" in {} or pass --endpoint URL",
                path.display()
            )));
        }
        let e = prompt_line("Endpoint: ")?;
        if e.is_empty() {
            return Err(CliError::Config("no endpoint was given".into()));
        }
        endpoints.push(e);
    }

    let ca_pem = match &file.certificate_authority {
        Some(ca) => {
            let ca = relative_to(&path, &expand_home(ca));
            Some(std::fs::read(&ca).map_err(|e| {
                CliError::Config(format!(
                    "cannot read the certificate authority file {}: {e}",
                    ca.display()
                ))
            })?)
        }
        None => None,
    };

    let use_kubeconfig = overrides.username.is_none() && overrides.password.is_none();
    if let (true, Some(kc)) = (use_kubeconfig, &file.kubeconfig) {
        let kc = relative_to(&path, &expand_home(kc));
        let credentials = match kubeconfig::load_credentials(&kc)? {
            KubeCredentials::Token(t) => Credentials::Bearer(t),
            KubeCredentials::Basic { username, password } => {
                Credentials::Basic { username, password }
            }
            KubeCredentials::ClientCert(pem) => Credentials::ClientCert(pem),
        };
        return Ok(Settings {
            endpoints,
            credentials,
            ca_pem,
        });
    }

    if overrides.credentials_optional && overrides.username.is_none() && file.username.is_none() {
        return Ok(Settings {
            endpoints,
            credentials: Credentials::Anonymous,
            ca_pem,
        });
    }
    let username = match overrides.username.clone().or(file.username.clone()) {
        Some(u) => u,
        None if interactive => prompt_line("Username: ")?,
        None => {
            return Err(CliError::Config(format!(
                "no user name is configured: set \"username\" in {} or pass --username",
                path.display()
            )));
        }
    };
    let password = match overrides.password.clone().or(file.password.clone()) {
        Some(p) => p,
        None if overrides.credentials_optional => {
            return Ok(Settings {
                endpoints,
                credentials: Credentials::Anonymous,
                ca_pem,
            });
        }
        None if interactive => prompt_password("Password: ")?,
        None => {
            return Err(CliError::Config(format!(
                "no password is configured and stdin is not a terminal to prompt for one: set \"password\" in {}, COMMCTL_PASSWORD, or pass --password",
                path.display()
            )));
        }
    };
    Ok(Settings {
        endpoints,
        credentials: Credentials::Basic { username, password },
        ca_pem,
    })
}

/// The configuration file to read, and whether it must exist (it must when
/// named by `--config` / `COMMCTL_CONFIG`).
pub fn config_path(config: Option<&Path>) -> (PathBuf, bool) {
    match config {
        Some(p) => (expand_home(p), true),
        None => match default_path() {
            Some(p) => (p, false),
            None => (PathBuf::from(DEFAULT_FILE_NAME), false),
        },
    }
}

/// A path from a file is relative to the file's directory.
fn relative_to(config: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match config.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_unknown_member_is_an_error_with_a_guess() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, r#"{"endpoint": "http://x", "usernme": "a"}"#).unwrap();
        let e = read_file(&path, true).unwrap_err().to_string();
        assert!(e.contains("unknown field `usernme`"), "{e}");
        assert!(e.contains("did you mean 'username'?"), "{e}");
    }

    use super::*;

    #[test]
    fn endpoint_string_or_list() {
        let c: ConfigFile = serde_json::from_str(r#"{"endpoint": "http://a"}"#).unwrap();
        assert_eq!(c.endpoint.unwrap().into_vec(), ["http://a"]);
        let c: ConfigFile =
            serde_json::from_str(r#"{"endpoint": ["http://a", "http://b"]}"#).unwrap();
        assert_eq!(c.endpoint.unwrap().into_vec(), ["http://a", "http://b"]);
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credentials::Bearer("tok".into())).contains("tok"));
    }

    #[test]
    fn a_context_lays_its_members_over_the_top_level_keys() {
        let file: ConfigFile = serde_json::from_value(serde_json::json!({
            "endpoint": "http://flat", "username": "flat", "password": "flatpw",
            "certificate_authority": "/flat-ca.pem",
            "current-context": "a",
            "contexts": {
                "a": {"endpoint": ["http://a1", "http://a2"]},
                "b": {"username": "bee"},
            }
        }))
        .unwrap();
        let path = Path::new("/c.json");
        // No credentials in "a": the flat ones; its endpoints.
        let (a, name) = file.with_context(None, path).unwrap();
        assert_eq!(name.as_deref(), Some("a"));
        assert_eq!(a.endpoint.unwrap().into_vec(), ["http://a1", "http://a2"]);
        assert_eq!(a.username.as_deref(), Some("flat"));
        assert_eq!(a.password.as_deref(), Some("flatpw"));
        // Credentials go together: "b" names a user, so no flat password.
        let (b, _) = file.with_context(Some("b"), path).unwrap();
        assert_eq!(b.endpoint.unwrap().into_vec(), ["http://flat"]);
        assert_eq!(b.username.as_deref(), Some("bee"));
        assert_eq!(b.password, None);
        assert_eq!(b.certificate_authority, Some(PathBuf::from("/flat-ca.pem")));
        let e = file.with_context(Some("c"), path).unwrap_err().to_string();
        assert!(e.contains("no context 'c'") && e.contains("a, b"), "{e}");
    }

    #[test]
    fn a_flat_file_has_no_context() {
        let file: ConfigFile =
            serde_json::from_value(serde_json::json!({"endpoint": "http://x"})).unwrap();
        let (same, name) = file.with_context(None, Path::new("/c.json")).unwrap();
        assert_eq!(name, None);
        assert_eq!(same.endpoint.unwrap().into_vec(), ["http://x"]);
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_to(Path::new("/etc/c.json"), Path::new("kube")),
            PathBuf::from("/etc/kube")
        );
        assert_eq!(
            relative_to(Path::new("/etc/c.json"), Path::new("/k")),
            PathBuf::from("/k")
        );
    }
}
