//! The bundled FHIR charts, loaded once and indexed by type, id and patient.

use std::collections::HashMap;

use axum::body::Bytes;
use serde_json::Value;

/// The resource types this server serves, in the order the CapabilityStatement lists them.
pub const SERVED_TYPES: &[&str] = &[
    "Patient",
    "Observation",
    "Condition",
    "MedicationRequest",
    "AllergyIntolerance",
    "Immunization",
    "Procedure",
    "Encounter",
    "RelatedPerson",
    "Practitioner",
];

/// The served types that belong to no patient compartment: only `user/` scopes reach them
/// (and a token's own fhirUser record, see `access`).
pub const SHARED_TYPES: &[&str] = &["Practitioner"];

/// Whether resources of this type live in a patient's compartment.
pub fn in_compartment(resource_type: &str) -> bool {
    !SHARED_TYPES.contains(&resource_type)
}

const SHIPPED: &[&str] = &[
    include_str!("data/smart-1288992.json"),
    include_str!("data/smart-1032702.json"),
    include_str!("data/smart-1081332.json"),
    include_str!("data/practitioners.json"),
];

/// One stored resource with what access checks need precomputed.
#[derive(Debug)]
pub struct Resource {
    /// `resourceType`.
    pub resource_type: String,
    /// `id`.
    pub id: String,
    /// The patient whose compartment holds it, if any.
    pub patient: Option<String>,
    /// The resource.
    pub json: Value,
    /// The resource serialised once, served as is on reads by id.
    pub body: Bytes,
}

/// Every bundled resource.
#[derive(Debug, Default)]
pub struct DataStore {
    resources: Vec<Resource>,
    by_key: HashMap<(String, String), usize>,
}

impl DataStore {
    /// The charts compiled into the binary.
    pub fn shipped() -> Self {
        let mut store = DataStore::default();
        for text in SHIPPED {
            let bundle: Value = serde_json::from_str(text)
                .expect("bundled FHIR data is valid JSON (checked by tests)");
            for entry in bundle["entry"].as_array().into_iter().flatten() {
                store.add(entry["resource"].clone());
            }
        }
        store
    }

    fn add(&mut self, json: Value) {
        let resource_type = json["resourceType"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let id = json["id"].as_str().unwrap_or_default().to_string();
        let patient = compartment_of(&resource_type, &id, &json);
        let body = Bytes::from(json.to_string());
        self.by_key
            .insert((resource_type.clone(), id.clone()), self.resources.len());
        self.resources.push(Resource {
            resource_type,
            id,
            patient,
            json,
            body,
        });
    }

    /// The resource with this type and id.
    pub fn get(&self, resource_type: &str, id: &str) -> Option<&Resource> {
        let key = (resource_type.to_string(), id.to_string());
        self.by_key.get(&key).map(|&i| &self.resources[i])
    }

    /// Every resource of a type, in bundle order.
    pub fn of_type<'a>(&'a self, resource_type: &'a str) -> impl Iterator<Item = &'a Resource> {
        self.resources
            .iter()
            .filter(move |r| r.resource_type == resource_type)
    }

    /// Every resource in a patient's compartment, the Patient first.
    pub fn compartment<'a>(&'a self, patient_id: &'a str) -> impl Iterator<Item = &'a Resource> {
        self.resources
            .iter()
            .filter(move |r| r.patient.as_deref() == Some(patient_id))
    }

    /// The display name of a patient, e.g. `Daniel X. Adams`.
    pub fn patient_name(&self, patient_id: &str) -> Option<String> {
        let patient = &self.get("Patient", patient_id)?.json;
        let name = patient["name"].as_array()?.first()?;
        let mut parts: Vec<&str> = name["given"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if let Some(family) = name["family"].as_str() {
            parts.push(family);
        }
        Some(parts.join(" "))
    }
}

/// The patient a resource belongs to: itself for a Patient, none for a shared type, else
/// its subject or patient.
fn compartment_of(resource_type: &str, id: &str, json: &Value) -> Option<String> {
    if !in_compartment(resource_type) {
        return None;
    }
    if resource_type == "Patient" {
        return Some(id.to_string());
    }
    ["subject", "patient"].iter().find_map(|field| {
        json[*field]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Patient/"))
            .map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_resource_is_served_and_in_a_compartment_unless_shared() {
        let store = DataStore::shipped();
        assert!(store.resources.len() > 30);
        for r in &store.resources {
            assert!(
                SERVED_TYPES.contains(&r.resource_type.as_str()),
                "{}",
                r.resource_type
            );
            assert!(!r.id.is_empty());
            assert_eq!(
                r.patient.is_some(),
                in_compartment(&r.resource_type),
                "{}/{}: a compartment exactly when its type has one",
                r.resource_type,
                r.id
            );
        }
        assert_eq!(store.by_key.len(), store.resources.len(), "ids are unique");
        assert!(SHARED_TYPES.iter().all(|t| SERVED_TYPES.contains(t)));
    }

    #[test]
    fn every_patient_has_a_full_chart() {
        let store = DataStore::shipped();
        for patient in ["smart-1288992", "smart-1032702", "smart-1081332"] {
            for t in SERVED_TYPES
                .iter()
                .filter(|t| in_compartment(t) && **t != "RelatedPerson")
            {
                assert!(
                    store.compartment(patient).any(|r| r.resource_type == *t),
                    "{patient} has no {t}"
                );
            }
        }
        assert_eq!(
            store.patient_name("smart-1288992").unwrap(),
            "Daniel X. Adams"
        );
    }

    #[test]
    fn the_representative_is_in_amys_compartment_and_the_practitioner_in_none() {
        let store = DataStore::shipped();
        let related = store
            .get("RelatedPerson", "related-daniel-for-amy")
            .unwrap();
        assert_eq!(related.patient.as_deref(), Some("smart-1032702"));
        assert_eq!(related.json["name"][0]["family"], "Adams");
        let related: Vec<&str> = store
            .of_type("RelatedPerson")
            .map(|r| r.patient.as_deref().unwrap_or_default())
            .collect();
        assert_eq!(related, ["smart-1032702"]);
        let carter = store.get("Practitioner", "practitioner-carter").unwrap();
        assert_eq!(carter.patient, None);
        assert_eq!(carter.json["name"][0]["family"], "Carter");
        let npi = &carter.json["identifier"][0];
        assert_eq!(npi["system"], "http://hl7.org/fhir/sid/us-npi");
        let value = npi["value"].as_str().unwrap();
        assert!(value.len() == 10 && value.bytes().all(|b| b.is_ascii_digit()));
        for patient in ["smart-1288992", "smart-1032702", "smart-1081332"] {
            assert!(store
                .compartment(patient)
                .all(|r| r.resource_type != "Practitioner"));
        }
    }

    #[test]
    fn every_users_fhir_user_is_a_shipped_resource() {
        let store = DataStore::shipped();
        let users = crate::server::users::Users::shipped();
        for user in users.all() {
            for link in &user.patients {
                let reference = user.fhir_user(&link.id).unwrap();
                let (kind, id) = reference.split_once('/').unwrap();
                let resource = store.get(kind, id).unwrap_or_else(|| panic!("{reference}"));
                if in_compartment(kind) {
                    assert_eq!(resource.patient.as_deref(), Some(link.id.as_str()));
                }
            }
        }
    }
}
