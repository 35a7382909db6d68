//! FHIR search parameters: parsing, matching a resource, and paging.

mod values;

use crate::server::error::FhirError;

use super::data::Resource;
pub use values::matches_filter;
use values::{
    categories, codes, date_matches, parse_date, parse_number, split_values, token_matches,
    token_values, DateValue, TokenValue,
};

/// Results per page when `_count` is absent.
pub const DEFAULT_COUNT: usize = 50;
/// The largest `_count` honoured.
pub const MAX_COUNT: usize = 500;

/// A parsed search request for one resource type.
#[derive(Debug, Clone, Default)]
pub struct Search {
    ids: Vec<Vec<String>>,
    patients: Vec<Vec<String>>,
    categories: Vec<Vec<TokenValue>>,
    codes: Vec<Vec<TokenValue>>,
    dates: Vec<DateValue>,
    /// Page size.
    pub count: usize,
    /// Index of the first result on this page.
    pub offset: usize,
    /// The parameters to repeat in paging links (everything but `_offset`).
    pub link_params: Vec<(String, String)>,
}

const COMMON: &[&str] = &["_id", "_count", "_offset", "_format"];

fn supported(resource_type: &str) -> Vec<&'static str> {
    let mut names = COMMON.to_vec();
    if resource_type != "Patient" {
        names.extend(["patient", "subject"]);
    }
    if matches!(
        resource_type,
        "Observation" | "Condition" | "AllergyIntolerance"
    ) {
        names.push("category");
    }
    if !matches!(resource_type, "Patient") {
        names.push("code");
    }
    if resource_type != "Patient" {
        names.push("date");
    }
    names
}

/// The search parameters each served type understands, for the CapabilityStatement.
pub fn search_params(resource_type: &str) -> Vec<(&'static str, &'static str)> {
    supported(resource_type)
        .into_iter()
        .filter(|n| !matches!(*n, "_count" | "_offset" | "_format"))
        .map(|name| {
            let kind = match name {
                "_id" => "token",
                "patient" | "subject" => "reference",
                "category" | "code" => "token",
                _ => "date",
            };
            (name, kind)
        })
        .collect()
}

impl Search {
    /// Parse query pairs for a search on `resource_type`.
    pub fn parse(resource_type: &str, pairs: &[(String, String)]) -> Result<Search, FhirError> {
        let allowed = supported(resource_type);
        let mut search = Search {
            count: DEFAULT_COUNT,
            ..Default::default()
        };
        for (name, value) in pairs {
            if name.contains(':') {
                return Err(FhirError::invalid(format!(
                    "search modifiers such as {name:?} are not supported; use the plain parameter"
                )));
            }
            if !allowed.contains(&name.as_str()) {
                return Err(FhirError::invalid(format!(
                    "unknown search parameter {name:?} for {resource_type}; supported: {}",
                    allowed.join(", ")
                )));
            }
            if name != "_offset" {
                search.link_params.push((name.clone(), value.clone()));
            }
            match name.as_str() {
                "_id" => search.ids.push(split_values(name, value)?),
                "patient" | "subject" => search.patients.push(
                    split_values(name, value)?
                        .into_iter()
                        .map(|v| v.strip_prefix("Patient/").map(str::to_string).unwrap_or(v))
                        .collect(),
                ),
                "category" => search.categories.push(token_values(name, value)?),
                "code" => search.codes.push(token_values(name, value)?),
                "date" => search.dates.push(parse_date(value)?),
                "_count" => search.count = parse_number(name, value)?.min(MAX_COUNT),
                "_offset" => search.offset = parse_number(name, value)?,
                _ => super::check_format(value)?,
            }
        }
        Ok(search)
    }

    /// Whether a resource satisfies every parameter.
    pub fn matches(&self, resource: &Resource) -> bool {
        let json = &resource.json;
        self.ids.iter().all(|ids| ids.contains(&resource.id))
            && self
                .patients
                .iter()
                .all(|ps| resource.patient.as_ref().is_some_and(|p| ps.contains(p)))
            && self
                .categories
                .iter()
                .all(|any| any.iter().any(|t| token_matches(&categories(json), t)))
            && self
                .codes
                .iter()
                .all(|any| any.iter().any(|t| token_matches(&codes(json), t)))
            && self.dates.iter().all(|d| date_matches(json, d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn pairs(q: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }

    fn resource(json: Value) -> Resource {
        Resource {
            resource_type: json["resourceType"].as_str().unwrap().to_string(),
            id: json["id"].as_str().unwrap().to_string(),
            patient: Some("p1".to_string()),
            body: json.to_string().into(),
            json,
        }
    }

    fn lab() -> Resource {
        resource(json!({
            "resourceType": "Observation", "id": "o1",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
            "effectiveDateTime": "2018-03-14T23:30:00-05:00"
        }))
    }

    fn hit(q: &str) -> bool {
        Search::parse("Observation", &pairs(q))
            .unwrap()
            .matches(&lab())
    }

    #[test]
    fn tokens_match_with_and_without_system() {
        assert!(hit("category=laboratory"));
        assert!(hit(
            "category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
        ));
        assert!(!hit("category=http://example.org|laboratory"));
        assert!(hit("code=http://loinc.org|2339-0"));
        assert!(hit("code=http://loinc.org|"));
        assert!(hit("code=8867-4,2339-0"));
        assert!(!hit("code=8867-4"));
        assert!(!hit("code=|2339-0"));
    }

    #[test]
    fn dates_compare_at_the_written_precision() {
        assert!(hit("date=2018-03-14"));
        assert!(hit("date=2018-03"));
        assert!(hit("date=ge2018-03-14&date=le2018-03-14"));
        assert!(!hit("date=gt2018-03-14"));
        assert!(hit("date=lt2019"));
        assert!(!hit("date=ge2018-03-15"));
        assert!(hit("date=ge2018-03-15T04:00:00Z"));
        assert!(!hit("date=ge2018-03-15T05:00:00Z"));
    }

    #[test]
    fn bad_parameters_are_refused_with_a_reason() {
        for q in [
            "date=2018-3-14",
            "date=yesterday",
            "foo=bar",
            "_count=ten",
            "code:text=x",
            "_id=",
            "code=|",
        ] {
            let err = Search::parse("Observation", &pairs(q)).unwrap_err();
            assert_eq!(err.status, 400, "{q}");
        }
        assert!(Search::parse("Patient", &pairs("category=x")).is_err());
        assert_eq!(
            Search::parse("Observation", &pairs("_count=100000"))
                .unwrap()
                .count,
            MAX_COUNT
        );
    }
}
