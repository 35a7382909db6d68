//! The Host check on every route: the names a server answers to, 421 for the others (DNS
//! rebinding), 400 for a missing, repeated or malformed Host, and `--allow-any-host`.

use super::*;
use crate::common::raw;
use crate::common::*;
use smartnb::server::Config;

#[tokio::test]
async fn dns_rebinding_gets_421_on_every_route() {
    let server = start().await;
    let client_id = register_locally(server.addr).await;
    let port = server.addr.port();
    let with_port = format!("{REBIND}:{port}");
    let body = debug_body(&client_id).to_string();
    let routes: Vec<Route> = vec![
        (
            "POST",
            "/oauth/debug/token".into(),
            vec![("Content-Type", "text/plain")],
            body.clone().into_bytes(),
        ),
        (
            "POST",
            "/oauth/debug/token".into(),
            vec![("Content-Type", "application/json")],
            body.into_bytes(),
        ),
        (
            "GET",
            "/oauth/debug/introspect?token=x".into(),
            vec![],
            vec![],
        ),
        (
            "OPTIONS",
            "/oauth/debug/token".into(),
            vec![
                ("Origin", "http://rebind.attacker.example"),
                ("Access-Control-Request-Method", "POST"),
            ],
            vec![],
        ),
        (
            "POST",
            "/oauth/register".into(),
            vec![("Content-Type", "application/json")],
            seed_registration().to_string().into_bytes(),
        ),
        (
            "POST",
            "/oauth/token".into(),
            vec![("Content-Type", "application/x-www-form-urlencoded")],
            b"grant_type=refresh_token&refresh_token=x".to_vec(),
        ),
        (
            "GET",
            "/oauth/authorize?response_type=code".into(),
            vec![],
            vec![],
        ),
        (
            "GET",
            "/api/fhir/Patient/smart-1288992".into(),
            vec![],
            vec![],
        ),
        ("GET", "/api/fhir/metadata".into(), vec![], vec![]),
        (
            "GET",
            "/api/open-fhir/Patient/smart-1288992".into(),
            vec![],
            vec![],
        ),
        (
            "GET",
            "/.well-known/smart-configuration".into(),
            vec![],
            vec![],
        ),
        ("GET", "/login".into(), vec![], vec![]),
        ("GET", "/apps".into(), vec![], vec![]),
        ("GET", "/nowhere".into(), vec![], vec![]),
    ];
    for host in [
        with_port.as_str(),
        REBIND,
        "REBIND.attacker.example.",
        "localhost.attacker.example",
    ] {
        for (method, path, headers, body) in &routes {
            let mut all = vec![("Host", host)];
            all.extend(headers.iter().copied());
            let reply = raw_to(server.addr, method, path, &all, body).await;
            let label = format!("{method} {path} as {host}");
            assert_misdirected(
                &reply,
                &host
                    .to_ascii_lowercase()
                    .trim_end_matches('.')
                    .replace(&format!(":{port}"), ""),
                &label,
            );
            assert!(
                reply.header("access-control-allow-origin").is_none(),
                "{label}"
            );
        }
    }
    // Nothing was registered or minted on the way: the same server still answers locally.
    let reply = server.get(&server.fhir("/metadata")).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn the_hosts_a_default_server_answers_to() {
    let server = start().await;
    let port = server.addr.port();
    for host in [
        format!("localhost:{port}"),
        format!("LocalHost.:{port}"),
        format!("127.0.0.1:{port}"),
        format!("127.3.4.5:{port}"),
        format!("[::1]:{port}"),
        "localhost".to_string(),
    ] {
        let reply = raw_to(
            server.addr,
            "GET",
            "/api/fhir/metadata",
            &[("Host", &host)],
            b"",
        )
        .await;
        assert_eq!(reply.status, 200, "{host}: {}", reply.text());
    }
}

#[tokio::test]
async fn a_missing_repeated_or_malformed_host_is_400() {
    let server = start().await;
    let port = server.addr.port();
    let no_host = b"GET /api/fhir/metadata HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec();
    let reply = raw::send_exact(server.addr, no_host).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("no Host header"), "{}", reply.text());
    let two = format!(
        "GET /api/fhir/metadata HTTP/1.1\r\nHost: localhost:{port}\r\nHost: {REBIND}\r\nConnection: close\r\n\r\n"
    );
    let reply = raw::send_exact(server.addr, two.into_bytes()).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    for host in ["user@localhost", "localhost:x", "localhost:99999", "[::1"] {
        let reply = raw_to(
            server.addr,
            "GET",
            "/api/fhir/metadata",
            &[("Host", host)],
            b"",
        )
        .await;
        assert_eq!(reply.status, 400, "{host}: {}", reply.text());
        assert_eq!(reply.json().expect("JSON")["error"], "invalid_request");
    }
    // An absolute request target must agree with the Host header.
    let absolute = format!(
        "GET http://localhost:{port}/api/fhir/metadata HTTP/1.1\r\nHost: {REBIND}\r\nConnection: close\r\n\r\n"
    );
    let reply = raw::send_exact(server.addr, absolute.into_bytes()).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    let target = format!(
        "GET http://{REBIND}:{port}/api/fhir/metadata HTTP/1.1\r\nHost: {REBIND}:{port}\r\nConnection: close\r\n\r\n"
    );
    let reply = raw::send_exact(server.addr, target.into_bytes()).await;
    assert_eq!(reply.status, 421, "{}", reply.text());
}

#[tokio::test]
async fn allow_any_host_answers_any_host_but_the_debug_endpoints_stay_loopback() {
    let server = start_with(Config {
        port: 0,
        allow_any_host: true,
        ..Config::default()
    })
    .await;
    let client_id = register_locally(server.addr).await;
    let reply = raw_to(
        server.addr,
        "GET",
        "/api/fhir/metadata",
        &[("Host", REBIND)],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = post_json_as(
        server.addr,
        "/oauth/register",
        REBIND,
        &[],
        &seed_registration(),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let host = format!("{REBIND}:{}", server.addr.port());
    let reply = debug_token_as(server.addr, &host, &[], &client_id).await;
    assert_debug_refused(&reply, "loopback name with port", "any host");
}
