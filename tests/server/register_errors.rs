//! POST /oauth/register (RFC 7591): every refusal, each with its error code and a reason a
//! person can act on, and the optional metadata that is accepted.

use crate::common::*;
use serde_json::{json, Value};

/// The seed's registration body with one field replaced (or removed, for `Value::Null`
/// given as `None`).
fn seed_body_with(field: &str, value: Option<Value>) -> Value {
    let mut body = json!({
        "client_name": "SMART Test Client",
        "redirect_uris": [SEED_REDIRECT],
        "scope": SEED_SCOPE,
    });
    match value {
        Some(v) => body[field] = v,
        None => {
            body.as_object_mut().unwrap().remove(field);
        }
    }
    body
}

async fn assert_refused(server: &TestServer, cases: &[(&str, Value)], code: &str) {
    for (label, body) in cases {
        let reply = server.post_json("/oauth/register", body).await;
        assert_eq!(reply.status, 400, "{label}: {}", reply.text);
        let json = reply.json();
        assert_eq!(json["error"], code, "{label}: {}", reply.text);
        let description = json["error_description"].as_str().unwrap_or_default();
        assert!(!description.trim().is_empty(), "{label}: no description");
        assert!(
            json.get("client_id").is_none(),
            "{label}: a client was issued"
        );
    }
}

#[tokio::test]
async fn bad_redirect_uris_are_invalid_redirect_uri() {
    let server = start().await;
    let bad = |uri: &str| seed_body_with("redirect_uris", Some(json!([uri])));
    let cases = [
        ("missing", seed_body_with("redirect_uris", None)),
        ("null", seed_body_with("redirect_uris", Some(Value::Null))),
        (
            "empty list",
            seed_body_with("redirect_uris", Some(json!([]))),
        ),
        ("no scheme", bad("localhost/authorized")),
        ("no scheme, host first", bad("www.example.org/cb")),
        ("relative", bad("/authorized")),
        ("empty string", bad("")),
        ("fragment", bad("http://localhost:9001/authorized#frag")),
        ("empty fragment", bad("http://localhost:9001/authorized#")),
        ("javascript", bad("javascript:alert(1)")),
        ("data", bad("data:text/html,<script>alert(1)</script>")),
        ("mailto", bad("mailto:someone@example.org")),
        ("out of band", bad("urn:ietf:wg:oauth:2.0:oob")),
        (
            "credentials",
            bad("http://user:pass@localhost:9001/authorized"),
        ),
        ("no host", bad("http://")),
        ("leading space", bad(" http://localhost:9001/authorized")),
        ("trailing space", bad("http://localhost:9001/authorized ")),
        ("inner space", bad("http://localhost:9001/auth orized")),
        ("newline", bad("http://localhost:9001/auth\norized")),
        ("tab", bad("http://localhost:9001/auth\torized")),
        ("backslashes", bad("http:\\\\localhost:9001\\authorized")),
        ("non-ASCII", bad("http://localhost:9001/autoris\u{e9}")),
        ("angle brackets", bad("http://localhost:9001/<script>")),
        (
            "one good, one bad",
            seed_body_with("redirect_uris", Some(json!([SEED_REDIRECT, "/relative"]))),
        ),
    ];
    assert_refused(&server, &cases, "invalid_redirect_uri").await;
}

/// A host and port written without `http://` (which a URL parser reads as a scheme, or
/// not at all) is refused with the fix spelled out, the URI to register included; a
/// private-use scheme (RFC 8252) still registers.
#[tokio::test]
async fn a_redirect_uri_without_http_says_to_add_it() {
    let server = start().await;
    for (uri, fixed) in [
        (
            "localhost:9001/authorized",
            "http://localhost:9001/authorized",
        ),
        ("localhost:9001", "http://localhost:9001"),
        ("127.0.0.1:9000/x", "http://127.0.0.1:9000/x"),
        ("example.com:8080/cb", "http://example.com:8080/cb"),
        ("app.example.org:443", "http://app.example.org:443"),
        ("[::1]:9001/authorized", "http://[::1]:9001/authorized"),
        ("localhost/authorized", "http://localhost/authorized"),
        ("www.example.org/cb?x=1", "http://www.example.org/cb?x=1"),
    ] {
        let body = seed_body_with("redirect_uris", Some(json!([uri])));
        let reply = server.post_json("/oauth/register", &body).await;
        assert_oauth_error(&reply, 400, "invalid_redirect_uri");
        let why = reply.json()["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(why.contains("add http:// or https://"), "{uri}: {why}");
        assert!(why.contains(&format!("{fixed:?}")), "{uri}: {why}");
    }
    for uri in ["com.example.app:/callback", "com.example.app:callback"] {
        let body = seed_body_with("redirect_uris", Some(json!([uri])));
        let reply = server.post_json("/oauth/register", &body).await;
        assert_eq!(reply.status, 201, "{uri}: {}", reply.text);
    }
}

#[tokio::test]
async fn wrongly_typed_metadata_is_invalid_client_metadata() {
    let server = start().await;
    let with = |field: &str, value: Value| seed_body_with(field, Some(value));
    let cases = [
        ("client_name number", with("client_name", json!(42))),
        (
            "client_name list",
            with("client_name", json!(["SMART Test Client"])),
        ),
        ("client_name empty", with("client_name", json!("  "))),
        ("scope number", with("scope", json!(7))),
        ("scope list", with("scope", json!(["patient/*.read"]))),
        ("scope object", with("scope", json!({"patient": "*.read"}))),
        (
            "redirect_uris item number",
            with("redirect_uris", json!([1])),
        ),
        (
            "redirect_uris item null",
            with("redirect_uris", json!([null])),
        ),
        (
            "redirect_uris string",
            with("redirect_uris", json!(SEED_REDIRECT)),
        ),
        (
            "grant_types string",
            with("grant_types", json!("authorization_code")),
        ),
        ("grant_types item number", with("grant_types", json!([1]))),
        (
            "grant_types unsupported",
            with("grant_types", json!(["client_credentials"])),
        ),
        (
            "grant_types implicit",
            with("grant_types", json!(["implicit"])),
        ),
        (
            "response_types token",
            with("response_types", json!(["token"])),
        ),
        ("client_uri number", with("client_uri", json!(5))),
        ("contacts string", with("contacts", json!("me@example.org"))),
    ];
    assert_refused(&server, &cases, "invalid_client_metadata").await;
}

#[tokio::test]
async fn unknown_auth_methods_are_invalid_client_metadata() {
    let server = start().await;
    let method = |m: Value| seed_body_with("token_endpoint_auth_method", Some(m));
    let cases = [
        ("private_key_jwt", method(json!("private_key_jwt"))),
        ("client_secret_jwt", method(json!("client_secret_jwt"))),
        ("made up", method(json!("trust_me"))),
        ("wrong case", method(json!("NONE"))),
        ("number", method(json!(1))),
    ];
    assert_refused(&server, &cases, "invalid_client_metadata").await;
}

#[tokio::test]
async fn bad_scopes_are_invalid_client_metadata() {
    let server = start().await;
    let scope = |s: &str| seed_body_with("scope", Some(json!(s)));
    let cases = [
        ("double quote", scope("patient/*.read \"offline_access\"")),
        ("backslash", scope("patient/*.read a\\b")),
        ("non-ASCII", scope("patient/*.read caf\u{e9}")),
        ("control character", scope("patient/*.read\u{7}")),
        ("tab separated", scope("patient/*.read\toffline_access")),
        ("empty", scope("")),
        ("only spaces", scope("   ")),
        ("lower-case type", scope("patient/observation.read")),
        ("no action", scope("patient/Observation")),
        ("v2 letters out of order", scope("patient/Observation.sr")),
        ("empty v2 restriction", scope("patient/Observation.rs?")),
        ("system scope", scope("system/*.read")),
        (
            "system scope among others",
            scope("launch/patient system/Patient.rs"),
        ),
    ];
    assert_refused(&server, &cases, "invalid_client_metadata").await;
}

#[tokio::test]
async fn bodies_that_are_not_a_json_object_are_invalid_request() {
    let server = start().await;
    let cases: [(&str, &str, &[u8]); 7] = [
        (
            "form encoded",
            "application/x-www-form-urlencoded",
            b"client_name=x&redirect_uris=http://localhost:9001/authorized",
        ),
        (
            "truncated JSON",
            "application/json",
            b"{\"client_name\": \"x\",",
        ),
        (
            "JSON array",
            "application/json",
            b"[{\"client_name\": \"x\"}]",
        ),
        ("JSON string", "application/json", b"\"client_name\""),
        ("JSON null", "application/json", b"null"),
        ("empty body", "application/json", b""),
        (
            "not UTF-8",
            "application/json",
            b"{\"client_name\": \"\xff\xfe\"}",
        ),
    ];
    for (label, content_type, body) in cases {
        let reply = server
            .post_bytes("/oauth/register", content_type, body.to_vec())
            .await;
        // A body that is not declared JSON is refused before it is read.
        let status = if content_type == "application/json" {
            400
        } else {
            415
        };
        assert_oauth_error(&reply, status, "invalid_request");
        assert!(reply.json().get("client_id").is_none(), "{label}");
    }
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_with_a_json_error() {
    let server = start().await;
    let padding = "x".repeat(65 * 1024);
    let body = json!({
        "client_name": padding,
        "redirect_uris": [SEED_REDIRECT],
        "scope": SEED_SCOPE,
    });
    let reply = server.post_json("/oauth/register", &body).await;
    assert_oauth_error(&reply, 413, "invalid_request");

    // Just under the limit is an ordinary registration (the padding, unknown metadata,
    // is dropped; a 60 KiB client_name would pass its own limit).
    let padding = "y".repeat(60 * 1024);
    let reply = server
        .post_json(
            "/oauth/register",
            &seed_body_with("x_padding", Some(json!(padding))),
        )
        .await;
    assert_eq!(
        reply.status,
        201,
        "{}",
        &reply.text[..200.min(reply.text.len())]
    );
}

#[tokio::test]
async fn a_public_client_gets_no_secret() {
    let server = start().await;
    let body = seed_body_with("token_endpoint_auth_method", Some(json!("none")));
    let reply = server.post_json("/oauth/register", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let client = reply.json();
    assert_eq!(client["token_endpoint_auth_method"], "none");
    assert!(client.get("client_secret").is_none(), "{client}");
    assert!(
        client.get("client_secret_expires_at").is_none(),
        "no secret, so no expiry of one (RFC 7591 §3.2.1): {client}"
    );
    assert!(client["client_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
}

#[tokio::test]
async fn client_secret_post_is_accepted_and_echoed() {
    let server = start().await;
    let body = seed_body_with(
        "token_endpoint_auth_method",
        Some(json!("client_secret_post")),
    );
    let reply = server.post_json("/oauth/register", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let client = reply.json();
    assert_eq!(client["token_endpoint_auth_method"], "client_secret_post");
    assert!(client["client_secret"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
}

#[tokio::test]
async fn client_name_defaults_to_the_generated_client_id() {
    // The API page: client_name "[defaults to generated client ID]".
    let server = start().await;
    let reply = server
        .post_json("/oauth/register", &seed_body_with("client_name", None))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let client = reply.json();
    assert_eq!(client["client_name"], client["client_id"]);
}

#[tokio::test]
async fn optional_rfc7591_metadata_is_echoed_and_unknown_metadata_ignored() {
    let server = start().await;
    let mut body = seed_body_with("grant_types", Some(json!(["authorization_code"])));
    body["client_uri"] = json!("https://app.example.org");
    body["contacts"] = json!(["ops@example.org"]);
    body["x_made_up"] = json!({"anything": [1, 2]});
    body["redirect_uris"] = json!([SEED_REDIRECT, "com.example.app:/callback"]);
    let reply = server.post_json("/oauth/register", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let client = reply.json();
    assert_eq!(client["client_uri"], "https://app.example.org");
    assert_eq!(client["contacts"], json!(["ops@example.org"]));
    assert_eq!(client["grant_types"], json!(["authorization_code"]));
    assert_eq!(
        client["redirect_uris"],
        json!([SEED_REDIRECT, "com.example.app:/callback"]),
        "private-use schemes (RFC 8252) are redirect URIs too"
    );
    assert!(
        client.get("x_made_up").is_none(),
        "unknown metadata is not echoed"
    );
}

#[tokio::test]
async fn a_refused_registration_does_not_spoil_the_next_one() {
    let server = start().await;
    let refused = server
        .post_json("/oauth/register", &seed_body_with("scope", Some(json!(7))))
        .await;
    assert_eq!(refused.status, 400);
    let client = server.register(SEED_SCOPE).await;
    let tokens = server
        .mint(
            client["client_id"].as_str().unwrap(),
            DANIEL,
            DANIEL_PATIENT,
        )
        .await;
    assert_eq!(
        server.introspect(&tokens.access).await.json()["active"],
        true
    );
}

/// With `max_idle_clients` 5, eight more registrations drop the three oldest that never got
/// an approval; the approved client, registered first, stays.
#[tokio::test]
async fn registrations_beyond_the_idle_cap_drop_the_oldest_idle_client() {
    let server = start_with(smartnb::server::Config {
        port: 0,
        max_idle_clients: 5,
        ..smartnb::server::Config::default()
    })
    .await;
    let approved = server.register(SEED_SCOPE).await["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let tokens = server.mint(&approved, DANIEL, DANIEL_PATIENT).await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(
            server.register(SEED_SCOPE).await["client_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let known = |client_id: String| {
        let server = &server;
        async move {
            let body =
                json!({"client_id": client_id, "username": DANIEL, "patient_id": DANIEL_PATIENT});
            server.debug_token(&body).await.status == 200
        }
    };
    for gone in &idle[..3] {
        assert!(
            !known(gone.clone()).await,
            "{gone} should have been dropped"
        );
    }
    for kept in idle[3..].iter().chain([&approved]) {
        assert!(known(kept.clone()).await, "{kept} should be kept");
    }
    let patient = server
        .get_bearer(
            &server.fhir(&format!("/Patient/{DANIEL_PATIENT}")),
            &tokens.access,
        )
        .await;
    assert_eq!(patient.status, 200, "{}", patient.text);
    server.stop().await;
}
