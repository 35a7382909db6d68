//! Issue 13 item 3: every authorize parameter the server keeps or echoes has a length limit,
//! refused with `invalid_request` naming the parameter and the limit (on the error
//! redirect once the redirect URI is trusted, on a page before), and the table of pending
//! requests holds a bounded number of bytes however large the requests are.

use crate::portal::*;
use serde_json::json;
use smartnb::server::oauth::limits::{authorize_limit, MAX_URI};
use smartnb::server::oauth::pending::PENDING_BOUNDS;
use smartnb::server::scopes::MAX_SCOPE_BYTES;

async fn registered(server: &TestServer) -> App {
    server
        .register(json!({
            "client_name": "Careful App",
            "redirect_uris": [SEED_REDIRECT],
            "scope": SEED_SCOPE,
        }))
        .await
}

/// POST /oauth/authorize with these parameters, as a browser submitting a form would.
async fn post_authorize(server: &TestServer, request: &Authorize) -> Landing {
    let action = url::Url::parse(&server.url("/oauth/authorize")).unwrap();
    Browser::new(server)
        .submit(&Form::forge(action, &request.params()), "")
        .await
}

fn limit(name: &str) -> usize {
    authorize_limit(name).unwrap_or_else(|| panic!("{name} has no limit"))
}

#[tokio::test]
async fn a_63_kib_state_is_refused_and_nothing_is_kept() {
    let server = TestServer::start().await;
    let app = registered(&server).await;
    let huge = "s".repeat(63 * 1024);
    let request = Authorize::new(&server, &app).set("state", &huge);
    let Landing::Away(callback) = post_authorize(&server, &request).await else {
        panic!("an over-long state should go back to the app");
    };
    assert!(
        callback.target().starts_with(&app.redirect_uri),
        "{}",
        callback.url
    );
    assert_eq!(callback.param("error").as_deref(), Some("invalid_request"));
    let description = callback.param("error_description").unwrap();
    assert!(
        description.contains("state") && description.contains("2048"),
        "{description}"
    );
    // Too long to keep is too long to echo.
    assert_eq!(callback.param("state"), None);
    assert!(callback.url.as_str().len() < 1024, "{}", callback.url);
    assert_eq!(server.running().pending().len().await.unwrap(), 0);

    // At the limit, the request waits for the participant as usual.
    let longest = "s".repeat(limit("state"));
    let request = Authorize::new(&server, &app).set("state", &longest);
    let page = post_authorize(&server, &request).await.page();
    assert!(page.has_form("/login"), "{}", page.text());
    assert_eq!(server.running().pending().len().await.unwrap(), 1);
}

#[tokio::test]
async fn every_kept_or_echoed_parameter_has_a_limit() {
    let server = TestServer::start().await;
    let app = registered(&server).await;
    for name in [
        "aud",
        "response_type",
        "code_challenge",
        "code_challenge_method",
        "nonce",
        "launch",
    ] {
        let value = "v".repeat(limit(name) + 1);
        let request = Authorize::new(&server, &app).set(name, &value);
        let Landing::Away(callback) = post_authorize(&server, &request).await else {
            panic!("{name}: an over-long value should go back to the app");
        };
        assert_eq!(
            callback.param("error").as_deref(),
            Some("invalid_request"),
            "{name}: {}",
            callback.url
        );
        let description = callback.param("error_description").unwrap();
        assert!(
            description.contains(name) && description.contains(&limit(name).to_string()),
            "{name}: {description}"
        );
        assert_eq!(callback.param("state").as_deref(), Some(SEED_STATE));
        assert!(
            callback.url.as_str().len() < 2048,
            "{name}: {}",
            callback.url
        );
    }
    // Before the app is trusted, the answer is a page naming the parameter and its limit.
    for name in ["client_id", "redirect_uri"] {
        let request = Authorize::new(&server, &app).set(name, &"v".repeat(limit(name) + 1));
        let page = post_authorize(&server, &request).await.page();
        assert_eq!(page.status.as_u16(), 400, "{name}");
        assert!(page.headers.get("location").is_none());
        let text = page.text();
        assert!(
            text.contains(name) && text.contains(&limit(name).to_string()),
            "{name}: {text}"
        );
        assert!(
            page.body.len() < 16 * 1024,
            "{name}: the page echoes it whole"
        );
    }
    assert_eq!(server.running().pending().len().await.unwrap(), 0);
}

#[tokio::test]
async fn the_largest_requests_stay_within_the_pending_tables_bound() {
    let server = TestServer::start().await;
    // A redirect URI and a scope as long as registration allows, a state as long as
    // authorize allows: the largest pending request a client can make.
    let redirect = format!("http://localhost:9001/{}", "r".repeat(MAX_URI - 22));
    assert_eq!(redirect.len(), MAX_URI);
    let scope: Vec<String> = (0..100)
        .map(|i| format!("patient/Observation.rs?category=c{i:0>4}"))
        .collect();
    let scope = scope.join(" ");
    assert!(scope.len() <= MAX_SCOPE_BYTES);
    let app = server
        .register(json!({
            "client_name": "Largest",
            "redirect_uris": [redirect],
            "scope": scope,
        }))
        .await;
    let request = Authorize::new(&server, &app).set("state", &"s".repeat(limit("state")));
    let sent = 50;
    for _ in 0..sent {
        let page = post_authorize(&server, &request).await.page();
        assert!(page.has_form("/login"));
    }
    let pending = server.running().pending();
    assert_eq!(pending.len().await.unwrap(), sent);
    let per_request = pending.bytes_held().await.unwrap() / sent;
    assert!(per_request < 9 * 1024, "{per_request} bytes per request");
    // The budget holds thousands of these, and never more than the budget.
    assert!(PENDING_BOUNDS.bytes / per_request > 3_000);
    assert!(pending.bytes_held().await.unwrap() <= PENDING_BOUNDS.bytes);
}
