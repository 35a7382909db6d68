//! Two small fixes: Basic credentials decoded per RFC 6749 §2.3.1 (percent-decoding of each
//! whole part, nothing else), and the logout cookie cleared with the attributes it was set
//! with, Secure on https.

use base64::Engine;

use crate::common::raw;
use crate::common::*;
use smartnb::server::Config;

/// POST /oauth/token with a grant that cannot succeed, authenticated by this raw
/// `id:secret` text as HTTP Basic: 401 when the client is refused, 400 invalid_grant when
/// the client got through.
async fn token_with_basic(server: &TestServer, credentials: &str) -> Reply {
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    let request = server
        .http
        .post(server.url("/oauth/token"))
        .header("authorization", format!("Basic {encoded}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=refresh_token&refresh_token=not-a-token");
    read(request.send().await.expect("POST is answered")).await
}

#[tokio::test]
async fn a_secret_with_anything_after_an_ampersand_does_not_authenticate() {
    let server = start().await;
    let client = server.register(SEED_SCOPE).await;
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().unwrap();

    let reply = token_with_basic(&server, &format!("{id}:{secret}&anything")).await;
    assert_oauth_error(&reply, 401, "invalid_client");
    let reply = token_with_basic(&server, &format!("{id}:{secret}%26x")).await;
    assert_oauth_error(&reply, 401, "invalid_client");
    let reply = token_with_basic(&server, &format!("{id}:{secret}=")).await;
    assert_oauth_error(&reply, 401, "invalid_client");

    // As it is, and with every byte percent-encoded, it authenticates.
    let reply = token_with_basic(&server, &format!("{id}:{secret}")).await;
    assert_oauth_error(&reply, 400, "invalid_grant");
    let encode_all = |text: &str| -> String { text.bytes().map(|b| format!("%{b:02X}")).collect() };
    let reply = token_with_basic(
        &server,
        &format!("{}:{}", encode_all(id), encode_all(secret)),
    )
    .await;
    assert_oauth_error(&reply, 400, "invalid_grant");

    // Bytes that are not UTF-8 once percent-decoded are named as such.
    let reply = token_with_basic(&server, &format!("{id}:%FF%FE")).await;
    assert_oauth_error(&reply, 401, "invalid_client");
    assert!(
        reply.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("not UTF-8"),
        "{}",
        reply.text
    );
}

/// The Set-Cookie of `POST /logout` without a session, on a server with this public URL.
async fn logout_cookie(public_url: Option<&str>) -> String {
    let server = start_with(Config {
        port: 0,
        public_url: public_url.map(str::to_string),
        ..Config::default()
    })
    .await;
    let host = match public_url {
        Some(url) => url::Url::parse(url)
            .unwrap()
            .host_str()
            .unwrap()
            .to_string(),
        None => format!("localhost:{}", server.addr.port()),
    };
    let reply = raw::send(
        server.addr,
        raw::request("POST", "/logout", &[("Host", &host)], b""),
    )
    .await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    reply
        .header("set-cookie")
        .expect("a Set-Cookie")
        .to_string()
}

#[tokio::test]
async fn the_logout_cookie_is_cleared_with_secure_on_https() {
    let https = logout_cookie(Some("https://smart.example.org")).await;
    for attribute in [
        "smartnb_session=",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=0",
        "Secure",
    ] {
        assert!(https.contains(attribute), "{https:?} lacks {attribute}");
    }
    let http = logout_cookie(None).await;
    assert!(
        http.contains("Max-Age=0") && http.contains("HttpOnly"),
        "{http:?}"
    );
    assert!(!http.contains("Secure"), "{http:?}");
}
