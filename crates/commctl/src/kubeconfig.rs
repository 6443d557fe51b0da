//! Credentials from a kubeconfig file: the user of the current context.
//!
//! Supported user entries: `token` / `tokenFile` (sent as a Bearer token),
//! `client-certificate` + `client-key` (paths, relative to the kubeconfig's
//! directory) or their `-data` (base64) forms, and `username` + `password`
//! (HTTP Basic). `exec` and `auth-provider` plugins are not supported.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use crate::error::{CliError, CliResult};

/// What a kubeconfig user authenticates with.
#[derive(Clone, PartialEq, Eq)]
pub enum KubeCredentials {
    /// A bearer token.
    Token(String),
    /// User name and password.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// Client certificate and key, PEM, concatenated.
    ClientCert(Vec<u8>),
}

impl std::fmt::Debug for KubeCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KubeCredentials::Token(_) => f.write_str("Token(<hidden>)"),
            KubeCredentials::Basic { username, .. } => {
                write!(f, "Basic {{ username: {username:?}, password: <hidden> }}")
            }
            KubeCredentials::ClientCert(_) => f.write_str("ClientCert(<hidden>)"),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KubeConfig {
    #[serde(rename = "current-context")]
    current_context: Option<String>,
    contexts: Vec<NamedContext>,
    users: Vec<NamedUser>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NamedContext {
    name: String,
    context: ContextSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ContextSpec {
    user: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NamedUser {
    name: String,
    user: UserSpec,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct UserSpec {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<PathBuf>,
    username: Option<String>,
    password: Option<String>,
    #[serde(rename = "client-certificate")]
    client_certificate: Option<PathBuf>,
    #[serde(rename = "client-key")]
    client_key: Option<PathBuf>,
    #[serde(rename = "client-certificate-data")]
    client_certificate_data: Option<String>,
    #[serde(rename = "client-key-data")]
    client_key_data: Option<String>,
    exec: Option<serde_norway::Value>,
    #[serde(rename = "auth-provider")]
    auth_provider: Option<serde_norway::Value>,
}

impl std::fmt::Debug for UserSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserSpec(<hidden>)")
    }
}

fn bad(path: &Path, what: impl std::fmt::Display) -> CliError {
    CliError::Config(format!("kubeconfig {}: {what}", path.display()))
}

fn read_relative(kubeconfig: &Path, file: &Path, what: &str) -> CliResult<Vec<u8>> {
    let full = if file.is_absolute() {
        file.to_path_buf()
    } else {
        kubeconfig
            .parent()
            .map(|d| d.join(file))
            .unwrap_or_else(|| file.to_path_buf())
    };
    std::fs::read(&full).map_err(|e| {
        bad(
            kubeconfig,
            format!("cannot read {what} {}: {e}", full.display()),
        )
    })
}

fn decode_data(kubeconfig: &Path, data: &str, what: &str) -> CliResult<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| bad(kubeconfig, format!("{what} is not valid base64: {e}")))
}

/// Parses kubeconfig text (YAML or JSON) and returns the current user's credentials.
pub fn credentials_from_str(path: &Path, text: &str) -> CliResult<KubeCredentials> {
    let config: KubeConfig = serde_norway::from_str(text)
        .map_err(|e| bad(path, format!("not a valid kubeconfig: {e}")))?;
    let context_name = config
        .current_context
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad(path, "no current-context is set"))?;
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .ok_or_else(|| {
            bad(
                path,
                format!("the current context '{context_name}' is not defined"),
            )
        })?;
    let user_name = context
        .context
        .user
        .as_deref()
        .ok_or_else(|| bad(path, format!("context '{context_name}' names no user")))?;
    let user = &config
        .users
        .iter()
        .find(|u| u.name == user_name)
        .ok_or_else(|| bad(path, format!("user '{user_name}' is not defined")))?
        .user;

    if let Some(token) = user.token.as_deref().filter(|t| !t.trim().is_empty()) {
        return Ok(KubeCredentials::Token(token.trim().to_string()));
    }
    if let Some(file) = &user.token_file {
        let token = read_relative(path, file, "the token file")?;
        let token =
            String::from_utf8(token).map_err(|_| bad(path, "the token file is not UTF-8 text"))?;
        return Ok(KubeCredentials::Token(token.trim().to_string()));
    }
    let cert = match (&user.client_certificate_data, &user.client_certificate) {
        (Some(data), _) => Some(decode_data(path, data, "client-certificate-data")?),
        (None, Some(file)) => Some(read_relative(path, file, "the client certificate")?),
        (None, None) => None,
    };
    let key = match (&user.client_key_data, &user.client_key) {
        (Some(data), _) => Some(decode_data(path, data, "client-key-data")?),
        (None, Some(file)) => Some(read_relative(path, file, "the client key")?),
        (None, None) => None,
    };
    match (cert, key) {
        (Some(mut cert), Some(key)) => {
            if !cert.ends_with(b"\n") {
                cert.push(b'\n');
            }
            cert.extend_from_slice(&key);
            return Ok(KubeCredentials::ClientCert(cert));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(bad(
                path,
                format!("user '{user_name}' needs both a client certificate and a client key"),
            ));
        }
        (None, None) => {}
    }
    if let (Some(username), Some(password)) = (&user.username, &user.password) {
        return Ok(KubeCredentials::Basic {
            username: username.clone(),
            password: password.clone(),
        });
    }
    if user.exec.is_some() || user.auth_provider.is_some() {
        return Err(bad(
            path,
            format!(
                "user '{user_name}' uses an exec or auth-provider plugin, which commctl does not support"
            ),
        ));
    }
    Err(bad(
        path,
        format!("user '{user_name}' has no token, client certificate, or user name and password"),
    ))
}

/// Reads a kubeconfig file and returns the current user's credentials.
pub fn load_credentials(path: &Path) -> CliResult<KubeCredentials> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Config(format!(
            "cannot read the kubeconfig {}: {e}",
            path.display()
        ))
    })?;
    credentials_from_str(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = r#"
apiVersion: v1
kind: Config
current-context: dev
contexts:
- name: other
  context: {cluster: c, user: nobody}
- name: dev
  context:
    cluster: c
    user: dev-user
users:
- name: dev-user
  user:
    token: abc123
"#;

    #[test]
    fn token_user() {
        let c = credentials_from_str(Path::new("/k"), TOKEN).unwrap();
        assert_eq!(c, KubeCredentials::Token("abc123".into()));
        assert!(!format!("{c:?}").contains("abc123"));
    }

    #[test]
    fn password_user() {
        let text = TOKEN.replace("token: abc123", "username: u\n    password: p");
        let c = credentials_from_str(Path::new("/k"), &text).unwrap();
        assert_eq!(
            c,
            KubeCredentials::Basic {
                username: "u".into(),
                password: "p".into()
            }
        );
    }

    #[test]
    fn cert_data_user() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let text = TOKEN.replace(
            "token: abc123",
            &format!(
                "client-certificate-data: {}\n    client-key-data: {}",
                b64("CERT"),
                b64("KEY\n")
            ),
        );
        let c = credentials_from_str(Path::new("/k"), &text).unwrap();
        assert_eq!(c, KubeCredentials::ClientCert(b"CERT\nKEY\n".to_vec()));
    }

    #[test]
    fn errors() {
        let no_ctx = TOKEN.replace("current-context: dev", "");
        assert!(
            credentials_from_str(Path::new("/k"), &no_ctx)
                .unwrap_err()
                .to_string()
                .contains("no current-context")
        );
        let no_user = TOKEN.replace("name: dev-user", "name: someone");
        assert!(
            credentials_from_str(Path::new("/k"), &no_user)
                .unwrap_err()
                .to_string()
                .contains("'dev-user' is not defined")
        );
        assert!(credentials_from_str(Path::new("/k"), "- a\n- b").is_err());
    }
}
