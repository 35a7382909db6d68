//! `authorize --as` beyond the seed: another patient, another participant, a wrong
//! password, and a public client whose code exchange rests on PKCE instead of a secret.

use crate::session_support::*;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use smartnb::session::{Frontend, Outcome, Output};

/// Authorize as `who` (with extra flags), exchange, and fetch the bound patient.
fn patient_after_approving(who: &str) -> (String, Value) {
    let mut s = session();
    register_fake_app(&mut s);
    ok(&mut s, &format!("authorize --as {who}"));
    ok(&mut s, "exchange");
    let out = ok(&mut s, "fetch Patient/$patient");
    assert_eq!(statuses(&out), [200]);
    (var(&s, "patient"), the_json(&out).clone())
}

#[test]
fn as_with_patient_picks_that_patient() {
    let (patient, resource) =
        patient_after_approving("daniel-adams:demo-password --patient smart-1032702");
    assert_eq!(patient, "smart-1032702");
    assert_eq!(resource["name"][0]["given"][0], "Amy");
    assert_eq!(resource["name"][0]["family"], "Shaw");
}

#[test]
fn as_joseph_ross_gets_his_own_record() {
    let (patient, resource) = patient_after_approving("joseph-ross:demo-password");
    assert_eq!(patient, "smart-1081332");
    assert_eq!(resource["name"][0]["family"], "Ross");
}

#[test]
fn a_wrong_password_fails_the_sign_in_and_keeps_the_variables() {
    let mut s = session();
    register_fake_app(&mut s);
    ok(&mut s, "token");
    let before: Vec<(String, String)> = ["client_id", "client_secret", "access_token"]
        .iter()
        .map(|n| (n.to_string(), var(&s, n)))
        .collect();
    let error = fails(&mut s, "authorize --as daniel-adams:not-the-password");
    assert_eq!(error.kind, "AuthorizeError");
    assert!(
        error.message.contains("signing in as daniel-adams failed"),
        "{error}"
    );
    assert!(error.hint.unwrap().contains("demo-password"));
    for (name, value) in before {
        assert_eq!(var(&s, &name), value, "${name} changed");
    }
    assert!(!bound(&s, "code"));
}

#[test]
fn a_public_client_gets_pkce_and_exchanges_without_a_secret() {
    let mut s = session();
    let out = ok(
        &mut s,
        "register --public --redirect-uri http://not-a-real-site",
    );
    assert_eq!(statuses(&out), [201]);
    assert!(the_json(&out).get("client_secret").is_none());
    assert!(!bound(&s, "client_secret"));

    let out = ok(&mut s, "authorize --as daniel-adams:demo-password");
    let params = link_params(&out);
    let verifier = var(&s, "code_verifier");
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    assert_eq!(param(&params, "code_challenge"), Some(challenge.as_str()));
    assert_eq!(param(&params, "code_challenge_method"), Some("S256"));

    let out = ok(&mut s, "exchange");
    assert_eq!(statuses(&out), [200]);
    assert_eq!(var(&s, "patient"), SEED_PATIENT);
    assert_eq!(statuses(&ok(&mut s, "fetch Patient/$patient")), [200]);
}

#[test]
fn the_link_alone_binds_a_fresh_state_and_no_code() {
    let mut s = session();
    register_fake_app(&mut s);
    let out = ok(&mut s, "authorize");
    let params = link_params(&out);
    let state = var(&s, "state");
    assert!(!state.is_empty());
    assert_eq!(param(&params, "state"), Some(state.as_str()));
    assert!(!bound(&s, "code"));
    ok(&mut s, "authorize");
    assert_ne!(var(&s, "state"), state, "each link gets its own state");
}

#[test]
fn pkce_on_request_for_a_confidential_client() {
    let mut s = session();
    register_fake_app(&mut s);
    let out = ok(&mut s, "authorize --pkce --as daniel-adams:demo-password");
    assert_eq!(
        param(&link_params(&out), "code_challenge_method"),
        Some("S256")
    );
    assert!(bound(&s, "code_verifier"));
    assert_eq!(statuses(&ok(&mut s, "exchange")), [200]);
}

#[test]
fn a_patient_the_user_cannot_share_is_refused_with_the_choices() {
    let mut s = session();
    register_fake_app(&mut s);
    let error = fails(
        &mut s,
        "authorize --as daniel-adams:demo-password --patient smart-1081332",
    );
    assert_eq!(error.kind, "AuthorizeError");
    assert!(error.message.contains("cannot share patient smart-1081332"));
    let hint = error.hint.unwrap();
    assert!(hint.contains("smart-1288992") && hint.contains("smart-1032702"));
    assert!(!bound(&s, "code"));
}

#[test]
fn a_patient_is_checked_even_when_no_picker_is_shown() {
    let mut s = session();
    register_fake_app(&mut s);
    // joseph-ross has one patient, so the portal skips the picker; --patient still counts.
    let error = fails(
        &mut s,
        "authorize --as joseph-ross:demo-password --patient smart-1288992",
    );
    assert_eq!(error.kind, "AuthorizeError");
    assert!(
        error.message.contains("cannot share patient smart-1288992"),
        "{}",
        error.message
    );
    assert!(!bound(&s, "code"));
    ok(
        &mut s,
        "authorize --as joseph-ross:demo-password --patient smart-1081332",
    );
    assert!(bound(&s, "code"));
}

#[test]
fn flags_that_do_not_go_together() {
    let mut s = session();
    register_fake_app(&mut s);
    let error = fails(&mut s, "authorize --as daniel-adams:demo-password --listen");
    assert_eq!(error.kind, "BadFlag");
    let error = fails(&mut s, "authorize --patient smart-1032702");
    assert_eq!(error.kind, "BadFlag");
    assert!(error.hint.unwrap().contains("--as"));
}

/// A front end that answers the password prompt, and remembers what it was asked.
struct Typist {
    asked: Vec<(String, bool)>,
    outputs: Vec<Output>,
}

impl Frontend for Typist {
    fn emit(&mut self, output: Output) {
        self.outputs.push(output);
    }

    fn ask(&mut self, prompt: &str, secret: bool) -> Option<String> {
        self.asked.push((prompt.to_string(), secret));
        Some("demo-password".to_string())
    }
}

#[test]
fn as_without_a_password_asks_the_front_end_when_it_can() {
    let mut s = session();
    register_fake_app(&mut s);
    let error = fails(&mut s, "authorize --as daniel-adams");
    assert_eq!(error.kind, "MissingArgument");
    assert!(error.hint.unwrap().contains("--as daniel-adams:PASSWORD"));

    let mut typist = Typist {
        asked: Vec::new(),
        outputs: Vec::new(),
    };
    let outcome = s.execute("authorize --as daniel-adams", &mut typist);
    assert_eq!(outcome, Outcome::Ok, "{:#?}", typist.outputs);
    assert_eq!(
        typist.asked,
        [("Password for daniel-adams: ".to_string(), true)]
    );
    assert!(bound(&s, "code"));
}

#[test]
fn as_answers_the_standalone_encounter_picker_with_the_latest_encounter() {
    let mut s = session();
    ok(
        &mut s,
        "register --scope 'launch/patient launch/encounter patient/*.read'",
    );
    let out = ok(
        &mut s,
        "authorize --scope 'launch/patient launch/encounter patient/*.read' --as joseph-ross:demo-password",
    );
    let said = format!("{out:?}");
    assert!(
        said.contains("Picked encounter smart-1081332-enc-2017-12"),
        "{said}"
    );
    let out = ok(&mut s, "exchange");
    assert_eq!(the_json(&out)["encounter"], "smart-1081332-enc-2017-12");
}

#[test]
fn a_grant_without_a_refresh_token_unbinds_the_old_one() {
    let mut s = session();
    register_fake_app(&mut s);
    ok(&mut s, "authorize --as joseph-ross:demo-password");
    ok(&mut s, "exchange");
    assert!(
        bound(&s, "refresh_token"),
        "the seed scope has offline_access"
    );
    ok(
        &mut s,
        "authorize --scope 'launch/patient patient/*.read' --as joseph-ross:demo-password",
    );
    let out = ok(&mut s, "exchange");
    assert!(!bound(&s, "refresh_token"));
    assert!(
        format!("{out:?}").contains("unbound the previous grant's $refresh_token"),
        "{out:?}"
    );
    let error = fails(&mut s, "refresh");
    assert!(error.message.contains("refresh_token"), "{error}");
}
