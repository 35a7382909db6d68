//! With `user/` scopes the token reaches every patient the participant can share (see
//! `fhir::access`), whoever is picked: the picker and the consent page say so, and the
//! token does what they say.

use crate::portal::{Authorize, Browser, TestServer, AMY, DANIEL};

const USER_SCOPE: &str = "launch/patient user/*.read offline_access";

#[tokio::test]
async fn the_picker_says_user_scopes_reach_every_listed_patient() {
    let server = TestServer::start().await;
    let app = server
        .register_app("Cohort App", "client_secret_basic", USER_SCOPE)
        .await;
    let browser = Browser::new(&server);
    let login = browser
        .open(&Authorize::new(&server, &app).url(&server))
        .await
        .page();
    let picker = browser.sign_in(login, DANIEL.username).await.page();
    let words = picker.text();
    assert!(!words.contains("Choose one for this app"), "{words}");
    assert!(
        words.contains("Cohort App asks to see the records of every patient listed here"),
        "{words}"
    );
    assert!(
        words.contains("for all the patients listed below, not only the one you choose"),
        "{words}"
    );
    assert!(
        words.contains("Read all health records of every patient you can share"),
        "{words}"
    );
    assert!(
        words.contains("Your choice only sets the patient the app opens with"),
        "{words}"
    );

    // Picking Amy: the consent page names both patients, and opens with Amy.
    let mut form = picker.form("/oauth/consent/patient");
    form.choose("patient", AMY.patient);
    let consent = browser.submit(&form, "Continue").await.page();
    let words = consent.text();
    assert!(
        words.contains(&format!(
            "Cohort App wants to see the health records of {} and {}",
            AMY.patient_name, DANIEL.patient_name
        )),
        "{words}"
    );
    assert!(words.contains("the patient it opens with"), "{words}");

    // What the words say is what the token does: Daniel's own chart is reachable too.
    let code = browser.approve(&consent).await.code();
    let reply = app.exchange(&server, &code, None).await;
    assert_eq!(reply.json["patient"], AMY.patient);
    let tokens = reply.tokens();
    for patient in [AMY.patient, DANIEL.patient] {
        let path = format!("Patient/{patient}");
        assert_eq!(
            server.fhir_status(&tokens.access, &path).await,
            200,
            "{path}"
        );
    }

    // With patient/ scopes only, the choice is what is shared, and the pages say that.
    let app = server.register_seed_app().await;
    let browser = Browser::new(&server);
    let login = browser
        .open(&Authorize::new(&server, &app).url(&server))
        .await
        .page();
    let picker = browser.sign_in(login, DANIEL.username).await.page();
    let words = picker.text();
    assert!(words.contains("Choose one for this app"), "{words}");
    assert!(!words.contains("every patient listed"), "{words}");
    let mut form = picker.form("/oauth/consent/patient");
    form.choose("patient", AMY.patient);
    let consent = browser.submit(&form, "Continue").await.page();
    let words = consent.text();
    assert!(
        words.contains(&format!(
            "wants to see {}'s health records",
            AMY.patient_name
        )),
        "{words}"
    );
    assert!(!words.contains(DANIEL.patient_name), "{words}");
}
