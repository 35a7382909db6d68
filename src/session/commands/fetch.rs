//! `fetch`: GET a FHIR path with the bearer token; Bundles also as a table.

use serde_json::Value;

use super::super::args::Args;
use super::super::context::Ctx;
use super::super::output::{CommandError, Output, Table};

pub(super) fn fetch(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    let path = args.positional(0).unwrap_or_default();
    let endpoints = ctx.endpoints()?;
    let open = args.has("open");
    let url = if path.starts_with("http://") || path.starts_with("https://") {
        path.to_string()
    } else if let Some(rooted) = path.strip_prefix('/').filter(|p| p.starts_with("api/")) {
        format!("{}/{rooted}", endpoints.base)
    } else {
        let base = if open {
            endpoints.open_fhir.clone().ok_or_else(|| {
                CommandError::new("NoEndpoint", "the target server has no open FHIR endpoint")
                    .hint("drop --open and use a token")
            })?
        } else {
            endpoints.fhir.clone()
        };
        format!("{base}/{}", path.trim_start_matches('/'))
    };
    let bearer = if open || args.has("no-auth") {
        None
    } else if let Some(token) = args.value("token") {
        Some(token.to_string())
    } else {
        Some(ctx.var("access_token").map_err(|e| {
            e.hint("run `token` or `exchange` first, or add --no-auth (or --open) to send no token")
        })?)
    };
    let client = ctx.state.client.clone();
    let reply = ctx.request(client.get(&url, bearer.as_deref()))?;
    ctx.show(&reply);
    if let Some(bundle) = reply.json().filter(|j| j["resourceType"] == "Bundle") {
        ctx.emit(Output::Table(bundle_table(bundle)));
    }
    Ok(())
}

/// One row per entry: reference, date, and what it is; with a patient column when the
/// entries belong to more than one patient (a system token's search across patients).
pub fn bundle_table(bundle: &Value) -> Table {
    let resources: Vec<&Value> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| &entry["resource"])
        .collect();
    let patients: Vec<String> = resources.iter().map(|r| patient_of(r)).collect();
    let mut distinct: Vec<&String> = patients.iter().filter(|p| !p.is_empty()).collect();
    distinct.sort();
    distinct.dedup();
    // A list of Patients names its patients in the resource column already.
    let spans = distinct.len() > 1 && resources.iter().any(|r| r["resourceType"] != "Patient");
    let rows = resources
        .iter()
        .zip(&patients)
        .map(|(r, patient)| {
            let mut row = vec![format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap_or("?"),
                r["id"].as_str().unwrap_or("?")
            )];
            if spans {
                row.push(patient.clone());
            }
            row.push(date_of(r));
            row.push(describe(r));
            row
        })
        .collect();
    let mut columns = vec!["resource".to_string()];
    if spans {
        columns.push("patient".into());
    }
    columns.extend(["date".to_string(), "summary".to_string()]);
    Table {
        columns,
        rows,
        json: None,
    }
}

/// The id of the patient a resource belongs to: a Patient's own, or the one its `subject`,
/// `patient` or `beneficiary` references; empty when it names none.
fn patient_of(r: &Value) -> String {
    if r["resourceType"] == "Patient" {
        return r["id"].as_str().unwrap_or_default().to_string();
    }
    ["subject", "patient", "beneficiary"]
        .iter()
        .filter_map(|field| r[*field]["reference"].as_str())
        .find_map(|reference| {
            let (kind, id) = reference.trim_end_matches('/').rsplit_once('/')?;
            (kind == "Patient" || kind.ends_with("/Patient")).then(|| id.to_string())
        })
        .unwrap_or_default()
}

fn date_of(r: &Value) -> String {
    const PATHS: &[&str] = &[
        "/effectiveDateTime",
        "/onsetDateTime",
        "/performedDateTime",
        "/performedPeriod/start",
        "/occurrenceDateTime",
        "/authoredOn",
        "/period/start",
        "/recordedDate",
        "/birthDate",
    ];
    PATHS
        .iter()
        .find_map(|p| r.pointer(p).and_then(Value::as_str))
        .map(|d| d.get(..10).unwrap_or(d).to_string())
        .unwrap_or_default()
}

fn concept_text(c: &Value) -> Option<String> {
    c["text"]
        .as_str()
        .or_else(|| c.pointer("/coding/0/display").and_then(Value::as_str))
        .map(str::to_string)
}

/// A resource's first name as given names then family ("Daniel X. Adams"), or its text.
pub fn human_name(r: &Value) -> String {
    let name = &r["name"][0];
    let given: Vec<&str> = name["given"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let full = format!(
        "{} {}",
        given.join(" "),
        name["family"].as_str().unwrap_or_default()
    )
    .trim()
    .to_string();
    if full.is_empty() {
        name["text"].as_str().unwrap_or_default().to_string()
    } else {
        full
    }
}

fn describe(r: &Value) -> String {
    if r["resourceType"] == "Patient" {
        return human_name(r);
    }
    let what = ["code", "medicationCodeableConcept", "vaccineCode"]
        .iter()
        .find_map(|f| concept_text(&r[*f]))
        .or_else(|| concept_text(&r["type"][0]))
        .unwrap_or_default();
    let value = if let Some(q) = r.get("valueQuantity") {
        format!("{} {}", q["value"], q["unit"].as_str().unwrap_or_default())
    } else if let Some(c) = r.get("valueCodeableConcept") {
        concept_text(c).unwrap_or_default()
    } else if let Some(parts) = r["component"].as_array() {
        parts
            .iter()
            .map(|p| p["valueQuantity"]["value"].to_string())
            .collect::<Vec<_>>()
            .join("/")
    } else {
        String::new()
    };
    if value.is_empty() {
        what
    } else {
        format!("{what}: {}", value.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bundle_rows_say_what_each_entry_is() {
        let bundle = json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Observation", "id": "o1", "effectiveDateTime": "2018-03-14T09:30:00-05:00",
                "code": {"text": "Heart rate"}, "valueQuantity": {"value": 72, "unit": "/min"}}},
            {"resource": {"resourceType": "Patient", "id": "p1", "birthDate": "1925-12-23", "name": [{"given": ["Daniel", "X."], "family": "Adams"}]}}
        ]});
        let t = bundle_table(&bundle);
        assert_eq!(
            t.rows[0],
            vec!["Observation/o1", "2018-03-14", "Heart rate: 72 /min"]
        );
        assert_eq!(
            t.rows[1],
            vec!["Patient/p1", "1925-12-23", "Daniel X. Adams"]
        );
        assert_eq!(t.columns, ["resource", "date", "summary"]);
    }

    #[test]
    fn entries_of_several_patients_gain_a_patient_column() {
        let observation = |id: &str, subject: &str| {
            json!({"resource": {"resourceType": "Observation", "id": id, "subject": {"reference": subject},
                "effectiveDateTime": "2020-01-02", "code": {"text": "Weight"}}})
        };
        let bundle = json!({"resourceType": "Bundle", "entry": [
            observation("o1", "Patient/smart-1"),
            observation("o2", "http://h/api/fhir/Patient/smart-2"),
            {"resource": {"resourceType": "Immunization", "id": "i1", "patient": {"reference": "Patient/smart-1"}}},
            {"resource": {"resourceType": "Practitioner", "id": "dr"}}
        ]});
        let t = bundle_table(&bundle);
        assert_eq!(t.columns, ["resource", "patient", "date", "summary"]);
        assert_eq!(
            t.rows[0],
            ["Observation/o1", "smart-1", "2020-01-02", "Weight"]
        );
        assert_eq!(t.rows[1][1], "smart-2");
        assert_eq!(t.rows[2][1], "smart-1");
        assert_eq!(t.rows[3][1], "");
        // One patient's entries, or a list of Patients, need no such column.
        let one = json!({"resourceType": "Bundle", "entry": [observation("o1", "Patient/smart-1"), observation("o3", "Patient/smart-1")]});
        assert_eq!(bundle_table(&one).columns.len(), 3);
        let patients = json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Patient", "id": "a"}}, {"resource": {"resourceType": "Patient", "id": "b"}}]});
        assert_eq!(bundle_table(&patients).columns.len(), 3);
    }
}
