//! FHIR search parameters: parsing, matching a resource, and paging.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::server::error::FhirError;

use super::data::Resource;

/// Results per page when `_count` is absent.
pub const DEFAULT_COUNT: usize = 50;
/// The largest `_count` honoured.
pub const MAX_COUNT: usize = 500;

/// A token search value: `system|code`, `|code`, `code` or `system|`.
#[derive(Debug, Clone, PartialEq)]
struct TokenValue {
    system: Option<String>,
    code: Option<String>,
}

/// A date comparator from FHIR's prefixes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
struct DateValue {
    prefix: Prefix,
    /// The value as written, without its prefix.
    text: String,
    /// Set when the value carries a time: compare instants, not calendar prefixes.
    instant: Option<OffsetDateTime>,
}

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

/// Whether a resource passes one v2 scope restriction such as `category=laboratory`.
/// Restrictions on parameters this server cannot evaluate match nothing (fail closed).
pub fn matches_filter(json: &Value, name: &str, value: &str) -> bool {
    let Ok(tokens) = token_values(name, value) else {
        return false;
    };
    let codings = match name {
        "category" => categories(json),
        "code" => codes(json),
        _ => return false,
    };
    tokens.iter().any(|t| token_matches(&codings, t))
}

fn split_values(name: &str, value: &str) -> Result<Vec<String>, FhirError> {
    let values: Vec<String> = value.split(',').map(str::to_string).collect();
    if values.iter().any(String::is_empty) {
        return Err(FhirError::invalid(format!(
            "parameter {name} has an empty value; give one or more comma-separated values"
        )));
    }
    Ok(values)
}

fn token_values(name: &str, value: &str) -> Result<Vec<TokenValue>, FhirError> {
    split_values(name, value)?
        .into_iter()
        .map(|v| {
            let (system, code) = match v.split_once('|') {
                Some((s, c)) => (Some(s.to_string()), c),
                None => (None, v.as_str()),
            };
            let code = (!code.is_empty()).then(|| code.to_string());
            if system.as_deref() == Some("") && code.is_none() {
                return Err(FhirError::invalid(format!(
                    "{name}={v:?} names neither a system nor a code"
                )));
            }
            Ok(TokenValue { system, code })
        })
        .collect()
}

fn parse_number(name: &str, value: &str) -> Result<usize, FhirError> {
    value
        .parse()
        .map_err(|_| FhirError::invalid(format!("{name} must be a whole number, not {value:?}")))
}

fn parse_date(value: &str) -> Result<DateValue, FhirError> {
    let prefixes = [
        ("eq", Prefix::Eq),
        ("ne", Prefix::Ne),
        ("gt", Prefix::Gt),
        ("lt", Prefix::Lt),
        ("ge", Prefix::Ge),
        ("le", Prefix::Le),
    ];
    let (prefix, text) = prefixes
        .iter()
        .find_map(|(p, k)| value.strip_prefix(p).map(|rest| (*k, rest)))
        .unwrap_or((Prefix::Eq, value));
    let bad = || {
        FhirError::invalid(format!(
            "date={value:?} is not a date search; write [eq|ne|gt|lt|ge|le]YYYY, YYYY-MM, YYYY-MM-DD or a full dateTime like 2018-03-14T09:30:00Z"
        ))
    };
    // Byte by byte: a value may hold any UTF-8, and slicing a str inside a character panics.
    let shape_ok = |s: &str| {
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        match b.len() {
            4 => digits(0..4),
            7 => digits(0..4) && b[4] == b'-' && digits(5..7),
            10 => digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10),
            _ => false,
        }
    };
    if text.len() > 10 {
        let instant = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| bad())?;
        return Ok(DateValue {
            prefix,
            text: text.to_string(),
            instant: Some(instant),
        });
    }
    if !shape_ok(text) {
        return Err(bad());
    }
    Ok(DateValue {
        prefix,
        text: text.to_string(),
        instant: None,
    })
}

/// The clinically relevant date of a resource, as written in it.
fn clinical_date(json: &Value) -> Option<&str> {
    const PATHS: &[&[&str]] = &[
        &["effectiveDateTime"],
        &["effectivePeriod", "start"],
        &["onsetDateTime"],
        &["performedDateTime"],
        &["performedPeriod", "start"],
        &["occurrenceDateTime"],
        &["authoredOn"],
        &["period", "start"],
        &["recordedDate"],
    ];
    PATHS.iter().find_map(|path| {
        path.iter()
            .try_fold(json, |v, key| v.get(key))
            .and_then(Value::as_str)
    })
}

fn date_matches(json: &Value, wanted: &DateValue) -> bool {
    let Some(have) = clinical_date(json) else {
        return false;
    };
    let ordering = match wanted.instant {
        Some(instant) => {
            let have_instant = if have.len() > 10 {
                OffsetDateTime::parse(have, &Rfc3339).ok()
            } else {
                OffsetDateTime::parse(&format!("{have}T00:00:00Z"), &Rfc3339).ok()
            };
            match have_instant {
                Some(h) => h.cmp(&instant),
                None => return false,
            }
        }
        None => {
            // Calendar comparison at the precision the searcher wrote, on the resource's own
            // local date: "date=2018-03-14" finds what happened on that day where it happened.
            // Compared as bytes (the order str uses), so a cut inside a character cannot panic.
            let n = wanted.text.len().min(have.len());
            have.as_bytes()[..n].cmp(&wanted.text.as_bytes()[..n])
        }
    };
    use std::cmp::Ordering::*;
    match wanted.prefix {
        Prefix::Eq => ordering == Equal,
        Prefix::Ne => ordering != Equal,
        Prefix::Gt => ordering == Greater,
        Prefix::Lt => ordering == Less,
        Prefix::Ge => ordering != Less,
        Prefix::Le => ordering != Greater,
    }
}

/// (system, code) pairs of a CodeableConcept or a list of them.
fn codings_of(value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| codings_of(v, out)),
        Value::Object(map) => {
            for coding in map
                .get("coding")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.push((
                    coding["system"].as_str().unwrap_or_default().to_string(),
                    coding["code"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        Value::String(code) => out.push((String::new(), code.clone())),
        _ => {}
    }
}

fn categories(json: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    codings_of(&json["category"], &mut out);
    if json["resourceType"] == "AllergyIntolerance" {
        for (system, _) in &mut out {
            *system = "http://hl7.org/fhir/allergy-intolerance-category".to_string();
        }
    }
    out
}

fn codes(json: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for field in ["code", "medicationCodeableConcept", "vaccineCode", "type"] {
        codings_of(&json[field], &mut out);
    }
    out
}

fn token_matches(codings: &[(String, String)], wanted: &TokenValue) -> bool {
    codings.iter().any(|(system, code)| {
        wanted.code.as_ref().is_none_or(|c| c == code)
            && match &wanted.system {
                None => true,
                Some(s) if s.is_empty() => system.is_empty(),
                Some(s) => s == system,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn scope_filters_fail_closed() {
        assert!(matches_filter(&lab().json, "category", "laboratory"));
        assert!(!matches_filter(&lab().json, "category", "vital-signs"));
        assert!(!matches_filter(&lab().json, "status", "final"));
    }
}
