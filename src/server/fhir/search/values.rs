//! Search values: token and date values parsed from a query, and matched against a resource.

use std::collections::HashSet;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::server::error::FhirError;

/// The comma-separated alternatives of one token parameter (`system|code`, `|code`, `code`
/// or `system|`), held as sets so a resource's codings are each looked up once rather than
/// compared with every value.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct TokenSet {
    /// `system|code` and `|code` (system empty): both must match.
    pairs: HashSet<(String, String)>,
    /// `code`: any system.
    codes: HashSet<String>,
    /// `system|`: any code in that system.
    systems: HashSet<String>,
}

impl TokenSet {
    /// Whether any of these codings is one of the alternatives.
    pub(super) fn matches(&self, codings: &[(String, String)]) -> bool {
        codings.iter().any(|coding| {
            self.pairs.contains(coding)
                || self.codes.contains(&coding.1)
                || self.systems.contains(&coding.0)
        })
    }
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

/// A date search value: a comparator and a date, day or instant.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DateValue {
    prefix: Prefix,
    /// The value as written, without its prefix.
    text: String,
    /// Set when the value carries a time: compare instants, not calendar prefixes.
    instant: Option<OffsetDateTime>,
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
    tokens.matches(&codings)
}

/// The most comma-separated values one search parameter may carry.
pub const MAX_VALUES: usize = 50;

/// The distinct comma-separated values of parameter `name`, in the order first written;
/// refused when one is empty or there are more than [`MAX_VALUES`].
pub(super) fn split_values(name: &str, value: &str) -> Result<Vec<String>, FhirError> {
    let mut seen = HashSet::new();
    let mut values = Vec::new();
    for (at, v) in value.split(',').enumerate() {
        if at == MAX_VALUES {
            return Err(FhirError::invalid(format!(
                "parameter {name} has more than {MAX_VALUES} comma-separated values; give at most {MAX_VALUES} per parameter and search again for the rest"
            )));
        }
        if v.is_empty() {
            return Err(FhirError::invalid(format!(
                "parameter {name} has an empty value; give one or more comma-separated values"
            )));
        }
        if seen.insert(v) {
            values.push(v.to_string());
        }
    }
    Ok(values)
}

pub(super) fn token_values(name: &str, value: &str) -> Result<TokenSet, FhirError> {
    let mut set = TokenSet::default();
    for v in split_values(name, value)? {
        match v.split_once('|') {
            None => {
                set.codes.insert(v);
            }
            Some(("", "")) => {
                return Err(FhirError::invalid(format!(
                    "{name}={v:?} names neither a system nor a code"
                )))
            }
            Some((system, "")) => {
                set.systems.insert(system.to_string());
            }
            Some((system, code)) => {
                set.pairs.insert((system.to_string(), code.to_string()));
            }
        }
    }
    Ok(set)
}

pub(super) fn parse_number(name: &str, value: &str) -> Result<usize, FhirError> {
    value
        .parse()
        .map_err(|_| FhirError::invalid(format!("{name} must be a whole number, not {value:?}")))
}

pub(super) fn parse_date(value: &str) -> Result<DateValue, FhirError> {
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
    // The calendar date a shape-correct value names must exist (2017-02-30 does not), in
    // the day form and at the start of a dateTime alike.
    let day = if text.len() > 10 {
        text.get(..10)
    } else {
        Some(text)
    };
    if let Some(day) = day.filter(|d| shape_ok(d)) {
        check_calendar(value, day)?;
    }
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

/// Refuse a `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (digits already checked) that names no
/// calendar date: year 0000, month 00 or 13, 2017-02-30, 2019-02-29, 2017-04-31.
fn check_calendar(value: &str, day: &str) -> Result<(), FhirError> {
    let number = |r: std::ops::Range<usize>| day.get(r).and_then(|s| s.parse::<u16>().ok());
    let impossible = |why: String| {
        FhirError::invalid(format!(
            "date={value:?} is not a calendar date: {why}; write a real date such as 2018-03-14"
        ))
    };
    let year = number(0..4).unwrap_or(0);
    if year == 0 {
        return Err(impossible("there is no year 0000".into()));
    }
    let Some(month) = number(5..7) else {
        return Ok(());
    };
    let Ok(month) = time::Month::try_from(u8::try_from(month).unwrap_or(0)) else {
        return Err(impossible(format!(
            "{day} has month {month:02}; months run from 01 to 12"
        )));
    };
    let Some(day_of_month) = number(8..10) else {
        return Ok(());
    };
    let year = i32::from(year);
    let last = month.length(year);
    if day_of_month == 0 || day_of_month > u16::from(last) {
        return Err(impossible(format!("{month} {year} has days 01 to {last}")));
    }
    Ok(())
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

pub(super) fn date_matches(json: &Value, wanted: &DateValue) -> bool {
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

pub(super) fn categories(json: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    codings_of(&json["category"], &mut out);
    if json["resourceType"] == "AllergyIntolerance" {
        for (system, _) in &mut out {
            *system = "http://hl7.org/fhir/allergy-intolerance-category".to_string();
        }
    }
    out
}

pub(super) fn codes(json: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for field in ["code", "medicationCodeableConcept", "vaccineCode", "type"] {
        codings_of(&json[field], &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scope_filters_fail_closed() {
        let lab = json!({
            "resourceType": "Observation",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        });
        assert!(matches_filter(&lab, "category", "laboratory"));
        assert!(!matches_filter(&lab, "category", "vital-signs"));
        assert!(!matches_filter(&lab, "status", "final"));
    }
}
