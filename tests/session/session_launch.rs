//! EHR launch in the helper commands: `launch` plays the EHR, `authorize --launch` the app,
//! `exchange` and `refresh` bind the context the EHR chose; `authorize --listen` follows the
//! EHR's request to the app's launch URL as a browser brings it.

use serde_json::{json, Value};

use crate::session_support::*;
use smartnb::session::Session;

/// The patient the EHR launches for (joseph-ross's record; dr-carter treats him).
const PATIENT: &str = "smart-1081332";
/// What the clinician means to do, as the EHR says it.
const INTENT: &str = "reconcile-medications";
/// A clinician's scopes: every patient dr-carter may see, and who signed in.
const SCOPE: &str = "launch openid fhirUser user/*.rs offline_access";

/// A session with a client that may ask for SCOPE.
fn clinician_app() -> Session {
    let mut s = session();
    let out = ok(&mut s, &format!("register --scope \"{SCOPE}\""));
    assert_eq!(statuses(&out), [201]);
    s
}

/// An Observation id in the patient's record, read from the open FHIR endpoint.
fn an_observation_of(s: &mut Session, patient: &str) -> String {
    ok(s, &format!("fetch Observation?patient={patient} --open"));
    var_json(s, "response")["entry"][0]["resource"]["id"]
        .as_str()
        .expect("the patient has an Observation")
        .to_string()
}

/// A variable's JSON value.
fn var_json(s: &Session, name: &str) -> Value {
    s.vars()
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("${name} is not bound"))
}

/// The patient's most recent Encounter id, as the open FHIR endpoint lists them.
fn latest_encounter_of(s: &mut Session, patient: &str) -> String {
    ok(s, &format!("fetch Encounter?patient={patient} --open"));
    let bundle = var_json(s, "response");
    let entries = bundle["entry"]
        .as_array()
        .expect("the patient has Encounters");
    let start = |e: &Value| {
        e["resource"]["period"]["start"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let latest = entries
        .iter()
        .max_by_key(|e| start(e))
        .expect("at least one Encounter");
    latest["resource"]["id"].as_str().unwrap().to_string()
}

/// Launch, authorize as dr-carter with the launch, exchange; the exchange's outputs.
fn launched_and_exchanged(s: &mut Session, observation: &str) -> Vec<smartnb::session::Output> {
    let out = ok(
        s,
        &format!("launch --patient {PATIENT} --encounter auto --intent {INTENT} --context Observation/{observation}"),
    );
    assert_eq!(statuses(&out), [200]);
    let reply = the_json(&out).clone();
    assert_eq!(var(s, "launch"), reply["launch"].as_str().unwrap());
    assert_eq!(var(s, "iss"), reply["iss"].as_str().unwrap());
    let out = ok(s, "authorize --as dr-carter:demo-password --launch");
    let params = link_params(&out);
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(param("launch"), Some(var(s, "launch")));
    assert!(param("scope")
        .unwrap()
        .split_whitespace()
        .any(|w| w == "launch"));
    assert!(
        !texts(&out).iter().any(|t| t.starts_with("Picked patient")),
        "an EHR launch has no patient picker: {out:#?}"
    );
    ok(s, "exchange")
}

#[test]
fn an_ehr_launch_binds_patient_encounter_fhir_context_and_intent() {
    let mut s = clinician_app();
    let observation = an_observation_of(&mut s, PATIENT);
    let latest = latest_encounter_of(&mut s, PATIENT);
    let out = launched_and_exchanged(&mut s, &observation);
    let answer = the_json(&out).clone();

    assert_eq!(var(&s, "patient"), PATIENT);
    assert_eq!(var(&s, "encounter"), latest, "auto is the most recent");
    assert_eq!(var(&s, "intent"), INTENT);
    let context: Value = serde_json::from_str(&var(&s, "fhir_context")).unwrap();
    assert_eq!(
        context,
        json!([{"reference": format!("Encounter/{latest}")}, {"reference": format!("Observation/{observation}")}])
    );
    assert_eq!(context, answer["fhirContext"]);
    assert_eq!(answer["need_patient_banner"], json!(false));
    assert!(answer["smart_style_url"]
        .as_str()
        .is_some_and(|u| u.ends_with("/smart-style.json")));
    assert!(bound(&s, "id_token"));
    assert!(notes(&out)
        .iter()
        .any(|n| n.contains("$encounter") && n.contains("$fhir_context") && n.contains("$intent")));

    // The encounter in context is readable with the token.
    let out = ok(&mut s, "fetch Encounter/$encounter");
    assert_eq!(statuses(&out), [200]);
    assert_eq!(
        var_json(&s, "response")["subject"]["reference"],
        json!(format!("Patient/{PATIENT}"))
    );
}

#[test]
fn user_scopes_read_every_patient_the_clinician_sees() {
    let mut s = clinician_app();
    let observation = an_observation_of(&mut s, PATIENT);
    launched_and_exchanged(&mut s, &observation);
    for patient in [PATIENT, SEED_PATIENT] {
        let out = ok(&mut s, &format!("fetch Patient/{patient}"));
        assert_eq!(statuses(&out), [200], "{patient}");
        assert_eq!(var_json(&s, "response")["id"], json!(patient));
    }
}

#[test]
fn refresh_keeps_the_launch_context() {
    let mut s = clinician_app();
    let observation = an_observation_of(&mut s, PATIENT);
    launched_and_exchanged(&mut s, &observation);
    let before: Vec<String> = ["patient", "encounter", "fhir_context", "intent"]
        .iter()
        .map(|n| var(&s, n))
        .collect();
    let old_access = var(&s, "access_token");
    ok(&mut s, "refresh");
    assert_ne!(var(&s, "access_token"), old_access);
    let after: Vec<String> = ["patient", "encounter", "fhir_context", "intent"]
        .iter()
        .map(|n| var(&s, n))
        .collect();
    assert_eq!(after, before);
}

#[test]
fn a_standalone_grant_unbinds_the_previous_launch_context() {
    let mut s = clinician_app();
    let observation = an_observation_of(&mut s, PATIENT);
    launched_and_exchanged(&mut s, &observation);
    assert!(bound(&s, "encounter"));
    ok(&mut s, "register");
    ok(&mut s, "authorize --as daniel-adams:demo-password");
    let out = ok(&mut s, "exchange");
    for name in ["encounter", "fhir_context", "intent"] {
        assert!(!bound(&s, name), "${name} outlived its grant");
    }
    assert!(notes(&out).iter().any(|n| n.contains("unbound")));
    assert_eq!(var(&s, "patient"), SEED_PATIENT);
}

#[test]
fn launch_shows_the_url_the_ehr_would_open_for_an_app_with_a_launch_url() {
    let mut s = session();
    let out = ok(
        &mut s,
        &format!("register --scope \"{SCOPE}\" --launch-uri http://localhost:9001/launch"),
    );
    assert_eq!(
        the_json(&out)["initiate_login_uri"],
        json!("http://localhost:9001/launch")
    );
    assert_eq!(var(&s, "launch_uri"), "http://localhost:9001/launch");
    ok(&mut s, &format!("launch --patient {PATIENT} --banner"));
    let url = url::Url::parse(&var(&s, "launch_url")).unwrap();
    assert_eq!(url.path(), "/launch");
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        [
            ("iss".to_string(), var(&s, "iss")),
            ("launch".to_string(), var(&s, "launch"))
        ]
    );
    assert_eq!(
        var(&s, "iss"),
        format!("{}/api/fhir", s.embedded_url().unwrap())
    );

    // Another client registered without a launch URL has none.
    ok(&mut s, "register");
    assert!(!bound(&s, "launch_uri") && !bound(&s, "launch_url"));
    ok(&mut s, &format!("launch --patient {PATIENT}"));
    assert!(!bound(&s, "launch_url"));
}

#[test]
fn a_launch_is_spent_by_the_authorize_request_that_uses_it() {
    let mut s = clinician_app();
    ok(&mut s, &format!("launch --patient {PATIENT}"));
    ok(&mut s, "authorize --as dr-carter:demo-password --launch");
    let error = fails(&mut s, "authorize --as dr-carter:demo-password --launch");
    assert_eq!(error.kind, "AuthorizeError");
    assert!(error.message.contains("invalid_request"), "{error}");
}

#[test]
fn the_servers_refusals_of_a_launch_come_with_a_hint() {
    let mut s = clinician_app();
    let error = fails(&mut s, "launch --patient nobody");
    assert!(error.message.contains("no_patient"), "{error}");
    assert!(error.hint.unwrap().contains("smart-1081332"));
    let error = fails(
        &mut s,
        &format!("launch --patient {PATIENT} --encounter not-an-encounter"),
    );
    assert!(error.message.contains("no_encounter"), "{error}");
    assert!(error.hint.unwrap().contains("--encounter auto"));
    assert!(!bound(&s, "launch"));
}

#[test]
fn authorize_launch_needs_a_launch_and_no_patient() {
    let mut s = session();
    let error = fails(&mut s, "authorize --launch");
    assert_eq!(error.kind, "UndefinedVariable");
    assert!(error.hint.unwrap().contains("`launch`"));
    let error = fails(
        &mut s,
        "authorize --launch abc --as dr-carter:demo-password --patient smart-1081332",
    );
    assert_eq!(error.kind, "BadFlag");
    assert!(error.message.contains("--launch"), "{error}");
}

#[test]
fn an_explicit_launch_id_goes_into_the_link_with_the_launch_scope() {
    let mut s = session();
    register(&mut s);
    let out = ok(&mut s, "authorize --launch 0123abcd");
    let params = link_params(&out);
    assert!(params.contains(&("launch".into(), "0123abcd".into())));
    let scope = params.iter().find(|(k, _)| k == "scope").unwrap().1.clone();
    assert_eq!(scope, "launch launch/patient patient/*.read offline_access");
}

#[test]
fn a_standalone_launch_encounter_request_picks_an_encounter() {
    let mut s = session();
    let out = ok(
        &mut s,
        r#"register --scope "launch/patient launch/encounter patient/*.rs""#,
    );
    assert_eq!(statuses(&out), [201]);
    let latest = latest_encounter_of(&mut s, SEED_PATIENT);
    let pick = format!("authorize --as daniel-adams:demo-password --patient {SEED_PATIENT}");

    // Without --encounter, the one the picker offers first: the most recent.
    let out = ok(&mut s, &pick);
    assert!(
        texts(&out).contains(&format!("Picked encounter {latest}")),
        "{out:#?}"
    );
    ok(&mut s, "exchange");
    assert_eq!(var(&s, "encounter"), latest);
    assert_eq!(var(&s, "patient"), SEED_PATIENT);

    // Another of the patient's encounters, by id.
    ok(
        &mut s,
        &format!("fetch Encounter?patient={SEED_PATIENT} --open"),
    );
    let other = var_json(&s, "response")["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"]["id"].as_str())
        .find(|id| *id != latest)
        .expect("the patient has two Encounters")
        .to_string();
    ok(&mut s, &format!("{pick} --encounter {other}"));
    ok(&mut s, "exchange");
    assert_eq!(var(&s, "encounter"), other);

    // None: no encounter in the answer, and the variable goes.
    let out = ok(&mut s, &format!("{pick} --encounter none"));
    assert!(texts(&out).contains(&"Picked no encounter".to_string()));
    ok(&mut s, "exchange");
    assert!(!bound(&s, "encounter"));

    // One that is not on the picker: the choices are named.
    let error = fails(&mut s, &format!("{pick} --encounter not-an-encounter"));
    assert!(
        error.hint.unwrap().contains(&latest),
        "the choices are listed"
    );
}
