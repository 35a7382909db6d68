//! Checking what the upstream sent back against a token, and moving its URLs onto the proxy.

use axum::body::Bytes;
use serde_json::{json, Map, Value};

use super::super::access::{Access, Operation};
use super::super::data::{Resource, SERVED_TYPES};

/// An upstream resource with its compartment read as the bundled store reads its own; `None`
/// when it has no type or id. `body` is left empty (reads fill it in).
pub fn resource(json: Value, upstream_base: &str) -> Option<Resource> {
    let resource_type = json["resourceType"].as_str()?.to_string();
    let id = json["id"].as_str()?.to_string();
    let patient = if resource_type == "Patient" {
        Some(id.clone())
    } else {
        ["subject", "patient"].iter().find_map(|field| {
            json[*field]["reference"]
                .as_str()
                .and_then(|r| patient_reference(r, upstream_base))
        })
    };
    Some(Resource {
        resource_type,
        id,
        patient,
        json,
        body: Bytes::new(),
    })
}

/// The patient id of `Patient/<id>` (optionally `/_history/<v>`), relative or on the
/// upstream's base. References to anywhere else name no patient the proxy knows.
fn patient_reference(reference: &str, upstream_base: &str) -> Option<String> {
    let relative = match reference.strip_prefix(upstream_base) {
        Some(rest) => rest.strip_prefix('/')?,
        None => reference,
    };
    let rest = relative.strip_prefix("Patient/")?;
    let id = match rest.split_once('/') {
        Some((id, history)) if history.starts_with("_history/") => id,
        Some(_) => return None,
        None => rest,
    };
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid.then(|| id.to_string())
}

/// Whether the token may be shown this resource.
pub fn permitted(resource: &Resource, access: &Access, op: Operation) -> bool {
    SERVED_TYPES.contains(&resource.resource_type.as_str()) && access.allows(resource, op)
}

/// `url` moved from the upstream's base onto the proxy's, or `None` when it points elsewhere.
pub fn rewrite(url: &str, upstream_base: &str, proxy_base: &str) -> Option<String> {
    let rest = url.strip_prefix(upstream_base)?;
    (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
        .then(|| format!("{proxy_base}{rest}"))
}

/// Where a Bundle goes and what it may show.
pub struct Screen<'a> {
    /// The token's reach.
    pub access: &'a Access,
    /// What each entry must be permitted for.
    pub op: Operation,
    /// The upstream's base.
    pub upstream_base: &'a str,
    /// The proxy's FHIR base.
    pub proxy_base: &'a str,
    /// Whether the upstream was asked for exactly what the token may see (its compartment
    /// and scope filter), so that its `total` counts only that.
    pub verified: bool,
}

impl Screen<'_> {
    /// The Bundle with only permitted entries (each with a proxy `fullUrl` and its `search`
    /// element), links on the proxy's base, and `total` and paging links only when they
    /// tell nothing about what was removed. `Err` names what arrived instead of a Bundle.
    pub fn bundle(&self, bundle: Value) -> Result<Value, String> {
        if bundle["resourceType"] != "Bundle" {
            let kind = bundle["resourceType"].as_str().unwrap_or("a non-resource");
            return Err(format!(
                "the upstream FHIR server answered with {kind} where a Bundle was expected"
            ));
        }
        let Value::Object(mut upstream) = bundle else {
            return Err("the upstream FHIR server's Bundle is not an object".into());
        };
        let entries = match upstream.remove("entry") {
            Some(Value::Array(entries)) => entries,
            _ => Vec::new(),
        };
        let offered = entries.len();
        let kept: Vec<Value> = entries
            .into_iter()
            .filter_map(|entry| self.entry(entry))
            .collect();
        let whole = kept.len() == offered;
        // Built afresh: nothing of the upstream's Bundle passes unless it is known to be
        // harmless (no extensions, signatures or other elements the proxy cannot judge).
        let mut out = Map::new();
        out.insert("resourceType".into(), "Bundle".into());
        for field in ["id", "type", "timestamp"] {
            if let Some(Value::String(text)) = upstream.remove(field) {
                out.insert(field.into(), text.into());
            }
        }
        if let Some(updated) = upstream.get("meta").and_then(|m| m["lastUpdated"].as_str()) {
            out.insert("meta".into(), json!({"lastUpdated": updated}));
        }
        // A total is believed only if the page shows some of what it counts: an empty page
        // (`_count=0`) from an upstream that ignored the compartment would count everyone.
        if let Some(Value::Number(total)) = upstream.remove("total") {
            let counted = offered > 0 || total.as_u64() == Some(0);
            if self.verified && whole && counted {
                out.insert("total".into(), total.into());
            }
        }
        // Whether more pages exist says something only about what this page let through.
        let paging = whole && (self.verified || offered > 0);
        let links: Vec<Value> = match upstream.remove("link") {
            Some(Value::Array(links)) => links
                .into_iter()
                .filter(|link| paging || link["relation"] == "self")
                .filter_map(|link| {
                    let relation = link["relation"].as_str()?;
                    let url = rewrite(link["url"].as_str()?, self.upstream_base, self.proxy_base)?;
                    Some(json!({"relation": relation, "url": url}))
                })
                .collect(),
            _ => Vec::new(),
        };
        if !links.is_empty() {
            out.insert("link".into(), Value::Array(links));
        }
        if !kept.is_empty() {
            out.insert("entry".into(), Value::Array(kept));
        }
        Ok(Value::Object(out))
    }

    fn entry(&self, mut entry: Value) -> Option<Value> {
        let json = entry.get_mut("resource").map(Value::take)?;
        let resource = resource(json, self.upstream_base)?;
        if !permitted(&resource, self.access, self.op) {
            return None;
        }
        let mut out = Map::new();
        out.insert(
            "fullUrl".into(),
            format!(
                "{}/{}/{}",
                self.proxy_base, resource.resource_type, resource.id
            )
            .into(),
        );
        out.insert("resource".into(), resource.json);
        if let Some(search) = entry.get_mut("search").map(Value::take) {
            out.insert("search".into(), search);
        }
        Some(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: &str = "http://up.example/fhir";

    #[test]
    fn compartments_are_read_from_relative_and_upstream_references_only() {
        let with = |reference: &str| {
            resource(
                json!({"resourceType": "Observation", "id": "o", "subject": {"reference": reference}}),
                UP,
            )
            .unwrap()
            .patient
        };
        assert_eq!(with("Patient/p1").as_deref(), Some("p1"));
        assert_eq!(with("Patient/p1/_history/3").as_deref(), Some("p1"));
        assert_eq!(
            with("http://up.example/fhir/Patient/p1").as_deref(),
            Some("p1")
        );
        assert_eq!(with("http://elsewhere.example/fhir/Patient/p1"), None);
        assert_eq!(with("http://up.example/fhirX/Patient/p1"), None);
        assert_eq!(with("Group/p1"), None);
        assert_eq!(with("Patient/p1/extra"), None);
        assert_eq!(with("Patient/p,2"), None);
        assert!(resource(json!({"resourceType": "Observation"}), UP).is_none());
    }

    #[test]
    fn links_move_only_from_the_upstream_base() {
        let proxy = "http://proxy/api/fhir";
        assert_eq!(
            rewrite("http://up.example/fhir/Observation?_offset=2", UP, proxy).as_deref(),
            Some("http://proxy/api/fhir/Observation?_offset=2")
        );
        assert_eq!(
            rewrite("http://up.example/fhir?_getpages=x", UP, proxy).as_deref(),
            Some("http://proxy/api/fhir?_getpages=x")
        );
        assert_eq!(
            rewrite("http://up.example/fhirish/Observation", UP, proxy),
            None
        );
        assert_eq!(
            rewrite("http://evil.example/fhir/Observation", UP, proxy),
            None
        );
    }
}
