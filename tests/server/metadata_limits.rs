//! Issue 13 items 7 (first half) and 13 (redirect URI schemes): every metadata field a
//! registration keeps or echoes has a limit, refused with `invalid_client_metadata` (or
//! `invalid_redirect_uri`) naming the field and the limit; unknown metadata is dropped;
//! redirect URIs are http, https or a reverse-domain private-use scheme, nothing else.

use crate::common::*;
use serde_json::{json, Value};
use smartnb::server::oauth::limits::{
    MAX_CLIENT_NAME, MAX_CONTACTS, MAX_REDIRECT_URIS, MAX_SOFTWARE_FIELD, MAX_URI, METADATA_URIS,
};

fn seed_body() -> Value {
    json!({
        "client_name": "SMART Test Client",
        "redirect_uris": [SEED_REDIRECT],
        "scope": SEED_SCOPE,
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut body = seed_body();
    body[field] = value;
    body
}

/// A URI of exactly `len` bytes.
fn uri_of(len: usize) -> String {
    let head = "https://app.example.org/";
    format!("{head}{}", "u".repeat(len - head.len()))
}

/// Refused with this code, and the description names the field and the limit.
async fn assert_refused_naming(
    server: &TestServer,
    label: &str,
    body: &Value,
    code: &str,
    names: &[&str],
) {
    let reply = server.post_json("/oauth/register", body).await;
    assert_oauth_error(&reply, 400, code);
    let description = reply.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for name in names {
        assert!(description.contains(name), "{label}: {description}");
    }
    assert!(description.len() < 512, "{label}: {description}");
}

#[tokio::test]
async fn each_field_over_its_limit_is_refused_naming_the_field_and_the_limit() {
    let server = start().await;
    assert_everything_at_its_limit_is_accepted(&server).await;
    let cases: Vec<(String, Value, Vec<String>)> = vec![
        (
            "client_name".into(),
            with("client_name", json!("n".repeat(MAX_CLIENT_NAME + 1))),
            vec!["client_name".into(), MAX_CLIENT_NAME.to_string()],
        ),
        (
            "software_id".into(),
            with("software_id", json!("i".repeat(MAX_SOFTWARE_FIELD + 1))),
            vec!["software_id".into(), MAX_SOFTWARE_FIELD.to_string()],
        ),
        (
            "software_version".into(),
            with(
                "software_version",
                json!("1".repeat(MAX_SOFTWARE_FIELD + 1)),
            ),
            vec!["software_version".into(), MAX_SOFTWARE_FIELD.to_string()],
        ),
        (
            "contacts count".into(),
            with(
                "contacts",
                json!(vec!["ops@example.org"; MAX_CONTACTS.0 + 1]),
            ),
            vec!["contacts".into(), MAX_CONTACTS.0.to_string()],
        ),
        (
            "one long contact".into(),
            with(
                "contacts",
                json!([format!("{}@example.org", "o".repeat(MAX_CONTACTS.1))]),
            ),
            vec!["contact".into(), MAX_CONTACTS.1.to_string()],
        ),
        (
            "101 scopes".into(),
            with(
                "scope",
                json!((0..101)
                    .map(|i| format!("s{i}"))
                    .collect::<Vec<_>>()
                    .join(" ")),
            ),
            vec!["scope".into(), "100".into()],
        ),
        (
            "one long scope token".into(),
            with(
                "scope",
                json!(format!("launch/patient x{}", "y".repeat(300))),
            ),
            vec!["scope".into(), "256".into()],
        ),
    ];
    let uri_cases = METADATA_URIS.iter().map(|field| {
        (
            field.to_string(),
            with(field, json!(uri_of(MAX_URI + 1))),
            vec![field.to_string(), MAX_URI.to_string()],
        )
    });
    for (label, body, names) in cases.into_iter().chain(uri_cases) {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_refused_naming(&server, &label, &body, "invalid_client_metadata", &names).await;
    }
    let redirect_cases = [
        (
            "one long redirect URI",
            with("redirect_uris", json!([uri_of(MAX_URI + 1)])),
        ),
        (
            "too many redirect URIs",
            with(
                "redirect_uris",
                json!((0..=MAX_REDIRECT_URIS)
                    .map(|i| format!("http://localhost:9001/cb{i}"))
                    .collect::<Vec<_>>()),
            ),
        ),
    ];
    for (label, body) in redirect_cases {
        let limit = if label.starts_with("one") {
            MAX_URI
        } else {
            MAX_REDIRECT_URIS
        };
        assert_refused_naming(
            &server,
            label,
            &body,
            "invalid_redirect_uri",
            &["redirect", &limit.to_string()],
        )
        .await;
    }
}

/// Every field at its limit at once: accepted, and what is kept stays small.
async fn assert_everything_at_its_limit_is_accepted(server: &TestServer) {
    let mut body = seed_body();
    body["client_name"] = json!("n".repeat(MAX_CLIENT_NAME));
    body["redirect_uris"] = json!((0..MAX_REDIRECT_URIS)
        .map(|i| format!("http://localhost:9001/{i}{}", "r".repeat(MAX_URI - 23)))
        .collect::<Vec<_>>());
    // jwks_uri is a private_key_jwt client's (backend_services.rs): not this one's.
    for field in METADATA_URIS.iter().filter(|f| **f != "jwks_uri") {
        body[field] = json!(uri_of(MAX_URI));
    }
    body["software_id"] = json!("i".repeat(MAX_SOFTWARE_FIELD));
    body["software_version"] = json!("v".repeat(MAX_SOFTWARE_FIELD));
    body["contacts"] = json!(vec!["c".repeat(MAX_CONTACTS.1); MAX_CONTACTS.0]);
    body["scope"] = json!((0..100)
        .map(|i| format!("patient/Observation.rs?category=c{i:0>4}"))
        .collect::<Vec<_>>()
        .join(" "));
    // Unknown metadata is dropped, however large (RFC 7591 §2 lets a server ignore it).
    body["x_padding"] = json!("p".repeat(20 * 1024));
    body["x_keys"] = json!({"keys": [{"n": "k".repeat(10 * 1024)}]});
    let reply = server.post_json("/oauth/register", &body).await;
    assert_eq!(
        reply.status,
        201,
        "{}",
        &reply.text[..300.min(reply.text.len())]
    );
    let client = reply.json();
    assert!(client.get("x_padding").is_none() && client.get("jwks").is_none());
    // What is echoed is what is kept: a registration at every limit is about 15 KiB.
    assert!(reply.text.len() < 16 * 1024, "{} bytes", reply.text.len());
}

#[tokio::test]
async fn repeated_grant_types_are_kept_once() {
    let server = start().await;
    let body = with("grant_types", json!(vec!["authorization_code"; 2000]));
    let reply = server.post_json("/oauth/register", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.json()["grant_types"], json!(["authorization_code"]));
}

#[tokio::test]
async fn redirect_uris_are_http_https_or_reverse_domain_private_use_schemes() {
    let server = start().await;
    for uri in [
        "about:blank",
        "blob:https://app.example.org/0d3e6d2a-3f0b-4b8e-9a1f-2f5e5c7d9b10",
        "view-source:http://localhost:9001/authorized",
        "filesystem:http://localhost:9001/temporary/cb",
        "chrome://settings/",
        "ws://localhost:9001/authorized",
        "wss://app.example.org/authorized",
        "ftp://app.example.org/authorized",
        "myapp://callback",
        "tel:+15555550100",
        "com..example:/callback",
        "com.example+app:/callback",
    ] {
        let reply = server
            .post_json("/oauth/register", &with("redirect_uris", json!([uri])))
            .await;
        assert_oauth_error(&reply, 400, "invalid_redirect_uri");
        let description = reply.json()["error_description"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            description.contains("https://") && description.contains("RFC 8252"),
            "{uri}: {description}"
        );
    }
    for uri in [
        "http://not-a-real-site",
        "http://not-a-real-site/elsewhere",
        "http://localhost:9001/authorized",
        "http://127.0.0.1:8080/cb",
        "http://[::1]:8080/cb",
        "https://app.example.org/cb?from=smart",
        "com.example.app:/oauth2redirect/example-provider",
        "org.example.research-app://callback",
    ] {
        let reply = server
            .post_json("/oauth/register", &with("redirect_uris", json!([uri])))
            .await;
        assert_eq!(reply.status, 201, "{uri}: {}", reply.text);
        assert_eq!(reply.json()["redirect_uris"], json!([uri]));
    }
}
