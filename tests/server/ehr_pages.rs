//! The simulated EHR page (/ehr) and the standalone encounter picker, through the HTML
//! forms: who may launch what, the launch URL the browser is sent to, and the context the
//! consent page names and the token response carries.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::portal::*;

const LAUNCH_URL: &str = "http://localhost:9001/launch";
/// An EHR launch app that also asks for launch/encounter: no picker may show for it.
const EHR_SCOPE: &str = "launch launch/encounter openid fhirUser user/*.rs offline_access";
const STANDALONE_SCOPE: &str = "launch/patient launch/encounter patient/*.rs";
const JOSEPH_VISIT: &str = "smart-1081332-enc-2016-07";

async fn app(server: &TestServer, scope: &str, launch_uri: Option<&str>) -> App {
    let mut metadata = json!({
        "client_name": "Chart Review",
        "redirect_uris": ["http://localhost:9001/authorized"],
        "scope": scope,
    });
    if let Some(uri) = launch_uri {
        metadata["initiate_login_uri"] = json!(uri);
    }
    server.register(metadata).await
}

/// A browser signed in as `username`, on the EHR page.
async fn at_the_ehr(server: &TestServer, username: &str) -> (Browser, Page) {
    let browser = Browser::new(server);
    let login = browser.open("/ehr").await.page();
    assert!(login.has_form("/login"), "{}", login.text());
    let page = browser.sign_in(login, username).await.page();
    assert_eq!(
        page.url.path(),
        "/ehr",
        "back on the EHR page after sign-in"
    );
    assert!(page.has_form("/ehr/launch"), "{}", page.text());
    (browser, page)
}

/// Where the EHR sent the browser: the launch URL without its query, and its parameters.
fn opened(callback: &Callback) -> (String, Vec<(String, String)>) {
    assert_eq!(callback.status, StatusCode::SEE_OTHER);
    let pairs = callback.url.query_pairs().into_owned().collect();
    (callback.target(), pairs)
}

/// The app's side: authorize with the launch it received, in the EHR user's browser.
async fn consent_for_launch(
    server: &TestServer,
    browser: &Browser,
    app: &App,
    launch: &str,
) -> Page {
    let request = Authorize::new(server, app).set("launch", launch);
    let page = browser.open(&request.url(server)).await.page();
    assert!(
        page.has_form("/oauth/consent"),
        "no picker, no sign-in again: {}",
        page.text()
    );
    page
}

async fn token_response(server: &TestServer, browser: &Browser, app: &App, page: &Page) -> Value {
    let code = browser.approve(page).await.code();
    let reply = app.exchange(server, &code, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json
}

#[tokio::test]
async fn the_ehr_page_needs_a_sign_in_and_its_form_a_csrf_token() {
    let server = TestServer::start().await;
    let app = app(&server, EHR_SCOPE, Some(LAUNCH_URL)).await;
    let (browser, page) = at_the_ehr(&server, CARTER.username).await;
    let mut form = page.form("/ehr/launch");
    form.fill("client_id", &app.client_id);

    let mut forged = form.clone();
    forged.remove("csrf");
    let refused = browser.submit(&forged, "Launch").await.page();
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    forged.tamper("csrf", "not-the-token");
    let refused = browser.submit(&forged, "Launch").await.page();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Another browser (not signed in) cannot post the signed-in user's form.
    let stranger = Browser::new(&server);
    let refused = stranger.submit(&form, "Launch").await.page();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // The page itself sends it to sign in, and back with what the link prefilled.
    let login = stranger
        .open(&format!("/ehr?client_id={}", app.client_id))
        .await
        .page();
    let back = stranger.sign_in(login, JOSEPH.username).await.page();
    assert_eq!(
        back.form("/ehr/launch").value("client_id"),
        Some(app.client_id.as_str())
    );

    // The real form still works.
    let away = browser.submit(&form, "Launch").await.callback();
    assert_eq!(away.target(), LAUNCH_URL);
}

#[tokio::test]
async fn dr_carter_launches_a_registered_app_for_joseph_with_an_encounter_and_an_intent() {
    let server = TestServer::start().await;
    let app = app(&server, EHR_SCOPE, Some(LAUNCH_URL)).await;
    let (browser, page) = at_the_ehr(&server, CARTER.username).await;
    let mut form = page.form("/ehr/launch");
    assert_eq!(
        form.choices("patient"),
        ["smart-1288992", "smart-1032702", "smart-1081332"]
    );
    form.choose("patient", JOSEPH.patient);
    let encounters = form.options("encounter-smart-1081332");
    assert_eq!(
        encounters,
        [
            "",
            "smart-1081332-enc-2017-12",
            JOSEPH_VISIT,
            "smart-1081332-enc-2015-01"
        ],
        "no encounter, then the most recent first"
    );
    form.select("encounter-smart-1081332", JOSEPH_VISIT);
    // Another patient's encounter choice is not what counts.
    form.select("encounter-smart-1288992", "smart-1288992-enc-2018-06");
    form.fill("client_id", &app.client_id);
    form.fill("intent", "reconcile-medications");
    assert_eq!(form.checked("ehr_banner"), ["1"], "ticked by default");

    let away = browser.submit(&form, "Launch").await.callback();
    let (target, params) = opened(&away);
    assert_eq!(target, LAUNCH_URL);
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["iss", "launch"]);
    assert_eq!(away.param("iss"), Some(server.fhir_base()));
    let launch = away.param("launch").unwrap();
    assert!(
        launch.len() == 32 && launch.bytes().all(|b| b.is_ascii_hexdigit()),
        "{launch}"
    );

    let consent = consent_for_launch(&server, &browser, &app, &launch).await;
    let said = consent.text();
    for words in [
        "Opened from the EHR for Joseph T. Ross",
        "2016-07-12",
        "Follow-up encounter",
        "reconcile-medications",
        "The EHR shows the patient banner",
    ] {
        assert!(said.contains(words), "{words:?} not in: {said}");
    }
    let body = token_response(&server, &browser, &app, &consent).await;
    assert_eq!(body["patient"], json!(JOSEPH.patient));
    assert_eq!(body["encounter"], json!(JOSEPH_VISIT));
    assert_eq!(
        body["fhirContext"],
        json!([{"reference": format!("Encounter/{JOSEPH_VISIT}")}])
    );
    assert_eq!(body["intent"], json!("reconcile-medications"));
    assert_eq!(body["need_patient_banner"], json!(false));

    // Bound to the app chosen: another app cannot spend a second launch of it.
    let intruder = self::app(&server, EHR_SCOPE, Some(LAUNCH_URL)).await;
    let page = browser.open("/ehr").await.page();
    let suggested = page.text();
    assert!(
        suggested.contains("Apps you approved") && suggested.contains(&app.client_id),
        "the approved app is suggested: {suggested}"
    );
    assert!(!suggested.contains(&intruder.client_id), "{suggested}");
    let mut form = page.form("/ehr/launch");
    assert_eq!(
        form.value("client_id"),
        Some(""),
        "suggested, not filled in"
    );
    form.fill("client_id", &app.client_id);
    let launch = browser
        .submit(&form, "Launch")
        .await
        .callback()
        .param("launch")
        .unwrap();
    let request = Authorize::new(&server, &intruder).set("launch", &launch);
    let refused = browser.open(&request.url(&server)).await.callback();
    assert_eq!(refused.param("error").as_deref(), Some("invalid_request"));
    assert!(refused
        .param("error_description")
        .unwrap()
        .contains("another app"));
}

#[tokio::test]
async fn a_typed_launch_url_keeps_its_query_and_any_app_may_use_the_launch() {
    let server = TestServer::start().await;
    let app = app(&server, EHR_SCOPE, None).await;
    let (browser, page) = at_the_ehr(&server, CARTER.username).await;
    let mut form = page.form("/ehr/launch");
    form.choose("patient", AMY.patient);
    form.fill(
        "launch_url",
        "https://app.example/smart/launch?tenant=north",
    );
    form.tick("ehr_banner", "1", false);
    let away = browser.submit(&form, "Launch").await.callback();
    let (target, params) = opened(&away);
    assert_eq!(target, "https://app.example/smart/launch");
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["tenant", "iss", "launch"]);
    assert_eq!(away.param("tenant").as_deref(), Some("north"));

    let launch = away.param("launch").unwrap();
    let consent = consent_for_launch(&server, &browser, &app, &launch).await;
    let said = consent.text();
    assert!(
        said.contains("Opened from the EHR for Amy V. Shaw."),
        "{said}"
    );
    assert!(
        said.contains("The app shows its own patient banner"),
        "{said}"
    );
    let body = token_response(&server, &browser, &app, &consent).await;
    assert_eq!(body["patient"], json!(AMY.patient));
    assert_eq!(
        body["need_patient_banner"],
        json!(true),
        "the box was unticked"
    );
    for absent in ["encounter", "fhirContext", "intent"] {
        assert!(body.get(absent).is_none(), "{absent}: {body}");
    }

    // A typed URL opens instead of the registered one, and the launch stays bound.
    let registered = self::app(&server, EHR_SCOPE, Some(LAUNCH_URL)).await;
    let mut form = browser.open("/ehr").await.page().form("/ehr/launch");
    form.fill("client_id", &registered.client_id);
    form.fill("launch_url", "http://localhost:9100/other");
    let away = browser.submit(&form, "Launch").await.callback();
    assert_eq!(away.target(), "http://localhost:9100/other");
    let request = Authorize::new(&server, &app).set("launch", &away.param("launch").unwrap());
    let refused = browser.open(&request.url(&server)).await.callback();
    assert_eq!(refused.param("error").as_deref(), Some("invalid_request"));
}

/// Press Launch and expect the form again with a 400.
async fn refused(browser: &Browser, form: &Form) -> Page {
    let page = browser.submit(form, "Launch").await.page();
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text());
    assert!(page.has_form("/ehr/launch"), "the form again");
    page
}

#[tokio::test]
async fn what_cannot_be_launched_is_refused_on_the_form_again() {
    let server = TestServer::start().await;
    let unlaunchable = app(&server, EHR_SCOPE, None).await;
    let (browser, page) = at_the_ehr(&server, CARTER.username).await;
    let form = page.form("/ehr/launch");
    for bad in [
        "javascript:alert(1)",
        "/launch",
        "app.example/launch",
        "ftp://app.example/launch",
        "https://user:secret@app.example/launch",
        "https://app.example/launch?launch=123",
    ] {
        let mut form = form.clone();
        form.fill("launch_url", bad);
        let page = refused(&browser, &form).await;
        assert!(
            page.text().contains("The launch URL"),
            "{bad}: {}",
            page.text()
        );
        assert_eq!(
            page.form("/ehr/launch").value("launch_url"),
            Some(bad),
            "kept"
        );
    }
    let page = refused(&browser, &form).await;
    assert!(page.text().contains("client id of a registered app"));
    let mut unknown = form.clone();
    unknown.fill("client_id", "nope");
    let page = refused(&browser, &unknown).await;
    assert!(page.text().contains("No app with client id nope"));
    let mut no_url = form.clone();
    no_url.fill("client_id", &unlaunchable.client_id);
    let page = refused(&browser, &no_url).await;
    assert!(
        page.text().contains("registered no launch URL"),
        "{}",
        page.text()
    );

    let mut typed = form.clone();
    typed.fill("launch_url", LAUNCH_URL);
    let mut elsewhere = typed.clone();
    elsewhere.choose("patient", JOSEPH.patient);
    elsewhere.tamper("encounter-smart-1081332", "smart-1288992-enc-2018-06");
    let page = refused(&browser, &elsewhere).await;
    assert!(page.text().contains("listed encounters"), "{}", page.text());
    let mut nobody = typed.clone();
    nobody.tamper("patient", "smart-0");
    let page = refused(&browser, &nobody).await;
    assert!(page.text().contains("Choose one of the patients"));
    let mut long = typed.clone();
    long.fill("intent", &"x".repeat(300));
    let page = refused(&browser, &long).await;
    assert!(page.text().contains("at most 256 bytes"), "{}", page.text());
}

#[tokio::test]
async fn a_patient_user_launches_only_for_the_patients_they_may_share() {
    let server = TestServer::start().await;
    let app = app(&server, "launch patient/*.rs", Some(LAUNCH_URL)).await;
    let (_, page) = at_the_ehr(&server, DANIEL.username).await;
    assert_eq!(
        page.form("/ehr/launch").choices("patient"),
        [DANIEL.patient, AMY.patient]
    );
    let (browser, page) = at_the_ehr(&server, JOSEPH.username).await;
    let mut form = page.form("/ehr/launch");
    assert_eq!(form.choices("patient"), [JOSEPH.patient]);
    assert_eq!(form.checked("patient"), [JOSEPH.patient]);
    assert!(!page.text().contains("Daniel"), "{}", page.text());
    let mut forged = form.clone();
    forged.tamper("patient", DANIEL.patient);
    forged.fill("client_id", &app.client_id);
    let refused = browser.submit(&forged, "Launch").await.page();
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);

    form.fill("client_id", &app.client_id);
    let launch = browser
        .submit(&form, "Launch")
        .await
        .callback()
        .param("launch")
        .unwrap();
    let consent = consent_for_launch(&server, &browser, &app, &launch).await;
    let body = token_response(&server, &browser, &app, &consent).await;
    assert_eq!(body["patient"], json!(JOSEPH.patient));
}

/// A standalone authorize request asking for launch/encounter, up to the encounter picker.
async fn encounter_picker(server: &TestServer, app: &App, who: Person) -> (Browser, Page) {
    let request = Authorize::new(server, app);
    let browser = Browser::new(server);
    let mut page = browser.open(&request.url(server)).await.page();
    page = browser.sign_in(page, who.username).await.page();
    if page.has_form("/oauth/consent/patient") {
        let mut picker = page.form("/oauth/consent/patient");
        picker.choose("patient", who.patient);
        page = browser.submit(&picker, "Continue").await.page();
    }
    assert!(page.has_form("/oauth/consent/encounter"), "{}", page.text());
    (browser, page)
}

#[tokio::test]
async fn a_standalone_launch_asking_for_launch_encounter_picks_one_or_none() {
    let server = TestServer::start().await;
    let app = server
        .register_app("Visit Notes", "client_secret_basic", STANDALONE_SCOPE)
        .await;
    let (browser, page) = encounter_picker(&server, &app, JOSEPH).await;
    let mut form = page.form("/oauth/consent/encounter");
    assert_eq!(
        form.choices("encounter"),
        [
            "smart-1081332-enc-2017-12",
            JOSEPH_VISIT,
            "smart-1081332-enc-2015-01",
            "none"
        ]
    );
    // Approving before choosing goes back to the picker, with no code.
    let consent = Form::forge(
        server.url("/oauth/consent").parse().unwrap(),
        &[
            ("csrf", form.value("csrf").unwrap()),
            ("request", form.value("request").unwrap()),
            ("decision", "approve"),
        ],
    );
    let again = browser.submit(&consent, "").await.page();
    assert!(
        again.has_form("/oauth/consent/encounter"),
        "{}",
        again.text()
    );
    // Another patient's encounter is refused.
    let mut forged = form.clone();
    forged.tamper("encounter", "smart-1288992-enc-2018-06");
    let refused = browser.submit(&forged, "Continue").await.page();
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.has_form("/oauth/consent/encounter"));

    form.choose("encounter", JOSEPH_VISIT);
    let consent = browser.submit(&form, "Continue").await.page();
    assert!(consent.has_form("/oauth/consent"), "{}", consent.text());
    assert!(
        consent
            .text()
            .contains("opens with the encounter 2016-07-12"),
        "{}",
        consent.text()
    );
    let code = browser.approve(&consent).await.code();
    let body = app.exchange(&server, &code, None).await.json;
    assert_eq!(body["patient"], json!(JOSEPH.patient));
    assert_eq!(body["encounter"], json!(JOSEPH_VISIT));
    assert_eq!(
        body["fhirContext"],
        json!([{"reference": format!("Encounter/{JOSEPH_VISIT}")}])
    );
    assert_eq!(body["need_patient_banner"], json!(true));

    // "No encounter": none in the token response. Daniel picks Amy first.
    let (browser, page) = encounter_picker(&server, &app, AMY).await;
    let mut form = page.form("/oauth/consent/encounter");
    assert!(form.choices("encounter")[0].starts_with("smart-1032702-enc-"));
    form.choose("encounter", "none");
    let consent = browser.submit(&form, "Continue").await.page();
    let code = browser.approve(&consent).await.code();
    let body = app.exchange(&server, &code, None).await.json;
    assert_eq!(body["patient"], json!(AMY.patient));
    for absent in ["encounter", "fhirContext"] {
        assert!(body.get(absent).is_none(), "{absent}: {body}");
    }

    // Deny works from the picker.
    let (browser, page) = encounter_picker(&server, &app, JOSEPH).await;
    let answer = browser
        .submit(&page.form("/oauth/consent/encounter"), "Deny")
        .await
        .callback();
    assert_eq!(answer.param("error").as_deref(), Some("access_denied"));
}
