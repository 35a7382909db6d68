//! /oauth/authorize when something is wrong (RFC 6749 §4.1.2.1): an untrusted client or
//! redirect URI gets an HTML page and never a redirect; every later error goes back to the
//! app's redirect URI with error, error_description and the exact state.

use crate::portal::*;
use serde_json::json;

/// The seed walkthrough's first redirect URI, on a port nothing listens on.
const REDIRECT: &str = "http://localhost:9001/authorized";

async fn registered(server: &TestServer) -> App {
    server
        .register(json!({
            "client_name": "Careful App",
            "redirect_uris": [REDIRECT],
            "scope": SEED_SCOPE,
        }))
        .await
}

/// The page shown instead of a redirect: 400, HTML, no Location.
async fn assert_error_page(server: &TestServer, request: &Authorize) -> Page {
    let page = Browser::new(server).open(&request.url(server)).await.page();
    assert_eq!(page.status.as_u16(), 400, "{}", page.text());
    assert!(
        page.content_type().starts_with("text/html"),
        "{}",
        page.content_type()
    );
    assert!(page.headers.get("location").is_none());
    assert!(!page.has_form("/login") && !page.has_form("/oauth/consent"));
    page
}

/// The error redirect to the app: its error code, with description and exact state.
async fn assert_redirected_error(server: &TestServer, request: &Authorize, error: &str) {
    let callback = Browser::new(server)
        .open(&request.url(server))
        .await
        .callback();
    assert_eq!(callback.target(), REDIRECT, "{}", callback.url);
    assert_eq!(
        callback.param("error").as_deref(),
        Some(error),
        "{}",
        callback.url
    );
    assert!(callback
        .param("error_description")
        .is_some_and(|d| !d.is_empty()));
    assert_eq!(callback.param("state").as_deref(), Some(SEED_STATE));
    assert_eq!(callback.param("code"), None);
}

#[tokio::test]
async fn an_unknown_client_gets_a_page_not_a_redirect() {
    let server = TestServer::start().await;
    let app = registered(&server).await;
    let request = Authorize::new(&server, &app).set("client_id", "no-such-client");
    let page = assert_error_page(&server, &request).await;
    assert!(page.text().contains("no-such-client"), "{}", page.text());
    assert_error_page(&server, &request.clone().without("client_id")).await;
    // What the link said is shown escaped, never as markup.
    let hostile = request.set("client_id", "<script>alert(1)</script>");
    let page = assert_error_page(&server, &hostile).await;
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(page.text().contains("<script>alert(1)</script>"));
}

#[tokio::test]
async fn with_several_registered_redirect_uris_one_must_be_named() {
    let server = TestServer::start().await;
    let app = server
        .register(json!({
            "client_name": "Two Doors",
            "redirect_uris": [REDIRECT, "http://localhost:9001/other"],
            "scope": SEED_SCOPE,
        }))
        .await;
    let request = Authorize::new(&server, &app);
    assert_error_page(&server, &request.clone().without("redirect_uri")).await;
    let second = request.set("redirect_uri", "http://localhost:9001/other");
    let page = Browser::new(&server)
        .open(&second.url(&server))
        .await
        .page();
    assert!(page.has_form("/login"));
}

#[tokio::test]
async fn a_redirect_uri_not_registered_exactly_gets_a_page_not_a_redirect() {
    let server = TestServer::start().await;
    let app = registered(&server).await;
    for near_miss in [
        "http://localhost:9001/authorize",
        "http://localhost:9001/authorized/more",
        "http://localhost:9001/authorizedx",
        "http://localhost:9001/authorized/",
        "http://localhost:9001/Authorized",
        "HTTP://LOCALHOST:9001/AUTHORIZED",
        "http://localhost:9001/authorized?x=1",
        "http://localhost:9002/authorized",
        "https://localhost:9001/authorized",
        "http://evil.example/authorized",
    ] {
        let request = Authorize::new(&server, &app).set("redirect_uri", near_miss);
        assert_error_page(&server, &request).await;
    }
}

#[tokio::test]
async fn a_wrong_or_missing_response_type_goes_back_with_the_state() {
    let server = TestServer::start().await;
    let app = registered(&server).await;
    let base = Authorize::new(&server, &app);
    for wrong in ["token", "code id_token", "CODE"] {
        let request = base.clone().set("response_type", wrong);
        assert_redirected_error(&server, &request, "unsupported_response_type").await;
    }
    let request = base.without("response_type");
    assert_redirected_error(&server, &request, "invalid_request").await;
}

#[tokio::test]
async fn aud_must_be_this_servers_fhir_base() {
    let server = TestServer::start().await;
    let app = registered(&server).await;
    let base = Authorize::new(&server, &app);
    assert_redirected_error(&server, &base.clone().without("aud"), "invalid_request").await;
    for wrong in [
        "http://evil.example/api/fhir".to_string(),
        server.base_url.clone(),
        format!("{}/api/open-fhir", server.base_url),
    ] {
        let request = base.clone().set("aud", &wrong);
        assert_redirected_error(&server, &request, "invalid_request").await;
    }
}

#[tokio::test]
async fn a_scope_wider_than_registered_is_invalid_scope() {
    let server = TestServer::start().await;
    let app = registered(&server).await;
    for wider in [
        "launch/patient patient/*.read offline_access user/*.read",
        "patient/*.write",
        "patient/*.read openid",
    ] {
        let request = Authorize::new(&server, &app).set("scope", wider);
        assert_redirected_error(&server, &request, "invalid_scope").await;
    }
}

#[tokio::test]
async fn pkce_must_be_s256_and_public_clients_must_use_it() {
    let server = TestServer::start().await;
    let app = registered(&server).await;
    let pkce = Pkce::fresh();
    let plain = Authorize::new(&server, &app)
        .set("code_challenge", &pkce.verifier)
        .set("code_challenge_method", "plain");
    assert_redirected_error(&server, &plain, "invalid_request").await;

    let public = server
        .register(json!({
            "client_name": "Public App",
            "redirect_uris": [REDIRECT],
            "scope": SEED_SCOPE,
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let without_pkce = Authorize::new(&server, &public);
    assert_redirected_error(&server, &without_pkce, "invalid_request").await;
    // The same request with PKCE reaches the sign-in page.
    let with_pkce = without_pkce.pkce(&pkce);
    let page = Browser::new(&server)
        .open(&with_pkce.url(&server))
        .await
        .page();
    assert!(page.has_form("/login"));
}

#[tokio::test]
async fn a_missing_state_is_invalid_request() {
    let server = TestServer::start().await;
    let app = registered(&server).await;
    let request = Authorize::new(&server, &app).without("state");
    let callback = Browser::new(&server)
        .open(&request.url(&server))
        .await
        .callback();
    assert_eq!(callback.param("error").as_deref(), Some("invalid_request"));
    assert_eq!(callback.param("state"), None);
    assert_eq!(callback.param("code"), None);
}

#[tokio::test]
async fn duplicated_parameters_are_refused() {
    let server = TestServer::start().await;
    let app = registered(&server).await;
    let base = Authorize::new(&server, &app);
    // A repeated client_id or redirect_uri cannot be trusted: a page, never a redirect.
    let client_twice = base.clone().repeat("client_id", &app.client_id);
    assert_error_page(&server, &client_twice).await;
    let redirect_twice = base.clone().repeat("redirect_uri", "http://evil.example/");
    assert_error_page(&server, &redirect_twice).await;
    // Any other repeated parameter is an error too; the participant never signs in.
    for (name, value) in [
        ("state", "other"),
        ("scope", "patient/*.read"),
        ("aud", "x"),
    ] {
        let request = base.clone().repeat(name, value);
        match Browser::new(&server).open(&request.url(&server)).await {
            Landing::Page(page) => {
                assert_eq!(page.status.as_u16(), 400, "{name}: {}", page.text());
                assert!(!page.has_form("/login"));
            }
            Landing::Away(callback) => {
                assert_eq!(callback.param("error").as_deref(), Some("invalid_request"));
                assert_eq!(callback.param("code"), None);
            }
        }
    }
}

#[tokio::test]
async fn deny_goes_back_with_access_denied_and_the_exact_state() {
    let server = TestServer::start().await;
    let app = registered(&server).await;
    let browser = Browser::new(&server);
    let request = Authorize::new(&server, &app);
    let consent = browser.consent_page(&server, &request, JOSEPH).await;
    let callback = browser
        .submit(&consent.form("/oauth/consent"), "Deny")
        .await
        .callback();
    assert_eq!(callback.target(), REDIRECT);
    assert_eq!(callback.param("error").as_deref(), Some("access_denied"));
    assert_eq!(callback.param("state").as_deref(), Some(SEED_STATE));
    assert_eq!(callback.param("code"), None);
    // The request is answered: the consent page cannot be used again.
    let again = browser
        .submit(&consent.form("/oauth/consent"), "Approve")
        .await;
    assert_eq!(again.page().status.as_u16(), 400);
}

#[tokio::test]
async fn the_patient_picker_can_deny_too() {
    let server = TestServer::start().await;
    let app = registered(&server).await;
    let browser = Browser::new(&server);
    let request = Authorize::new(&server, &app);
    let login = browser.open(&request.url(&server)).await.page();
    let picker = browser.sign_in(login, DANIEL.username).await.page();
    assert!(
        picker.has_form("/oauth/consent/patient"),
        "{}",
        picker.text()
    );
    let callback = browser
        .submit(&picker.form("/oauth/consent"), "Deny")
        .await
        .callback();
    assert_eq!(callback.param("error").as_deref(), Some("access_denied"));
    assert_eq!(callback.param("state").as_deref(), Some(SEED_STATE));
    assert_eq!(callback.param("code"), None);
}

#[tokio::test]
async fn a_state_with_special_characters_comes_back_byte_exact() {
    let server = TestServer::start().await;
    let app = registered(&server).await;
    let state = "a b&c=d+e%20f/g?h#i;j'k\"l<m>n \u{e9}\u{2713}\u{1f600} end ";
    let request = Authorize::new(&server, &app).set("state", state);

    let callback = authorize(&server, &request, JOSEPH).await;
    assert_eq!(callback.param("state").as_deref(), Some(state));
    assert!(callback.param("code").is_some());

    let browser = Browser::new(&server);
    let consent = browser.consent_page(&server, &request, JOSEPH).await;
    let denied = browser
        .submit(&consent.form("/oauth/consent"), "Deny")
        .await
        .callback();
    assert_eq!(denied.param("state").as_deref(), Some(state));

    let wrong = request.set("response_type", "token");
    let callback = Browser::new(&server)
        .open(&wrong.url(&server))
        .await
        .callback();
    assert_eq!(callback.param("state").as_deref(), Some(state));
}
