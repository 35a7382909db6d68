//! What a second adversarial look found after the first fixes: a repeated Origin, dot
//! segments that uncover an encoded `//` in `next`, redirect URIs written otherwise than a
//! browser reads them, and app names that can read backwards.

use super::*;

#[tokio::test]
async fn a_second_origin_cannot_hide_behind_a_first() {
    let server = start().await;
    let client_id = register_locally(server.addr).await;
    let local = format!("localhost:{}", server.addr.port());
    let own_origin = format!("http://{local}");
    let reply = debug_token_as(
        server.addr,
        &local,
        &[
            ("Origin", &own_origin),
            ("Origin", "https://attacker.example"),
        ],
        &client_id,
    )
    .await;
    assert_debug_refused(&reply, "cross-site", "second Origin");
    let reply = debug_token_as(
        server.addr,
        &local,
        &[
            ("Sec-Fetch-Site", "same-origin"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        &client_id,
    )
    .await;
    assert_debug_refused(&reply, "cross-site", "second Sec-Fetch-Site");
}

#[tokio::test]
async fn dot_segments_cannot_uncover_an_encoded_double_slash_in_next() {
    let server = start().await;
    let local = format!("localhost:{}", server.addr.port());
    for next in [
        "/%2E%2E/%2F/evil.example",
        "/%2e/%2fevil.example",
        "/./%2F/evil",
    ] {
        let target = format!("/login?next={}", next.replace('%', "%25"));
        let reply = raw_to(server.addr, "GET", &target, &[("Host", &local)], b"").await;
        assert_eq!(reply.status, 200, "{next}: {}", reply.text());
        let page = reply.text();
        assert!(
            !page.to_ascii_lowercase().contains("%2f/evil") && !page.contains("%2fevil"),
            "{next}: the hidden next keeps an encoded slash: {page}"
        );
    }
}

#[tokio::test]
async fn redirect_uris_must_be_written_as_a_browser_reads_them() {
    let server = start().await;
    for (uri, hint) in [
        ("http:///cb", "http://cb/"),
        ("http://%65vil.example/cb", "http://evil.example/cb"),
        ("http://app.example/cb/../x", "http://app.example/x"),
        ("http:app.example/cb", "http://app.example/cb"),
        ("http:/app.example/cb", "http://app.example/cb"),
        ("HTTP://app.example/cb", "http://app.example/cb"),
        ("http://app.example:80/cb", "http://app.example/cb"),
    ] {
        let body = json!({"client_name": "x", "redirect_uris": [uri]});
        let reply = post_json_as(
            server.addr,
            "/oauth/register",
            &local_host(&server),
            &[],
            &body,
        )
        .await;
        assert_eq!(reply.status, 400, "{uri}: {}", reply.text());
        let json = reply.json().expect("a JSON error");
        assert_eq!(json["error"], "invalid_redirect_uri", "{uri}");
        let description = json["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(hint), "{uri}: {description}");
    }
    // The seed's URI, to which the parser only adds the root path, still registers as sent.
    let body = json!({"client_name": "x", "redirect_uris": ["http://not-a-real-site"]});
    let reply = post_json_as(
        server.addr,
        "/oauth/register",
        &local_host(&server),
        &[],
        &body,
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(
        reply.json().expect("JSON")["redirect_uris"][0],
        "http://not-a-real-site"
    );
}

#[tokio::test]
async fn an_app_name_holds_no_control_or_bidirectional_characters() {
    let server = start().await;
    for name in [
        "Good\u{202e}ppA liveE",
        "Tab\there",
        "Esc\u{1b}[31m",
        "Iso\u{2066}late",
    ] {
        let body = json!({"client_name": name, "redirect_uris": [SEED_REDIRECT]});
        let reply = post_json_as(
            server.addr,
            "/oauth/register",
            &local_host(&server),
            &[],
            &body,
        )
        .await;
        assert_eq!(reply.status, 400, "{name:?}: {}", reply.text());
        let json = reply.json().expect("a JSON error");
        assert_eq!(json["error"], "invalid_client_metadata", "{name:?}");
        assert!(
            json["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("client_name") && d.contains("U+")),
            "{name:?}: {json}"
        );
    }
}

fn local_host(server: &TestServer) -> String {
    format!("localhost:{}", server.addr.port())
}
