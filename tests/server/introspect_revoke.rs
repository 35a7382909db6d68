//! RFC 7662 introspection and RFC 7009 revocation, as a client uses them on the tokens it
//! got through the authorization-code flow. A client learns about and revokes only its own
//! tokens; anything else is `{"active": false}` or a 200 that changes nothing.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::portal::*;
use serde_json::json;
use smartnb::server::Config;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The answer for a token that is not the caller's, or not live: exactly this.
fn inactive() -> serde_json::Value {
    json!({"active": false})
}

/// Two apps, and tokens for the first through the whole flow.
async fn two_apps(server: &TestServer) -> (App, App, Tokens) {
    let mine = server.register_seed_app().await;
    let theirs = server.register_seed_app().await;
    let tokens = tokens_for(server, &mine, DANIEL).await;
    (mine, theirs, tokens)
}

#[tokio::test]
async fn a_client_introspects_its_own_access_token() {
    let server = TestServer::start().await;
    let (app, _, tokens) = two_apps(&server).await;
    let reply = server.introspect(&app.auth(), &tokens.access).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    reply.assert_not_cached();
    let about = &reply.json;
    assert_eq!(about["active"], true);
    assert_eq!(about["scope"], SEED_SCOPE);
    assert_eq!(about["client_id"], app.client_id.as_str());
    assert_eq!(about["username"], DANIEL.username);
    assert_eq!(about["sub"], DANIEL.username);
    assert_eq!(about["patient"], DANIEL.patient);
    assert_eq!(about["token_type"], "Bearer");
    let (exp, iat) = (
        about["exp"].as_i64().unwrap(),
        about["iat"].as_i64().unwrap(),
    );
    assert!((iat - now()).abs() < 60, "iat {iat}");
    assert_eq!(exp - iat, 3600);
}

#[tokio::test]
async fn client_secret_post_and_a_bearer_token_may_introspect_too() {
    let server = TestServer::start().await;
    let app = server
        .register_app("Post App", "client_secret_post", SEED_SCOPE)
        .await;
    let tokens = tokens_for(&server, &app, JOSEPH).await;
    let reply = server.introspect(&app.auth(), &tokens.access).await;
    assert_eq!(reply.json["active"], true, "{}", reply.text);
    assert_eq!(reply.json["patient"], JOSEPH.patient);

    let bearer = Auth::Bearer(tokens.access.clone());
    let reply = server.introspect(&bearer, tokens.refresh()).await;
    assert_eq!(reply.json["active"], true, "{}", reply.text);
    assert_eq!(reply.json["client_id"], app.client_id.as_str());

    let stranger = Auth::Bearer("no-such-token".into());
    let reply = server.introspect(&stranger, &tokens.access).await;
    assert_eq!(reply.status.as_u16(), 401, "{}", reply.text);
    assert!(reply.header("www-authenticate").starts_with("Bearer"));
}

#[tokio::test]
async fn a_refresh_token_is_active_until_the_approval_ends() {
    let server = TestServer::start().await;
    let (app, _, tokens) = two_apps(&server).await;
    let reply = server.introspect(&app.auth(), tokens.refresh()).await;
    let about = &reply.json;
    assert_eq!(about["active"], true, "{}", reply.text);
    assert_eq!(about["client_id"], app.client_id.as_str());
    assert_eq!(about["patient"], DANIEL.patient);
    let one_year = 365 * 24 * 3600;
    assert!((about["exp"].as_i64().unwrap() - (now() + one_year)).abs() < 120);
}

#[tokio::test]
async fn another_clients_or_an_unknown_token_is_just_inactive() {
    let server = TestServer::start().await;
    let (mine, theirs, tokens) = two_apps(&server).await;
    for token in [tokens.access.as_str(), tokens.refresh()] {
        let reply = server.introspect(&theirs.auth(), token).await;
        assert_eq!(reply.status.as_u16(), 200);
        assert_eq!(reply.json, inactive());
        let bearer = Auth::Bearer(tokens_for(&server, &theirs, JOSEPH).await.access);
        assert_eq!(server.introspect(&bearer, token).await.json, inactive());
    }
    let reply = server.introspect(&mine.auth(), "no-such-token").await;
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(reply.json, inactive());
}

#[tokio::test]
async fn an_expired_access_token_is_inactive() {
    let server = TestServer::start_with(Config {
        access_lifetime: 0,
        ..Config::default()
    })
    .await;
    let app = server.register_seed_app().await;
    let tokens = tokens_for(&server, &app, JOSEPH).await;
    assert_eq!(
        server.introspect(&app.auth(), &tokens.access).await.json,
        inactive()
    );
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1081332")
            .await,
        401
    );
    let refresh = server.introspect(&app.auth(), tokens.refresh()).await;
    assert_eq!(
        refresh.json["active"], true,
        "the approval itself is still live"
    );
}

#[tokio::test]
async fn introspection_needs_a_client_or_a_bearer_token() {
    let server = TestServer::start().await;
    let (app, _, tokens) = two_apps(&server).await;
    server
        .introspect(&Auth::Nobody, &tokens.access)
        .await
        .assert_error(401, "invalid_client");
    let wrong = Auth::Basic(app.client_id.clone(), "not-the-secret".into());
    let reply = server.introspect(&wrong, &tokens.access).await;
    reply.assert_error(401, "invalid_client");
    assert!(reply.header("www-authenticate").starts_with("Basic"));
}

#[tokio::test]
async fn revoking_an_own_access_token_ends_it() {
    let server = TestServer::start().await;
    let (app, _, tokens) = two_apps(&server).await;
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1288992")
            .await,
        200
    );
    let reply = server.revoke(&app.auth(), &tokens.access).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1288992")
            .await,
        401
    );
    assert_eq!(
        server.introspect(&app.auth(), &tokens.access).await.json,
        inactive()
    );
}

#[tokio::test]
async fn revoking_an_own_refresh_token_ends_it() {
    let server = TestServer::start().await;
    let (app, _, tokens) = two_apps(&server).await;
    let reply = server.revoke(&app.auth(), tokens.refresh()).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    app.refresh(&server, tokens.refresh(), None)
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(
        server.introspect(&app.auth(), tokens.refresh()).await.json,
        inactive()
    );
}

#[tokio::test]
async fn revoking_another_clients_token_answers_200_and_changes_nothing() {
    let server = TestServer::start().await;
    let (app, other, tokens) = two_apps(&server).await;
    for token in [tokens.access.as_str(), tokens.refresh()] {
        let reply = server.revoke(&other.auth(), token).await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    }
    assert_eq!(
        server
            .fhir_status(&tokens.access, "Patient/smart-1288992")
            .await,
        200
    );
    let renewed = app.refresh(&server, tokens.refresh(), None).await;
    assert_eq!(renewed.status.as_u16(), 200, "{}", renewed.text);
}

#[tokio::test]
async fn revoking_an_unknown_token_answers_200_but_needs_a_client() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let reply = server.revoke(&app.auth(), "no-such-token").await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    server
        .revoke(&Auth::Nobody, "no-such-token")
        .await
        .assert_error(401, "invalid_client");
}
