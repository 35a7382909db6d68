//! The seed's token debug endpoints refusing bad requests with the seed system's codes, and
//! changing nothing stored when they do.

use crate::common::*;
use serde_json::{json, Value};

/// A registered seed client and a valid debug-token body for it.
async fn client_and_body(server: &TestServer) -> (String, Value) {
    let client = server.register(SEED_SCOPE).await;
    let client_id = client["client_id"].as_str().unwrap().to_string();
    let body = json!({
        "client_id": client_id,
        "username": DANIEL,
        "patient_id": DANIEL_PATIENT,
    });
    (client_id, body)
}

/// `body` with `field` set to `value`, or removed when `value` is `None`.
fn with(body: &Value, field: &str, value: Option<Value>) -> Value {
    let mut body = body.clone();
    match value {
        Some(v) => body[field] = v,
        None => {
            body.as_object_mut().unwrap().remove(field);
        }
    }
    body
}

/// Every refusal the debug token endpoint has, as (label, body, code).
fn refusals(good: &Value) -> Vec<(&'static str, Value, &'static str)> {
    let set = |field: &str, value: Value| with(good, field, Some(value));
    vec![
        (
            "client_id missing",
            with(good, "client_id", None),
            "no_client",
        ),
        (
            "client_id unknown",
            set("client_id", json!("0f0e0d0c-0b0a-4908-8706-050403020100")),
            "no_client",
        ),
        ("client_id empty", set("client_id", json!("")), "no_client"),
        ("username missing", with(good, "username", None), "no_user"),
        (
            "username unknown",
            set("username", json!("nobody")),
            "no_user",
        ),
        (
            "username case",
            set("username", json!("Daniel-Adams")),
            "no_user",
        ),
        (
            "patient_id missing",
            with(good, "patient_id", None),
            "no_patient",
        ),
        (
            "patient_id unknown",
            set("patient_id", json!("smart-0000000")),
            "no_patient",
        ),
        (
            "joseph-ross asking for daniel's patient",
            with(
                &set("username", json!(JOSEPH)),
                "patient_id",
                Some(json!(DANIEL_PATIENT)),
            ),
            "no_patient_for_user",
        ),
        (
            "daniel-adams asking for joseph's patient",
            set("patient_id", json!(JOSEPH_PATIENT)),
            "no_patient_for_user",
        ),
        (
            "lifetime \"3h\"",
            set("access_lifetime", json!("3h")),
            "malformed_lifetime",
        ),
        (
            "lifetime -1",
            set("access_lifetime", json!(-1)),
            "malformed_lifetime",
        ),
        (
            "lifetime 1.5",
            set("access_lifetime", json!(1.5)),
            "malformed_lifetime",
        ),
        (
            "lifetime true",
            set("access_lifetime", json!(true)),
            "malformed_lifetime",
        ),
        (
            "lifetime 1e20",
            set("access_lifetime", json!(1e20)),
            "malformed_lifetime",
        ),
        (
            "lifetime list",
            set("access_lifetime", json!([3600])),
            "malformed_lifetime",
        ),
        (
            "expiration \"soon\"",
            set("approval_expires", json!("soon")),
            "malformed_expiration",
        ),
        (
            "expiration true",
            set("approval_expires", json!(true)),
            "malformed_expiration",
        ),
        (
            "expiration negative",
            set("approval_expires", json!(-5)),
            "malformed_expiration",
        ),
        (
            "expiration object",
            set("approval_expires", json!({})),
            "malformed_expiration",
        ),
        (
            "expiration past year 9999",
            set("approval_expires", json!(1e300)),
            "malformed_expiration",
        ),
        (
            "scope wider: user/",
            set("scope", json!("user/*.read")),
            "invalid_scope",
        ),
        (
            "scope wider: write",
            set("scope", json!("patient/*.write")),
            "invalid_scope",
        ),
        (
            "scope wider: openid",
            set("scope", json!("launch/patient openid")),
            "invalid_scope",
        ),
        (
            "scope malformed",
            set("scope", json!("patient/Observation")),
            "invalid_scope",
        ),
        ("scope number", set("scope", json!(3)), "invalid_scope"),
        ("scope empty", set("scope", json!("")), "invalid_scope"),
        (
            "unknown field",
            set("patient", json!(DANIEL_PATIENT)),
            "invalid_request",
        ),
        (
            "misspelt field",
            set("acess_lifetime", json!(60)),
            "invalid_request",
        ),
    ]
}

#[tokio::test]
async fn every_bad_debug_token_request_gets_its_seed_error_code() {
    let server = start().await;
    let (_, good) = client_and_body(&server).await;
    for (label, body, code) in refusals(&good) {
        let reply = server.debug_token(&body).await;
        assert_eq!(reply.status, 400, "{label}: {}", reply.text);
        let json = reply.json();
        assert_eq!(json["error"], code, "{label}: {}", reply.text);
        let description = json["error_description"].as_str().unwrap_or_default();
        assert!(
            !description.trim().is_empty(),
            "{label}: no error_description"
        );
        assert!(
            json.get("access_token").is_none(),
            "{label}: a token was issued"
        );
    }
}

#[tokio::test]
async fn debug_token_bodies_that_are_not_a_json_object_are_invalid_request() {
    let server = start().await;
    let (client_id, _) = client_and_body(&server).await;
    let form = format!("client_id={client_id}&username={DANIEL}&patient_id={DANIEL_PATIENT}");
    let cases: [(&str, Vec<u8>); 4] = [
        ("form encoded", form.into_bytes()),
        ("JSON array", br#"[{"username": "daniel-adams"}]"#.to_vec()),
        ("truncated", br#"{"client_id": "#.to_vec()),
        ("empty", Vec::new()),
    ];
    for (label, body) in cases {
        let reply = server
            .post_bytes("/oauth/debug/token", "application/json", body)
            .await;
        assert_eq!(reply.status, 400, "{label}: {}", reply.text);
        assert_oauth_error(&reply, 400, "invalid_request");
    }
}

#[tokio::test]
async fn refused_requests_change_nothing_stored() {
    let server = start().await;
    let (client_id, good) = client_and_body(&server).await;
    let tokens = server.mint_with(&good).await;
    let before_access = server.introspect(&tokens.access).await.json();
    let before_refresh = server.introspect(&tokens.refresh).await.json();
    let fhir_before = server
        .get_bearer(&server.fhir("/Patient/smart-1288992"), &tokens.access)
        .await;
    assert_eq!(fhir_before.status, 200);

    for (label, body, _) in refusals(&good) {
        let reply = server.debug_token(&body).await;
        assert_eq!(reply.status, 400, "{label}");
    }
    for junk in ["", "nope", &tokens.access[..8]] {
        server.introspect(junk).await;
    }

    assert_eq!(
        server.introspect(&tokens.access).await.json(),
        before_access
    );
    assert_eq!(
        server.introspect(&tokens.refresh).await.json(),
        before_refresh
    );
    let fhir_after = server
        .get_bearer(&server.fhir("/Patient/smart-1288992"), &tokens.access)
        .await;
    assert_eq!(fhir_after.text, fhir_before.text);

    // A second good request mints a new, independent pair; the first one still stands.
    let second = server.mint(&client_id, DANIEL, DANIEL_PATIENT).await;
    assert_ne!(second.access, tokens.access);
    assert_eq!(
        server.introspect(&tokens.access).await.json(),
        before_access
    );
}

#[tokio::test]
async fn tokens_for_other_users_of_the_same_client_do_not_replace_each_other() {
    // The seed system deleted every other user's tokens for the client when saving one.
    let server = start().await;
    let (client_id, _) = client_and_body(&server).await;
    let daniel = server.mint(&client_id, DANIEL, DANIEL_PATIENT).await;
    let joseph = server.mint(&client_id, JOSEPH, JOSEPH_PATIENT).await;
    let amy = server.mint(&client_id, DANIEL, AMY_PATIENT).await;
    for (tokens, patient) in [
        (&daniel, DANIEL_PATIENT),
        (&joseph, JOSEPH_PATIENT),
        (&amy, AMY_PATIENT),
    ] {
        let info = server.introspect(&tokens.access).await.json();
        assert_eq!(info["active"], true, "{patient}");
        assert_eq!(info["patient"], patient);
        let read = server
            .get_bearer(&server.fhir(&format!("/Patient/{patient}")), &tokens.access)
            .await;
        assert_eq!(read.status, 200, "{patient}: {}", read.text);
    }
}

#[tokio::test]
async fn a_narrower_scope_is_granted_as_asked() {
    let server = start().await;
    let (_, good) = client_and_body(&server).await;
    let body = with(
        &good,
        "scope",
        Some(json!("patient/Observation.rs launch/patient")),
    );
    let tokens = server.mint_with(&body).await;
    let info = server.introspect(&tokens.access).await.json();
    assert_eq!(info["scope"], "patient/Observation.rs launch/patient");
}

#[tokio::test]
async fn introspecting_an_unknown_token_is_no_token() {
    let server = start().await;
    let (_, good) = client_and_body(&server).await;
    let tokens = server.mint_with(&good).await;
    let almost = format!("{}x", tokens.access);
    for token in [
        "0f0e0d0c-0b0a-4908-8706-050403020100",
        almost.as_str(),
        "%zz",
        "\u{0}",
    ] {
        let reply = server.introspect(token).await;
        assert_oauth_error(&reply, 400, "no_token");
    }
}

#[tokio::test]
async fn introspecting_without_a_token_parameter_is_invalid_request() {
    let server = start().await;
    for query in ["", "?", "?token=", "?tok=abc", "?Token=abc"] {
        let reply = server
            .get(&server.url(&format!("/oauth/debug/introspect{query}")))
            .await;
        assert_oauth_error(&reply, 400, "invalid_request");
    }
}
