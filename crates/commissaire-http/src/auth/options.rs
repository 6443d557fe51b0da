//! Reading a plugin's options, whichever form they came in.
//!
//! Options from the command line are always strings; options from the
//! configuration file may be any JSON value. Names may use `-` or `_`.
//! Every option a plugin does not take is an error, so typos are caught.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{AuthConfigError, is_secret_option};

/// A plugin's not-yet-consumed options.
pub(crate) struct Options {
    plugin: &'static str,
    values: BTreeMap<String, Value>,
}

impl Options {
    /// Normalises option names (`-` -> `_`).
    pub(crate) fn new(
        plugin: &'static str,
        options: &Map<String, Value>,
    ) -> Result<Self, AuthConfigError> {
        let mut values = BTreeMap::new();
        for (key, value) in options {
            let normalised = key.trim().replace('-', "_");
            if values.insert(normalised, value.clone()).is_some() {
                return Err(AuthConfigError::InvalidOption {
                    plugin,
                    option: "options",
                    reason: format!("option {key:?} is given twice"),
                });
            }
        }
        Ok(Options { plugin, values })
    }

    /// The plugin these options belong to.
    pub(crate) fn plugin(&self) -> &'static str {
        self.plugin
    }

    /// An error about `option`.
    pub(crate) fn invalid(
        &self,
        option: &'static str,
        reason: impl Into<String>,
    ) -> AuthConfigError {
        AuthConfigError::InvalidOption {
            plugin: self.plugin,
            option,
            reason: reason.into(),
        }
    }

    /// An error for a missing required `option`.
    pub(crate) fn missing(&self, option: &'static str) -> AuthConfigError {
        AuthConfigError::MissingOption {
            plugin: self.plugin,
            option,
        }
    }

    /// Takes an option's raw value (JSON `null` counts as absent).
    pub(crate) fn take(&mut self, option: &'static str) -> Option<Value> {
        self.values.remove(option).filter(|v| !v.is_null())
    }

    /// Takes a string option (numbers and booleans are accepted as text).
    /// An empty string is an error.
    pub(crate) fn string(
        &mut self,
        option: &'static str,
    ) -> Result<Option<String>, AuthConfigError> {
        let text = match self.take(option) {
            None => return Ok(None),
            Some(Value::String(text)) => text,
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(_) => return Err(self.invalid(option, "expected a string")),
        };
        if text.trim().is_empty() {
            return Err(self.invalid(option, "must not be empty"));
        }
        Ok(Some(text))
    }

    /// Takes a required string option.
    pub(crate) fn required_string(
        &mut self,
        option: &'static str,
    ) -> Result<String, AuthConfigError> {
        self.string(option)?.ok_or_else(|| self.missing(option))
    }

    /// Takes a boolean option (`true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`).
    pub(crate) fn bool(&mut self, option: &'static str) -> Result<Option<bool>, AuthConfigError> {
        match self.take(option) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::Number(n)) if n.as_u64() == Some(0) => Ok(Some(false)),
            Some(Value::Number(n)) if n.as_u64() == Some(1) => Ok(Some(true)),
            Some(Value::String(text)) => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(Some(true)),
                "false" | "no" | "off" | "0" => Ok(Some(false)),
                _ => Err(self.invalid(option, "expected true or false")),
            },
            Some(_) => Err(self.invalid(option, "expected true or false")),
        }
    }

    /// Takes a non-negative integer option.
    pub(crate) fn u64(&mut self, option: &'static str) -> Result<Option<u64>, AuthConfigError> {
        match self.take(option) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.invalid(option, "expected a non-negative integer")),
            Some(Value::String(text)) => text
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| self.invalid(option, "expected a non-negative integer")),
            Some(_) => Err(self.invalid(option, "expected a non-negative integer")),
        }
    }

    /// Fails if any option was not consumed.
    pub(crate) fn finish(self) -> Result<(), AuthConfigError> {
        match self.values.into_keys().next() {
            None => Ok(()),
            Some(option) => Err(AuthConfigError::UnknownOption {
                plugin: self.plugin,
                option,
            }),
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.values {
            if is_secret_option(key) {
                map.entry(key, &"<redacted>");
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}
