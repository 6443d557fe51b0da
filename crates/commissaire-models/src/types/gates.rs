//! Health gates: what must hold after each host's step before the roll
//! goes on: check commands on the host over SSH, and no firing Prometheus
//! alert matching a pattern. (With a container manager the node reporting
//! Ready is always the first gate.)

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number of seconds (fractions allowed), at least 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Secs(pub f64);

impl Eq for Secs {}

impl Secs {
    /// As a duration.
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.0)
    }
}

impl Serialize for Secs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secs, D::Error> {
        let v = f64::deserialize(d)?;
        if !(0.0..=86_400.0).contains(&v) {
            return Err(serde::de::Error::custom(format!(
                "{v} is not a number of seconds from 0 to 86400"
            )));
        }
        Ok(Secs(v))
    }
}

/// How often a gate is tried and how long each try may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GateTries {
    /// Time limit of one try (default 30 s).
    pub timeout_seconds: Option<Secs>,
    /// Tries after the first failed one (default 3).
    pub retries: Option<u32>,
    /// Pause between tries (default 5 s).
    pub interval_seconds: Option<Secs>,
}

/// The members of a gate saying how often it is tried (one per gate kind,
/// as serde cannot both flatten and refuse unknown members).
macro_rules! gate {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// Time limit of one try (default 30 s).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub timeout_seconds: Option<Secs>,
            /// Tries after the first failed one (default 3).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub retries: Option<u32>,
            /// Pause between tries (default 5 s).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub interval_seconds: Option<Secs>,
        }

        impl $name {
            /// How often it is tried.
            pub fn tries(&self) -> GateTries {
                GateTries {
                    timeout_seconds: self.timeout_seconds,
                    retries: self.retries,
                    interval_seconds: self.interval_seconds,
                }
            }
        }
    };
}

impl GateTries {
    /// The time limit of one try.
    pub fn timeout(&self) -> std::time::Duration {
        self.timeout_seconds.unwrap_or(Secs(30.0)).duration()
    }
    /// How many tries in all.
    pub fn attempts(&self) -> u32 {
        self.retries.unwrap_or(3).saturating_add(1)
    }
    /// The pause between tries.
    pub fn interval(&self) -> std::time::Duration {
        self.interval_seconds.unwrap_or(Secs(5.0)).duration()
    }
}

gate!(
    /// A command run on the host over its SSH session; the gate passes when
    /// it exits 0.
    CommandGate {
        /// The shell command (e.g. `systemctl is-active kubelet`).
        pub command: String,
    }
);

gate!(
    /// A Prometheus server asked for firing alerts (`GET /api/v1/alerts`);
    /// the gate passes when no firing alert's name matches `alerts`.
    PrometheusGate {
        /// The server's base URL (`http://prometheus:9090`).
        pub url: String,
        /// A regular expression the whole alert name must match (empty: any alert).
        #[serde(skip_serializing_if = "String::is_empty")]
        pub alerts: String,
    }
);

/// The health gates of a roll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Gates {
    /// Commands that must succeed on the host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandGate>,
    /// Alerts that must not be firing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusGate>,
}

impl Gates {
    /// Whether there is no gate.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.prometheus.is_none()
    }

    /// Checks the gates; the error names the member and says what is wrong.
    pub fn check(&self) -> Result<(), (String, String)> {
        for (i, c) in self.commands.iter().enumerate() {
            if c.command.trim().is_empty() {
                return Err((format!("commands[{i}].command"), "must not be empty".into()));
            }
        }
        if let Some(p) = &self.prometheus {
            let url = p.url.trim();
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
                return Err((
                    "prometheus.url".into(),
                    format!("'{url}' is not an http:// or https:// URL"),
                ));
            }
            if let Err(e) = regex::Regex::new(&p.alerts) {
                return Err((
                    "prometheus.alerts".into(),
                    format!("is not a regular expression: {e}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gates_read_with_defaults_and_bad_ones_name_the_member() {
        let g: Gates = serde_json::from_value(json!({
            "commands": [{"command": "systemctl is-active kubelet", "retries": 1, "interval_seconds": 0.5}],
            "prometheus": {"url": "http://127.0.0.1:9090", "alerts": "Node.*"}}))
        .unwrap();
        assert!(g.check().is_ok());
        let t = g.commands[0].tries();
        assert_eq!(
            (
                t.attempts(),
                t.interval().as_millis(),
                t.timeout().as_secs()
            ),
            (2, 500, 30)
        );
        assert!(
            serde_json::from_value::<Gates>(json!({"commands": [{"command": "x", "retries": -1}]}))
                .is_err()
        );
        assert!(
            serde_json::from_value::<Gates>(
                json!({"commands": [{"command": "x", "timeout_seconds": "1"}]})
            )
            .is_err()
        );
        assert!(serde_json::from_value::<Gates>(json!({"nodes": true})).is_err());
        for (bad, member) in [
            (
                json!({"commands": [{"command": " "}]}),
                "commands[0].command",
            ),
            (
                json!({"prometheus": {"url": "prometheus:9090"}}),
                "prometheus.url",
            ),
            (
                json!({"prometheus": {"url": "http://p:9090", "alerts": "("}}),
                "prometheus.alerts",
            ),
        ] {
            let g: Gates = serde_json::from_value(bad.clone()).unwrap();
            assert_eq!(g.check().unwrap_err().0, member, "{bad}");
        }
    }
}
