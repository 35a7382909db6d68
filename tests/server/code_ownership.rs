//! An authorization code belongs to the client it was issued to: another client, or a
//! request with the wrong redirect_uri or PKCE verifier, is refused without spending it,
//! and only its own client's replay revokes what it issued (RFC 6749 §4.1.2, §10.5).

use crate::portal::*;

/// A code for `app` (with a PKCE challenge when given), through the whole participant walk.
async fn code_for(server: &TestServer, app: &App, pkce: Option<&Pkce>) -> String {
    let mut request = Authorize::new(server, app);
    if let Some(pkce) = pkce {
        request = request.pkce(pkce);
    }
    authorize(server, &request, JOSEPH).await.code()
}

const PATIENT: &str = "Patient/smart-1081332";

#[tokio::test]
async fn a_stolen_code_is_refused_to_another_client_and_still_works_for_its_owner() {
    let server = TestServer::start().await;
    let alice = server.register_seed_app().await;
    let mallory = server.register_seed_app().await;
    let code = code_for(&server, &alice, None).await;

    let stolen = mallory.exchange(&server, &code, None).await;
    stolen.assert_error(400, "invalid_grant");
    assert!(
        stolen.str("error_description").contains("another client"),
        "{}",
        stolen.text
    );
    // Again: still "another client", not "already used" (the try spent nothing).
    let again = mallory.exchange(&server, &code, None).await;
    assert!(
        again.str("error_description").contains("another client"),
        "{}",
        again.text
    );

    let tokens = alice.exchange(&server, &code, None).await.tokens();
    assert_eq!(server.fhir_status(&tokens.access, PATIENT).await, 200);
}

#[tokio::test]
async fn a_wrong_verifier_or_redirect_uri_leaves_the_code_usable() {
    let server = TestServer::start().await;
    let app = server.register_app("Public App", "none", SEED_SCOPE).await;
    let pkce = Pkce::fresh();
    let code = code_for(&server, &app, Some(&pkce)).await;

    let wrong = Pkce::fresh();
    app.exchange(&server, &code, Some(&wrong.verifier))
        .await
        .assert_error(400, "invalid_grant");
    app.exchange(&server, &code, None)
        .await
        .assert_error(400, "invalid_grant");
    let elsewhere = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://public-app.example/other"),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    server
        .token(&app.auth(), &elsewhere)
        .await
        .assert_error(400, "invalid_grant");

    let reply = app.exchange(&server, &code, Some(&pkce.verifier)).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    let tokens = reply.tokens();
    assert_eq!(server.fhir_status(&tokens.access, PATIENT).await, 200);
}

#[tokio::test]
async fn a_replay_by_another_client_or_with_a_wrong_verifier_revokes_nothing() {
    let server = TestServer::start().await;
    let alice = server.register_seed_app().await;
    let mallory = server.register_seed_app().await;
    let pkce = Pkce::fresh();
    let code = code_for(&server, &alice, Some(&pkce)).await;
    let tokens = alice
        .exchange(&server, &code, Some(&pkce.verifier))
        .await
        .tokens();

    mallory
        .exchange(&server, &code, Some(&pkce.verifier))
        .await
        .assert_error(400, "invalid_grant");
    let guessed = Pkce::fresh();
    alice
        .exchange(&server, &code, Some(&guessed.verifier))
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(server.fhir_status(&tokens.access, PATIENT).await, 200);
    let renewed = alice
        .refresh(&server, tokens.refresh(), None)
        .await
        .tokens();
    assert_eq!(server.fhir_status(&renewed.access, PATIENT).await, 200);
}

#[tokio::test]
async fn a_replay_by_its_own_client_revokes_what_it_issued() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let code = code_for(&server, &app, None).await;
    let tokens = app.exchange(&server, &code, None).await.tokens();
    let renewed = app.refresh(&server, tokens.refresh(), None).await.tokens();

    let replay = app.exchange(&server, &code, None).await;
    replay.assert_error(400, "invalid_grant");
    assert!(replay.str("error_description").contains("revoked"));
    assert_eq!(server.fhir_status(&renewed.access, PATIENT).await, 401);
    app.refresh(&server, renewed.refresh(), None)
        .await
        .assert_error(400, "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_parallel_exchanges_of_one_code_exactly_one_gets_tokens() {
    let server = std::sync::Arc::new(TestServer::start().await);
    let app = server.register_seed_app().await;
    for round in 0..3 {
        let code = code_for(&server, &app, None).await;
        let racers: Vec<_> = (0..12)
            .map(|_| {
                let (server, app, code) = (server.clone(), app.clone(), code.clone());
                tokio::spawn(async move { app.exchange(&server, &code, None).await })
            })
            .collect();
        let mut won = Vec::new();
        for racer in racers {
            let reply = racer.await.unwrap();
            match reply.status.as_u16() {
                200 => won.push(reply.tokens()),
                _ => reply.assert_error(400, "invalid_grant"),
            }
        }
        assert_eq!(
            won.len(),
            1,
            "round {round}: {} exchanges got tokens",
            won.len()
        );
        // The others were replays by the code's own client: what the winner got is revoked.
        assert_eq!(server.fhir_status(&won[0].access, PATIENT).await, 401);
    }
}
