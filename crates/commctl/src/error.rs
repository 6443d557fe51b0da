//! Errors and the exit codes they map to.

use std::fmt;

/// Process exit codes.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Any other error (server errors, bad local input, a failed operation).
    pub const ERROR: i32 = 1;
    /// Command line usage error (clap's own code).
    pub const USAGE: i32 = 2;
    /// The server answered 404 Not Found.
    pub const NOT_FOUND: i32 = 3;
    /// The server answered 409 Conflict.
    pub const CONFLICT: i32 = 4;
    /// The server answered 401 or 403: the credentials were refused.
    pub const AUTH: i32 = 5;
    /// No endpoint could be reached.
    pub const UNREACHABLE: i32 = 6;
    /// The server answered 400 Bad Request.
    pub const BAD_REQUEST: i32 = 7;
    /// The server accepted the connection but did not answer within the
    /// timeout (`--timeout`, default 120 s).
    pub const TIMEOUT: i32 = 8;
}

/// One endpoint that could not be reached, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// The endpoint, as configured (user info removed).
    pub endpoint: String,
    /// Why it could not be reached (e.g. `connection refused`).
    pub reason: String,
}

/// Everything that can go wrong in a `commctl` command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server answered with an error status.
    #[error("{}", api_message(*.status, .message, .field.as_deref()))]
    Api {
        /// The HTTP status.
        status: u16,
        /// The server's message (or a description of the request).
        message: String,
        /// The request member the server blamed, if any.
        field: Option<String>,
    },
    /// None of the endpoints could be reached.
    #[error("{}", UnreachableList(.0))]
    Unreachable(Vec<Unreachable>),
    /// The server answered something that is not what the API promises.
    #[error("{0}")]
    Protocol(String),
    /// The configuration (file, flags, kubeconfig) cannot be used.
    #[error("{0}")]
    Config(String),
    /// Local input (a file, an option value) is unusable.
    #[error("{0}")]
    Input(String),
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The server did not answer in time.
    #[error("no answer to {request} from {endpoint} within {seconds} s (--timeout)")]
    Timeout {
        /// The request, e.g. `GET /api/v0/clusters`.
        request: String,
        /// The endpoint asked.
        endpoint: String,
        /// The timeout, in seconds.
        seconds: f64,
    },
    /// A watched cluster operation ended in failure.
    #[error("{0}")]
    OperationFailed(String),
}

fn api_message(status: u16, message: &str, field: Option<&str>) -> String {
    match field {
        Some(field) if !message.contains(field) => {
            format!("{message} (field '{field}') ({status})")
        }
        _ => format!("{message} ({status})"),
    }
}

struct UnreachableList<'a>(&'a [Unreachable]);

impl fmt::Display for UnreachableList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "no endpoint is configured");
        }
        for (i, u) in self.0.iter().enumerate() {
            if i > 0 {
                // main prints the first "error: " prefix; repeat it per line.
                write!(f, "\nerror: ")?;
            }
            write!(f, "cannot reach {} : {}", u.endpoint, u.reason)?;
        }
        Ok(())
    }
}

impl CliError {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            context: context.into(),
            source,
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Api { status, .. } => match status {
                400 => exit::BAD_REQUEST,
                401 | 403 => exit::AUTH,
                404 => exit::NOT_FOUND,
                409 => exit::CONFLICT,
                _ => exit::ERROR,
            },
            CliError::Unreachable(_) => exit::UNREACHABLE,
            CliError::Timeout { .. } => exit::TIMEOUT,
            _ => exit::ERROR,
        }
    }
}

/// Results of `commctl` operations.
pub type CliResult<T> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let api = |status| CliError::Api {
            status,
            message: "x".into(),
            field: None,
        };
        assert_eq!(api(400).exit_code(), 7);
        assert_eq!(api(403).exit_code(), 5);
        assert_eq!(api(401).exit_code(), 5);
        assert_eq!(api(404).exit_code(), 3);
        assert_eq!(api(409).exit_code(), 4);
        assert_eq!(api(500).exit_code(), 1);
        assert_eq!(CliError::Unreachable(vec![]).exit_code(), 6);
    }

    #[test]
    fn messages() {
        let e = CliError::Api {
            status: 404,
            message: "cluster 'x' does not exist".into(),
            field: None,
        };
        assert_eq!(e.to_string(), "cluster 'x' does not exist (404)");
        let e = CliError::Api {
            status: 400,
            message: "bad value".into(),
            field: Some("network".into()),
        };
        assert_eq!(e.to_string(), "bad value (field 'network') (400)");
        let e = CliError::Unreachable(vec![
            Unreachable {
                endpoint: "http://a".into(),
                reason: "connection refused".into(),
            },
            Unreachable {
                endpoint: "http://b".into(),
                reason: "connection refused".into(),
            },
        ]);
        assert_eq!(
            e.to_string(),
            "cannot reach http://a : connection refused\nerror: cannot reach http://b : connection refused"
        );
    }
}
