//! The seed notebook's first part, replayed cell by cell: register a client, mint and inspect
//! debug tokens, and read the seed's Patient with and without the token.

use crate::common::*;
use serde_json::{json, Value};

fn assert_uuid_v4(value: &Value, field: &str) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string"));
    let uuid = uuid::Uuid::parse_str(text).unwrap_or_else(|e| panic!("{field} {text:?}: {e}"));
    assert_eq!(
        uuid.get_version_num(),
        4,
        "{field} {text:?} is not a UUIDv4"
    );
    assert_eq!(uuid.hyphenated().to_string(), text, "{field} is canonical");
}

/// Assert |actual - expected| <= slack seconds.
fn assert_near(actual: i64, expected: i64, slack: i64, what: &str) {
    assert!(
        (actual - expected).abs() <= slack,
        "{what}: {actual} is not within {slack}s of {expected}"
    );
}

#[tokio::test]
async fn registering_the_seed_client_returns_201_and_every_field_the_seed_shows() {
    let server = start().await;
    let before = now();
    let reply = server
        .post_json(
            "/oauth/register",
            &json!({
                "client_name": "SMART Test Client",
                "redirect_uris": [SEED_REDIRECT],
                "scope": SEED_SCOPE,
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"));
    let client = reply.json();
    assert_uuid_v4(&client["client_id"], "client_id");
    assert_uuid_v4(&client["client_secret"], "client_secret");
    assert_ne!(client["client_id"], client["client_secret"]);
    assert_eq!(client["client_secret_expires_at"], 0);
    assert_eq!(client["client_name"], "SMART Test Client");
    assert_eq!(client["redirect_uris"], json!([SEED_REDIRECT]));
    assert_eq!(client["scope"], SEED_SCOPE);
    assert_eq!(client["token_endpoint_auth_method"], "client_secret_basic");
    let issued = client["client_id_issued_at"].as_i64().expect("an integer");
    assert!(
        (before - 1..=now() + 1).contains(&issued),
        "client_id_issued_at {issued} is not now"
    );

    let second = server.register(SEED_SCOPE).await;
    assert_ne!(second["client_id"], client["client_id"], "ids are fresh");
    assert_ne!(second["client_secret"], client["client_secret"]);
}

#[tokio::test]
async fn the_debug_token_endpoint_returns_an_access_and_a_refresh_token() {
    let server = start().await;
    let client = server.register(SEED_SCOPE).await;
    let reply = server
        .debug_token(&json!({
            "client_id": client["client_id"],
            "username": DANIEL,
            "patient_id": DANIEL_PATIENT,
        }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let tokens = reply.json();
    let access = tokens["access_token"].as_str().expect("access_token");
    let refresh = tokens["refresh_token"].as_str().expect("refresh_token");
    assert!(access.len() >= 32 && refresh.len() >= 32, "{tokens}");
    assert_ne!(access, refresh);
}

#[tokio::test]
async fn introspecting_a_token_shows_every_seed_field_with_an_hour_and_a_year() {
    let server = start().await;
    let client = server.register(SEED_SCOPE).await;
    let client_id = client["client_id"].as_str().unwrap();
    let minted_at = now();
    let tokens = server.mint(client_id, DANIEL, DANIEL_PATIENT).await;

    let reply = server.introspect(&tokens.access).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let info = reply.json();
    assert_eq!(info["access_token"], tokens.access.as_str());
    // Only hashes are stored: the other token of the pair cannot be shown.
    assert_eq!(info["refresh_token"], Value::Null);
    assert_eq!(info["client_id"], client_id);
    assert_eq!(info["username"], DANIEL);
    assert_eq!(info["patient"], DANIEL_PATIENT);
    assert_eq!(info["scope"], SEED_SCOPE);
    assert_eq!(info["security_labels"], json!([]));
    assert_eq!(info["token_type"], "Bearer");
    assert_eq!(info["active"], true);
    for field in ["access_expires", "approval_expires"] {
        let text = info[field].as_str().unwrap();
        assert!(
            text.ends_with(" GMT") && text.len() == 29,
            "{field} {text:?}"
        );
    }
    assert_near(
        http_date(&info["access_expires"]),
        minted_at + 3600,
        3,
        "access_expires",
    );
    assert_near(
        http_date(&info["approval_expires"]),
        minted_at + 365 * 24 * 3600,
        3,
        "approval_expires",
    );

    // "can be access or refresh token": both name the same pair, and each shows only
    // itself (the seed's shape, with the other field null).
    let by_refresh = server.introspect(&tokens.refresh).await;
    assert_eq!(by_refresh.status, 200, "{}", by_refresh.text);
    let mut expected = info.clone();
    expected["access_token"] = Value::Null;
    expected["refresh_token"] = json!(tokens.refresh);
    assert_eq!(by_refresh.json(), expected);
}

#[tokio::test]
async fn custom_lifetimes_of_three_hours_and_180_days_are_honoured() {
    let server = start().await;
    let client = server.register(SEED_SCOPE).await;
    let started = now();
    // Python's time() is a float; the seed sends time() + 180*24*60*60 as is.
    let approval_expires = started as f64 + 0.734 + 180.0 * 24.0 * 60.0 * 60.0;
    let tokens = server
        .mint_with(&json!({
            "client_id": client["client_id"],
            "username": DANIEL,
            "patient_id": DANIEL_PATIENT,
            "access_lifetime": 3 * 60 * 60,
            "approval_expires": approval_expires,
        }))
        .await;
    let info = server.introspect(&tokens.access).await.json();
    assert_near(
        http_date(&info["access_expires"]),
        started + 3 * 3600,
        3,
        "access_expires",
    );
    assert_near(
        http_date(&info["approval_expires"]),
        approval_expires.floor() as i64,
        1,
        "approval_expires",
    );
    assert_eq!(info["active"], true);
    assert_eq!(info["scope"], SEED_SCOPE, "scope defaults to the client's");
}

#[tokio::test]
async fn the_api_page_example_keeps_its_scope_order_and_spells_its_dates_like_the_seed() {
    let server = start().await;
    let client = server.register(SEED_SCOPE).await;
    // The API page's curl example: an integer approval_expires (in 2018, so long past).
    let tokens = server
        .mint_with(&json!({
            "client_id": client["client_id"],
            "access_lifetime": 3600,
            "approval_expires": 1528376907,
            "scope": "patient/*.read launch/patient offline_access",
            "username": DANIEL,
            "patient_id": DANIEL_PATIENT,
        }))
        .await;
    let info = server.introspect(&tokens.access).await.json();
    assert_eq!(info["approval_expires"], "Thu, 07 Jun 2018 13:08:27 GMT");
    assert_eq!(
        info["scope"],
        "patient/*.read launch/patient offline_access"
    );
    assert_eq!(info["active"], false, "the approval has expired");
}

#[tokio::test]
async fn user_name_is_accepted_in_place_of_username() {
    let server = start().await;
    let client = server.register(SEED_SCOPE).await;
    let tokens = server
        .mint_with(&json!({
            "client_id": client["client_id"],
            "user_name": JOSEPH,
            "patient_id": JOSEPH_PATIENT,
        }))
        .await;
    let info = server.introspect(&tokens.access).await.json();
    assert_eq!(info["username"], JOSEPH);
    assert_eq!(info["patient"], JOSEPH_PATIENT);
}

#[tokio::test]
async fn the_fhir_api_answers_401_with_a_bearer_challenge_without_the_token() {
    let server = start().await;
    let reply = server.get(&server.fhir("/Patient/smart-1288992")).await;
    assert_outcome(&reply, 401);
    let challenge = reply.header("www-authenticate").expect("WWW-Authenticate");
    assert!(challenge.starts_with("Bearer"), "{challenge:?}");
}

/// The Patient resource as the seed's cell 7 prints it (meta and name are checked apart).
fn seed_patient_fields() -> Value {
    json!({
        "active": true,
        "address": [{
            "city": "Tulsa",
            "country": "USA",
            "line": ["1 Hill AveApt 14"],
            "postalCode": "74117",
            "state": "OK",
            "use": "home"
        }],
        "birthDate": "1925-12-23",
        "gender": "male",
        "id": "smart-1288992",
        "identifier": [{
            "system": "http://hospital.smarthealthit.org",
            "type": {
                "coding": [{
                    "code": "MR",
                    "display": "Medical record number",
                    "system": "http://hl7.org/fhir/v2/0203"
                }],
                "text": "Medical record number"
            },
            "use": "usual",
            "value": "1288992"
        }],
    })
}

#[tokio::test]
async fn with_the_token_the_seed_patient_comes_back_exactly() {
    let server = start().await;
    let token = server.seed_token().await;
    let reply = server
        .get_bearer(&server.fhir("/Patient/smart-1288992"), &token)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_fhir_json(&reply);
    let patient = reply.json();
    assert_eq!(patient["resourceType"], "Patient");
    for (field, expected) in seed_patient_fields().as_object().unwrap() {
        assert_eq!(&patient[field], expected, "Patient.{field}");
    }
    assert_eq!(
        patient["meta"]["lastUpdated"],
        "2018-07-05T16:39:38.468+00:00"
    );
    assert_eq!(
        patient["meta"]["security"][0],
        json!({"code": "patient", "system": "http://smarthealthit.org/security/categories"})
    );
    assert_eq!(
        patient["meta"]["security"][1]["code"],
        "Patient/smart-1288992"
    );
    assert_eq!(patient["name"][0]["family"], "Adams");
    assert_eq!(patient["name"][0]["given"][0], "Daniel");
}

#[tokio::test]
async fn open_fhir_serves_the_same_patient_without_a_token() {
    let server = start().await;
    let open = server
        .get(&server.open_fhir("/Patient/smart-1288992"))
        .await;
    assert_eq!(open.status, 200, "{}", open.text);
    assert_fhir_json(&open);
    let token = server.seed_token().await;
    let protected = server
        .get_bearer(&server.fhir("/Patient/smart-1288992"), &token)
        .await;
    assert_eq!(open.json(), protected.json());
}

#[tokio::test]
async fn a_stopped_server_no_longer_answers() {
    let server = start().await;
    let url = server.fhir("/metadata");
    assert_eq!(server.get(&url).await.status, 200);
    let http = server.http.clone();
    server.stop().await;
    assert!(
        http.get(&url).send().await.is_err(),
        "still answering after shutdown"
    );
}
