//! The EHR page's "Simulate a failure": the select offers every fault (none by default); a
//! launch from the page carries the chosen one to the app that uses it, whose authorize
//! request, code exchange or FHIR request then fails as named, once; a name the list does not
//! offer, or a failure that can never happen for the app, is refused on the page.

use reqwest::StatusCode;
use serde_json::json;
use smartnb::server::simulate::FAULT_NAMES;

use crate::portal::*;

const LAUNCH_URL: &str = "http://localhost:9001/launch";
const SCOPE: &str = "launch openid fhirUser user/*.rs offline_access";

async fn app(server: &TestServer) -> App {
    server
        .register(json!({
            "client_name": "Chart Review",
            "redirect_uris": ["http://localhost:9001/authorized"],
            "scope": SCOPE,
            "initiate_login_uri": LAUNCH_URL,
        }))
        .await
}

/// Dr. Carter signed in on the EHR page, its form filled for this app and Joseph's chart.
async fn launch_form(server: &TestServer, app: &App) -> (Browser, Form) {
    let browser = Browser::new(server);
    let login = browser.open("/ehr").await.page();
    let page = browser.sign_in(login, CARTER.username).await.page();
    let mut form = page.form("/ehr/launch");
    form.choose("patient", JOSEPH.patient);
    form.fill("client_id", &app.client_id);
    (browser, form)
}

/// Launch from the page with this failure chosen; the launch the app's URL received.
async fn launch_with(server: &TestServer, app: &App, fault: &str) -> (Browser, String) {
    let (browser, mut form) = launch_form(server, app).await;
    form.select("fault", fault);
    let away = browser.submit(&form, "Launch").await.callback();
    assert_eq!(away.target(), LAUNCH_URL);
    let launch = away.param("launch").expect("a launch");
    (browser, launch)
}

/// The app's authorize request with the launch, in the EHR user's browser.
async fn authorize_with(
    server: &TestServer,
    browser: &Browser,
    app: &App,
    launch: &str,
) -> Landing {
    let request = Authorize::new(server, app).set("launch", launch);
    browser.open(&request.url(server)).await
}

async fn faults_of(server: &TestServer, client_id: &str) -> serde_json::Value {
    let url = server.url(&format!("/oauth/debug/simulate?client_id={client_id}"));
    let reply = server.get(&url).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["faults"].clone()
}

#[tokio::test]
async fn the_select_offers_every_fault_and_none_by_default() {
    let server = TestServer::start().await;
    let app = app(&server).await;
    let (browser, form) = launch_form(&server, &app).await;
    let offered = form.options("fault");
    assert_eq!(offered.first().map(String::as_str), Some(""));
    assert_eq!(&offered[1..], FAULT_NAMES);
    assert_eq!(form.value("fault"), Some(""), "none chosen at first");

    // Launched as it stands: no fault for anyone, the app's flow is the real one.
    let launch = browser
        .submit(&form, "Launch")
        .await
        .callback()
        .param("launch")
        .unwrap();
    let consent = authorize_with(&server, &browser, &app, &launch)
        .await
        .page();
    assert!(consent.has_form("/oauth/consent"), "{}", consent.text());
    assert_eq!(faults_of(&server, &app.client_id).await, json!([]));
}

#[tokio::test]
async fn an_authorize_failure_answers_the_apps_authorize_request_with_the_launch() {
    let server = TestServer::start().await;
    let app = app(&server).await;
    let (browser, launch) = launch_with(&server, &app, "authorize_access_denied").await;
    let refused = authorize_with(&server, &browser, &app, &launch)
        .await
        .callback();
    assert_eq!(refused.status, StatusCode::FOUND);
    assert_eq!(refused.target(), app.redirect_uri);
    assert_eq!(refused.param("error").as_deref(), Some("access_denied"));
    assert_eq!(refused.param("state").as_deref(), Some(SEED_STATE));
    assert!(refused.param("code").is_none());
    assert_eq!(faults_of(&server, &app.client_id).await, json!([]));

    // Once: the next launch from the page (none chosen) reaches the consent page.
    let (browser, launch) = launch_with(&server, &app, "").await;
    let page = authorize_with(&server, &browser, &app, &launch)
        .await
        .page();
    assert!(page.has_form("/oauth/consent"), "{}", page.text());
}

#[tokio::test]
async fn a_token_failure_refuses_the_apps_code_exchange_once() {
    let server = TestServer::start().await;
    let app = app(&server).await;
    let (browser, launch) = launch_with(&server, &app, "token_invalid_grant").await;
    let consent = authorize_with(&server, &browser, &app, &launch)
        .await
        .page();
    assert_eq!(
        faults_of(&server, &app.client_id).await[0]["fault"],
        "token_invalid_grant",
        "queued for the app when its authorize request spent the launch"
    );
    let code = browser.approve(&consent).await.code();
    let refused = app.exchange(&server, &code, None).await;
    refused.assert_error(400, "invalid_grant");
    assert_eq!(
        refused.header("smartnb-simulated"),
        "token_invalid_grant; remaining=0"
    );
    let tokens = app.exchange(&server, &code, None).await;
    assert_eq!(
        tokens.status, 200,
        "the code was not spent: {}",
        tokens.text
    );
    assert_eq!(tokens.json["patient"], json!(JOSEPH.patient));
}

#[tokio::test]
async fn a_fhir_failure_answers_the_apps_first_fhir_request() {
    let server = TestServer::start().await;
    let app = app(&server).await;
    let (browser, launch) = launch_with(&server, &app, "fhir_throttled").await;
    let consent = authorize_with(&server, &browser, &app, &launch)
        .await
        .page();
    let code = browser.approve(&consent).await.code();
    let tokens = app.exchange(&server, &code, None).await.tokens();
    let path = format!("Patient/{}", JOSEPH.patient);
    let throttled = server.fhir(&tokens.access, &path).await;
    assert_eq!(throttled.status, 429, "{}", throttled.text);
    assert_eq!(throttled.json["resourceType"], "OperationOutcome");
    assert_eq!(throttled.json["issue"][0]["code"], "throttled");
    assert_eq!(throttled.header("retry-after"), "2");
    assert_eq!(
        throttled.header("smartnb-simulated"),
        "fhir_throttled; remaining=0"
    );
    let read = server.fhir(&tokens.access, &path).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.header("smartnb-simulated"), "");
}

#[tokio::test]
async fn a_failure_the_list_does_not_offer_is_refused_on_the_page() {
    let server = TestServer::start().await;
    let app = app(&server).await;
    let (browser, mut form) = launch_form(&server, &app).await;
    form.tamper("fault", "fhir_exploded");
    let page = browser.submit(&form, "Launch").await.page();
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let said = page.text();
    for words in [
        "There is no simulated failure \"fhir_exploded\"",
        "fhir_throttled, slow",
        "or None",
    ] {
        assert!(said.contains(words), "{words:?} not in: {said}");
    }
    let again = page.form("/ehr/launch");
    assert_eq!(
        again.value("fault"),
        Some(""),
        "shown again with none chosen"
    );
    assert_eq!(again.value("client_id"), Some(app.client_id.as_str()));
    assert_eq!(faults_of(&server, &app.client_id).await, json!([]));
}

#[tokio::test]
async fn a_failure_that_can_never_happen_for_the_app_is_refused_on_the_page() {
    let server = TestServer::start().await;
    // An app without the refresh_token grant: token_expired_refresh would never apply.
    let app = server
        .register(json!({
            "client_name": "No Refresh",
            "redirect_uris": ["http://localhost:9001/authorized"],
            "scope": "launch user/*.rs",
            "grant_types": ["authorization_code"],
            "initiate_login_uri": LAUNCH_URL,
        }))
        .await;
    let (browser, mut form) = launch_form(&server, &app).await;
    form.select("fault", "token_expired_refresh");
    let page = browser.submit(&form, "Launch").await.page();
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let said = page.text();
    for words in [
        "That failure cannot happen for this app",
        "refresh_token",
        "Choose another, or None",
    ] {
        assert!(said.contains(words), "{words:?} not in: {said}");
    }
    assert_eq!(
        page.form("/ehr/launch").value("fault"),
        Some("token_expired_refresh"),
        "the choice is kept to change"
    );
    // Another failure goes through for that app.
    form.select("fault", "fhir_server_error");
    let away = browser.submit(&form, "Launch").await.callback();
    assert_eq!(away.target(), LAUNCH_URL);
}
