//! POST /oauth/token when something is wrong (RFC 6749 §5.2, RFC 7636): who may redeem a
//! code or a refresh token, and what they get when they may not. Every error is JSON with
//! error and error_description, is not cached, and is never a 500 (`Reply` checks that).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::portal::*;
use serde_json::json;
use smartnb::server::Config;

/// A fresh code for the app, through the whole participant walk.
async fn code_for(server: &TestServer, request: &Authorize) -> String {
    authorize(server, request, JOSEPH).await.code()
}

fn code_grant<'a>(code: &'a str, redirect_uri: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ]
}

#[tokio::test]
async fn a_wrong_unknown_or_missing_client_is_invalid_client() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let code = code_for(&server, &Authorize::new(&server, &app)).await;
    let grant = code_grant(&code, SEED_REDIRECT);

    let wrong_secret = Auth::Basic(app.client_id.clone(), "not-the-secret".into());
    let reply = server.token(&wrong_secret, &grant).await;
    reply.assert_error(401, "invalid_client");
    assert!(
        reply.header("www-authenticate").starts_with("Basic"),
        "{reply:?}"
    );

    let unknown = Auth::Basic("no-such-client".into(), "x".into());
    let reply = server.token(&unknown, &grant).await;
    reply.assert_error(401, "invalid_client");
    assert!(reply.header("www-authenticate").starts_with("Basic"));

    let wrong_post = Auth::Post(app.client_id.clone(), "not-the-secret".into());
    server
        .token(&wrong_post, &grant)
        .await
        .assert_error(401, "invalid_client");
    server
        .token(&Auth::Nobody, &grant)
        .await
        .assert_error(401, "invalid_client");
    // A confidential client cannot pass itself off as public.
    let bare = Auth::Public(app.client_id.clone());
    server
        .token(&bare, &grant)
        .await
        .assert_error(401, "invalid_client");

    // None of that spent the code.
    assert_eq!(server.token(&app.auth(), &grant).await.status.as_u16(), 200);
}

#[tokio::test]
async fn an_unknown_code_is_invalid_grant() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let reply = app.exchange(&server, "no-such-code", None).await;
    reply.assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_first_issued() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let code = code_for(&server, &Authorize::new(&server, &app)).await;
    let first = app.exchange(&server, &code, None).await.tokens();
    let second = tokens_for(&server, &app, JOSEPH).await;
    // Tokens refreshed from the first exchange descend from the code too.
    let refreshed = app.refresh(&server, first.refresh(), None).await.tokens();
    assert_eq!(
        server
            .fhir_status(&refreshed.access, "Patient/smart-1081332")
            .await,
        200
    );

    app.exchange(&server, &code, None)
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(
        server
            .fhir_status(&refreshed.access, "Patient/smart-1081332")
            .await,
        401
    );
    app.refresh(&server, refreshed.refresh(), None)
        .await
        .assert_error(400, "invalid_grant");
    // Tokens from another code are left alone.
    assert_eq!(
        server
            .fhir_status(&second.access, "Patient/smart-1081332")
            .await,
        200
    );
}

#[tokio::test]
async fn the_redirect_uri_must_repeat_the_authorize_requests() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let request = Authorize::new(&server, &app);

    let code = code_for(&server, &request).await;
    let grant = code_grant(&code, "http://not-a-real-site/other");
    server
        .token(&app.auth(), &grant)
        .await
        .assert_error(400, "invalid_grant");

    let code = code_for(&server, &request).await;
    let missing = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
    ];
    server
        .token(&app.auth(), &missing)
        .await
        .assert_error(400, "invalid_grant");

    // When the authorize request named no redirect_uri, the token request need not either.
    let code = code_for(&server, &request.clone().without("redirect_uri")).await;
    let plain = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
    ];
    assert_eq!(server.token(&app.auth(), &plain).await.status.as_u16(), 200);
}

#[tokio::test]
async fn the_pkce_verifier_must_match_the_challenge() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let pkce = Pkce::fresh();
    let with_challenge = Authorize::new(&server, &app).pkce(&pkce);

    let code = code_for(&server, &with_challenge).await;
    let other = Pkce::fresh();
    let reply = app.exchange(&server, &code, Some(&other.verifier)).await;
    reply.assert_error(400, "invalid_grant");

    let code = code_for(&server, &with_challenge).await;
    app.exchange(&server, &code, None)
        .await
        .assert_error(400, "invalid_grant");

    let code = code_for(&server, &Authorize::new(&server, &app)).await;
    let reply = app.exchange(&server, &code, Some(&pkce.verifier)).await;
    reply.assert_error(400, "invalid_grant");

    let code = code_for(&server, &with_challenge).await;
    let reply = app.exchange(&server, &code, Some(&pkce.verifier)).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
}

#[tokio::test]
async fn a_public_clients_code_needs_its_verifier() {
    let server = TestServer::start().await;
    let app = server.register_app("Public App", "none", SEED_SCOPE).await;
    let pkce = Pkce::fresh();
    let code = code_for(&server, &Authorize::new(&server, &app).pkce(&pkce)).await;
    app.exchange(&server, &code, None)
        .await
        .assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn a_code_issued_to_one_client_cannot_be_redeemed_by_another() {
    let server = TestServer::start().await;
    let alice = server.register_seed_app().await;
    let mallory = server.register_seed_app().await;
    let code = code_for(&server, &Authorize::new(&server, &alice)).await;
    mallory
        .exchange(&server, &code, None)
        .await
        .assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    let server = TestServer::start_with(Config {
        code_lifetime: 0,
        ..Config::default()
    })
    .await;
    let app = server.register_seed_app().await;
    let code = code_for(&server, &Authorize::new(&server, &app)).await;
    app.exchange(&server, &code, None)
        .await
        .assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_stay_with_their_client() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let other = server.register_seed_app().await;
    let tokens = tokens_for(&server, &app, DANIEL).await;

    other
        .refresh(&server, tokens.refresh(), None)
        .await
        .assert_error(400, "invalid_grant");
    // The other client's try did not spend it.
    let renewed = app.refresh(&server, tokens.refresh(), None).await.tokens();
    app.refresh(&server, tokens.refresh(), None)
        .await
        .assert_error(400, "invalid_grant");
    app.refresh(&server, "no-such-refresh-token", None)
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(
        app.refresh(&server, renewed.refresh(), None)
            .await
            .status
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn a_refresh_may_narrow_the_scope_but_not_widen_it() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let tokens = tokens_for(&server, &app, DANIEL).await;

    let wider = format!("{SEED_SCOPE} user/*.read");
    app.refresh(&server, tokens.refresh(), Some(&wider))
        .await
        .assert_error(400, "invalid_scope");

    let narrow = "launch/patient patient/Observation.read";
    let reply = app.refresh(&server, tokens.refresh(), Some(narrow)).await;
    assert_eq!(reply.json["scope"], narrow, "{}", reply.text);
    let narrowed = reply.tokens();
    assert_eq!(
        server
            .fhir_status(&narrowed.access, "Patient/smart-1288992")
            .await,
        403
    );
    let observations = "Observation?patient=smart-1288992";
    assert_eq!(
        server.fhir_status(&narrowed.access, observations).await,
        200
    );
}

#[tokio::test]
async fn a_refresh_after_the_approval_expired_is_invalid_grant() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let tokens = server
        .debug_token(json!({
            "client_id": app.client_id,
            "username": "daniel-adams",
            "patient_id": "smart-1288992",
            "approval_expires": now - 60,
        }))
        .await;
    app.refresh(&server, tokens.refresh(), None)
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1288992")
            .await,
        401
    );
}

#[tokio::test]
async fn a_grant_the_client_did_not_register_is_unauthorized_client() {
    let server = TestServer::start().await;
    let app = server
        .register(json!({
            "client_name": "Codes Only",
            "redirect_uris": [SEED_REDIRECT],
            "scope": SEED_SCOPE,
            "grant_types": ["authorization_code"],
        }))
        .await;
    let tokens = tokens_for(&server, &app, JOSEPH).await;
    assert_eq!(
        tokens.refresh, None,
        "a client without the refresh_token grant gets no refresh token"
    );
    let refresh = tokens.refresh.as_deref().unwrap_or("none was issued");
    app.refresh(&server, refresh, None)
        .await
        .assert_error(400, "unauthorized_client");
}

#[tokio::test]
async fn the_grant_type_must_be_given_and_supported() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    // client_credentials is supported, for backend services only (backend_services.rs).
    let reply = server
        .token(
            &app.auth(),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "system/*.rs"),
            ],
        )
        .await;
    reply.assert_error(400, "unauthorized_client");
    for unsupported in [
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        let params = [("grant_type", unsupported), ("username", "daniel-adams")];
        let reply = server.token(&app.auth(), &params).await;
        reply.assert_error(400, "unsupported_grant_type");
    }
    let reply = server.token(&app.auth(), &[("code", "x")]).await;
    reply.assert_error(400, "invalid_request");
    let reply = server
        .token(&app.auth(), &[("grant_type", "refresh_token")])
        .await;
    reply.assert_error(400, "invalid_request");
}
