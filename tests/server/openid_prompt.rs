//! OpenID Connect's sign-in demands: `prompt=none` answers without a page (login_required,
//! consent_required), `prompt=login` and an exceeded `max_age` show the sign-in page even to
//! a signed-in participant and the id_token's auth_time is the new sign-in, and malformed
//! values are refused with the rule named.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::portal::*;

const IDENTITY: &str = "openid fhirUser launch/patient patient/*.read";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The id_token's claims, unverified (openid_connect.rs verifies signatures).
fn claims(reply: &Reply) -> serde_json::Value {
    use base64::Engine;
    let payload = reply.str("id_token").split('.').nth(1).unwrap().to_string();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A browser signed in as Joseph, having approved once.
async fn signed_in(server: &TestServer, app: &App) -> (Browser, i64) {
    let browser = Browser::new(server);
    let consent = browser
        .consent_page(server, &Authorize::new(server, app), JOSEPH)
        .await;
    let code = browser.approve(&consent).await.code();
    let first = app.exchange(server, &code, None).await;
    (browser, claims(&first)["auth_time"].as_i64().unwrap())
}

#[tokio::test]
async fn prompt_none_never_shows_a_page() {
    let server = TestServer::start().await;
    let app = server
        .register_app("Silent", "client_secret_basic", IDENTITY)
        .await;
    let silent = Authorize::new(&server, &app).set("prompt", "none");
    let stranger = Browser::new(&server)
        .open(&silent.url(&server))
        .await
        .callback();
    assert_eq!(stranger.param("error").as_deref(), Some("login_required"));
    assert_eq!(stranger.param("state").as_deref(), Some(SEED_STATE));
    let (browser, _) = signed_in(&server, &app).await;
    let known = browser.open(&silent.url(&server)).await.callback();
    assert_eq!(known.param("error").as_deref(), Some("consent_required"));
    assert!(known.param("code").is_none());
}

#[tokio::test]
async fn prompt_login_asks_a_signed_in_participant_to_sign_in_again() {
    let server = TestServer::start().await;
    let app = server
        .register_app("Fresh", "client_secret_basic", IDENTITY)
        .await;
    let (browser, first_auth) = signed_in(&server, &app).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let asked = now();
    let again = Authorize::new(&server, &app).set("prompt", "login");
    let page = browser.open(&again.url(&server)).await.page();
    assert!(page.has_form("/login"), "{}", page.text());
    assert!(page.text().contains("sign in again"), "{}", page.text());
    let consent = browser.sign_in(page, JOSEPH.username).await.page();
    assert!(consent.has_form("/oauth/consent"), "{}", consent.text());
    let code = browser.approve(&consent).await.code();
    let reply = app.exchange(&server, &code, None).await;
    let auth_time = claims(&reply)["auth_time"].as_i64().unwrap();
    assert!(
        auth_time >= asked && auth_time > first_auth,
        "{auth_time} vs {asked}"
    );
}

#[tokio::test]
async fn an_exceeded_max_age_means_a_new_sign_in() {
    let server = TestServer::start().await;
    let app = server
        .register_app("Aged", "client_secret_basic", IDENTITY)
        .await;
    let (browser, first_auth) = signed_in(&server, &app).await;
    // Recent enough: straight to consent, and auth_time is the earlier sign-in.
    let lenient = Authorize::new(&server, &app).set("max_age", "3600");
    let consent = browser.open(&lenient.url(&server)).await.page();
    let code = browser.approve(&consent).await.code();
    let reply = app.exchange(&server, &code, None).await;
    assert_eq!(claims(&reply)["auth_time"].as_i64(), Some(first_auth));
    // Too old for max_age=1 two seconds later: the sign-in page again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let strict = Authorize::new(&server, &app).set("max_age", "1");
    let page = browser.open(&strict.url(&server)).await.page();
    assert!(page.has_form("/login"), "{}", page.text());
    let consent = browser.sign_in(page, JOSEPH.username).await.page();
    let code = browser.approve(&consent).await.code();
    let reply = app.exchange(&server, &code, None).await;
    assert!(claims(&reply)["auth_time"].as_i64().unwrap() > first_auth);
}

#[tokio::test]
async fn malformed_prompt_and_max_age_are_refused_by_name() {
    let server = TestServer::start().await;
    let app = server
        .register_app("Odd", "client_secret_basic", IDENTITY)
        .await;
    for (name, value, named) in [
        ("prompt", "sometimes", "sometimes"),
        ("prompt", "none login", "prompt=none"),
        ("max_age", "-5", "max_age"),
    ] {
        let request = Authorize::new(&server, &app).set(name, value);
        let answer = Browser::new(&server)
            .open(&request.url(&server))
            .await
            .callback();
        assert_eq!(answer.param("error").as_deref(), Some("invalid_request"));
        let said = answer.param("error_description").unwrap_or_default();
        assert!(said.contains(named), "{value}: {said}");
        assert_eq!(answer.param("state").as_deref(), Some(SEED_STATE));
    }
}
