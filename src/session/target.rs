//! Which SMART server the session talks to, and where its endpoints are.

use serde_json::Value;

use crate::client::{ClientError, SmartClient};
use crate::server::discovery::SMARTNB_FIELD;

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
    /// The server is smartnb (its configuration says so), so its sign-in and consent
    /// pages are the ones `authorize --as` knows how to fill in.
    pub smartnb_pages: bool,
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
            smartnb_pages: true,
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
    /// reference layout) is tried first, then `URL` itself as the FHIR base. Errors name the
    /// URL as it was given, not the well-known address tried for it.
    pub async fn discover(client: &SmartClient, url: &str) -> Result<Endpoints, DiscoveryError> {
        let url = url.trim().trim_end_matches('/');
        check_scheme(url)?;
        let mut tried = Vec::new();
        for fhir in [format!("{url}/api/fhir"), url.to_string()] {
            let well_known = format!("{fhir}/.well-known/smart-configuration");
            let reply = client
                .get(&well_known, None)
                .await
                .map_err(|e| DiscoveryError::from_client(url, e))?;
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
            smartnb_pages: doc.get(SMARTNB_FIELD).is_some_and(Value::is_string),
            base,
        })
    }
}

/// Why `connect` could not use a server.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// `localhost:9000`: no `http://` in front (the URL parser would take `localhost` for
    /// the scheme).
    #[error("{0:?} has no http:// or https:// in front")]
    NoScheme(String),
    /// A scheme other than http or https.
    #[error("{0:?} is not an http:// or https:// URL")]
    BadScheme(String),
    /// Nothing listens at that address.
    #[error("cannot reach {0}: connection refused")]
    Refused(String),
    /// The host could not be reached for another reason (name, network, TLS).
    #[error("cannot reach {url}: {detail}")]
    Unreachable {
        /// The URL as given.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The server did not answer in time.
    #[error("{0} did not answer in time")]
    Timeout(String),
    /// No SMART configuration was found.
    #[error("no SMART configuration found; tried {}", .0.join(", "))]
    NotSmart(Vec<String>),
    /// The configuration lacks the authorization or token endpoint.
    #[error("{0} has no authorization_endpoint or token_endpoint")]
    Incomplete(String),
}

impl DiscoveryError {
    /// A transport failure, told about the URL the person gave.
    fn from_client(url: &str, error: ClientError) -> DiscoveryError {
        match error {
            ClientError::Refused { .. } => DiscoveryError::Refused(url.to_string()),
            ClientError::Timeout { .. } => DiscoveryError::Timeout(url.to_string()),
            ClientError::BadUrl(_) | ClientError::BadHeader(_) => {
                DiscoveryError::BadScheme(url.to_string())
            }
            ClientError::Unreachable { detail, .. } => DiscoveryError::Unreachable {
                url: url.to_string(),
                // reqwest's first words repeat the request ("error sending request for url
                // (…)"), naming the well-known address; keep only the causes.
                detail: detail
                    .split_once("): ")
                    .map(|(_, cause)| cause.to_string())
                    .unwrap_or(detail),
            },
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            DiscoveryError::NoScheme(url) => format!("add http:// (connect http://{url})"),
            DiscoveryError::BadScheme(_) => {
                "give the server's base URL, e.g. connect http://localhost:9000".to_string()
            }
            DiscoveryError::Refused(_) => {
                "nothing listens on that port: start the server (smartnb serve), or check the host and port".to_string()
            }
            DiscoveryError::Unreachable { .. } => "check the host name and the network".to_string(),
            DiscoveryError::Timeout(_) => "the server is slow or stuck; try again".to_string(),
            DiscoveryError::NotSmart(_) | DiscoveryError::Incomplete(_) => {
                "give the server's base URL or its FHIR base URL".to_string()
            }
        }
    }
}

/// `http://` or `https://` in front, or an error saying what to add.
fn check_scheme(url: &str) -> Result<(), DiscoveryError> {
    match url.split_once("://") {
        Some((scheme, _))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            Ok(())
        }
        Some(_) => Err(DiscoveryError::BadScheme(url.to_string())),
        None => Err(DiscoveryError::NoScheme(url.to_string())),
    }
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
        assert!(!e.smartnb_pages, "another server's pages are its own");
        let mut doc = doc;
        doc[SMARTNB_FIELD] = json!("1.0.0");
        let e = Endpoints::from_configuration("https://ehr.example/fhir", &doc).unwrap();
        assert!(e.smartnb_pages);
        assert!(Endpoints::from_configuration("x", &json!({})).is_none());
    }

    #[test]
    fn a_url_needs_http_in_front() {
        assert!(check_scheme("http://localhost:9000").is_ok());
        assert!(check_scheme("HTTPS://ehr.example/fhir").is_ok());
        let e = check_scheme("localhost:9000").unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"localhost:9000\" has no http:// or https:// in front"
        );
        assert_eq!(e.hint(), "add http:// (connect http://localhost:9000)");
        assert!(matches!(
            check_scheme("ftp://x"),
            Err(DiscoveryError::BadScheme(_))
        ));
    }
}
