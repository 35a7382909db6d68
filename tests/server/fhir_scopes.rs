//! Scopes and token lifetimes through /api/fhir: v1 and v2 scopes narrow types, operations
//! and categories (403 for a type outside them, 404 for a resource); dead or malformed
//! credentials are 401 with a Bearer challenge.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn an_observation_only_scope_forbids_other_types_with_403() {
    let server = start().await;
    let own_obs = some_id_of(&server, "Observation", DANIEL_PATIENT).await;
    for scope in ["patient/Observation.read", "patient/Observation.rs"] {
        let token = server.daniel_token(SEED_SCOPE, scope).await;
        let read = server
            .get_bearer(&server.fhir(&format!("/Observation/{own_obs}")), &token)
            .await;
        assert_eq!(read.status, 200, "{scope}: {}", read.text);
        let (found, _) = server
            .search_all(&server.fhir("/Observation"), Some(&token))
            .await;
        assert!(!found.is_empty(), "{scope}");
        assert_only_patients(&found, &[DANIEL_PATIENT], scope);
        for path in [
            "/Patient/smart-1288992",
            "/Condition",
            "/Patient",
            "/Condition?patient=smart-1288992",
        ] {
            let reply = server.get_bearer(&server.fhir(path), &token).await;
            assert_eq!(assert_outcome(&reply, 403), "forbidden", "{scope} {path}");
        }
        let url = server.fhir("/Patient/smart-1288992/$everything?_count=500");
        let (everything, _) = server.search_all(&url, Some(&token)).await;
        assert!(!everything.is_empty());
        assert!(
            everything
                .iter()
                .all(|r| r["resourceType"] == "Observation"),
            "{scope}: $everything returns types outside the scope"
        );
    }
}

#[tokio::test]
async fn v2_read_and_search_letters_are_enforced_separately() {
    let server = start().await;
    let own_obs = some_id_of(&server, "Observation", DANIEL_PATIENT).await;
    let read_path = format!("/Observation/{own_obs}");
    let read_only = server
        .daniel_token(SEED_SCOPE, "patient/Observation.r")
        .await;
    let read = server
        .get_bearer(&server.fhir(&read_path), &read_only)
        .await;
    assert_eq!(read.status, 200, "{}", read.text);
    let search = server
        .get_bearer(&server.fhir("/Observation"), &read_only)
        .await;
    assert_outcome(&search, 403);

    let search_only = server
        .daniel_token(SEED_SCOPE, "patient/Observation.s")
        .await;
    let read = server
        .get_bearer(&server.fhir(&read_path), &search_only)
        .await;
    assert_outcome(&read, 403);
    let search = server
        .get_bearer(&server.fhir("/Observation"), &search_only)
        .await;
    assert_eq!(search.status, 200, "{}", search.text);
}

#[tokio::test]
async fn a_category_restricted_scope_sees_only_that_category() {
    let server = start().await;
    let labs = open_search(
        &server,
        "/Observation?patient=smart-1288992&category=laboratory",
    )
    .await;
    let vitals = open_search(
        &server,
        "/Observation?patient=smart-1288992&category=vital-signs",
    )
    .await;
    assert!(!labs.is_empty() && !vitals.is_empty());
    for scope in [
        "patient/Observation.rs?category=laboratory",
        "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
    ] {
        let token = server.daniel_token("launch/patient patient/*.read", scope).await;
        let (found, _) = server
            .search_all(&server.fhir("/Observation?_count=5"), Some(&token))
            .await;
        let mut got: Vec<String> = found.iter().map(key).collect();
        let mut want: Vec<String> = labs.iter().map(key).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{scope}");
        let (vital_search, _) = server
            .search_all(&server.fhir("/Observation?category=vital-signs"), Some(&token))
            .await;
        assert!(vital_search.is_empty(), "{scope}");
        let vital_id = vitals[0]["id"].as_str().unwrap();
        assert_hidden(&server, &format!("/Observation/{vital_id}"), &token).await;
        let lab_id = labs[0]["id"].as_str().unwrap();
        let lab = server
            .get_bearer(&server.fhir(&format!("/Observation/{lab_id}")), &token)
            .await;
        assert_eq!(lab.status, 200, "{scope}: {}", lab.text);
        let condition = server.get_bearer(&server.fhir("/Condition"), &token).await;
        assert_outcome(&condition, 403);
    }
}

#[tokio::test]
async fn an_expired_access_token_is_401_invalid_token() {
    let server = start().await;
    let client = server.register(SEED_SCOPE).await;
    let tokens = server
        .mint_with(&json!({
            "client_id": client["client_id"],
            "username": DANIEL,
            "patient_id": DANIEL_PATIENT,
            "access_lifetime": 0,
        }))
        .await;
    assert_eq!(
        server.introspect(&tokens.access).await.json()["active"],
        false
    );
    let reply = server
        .get_bearer(&server.fhir("/Patient/smart-1288992"), &tokens.access)
        .await;
    assert_outcome(&reply, 401);
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer"), "{challenge:?}");
    assert!(
        challenge.contains("error=\"invalid_token\""),
        "{challenge:?}"
    );
}

#[tokio::test]
async fn an_expired_approval_is_401_even_with_a_fresh_access_token() {
    let server = start().await;
    let client = server.register(SEED_SCOPE).await;
    let tokens = server
        .mint_with(&json!({
            "client_id": client["client_id"],
            "username": DANIEL,
            "patient_id": DANIEL_PATIENT,
            "access_lifetime": 3600,
            "approval_expires": now() - 10,
        }))
        .await;
    assert_eq!(
        server.introspect(&tokens.access).await.json()["active"],
        false
    );
    let reply = server
        .get_bearer(&server.fhir("/Observation"), &tokens.access)
        .await;
    assert_outcome(&reply, 401);
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(challenge.contains("invalid_token"), "{challenge:?}");
}

#[tokio::test]
async fn malformed_or_wrong_authorization_headers_are_401() {
    let server = start().await;
    let client = server.register(SEED_SCOPE).await;
    let tokens = server
        .mint(
            client["client_id"].as_str().unwrap(),
            DANIEL,
            DANIEL_PATIENT,
        )
        .await;
    let url = server.fhir("/Patient/smart-1288992");
    let headers: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"Bearer".to_vec(),
        b"Bearer ".to_vec(),
        b"Bearer    ".to_vec(),
        format!("Basic {}", tokens.access).into_bytes(),
        format!("Token {}", tokens.access).into_bytes(),
        format!("Bearer{}", tokens.access).into_bytes(),
        format!("Bearer {}", tokens.refresh).into_bytes(),
        format!("Bearer {} extra", tokens.access).into_bytes(),
        format!("Bearer {}x", tokens.access).into_bytes(),
        b"Bearer not-a-token".to_vec(),
        b"Bearer \xff\xfe".to_vec(),
    ];
    for value in headers {
        let header = reqwest::header::HeaderValue::from_bytes(&value).expect("a header value");
        let response = server
            .http
            .get(&url)
            .header("authorization", header)
            .send()
            .await
            .expect("answered");
        let reply = read(response).await;
        assert_outcome(&reply, 401);
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer"),
            "{:?}: {challenge:?}",
            String::from_utf8_lossy(&value)
        );
    }
    // The scheme name is case-insensitive (RFC 7235 §2.1).
    let lower = server
        .http
        .get(&url)
        .header("authorization", format!("bearer {}", tokens.access))
        .send()
        .await
        .expect("answered");
    assert_eq!(lower.status(), 200);
}
