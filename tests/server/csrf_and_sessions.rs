//! The portal's defences: every form needs its session's CSRF token, the session cookie is
//! HttpOnly and SameSite=Lax and renewed at sign-in, and a participant can only answer for
//! their own patients, their own requests and their own approvals. A refused form changes
//! nothing.

use crate::portal::*;

const SESSION: &str = "smartnb_session";

/// The CSRF token of some other browser's session.
async fn foreign_csrf(server: &TestServer) -> String {
    let login = Browser::new(server).open("/login").await.page();
    login.form("/login").value("csrf").unwrap().to_string()
}

/// The form with its CSRF token missing, wrong, or another session's.
async fn spoiled(server: &TestServer, form: &Form) -> Vec<(&'static str, Form)> {
    let mut missing = form.clone();
    missing.remove("csrf");
    let mut wrong = form.clone();
    wrong.tamper("csrf", "0123456789abcdef0123456789abcdef");
    let mut foreign = form.clone();
    foreign.tamper("csrf", &foreign_csrf(server).await);
    vec![("missing", missing), ("wrong", wrong), ("foreign", foreign)]
}

/// Submit each spoiled copy of the form: each is a 403 page.
async fn assert_each_refused(server: &TestServer, browser: &Browser, form: &Form, button: &str) {
    for (how, bad) in spoiled(server, form).await {
        let page = browser.submit(&bad, button).await.page();
        assert_eq!(page.status.as_u16(), 403, "{how} csrf: {}", page.text());
    }
}

/// Whether the browser is signed in: /apps shows the list rather than the sign-in form.
async fn signed_in(browser: &Browser) -> bool {
    let page = browser.open("/apps").await.page();
    !page.has_form("/login")
}

#[tokio::test]
async fn the_login_form_needs_its_csrf_token() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let mut form = browser.open("/login").await.page().form("/login");
    form.fill("username", DANIEL.username);
    form.fill("password", PASSWORD);
    assert_each_refused(&server, &browser, &form, "Sign in").await;
    assert!(!signed_in(&browser).await);
    browser.submit(&form, "Sign in").await.page();
    assert!(signed_in(&browser).await);
}

#[tokio::test]
async fn the_patient_picker_needs_its_csrf_token() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let browser = Browser::new(&server);
    let login = browser
        .open(&Authorize::new(&server, &app).url(&server))
        .await
        .page();
    let picker = browser.sign_in(login, DANIEL.username).await.page();
    let mut form = picker.form("/oauth/consent/patient");
    form.choose("patient", AMY.patient);
    assert_each_refused(&server, &browser, &form, "Continue").await;
    // Still at the picker: no patient was chosen.
    let again = browser.open(picker.url.as_str()).await.page();
    assert!(again.has_form("/oauth/consent/patient"));
    let consent = browser.submit(&form, "Continue").await.page();
    assert!(consent.text().contains(AMY.patient_name));
}

#[tokio::test]
async fn the_consent_form_needs_its_csrf_token_and_session() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let browser = Browser::new(&server);
    let request = Authorize::new(&server, &app);
    let consent = browser.consent_page(&server, &request, JOSEPH).await;
    let form = consent.form("/oauth/consent");
    assert_each_refused(&server, &browser, &form, "Approve").await;
    // Another site making the participant's browser post it has no cookie to send along.
    let cross_site = Browser::new(&server).submit(&form, "Approve").await.page();
    assert_eq!(cross_site.status.as_u16(), 403);
    // No code was issued, no approval saved; the genuine form still works.
    let apps = browser.open("/apps").await.page();
    assert!(!apps.has_form("/apps/revoke"), "{}", apps.text());
    let code = browser.submit(&form, "Approve").await.callback().code();
    assert_eq!(
        app.exchange(&server, &code, None).await.status.as_u16(),
        200
    );
}

#[tokio::test]
async fn revoking_from_apps_needs_its_csrf_token() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let browser = Browser::new(&server);
    let consent = browser
        .consent_page(&server, &Authorize::new(&server, &app), JOSEPH)
        .await;
    let code = browser.approve(&consent).await.code();
    let tokens = app.exchange(&server, &code, None).await.tokens();
    let revoke = browser.open("/apps").await.page().form("/apps/revoke");
    assert_each_refused(&server, &browser, &revoke, "Revoke").await;
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1081332")
            .await,
        200
    );
    assert!(browser.open("/apps").await.page().has_form("/apps/revoke"));
}

#[tokio::test]
async fn signing_out_needs_its_csrf_token() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let login = browser.open("/login").await.page();
    browser.sign_in(login, JOSEPH.username).await.page();
    let logout = browser.open("/logout").await.page().form("/logout");
    assert_each_refused(&server, &browser, &logout, "Sign out").await;
    assert!(signed_in(&browser).await);
    let after = browser.submit(&logout, "Sign out").await.page();
    assert!(after.has_form("/login"));
    assert!(!signed_in(&browser).await);
}

#[tokio::test]
async fn the_session_cookie_is_http_only_lax_and_renewed_at_sign_in() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let login = browser.open("/login").await.page();
    let set_cookie = login.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set_cookie.starts_with(&format!("{SESSION}=")),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/"), "{set_cookie}");
    let before = browser.cookie(SESSION).expect("a session before sign-in");
    browser.sign_in(login, DANIEL.username).await.page();
    let after = browser.cookie(SESSION).expect("a session after sign-in");
    assert_ne!(before, after);

    // An attacker who planted their session id in the victim's browser gains nothing.
    let attacker = Browser::new(&server);
    attacker.open("/login").await.page();
    let planted = attacker.cookie(SESSION).unwrap();
    let victim = Browser::new(&server);
    victim.plant_cookie(SESSION, &planted);
    let login = victim.open("/login").await.page();
    victim.sign_in(login, JOSEPH.username).await.page();
    assert!(signed_in(&victim).await);
    assert!(!signed_in(&attacker).await);
}

#[tokio::test]
async fn a_participant_cannot_choose_a_patient_who_is_not_theirs() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let request = Authorize::new(&server, &app);

    // Joseph gets no picker, so he forges its form from his consent page's fields.
    let joseph = Browser::new(&server);
    let consent = joseph.consent_page(&server, &request, JOSEPH).await;
    let fields = consent.form("/oauth/consent");
    let action = server.url("/oauth/consent/patient").parse().unwrap();
    let forged = Form::forge(
        action,
        &[
            ("csrf", fields.value("csrf").unwrap()),
            ("request", fields.value("request").unwrap()),
            ("patient", DANIEL.patient),
        ],
    );
    assert_eq!(joseph.submit(&forged, "").await.page().status.as_u16(), 400);
    let code = joseph.approve(&consent).await.code();
    let reply = app.exchange(&server, &code, None).await;
    assert_eq!(reply.json["patient"], JOSEPH.patient);

    // Daniel's picker offers his two patients; Joseph's id is refused.
    let daniel = Browser::new(&server);
    let login = daniel.open(&request.url(&server)).await.page();
    let picker = daniel.sign_in(login, DANIEL.username).await.page();
    let mut form = picker.form("/oauth/consent/patient");
    form.tamper("patient", JOSEPH.patient);
    let refused = daniel.submit(&form, "Continue").await.page();
    assert_eq!(refused.status.as_u16(), 400);
    assert!(
        refused.has_form("/oauth/consent/patient"),
        "the picker again"
    );
    let mut form = refused.form("/oauth/consent/patient");
    form.choose("patient", AMY.patient);
    let consent = daniel.submit(&form, "Continue").await.page();
    let code = daniel.approve(&consent).await.code();
    assert_eq!(
        app.exchange(&server, &code, None).await.json["patient"],
        AMY.patient
    );
}

#[tokio::test]
async fn only_offered_categories_and_one_to_three_years_are_accepted() {
    let server = TestServer::start().await;
    let scope = "launch/patient patient/Observation.read offline_access";
    let app = server
        .register_app("Narrow App", "client_secret_basic", scope)
        .await;
    let browser = Browser::new(&server);
    let consent = browser
        .consent_page(&server, &Authorize::new(&server, &app), JOSEPH)
        .await;
    let form = consent.form("/oauth/consent");
    assert_eq!(form.choices("category"), ["Observation"]);

    let mut tries = Vec::new();
    for extra in ["Patient", "Condition", "Bogus"] {
        let mut bad = form.clone();
        bad.append("category", extra);
        tries.push(bad);
    }
    for years in ["0", "4", "x", "-1", "1.5"] {
        let mut bad = form.clone();
        bad.tamper("years", years);
        tries.push(bad);
    }
    let mut none_ticked = form.clone();
    none_ticked.tick("category", "Observation", false);
    tries.push(none_ticked);
    for bad in tries {
        let page = browser.submit(&bad, "Approve").await.page();
        assert_eq!(page.status.as_u16(), 400, "{:?}", bad.pairs("Approve"));
        assert!(page.has_form("/oauth/consent"), "the consent page again");
    }
    let code = browser.submit(&form, "Approve").await.callback().code();
    let reply = app.exchange(&server, &code, None).await;
    assert_eq!(reply.json["scope"], scope);
}

#[tokio::test]
async fn a_request_started_by_one_user_cannot_be_answered_by_another() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let daniel = Browser::new(&server);
    let consent = daniel
        .consent_page(&server, &Authorize::new(&server, &app), DANIEL)
        .await;
    let form = consent.form("/oauth/consent");

    let joseph = Browser::new(&server);
    let login = joseph.open(consent.url.as_str()).await.page();
    let page = joseph.sign_in(login, JOSEPH.username).await.page();
    assert_eq!(page.status.as_u16(), 403, "{}", page.text());
    assert!(!page.has_form("/oauth/consent"));

    let joseph_csrf = joseph.open("/logout").await.page().form("/logout");
    let mut forged = form.clone();
    forged.tamper("csrf", joseph_csrf.value("csrf").unwrap());
    assert_eq!(
        joseph
            .submit(&forged, "Approve")
            .await
            .page()
            .status
            .as_u16(),
        403
    );

    let code = daniel.submit(&form, "Approve").await.callback().code();
    assert_eq!(
        app.exchange(&server, &code, None).await.json["patient"],
        DANIEL.patient
    );
}

#[tokio::test]
async fn revoking_someone_elses_approval_is_not_found_and_changes_nothing() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let request = Authorize::new(&server, &app);
    let daniel = Browser::new(&server);
    let consent = daniel.consent_page(&server, &request, DANIEL).await;
    let code = daniel.approve(&consent).await.code();
    let tokens = app.exchange(&server, &code, None).await.tokens();
    let daniels = daniel.open("/apps").await.page().form("/apps/revoke");

    let joseph = Browser::new(&server);
    let consent = joseph.consent_page(&server, &request, JOSEPH).await;
    joseph.approve(&consent).await;
    let mut form = joseph.open("/apps").await.page().form("/apps/revoke");
    form.tamper("approval", daniels.value("approval").unwrap());
    let page = joseph.submit(&form, "Revoke").await.page();
    assert_eq!(page.status.as_u16(), 404, "{}", page.text());
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1288992")
            .await,
        200
    );
    assert!(daniel.open("/apps").await.page().has_form("/apps/revoke"));
}

#[tokio::test]
async fn sign_in_never_redirects_off_site() {
    let server = TestServer::start().await;
    for next in [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "http:evil.example",
    ] {
        let browser = Browser::new(&server);
        let address = format!("/login?next={}", urlencode(next));
        let login = browser.open(&address).await.page();
        let landed = browser.sign_in(login, JOSEPH.username).await.page();
        assert_eq!(landed.url.path(), "/apps", "next={next}");
        assert_eq!(
            landed.url.origin(),
            url::Url::parse(&server.base_url).unwrap().origin()
        );

        // The same with next forged into the form itself.
        let browser = Browser::new(&server);
        let mut form = browser.open("/login").await.page().form("/login");
        form.fill("username", JOSEPH.username);
        form.fill("password", PASSWORD);
        form.tamper("next", next);
        let landed = browser.submit(&form, "Sign in").await.page();
        assert_eq!(landed.url.path(), "/apps", "forged next={next}");
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
