//! Roles: what an authenticated user may do. A viewer reads; an operator
//! also runs and steers cluster operations and manages hosts (creating,
//! deleting, joining them to clusters, accepting their keys); an admin does
//! everything (clusters, networks, container managers, credentials, the
//! rolling defaults and command gates, which run commands on hosts).
//!
//! A user's role: the server file's `roles.users` entry for the name, else
//! the role the plugin knows (httpbasicauth's `"role"` in a users entry),
//! else `roles.default` (`admin` unless set, so users files and plugins
//! from before roles keep working). A request's needed role:
//! [`required_role`], from the method and the route's pattern.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// A role, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything but host credentials.
    Viewer,
    /// A viewer who also runs and steers cluster operations and manages hosts.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    /// As written in configuration: `viewer`, `operator`, `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Reads a role as configured.
    pub fn parse(text: &str) -> Result<Role, String> {
        match text {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "role '{other}' is not one of viewer, operator, admin"
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The server file's `roles` member: `{"default": "admin", "users":
/// {"NAME": "viewer", ...}}` (a name as the plugin gives it: a Basic user,
/// a client certificate's CN, a token's user).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoleSettings {
    /// The role of a user nothing else gives one.
    pub default: Role,
    /// Roles by user name, over what the plugins say.
    pub users: BTreeMap<String, Role>,
}

impl Default for RoleSettings {
    fn default() -> Self {
        RoleSettings {
            default: Role::Admin,
            users: BTreeMap::new(),
        }
    }
}

impl RoleSettings {
    /// `user`'s role, given what its plugin says (`from_plugin`).
    pub fn role_of(&self, user: &str, from_plugin: Option<Role>) -> Role {
        self.users
            .get(user)
            .copied()
            .or(from_plugin)
            .unwrap_or(self.default)
    }
}

/// The role a request needs: `method` on the route whose pattern is
/// `route` (`/api/v0/cluster/{name}/restart`). Reads need a viewer but
/// host credentials and the audit trail an admin; cluster operations (start, cancel, pause,
/// resume), hosts, cluster membership, host keys and releases of reboot-lock
/// slots an operator; every
/// other change (clusters, rolling defaults, networks, container managers)
/// an admin.
pub fn required_role(method: &http::Method, route: &str) -> Role {
    if route == "/api/v0/host/{address}/creds" || route == "/api/v0/audit" {
        return Role::Admin;
    }
    if method == http::Method::GET || method == http::Method::HEAD {
        return Role::Viewer;
    }
    const OPERATOR_ROUTES: [&str; 15] = [
        "/api/v0/cluster/{name}/restart",
        "/api/v0/cluster/{name}/restart/pause",
        "/api/v0/cluster/{name}/restart/resume",
        "/api/v0/cluster/{name}/upgrade",
        "/api/v0/cluster/{name}/upgrade/pause",
        "/api/v0/cluster/{name}/upgrade/resume",
        "/api/v0/cluster/{name}/deploy",
        "/api/v0/cluster/{name}/deploy/pause",
        "/api/v0/cluster/{name}/deploy/resume",
        "/api/v0/cluster/{name}/hosts",
        "/api/v0/cluster/{name}/hosts/{address}",
        "/api/v0/host/{address}",
        "/api/v0/host/{address}/hostkey",
        "/api/v0/host/{address}/retry",
        "/api/v0/cluster/{name}/lock/holders/{id}",
    ];
    if OPERATOR_ROUTES.contains(&route) || route == "/api/v0/host" {
        Role::Operator
    } else {
        Role::Admin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn reads_need_a_viewer_operations_and_hosts_an_operator_the_rest_an_admin() {
        let cases = [
            (Method::GET, "/api/v0/clusters", Role::Viewer),
            (Method::GET, "/api/v0/host/{address}", Role::Viewer),
            (Method::GET, "/api/v0/host/{address}/creds", Role::Admin),
            (Method::GET, "/api/v0/audit", Role::Admin),
            (
                Method::PUT,
                "/api/v0/cluster/{name}/restart",
                Role::Operator,
            ),
            (
                Method::DELETE,
                "/api/v0/cluster/{name}/upgrade",
                Role::Operator,
            ),
            (
                Method::PUT,
                "/api/v0/cluster/{name}/deploy/pause",
                Role::Operator,
            ),
            (Method::PUT, "/api/v0/host/{address}", Role::Operator),
            (Method::PUT, "/api/v0/host", Role::Operator),
            (
                Method::PUT,
                "/api/v0/host/{address}/hostkey",
                Role::Operator,
            ),
            (Method::PUT, "/api/v0/host/{address}/retry", Role::Operator),
            (
                Method::PUT,
                "/api/v0/cluster/{name}/hosts/{address}",
                Role::Operator,
            ),
            (Method::PUT, "/api/v0/cluster/{name}", Role::Admin),
            (Method::DELETE, "/api/v0/cluster/{name}", Role::Admin),
            (Method::PUT, "/api/v0/cluster/{name}/rolling", Role::Admin),
            (Method::PUT, "/api/v0/network/{name}", Role::Admin),
            (Method::PUT, "/api/v0/containermanager/{name}", Role::Admin),
            (Method::POST, "unmatched", Role::Admin),
        ];
        for (method, route, role) in cases {
            assert_eq!(required_role(&method, route), role, "{method} {route}");
        }
    }

    #[test]
    fn the_server_s_map_wins_then_the_plugin_then_the_default() {
        let settings: RoleSettings = serde_json::from_value(serde_json::json!({
            "default": "viewer", "users": {"ops": "operator"}
        }))
        .unwrap();
        assert_eq!(settings.role_of("ops", Some(Role::Admin)), Role::Operator);
        assert_eq!(settings.role_of("bob", Some(Role::Admin)), Role::Admin);
        assert_eq!(settings.role_of("eve", None), Role::Viewer);
        assert_eq!(RoleSettings::default().role_of("old", None), Role::Admin);
        let typo =
            serde_json::from_value::<RoleSettings>(serde_json::json!({"users": {"a": "root"}}));
        assert!(typo.is_err());
    }
}
