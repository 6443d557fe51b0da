//! `httpauthclientcert`: TLS client certificate authentication.
//!
//! The TLS layer only records a client certificate's common name in
//! [`PeerInfo::client_cert_cn`](crate::peer::PeerInfo::client_cert_cn) once
//! the certificate has been verified against `--tls-clientverifyfile`. With
//! the option `cn=NAME` only that common name is allowed; without it any
//! verified certificate is. The user is the certificate's common name.

use serde_json::{Map, Value};

use super::options::Options;
use super::{AuthConfigError, AuthDecision, Authenticator, RequestCredentials};

/// The plugin's module name.
pub const NAME: &str = "httpauthclientcert";

/// The `httpauthclientcert` plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertAuth {
    cn: Option<String>,
}

impl ClientCertAuth {
    /// A plugin allowing only `cn` (any verified certificate when `None`).
    pub fn new(cn: Option<String>) -> Self {
        ClientCertAuth { cn }
    }

    /// Builds the plugin from its options (`cn`, optional).
    pub fn from_options(options: &Map<String, Value>) -> Result<Self, AuthConfigError> {
        let mut opts = Options::new(NAME, options)?;
        let cn = opts.string("cn")?;
        opts.finish()?;
        Ok(ClientCertAuth::new(cn))
    }
}

#[async_trait::async_trait]
impl Authenticator for ClientCertAuth {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn authenticate(&self, req: &RequestCredentials<'_>) -> AuthDecision {
        match (&req.peer.client_cert_cn, &self.cn) {
            (Some(presented), Some(wanted)) if presented == wanted => AuthDecision::Allow {
                user: presented.clone(),
            },
            (Some(presented), None) => AuthDecision::Allow {
                user: presented.clone(),
            },
            (Some(presented), Some(_)) => {
                tracing::debug!(plugin = NAME, cn = %presented, "client certificate common name not allowed");
                AuthDecision::Abstain
            }
            (None, _) => AuthDecision::Abstain,
        }
    }
}
