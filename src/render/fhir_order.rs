//! JSON written with `resourceType` first in every object, as FHIR servers and FHIR tooling
//! show resources; the other members keep their (sorted) order.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// A JSON value that serialises with `resourceType` leading each object that has one.
pub struct FhirOrder<'a>(pub &'a Value);

impl Serialize for FhirOrder<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                if let Some(kind) = map.get("resourceType") {
                    out.serialize_entry("resourceType", &FhirOrder(kind))?;
                }
                for (key, value) in map.iter().filter(|(key, _)| *key != "resourceType") {
                    out.serialize_entry(key, &FhirOrder(value))?;
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&FhirOrder(item))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_type_leads_every_object_that_has_one() {
        let bundle = json!({
            "entry": [{"resource": {"id": "a", "name": [], "resourceType": "Patient"}}],
            "id": "b",
            "resourceType": "Bundle",
        });
        let text = serde_json::to_string(&FhirOrder(&bundle)).unwrap();
        assert_eq!(
            text,
            r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"a","name":[]}}],"id":"b"}"#
        );
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, bundle);
    }

    #[test]
    fn json_without_resource_type_is_unchanged() {
        let token = json!({"access_token": "x", "scope": "openid", "expires_in": 3600});
        assert_eq!(
            serde_json::to_string(&FhirOrder(&token)).unwrap(),
            serde_json::to_string(&token).unwrap()
        );
    }
}
