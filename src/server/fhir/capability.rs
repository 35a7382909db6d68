//! The R4 CapabilityStatement served at `{fhir}/metadata`.

use serde_json::{json, Value};

use super::data::SERVED_TYPES;
use super::search::search_params;
use crate::server::state::AppState;

/// The day this statement's content last changed, as FHIR `date` wants it.
const STATEMENT_DATE: &str = "2026-11-23";

/// The statement for the protected base (with SMART security) or the open one.
pub fn statement(state: &AppState, protected: bool) -> Value {
    let base = if protected {
        state.fhir_base()
    } else {
        state.open_fhir_base()
    };
    let resources: Vec<Value> = SERVED_TYPES.iter().map(|t| resource_entry(t)).collect();
    let mut rest = json!({
        "mode": "server",
        "documentation": if state.upstream.is_some() {
            "Reads, searches and Patient/$everything forwarded to an upstream FHIR server, confined to the token's scopes and patient."
        } else {
            "Bundled demonstration charts for three patients; reads, searches and Patient/$everything."
        },
        "resource": resources,
    });
    rest["security"] = if protected {
        json!({
            "cors": true,
            "description": "Bearer tokens from this server's SMART authorization endpoints; patient/, user/ and system/ scopes (v1 and v2) are enforced. Clients authenticate with a secret (client_secret_basic, client_secret_post), PKCE alone (public), or a signed assertion (private_key_jwt: RS384, ES384, RS256, ES256); backend services use client_credentials with system/ scopes (SMART Backend Services).",
            "extension": [{
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [
                    {"url": "authorize", "valueUri": state.url("/oauth/authorize")},
                    {"url": "token", "valueUri": state.url("/oauth/token")},
                    {"url": "register", "valueUri": state.url("/oauth/register")},
                    {"url": "manage", "valueUri": state.url("/apps")},
                    {"url": "introspect", "valueUri": state.url("/oauth/introspect")},
                    {"url": "revoke", "valueUri": state.url("/oauth/revoke")}
                ]
            }],
            "service": [{
                "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR",
                    "display": "SMART-on-FHIR"
                }],
                "text": "OAuth2 using the SMART App Launch profile"
            }]
        })
    } else {
        json!({"cors": true, "description": "Open access: no token needed, every chart is readable."})
    };
    json!({
        "resourceType": "CapabilityStatement",
        "id": if protected { "smartnb" } else { "smartnb-open" },
        "url": format!("{base}/metadata"),
        "name": "SmartnbSandbox",
        "title": "smartnb embedded SMART on FHIR sandbox",
        "status": "active",
        "experimental": true,
        "date": STATEMENT_DATE,
        "publisher": "smartnb",
        "description": "A SMART on FHIR authorization server and FHIR R4 API for learning and testing; demonstration data only.",
        "kind": "instance",
        "software": {"name": "smartnb", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "smartnb embedded server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "rest": [rest],
    })
}

fn resource_entry(resource_type: &str) -> Value {
    let params: Vec<Value> = search_params(resource_type)
        .into_iter()
        .map(|(name, kind)| json!({"name": name, "type": kind}))
        .collect();
    let mut entry = json!({
        "type": resource_type,
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "searchParam": params,
    });
    if resource_type == "Patient" {
        entry["operation"] = json!([{
            "name": "everything",
            "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"
        }]);
    }
    entry
}
