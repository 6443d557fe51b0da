//! `user-data`: a cloud-init `multipart/mixed` user-data document that
//! makes a new host register itself with Commissaire at first boot.
//!
//! Parts, in this order (cloud-init must load the part handler before it
//! sees the part the handler is for):
//! 1. `text/cloud-config`: the bundled default or the `--cloud-init` file;
//! 2. `text/part-handler`: `contrib/cloud-init/part-handler.py`;
//! 3. `text/x-commissaire-host`: JSON with the endpoint and the given settings.

use rand::Rng;
use serde_json::{Map, Value, json};

/// The cloud-init part handler, embedded at build time.
pub const PART_HANDLER: &str = include_str!("../../../contrib/cloud-init/part-handler.py");
/// The default cloud-config part.
pub const DEFAULT_CLOUD_CONFIG: &str = include_str!("../../../contrib/cloud-init/cloud-config.txt");
/// File name of the default cloud-config part.
pub const DEFAULT_CLOUD_CONFIG_NAME: &str = "cloud-config.txt";
/// The content type the part handler registers for.
pub const HOST_CONTENT_TYPE: &str = "text/x-commissaire-host";

/// One MIME part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// `text/...`
    pub content_type: String,
    /// The attachment's file name.
    pub filename: String,
    /// The text.
    pub body: String,
}

/// The settings a new host registers with.
#[derive(Debug, Clone, Default)]
pub struct HostSettings {
    /// Commissaire endpoint URL.
    pub endpoint: String,
    /// User name for HTTP Basic authentication.
    pub username: Option<String>,
    /// Password for HTTP Basic authentication.
    pub password: Option<String>,
    /// Cluster to join.
    pub cluster: Option<String>,
    /// User Commissaire logs in as.
    pub remote_user: Option<String>,
    /// Private key path on the host.
    pub ssh_key_path: Option<String>,
    /// authorized_keys path on the host.
    pub authorized_keys_path: Option<String>,
}

impl HostSettings {
    /// The `text/x-commissaire-host` JSON: the endpoint and only the given keys.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("endpoint".into(), json!(self.endpoint));
        for (key, value) in [
            ("username", &self.username),
            ("password", &self.password),
            ("cluster", &self.cluster),
            ("remote_user", &self.remote_user),
            ("ssh_key_path", &self.ssh_key_path),
            ("authorized_keys_path", &self.authorized_keys_path),
        ] {
            if let Some(v) = value {
                map.insert(key.into(), json!(v));
            }
        }
        Value::Object(map)
    }
}

/// A random boundary in the style of Python's `email` package.
pub fn random_boundary() -> String {
    let n: u64 = rand::rng().random_range(1_000_000_000_000_000_000..u64::MAX);
    format!("==============={n}==")
}

fn charset_headers(body: &str) -> (&'static str, &'static str) {
    if body.is_ascii() {
        ("us-ascii", "7bit")
    } else {
        ("utf-8", "8bit")
    }
}

/// Renders a `multipart/mixed` document of `parts` with `boundary`.
pub fn render(parts: &[Part], boundary: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\nMIME-Version: 1.0\n\n"
    ));
    for part in parts {
        let (charset, encoding) = charset_headers(&part.body);
        out.push_str(&format!("--{boundary}\n"));
        out.push_str(&format!(
            "Content-Type: {}; charset=\"{charset}\"\n",
            part.content_type
        ));
        out.push_str("MIME-Version: 1.0\n");
        out.push_str(&format!("Content-Transfer-Encoding: {encoding}\n"));
        out.push_str(&format!(
            "Content-Disposition: attachment; filename=\"{}\"\n\n",
            part.filename.replace(['"', '\\', '\n', '\r'], "_")
        ));
        out.push_str(&part.body);
        if !part.body.ends_with('\n') {
            out.push('\n');
        }
        // The line break before a boundary belongs to the boundary (RFC 2046):
        // one more keeps the body's own final line break.
        out.push('\n');
    }
    out.push_str(&format!("--{boundary}--\n"));
    out
}

/// The whole user-data document: cloud-config, part handler, host settings.
pub fn user_data(cloud_config_name: &str, cloud_config: &str, host: &HostSettings) -> String {
    let host_json = serde_json::to_string_pretty(&host.to_json()).unwrap_or_default();
    let parts = vec![
        Part {
            content_type: "text/cloud-config".into(),
            filename: cloud_config_name.into(),
            body: cloud_config.into(),
        },
        Part {
            content_type: "text/part-handler".into(),
            filename: "part-handler.py".into(),
            body: PART_HANDLER.into(),
        },
        Part {
            content_type: HOST_CONTENT_TYPE.into(),
            filename: "commissaire-host.json".into(),
            body: host_json,
        },
    ];
    // A boundary must not occur in any part.
    let mut boundary = random_boundary();
    while parts.iter().any(|p| p.body.contains(&boundary)) {
        boundary = random_boundary();
    }
    render(&parts, &boundary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_given_keys() {
        let host = HostSettings {
            endpoint: "https://e".into(),
            cluster: Some("c".into()),
            ..Default::default()
        };
        assert_eq!(
            host.to_json(),
            json!({"endpoint": "https://e", "cluster": "c"})
        );
    }

    #[test]
    fn order_and_headers() {
        let host = HostSettings {
            endpoint: "https://e".into(),
            ..Default::default()
        };
        let doc = user_data("cloud-config.txt", "#cloud-config\n", &host);
        assert!(doc.starts_with("Content-Type: multipart/mixed; boundary=\"==============="));
        let handler = doc.find("Content-Type: text/part-handler").unwrap();
        let hostpart = doc.find("Content-Type: text/x-commissaire-host").unwrap();
        let cloud = doc.find("Content-Type: text/cloud-config").unwrap();
        assert!(cloud < handler && handler < hostpart);
        assert!(doc.contains("Content-Disposition: attachment; filename=\"part-handler.py\""));
        assert!(doc.trim_end().ends_with("==--"));
    }

    #[test]
    fn boundaries_differ() {
        assert_ne!(random_boundary(), random_boundary());
    }
}
