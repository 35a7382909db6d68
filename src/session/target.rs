//! Which SMART server the session talks to, and where its endpoints are.

use serde_json::Value;

use crate::client::{ClientError, SmartClient};

/// The URLs of one server's endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoints {
    /// The server's base URL (where /oauth lives on the reference layout).
    pub base: String,
    /// The FHIR base, also the `aud` of authorize requests.
    pub fhir: String,
    /// The open FHIR base, when the server has one.
    pub open_fhir: Option<String>,
    /// Authorization endpoint.
    pub authorize: String,
    /// Token endpoint.
    pub token: String,
    /// Registration endpoint, if any.
    pub register: Option<String>,
    /// The reference server's debug token endpoint.
    pub debug_token: String,
    /// The reference server's debug introspection endpoint.
    pub debug_introspect: String,
}

impl Endpoints {
    /// The reference server's layout under a base URL (the embedded server uses it).
    pub fn reference(base: &str) -> Endpoints {
        let base = base.trim_end_matches('/').to_string();
        Endpoints {
            fhir: format!("{base}/api/fhir"),
            open_fhir: Some(format!("{base}/api/open-fhir")),
            authorize: format!("{base}/oauth/authorize"),
            token: format!("{base}/oauth/token"),
            register: Some(format!("{base}/oauth/register")),
            debug_token: format!("{base}/oauth/debug/token"),
            debug_introspect: format!("{base}/oauth/debug/introspect"),
            base,
        }
    }

    /// The reference server's debug endpoint that mints EHR launches, beside its debug
    /// token endpoint.
    pub fn debug_launch(&self) -> String {
        match self.debug_token.strip_suffix("/token") {
            Some(debug) => format!("{debug}/launch"),
            None => format!("{}/oauth/debug/launch", self.base),
        }
    }

    /// The smartnb server's debug endpoint that queues simulated faults for a client,
    /// beside its debug token endpoint.
    pub fn debug_simulate(&self) -> String {
        match self.debug_token.strip_suffix("/token") {
            Some(debug) => format!("{debug}/simulate"),
            None => format!("{}/oauth/debug/simulate", self.base),
        }
    }

    /// Find a remote server's endpoints from its SMART configuration: `URL/api/fhir` (the
    /// reference layout) is tried first, then `URL` itself as the FHIR base.
    pub async fn discover(client: &SmartClient, url: &str) -> Result<Endpoints, DiscoveryError> {
        let url = url.trim_end_matches('/');
        let mut tried = Vec::new();
        for fhir in [format!("{url}/api/fhir"), url.to_string()] {
            let well_known = format!("{fhir}/.well-known/smart-configuration");
            let reply = client
                .get(&well_known, None)
                .await
                .map_err(DiscoveryError::Client)?;
            tried.push(format!("{well_known} ({})", reply.status));
            if let Some(doc) = reply.json().filter(|_| reply.ok()) {
                return Endpoints::from_configuration(&fhir, doc)
                    .ok_or(DiscoveryError::Incomplete(well_known));
            }
        }
        Err(DiscoveryError::NotSmart(tried))
    }

    fn from_configuration(fhir: &str, doc: &Value) -> Option<Endpoints> {
        let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_string);
        let authorize = text("authorization_endpoint")?;
        let token = text("token_endpoint")?;
        // The debug endpoints are the reference server's own, beside its authorize endpoint.
        let oauth = authorize
            .rsplit_once('/')
            .map(|(head, _)| head.to_string())
            .unwrap_or_default();
        let base = oauth.strip_suffix("/oauth").unwrap_or(&oauth).to_string();
        let open_fhir = fhir
            .strip_suffix("/api/fhir")
            .map(|b| format!("{b}/api/open-fhir"));
        Some(Endpoints {
            fhir: fhir.to_string(),
            open_fhir,
            authorize,
            token,
            register: text("registration_endpoint"),
            debug_token: format!("{oauth}/debug/token"),
            debug_introspect: format!("{oauth}/debug/introspect"),
            base,
        })
    }
}

/// Why `connect` could not use a server.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The request failed.
    #[error(transparent)]
    Client(ClientError),
    /// No SMART configuration was found.
    #[error("no SMART configuration found; tried {}", .0.join(", "))]
    NotSmart(Vec<String>),
    /// The configuration lacks the authorization or token endpoint.
    #[error("{0} has no authorization_endpoint or token_endpoint")]
    Incomplete(String),
}

/// What the session targets.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The in-process server (started on first use).
    Embedded,
    /// A server reached over the network.
    Remote(Endpoints),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_layout() {
        let e = Endpoints::reference("http://localhost:9000/");
        assert_eq!(e.fhir, "http://localhost:9000/api/fhir");
        assert_eq!(e.debug_token, "http://localhost:9000/oauth/debug/token");
        assert_eq!(e.debug_launch(), "http://localhost:9000/oauth/debug/launch");
        assert_eq!(
            e.debug_simulate(),
            "http://localhost:9000/oauth/debug/simulate"
        );
    }

    #[test]
    fn configuration_document_gives_endpoints() {
        let doc = json!({"authorization_endpoint": "https://ehr.example/auth/authorize", "token_endpoint": "https://ehr.example/auth/token"});
        let e = Endpoints::from_configuration("https://ehr.example/fhir", &doc).unwrap();
        assert_eq!(e.token, "https://ehr.example/auth/token");
        assert_eq!(e.debug_launch(), "https://ehr.example/auth/debug/launch");
        assert_eq!(e.register, None);
        assert_eq!(e.open_fhir, None);
        assert!(Endpoints::from_configuration("x", &json!({})).is_none());
    }
}
