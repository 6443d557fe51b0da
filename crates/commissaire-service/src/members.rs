//! Typed configuration members: each daemon reads the members of its
//! configuration document that are its own into a struct that denies
//! unknown fields, so a typo (`intervl`) or a wrong type (`"interval":
//! "30"`) is an error naming the member, never silently the default.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// The members every daemon's document may hold besides its own (read by
/// [`crate::load_settings`]).
pub const SHARED_MEMBERS: [&str; 7] = [
    "bus_uri",
    "bus_exchange",
    "workers",
    "debug",
    "logging",
    "metrics_listen",
    "shutdown_timeout",
];

/// The `logging` member: `{"level": "info", "format": "text" | "json"}`
/// (read by [`crate::init_logging`]; parsed to check it).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSettings {
    /// A tracing filter (`info`, `debug`, `commissaire_bus=debug`).
    pub level: Option<String>,
    /// How lines are written.
    pub format: Option<LogFormat>,
}

/// A log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// A time in seconds: a positive, finite JSON number (fractions allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds(pub Duration);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = f64::deserialize(d)?;
        if s > 0.0 && s.is_finite() && s < 1e9 {
            Ok(Seconds(Duration::from_secs_f64(s)))
        } else {
            Err(serde::de::Error::custom(format!(
                "{s} is not a positive number of seconds"
            )))
        }
    }
}

/// A configuration member that is unknown or has the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct MemberError {
    /// The service (`watcher`).
    pub service: String,
    /// The member at fault (`interval`, `logging.level`); empty when the
    /// member is unknown (the reason names it).
    pub member: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for MemberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.member.is_empty() {
            write!(f, "{} configuration: {}", self.service, self.reason)
        } else {
            write!(
                f,
                "{} configuration: '{}': {}",
                self.service, self.member, self.reason
            )
        }
    }
}

/// Reads `value` as `T`; an error names the member at fault, and for an
/// unknown one the known member it was likely meant to be.
pub fn parse_value<T: DeserializeOwned>(service: &str, value: Value) -> Result<T, MemberError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.into_inner().to_string();
        let reason = match unknown_field_suggestion(&reason) {
            Some(meant) => format!("{reason} (did you mean '{meant}'?)"),
            None => reason,
        };
        MemberError {
            service: service.to_string(),
            member: if path == "." { String::new() } else { path },
            reason,
        }
    })
}

/// The known name nearest to `unknown` when it is near enough to be a typo
/// (a Jaro-Winkler similarity of 0.8 or more; `-` and `_` count alike).
pub fn did_you_mean<'a>(
    unknown: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let plain = |s: &str| s.replace('-', "_").to_ascii_lowercase();
    let unknown = plain(unknown);
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(&unknown, &plain(k)), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// For serde's "unknown field `X`, expected one of `a`, `b`" (or
/// "expected `a`"), the member `X` was likely meant to be.
fn unknown_field_suggestion(reason: &str) -> Option<String> {
    let rest = reason.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let known: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    did_you_mean(unknown, known).map(str::to_string)
}

/// Reads the members of `config` that are `service`'s own (all but
/// [`SHARED_MEMBERS`]) as `T`, a struct with `deny_unknown_fields`.
pub fn parse_members<T: DeserializeOwned>(
    service: &str,
    config: &Map<String, Value>,
) -> Result<T, MemberError> {
    let own: Map<String, Value> = config
        .iter()
        .filter(|(k, _)| !SHARED_MEMBERS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    parse_value(service, Value::Object(own))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Members {
        interval: Option<Seconds>,
        #[serde(default)]
        concurrency: Option<std::num::NonZeroUsize>,
    }

    fn parse(v: Value) -> Result<Members, MemberError> {
        parse_members("watcher", v.as_object().unwrap())
    }

    #[test]
    fn a_typo_or_a_wrong_type_is_an_error_naming_the_member() {
        let e = parse(json!({"intervl": 3})).unwrap_err();
        assert!(e.to_string().contains("unknown field `intervl`"), "{e}");
        assert!(e.to_string().contains("(did you mean 'interval'?)"), "{e}");
        // Nothing near: no guess.
        let e = parse(json!({"colour": 3})).unwrap_err();
        assert!(!e.to_string().contains("did you mean"), "{e}");
        let e = parse(json!({"interval": "30"})).unwrap_err();
        assert_eq!(e.member, "interval", "{e}");
        let e = parse(json!({"interval": -1})).unwrap_err();
        assert!(e.reason.contains("positive"), "{e}");
        let e = parse(json!({"concurrency": 0})).unwrap_err();
        assert_eq!(e.member, "concurrency", "{e}");
    }

    #[test]
    fn shared_members_and_nulls_are_not_the_daemon_s() {
        let m = parse(json!({"bus_uri": "amqp://x", "workers": 3, "interval": null})).unwrap();
        assert!(m.interval.is_none());
        let m = parse(json!({"interval": 1.5, "concurrency": 4})).unwrap();
        assert_eq!(m.interval, Some(Seconds(Duration::from_millis(1500))));
        assert_eq!(m.concurrency.map(|c| c.get()), Some(4));
    }

    #[test]
    fn near_misses_are_suggested_and_far_ones_are_not() {
        let known = [
            "listen-port",
            "listen-interface",
            "bus-uri",
            "request-timeout",
        ];
        assert_eq!(did_you_mean("listen_prot", known), Some("listen-port"));
        assert_eq!(did_you_mean("bus_url", known), Some("bus-uri"));
        assert_eq!(
            did_you_mean("request-timout", known),
            Some("request-timeout")
        );
        assert_eq!(did_you_mean("tls", known), None);
    }
}
