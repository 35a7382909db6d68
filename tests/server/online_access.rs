//! `online_access` means what the consent page says: the refresh token works while the
//! participant stays signed in where they approved, and stops when they sign out or the
//! sign-in expires. `offline_access` outlives the sign-in.

use std::time::{Duration, Instant};

use crate::portal::*;
use smartnb::server::Config;

const ONLINE: &str = "launch/patient patient/*.read online_access";
const PATIENT: &str = "Patient/smart-1081332";

/// Approve the app in this browser (which stays signed in) and exchange the code.
async fn approve_in(browser: &Browser, server: &TestServer, app: &App) -> Tokens {
    let request = Authorize::new(server, app);
    let consent = browser.consent_page(server, &request, JOSEPH).await;
    let code = browser.approve(&consent).await.code();
    app.exchange(server, &code, None).await.tokens()
}

async fn sign_out(browser: &Browser) {
    let logout = browser.open("/logout").await.page().form("/logout");
    let after = browser.submit(&logout, "Sign out").await.page();
    assert!(after.has_form("/login"), "{}", after.text());
}

#[tokio::test]
async fn the_consent_page_says_online_access_ends_with_the_sign_in() {
    let server = TestServer::start().await;
    let app = server
        .register_app("Online App", "client_secret_basic", ONLINE)
        .await;
    let browser = Browser::new(&server);
    let page = browser
        .consent_page(&server, &Authorize::new(&server, &app), JOSEPH)
        .await;
    let text = page.text();
    assert!(
        text.contains("while you stay signed in here")
            && text.contains("when you sign out or your sign-in ends"),
        "{text}"
    );
}

#[tokio::test]
async fn an_online_refresh_token_stops_working_at_sign_out() {
    let server = TestServer::start().await;
    let app = server
        .register_app("Online App", "client_secret_basic", ONLINE)
        .await;
    let browser = Browser::new(&server);
    let tokens = approve_in(&browser, &server, &app).await;
    // Signed in: it refreshes, and the new refresh token is bound the same way.
    let renewed = app.refresh(&server, tokens.refresh(), None).await.tokens();
    assert_eq!(server.fhir_status(&renewed.access, PATIENT).await, 200);

    sign_out(&browser).await;
    let refused = app.refresh(&server, renewed.refresh(), None).await;
    refused.assert_error(400, "invalid_grant");
    let said = refused.str("error_description");
    assert!(
        said.contains("online access ended") && said.contains("signed out"),
        "{said}"
    );
    // The access token already issued lives out its lifetime.
    assert_eq!(server.fhir_status(&renewed.access, PATIENT).await, 200);
    // Signing in again later does not bring it back: the grant was that sign-in's.
    let login = browser.open("/login").await.page();
    browser.sign_in(login, JOSEPH.username).await.page();
    app.refresh(&server, renewed.refresh(), None)
        .await
        .assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn an_offline_refresh_token_outlives_the_sign_in() {
    let server = TestServer::start().await;
    let both = format!("{ONLINE} offline_access");
    for scope in [SEED_SCOPE, both.as_str()] {
        let app = server
            .register_app("Offline App", "client_secret_basic", scope)
            .await;
        let browser = Browser::new(&server);
        let tokens = approve_in(&browser, &server, &app).await;
        sign_out(&browser).await;
        let renewed = app.refresh(&server, tokens.refresh(), None).await;
        assert_eq!(renewed.status.as_u16(), 200, "{scope}: {}", renewed.text);
    }
}

#[tokio::test]
async fn debug_tokens_are_not_bound_to_a_sign_in() {
    let server = TestServer::start().await;
    let app = server
        .register_app("Online App", "client_secret_basic", ONLINE)
        .await;
    let tokens = server
        .debug_token(serde_json::json!({
            "client_id": app.client_id,
            "username": JOSEPH.username,
            "patient_id": JOSEPH.patient,
        }))
        .await;
    let reply = app.refresh(&server, tokens.refresh(), None).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
}

#[tokio::test]
async fn an_online_refresh_token_stops_working_when_the_sign_in_expires() {
    let server = TestServer::start_with(Config {
        session_lifetime: 5,
        ..Config::default()
    })
    .await;
    let app = server
        .register_app("Online App", "client_secret_basic", ONLINE)
        .await;
    let browser = Browser::new(&server);
    let tokens = approve_in(&browser, &server, &app).await;
    // The sign-in lasts five seconds; wait until the portal has forgotten it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !browser.open("/logout").await.page().has_form("/login") {
        assert!(Instant::now() < deadline, "the sign-in never expired");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    app.refresh(&server, tokens.refresh(), None)
        .await
        .assert_error(400, "invalid_grant");
}
