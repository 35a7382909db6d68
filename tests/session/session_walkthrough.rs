//! The seed walkthrough as helper cells, run through `Session::execute` against the
//! embedded server: each Python cell of the seed is one helper line here, and each test
//! checks what that cell printed and what it bound.

use std::time::{Duration, SystemTime};

use crate::session_support::*;
use serde_json::{json, Value};
use smartnb::session::{Outcome, Output};

/// Seconds from now until an HTTP date such as `Thu, 05 Jul 2018 17:41:24 GMT`.
fn seconds_until(http_date: &str) -> i64 {
    let when = httpdate::parse_http_date(http_date)
        .unwrap_or_else(|e| panic!("{http_date:?} is not an HTTP date: {e}"));
    match when.duration_since(SystemTime::now()) {
        Ok(ahead) => ahead.as_secs() as i64,
        Err(behind) => -(behind.duration().as_secs() as i64),
    }
}

fn assert_about(seconds: i64, expected: Duration, what: &str) {
    let expected = expected.as_secs() as i64;
    assert!(
        (seconds - expected).abs() <= 120,
        "{what}: {seconds} s from now, expected about {expected} s"
    );
}

/// The seed's patient, as cell [7] printed it.
fn assert_is_the_seed_patient(patient: &Value) {
    assert_eq!(patient["resourceType"], "Patient");
    assert_eq!(patient["id"], SEED_PATIENT);
    assert_eq!(patient["birthDate"], "1925-12-23");
    assert_eq!(patient["gender"], "male");
    assert_eq!(patient["active"], true);
    assert_eq!(patient["address"][0]["city"], "Tulsa");
    assert_eq!(patient["address"][0]["postalCode"], "74117");
    assert_eq!(patient["identifier"][0]["value"], "1288992");
}

#[test]
fn debug_endpoints_part_of_the_walkthrough() {
    let mut s = session();

    // [1]-[2] register: 201 and the seed's registration, client_id and secret bound.
    let out = register(&mut s);
    let reg = the_json(&out);
    assert_eq!(reg["client_name"], "SMART Test Client");
    assert_eq!(reg["client_secret_expires_at"], 0);
    assert_eq!(
        reg["redirect_uris"],
        json!(["http://localhost:9001/authorized"])
    );
    assert_eq!(reg["scope"], "launch/patient patient/*.read offline_access");
    assert_eq!(var(&s, "client_id"), reg["client_id"].as_str().unwrap());
    assert_eq!(
        var(&s, "client_secret"),
        reg["client_secret"].as_str().unwrap()
    );
    let client_id = var(&s, "client_id");

    // [3] token: 200 and both tokens bound.
    let out = ok(&mut s, "token");
    assert_eq!(statuses(&out), [200]);
    let pair = the_json(&out);
    assert_eq!(
        var(&s, "access_token"),
        pair["access_token"].as_str().unwrap()
    );
    assert_eq!(
        var(&s, "refresh_token"),
        pair["refresh_token"].as_str().unwrap()
    );

    // [4] introspect: a table of the seed's fields; 1 hour and 1 year by default.
    let out = ok(&mut s, "introspect");
    assert_eq!(statuses(&out), [200]);
    let table = tables(&out)[0];
    assert_eq!(table.columns, ["field", "value"]);
    for name in [
        "access_expires",
        "access_token",
        "active",
        "approval_expires",
        "client_id",
        "refresh_token",
        "scope",
        "security_labels",
        "token_type",
        "username",
    ] {
        assert!(field(table, name).is_some(), "introspect shows no {name}");
    }
    assert_eq!(
        field(table, "access_token"),
        Some(var(&s, "access_token").as_str())
    );
    assert_eq!(field(table, "client_id"), Some(client_id.as_str()));
    // Only hashes are stored: the other token of the pair is null, and the cell says why.
    assert_eq!(field(table, "refresh_token"), Some("null"));
    assert!(
        texts(&out)
            .iter()
            .any(|t| t.starts_with("refresh_token is null") && t.contains("hash")),
        "{out:?}"
    );
    assert_eq!(field(table, "username"), Some("daniel-adams"));
    assert_eq!(field(table, "active"), Some("true"));
    assert_eq!(field(table, "token_type"), Some("Bearer"));
    let expires = field(table, "access_expires").unwrap();
    assert_about(
        seconds_until(expires),
        Duration::from_secs(3600),
        "access_expires",
    );

    // [5] token with a 3 h lifetime and a 180 d approval, checked by introspection.
    let out = ok(
        &mut s,
        "token --lifetime 3h --approval-expires 180d\nintrospect",
    );
    assert_eq!(statuses(&out), [200, 200]);
    let table = tables(&out)[0];
    assert_eq!(
        field(table, "access_token"),
        Some(var(&s, "access_token").as_str())
    );
    let access = seconds_until(field(table, "access_expires").unwrap());
    let approval = seconds_until(field(table, "approval_expires").unwrap());
    assert_about(access, Duration::from_secs(3 * 3600), "access_expires");
    assert_about(
        approval,
        Duration::from_secs(180 * 86_400),
        "approval_expires",
    );

    // [6] no header: 401, which is what the cell shows, not a failure of the cell.
    let (outcome, out) = run(&mut s, "fetch Patient/smart-1288992 --no-auth");
    assert_eq!(outcome, Outcome::Ok, "{out:#?}");
    assert_eq!(statuses(&out), [401]);
    assert!(errors(&out).is_empty());

    // [7] with the token: 200 and the seed's patient.
    let out = ok(&mut s, "fetch Patient/smart-1288992");
    assert_eq!(statuses(&out), [200]);
    assert_is_the_seed_patient(the_json(&out));

    // [8] refresh: new tokens bound; the old refresh token no longer works.
    let (old_access, old_refresh) = (var(&s, "access_token"), var(&s, "refresh_token"));
    let out = ok(&mut s, "refresh");
    assert_eq!(statuses(&out), [200]);
    let fresh = the_json(&out);
    assert_eq!(
        var(&s, "access_token"),
        fresh["access_token"].as_str().unwrap()
    );
    assert_eq!(
        var(&s, "refresh_token"),
        fresh["refresh_token"].as_str().unwrap()
    );
    assert_ne!(var(&s, "access_token"), old_access);
    assert_ne!(var(&s, "refresh_token"), old_refresh);
    let error = fails(&mut s, &format!("refresh {old_refresh}"));
    assert_eq!(error.kind, "HttpError");
    assert!(error.message.contains("invalid_grant"), "{error}");
    assert_eq!(var(&s, "status"), "400");
    let out = ok(&mut s, "fetch Patient/smart-1288992");
    assert_eq!(statuses(&out), [200], "the refreshed token works");
}

#[test]
fn oauth_workflow_part_of_the_walkthrough() {
    let mut s = session();

    // [9] register the fake research app.
    let reg = register_fake_app(&mut s);
    assert_eq!(reg["client_name"], "Fake Research Application");
    assert_eq!(reg["redirect_uris"], json!(["http://not-a-real-site"]));
    assert_eq!(var(&s, "redirect_uri"), "http://not-a-real-site");

    // [10]-[11] the authorize link, approved as the participant; the code is bound.
    let out = ok(
        &mut s,
        "authorize --state my-obscure-state --as daniel-adams:demo-password",
    );
    let params = link_params(&out);
    assert_eq!(param(&params, "response_type"), Some("code"));
    assert_eq!(
        param(&params, "client_id"),
        Some(var(&s, "client_id").as_str())
    );
    assert_eq!(
        param(&params, "redirect_uri"),
        Some("http://not-a-real-site")
    );
    assert_eq!(
        param(&params, "scope"),
        Some("launch/patient patient/*.read offline_access")
    );
    assert_eq!(param(&params, "state"), Some("my-obscure-state"));
    let aud = format!("{}/api/fhir", s.embedded_url().unwrap());
    assert_eq!(param(&params, "aud"), Some(aud.as_str()));
    assert_eq!(
        param(&params, "code_challenge"),
        None,
        "no PKCE for a confidential client"
    );
    assert!(texts(&out)
        .iter()
        .any(|t| t.contains("Picked patient smart-1288992")));
    assert_eq!(var(&s, "state"), "my-obscure-state");
    assert!(!var(&s, "code").is_empty());
    assert!(!bound(&s, "code_verifier"));

    // [12] exchange: tokens and the patient bound from the reply.
    let out = ok(&mut s, "exchange");
    assert_eq!(statuses(&out), [200]);
    let reply = the_json(&out);
    assert_eq!(reply["patient"], SEED_PATIENT);
    assert_eq!(reply["token_type"], "Bearer");
    assert_eq!(reply["expires_in"], 3600);
    assert_eq!(
        reply["scope"],
        "launch/patient patient/*.read offline_access"
    );
    assert_eq!(
        var(&s, "access_token"),
        reply["access_token"].as_str().unwrap()
    );
    assert_eq!(
        var(&s, "refresh_token"),
        reply["refresh_token"].as_str().unwrap()
    );
    assert_eq!(var(&s, "patient"), SEED_PATIENT);

    // [13] the patient's data with the new token.
    let out = ok(&mut s, "fetch Patient/$patient");
    assert_eq!(statuses(&out), [200]);
    assert_is_the_seed_patient(the_json(&out));

    // A code is single use: exchanging it again fails and keeps the tokens.
    let access = var(&s, "access_token");
    let error = fails(&mut s, "exchange");
    assert_eq!(error.kind, "HttpError");
    assert_eq!(var(&s, "access_token"), access);
}

#[test]
fn a_search_shows_the_bundle_then_a_table_and_feeds_interpolation() {
    let mut s = session();
    register(&mut s);
    ok(&mut s, "token");
    let out = ok(&mut s, "fetch Observation?patient=smart-1288992");
    assert!(
        matches!(
            out.as_slice(),
            [.., Output::Status(200), Output::Json(_), Output::Table(_)]
        ),
        "status, JSON, then the table: {out:#?}"
    );
    let bundle = the_json(&out).clone();
    assert_eq!(bundle["resourceType"], "Bundle");
    let entries = bundle["entry"].as_array().expect("entries");
    assert!(!entries.is_empty());
    let table = tables(&out)[0];
    assert_eq!(table.columns, ["resource", "date", "summary"]);
    assert_eq!(table.rows.len(), entries.len());
    let first = entries[0]["resource"]["id"].as_str().unwrap().to_string();
    assert_eq!(table.rows[0][0], format!("Observation/{first}"));

    let out = ok(&mut s, "fetch Observation/$response.entry.0.resource.id");
    assert_eq!(statuses(&out), [200]);
    assert_eq!(the_json(&out)["id"], first.as_str());
}

#[test]
fn http_replays_the_refresh_cell_exactly() {
    let mut s = session();
    register(&mut s);
    ok(&mut s, "token");
    let old = var(&s, "refresh_token");
    let out = ok(
        &mut s,
        "http POST /oauth/token --form grant_type=refresh_token \
         --form refresh_token=$refresh_token --basic $client_id:$client_secret",
    );
    assert_eq!(statuses(&out), [200]);
    let reply = the_json(&out);
    assert_eq!(reply["token_type"], "Bearer");
    let new_refresh = reply["refresh_token"].as_str().unwrap();
    assert_ne!(new_refresh, old);
    assert_eq!(s.vars().get("response"), Some(reply));

    // The seed's last cell: replaying the rotated token gives invalid_grant, as a 400
    // that `http` shows without failing.
    let out = ok(
        &mut s,
        &format!(
            "http POST /oauth/token --form grant_type=refresh_token \
             --form refresh_token={old} --basic $client_id:$client_secret"
        ),
    );
    assert_eq!(statuses(&out), [400]);
    assert_eq!(the_json(&out)["error"], "invalid_grant");
}

#[test]
fn http_get_metadata_returns_the_capability_statement() {
    let mut s = session();
    let out = ok(&mut s, "http GET /api/fhir/metadata");
    assert_eq!(statuses(&out), [200]);
    let doc = the_json(&out);
    assert_eq!(doc["resourceType"], "CapabilityStatement");
    assert_eq!(
        doc["fhirVersion"].as_str().map(|v| !v.is_empty()),
        Some(true)
    );
}

#[test]
fn every_http_command_binds_response_and_status() {
    let mut s = session();
    let cells = [
        "register --redirect-uri http://not-a-real-site",
        "token",
        "introspect",
        "fetch Patient/smart-1288992 --no-auth",
        "fetch Patient/smart-1288992",
        "refresh",
        "authorize --as daniel-adams:demo-password",
        "exchange",
        "http GET /api/fhir/metadata",
        "http GET /login",
    ];
    for cell in cells {
        if cell.starts_with("authorize") {
            // Not an HTTP command of its own: it drives the pages as a browser would.
            ok(&mut s, cell);
            continue;
        }
        // Poison both so a command that forgets to bind them is caught.
        ok(&mut s, "set status none\nset response none");
        let out = ok(&mut s, cell);
        let status = *statuses(&out)
            .last()
            .unwrap_or_else(|| panic!("{cell}: no status"));
        assert_eq!(var(&s, "status"), status.to_string(), "{cell}");
        let response = s.vars().get("response").unwrap();
        match (jsons(&out).last(), tables(&out).last()) {
            (Some(json), _) => assert_eq!(response, *json, "{cell}"),
            (None, Some(table)) => assert_eq!(Some(response), table.json.as_ref(), "{cell}"),
            (None, None) => assert!(
                response.as_str().is_some_and(|t| t != "none"),
                "{cell}: $response is {response}"
            ),
        }
    }
}
