//! FHIR helpers for the tests: Bundle entries, compartments, and expectations read from the
//! open-fhir copy of the data.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{assert_outcome, TestServer};

/// The resources of a Bundle's entries.
pub fn entry_resources(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .collect()
}

/// `Type/id` of a resource.
pub fn key(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap_or("?"),
        resource["id"].as_str().unwrap_or("?")
    )
}

/// The patient whose compartment holds a resource: itself for a Patient, else the patient
/// named by `subject` or `patient`.
pub fn patient_of(resource: &Value) -> Option<String> {
    if resource["resourceType"] == "Patient" {
        return resource["id"].as_str().map(str::to_string);
    }
    ["subject", "patient"].iter().find_map(|field| {
        resource[*field]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Patient/"))
            .map(str::to_string)
    })
}

/// Assert that every resource lies in one of these patients' compartments.
pub fn assert_only_patients(resources: &[Value], allowed: &[&str], context: &str) {
    for resource in resources {
        let patient = patient_of(resource);
        assert!(
            patient.as_deref().is_some_and(|p| allowed.contains(&p)),
            "{context}: {} belongs to {patient:?}, outside {allowed:?}",
            key(resource)
        );
    }
}

/// `Type/id` keys, sorted, panicking on duplicates.
pub fn keys(resources: &[Value]) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for r in resources {
        assert!(set.insert(key(r)), "{} appears twice", key(r));
    }
    set
}

/// Every resource of a type on the server, read through open FHIR.
pub async fn everything_of(server: &TestServer, resource_type: &str) -> Vec<Value> {
    let url = server.open_fhir(&format!("/{resource_type}?_count=500"));
    let (all, _) = server.search_all(&url, None).await;
    assert!(
        all.len() > 5,
        "too little {resource_type} data to test with"
    );
    all
}

/// Text found only in other patients' charts (Joseph Ross's and Amy Shaw's names and births).
pub const OTHER_PATIENT_MARKERS: &[&str] = &["\"Ross\"", "1964-08-09", "\"Shaw\"", "1987-02-20"];

/// The id of one of `patient`'s resources of this type, found through open FHIR.
pub async fn some_id_of(server: &TestServer, resource_type: &str, patient: &str) -> String {
    let url = server.open_fhir(&format!("/{resource_type}?patient={patient}&_count=1"));
    let bundle = server.get(&url).await.json();
    let resources = entry_resources(&bundle);
    let first = resources
        .first()
        .unwrap_or_else(|| panic!("{patient} has no {resource_type}"));
    assert_eq!(patient_of(first).as_deref(), Some(patient));
    first["id"].as_str().unwrap().to_string()
}

/// Every resource of a search through open FHIR, for expected results.
pub async fn open_search(server: &TestServer, query: &str) -> Vec<Value> {
    server.search_all(&server.open_fhir(query), None).await.0
}

/// Assert a 404 OperationOutcome for a read with this token.
pub async fn assert_hidden(server: &TestServer, path: &str, token: &str) {
    let reply = server.get_bearer(&server.fhir(path), token).await;
    assert_eq!(assert_outcome(&reply, 404), "not-found", "{path}");
    for marker in OTHER_PATIENT_MARKERS {
        assert!(!reply.text.contains(marker), "{path} leaks {marker}");
    }
}
