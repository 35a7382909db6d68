//! What of a client's query goes to the upstream: only what the bundled store's own parser
//! accepted, rebuilt by the proxy, and a compartment the client cannot rewrite.
//!
//! The client's `patient` / `subject` (and `_id` on Patient) are never forwarded as sent. The
//! bundled store's parser reads them, so `Patient/x` and `x`, repeats, `subject` for
//! `patient` and percent-encoded names mean here what they mean there; the patients they
//! allow are intersected with those the token reaches, and the proxy sends one parameter of
//! its own with what is left. When nothing is left the upstream is not asked at all.

use super::super::access::Confinement;
use super::super::check_format;
use super::super::data::in_compartment;
use super::super::search::{Search, MAX_COUNT};
use crate::server::error::FhirError;

/// Query pairs, in the order they are sent.
pub type Pairs = Vec<(String, String)>;

/// The parameters of the upstream's paging links on its bare base, as HAPI FHIR mints them
/// (`?_getpages=<id>&_getpagesoffset=20&_count=20&_bundletype=searchset`).
pub const PAGE_PARAMS: &[&str] = &[
    "_getpages",
    "_getpagesoffset",
    "_count",
    "_bundletype",
    "_pretty",
    "_format",
];

/// The longest `_getpages` id taken (HAPI's are UUIDs).
const MAX_PAGE_ID: usize = 128;

/// The query for a search on `resource_type`: the client's validated parameters, then the
/// compartment and shared v2 filter of `confinement`, then paging. `None` when the client's
/// own compartment parameters leave no patient the token reaches, so nothing can match.
pub fn search(
    resource_type: &str,
    search: &Search,
    confinement: Option<&Confinement>,
) -> Option<Pairs> {
    let Some(confinement) = confinement else {
        // Open access has no compartment to keep.
        let mut pairs = plain(search, |_| true);
        pairs.extend(paging(search));
        return Some(pairs);
    };
    if !in_compartment(resource_type) || confinement.everyone {
        // No compartment to write in (Practitioner, or a system/ scope reaching every
        // patient): only the grants' shared filter.
        let mut pairs = plain(search, |_| true);
        pairs.extend(confinement.filter.iter().cloned());
        pairs.extend(paging(search));
        return Some(pairs);
    }
    let on_patient = resource_type == "Patient";
    let (name, asked) = if on_patient {
        ("_id", search.ids())
    } else {
        ("patient", search.patients())
    };
    let reach: Vec<&str> = confinement
        .patients
        .iter()
        .filter(|p| asked.iter().all(|any| any.contains(*p)))
        .map(String::as_str)
        .collect();
    if reach.is_empty() {
        return None;
    }
    let compartment = |n: &str| matches!(n, "patient" | "subject") || (on_patient && n == "_id");
    let mut pairs = plain(search, |n| !compartment(n));
    pairs.push((name.to_string(), reach.join(",")));
    pairs.extend(confinement.filter.iter().cloned());
    pairs.extend(paging(search));
    Some(pairs)
}

/// `_count` (capped at the bundled store's limit) and `_offset`, once each, as the bundled
/// store's parser read them; the whole query of a forwarded `$everything`.
pub fn paging(search: &Search) -> Pairs {
    let mut pairs = Vec::new();
    if search.link_params.iter().any(|(n, _)| n == "_count") {
        pairs.push(("_count".to_string(), search.count.to_string()));
    }
    if search.offset > 0 {
        pairs.push(("_offset".to_string(), search.offset.to_string()));
    }
    pairs
}

/// The validated parameters `keep` lets through, without `_format` (the proxy always asks
/// for JSON) and the paging ones (added once by `paging`).
fn plain(search: &Search, keep: impl Fn(&str) -> bool) -> Pairs {
    search
        .link_params
        .iter()
        .filter(|(n, _)| !matches!(n.as_str(), "_format" | "_count") && keep(n))
        .cloned()
        .collect()
}

/// The query of a page asked for at the bare base, checked to be a paging link's and
/// nothing more (`_count` capped as on a search): no compartment can be added there, so a
/// search at the bare base (`?_type=Condition&code=…`) would reach every patient.
pub fn page(pairs: &[(String, String)]) -> Result<Pairs, FhirError> {
    let refuse = |what: String| {
        FhirError::invalid(format!(
            "{what}: the bare FHIR base answers only the upstream's paging links, which take {} (each once); search on a type instead, e.g. /api/fhir/Observation?code=…",
            PAGE_PARAMS.join(", ")
        ))
    };
    let mut out = Pairs::new();
    for (at, (name, value)) in pairs.iter().enumerate() {
        if !PAGE_PARAMS.contains(&name.as_str()) {
            return Err(refuse(format!(
                "parameter {name:?} is not taken at the bare FHIR base"
            )));
        }
        // Bounded: every name before a repeat is one of the few paging names.
        if pairs[..at].iter().any(|(n, _)| n == name) {
            return Err(refuse(format!("parameter {name} is given twice")));
        }
        let fits = match name.as_str() {
            "_getpages" => is_page_id(value),
            "_getpagesoffset" | "_count" => value.parse::<usize>().is_ok(),
            "_bundletype" => value == "searchset",
            "_pretty" => matches!(value.as_str(), "true" | "false"),
            _ => {
                check_format(value)?;
                continue;
            }
        };
        if !fits {
            return Err(refuse(format!(
                "{name}={value:?} is not what a paging link carries"
            )));
        }
        let value = match value.parse::<usize>() {
            Ok(count) if name == "_count" => count.min(MAX_COUNT).to_string(),
            _ => value.clone(),
        };
        out.push((name.clone(), value));
    }
    if !out.iter().any(|(n, _)| n == "_getpages") {
        return Err(refuse("a page needs its _getpages id".to_string()));
    }
    Ok(out)
}

fn is_page_id(value: &str) -> bool {
    (1..=MAX_PAGE_ID).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(list: &[(&str, &str)]) -> Pairs {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn confined(patients: &[&str]) -> Confinement {
        Confinement {
            patients: patients.iter().map(|p| p.to_string()).collect(),
            filter: owned(&[("category", "laboratory")]),
            complete: true,
            everyone: false,
        }
    }

    fn asked(resource_type: &str, query: &[(&str, &str)], reach: &[&str]) -> Option<Pairs> {
        let parsed = Search::parse(resource_type, &owned(query)).unwrap();
        search(resource_type, &parsed, Some(&confined(reach)))
    }

    #[test]
    fn the_compartment_is_the_intersection_and_written_once() {
        assert_eq!(
            asked(
                "Observation",
                &[
                    ("_count", "9000"),
                    ("subject", "Patient/a"),
                    ("code", "x"),
                    ("patient", "a,b"),
                    ("_format", "json"),
                    ("_offset", "4"),
                    ("_count", "3"),
                ],
                &["a", "b"]
            ),
            Some(owned(&[
                ("code", "x"),
                ("patient", "a"),
                ("category", "laboratory"),
                ("_count", "3"),
                ("_offset", "4"),
            ]))
        );
        assert_eq!(
            asked("Patient", &[("_id", "a,c"), ("_id", "c")], &["a", "b"]),
            None
        );
        assert_eq!(
            asked("Patient", &[("_id", "b,c")], &["a", "b"]),
            Some(owned(&[("_id", "b"), ("category", "laboratory")]))
        );
        assert_eq!(
            asked("Condition", &[("_id", "c1")], &["b", "a"]),
            Some(owned(&[
                ("_id", "c1"),
                ("patient", "b,a"),
                ("category", "laboratory")
            ]))
        );
        for other in ["c", "Patient/c", "http://up.example/Patient/a", "Group/a"] {
            assert_eq!(asked("Encounter", &[("subject", other)], &["a", "b"]), None);
        }
        // A FHIR escape cannot smuggle a value through: the proxy writes only reached ids.
        assert_eq!(
            asked("Encounter", &[("subject", "c\\,b")], &["a", "b"]),
            Some(owned(&[("patient", "b"), ("category", "laboratory")]))
        );
    }

    #[test]
    fn a_type_in_no_compartment_is_asked_without_one() {
        assert_eq!(
            asked("Practitioner", &[("_id", "p1"), ("_count", "2")], &[]),
            Some(owned(&[
                ("_id", "p1"),
                ("category", "laboratory"),
                ("_count", "2")
            ]))
        );
        assert_eq!(
            asked("RelatedPerson", &[("patient", "c")], &["a"]),
            None,
            "RelatedPerson keeps its compartment"
        );
    }

    #[test]
    fn the_bare_base_takes_only_paging_links() {
        let link = owned(&[
            ("_getpages", "0b7c-4f.x_1"),
            ("_getpagesoffset", "20"),
            ("_count", "20"),
            ("_format", "json"),
            ("_pretty", "true"),
            ("_bundletype", "searchset"),
        ]);
        let mut sent = link.clone();
        sent.retain(|(n, _)| n != "_format");
        assert_eq!(page(&link).unwrap(), sent);
        assert_eq!(
            page(&owned(&[("_getpages", "p"), ("_count", "9000")])).unwrap(),
            owned(&[("_getpages", "p"), ("_count", "500")])
        );
        for bad in [
            vec![("_type", "Condition"), ("code", "x")],
            vec![("_getpages", "p"), ("_type", "Condition")],
            vec![("_getpages", "p"), ("patient", "x")],
            vec![("_getpages", "p"), ("_getpages", "q")],
            vec![("_getpages", "p"), ("_bundletype", "batch")],
            vec![("_getpages", "p"), ("_count", "-1")],
            vec![("_getpages", "")],
            vec![("_getpages", "../x")],
            vec![("_getpagesoffset", "20")],
        ] {
            let err = page(&owned(&bad)).unwrap_err();
            assert_eq!(err.status, 400, "{bad:?}");
            assert!(err.diagnostics.contains("bare FHIR base"), "{bad:?}");
        }
        let long = "a".repeat(MAX_PAGE_ID + 1);
        assert!(page(&owned(&[("_getpages", &long)])).is_err());
        assert_eq!(page(&owned(&[("_format", "xml")])).unwrap_err().status, 406);
    }
}
