//! Discovery: the SMART configuration document, the CapabilityStatement with its oauth-uris,
//! CORS on both, and the switches that turn parts of the server off.

use crate::common::*;
use serde_json::{json, Value};
use smartnb::server::Config;

/// Every capability SMART App Launch 2.2 defines.
const SMART_CAPABILITIES: &[&str] = &[
    "launch-ehr",
    "launch-standalone",
    "authorize-post",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "sso-openid-connect",
    "context-banner",
    "context-style",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "context-standalone-encounter",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
    "smart-app-state",
];

const OAUTH_URIS: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";

async fn smart_configuration(server: &TestServer, path: &str) -> Value {
    let reply = server.get(&server.url(path)).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    reply.json()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{value} is not an array"))
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect()
}

#[tokio::test]
async fn smart_configuration_is_served_at_the_root_and_under_the_fhir_base() {
    let server = start().await;
    let root = smart_configuration(&server, "/.well-known/smart-configuration").await;
    let fhir = smart_configuration(&server, "/api/fhir/.well-known/smart-configuration").await;
    assert_eq!(root, fhir);

    for (field, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("registration_endpoint", "/oauth/register"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("management_endpoint", "/apps"),
    ] {
        assert_eq!(root[field], server.url(path), "{field}");
    }
    assert_eq!(strings(&root["code_challenge_methods_supported"]), ["S256"]);
    let grants = strings(&root["grant_types_supported"]);
    assert!(grants.contains(&"authorization_code"), "{grants:?}");
    assert!(grants.contains(&"refresh_token"), "{grants:?}");
    assert_eq!(strings(&root["response_types_supported"]), ["code"]);
    let methods = strings(&root["token_endpoint_auth_methods_supported"]);
    for method in ["client_secret_basic", "none"] {
        assert!(methods.contains(&method), "{methods:?}");
    }
    let scopes = strings(&root["scopes_supported"]);
    for scope in ["launch/patient", "offline_access", "patient/*.read"] {
        assert!(scopes.contains(&scope), "{scopes:?}");
    }
    if !scopes.contains(&"openid") {
        assert!(
            root.get("issuer").is_none(),
            "issuer is only for OpenID Connect"
        );
    }

    let capabilities = strings(&root["capabilities"]);
    for capability in &capabilities {
        assert!(
            SMART_CAPABILITIES.contains(capability),
            "{capability} is not a SMART capability"
        );
    }
    for working in [
        "permission-patient",
        "permission-v1",
        "permission-v2",
        "permission-online",
        "sso-openid-connect",
    ] {
        assert!(
            capabilities.contains(&working),
            "{working} works but is not advertised"
        );
    }
}

#[tokio::test]
async fn the_advertised_registration_endpoint_registers() {
    let server = start().await;
    let config = smart_configuration(&server, "/.well-known/smart-configuration").await;
    let endpoint = config["registration_endpoint"].as_str().unwrap();
    let body = json!({"client_name": "Discovered", "redirect_uris": [SEED_REDIRECT]});
    let response = server.http.post(endpoint).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn discovery_and_metadata_allow_cross_origin_reads() {
    let server = start().await;
    for path in [
        "/.well-known/smart-configuration",
        "/api/fhir/.well-known/smart-configuration",
        "/api/fhir/metadata",
    ] {
        let response = server
            .http
            .get(server.url(path))
            .header("origin", "https://app.example.org")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let allowed = response.headers().get("access-control-allow-origin");
        let allowed = allowed.and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(
            allowed == "*" || allowed == "https://app.example.org",
            "{path}: Access-Control-Allow-Origin {allowed:?}"
        );

        let preflight = server
            .http
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("origin", "https://app.example.org")
            .header("access-control-request-method", "GET")
            .send()
            .await
            .unwrap();
        assert!(
            preflight.status().is_success(),
            "{path}: preflight {}",
            preflight.status()
        );
        assert!(
            preflight
                .headers()
                .contains_key("access-control-allow-origin"),
            "{path}: preflight without Access-Control-Allow-Origin"
        );
    }
}

#[tokio::test]
async fn a_browser_apps_preflight_for_a_bearer_read_is_allowed() {
    let server = start().await;
    let token = server.seed_token().await;
    let url = server.fhir("/Patient/smart-1288992");
    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://app.example.org")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(
        preflight.status().is_success(),
        "preflight {}",
        preflight.status()
    );
    let allowed = preflight.headers().get("access-control-allow-headers");
    let allowed = allowed.and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(
        allowed.to_ascii_lowercase().contains("authorization"),
        "{allowed:?}"
    );

    let response = server
        .http
        .get(&url)
        .bearer_auth(&token)
        .header("origin", "https://app.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn metadata_is_an_r4_capability_statement_naming_the_smart_endpoints() {
    let server = start().await;
    let reply = server.get(&server.fhir("/metadata")).await;
    assert_eq!(reply.status, 200, "no token needed: {}", reply.text);
    assert_fhir_json(&reply);
    let statement = reply.json();
    assert_eq!(statement["resourceType"], "CapabilityStatement");
    assert_eq!(statement["fhirVersion"], "4.0.1");
    assert_eq!(statement["kind"], "instance");
    assert!(strings(&statement["format"]).contains(&"json"));
    for required in ["status", "date"] {
        assert!(statement[required].is_string(), "{required} is required");
    }
    let rest = &statement["rest"][0];
    assert_eq!(rest["mode"], "server");
    let security = &rest["security"];
    let service = &security["service"][0]["coding"][0];
    assert_eq!(
        service["system"],
        "http://terminology.hl7.org/CodeSystem/restful-security-service"
    );
    assert_eq!(service["code"], "SMART-on-FHIR");

    let oauth = security["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == OAUTH_URIS)
        .expect("the oauth-uris extension");
    let uri = |name: &str| -> String {
        let found = oauth["extension"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"] == name);
        let found = found.unwrap_or_else(|| panic!("no {name} in oauth-uris"));
        found["valueUri"].as_str().unwrap().to_string()
    };
    let config = smart_configuration(&server, "/.well-known/smart-configuration").await;
    for (name, field) in [
        ("authorize", "authorization_endpoint"),
        ("token", "token_endpoint"),
        ("register", "registration_endpoint"),
        ("manage", "management_endpoint"),
        ("introspect", "introspection_endpoint"),
        ("revoke", "revocation_endpoint"),
    ] {
        let value = uri(name);
        assert!(
            value.starts_with(&format!("{}/", server.base)),
            "{name}: {value}"
        );
        assert_eq!(
            config[field],
            value.as_str(),
            "{name} disagrees with {field}"
        );
    }
}

#[tokio::test]
async fn every_search_parameter_the_statement_lists_is_understood() {
    let server = start().await;
    let statement = server.get(&server.fhir("/metadata")).await.json();
    let resources = statement["rest"][0]["resource"].as_array().unwrap();
    assert!(resources.len() >= 8, "the contract lists eight types");
    for resource in resources {
        let resource_type = resource["type"].as_str().unwrap();
        let interactions: Vec<&str> = resource["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap())
            .collect();
        assert!(interactions.contains(&"read") && interactions.contains(&"search-type"));
        for param in resource["searchParam"].as_array().into_iter().flatten() {
            let name = param["name"].as_str().unwrap();
            let value = match param["type"].as_str().unwrap() {
                "date" => "ge2000",
                "reference" => DANIEL_PATIENT,
                _ => "x",
            };
            let url = server.open_fhir(&format!("/{resource_type}?{name}={value}"));
            let reply = server.get(&url).await;
            assert_eq!(
                reply.status, 200,
                "{url} is listed but refused: {}",
                reply.text
            );
        }
    }
}

#[tokio::test]
async fn without_open_fhir_the_open_base_is_404_and_the_protected_one_still_works() {
    let server = start_with(Config {
        port: 0,
        open_fhir: false,
        ..Config::default()
    })
    .await;
    for path in [
        "/metadata",
        "/Patient/smart-1288992",
        "/Observation",
        "/Patient/smart-1288992/$everything",
    ] {
        let reply = server.get(&server.open_fhir(path)).await;
        assert_outcome(&reply, 404);
    }
    assert_eq!(server.get(&server.fhir("/metadata")).await.status, 200);
    let token = server.seed_token().await;
    let reply = server
        .get_bearer(&server.fhir("/Patient/smart-1288992"), &token)
        .await;
    assert_eq!(reply.status, 200);

    let default = start().await;
    let open = default
        .get(&default.open_fhir("/Patient/smart-1288992"))
        .await;
    assert_eq!(open.status, 200, "open FHIR is on by default");
}

#[tokio::test]
async fn a_public_url_is_what_discovery_and_paging_links_advertise() {
    let server = start_with(Config {
        port: 0,
        public_url: Some("https://smart.example.org/".into()),
        ..Config::default()
    })
    .await;
    assert_eq!(server.base, "https://smart.example.org");
    let local = format!("http://{}", server.addr);
    let config = server
        .get(&format!("{local}/.well-known/smart-configuration"))
        .await
        .json();
    assert_eq!(
        config["token_endpoint"],
        "https://smart.example.org/oauth/token"
    );
    let bundle = server
        .get(&format!("{local}/api/open-fhir/Observation?_count=2"))
        .await
        .json();
    let next = bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next");
    let next = next.expect("a next link")["url"].as_str().unwrap();
    assert!(
        next.starts_with("https://smart.example.org/api/open-fhir/Observation?"),
        "{next}"
    );
}
