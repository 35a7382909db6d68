//! Issue 13 item 4: a request carries at most 100 distinct scope tokens (`invalid_scope`,
//! or `invalid_client_metadata` at registration, naming the limit); duplicates count once;
//! a hundred scopes work end to end; a token's scope string is parsed once, not on every
//! FHIR request.

use crate::portal::*;
use serde_json::json;

/// `count` distinct short scope tokens: aaa aab aac …
fn distinct(count: usize) -> String {
    let letters = |i: usize| {
        let l = |n: usize| char::from(b'a' + (n % 26) as u8);
        format!("{}{}{}", l(i / 676), l(i / 26), l(i))
    };
    (0..count).map(letters).collect::<Vec<_>>().join(" ")
}

fn assert_names_the_limit(description: &str) {
    assert!(description.contains("at most 100"), "{description}");
}

#[tokio::test]
async fn sixteen_thousand_scopes_are_refused_at_every_endpoint() {
    let server = TestServer::start().await;
    let huge = distinct(16_000);

    let reply = server
        .post_json(
            "/oauth/register",
            &json!({"client_name": "Greedy", "redirect_uris": [SEED_REDIRECT], "scope": huge}),
        )
        .await;
    reply.assert_error(400, "invalid_client_metadata");
    assert_names_the_limit(reply.str("error_description"));

    let app = server.register_seed_app().await;
    let request = Authorize::new(&server, &app).set("scope", &huge);
    let action = url::Url::parse(&server.url("/oauth/authorize")).unwrap();
    let callback = Browser::new(&server)
        .submit(&Form::forge(action, &request.params()), "")
        .await
        .callback();
    assert_eq!(callback.param("error").as_deref(), Some("invalid_scope"));
    assert_names_the_limit(&callback.param("error_description").unwrap());
    assert_eq!(callback.param("state").as_deref(), Some(SEED_STATE));
    assert_eq!(server.running().pending().len().await.unwrap(), 0);

    let body = json!({"client_id": app.client_id, "username": "joseph-ross",
        "patient_id": "smart-1081332", "scope": huge});
    let reply = server.post_json("/oauth/debug/token", &body).await;
    reply.assert_error(400, "invalid_scope");
    assert_names_the_limit(reply.str("error_description"));

    let tokens = server
        .debug_token(
            json!({"client_id": app.client_id, "username": "joseph-ross",
            "patient_id": "smart-1081332"}),
        )
        .await;
    let refresh = tokens.refresh.expect("a refresh token");
    let reply = app.refresh(&server, &refresh, Some(&huge)).await;
    reply.assert_error(400, "invalid_scope");
    assert_names_the_limit(reply.str("error_description"));
    // The refused refresh did not use the refresh token up.
    assert_eq!(app.refresh(&server, &refresh, None).await.status, 200);
}

#[tokio::test]
async fn the_limit_counts_distinct_tokens() {
    let server = TestServer::start().await;
    let register = |scope: String| json!({"client_name": "Counted", "redirect_uris": [SEED_REDIRECT], "scope": scope});
    let reply = server
        .post_json("/oauth/register", &register(distinct(101)))
        .await;
    reply.assert_error(400, "invalid_client_metadata");
    assert!(reply.str("error_description").contains("101"));
    // A hundred distinct tokens, each sent three times: a hundred scopes, in first order.
    let hundred = distinct(100);
    let thrice = format!("{hundred} {hundred} {hundred}");
    let reply = server
        .post_json("/oauth/register", &register(thrice.clone()))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.str("scope"), hundred);
}

#[tokio::test]
async fn a_hundred_scopes_work_end_to_end() {
    let server = TestServer::start().await;
    let mut scopes = vec![
        "launch/patient".to_string(),
        "offline_access".to_string(),
        "patient/Patient.rs".to_string(),
    ];
    scopes.extend((0..97).map(|i| format!("patient/Observation.rs?category=c{i:0>3}")));
    let scope = scopes.join(" ");
    let app = server
        .register(
            json!({"client_name": "Hundred", "redirect_uris": [SEED_REDIRECT], "scope": scope}),
        )
        .await;
    assert_eq!(app.scope, scope);

    let callback = authorize(&server, &Authorize::new(&server, &app), JOSEPH).await;
    let reply = app.exchange(&server, &callback.code(), None).await;
    let tokens = reply.tokens();
    assert_eq!(reply.str("scope").split(' ').count(), 100, "{}", reply.text);
    let patient = format!("Patient/{}", JOSEPH.patient);
    assert_eq!(server.fhir_status(&tokens.access, &patient).await, 200);
    assert_eq!(server.fhir_status(&tokens.access, "Condition").await, 403);
    // Reads parse the token's scope string once: the server keeps one parsed copy.
    for _ in 0..5 {
        assert_eq!(server.fhir_status(&tokens.access, &patient).await, 200);
    }
    assert_eq!(server.running().parsed_scopes().len(), 1);

    let refreshed = app
        .refresh(&server, tokens.refresh.as_deref().unwrap(), None)
        .await;
    let again = refreshed.tokens();
    assert_eq!(refreshed.str("scope"), reply.str("scope"));
    assert_eq!(server.fhir_status(&again.access, &patient).await, 200);
    assert_eq!(server.running().parsed_scopes().len(), 1);
}

#[tokio::test]
async fn a_consent_that_spells_wildcards_out_past_the_limit_grants_them_as_approved() {
    let server = TestServer::start().await;
    let mut scopes = vec!["launch/patient".to_string(), "online_access".to_string()];
    scopes.push("patient/*.read".to_string());
    scopes.extend((0..29).map(|i| format!("patient/*.rs?category=c{i:0>2}")));
    let app = server
        .register(json!({"client_name": "Wild", "redirect_uris": [SEED_REDIRECT], "scope": scopes.join(" ")}))
        .await;
    // Leaving one kind of record out spells each `*` scope out for the others (the eight
    // other kinds of a patient's chart).
    let browser = Browser::new(&server);
    let request = Authorize::new(&server, &app);
    let consent = browser.consent_page(&server, &request, JOSEPH).await;
    let mut form = consent.form("/oauth/consent");
    form.tick("category", "Condition", false);
    let kept = form.checked("category").len();
    assert_eq!(kept, 8, "{:?}", form.checked("category"));
    let code = browser.submit(&form, "Approve").await.callback().code();
    let reply = app.exchange(&server, &code, None).await;
    let tokens = reply.tokens();
    assert_eq!(
        reply.str("scope").split(' ').count(),
        2 + 30 * kept,
        "{}",
        reply.text
    );
    let patient = format!("Patient/{}", JOSEPH.patient);
    assert_eq!(server.fhir_status(&tokens.access, &patient).await, 200);
    assert_eq!(server.fhir_status(&tokens.access, "Condition").await, 403);
    // The granted scope is the server's own: a refresh keeps it, or narrows it.
    let refresh = tokens.refresh.as_deref().unwrap();
    let renewed = app.refresh(&server, refresh, None).await;
    assert_eq!(renewed.str("scope"), reply.str("scope"));
    let narrowed = app
        .refresh(
            &server,
            renewed.tokens().refresh.as_deref().unwrap(),
            Some("patient/Patient.read"),
        )
        .await;
    assert_eq!(
        narrowed.str("scope"),
        "patient/Patient.read",
        "{}",
        narrowed.text
    );
    // online_access was read from the spelt-out scope too: signing out ends the grant.
    let logout = browser.open("/logout").await.page().form("/logout");
    browser.submit(&logout, "Sign out").await.page();
    app.refresh(&server, narrowed.tokens().refresh.as_deref().unwrap(), None)
        .await
        .assert_error(400, "invalid_grant");
}
