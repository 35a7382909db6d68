//! The authorization-code flow end to end, as the seed walkthrough's second part runs it:
//! register, send the participant to /oauth/authorize, sign in, pick a patient, consent,
//! collect the code from the redirect, exchange it, read the patient, refresh.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::portal::*;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn the_seed_walkthrough_from_registration_to_refresh() {
    let server = TestServer::start().await;

    // 1. Register, with the walkthrough's fake redirect URI.
    let app = server.register_seed_app().await;
    assert!(app.client_secret.is_some());
    assert_eq!(app.redirect_uri, SEED_REDIRECT);

    // 2. The participant follows the authorize link and is asked to sign in.
    let request = Authorize::new(&server, &app);
    let browser = Browser::new(&server);
    let login = browser.open(&request.url(&server)).await.page();
    assert_eq!(login.url.path(), "/login");
    assert!(login
        .form("/login")
        .value("next")
        .unwrap()
        .starts_with("/oauth/consent?request="));

    // Daniel shares two patients' records, so he picks one.
    let picker = browser.sign_in(login, DANIEL.username).await.page();
    let mut choice = picker.form("/oauth/consent/patient");
    assert_eq!(
        choice.choices("patient"),
        ["smart-1288992", "smart-1032702"]
    );
    let names = picker.text();
    assert!(
        names.contains(DANIEL.patient_name) && names.contains(AMY.patient_name),
        "{names}"
    );
    choice.choose("patient", DANIEL.patient);
    let consent = browser.submit(&choice, "Continue").await.page();

    // 3. Approve: the browser is sent to the app with a code and the exact state.
    let callback = browser.approve(&consent).await;
    assert_eq!(callback.status.as_u16(), 303);
    assert_eq!(callback.url.host_str(), Some("not-a-real-site"));
    assert_eq!(callback.param("state").as_deref(), Some(SEED_STATE));
    let code = callback.code();

    // 4. Exchange the code with HTTP Basic, as a confidential client.
    let reply = app.exchange(&server, &code, None).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    reply.assert_not_cached();
    assert_eq!(reply.json["token_type"], "Bearer");
    assert_eq!(reply.json["expires_in"], 3600);
    assert_eq!(reply.json["scope"], SEED_SCOPE);
    assert_eq!(reply.json["patient"], "smart-1288992");
    assert_eq!(reply.json["need_patient_banner"], true);
    let tokens = reply.tokens();

    // 5. Read the patient with the token.
    let patient = server.fhir(&tokens.access, "Patient/smart-1288992").await;
    assert_eq!(patient.status.as_u16(), 200);
    assert_eq!(patient.json["birthDate"], "1925-12-23");
    assert_eq!(patient.json["address"][0]["city"], "Tulsa");

    // 6. Refresh: new tokens work, the old refresh token is spent.
    let renewed = app.refresh(&server, tokens.refresh(), None).await;
    renewed.assert_not_cached();
    let fresh = renewed.tokens();
    assert_ne!(fresh.access, tokens.access);
    assert_ne!(fresh.refresh(), tokens.refresh());
    assert_eq!(renewed.json["patient"], "smart-1288992");
    assert_eq!(
        server
            .fhir_status(&fresh.access, "Patient/smart-1288992")
            .await,
        200
    );
    app.refresh(&server, tokens.refresh(), None)
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(
        app.refresh(&server, fresh.refresh(), None)
            .await
            .status
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn joseph_has_one_patient_and_gets_no_picker() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let browser = Browser::new(&server);
    let login = browser
        .open(&Authorize::new(&server, &app).url(&server))
        .await
        .page();
    let consent = browser.sign_in(login, JOSEPH.username).await.page();
    assert!(!consent.has_form("/oauth/consent/patient"));
    assert!(consent.text().contains(JOSEPH.patient_name));
    let code = browser.approve(&consent).await.code();
    let reply = app.exchange(&server, &code, None).await;
    assert_eq!(reply.json["patient"], JOSEPH.patient);
}

#[tokio::test]
async fn daniel_can_share_amy_shaws_records_instead() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let reply = exchange_reply(&server, &app, AMY).await;
    assert_eq!(reply.json["patient"], AMY.patient);
    let tokens = reply.tokens();
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1032702")
            .await,
        200
    );
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1288992")
            .await,
        404
    );
}

#[tokio::test]
async fn a_post_to_authorize_works_like_a_get() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let request = Authorize::new(&server, &app);
    let browser = Browser::new(&server);
    // The app's own page would hold this form; the browser submits it to the server.
    let action = url::Url::parse(&server.url("/oauth/authorize")).unwrap();
    let login = browser
        .submit(&Form::forge(action, &request.params()), "")
        .await
        .page();
    assert_eq!(login.url.path(), "/login");
    let consent = browser.consent_page(&server, &request, DANIEL).await;
    let callback = browser.approve(&consent).await;
    assert_eq!(callback.param("state").as_deref(), Some(SEED_STATE));
    assert_eq!(
        app.exchange(&server, &callback.code(), None)
            .await
            .status
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn a_public_client_completes_the_flow_with_pkce() {
    let server = TestServer::start().await;
    let app = server.register_app("Public App", "none", SEED_SCOPE).await;
    assert!(app.client_secret.is_none());
    let pkce = Pkce::fresh();
    let request = Authorize::new(&server, &app).pkce(&pkce);
    let callback = authorize(&server, &request, JOSEPH).await;
    let params = [
        ("grant_type", "authorization_code"),
        ("code", &callback.code()),
        ("redirect_uri", &app.redirect_uri),
        ("client_id", &app.client_id),
        ("code_verifier", &pkce.verifier),
    ];
    let reply = server.token(&Auth::Nobody, &params).await;
    let tokens = reply.tokens();
    assert_eq!(reply.json["patient"], JOSEPH.patient);
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1081332")
            .await,
        200
    );
}

#[tokio::test]
async fn client_secret_post_authenticates_the_exchange() {
    let server = TestServer::start().await;
    let app = server
        .register_app("Post App", "client_secret_post", SEED_SCOPE)
        .await;
    assert!(matches!(app.auth(), Auth::Post(..)));
    let tokens = tokens_for(&server, &app, JOSEPH).await;
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1081332")
            .await,
        200
    );
}

#[tokio::test]
async fn unticking_categories_narrows_the_token() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let browser = Browser::new(&server);
    let consent = browser
        .consent_page(&server, &Authorize::new(&server, &app), DANIEL)
        .await;
    let mut form = consent.form("/oauth/consent");
    for category in form.choices("category") {
        form.tick("category", &category, category == "Observation");
    }
    assert_eq!(form.checked("category"), ["Observation"]);
    let code = browser.submit(&form, "Approve").await.callback().code();
    let reply = app.exchange(&server, &code, None).await;
    let scope = reply.str("scope").to_string();
    assert!(scope.contains("patient/Observation.read"), "{scope}");
    assert!(!scope.contains("patient/*.read"), "{scope}");
    let tokens = reply.tokens();
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1288992")
            .await,
        403
    );
    let observations = "Observation?patient=smart-1288992";
    assert_eq!(server.fhir_status(&tokens.access, observations).await, 200);
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Condition?patient=smart-1288992")
            .await,
        403
    );
}

#[tokio::test]
async fn sharing_for_three_years_gives_an_approval_three_years_out() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let browser = Browser::new(&server);
    let consent = browser
        .consent_page(&server, &Authorize::new(&server, &app), JOSEPH)
        .await;
    let mut form = consent.form("/oauth/consent");
    form.select("years", "3");
    let code = browser.submit(&form, "Approve").await.callback().code();
    let tokens = app.exchange(&server, &code, None).await.tokens();
    let about = server.introspect(&app.auth(), tokens.refresh()).await;
    assert_eq!(about.json["active"], true);
    let three_years = 3 * 365 * 24 * 3600;
    let exp = about.json["exp"].as_i64().unwrap();
    assert!((exp - (now() + three_years)).abs() < 120, "exp {exp}");
    // Your apps shows the same end of sharing.
    let until = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(exp as u64));
    let apps = browser.open("/apps").await.page();
    assert!(
        apps.text().contains(&until),
        "{until} not in {}",
        apps.text()
    );
}

#[tokio::test]
async fn the_consent_page_names_the_app_the_patient_and_the_choices() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let browser = Browser::new(&server);
    let consent = browser
        .consent_page(&server, &Authorize::new(&server, &app), DANIEL)
        .await;
    assert_eq!(consent.status.as_u16(), 200);
    assert!(consent.content_type().starts_with("text/html"));
    assert_eq!(
        consent.headers["x-frame-options"], "DENY",
        "no clickjacking"
    );
    assert_eq!(consent.headers["cache-control"], "no-store");
    let text = consent.text();
    for words in [
        "Fake Research Application",
        DANIEL.patient_name,
        "Share until",
        "1 year",
        "2 years",
        "3 years",
    ] {
        assert!(text.contains(words), "{words:?} missing from: {text}");
    }
    let form = consent.form("/oauth/consent");
    assert_eq!(form.options("years"), ["1", "2", "3"]);
    assert_eq!(form.value("years"), Some("1"));
    let categories = form.choices("category");
    assert!(categories.contains(&"Patient".to_string()));
    assert!(categories.contains(&"Observation".to_string()));
    assert_eq!(
        form.checked("category"),
        categories,
        "all ticked to start with"
    );
    assert_eq!(form.buttons(), ["Approve", "Deny"]);
    assert!(form.value("csrf").is_some_and(|c| !c.is_empty()));
}

#[tokio::test]
async fn the_apps_page_lists_the_approval_and_revoke_ends_its_tokens() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let browser = Browser::new(&server);
    let consent = browser
        .consent_page(&server, &Authorize::new(&server, &app), DANIEL)
        .await;
    let code = browser.approve(&consent).await.code();
    let tokens = app.exchange(&server, &code, None).await.tokens();
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1288992")
            .await,
        200
    );

    let apps = browser.open("/apps").await.page();
    let text = apps.text();
    assert!(
        text.contains("Fake Research Application") && text.contains(DANIEL.patient_name),
        "{text}"
    );
    let revoke = apps.form("/apps/revoke");
    assert_eq!(revoke.buttons(), ["Revoke"]);
    let after = browser.submit(&revoke, "Revoke").await.page();
    assert_eq!(after.url.path(), "/apps");
    assert!(!after.has_form("/apps/revoke"));
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1288992")
            .await,
        401
    );
    app.refresh(&server, tokens.refresh(), None)
        .await
        .assert_error(400, "invalid_grant");
}

/// Tokens minted by the debug endpoint each make an approval; the apps page shows those of
/// one app, patient and scope as one row ("granted 3 times"), a revoke ends all of them
/// and says so once on the page it lands on, and the other grants live on.
#[tokio::test]
async fn debug_mints_of_one_grant_are_one_row_and_a_revoke_says_what_it_ended() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let mint = |patient: &str, scope: &str| {
        let mut body = serde_json::json!({
            "client_id": app.client_id,
            "username": DANIEL.username,
            "patient_id": patient,
        });
        if !scope.is_empty() {
            body["scope"] = serde_json::json!(scope);
        }
        server.debug_token(body)
    };
    let mut daniels = Vec::new();
    for _ in 0..3 {
        daniels.push(mint(DANIEL.patient, "").await);
    }
    let amys = mint(AMY.patient, "").await;
    let narrower = mint(DANIEL.patient, "launch/patient patient/Observation.read").await;

    let browser = Browser::new(&server);
    let login = browser.open("/apps").await.page();
    let apps = browser.sign_in(login, DANIEL.username).await.page();
    assert_eq!(apps.url.path(), "/apps");
    let rows: Vec<String> = {
        let doc = scraper::Html::parse_document(&apps.body);
        let row = scraper::Selector::parse("tbody tr").unwrap();
        doc.select(&row)
            .map(|r| r.text().collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(rows.len(), 3, "one row per grant: {rows:?}");
    let forms = apps.forms();
    assert_eq!(forms.len(), 3);
    let at = rows
        .iter()
        .position(|r| r.contains("granted 3 times") && r.contains(DANIEL.patient_name))
        .unwrap_or_else(|| panic!("no row for the three mints: {rows:?}"));
    assert_eq!(
        rows.iter().filter(|r| r.contains("granted")).count(),
        1,
        "{rows:?}"
    );

    let after = browser.submit(&forms[at], "Revoke").await.page();
    assert_eq!(after.url.path(), "/apps");
    let text = after.text();
    assert!(
        text.contains(&format!(
            "Revoked: Fake Research Application no longer has access to {}'s records (granted 3 times)",
            DANIEL.patient_name
        )),
        "{text}"
    );
    assert_eq!(after.forms().len(), 2, "the other grants stay: {text}");
    for tokens in &daniels {
        let status = server
            .fhir_status(&tokens.access, "Patient/smart-1288992")
            .await;
        assert_eq!(status, 401);
    }
    assert_eq!(
        server
            .fhir_status(&amys.access, "Patient/smart-1032702")
            .await,
        200
    );
    let observations = server.fhir_status(&narrower.access, "Observation").await;
    assert_eq!(observations, 200);
    let again = browser.open("/apps").await.page().text();
    assert!(
        !again.contains("Revoked"),
        "the confirmation shows once: {again}"
    );
}

#[tokio::test]
async fn an_apps_name_is_shown_as_text_never_as_markup() {
    let server = TestServer::start().await;
    let name = "<img src=x onerror=alert(1)> Evil & Co";
    let app = server
        .register(serde_json::json!({
            "client_name": name,
            "redirect_uris": [SEED_REDIRECT],
            "scope": SEED_SCOPE,
        }))
        .await;
    let browser = Browser::new(&server);
    let consent = browser
        .consent_page(&server, &Authorize::new(&server, &app), DANIEL)
        .await;
    assert!(!consent.body.contains("<img"), "{}", consent.body);
    assert!(consent.text().contains(name), "{}", consent.text());
}

#[tokio::test]
async fn approving_the_same_app_again_renews_one_approval_and_keeps_its_tokens() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let browser = Browser::new(&server);
    let mut tokens = Vec::new();
    for who in [DANIEL, DANIEL, AMY] {
        let consent = browser
            .consent_page(&server, &Authorize::new(&server, &app), who)
            .await;
        let code = browser.approve(&consent).await.code();
        tokens.push(app.exchange(&server, &code, None).await.tokens());
    }
    let apps = browser.open("/apps").await.page();
    let grants = apps.body.matches("action=\"/apps/revoke\"").count();
    assert_eq!(
        grants, 2,
        "Daniel's two approvals are one; Amy's is another"
    );
    for (t, patient) in tokens.iter().zip([DANIEL, DANIEL, AMY]) {
        let path = format!("Patient/{}", patient.patient);
        assert_eq!(server.fhir_status(&t.access, &path).await, 200);
    }
}
