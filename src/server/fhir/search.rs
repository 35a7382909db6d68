//! FHIR search parameters: parsing, matching a resource, and paging.

mod values;

use std::collections::HashSet;

use crate::server::error::FhirError;

use super::data::Resource;
use values::{
    categories, codes, date_matches, parse_date, parse_number, split_values, token_values,
    DateValue, TokenSet,
};
pub use values::{matches_filter, MAX_VALUES};

/// Results per page when `_count` is absent.
pub const DEFAULT_COUNT: usize = 50;
/// The largest `_count` honoured.
pub const MAX_COUNT: usize = 500;
/// The most search parameters (name=value pairs, repeats included) one request may carry.
pub const MAX_PARAMS: usize = 50;

/// A parsed search request for one resource type.
#[derive(Debug, Clone, Default)]
pub struct Search {
    ids: Vec<HashSet<String>>,
    patients: Vec<HashSet<String>>,
    encounters: Vec<HashSet<String>>,
    categories: Vec<TokenSet>,
    codes: Vec<TokenSet>,
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
    match resource_type {
        // In no compartment, and nothing else here to search Practitioners by.
        "Practitioner" => return names,
        "RelatedPerson" => {
            names.push("patient");
            return names;
        }
        _ => {}
    }
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
    if has_encounter(resource_type) {
        names.push("encounter");
    }
    names
}

/// The types searchable by the Encounter they were recorded in (FHIR R4's `encounter`
/// search parameter on the bundled types that carry one).
fn has_encounter(resource_type: &str) -> bool {
    matches!(
        resource_type,
        "Observation" | "Condition" | "Procedure" | "MedicationRequest"
    )
}

/// The search parameters each served type understands, for the CapabilityStatement.
pub fn search_params(resource_type: &str) -> Vec<(&'static str, &'static str)> {
    supported(resource_type)
        .into_iter()
        .filter(|n| !matches!(*n, "_count" | "_offset" | "_format"))
        .map(|name| {
            let kind = match name {
                "_id" => "token",
                "patient" | "subject" | "encounter" => "reference",
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
        if pairs.len() > MAX_PARAMS {
            return Err(FhirError::invalid(format!(
                "this search has {} parameters; at most {MAX_PARAMS} are taken in one request (repeats such as date=ge…&date=le… count each)",
                pairs.len()
            )));
        }
        let allowed = supported(resource_type);
        let mut search = Search {
            count: DEFAULT_COUNT,
            ..Default::default()
        };
        for (name, value) in pairs {
            refuse_unsupported(resource_type, name, &allowed)?;
            if name != "_offset" {
                search.link_params.push((name.clone(), value.clone()));
            }
            match name.as_str() {
                "_id" => search
                    .ids
                    .push(split_values(name, value)?.into_iter().collect()),
                "patient" | "subject" => search.patients.push(
                    split_values(name, value)?
                        .into_iter()
                        .map(|v| v.strip_prefix("Patient/").map(str::to_string).unwrap_or(v))
                        .collect(),
                ),
                "encounter" => search.encounters.push(
                    split_values(name, value)?
                        .into_iter()
                        .map(|v| {
                            v.strip_prefix("Encounter/")
                                .map(str::to_string)
                                .unwrap_or(v)
                        })
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

    /// Parse the query of `Patient/{id}/$everything`, which takes only `_count` (and the
    /// `_offset` of its paging links).
    pub fn everything(pairs: &[(String, String)]) -> Result<Search, FhirError> {
        if let Some((name, _)) = pairs
            .iter()
            .find(|(k, _)| !matches!(k.as_str(), "_count" | "_offset" | "_format"))
        {
            return Err(FhirError::invalid(format!(
                "$everything does not take {name:?}; it takes only _count (and the _offset of its paging links)"
            )));
        }
        Search::parse("Patient", pairs)
    }

    /// The patient compartments asked for: one list of alternatives per `patient` or
    /// `subject` parameter (all must hold), each id without its `Patient/` prefix.
    pub fn patients(&self) -> &[HashSet<String>] {
        &self.patients
    }

    /// The resource ids asked for: one list of alternatives per `_id` parameter.
    pub fn ids(&self) -> &[HashSet<String>] {
        &self.ids
    }

    /// Whether a resource satisfies every parameter. Each resource's codings are read once
    /// and each looked up in the parameter's set of values.
    pub fn matches(&self, resource: &Resource) -> bool {
        let json = &resource.json;
        let tokens = |sets: &[TokenSet], read: fn(&serde_json::Value) -> Vec<(String, String)>| {
            sets.is_empty() || {
                let codings = read(json);
                sets.iter().all(|set| set.matches(&codings))
            }
        };
        self.ids.iter().all(|ids| ids.contains(&resource.id))
            && self
                .patients
                .iter()
                .all(|ps| resource.patient.as_ref().is_some_and(|p| ps.contains(p)))
            && (self.encounters.is_empty() || {
                let encounter = encounter_of(json);
                self.encounters
                    .iter()
                    .all(|es| encounter.is_some_and(|e| es.contains(e)))
            })
            && tokens(&self.categories, categories)
            && tokens(&self.codes, codes)
            && self.dates.iter().all(|d| date_matches(json, d))
    }
}

/// The id of the Encounter a resource was recorded in (`encounter.reference` as
/// `Encounter/id`).
fn encounter_of(json: &serde_json::Value) -> Option<&str> {
    json["encounter"]["reference"]
        .as_str()?
        .strip_prefix("Encounter/")
}

/// Refuse a parameter this server cannot evaluate, saying which kind it is. Nothing
/// unsupported is ever ignored: a search that ran on less than was asked would answer
/// another question (and, in front of an upstream, would forward what cannot be checked).
fn refuse_unsupported(resource_type: &str, name: &str, allowed: &[&str]) -> Result<(), FhirError> {
    let why = if name == "_has" || name.starts_with("_has:") {
        format!(
            "reverse chaining ({name:?}) is not supported: a search cannot test the resources that point at these; search those resources instead"
        )
    } else if name.contains('.') {
        format!(
            "chained parameters such as {name:?} are not supported; search the referenced resource first, then this type by its id or patient"
        )
    } else if name.contains(':') {
        format!("search modifiers such as {name:?} are not supported; use the plain parameter")
    } else if !allowed.contains(&name) {
        format!(
            "unknown search parameter {name:?} for {resource_type}; supported: {}",
            allowed.join(", ")
        )
    } else {
        return Ok(());
    };
    Err(FhirError::invalid(why))
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
            "effectiveDateTime": "2018-03-14T23:30:00-05:00",
            "encounter": {"reference": "Encounter/e1"}
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
    fn encounters_match_as_references_or_bare_ids() {
        assert!(hit("encounter=Encounter/e1"));
        assert!(hit("encounter=e1"));
        assert!(hit("encounter=e2,Encounter/e1"));
        assert!(!hit("encounter=e2"));
        assert!(!hit("encounter=e1&encounter=e2"));
        assert!(!hit("encounter=Observation/e1"));
        let mut unrecorded = lab();
        unrecorded.json["encounter"] = serde_json::Value::Null;
        let search = Search::parse("Observation", &pairs("encounter=e1")).unwrap();
        assert!(!search.matches(&unrecorded));
        for resource_type in ["Condition", "Procedure", "MedicationRequest"] {
            assert!(Search::parse(resource_type, &pairs("encounter=e1")).is_ok());
            assert!(search_params(resource_type).contains(&("encounter", "reference")));
        }
        for resource_type in ["Encounter", "Immunization", "Patient", "Practitioner"] {
            let err = Search::parse(resource_type, &pairs("encounter=e1")).unwrap_err();
            assert!(err.diagnostics.contains("unknown search parameter"));
        }
        assert!(Search::parse("Observation", &pairs("encounter=")).is_err());
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
            "subject:Patient=p1",
            "subject.name=Ross",
            "patient._id=p1",
            "_has:Condition:patient:code=x",
            "_summary=count",
            "_elements=id",
            "_include=Observation:patient",
            "_revinclude=Provenance:target",
            "_contained=true",
            "_type=Condition",
            "_id=",
            "code=|",
        ] {
            let err = Search::parse("Observation", &pairs(q)).unwrap_err();
            assert_eq!(err.status, 400, "{q}");
        }
        assert!(Search::parse("Patient", &pairs("category=x")).is_err());
        let why = |q: &str| Search::parse("Patient", &pairs(q)).unwrap_err().diagnostics;
        assert!(why("_has:Condition:patient:code=x").contains("reverse chaining"));
        assert!(why("general-practitioner.name=x").contains("chained"));
        assert!(why("name:exact=x").contains("modifiers"));
        assert!(why("_summary=count").contains("unknown search parameter \"_summary\""));
        assert_eq!(
            Search::parse("Observation", &pairs("_count=100000"))
                .unwrap()
                .count,
            MAX_COUNT
        );
    }

    #[test]
    fn value_lists_and_parameter_counts_are_capped_and_values_deduplicated() {
        let list = |n: usize| vec!["a"; n].join(",");
        let parsed = Search::parse("Observation", &pairs(&format!("code={}", list(50)))).unwrap();
        assert_eq!(parsed.codes[0], token_values("code", "a").unwrap());
        let why = Search::parse("Observation", &pairs(&format!("code={}", list(51))))
            .unwrap_err()
            .diagnostics;
        assert!(why.contains("code") && why.contains("50"), "{why}");
        let dates = vec!["date=ge2018"; 51].join("&");
        let err = Search::parse("Observation", &pairs(&dates)).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(
            err.diagnostics.contains("at most 50"),
            "{}",
            err.diagnostics
        );
        assert!(Search::parse("Observation", &pairs(&dates[12..])).is_ok());
        let many = format!("code=8867-4,{}2339-0", "x,".repeat(48));
        assert!(hit(&many));
    }
}
