//! The endpoints a browser app calls with fetch answer cross-origin requests: a public
//! client's code exchange and refresh (SMART App Launch asks it of the token endpoint),
//! introspection and revocation; registration, the pages and the debug endpoints do not
//! (a JSON registration from another site's page needs a preflight it is not granted).

use crate::common::*;

#[tokio::test]
async fn token_introspection_and_revocation_allow_any_origin() {
    let server = start().await;
    for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        let preflight = server
            .http
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("Origin", "https://app.example")
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type",
            )
            .send()
            .await
            .unwrap();
        assert!(
            preflight.status().is_success(),
            "{path}: {}",
            preflight.status()
        );
        let headers = preflight.headers();
        assert_eq!(headers["access-control-allow-origin"], "*", "{path}");
        let methods = headers["access-control-allow-methods"].to_str().unwrap();
        assert!(methods.contains("POST"), "{path}: {methods}");
        let allowed = headers["access-control-allow-headers"].to_str().unwrap();
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{allowed}"
        );
        assert!(headers.get("access-control-allow-credentials").is_none());

        let answer = server
            .http
            .post(server.url(path))
            .header("Origin", "https://app.example")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("grant_type=authorization_code")
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.headers()["access-control-allow-origin"],
            "*",
            "{path}: errors carry it too ({})",
            answer.status()
        );
    }
}

#[tokio::test]
async fn registration_the_pages_and_debug_endpoints_stay_same_origin() {
    let server = start().await;
    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, server.url("/oauth/register"))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    for path in ["/oauth/authorize", "/oauth/debug/token", "/login"] {
        let answer = server
            .http
            .get(server.url(path))
            .header("Origin", "https://app.example")
            .send()
            .await
            .unwrap();
        assert!(
            answer
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{path}"
        );
    }
}
