//! Who the user is, through /api/fhir: dr-carter's Practitioner (in no compartment, reached by
//! user/ scopes), Daniel's RelatedPerson in Amy's compartment, and the rule that a token with
//! `openid` and `fhirUser` (or `profile`) reads its own fhirUser resource by id, and nothing more.

use serde_json::json;

use crate::common::*;

const CARTER: &str = "dr-carter";
const CARTER_RECORD: &str = "/Practitioner/practitioner-carter";
const DANIEL_FOR_AMY: &str = "/RelatedPerson/related-daniel-for-amy";
const PATIENTS: [&str; 3] = [DANIEL_PATIENT, AMY_PATIENT, JOSEPH_PATIENT];
/// Everything a token below may ask for.
const CLIENT_SCOPE: &str =
    "openid fhirUser profile launch/patient patient/*.rs patient/*.read user/*.rs user/Practitioner.rs offline_access";

/// An access token for this user and patient with this scope, from a client that may ask
/// for all of them.
async fn token(server: &TestServer, username: &str, patient: &str, scope: &str) -> String {
    let client = server.register(CLIENT_SCOPE).await;
    let body = json!({
        "client_id": client["client_id"],
        "username": username,
        "patient_id": patient,
        "scope": scope,
    });
    server.mint_with(&body).await.access
}

async fn status(server: &TestServer, path: &str, token: &str) -> u16 {
    server.get_bearer(&server.fhir(path), token).await.status
}

/// The `Type/id` keys of a search through /api/fhir with this token.
async fn found(server: &TestServer, query: &str, token: &str) -> Vec<String> {
    let (resources, _) = server.search_all(&server.fhir(query), Some(token)).await;
    resources.iter().map(key).collect()
}

#[tokio::test]
async fn the_practitioner_with_user_scopes_reaches_all_three_patients_and_her_record() {
    let server = start().await;
    for scope in ["user/*.rs", "launch/patient user/*.rs openid fhirUser"] {
        let token = token(&server, CARTER, DANIEL_PATIENT, scope).await;
        for patient in PATIENTS {
            let reply = server
                .get_bearer(&server.fhir(&format!("/Patient/{patient}")), &token)
                .await;
            assert_eq!(reply.status, 200, "{scope} {patient}: {}", reply.text);
            let url = format!("/Patient/{patient}/$everything?_count=500");
            let (chart, _) = server.search_all(&server.fhir(&url), Some(&token)).await;
            let open = open_search(&server, &url).await;
            assert_eq!(keys(&chart), keys(&open), "{scope}: {patient}'s chart");
        }
        let (observations, _) = server
            .search_all(&server.fhir("/Observation?_count=500"), Some(&token))
            .await;
        assert_only_patients(&observations, &PATIENTS, scope);
        let everyone = open_search(&server, "/Observation?_count=500").await;
        assert_eq!(keys(&observations), keys(&everyone), "{scope}");
        assert_eq!(status(&server, CARTER_RECORD, &token).await, 200, "{scope}");
        assert_eq!(
            found(&server, "/Practitioner", &token).await,
            ["Practitioner/practitioner-carter"],
            "{scope}"
        );
    }
}

#[tokio::test]
async fn the_practitioner_with_patient_scopes_reaches_only_the_chosen_patient() {
    let server = start().await;
    let token = token(&server, CARTER, AMY_PATIENT, "launch/patient patient/*.rs").await;
    assert_eq!(status(&server, "/Patient/smart-1032702", &token).await, 200);
    for other in [DANIEL_PATIENT, JOSEPH_PATIENT] {
        assert_hidden(&server, &format!("/Patient/{other}"), &token).await;
        assert_hidden(&server, &format!("/Patient/{other}/$everything"), &token).await;
    }
    let (observations, _) = server
        .search_all(&server.fhir("/Observation?_count=500"), Some(&token))
        .await;
    assert!(!observations.is_empty());
    assert_only_patients(&observations, &[AMY_PATIENT], "patient/*.rs");
    // patient/ scopes never reach a Practitioner, her own included (no openid grant here).
    let read = server.get_bearer(&server.fhir(CARTER_RECORD), &token).await;
    let why = assert_outcome(&read, 403);
    assert_eq!(why, "forbidden");
    assert!(
        read.text.contains("user/Practitioner.read"),
        "{}",
        read.text
    );
    let search = server
        .get_bearer(&server.fhir("/Practitioner"), &token)
        .await;
    assert_outcome(&search, 403);
    assert_eq!(
        found(&server, "/RelatedPerson", &token).await,
        ["RelatedPerson/related-daniel-for-amy"],
        "Amy's chart holds her representative"
    );
}

#[tokio::test]
async fn the_identity_grant_reads_exactly_the_own_fhir_user_and_only_by_id() {
    let server = start().await;
    for scope in [
        "openid fhirUser",
        "openid profile",
        "openid fhirUser launch/patient patient/*.rs",
    ] {
        for patient in PATIENTS {
            let token = token(&server, CARTER, patient, scope).await;
            let reply = server.get_bearer(&server.fhir(CARTER_RECORD), &token).await;
            assert_eq!(reply.status, 200, "{scope} {patient}: {}", reply.text);
            assert_eq!(reply.json()["name"][0]["family"], "Carter");
            // By id only: a search is no read of one's own record.
            let search = server
                .get_bearer(
                    &server.fhir("/Practitioner?_id=practitioner-carter"),
                    &token,
                )
                .await;
            assert_outcome(&search, 403);
            assert_hidden(&server, "/Practitioner/practitioner-other", &token).await;
        }
    }
    // Without openid, or with openid alone, her record is out of reach.
    for scope in [
        "fhirUser launch/patient patient/*.rs",
        "profile patient/*.rs",
        "openid launch/patient patient/*.rs",
    ] {
        let token = token(&server, CARTER, DANIEL_PATIENT, scope).await;
        let reply = server.get_bearer(&server.fhir(CARTER_RECORD), &token).await;
        assert_outcome(&reply, 403);
    }
}

#[tokio::test]
async fn daniel_reads_his_related_person_only_through_the_represented_grant() {
    let server = start().await;
    let for_amy = token(&server, DANIEL, AMY_PATIENT, "openid fhirUser").await;
    let reply = server
        .get_bearer(&server.fhir(DANIEL_FOR_AMY), &for_amy)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let person = reply.json();
    assert_eq!(person["patient"]["reference"], "Patient/smart-1032702");
    assert_eq!(person["name"][0]["family"], "Adams");
    // The identity grant reads one record, not Amy's chart nor Daniel's own Patient.
    for path in ["/Patient/smart-1032702", "/Observation"] {
        let reply = server.get_bearer(&server.fhir(path), &for_amy).await;
        assert_outcome(&reply, 403);
    }
    assert_hidden(&server, "/Patient/smart-1032702/$everything", &for_amy).await;
    let search = server
        .get_bearer(&server.fhir("/RelatedPerson"), &for_amy)
        .await;
    assert_outcome(&search, 403);

    // Sharing himself, Daniel's fhirUser is his Patient: the RelatedPerson is Amy's.
    let himself = token(&server, DANIEL, DANIEL_PATIENT, "openid fhirUser").await;
    assert_eq!(
        status(&server, "/Patient/smart-1288992", &himself).await,
        200
    );
    assert_hidden(&server, "/Patient/smart-1032702", &himself).await;
    let reply = server
        .get_bearer(&server.fhir(DANIEL_FOR_AMY), &himself)
        .await;
    assert_outcome(&reply, 403);
    let himself_with_chart = token(
        &server,
        DANIEL,
        DANIEL_PATIENT,
        "openid fhirUser launch/patient patient/*.rs",
    )
    .await;
    assert_hidden(&server, DANIEL_FOR_AMY, &himself_with_chart).await;
    assert!(found(&server, "/RelatedPerson", &himself_with_chart)
        .await
        .is_empty());
}

#[tokio::test]
async fn joseph_never_reads_a_practitioner_through_patient_scopes() {
    let server = start().await;
    for scope in [
        "launch/patient patient/*.rs",
        "launch/patient patient/*.read",
        "openid fhirUser launch/patient patient/*.read",
        "openid profile patient/Practitioner.rs",
    ] {
        let token = token(&server, JOSEPH, JOSEPH_PATIENT, scope).await;
        for path in [
            CARTER_RECORD,
            "/Practitioner",
            "/Practitioner?_id=practitioner-carter",
        ] {
            let reply = server.get_bearer(&server.fhir(path), &token).await;
            assert_outcome(&reply, 403);
        }
        let url = "/Patient/smart-1081332/$everything?_count=500";
        let (chart, _) = server.search_all(&server.fhir(url), Some(&token)).await;
        assert!(!chart.is_empty(), "{scope}");
        assert_only_patients(&chart, &[JOSEPH_PATIENT], scope);
        assert!(chart.iter().all(|r| r["resourceType"] != "Practitioner"));
    }
    let identity = token(&server, JOSEPH, JOSEPH_PATIENT, "openid fhirUser").await;
    assert_eq!(
        status(&server, "/Patient/smart-1081332", &identity).await,
        200
    );
    assert_hidden(&server, "/Patient/smart-1288992", &identity).await;
}

#[tokio::test]
async fn the_open_endpoint_and_the_statement_serve_practitioner_and_related_person() {
    let server = start().await;
    for path in [CARTER_RECORD, DANIEL_FOR_AMY] {
        let reply = server.get(&server.open_fhir(path)).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    }
    let carter = server.get(&server.open_fhir(CARTER_RECORD)).await.json();
    assert_eq!(carter["name"][0]["prefix"][0], "Dr.");
    assert_eq!(
        carter["identifier"][0]["system"],
        "http://hl7.org/fhir/sid/us-npi"
    );
    let related = open_search(&server, "/RelatedPerson?patient=smart-1032702").await;
    assert_eq!(
        related.iter().map(key).collect::<Vec<_>>(),
        ["RelatedPerson/related-daniel-for-amy"]
    );
    assert!(open_search(&server, "/RelatedPerson?patient=smart-1288992")
        .await
        .is_empty());
    let everything = open_search(&server, "/Patient/smart-1032702/$everything?_count=500").await;
    assert!(everything
        .iter()
        .any(|r| key(r) == "RelatedPerson/related-daniel-for-amy"));
    for base in [server.fhir("/metadata"), server.open_fhir("/metadata")] {
        let statement = server.get(&base).await.json();
        let types: Vec<&str> = statement["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect();
        assert!(
            types.contains(&"Practitioner") && types.contains(&"RelatedPerson"),
            "{types:?}"
        );
    }
}
