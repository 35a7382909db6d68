//! The pages for the identity grant: dr-carter signs in through the forms, the picker calls
//! her patients hers, the consent page says which FHIR record `openid fhirUser` shares for
//! each user and grant, and /apps shows which approvals know who the participant is.

use crate::portal::{Authorize, Browser, Person, TestServer, AMY, CARTER, DANIEL, JOSEPH};

const IDENTITY_SCOPE: &str = "openid fhirUser launch/patient patient/*.rs";

/// The consent page's words for this person with an app asking for `scope`.
async fn consent_words(server: &TestServer, scope: &str, who: Person) -> String {
    let app = server
        .register_app("Identity App", "client_secret_basic", scope)
        .await;
    let browser = Browser::new(server);
    let request = Authorize::new(server, &app);
    browser.consent_page(server, &request, who).await.text()
}

#[tokio::test]
async fn the_practitioner_signs_in_picks_her_patient_and_the_token_reads_her_record() {
    let server = TestServer::start().await;
    let app = server
        .register_app("Clinic App", "client_secret_basic", IDENTITY_SCOPE)
        .await;
    let browser = Browser::new(&server);
    let login = browser
        .open(&Authorize::new(&server, &app).url(&server))
        .await
        .page();
    let picker = browser.sign_in(login, CARTER.username).await.page();
    let form = picker.form("/oauth/consent/patient");
    let mut offered = form.choices("patient");
    offered.sort();
    assert_eq!(
        offered,
        ["smart-1032702", "smart-1081332", "smart-1288992"],
        "she treats all three"
    );
    let words = picker.text();
    assert_eq!(words.matches("Your patient").count(), 3, "{words}");
    assert!(!words.contains("Someone you represent"), "{words}");

    let mut form = form;
    form.choose("patient", CARTER.patient);
    let consent = browser.submit(&form, "Continue").await.page();
    let words = consent.text();
    assert!(
        words.contains("Know who you are: your name and your record as a FHIR Practitioner"),
        "{words}"
    );
    assert!(words.contains(CARTER.patient_name), "{words}");
    let categories = consent.form("/oauth/consent").checked("category");
    assert!(
        !categories.iter().any(|c| c == "Practitioner"),
        "patient/ scopes are not offered Practitioner: {categories:?}"
    );

    let code = browser.approve(&consent).await.code();
    let reply = app.exchange(&server, &code, None).await;
    assert_eq!(reply.json["patient"], CARTER.patient);
    assert_eq!(
        reply.json["scope"], IDENTITY_SCOPE,
        "every kind ticked keeps the wildcard"
    );
    let tokens = reply.tokens();
    let status = |path: &'static str| server.fhir_status(&tokens.access, path);
    assert_eq!(status("Practitioner/practitioner-carter").await, 200);
    assert_eq!(status("Patient/smart-1081332").await, 200);
    assert_eq!(status("Patient/smart-1288992").await, 404);

    let apps = browser.open("/apps").await.page().text();
    assert!(apps.contains("Clinic App"), "{apps}");
    assert!(
        apps.contains(
            "Knows who you are: your name and your FHIR record Practitioner/practitioner-carter"
        ),
        "{apps}"
    );
}

#[tokio::test]
async fn the_consent_page_names_each_users_fhir_record() {
    let server = TestServer::start().await;
    let cases = [
        (DANIEL, "your record as a FHIR Patient".to_string()),
        (
            AMY,
            format!(
                "your record as a FHIR RelatedPerson (the person who represents {})",
                AMY.patient_name
            ),
        ),
        (JOSEPH, "your record as a FHIR Patient".to_string()),
    ];
    for (who, expected) in cases {
        let words = consent_words(&server, IDENTITY_SCOPE, who).await;
        assert!(
            words.contains(&format!("Know who you are: your name and {expected}")),
            "{}/{}: {words}",
            who.username,
            who.patient
        );
        assert_eq!(
            words.matches("Know who you are").count(),
            1,
            "one line for the identity scopes"
        );
    }
    let words = consent_words(&server, "openid profile fhirUser patient/*.rs", DANIEL).await;
    assert_eq!(words.matches("Know who you are").count(), 1, "{words}");
    let words = consent_words(&server, "openid launch/patient patient/*.rs", JOSEPH).await;
    assert!(!words.contains("Know who you are"), "{words}");
    assert!(
        words.contains("shares nothing about who you are"),
        "{words}"
    );
}

#[tokio::test]
async fn apps_show_identity_grants_only_where_given() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    for (name, scope) in [
        ("Knows Me", IDENTITY_SCOPE),
        ("Charts Only", "launch/patient patient/*.rs"),
    ] {
        let app = server
            .register_app(name, "client_secret_basic", scope)
            .await;
        let consent = browser
            .consent_page(&server, &Authorize::new(&server, &app), JOSEPH)
            .await;
        browser.approve(&consent).await.code();
    }
    let page = browser.open("/apps").await.page();
    let text = page.text();
    assert!(
        text.contains("Knows Me") && text.contains("Charts Only"),
        "{text}"
    );
    assert_eq!(
        text.matches("Knows who you are").count(),
        1,
        "only the identity grant: {text}"
    );
    assert!(
        text.contains("Knows who you are: your name and your FHIR record Patient/smart-1081332"),
        "{text}"
    );
}
