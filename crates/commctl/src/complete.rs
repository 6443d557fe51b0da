//! Shell completion: `commctl completions SHELL` prints a script that calls
//! `COMPLETE=SHELL commctl -- WORDS...` (clap_complete's dynamic
//! completion), so commands and flags complete from the command tree and
//! cluster, host, network and container manager names from the server.
//!
//! The names are asked of the server the command line being completed
//! would talk to: its `-c/--config`, `--context`, `--endpoint`,
//! `--username` and `--password` words, else the `COMMCTL_*` variables,
//! else the configuration file. Completion never prompts, gives up on the
//! server after [`TIMEOUT`], and prints nothing when it cannot ask it.

use std::time::Duration;

use clap_complete::CompletionCandidate;
use serde_json::Value;

use crate::client::{Client, ClientOptions};
use crate::config::{self, Overrides};

/// How long completion waits for the server.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Cluster names from the server.
pub fn clusters() -> Vec<CompletionCandidate> {
    from_server("clusters", "")
}

/// Host addresses from the server.
pub fn hosts() -> Vec<CompletionCandidate> {
    from_server("hosts", "address")
}

/// Network names from the server.
pub fn networks() -> Vec<CompletionCandidate> {
    from_server("networks", "")
}

/// Container manager names from the server.
pub fn container_managers() -> Vec<CompletionCandidate> {
    from_server("containermanagers", "")
}

/// Context names from the configuration file.
pub fn contexts() -> Vec<CompletionCandidate> {
    let o = overrides(&words());
    let (path, required) = config::config_path(o.config.as_deref());
    match config::read_file(&path, required) {
        Ok(file) => file.contexts.keys().map(CompletionCandidate::new).collect(),
        Err(_) => Vec::new(),
    }
}

/// The words of the command line being completed (after `--`).
fn words() -> Vec<String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// The connection settings the command line names, over the environment's.
pub fn overrides(words: &[String]) -> Overrides {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut o = Overrides {
        config: env("COMMCTL_CONFIG").map(Into::into),
        context: env("COMMCTL_CONTEXT"),
        endpoints: env("COMMCTL_ENDPOINT")
            .map(|e| e.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        username: env("COMMCTL_USERNAME"),
        password: env("COMMCTL_PASSWORD"),
        no_prompt: true,
        ..Default::default()
    };
    let mut flag_endpoints = Vec::new();
    // words[0] is the program.
    let mut i = 1;
    while i < words.len() {
        let word = &words[i];
        let (flag, inline) = match word.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (word.as_str(), None),
        };
        let takes = matches!(
            flag,
            "-c" | "--config" | "--context" | "--endpoint" | "--username" | "--password"
        );
        if takes {
            let value = match inline {
                Some(v) => Some(v),
                None => {
                    i += 1;
                    words.get(i).cloned()
                }
            };
            if let Some(v) = value {
                match flag {
                    "-c" | "--config" => o.config = Some(v.into()),
                    "--context" => o.context = Some(v),
                    "--endpoint" => flag_endpoints.extend(v.split(',').map(str::to_string)),
                    "--username" => o.username = Some(v),
                    _ => o.password = Some(v),
                }
            }
        } else if !word.starts_with('-') {
            // The connection options go before the command.
            break;
        }
        i += 1;
    }
    if !flag_endpoints.is_empty() {
        o.endpoints = flag_endpoints;
    }
    o
}

/// The names in `GET /api/v0/{list}` (records' `member`, or plain names).
fn from_server(list: &str, member: &str) -> Vec<CompletionCandidate> {
    let Ok(settings) = config::resolve(&overrides(&words())) else {
        return Vec::new();
    };
    let options = ClientOptions {
        quiet: true,
        timeout: Some(TIMEOUT),
        ..Default::default()
    };
    let Ok(client) = Client::with_options(&settings, options) else {
        return Vec::new();
    };
    let Ok(Value::Array(items)) = client.get(&["api", "v0", list]) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::String(s) => Some(s.clone()),
            other => other
                .get(member)
                .and_then(Value::as_str)
                .map(str::to_string),
        })
        .map(CompletionCandidate::new)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_completed_lines_connection_options_are_used() {
        let o = overrides(&w(&[
            "commctl",
            "-c",
            "/tmp/x.json",
            "--context=lab",
            "--endpoint",
            "http://a,http://b",
            "host",
            "get",
            "--endpoint",
            "http://not-this",
        ]));
        assert_eq!(
            o.config.as_deref(),
            Some(std::path::Path::new("/tmp/x.json"))
        );
        assert_eq!(o.context.as_deref(), Some("lab"));
        assert_eq!(o.endpoints, ["http://a", "http://b"]);
        assert!(o.no_prompt);
    }
}
