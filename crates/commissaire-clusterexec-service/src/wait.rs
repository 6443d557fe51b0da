//! Waiting for a restarted host natively: its SSH port closing ("down"),
//! then a TCP connection and an SSH login on its pooled session, with its
//! pinned host key ("back"), polled every [`POLL`] instead of Ansible's
//! whole seconds.

use std::time::Duration;

use commissaire_host_access::{AccessError, HostAccess};

use crate::phases::{PhaseSink, phase};
use serde_json::{Map, Value};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How often the host is probed.
pub const POLL: Duration = Duration::from_millis(100);

/// How long a restarted host may take, from the restart playbook's
/// variables (`commissaire_restart_down_timeout`, default 60 s: a restart
/// that never takes SSH down is not an error; `commissaire_restart_wait_delay`,
/// default 0 s here: the wait starts when the port closed;
/// `commissaire_restart_wait_timeout`, default 600 s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestartWaits {
    /// How long the SSH port may stay open after the restart command.
    pub down_timeout: Duration,
    /// A pause after the port closed, before probing for the host again.
    pub delay: Duration,
    /// How long the host may take to accept SSH logins again.
    pub back_timeout: Duration,
}

impl RestartWaits {
    /// The waits the playbook variables ask for.
    pub fn from_vars(vars: &Map<String, Value>) -> RestartWaits {
        let secs = |name: &str, default: f64| {
            let v = match vars.get(name) {
                Some(Value::Number(n)) => n.as_f64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            };
            Duration::from_secs_f64(v.filter(|s| s.is_finite() && *s >= 0.0).unwrap_or(default))
        };
        RestartWaits {
            down_timeout: secs("commissaire_restart_down_timeout", 60.0),
            delay: secs("commissaire_restart_wait_delay", 0.0),
            back_timeout: secs("commissaire_restart_wait_timeout", 600.0),
        }
    }
}

/// How a restart's command is run (`restart_via`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartVia {
    /// `restart.yaml` runs it (operators may have customised the playbook).
    #[default]
    Playbook,
    /// Clusterexec runs `commissaire_restart_command` itself over the
    /// host's session, detached: no `ansible-playbook` start-up per host.
    Ssh,
}

/// The restart command of `vars` for `address`, detached as a reboot needs
/// (the session may end before it does), for [`RestartVia::Ssh`]. The only
/// templates rendered are `{{ inventory_hostname }}` and `{{ ansible_host }}`;
/// anything else Jinja is an error saying to use the playbook.
pub fn detached_restart_command(
    vars: &Map<String, Value>,
    address: &str,
) -> Result<String, String> {
    let command = vars
        .get("commissaire_restart_command")
        .and_then(Value::as_str)
        .filter(|c| !c.trim().is_empty())
        .ok_or("commissaire_restart_command is not set")?;
    let mut rendered = command.to_string();
    for name in ["inventory_hostname", "ansible_host"] {
        for form in [format!("{{{{ {name} }}}}"), format!("{{{{{name}}}}}")] {
            rendered = rendered.replace(&form, address);
        }
    }
    if rendered.contains("{{") || rendered.contains("{%") {
        return Err(format!(
            "commissaire_restart_command '{command}' needs Jinja beyond {{{{ inventory_hostname }}}}: \
             set clusterexec's restart_via to \"playbook\""
        ));
    }
    let quoted = format!("'{}'", rendered.replace('\'', r"'\''"));
    Ok(format!("nohup sh -c {quoted} </dev/null >/dev/null 2>&1 &"))
}

/// Whether a TCP connection to the host's SSH port opens within [`POLL`].
async fn port_open(address: &str) -> bool {
    matches!(
        tokio::time::timeout(POLL, TcpStream::connect((address, 22))).await,
        Ok(Ok(_))
    )
}

/// Waits until the host's SSH port closed (at most `down_timeout`), then
/// until it accepts an SSH login with its pinned key again. `Err` is the
/// host's failure reason: it never came back, or it came back with another
/// host key. The host enters `down` when its port closed and `up` when it
/// opened again.
pub async fn wait_down_and_back(
    access: &HostAccess,
    address: &str,
    waits: RestartWaits,
    phases: &dyn PhaseSink,
) -> Result<(), String> {
    let down_deadline = Instant::now() + waits.down_timeout;
    let mut went_down = false;
    while Instant::now() < down_deadline {
        if !port_open(address).await {
            went_down = true;
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    tracing::debug!(address, went_down, "restart: SSH port closed");
    if went_down {
        phases.enter(phase::DOWN).await;
    }
    tokio::time::sleep(waits.delay).await;
    let back_deadline = Instant::now() + waits.back_timeout;
    let mut last = String::from("its SSH port stayed closed");
    let mut up = false;
    loop {
        if port_open(address).await {
            if !up {
                up = true;
                phases.enter(phase::UP).await;
            }
            match access.run(address, "true", Duration::from_secs(10)).await {
                Ok(out) if out.success() => return Ok(()),
                Ok(out) => last = format!("an SSH login ran 'true' with {:?}", out.status),
                Err(e @ AccessError::NoCredentials { .. }) => return Err(e.to_string()),
                Err(e) if e.is_host_key_changed() => return Err(e.to_string()),
                Err(e) => last = e.to_string(),
            }
        }
        if Instant::now() >= back_deadline {
            return Err(format!(
                "the host did not come back within {}s after its restart: {last}",
                waits.back_timeout.as_secs()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_restart_command_is_rendered_for_the_host_and_detached() {
        let vars = json!({"commissaire_restart_command": "sh /x/restart.sh {{ inventory_hostname }} 'a b'"});
        let c = detached_restart_command(vars.as_object().unwrap(), "10.0.0.1").unwrap();
        assert_eq!(
            c,
            r"nohup sh -c 'sh /x/restart.sh 10.0.0.1 '\''a b'\''' </dev/null >/dev/null 2>&1 &"
        );
        let vars = json!({"commissaire_restart_command": "reboot {{ delay | int }}"});
        let e = detached_restart_command(vars.as_object().unwrap(), "h").unwrap_err();
        assert!(e.contains("restart_via"), "{e}");
        assert!(detached_restart_command(&Map::new(), "h").is_err());
    }

    #[test]
    fn the_playbook_s_variables_set_the_waits() {
        let w = RestartWaits::from_vars(&Map::new());
        assert_eq!(
            (w.down_timeout.as_secs(), w.delay, w.back_timeout.as_secs()),
            (60, Duration::ZERO, 600)
        );
        let vars = json!({"commissaire_restart_down_timeout": "30",
            "commissaire_restart_wait_delay": 1.5, "commissaire_restart_wait_timeout": -1});
        let w = RestartWaits::from_vars(vars.as_object().unwrap());
        assert_eq!(w.down_timeout, Duration::from_secs(30));
        assert_eq!(w.delay, Duration::from_millis(1500));
        assert_eq!(w.back_timeout.as_secs(), 600, "a negative value is ignored");
    }
}
