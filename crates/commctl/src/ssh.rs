//! `host ssh`: runs `ssh` with the host's stored credentials.
//!
//! The private key is written to a mode-0600 temporary file that is removed
//! when ssh ends, when anything fails, and when commctl is interrupted
//! (SIGINT goes to ssh, which is in the same process group; SIGTERM, SIGHUP
//! and SIGQUIT sent to commctl stop ssh first).

use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::error::{CliError, CliResult};

/// The ssh program (`COMMCTL_SSH` overrides it).
pub fn ssh_program() -> String {
    std::env::var("COMMCTL_SSH").unwrap_or_else(|_| "ssh".to_string())
}

/// The key and user from a `GET /host/ADDRESS/creds` answer.
pub fn decode_creds(address: &str, creds: &Value) -> CliResult<(Vec<u8>, String)> {
    let key = creds
        .get("ssh_priv_key")
        .and_then(Value::as_str)
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| {
            CliError::Protocol(format!("the server has no SSH key for host '{address}'"))
        })?;
    let user = creds
        .get("remote_user")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .unwrap_or("root")
        .to_string();
    let mut key = base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .map_err(|e| {
            CliError::Protocol(format!(
                "the SSH key of host '{address}' is not valid base64: {e}"
            ))
        })?;
    // OpenSSH wants the key file to end with a line break.
    if !key.ends_with(b"\n") {
        key.push(b'\n');
    }
    Ok((key, user))
}

/// The ssh command line: `ssh -i KEY -o IdentitiesOnly=yes USER@ADDRESS EXTRA...`.
pub fn ssh_args(key_path: &Path, user: &str, address: &str, extra: &[String]) -> Vec<String> {
    let mut args = vec![
        "-i".to_string(),
        key_path.display().to_string(),
        "-o".to_string(),
        "IdentitiesOnly=yes".to_string(),
        format!("{user}@{address}"),
    ];
    args.extend(extra.iter().cloned());
    args
}

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(crate::error::exit::ERROR)
}

/// Runs ssh to `address` with `creds`; returns ssh's exit code.
pub fn run(address: &str, creds: &Value, extra: &[String]) -> CliResult<i32> {
    let (key, user) = decode_creds(address, creds)?;
    // NamedTempFile is created 0600 and removed on drop (including on error paths).
    let mut key_file = tempfile::Builder::new()
        .prefix("commctl-ssh-key-")
        .tempfile()
        .map_err(|e| CliError::io("creating a temporary key file", e))?;
    key_file
        .write_all(&key)
        .and_then(|_| key_file.flush())
        .map_err(|e| CliError::io("writing the temporary key file", e))?;
    drop(key);

    let interrupted = Arc::new(AtomicBool::new(false));
    let terminated = Arc::new(AtomicBool::new(false));
    let mut ids = Vec::new();
    // Ctrl-C reaches ssh too; commctl only has to stay alive to clean up.
    if let Ok(id) = signal_hook::flag::register(signal_hook::consts::SIGINT, interrupted.clone()) {
        ids.push(id);
    }
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGQUIT,
    ] {
        if let Ok(id) = signal_hook::flag::register(sig, terminated.clone()) {
            ids.push(id);
        }
    }

    let program = ssh_program();
    let result = (|| {
        let mut child = Command::new(&program)
            .args(ssh_args(key_file.path(), &user, address, extra))
            .spawn()
            .map_err(|e| CliError::io(format!("running {program}"), e))?;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(exit_code(status)),
                Ok(None) => {}
                Err(e) => return Err(CliError::io(format!("waiting for {program}"), e)),
            }
            if terminated.load(Ordering::Relaxed) {
                let _ = child.kill();
                let status = child
                    .wait()
                    .map_err(|e| CliError::io(format!("waiting for {program}"), e))?;
                return Ok(exit_code(status));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })();
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    let path = key_file.path().to_path_buf();
    key_file
        .close()
        .map_err(|e| CliError::io(format!("removing {}", path.display()), e))?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_and_terminates_key() {
        let creds = json!({"ssh_priv_key": "a2V5", "remote_user": "core"});
        let (key, user) = decode_creds("h", &creds).unwrap();
        assert_eq!(key, b"key\n");
        assert_eq!(user, "core");
        assert!(decode_creds("h", &json!({"ssh_priv_key": "!!"})).is_err());
        assert!(decode_creds("h", &json!({})).is_err());
    }

    #[test]
    fn command_line() {
        let args = ssh_args(Path::new("/tmp/k"), "root", "10.0.0.1", &["-v".into()]);
        assert_eq!(
            args,
            [
                "-i",
                "/tmp/k",
                "-o",
                "IdentitiesOnly=yes",
                "root@10.0.0.1",
                "-v"
            ]
        );
    }
}
