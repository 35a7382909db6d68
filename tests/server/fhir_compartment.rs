//! Patient compartments through /api/fhir: a patient/ token sees its patient's chart and
//! nothing else, by id, by search, by $everything or by a crafted path; a user/ token sees the
//! user's patients.

use crate::common::raw;
use crate::common::*;

#[tokio::test]
async fn reading_another_patient_by_id_is_404_like_a_resource_that_does_not_exist() {
    let server = start().await;
    let token = server.seed_token().await;
    assert_hidden(&server, "/Patient/smart-1032702", &token).await;
    assert_hidden(&server, "/Patient/smart-1081332", &token).await;
    let theirs = some_id_of(&server, "Observation", JOSEPH_PATIENT).await;
    assert_hidden(&server, &format!("/Observation/{theirs}"), &token).await;
    let amys = some_id_of(&server, "Condition", AMY_PATIENT).await;
    assert_hidden(&server, &format!("/Condition/{amys}"), &token).await;

    // Hidden and missing read the same, but for the id itself.
    let hidden = server
        .get_bearer(&server.fhir("/Patient/smart-1081332"), &token)
        .await;
    let missing = server
        .get_bearer(&server.fhir("/Patient/smart-1081333"), &token)
        .await;
    assert_eq!(
        hidden.text.replace("smart-1081332", "ID"),
        missing.text.replace("smart-1081333", "ID")
    );
    let own = some_id_of(&server, "Observation", DANIEL_PATIENT).await;
    let reply = server
        .get_bearer(&server.fhir(&format!("/Observation/{own}")), &token)
        .await;
    assert_eq!(reply.status, 200, "own Observation: {}", reply.text);
}

#[tokio::test]
async fn searches_never_return_another_patients_resources() {
    let server = start().await;
    let token = server.seed_token().await;
    let joseph_condition = some_id_of(&server, "Condition", JOSEPH_PATIENT).await;
    let joseph_obs = some_id_of(&server, "Observation", JOSEPH_PATIENT).await;
    let own_condition = some_id_of(&server, "Condition", DANIEL_PATIENT).await;
    let empty = [
        "/Observation?patient=smart-1081332".to_string(),
        "/Observation?subject=Patient/smart-1081332".to_string(),
        "/Observation?subject=smart-1081332".to_string(),
        "/Observation?patient=smart-1032702".to_string(),
        format!("/Condition?_id={joseph_condition}"),
        format!("/Observation?_id={joseph_obs}"),
        format!("/Condition?_id={joseph_condition}&patient=smart-1081332"),
        "/Patient?_id=smart-1081332".to_string(),
        "/Patient?_id=smart-1032702,smart-1081332".to_string(),
        "/Observation?patient=smart-1288992&patient=smart-1081332".to_string(),
    ];
    for query in &empty {
        let (found, _) = server.search_all(&server.fhir(query), Some(&token)).await;
        assert!(
            found.is_empty(),
            "{query} returned {:?}",
            found.iter().map(key).collect::<Vec<_>>()
        );
    }

    for (query, open_query) in [
        ("/Observation", "/Observation?patient=smart-1288992"),
        ("/Condition", "/Condition?patient=smart-1288992"),
        ("/Patient", "/Patient?_id=smart-1288992"),
        ("/Encounter?_count=2", "/Encounter?patient=smart-1288992"),
        (
            "/Observation?patient=smart-1288992,smart-1081332",
            "/Observation?patient=smart-1288992",
        ),
        (
            "/Condition?_id=smart-1081332-cond-obesity,OWN",
            "/Condition?_id=OWN",
        ),
    ] {
        let query = query.replace("OWN", &own_condition);
        let (found, _) = server.search_all(&server.fhir(&query), Some(&token)).await;
        assert_only_patients(&found, &[DANIEL_PATIENT], &query);
        let expected = open_search(&server, &open_query.replace("OWN", &own_condition)).await;
        assert!(!expected.is_empty(), "{open_query} finds nothing");
        let mut got: Vec<String> = found.iter().map(key).collect();
        let mut want: Vec<String> = expected.iter().map(key).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{query}");
    }
}

#[tokio::test]
async fn everything_reaches_only_the_tokens_own_patient() {
    let server = start().await;
    let token = server.seed_token().await;
    for other in [JOSEPH_PATIENT, AMY_PATIENT, "smart-0000000"] {
        assert_hidden(&server, &format!("/Patient/{other}/$everything"), &token).await;
    }
    let url = server.fhir("/Patient/smart-1288992/$everything?_count=500");
    let (own, _) = server.search_all(&url, Some(&token)).await;
    assert_only_patients(&own, &[DANIEL_PATIENT], "$everything");
    let open_url = server.open_fhir("/Patient/smart-1288992/$everything?_count=500");
    let (open, _) = server.search_all(&open_url, None).await;
    assert_eq!(
        own.len(),
        open.len(),
        "$everything misses some of the chart"
    );
    assert!(own.iter().any(|r| r["resourceType"] == "Patient"));
    assert!(own.iter().any(|r| r["resourceType"] == "MedicationRequest"));
}

/// Raw request targets that try to step out of the compartment.
fn path_tricks(joseph_obs: &str) -> Vec<String> {
    let long = "a".repeat(70);
    let huge = "b".repeat(8000);
    let mut tricks: Vec<String> = [
        "/api/fhir/Patient/smart-1288992%2F..%2Fsmart-1081332",
        "/api/fhir/Patient/..%2Fsmart-1081332",
        "/api/fhir/Patient/%2e%2e%2fsmart-1081332",
        "/api/fhir/Patient/../Patient/smart-1081332",
        "/api/fhir/Patient/smart-1288992/../smart-1081332",
        "/api/fhir/Patient/smart-1288992/..%2F..%2FPatient%2Fsmart-1081332",
        "/api/fhir/Patient/%2E%2E/smart-1081332",
        "//api/fhir/Patient/smart-1081332",
        "/api/fhir//Patient/smart-1081332",
        "/api/fhir/Patient//smart-1081332",
        "/api/fhir/Patient/smart-1081332/",
        "/api/fhir/Patient/smart-1081332%00",
        "/api/fhir/Patient/smart-1288992%00smart-1081332",
        "/api/fhir/Patient/smart-1081332%20",
        "/api/fhir/Patient/%50atient",
        "/api/fhir/%50atient/smart-1081332",
        "/api/fhir/Patient/smart%2D1081332",
        "/api/fhir/Patient/SMART-1081332",
        "/api/fhir/patient/smart-1081332",
        "/api/fhir/Patient/smart-1288992,smart-1081332",
        "/api/fhir/Patient/smart-1288992;smart-1081332",
        "/api/fhir/Patient/smart-1081332?_id=smart-1288992",
        "/api/fhir/Patient/smart-1288992/$everything?patient=smart-1081332",
        "/api/fhir/Patient/smart-1081332/%24everything",
        "/api/fhir/Patient/smart-1081332/$everything/more",
        "/api/fhir/Foo/smart-1081332",
        "/api/fhir/Person/smart-1081332",
        "/api/fhir/../open-fhir/Patient/smart-1081332",
        "/api/fhir/%2e%2e/open-fhir/Patient/smart-1081332",
        "/api/fhir/Observation?patient=smart-1081332&patient:missing=true",
        "/api/fhir/Observation?patient%3Dsmart-1081332",
        "/api/fhir/Observation?subject:Patient=smart-1081332",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    tricks.push(format!("/api/fhir/Observation/{joseph_obs}"));
    tricks.push(format!(
        "/api/fhir/Observation/{joseph_obs}%2F..%2F..%2Fsmart-1288992"
    ));
    tricks.push(format!("/api/fhir/Patient/smart-1081332{long}"));
    tricks.push(format!("/api/fhir/Patient/{long}"));
    tricks.push(format!("/api/fhir/Patient/{huge}"));
    tricks.push(format!("/api/fhir/{huge}/smart-1081332"));
    tricks
}

#[tokio::test]
async fn encoded_path_tricks_never_reveal_another_patient_and_never_fail_with_5xx() {
    let server = start().await;
    let token = server.seed_token().await;
    let auth = format!("Bearer {token}");
    let joseph_obs = some_id_of(&server, "Observation", JOSEPH_PATIENT).await;
    for target in path_tricks(&joseph_obs) {
        let request = raw::request("GET", &target, &[("Authorization", &auth)], b"");
        let reply = raw::send(server.addr, request).await;
        let label = &target[..target.len().min(90)];
        assert!(
            (200..500).contains(&reply.status),
            "{label}: {}",
            reply.status
        );
        let text = reply.text();
        for marker in OTHER_PATIENT_MARKERS {
            assert!(!text.contains(marker), "{label} leaks {marker}: {text}");
        }
        let json = reply
            .json()
            .unwrap_or_else(|| panic!("{label}: not JSON: {text}"));
        let resources = match json["resourceType"].as_str() {
            Some("Bundle") => entry_resources(&json),
            Some("OperationOutcome") | None => Vec::new(),
            Some(_) => vec![json.clone()],
        };
        assert_only_patients(&resources, &[DANIEL_PATIENT], label);
        if reply.status == 200 {
            assert_ne!(json["resourceType"], "OperationOutcome", "{label}");
        } else {
            let has_reason = json["issue"][0]["diagnostics"].is_string()
                || json["error_description"].is_string();
            assert!(has_reason, "{label}: {text}");
        }
    }
    let after = server
        .get_bearer(&server.fhir("/Patient/smart-1288992"), &token)
        .await;
    assert_eq!(after.status, 200, "the server still answers");
}

#[tokio::test]
async fn a_user_scope_reaches_every_patient_of_the_user_and_no_one_else() {
    let server = start().await;
    let token = server.daniel_token("user/*.read", "user/*.read").await;
    for patient in [DANIEL_PATIENT, AMY_PATIENT] {
        let reply = server
            .get_bearer(&server.fhir(&format!("/Patient/{patient}")), &token)
            .await;
        assert_eq!(reply.status, 200, "{patient}: {}", reply.text);
    }
    assert_hidden(&server, "/Patient/smart-1081332", &token).await;
    assert_hidden(&server, "/Patient/smart-1081332/$everything", &token).await;

    let (observations, _) = server
        .search_all(&server.fhir("/Observation?_count=500"), Some(&token))
        .await;
    assert_only_patients(&observations, &[DANIEL_PATIENT, AMY_PATIENT], "Observation");
    for patient in [DANIEL_PATIENT, AMY_PATIENT] {
        let expected = open_search(&server, &format!("/Observation?patient={patient}")).await;
        let seen = observations
            .iter()
            .filter(|r| patient_of(r).as_deref() == Some(patient))
            .count();
        assert_eq!(seen, expected.len(), "{patient}'s Observations");
    }
    let (josephs, _) = server
        .search_all(
            &server.fhir("/Observation?patient=smart-1081332"),
            Some(&token),
        )
        .await;
    assert!(josephs.is_empty());
}
