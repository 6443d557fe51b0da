//! `commctl host ...`: the host inventory, credentials, SSH host keys and
//! `host ssh`.

use std::io::Read;
use std::path::Path;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::cli::HostCommand;
use crate::error::{CliError, CliResult, exit};
use crate::output;

use super::{Ctx, OutputFormat, Subject};

fn read_key_file(path: &Path) -> CliResult<Vec<u8>> {
    if path == Path::new("-") {
        let mut key = Vec::new();
        std::io::stdin()
            .read_to_end(&mut key)
            .map_err(|e| CliError::io("reading the SSH private key from stdin", e))?;
        return Ok(key);
    }
    std::fs::read(path)
        .map_err(|e| CliError::io(format!("reading the SSH private key {}", path.display()), e))
}

const HOST_COLUMNS: &[(&str, &str)] = &[
    ("ADDRESS", "address"),
    ("STATUS", "status"),
    ("OS", "os"),
    ("CPUS", "cpus"),
    ("MEMORY", "memory"),
    ("SPACE", "space"),
    ("LAST CHECK", "last_check"),
];

/// `host list -o wide`: also where the host came from and why it is in its status.
const HOST_WIDE: &[(&str, &str)] = &[
    ("ADDRESS", "address"),
    ("STATUS", "status"),
    ("OS", "os"),
    ("CPUS", "cpus"),
    ("MEMORY", "memory"),
    ("SPACE", "space"),
    ("LAST CHECK", "last_check"),
    ("SOURCE", "source"),
    ("REASON", "reason"),
];

/// The host table's columns for the output format.
fn host_columns(ctx: &Ctx) -> &'static [(&'static str, &'static str)] {
    if ctx.format == OutputFormat::Wide {
        HOST_WIDE
    } else {
        HOST_COLUMNS
    }
}

const HOSTS: Subject<'static> = Subject::List("host", "address");

/// `host ...`
pub fn host(ctx: &Ctx, command: &HostCommand) -> CliResult<i32> {
    let c = ctx.client;
    match command {
        HostCommand::Create {
            cluster,
            remote_user,
            address,
            ssh_priv_key_file,
        } => {
            let key = read_key_file(ssh_priv_key_file)?;
            if key.iter().all(u8::is_ascii_whitespace) {
                return Err(CliError::Input(format!(
                    "the SSH private key file {} is empty",
                    ssh_priv_key_file.display()
                )));
            }
            let mut body = Map::new();
            body.insert(
                "ssh_priv_key".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(&key)),
            );
            if let Some(cl) = cluster {
                body.insert("cluster".into(), json!(cl));
            }
            if let Some(u) = remote_user {
                body.insert("remote_user".into(), json!(u));
            }
            let reply = c.put(&["api", "v0", "host", address], &Value::Object(body))?;
            ctx.confirm(&reply, Subject::One("host", address), output::record);
        }
        HostCommand::Delete { addresses } => {
            return ctx.each(
                "host",
                addresses,
                |a| c.delete(&["api", "v0", "host", a]),
                |a| format!("Deleted host '{a}'"),
            );
        }
        HostCommand::Get { address } => {
            let reply = c.get(&["api", "v0", "host", address])?;
            ctx.show_record(&reply, Subject::One("host", address));
        }
        HostCommand::List {
            cluster,
            status,
            os,
        } if !status.is_empty() || !os.is_empty() => {
            // The server filters: GET /hosts?cluster=&status=&os=.
            let mut query = Vec::new();
            if let Some(cluster) = cluster {
                query.push(("cluster", cluster.clone()));
            }
            if !status.is_empty() {
                query.push(("status", status.join(",")));
            }
            if !os.is_empty() {
                query.push(("os", os.join(",")));
            }
            let reply = c.get_query(&["api", "v0", "hosts"], &query)?;
            ctx.show(&reply, HOSTS, |v| {
                output::rows(host_columns(ctx), "hosts", v)
            });
        }
        HostCommand::List { cluster: None, .. } => {
            let reply = c.get(&["api", "v0", "hosts"])?;
            ctx.show(&reply, HOSTS, |v| {
                output::rows(host_columns(ctx), "hosts", v)
            });
        }
        HostCommand::List {
            cluster: Some(cluster),
            ..
        } => {
            if ctx.format == OutputFormat::Wide && !ctx.quiet {
                // The members' records: the list filtered by the server.
                let reply =
                    c.get_query(&["api", "v0", "hosts"], &[("cluster", cluster.clone())])?;
                ctx.show(&reply, HOSTS, |v| {
                    output::rows(HOST_WIDE, &format!("hosts in cluster '{cluster}'"), v)
                });
            } else {
                let reply = c.get(&["api", "v0", "cluster", cluster, "hosts"])?;
                ctx.show(&reply, Subject::List("host", ""), |v| {
                    output::names("ADDRESS", &format!("hosts in cluster '{cluster}'"), v)
                });
            }
        }
        HostCommand::Status { address } => {
            let reply = c.get(&["api", "v0", "host", address, "status"])?;
            ctx.show_record(&reply, Subject::One("host", address));
        }
        HostCommand::Creds { address } => {
            let reply = c.get(&["api", "v0", "host", address, "creds"])?;
            ctx.show(&reply, Subject::One("host", address), |v| {
                // The purpose of this command is to show the credentials.
                let user = v.get("remote_user").and_then(Value::as_str).unwrap_or("");
                let key = v.get("ssh_priv_key").and_then(Value::as_str).unwrap_or("");
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(key.trim())
                    .ok()
                    .and_then(|k| String::from_utf8(k).ok());
                match decoded {
                    Some(pem) => format!("remote_user: {user}\nssh_priv_key:\n{}", pem.trim_end()),
                    None => format!("remote_user: {user}\nssh_priv_key (base64): {key}"),
                }
            });
        }
        HostCommand::Key { address } => {
            let reply = c.get(&["api", "v0", "host", address, "hostkey"])?;
            ctx.show(&reply, Subject::One("host", address), |v| {
                host_key_text(address, v)
            });
        }
        HostCommand::Retry { address } => {
            let reply = c.call(
                reqwest::Method::PUT,
                &["api", "v0", "host", address, "retry"],
                None,
            )?;
            ctx.confirm(&reply, Subject::One("host", address), |h| {
                format!(
                    "Host '{address}' is {} again",
                    h["status"].as_str().unwrap_or("investigating")
                )
            });
        }
        HostCommand::AcceptKey {
            address,
            fingerprint,
        } => {
            let mut body = Map::new();
            if let Some(fp) = fingerprint {
                body.insert("fingerprint".into(), Value::String(fp.clone()));
            }
            let reply = c.call(
                reqwest::Method::PUT,
                &["api", "v0", "host", address, "hostkey"],
                Some(&Value::Object(body)),
            )?;
            ctx.confirm(&reply, Subject::One("host", address), |_| match fingerprint {
                Some(fp) => format!(
                    "Host '{address}': its key will be recorded at the next connection if its fingerprint is {fp}"
                ),
                None => format!(
                    "Host '{address}': the key it shows at the next connection will be recorded"
                ),
            });
        }
        HostCommand::Join { address, cluster } => {
            let reply = c.call(
                reqwest::Method::PUT,
                &["api", "v0", "cluster", cluster, "hosts", address],
                None,
            )?;
            ctx.confirm(&reply, Subject::One("host", address), |_| {
                format!("Host '{address}' is a member of cluster '{cluster}'")
            });
        }
        HostCommand::Unjoin { address, cluster } => {
            let reply = c.delete(&["api", "v0", "cluster", cluster, "hosts", address])?;
            ctx.confirm(&reply, Subject::One("host", address), |_| {
                format!("Host '{address}' is not a member of cluster '{cluster}'")
            });
        }
        HostCommand::Ssh {
            address,
            extra_args,
            ..
        } => {
            let creds = c.get(&["api", "v0", "host", address, "creds"])?;
            return crate::ssh::run(address, &creds, extra_args);
        }
    }
    Ok(exit::OK)
}

/// The text of `host key`: the fingerprints, or that none is recorded.
fn host_key_text(address: &str, v: &Value) -> String {
    let fingerprints: Vec<&str> = v
        .get("fingerprints")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if fingerprints.is_empty() {
        let pending = v
            .get("accept_fingerprint")
            .and_then(Value::as_str)
            .filter(|f| !f.is_empty())
            .map(|f| format!(" (only a key with fingerprint {f} will be accepted)"))
            .unwrap_or_default();
        return format!(
            "Host '{address}': no SSH host key recorded yet; the next connection records it{pending}"
        );
    }
    format!("Host '{address}': SSH host key {}", fingerprints.join(", "))
}
