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
];

const SHIPPED: &[&str] = &[
    include_str!("data/smart-1288992.json"),
    include_str!("data/smart-1032702.json"),
    include_str!("data/smart-1081332.json"),
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

/// The patient a resource belongs to: itself for a Patient, else its subject or patient.
fn compartment_of(resource_type: &str, id: &str, json: &Value) -> Option<String> {
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
    fn every_shipped_resource_is_served_and_in_a_compartment() {
        let store = DataStore::shipped();
        assert!(store.resources.len() > 30);
        for r in &store.resources {
            assert!(
                SERVED_TYPES.contains(&r.resource_type.as_str()),
                "{}",
                r.resource_type
            );
            assert!(!r.id.is_empty());
            assert!(
                r.patient.is_some(),
                "{}/{} has no patient",
                r.resource_type,
                r.id
            );
        }
        assert_eq!(store.by_key.len(), store.resources.len(), "ids are unique");
    }

    #[test]
    fn every_patient_has_a_full_chart() {
        let store = DataStore::shipped();
        for patient in ["smart-1288992", "smart-1032702", "smart-1081332"] {
            for t in SERVED_TYPES {
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
}
