//! FHIR search parameters, each checked against what the open-fhir data itself says should
//! match: _id, patient, subject, category, code, date and encounter, and refusals of the rest.

use crate::common::*;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const CATEGORY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const LOINC: &str = "http://loinc.org";

/// The codings of a CodeableConcept or a list of them.
fn codings(concepts: &Value) -> Vec<&Value> {
    let list: Vec<&Value> = match concepts {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    list.iter()
        .flat_map(|c| c["coding"].as_array().into_iter().flatten())
        .collect()
}

/// Whether a concept (or list) has this code, in this system when one is given.
fn has_coding(concepts: &Value, system: Option<&str>, code: &str) -> bool {
    codings(concepts)
        .iter()
        .any(|c| c["code"] == code && system.is_none_or(|s| c["system"] == s))
}

/// The date a resource is searched by, as written in it.
fn date_of(resource: &Value) -> &str {
    resource["effectiveDateTime"]
        .as_str()
        .or_else(|| resource["period"]["start"].as_str())
        .unwrap_or_else(|| panic!("{} has no date", key(resource)))
}

/// Search the protected base as the seed's token and the open base, and assert both return
/// exactly the resources `wanted` picks from `all` (the protected one: only its patient's).
async fn assert_search(
    server: &TestServer,
    token: &str,
    all: &[Value],
    query: &str,
    wanted: impl Fn(&Value) -> bool,
) {
    let expected: Vec<Value> = all.iter().filter(|r| wanted(r)).cloned().collect();
    assert!(
        !expected.is_empty(),
        "{query}: the expectation is empty, a weak test"
    );
    assert!(
        expected.len() < all.len(),
        "{query}: the expectation is everything, a weak test"
    );
    let (open, _) = server.search_all(&server.open_fhir(query), None).await;
    assert_eq!(keys(&open), keys(&expected), "open {query}");
    let own: Vec<Value> = expected
        .into_iter()
        .filter(|r| patient_of(r).as_deref() == Some(DANIEL_PATIENT))
        .collect();
    let (protected, _) = server.search_all(&server.fhir(query), Some(token)).await;
    assert_eq!(keys(&protected), keys(&own), "protected {query}");
}

#[tokio::test]
async fn id_patient_and_subject_select_what_they_name() {
    let server = start().await;
    let token = server.seed_token().await;
    let all = everything_of(&server, "Observation").await;
    let (a, b) = (key(&all[3]), key(&all[40]));
    let (a_id, b_id) = (a.split('/').nth(1).unwrap(), b.split('/').nth(1).unwrap());
    let query = format!("/Observation?_id={a_id},{b_id}");
    assert_search(&server, &token, &all, &query, |r| {
        key(r) == a || key(r) == b
    })
    .await;
    for patient in [DANIEL_PATIENT, JOSEPH_PATIENT] {
        let is_theirs = |r: &Value| patient_of(r).as_deref() == Some(patient);
        for query in [
            format!("/Observation?patient={patient}"),
            format!("/Observation?subject={patient}"),
            format!("/Observation?subject=Patient/{patient}"),
        ] {
            assert_search(&server, &token, &all, &query, is_theirs).await;
        }
    }
}

#[tokio::test]
async fn category_matches_with_and_without_its_system() {
    let server = start().await;
    let token = server.seed_token().await;
    let all = everything_of(&server, "Observation").await;
    for category in ["laboratory", "vital-signs", "social-history"] {
        let wanted = |r: &Value| has_coding(&r["category"], None, category);
        assert_search(
            &server,
            &token,
            &all,
            &format!("/Observation?category={category}"),
            wanted,
        )
        .await;
        let query = format!("/Observation?category={CATEGORY_SYSTEM}|{category}");
        assert_search(&server, &token, &all, &query, wanted).await;
    }
    let either = |r: &Value| {
        has_coding(&r["category"], None, "laboratory")
            || has_coding(&r["category"], None, "social-history")
    };
    assert_search(
        &server,
        &token,
        &all,
        "/Observation?category=laboratory,social-history",
        either,
    )
    .await;
    let (wrong_system, _) = server
        .search_all(
            &server.open_fhir("/Observation?category=http://example.org|laboratory"),
            None,
        )
        .await;
    assert!(wrong_system.is_empty());
}

#[tokio::test]
async fn code_matches_by_code_by_system_and_code_and_by_any_of_several() {
    let server = start().await;
    let token = server.seed_token().await;
    let all = everything_of(&server, "Observation").await;
    let heart_rate = |r: &Value| has_coding(&r["code"], Some(LOINC), "8867-4");
    assert_search(
        &server,
        &token,
        &all,
        "/Observation?code=8867-4",
        heart_rate,
    )
    .await;
    assert_search(
        &server,
        &token,
        &all,
        "/Observation?code=http://loinc.org|8867-4",
        heart_rate,
    )
    .await;
    let hr_or_glucose = |r: &Value| {
        has_coding(&r["code"], None, "8867-4") || has_coding(&r["code"], None, "2339-0")
    };
    assert_search(
        &server,
        &token,
        &all,
        "/Observation?code=8867-4,2339-0",
        hr_or_glucose,
    )
    .await;
    let hr_and_vital = |r: &Value| heart_rate(r) && has_coding(&r["category"], None, "vital-signs");
    let query = "/Observation?code=8867-4&category=vital-signs&patient=smart-1288992";
    let mine = |r: &Value| hr_and_vital(r) && patient_of(r).as_deref() == Some(DANIEL_PATIENT);
    assert_search(&server, &token, &all, query, mine).await;
    let (none, _) = server
        .search_all(
            &server.open_fhir("/Observation?code=http://snomed.info/sct|8867-4"),
            None,
        )
        .await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn encounter_selects_what_was_recorded_in_it_as_a_reference_or_a_bare_id() {
    let server = start().await;
    let token = server.seed_token().await;
    for resource_type in ["Observation", "Condition", "Procedure", "MedicationRequest"] {
        let url = server.open_fhir(&format!("/{resource_type}?_count=500"));
        let (all, _) = server.search_all(&url, None).await;
        let recorded_in = |r: &Value| r["encounter"]["reference"].as_str().map(str::to_string);
        let mut encounters: Vec<String> = all.iter().filter_map(recorded_in).collect();
        encounters.sort();
        encounters.dedup();
        assert!(
            !encounters.is_empty(),
            "no {resource_type} names an encounter"
        );
        for reference in &encounters {
            let id = reference.strip_prefix("Encounter/").unwrap();
            let wanted = |r: &Value| recorded_in(r).as_deref() == Some(reference.as_str());
            for query in [
                format!("/{resource_type}?encounter={reference}"),
                format!("/{resource_type}?encounter={id}"),
            ] {
                assert_search(&server, &token, &all, &query, wanted).await;
            }
        }
        if let [first, second, ..] = encounters.as_slice() {
            let either = |r: &Value| recorded_in(r).is_some_and(|e| e == *first || e == *second);
            let query = format!("/{resource_type}?encounter={first},{second}");
            assert_search(&server, &token, &all, &query, either).await;
            let (both, _) = server
                .search_all(
                    &server.open_fhir(&format!(
                        "/{resource_type}?encounter={first}&encounter={second}"
                    )),
                    None,
                )
                .await;
            assert!(both.is_empty(), "one encounter each: {:?}", keys(&both));
        }
    }
    let statement = server.get(&server.open_fhir("/metadata")).await;
    let resources = statement.json()["rest"][0]["resource"].clone();
    for entry in resources.as_array().unwrap() {
        let listed = entry["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "encounter" && p["type"] == "reference");
        let expected = matches!(
            entry["type"].as_str().unwrap(),
            "Observation" | "Condition" | "Procedure" | "MedicationRequest"
        );
        assert_eq!(listed, expected, "{}", entry["type"]);
    }
}

#[tokio::test]
async fn date_eq_ge_and_le_compare_at_the_precision_written() {
    let server = start().await;
    let token = server.seed_token().await;
    let all = everything_of(&server, "Observation").await;
    let day = |r: &Value| date_of(r)[..10].to_string();
    // A day that has data for Daniel, taken from the data itself.
    let some_day = all
        .iter()
        .find(|r| patient_of(r).as_deref() == Some(DANIEL_PATIENT))
        .map(day)
        .unwrap();
    let year = some_day[..4].to_string();
    let month = some_day[..7].to_string();
    assert_search(
        &server,
        &token,
        &all,
        &format!("/Observation?date={some_day}"),
        |r| day(r) == some_day,
    )
    .await;
    assert_search(
        &server,
        &token,
        &all,
        &format!("/Observation?date=eq{some_day}"),
        |r| day(r) == some_day,
    )
    .await;
    assert_search(
        &server,
        &token,
        &all,
        &format!("/Observation?date=ge{some_day}"),
        |r| day(r) >= some_day,
    )
    .await;
    assert_search(
        &server,
        &token,
        &all,
        &format!("/Observation?date=le{some_day}"),
        |r| day(r) <= some_day,
    )
    .await;
    assert_search(
        &server,
        &token,
        &all,
        &format!("/Observation?date={year}"),
        |r| day(r).starts_with(&year),
    )
    .await;
    assert_search(
        &server,
        &token,
        &all,
        &format!("/Observation?date={month}"),
        |r| day(r).starts_with(&month),
    )
    .await;
    let range = "/Observation?date=ge2016-01-01&date=le2016-12-31";
    assert_search(&server, &token, &all, range, |r| day(r).starts_with("2016")).await;

    // With a time, instants are compared, whatever the offsets.
    let instant = |r: &Value| OffsetDateTime::parse(date_of(r), &Rfc3339).unwrap();
    let cut = OffsetDateTime::parse(&format!("{some_day}T14:00:00Z"), &Rfc3339).unwrap();
    let query = format!("/Observation?date=ge{some_day}T14:00:00Z");
    assert_search(&server, &token, &all, &query, |r| instant(r) >= cut).await;

    let encounters = everything_of(&server, "Encounter").await;
    assert_search(
        &server,
        &token,
        &encounters,
        "/Encounter?date=le2016-12-31",
        |r| day(r).as_str() <= "2016-12-31",
    )
    .await;
}

#[tokio::test]
async fn unknown_or_malformed_search_parameters_are_400_operation_outcomes() {
    let server = start().await;
    let token = server.seed_token().await;
    for query in [
        "/Observation?foo=bar",
        "/Observation?_sort=date",
        "/Observation?code:text=heart",
        "/Observation?date=yesterday",
        "/Observation?date=2018-6-26",
        "/Observation?_count=ten",
        "/Observation?_count=-1",
        "/Observation?_id=",
        "/Observation?code=|",
        "/Patient?category=laboratory",
        "/Patient/smart-1288992?_count=1",
        "/Patient/smart-1288992/$everything?code=8867-4",
    ] {
        let reply = server.get_bearer(&server.fhir(query), &token).await;
        assert_eq!(assert_outcome(&reply, 400), "invalid", "{query}");
        let open = server.get(&server.open_fhir(query)).await;
        assert_outcome(&open, 400);
    }
}

/// A 10,000-value list (a 20 KB URL, within the request-head cap) is refused up front, on
/// both bases, naming the parameter and the limit; 50 values, repeats included, still
/// search; so do 50 parameters, not 51. The probe's 32,000 values (64 KB) do not get past
/// the head cap at all.
#[tokio::test]
async fn long_value_lists_and_many_parameters_are_refused_with_the_limit() {
    let server = start().await;
    let token = server.seed_token().await;
    let too_long = vec!["a"; 32_000].join(",");
    let reply = server
        .get(&server.open_fhir(&format!("/Observation?code={too_long}")))
        .await;
    assert_eq!(reply.status, 431, "{}", reply.text);
    let flood = vec!["a"; 10_000].join(",");
    for name in ["code", "category"] {
        let query = format!("/Observation?{name}={flood}");
        for reply in [
            server.get(&server.open_fhir(&query)).await,
            server.get_bearer(&server.fhir(&query), &token).await,
        ] {
            assert_eq!(assert_outcome(&reply, 400), "invalid");
            let why = reply.json()["issue"][0]["diagnostics"].to_string();
            assert!(why.contains(name) && why.contains("50"), "{why}");
        }
    }
    let fifty = format!("{}http://loinc.org|2339-0", "a,".repeat(49));
    let (hits, _) = server
        .search_all(
            &server.open_fhir(&format!("/Observation?code={fifty}")),
            None,
        )
        .await;
    assert!(!hits.is_empty(), "50 values still search");
    let dates = |n: usize| vec!["date=ge1900"; n].join("&");
    let reply = server
        .get(&server.open_fhir(&format!("/Observation?{}", dates(51))))
        .await;
    assert_eq!(assert_outcome(&reply, 400), "invalid");
    assert!(reply.text.contains("at most 50"), "{}", reply.text);
    let reply = server
        .get(&server.open_fhir(&format!("/Observation?{}&_count=1", dates(49))))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    server.stop().await;
}

/// A date of the right shape that names no calendar day (2017-13-45, 2017-02-30, month 00,
/// year 0000, a 29 February outside a leap year, the same at the start of a dateTime) is a
/// 400 OperationOutcome naming the value, with every prefix and on both bases; a real 29
/// February still searches.
#[tokio::test]
async fn impossible_calendar_dates_are_400_naming_the_value() {
    let server = start().await;
    let token = server.seed_token().await;
    let impossible = [
        "2017-13-45",
        "2017-02-30",
        "2017-04-31",
        "2019-02-29",
        "2017-00-10",
        "2017-01-00",
        "2017-13",
        "2017-00",
        "0000",
        "2017-02-30T10:00:00Z",
        "2017-13-01T00:00:00%2B02:00",
    ];
    for prefix in ["", "eq", "ne", "gt", "lt", "ge", "le"] {
        for date in impossible {
            let query = format!("/Observation?date={prefix}{date}");
            let written = format!("{prefix}{date}").replace("%2B", "+");
            for reply in [
                server.get_bearer(&server.fhir(&query), &token).await,
                server.get(&server.open_fhir(&query)).await,
            ] {
                assert_eq!(assert_outcome(&reply, 400), "invalid", "{query}");
                let why = reply.json()["issue"][0]["diagnostics"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                assert!(why.contains(&written), "{query}: {why}");
                assert!(why.contains("not a calendar date"), "{query}: {why}");
            }
        }
    }
    for fine in [
        "2020-02-29",
        "ge2016-02-29",
        "le2017-12-31T23:59:59Z",
        "2017-12",
    ] {
        let query = format!("/Observation?date={fine}");
        let reply = server.get_bearer(&server.fhir(&query), &token).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.text);
    }
}
