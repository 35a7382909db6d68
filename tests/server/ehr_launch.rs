//! EHR launch: launches minted by the debug endpoint, spent once by the authorize request
//! that names them, bound to their user, patient and (optionally) client, and the context
//! the token response carries at the exchange and every refresh.

use std::time::Duration;

use serde_json::{json, Value};
use smartnb::server::Config;

use crate::portal::*;

const EHR_SCOPE: &str = "launch openid fhirUser user/*.rs patient/*.rs offline_access";

async fn mint(server: &TestServer, body: Value) -> Reply {
    server.post_json("/oauth/debug/launch", &body).await
}

async fn launch_id(server: &TestServer, body: Value) -> String {
    let reply = mint(server, body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.str("launch").to_string()
}

async fn ehr_app(server: &TestServer, scope: &str) -> App {
    server
        .register(json!({
            "client_name": "EHR App",
            "redirect_uris": ["http://localhost:9001/authorized"],
            "initiate_login_uri": "http://localhost:9001/launch",
            "scope": scope,
        }))
        .await
}

/// The app's authorize request for a launch, walked through by dr-carter in a fresh browser.
async fn launched(server: &TestServer, app: &App, launch: &str) -> Callback {
    let request = Authorize::new(server, app).set("launch", launch);
    let browser = Browser::new(server);
    let page = browser.open(&request.url(server)).await.page();
    assert!(page.has_form("/login"), "{}", page.text());
    assert_eq!(page.form("/login").value("username"), Some("dr-carter"));
    let consent = browser.sign_in(page, "dr-carter").await.page();
    assert!(
        consent.has_form("/oauth/consent"),
        "no picker: {}",
        consent.text()
    );
    browser.approve(&consent).await
}

/// Where an authorize request with this launch ends for a fresh browser: the error redirect.
async fn refused(server: &TestServer, app: &App, launch: &str) -> (String, String) {
    let request = Authorize::new(server, app).set("launch", launch);
    let answer = Browser::new(server)
        .open(&request.url(server))
        .await
        .callback();
    assert_eq!(answer.param("state").as_deref(), Some(SEED_STATE));
    (
        answer.param("error").unwrap_or_default(),
        answer.param("error_description").unwrap_or_default(),
    )
}

#[tokio::test]
async fn the_debug_launch_endpoint_mints_and_names_what_is_wrong() {
    let server = TestServer::start().await;
    let reply = mint(&server, json!({"patient_id": "smart-1081332"})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let id = reply.str("launch");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(reply.json["iss"], json!(server.fhir_base()));
    assert_eq!(reply.json["expires_in"], json!(300));
    reply.assert_not_cached();
    for (body, code) in [
        (json!({}), "no_patient"),
        (json!({"patient_id": "smart-0"}), "no_patient"),
        (
            json!({"patient_id": "smart-1081332", "username": "nobody"}),
            "no_user",
        ),
        (
            json!({"patient_id": "smart-1081332", "username": "daniel-adams"}),
            "no_patient_for_user",
        ),
        (
            json!({"patient_id": "smart-1081332", "encounter_id": "smart-1288992-enc-2018-06"}),
            "no_encounter",
        ),
        (
            json!({"patient_id": "smart-1081332", "client_id": "not-registered"}),
            "no_client",
        ),
        (
            json!({"patient_id": "smart-1081332", "fhir_context": ["Observation/nope"]}),
            "no_context",
        ),
        (
            json!({"patient_id": "smart-1081332", "fhir_context": ["Patient/smart-1288992"]}),
            "no_context",
        ),
        (
            json!({"patient_id": "smart-1081332", "fhir_context": "Observation/x"}),
            "invalid_request",
        ),
        (
            json!({"patient_id": "smart-1081332", "need_patient_banner": "yes"}),
            "invalid_request",
        ),
        (
            json!({"patient_id": "smart-1081332", "colour": "blue"}),
            "invalid_request",
        ),
    ] {
        mint(&server, body.clone()).await.assert_error(400, code);
    }
}

#[tokio::test]
async fn an_ehr_launch_brings_its_context_to_the_token_response_and_every_refresh() {
    let server = TestServer::start().await;
    let app = ehr_app(&server, EHR_SCOPE).await;
    let observation = "Observation/smart-1081332-obs-bp-1";
    let launch = launch_id(
        &server,
        json!({
            "patient_id": "smart-1081332",
            "encounter_id": "auto",
            "client_id": app.client_id,
            "intent": "reconcile-medications",
            "fhir_context": [observation],
        }),
    )
    .await;
    let code = launched(&server, &app, &launch).await.code();
    let reply = app.exchange(&server, &code, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = &reply.json;
    let encounter = "smart-1081332-enc-2017-12";
    assert_eq!(body["patient"], json!("smart-1081332"));
    assert_eq!(
        body["encounter"],
        json!(encounter),
        "auto is the latest: {body}"
    );
    assert_eq!(
        body["fhirContext"],
        json!([{"reference": format!("Encounter/{encounter}")}, {"reference": observation}])
    );
    assert_eq!(body["intent"], json!("reconcile-medications"));
    assert_eq!(
        body["need_patient_banner"],
        json!(false),
        "the EHR shows its banner"
    );
    let style_url = body["smart_style_url"].as_str().unwrap().to_string();
    assert_eq!(style_url, server.url("/smart-style.json"));
    let style = server.get(&style_url).await;
    assert_eq!(style.status, 200);
    assert_eq!(style.header("access-control-allow-origin"), "*");
    assert!(style.json["color_background"].is_string(), "{}", style.text);

    // The encounter, and every other patient's chart through user/ scopes, are readable.
    let tokens = reply.tokens();
    assert_eq!(
        server
            .fhir_status(&tokens.access, &format!("Encounter/{encounter}"))
            .await,
        200
    );
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1288992")
            .await,
        200
    );

    // Introspection names the same encounter and fhirContext.
    let seen = server.introspect(&app.auth(), &tokens.access).await;
    assert_eq!(seen.json["encounter"], body["encounter"], "{}", seen.text);
    assert_eq!(seen.json["fhirContext"], body["fhirContext"]);
    assert_eq!(seen.json["patient"], body["patient"]);

    // A refresh repeats the context.
    let renewed = app.refresh(&server, tokens.refresh(), None).await;
    for field in [
        "patient",
        "encounter",
        "fhirContext",
        "intent",
        "need_patient_banner",
        "smart_style_url",
    ] {
        assert_eq!(
            renewed.json[field], reply.json[field],
            "{field} after a refresh"
        );
    }

    // Spent: the same launch again is refused, by name.
    let (error, said) = refused(&server, &app, &launch).await;
    assert_eq!(error, "invalid_request");
    assert!(said.contains("already used"), "{said}");
}

#[tokio::test]
async fn unknown_expired_and_foreign_launches_are_refused_by_name() {
    let server = TestServer::start_with(Config {
        launch_lifetime: 1,
        ..Config::default()
    })
    .await;
    let app = ehr_app(&server, EHR_SCOPE).await;
    let other = ehr_app(&server, EHR_SCOPE).await;
    let (error, said) = refused(&server, &app, "0123456789abcdef0123456789abcdef").await;
    assert_eq!(error, "invalid_request");
    assert!(said.contains("unknown"), "{said}");

    let theirs = launch_id(
        &server,
        json!({"patient_id": "smart-1081332", "client_id": other.client_id}),
    )
    .await;
    let (_, said) = refused(&server, &app, &theirs).await;
    assert!(said.contains("another app"), "{said}");

    let late = launch_id(&server, json!({"patient_id": "smart-1081332"})).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, said) = refused(&server, &app, &late).await;
    assert!(said.contains("expired"), "{said}");
}

#[tokio::test]
async fn a_foreign_attempt_does_not_spend_the_launch() {
    let server = TestServer::start().await;
    let app = ehr_app(&server, EHR_SCOPE).await;
    let intruder = ehr_app(&server, EHR_SCOPE).await;
    let launch = launch_id(
        &server,
        json!({"patient_id": "smart-1032702", "client_id": app.client_id}),
    )
    .await;
    let (_, said) = refused(&server, &intruder, &launch).await;
    assert!(said.contains("another app"), "{said}");
    let code = launched(&server, &app, &launch).await.code();
    let reply = app.exchange(&server, &code, None).await;
    assert_eq!(reply.json["patient"], json!("smart-1032702"));
    assert!(reply.json.get("encounter").is_none(), "{}", reply.text);
    assert!(reply.json.get("fhirContext").is_none(), "{}", reply.text);
}

#[tokio::test]
async fn the_launch_scope_and_parameter_come_together() {
    let server = TestServer::start().await;
    let app = ehr_app(&server, EHR_SCOPE).await;
    let without = Authorize::new(&server, &app);
    let answer = Browser::new(&server)
        .open(&without.url(&server))
        .await
        .callback();
    assert_eq!(answer.param("error").as_deref(), Some("invalid_scope"));
    assert!(answer
        .param("error_description")
        .unwrap()
        .contains("launch parameter"));

    let launch = launch_id(&server, json!({"patient_id": "smart-1081332"})).await;
    let no_scope = Authorize::new(&server, &app)
        .set("scope", "openid fhirUser patient/*.rs")
        .set("launch", &launch);
    let answer = Browser::new(&server)
        .open(&no_scope.url(&server))
        .await
        .callback();
    assert_eq!(answer.param("error").as_deref(), Some("invalid_scope"));
    // Refused before it was spent: the launch still works.
    let code = launched(&server, &app, &launch).await.code();
    assert_eq!(app.exchange(&server, &code, None).await.status, 200);
}

#[tokio::test]
async fn a_browser_signed_in_as_someone_else_is_asked_to_sign_in_as_the_launch_user() {
    let server = TestServer::start().await;
    let app = ehr_app(&server, EHR_SCOPE).await;
    let browser = Browser::new(&server);
    let login = browser.open("/login").await.page();
    browser.sign_in(login, JOSEPH.username).await.page();
    let launch = launch_id(&server, json!({"patient_id": "smart-1081332"})).await;
    let request = Authorize::new(&server, &app).set("launch", &launch);
    let page = browser.open(&request.url(&server)).await.page();
    assert!(page.has_form("/login"), "{}", page.text());
    assert_eq!(page.form("/login").value("username"), Some("dr-carter"));
    assert!(
        page.text().contains("belongs to dr-carter"),
        "{}",
        page.text()
    );
    let consent = browser.sign_in(page, "dr-carter").await.page();
    assert!(consent.has_form("/oauth/consent"), "{}", consent.text());
    let code = browser.approve(&consent).await.code();
    let reply = app.exchange(&server, &code, None).await;
    assert_eq!(reply.json["patient"], json!("smart-1081332"));
}

#[tokio::test]
async fn patient_scopes_under_an_ehr_launch_reach_only_the_launch_patient() {
    let server = TestServer::start().await;
    let app = ehr_app(&server, "launch patient/Observation.rs patient/Patient.rs").await;
    let launch = launch_id(&server, json!({"patient_id": "smart-1032702"})).await;
    let code = launched(&server, &app, &launch).await.code();
    let tokens = app.exchange(&server, &code, None).await.tokens();
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1032702")
            .await,
        200
    );
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1081332")
            .await,
        404
    );
    let search = server
        .fhir(&tokens.access, "Observation?patient=smart-1081332")
        .await;
    assert_eq!(search.json["total"], json!(0), "{}", search.text);
}

#[tokio::test]
async fn registration_takes_a_launch_url_only_where_a_browser_can_safely_go() {
    let server = TestServer::start().await;
    for (uri, ok) in [
        ("https://app.example/launch", true),
        ("http://localhost:9001/launch", true),
        ("http://127.0.0.1:9001/launch?x=1", true),
        ("http://app.example/launch", false),
        ("javascript:alert(1)", false),
        ("https://app.example/launch#x", false),
        ("/launch", false),
    ] {
        let reply = server
            .post_json(
                "/oauth/register",
                &json!({
                    "client_name": "Launchable",
                    "redirect_uris": ["http://localhost:9001/authorized"],
                    "initiate_login_uri": uri,
                    "scope": EHR_SCOPE,
                }),
            )
            .await;
        if ok {
            assert_eq!(reply.status, 201, "{uri}: {}", reply.text);
            assert_eq!(reply.json["initiate_login_uri"], json!(uri));
        } else {
            reply.assert_error(400, "invalid_client_metadata");
        }
    }
}

#[tokio::test]
async fn discovery_lists_the_ehr_launch_capabilities_and_scopes() {
    let server = TestServer::start().await;
    let smart = server
        .get(&server.url("/.well-known/smart-configuration"))
        .await;
    let capabilities = smart.json["capabilities"].as_array().unwrap();
    for needed in [
        "launch-ehr",
        "context-ehr-patient",
        "context-ehr-encounter",
        "context-standalone-encounter",
        "context-banner",
        "context-style",
        "authorize-post",
        "permission-user",
    ] {
        assert!(capabilities.contains(&json!(needed)), "{needed}");
    }
    let scopes = smart.json["scopes_supported"].as_array().unwrap();
    for scope in ["launch", "launch/encounter"] {
        assert!(scopes.contains(&json!(scope)), "{scope}");
    }
}
