//! The debug endpoints over HTTP: a loopback peer naming a loopback Host with the port, no
//! proxy header, no browser's cross-site request, and `--debug-endpoints` when the server
//! faces outside.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use super::*;
use smartnb::server::Config;

#[tokio::test]
async fn behind_a_public_url_the_public_host_gets_no_debug_token() {
    // `smartnb serve --public-url https://smart.example.org`, bound to 127.0.0.1 as behind
    // nginx: the request, with the proxy's Host.
    let server = start_with(Config {
        port: 0,
        public_url: Some("https://smart.example.org".into()),
        ..Config::default()
    })
    .await;
    let client_id = register_locally(server.addr).await;
    let reply = debug_token_as(server.addr, "smart.example.org", &[], &client_id).await;
    assert_debug_refused(&reply, "loopback name with port", "public Host");
    // Through the proxy, with its headers and the public Host.
    let reply = debug_token_as(
        server.addr,
        "smart.example.org",
        &[
            ("X-Forwarded-For", "203.0.113.9"),
            ("X-Forwarded-Proto", "https"),
        ],
        &client_id,
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    // Even from this machine, a server that faces outside needs --debug-endpoints.
    let local = format!("localhost:{}", server.addr.port());
    let reply = debug_token_as(server.addr, &local, &[], &client_id).await;
    assert_debug_refused(&reply, "start it with --debug-endpoints", "unflagged");
    let introspect = "/oauth/debug/introspect?token=x";
    let reply = raw_to(server.addr, "GET", introspect, &[("Host", &local)], b"").await;
    assert_debug_refused(&reply, "--debug-endpoints", "introspect unflagged");
}

#[tokio::test]
async fn with_debug_endpoints_a_public_url_server_mints_for_local_callers_only() {
    let server = start_with(Config {
        port: 0,
        public_url: Some("https://smart.example.org".into()),
        debug_endpoints: true,
        ..Config::default()
    })
    .await;
    let client_id = register_locally(server.addr).await;
    let local = format!("127.0.0.1:{}", server.addr.port());
    let reply = debug_token_as(server.addr, &local, &[], &client_id).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = debug_token_as(server.addr, "smart.example.org", &[], &client_id).await;
    assert_debug_refused(&reply, "loopback name with port", "public Host, flagged");
}

#[tokio::test]
async fn a_loopback_host_must_name_the_servers_port() {
    let server = start().await;
    let client_id = register_locally(server.addr).await;
    let port = server.addr.port();
    for host in [
        "localhost".to_string(),
        format!("localhost:{}", port.wrapping_add(1)),
        "127.0.0.1:80".into(),
    ] {
        let reply = debug_token_as(server.addr, &host, &[], &client_id).await;
        assert_debug_refused(&reply, &format!("with port {port}"), &host);
    }
    for host in [
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let reply = debug_token_as(server.addr, &host, &[], &client_id).await;
        assert_eq!(reply.status, 200, "{host}: {}", reply.text());
    }
}

#[tokio::test]
async fn proxy_headers_close_the_debug_endpoints() {
    let server = start().await;
    let client_id = register_locally(server.addr).await;
    let local = format!("localhost:{}", server.addr.port());
    for (name, value) in [
        ("Forwarded", "for=203.0.113.9"),
        ("X-Forwarded-For", "127.0.0.1"),
        ("X-Forwarded-Host", "localhost"),
        ("X-Forwarded-Proto", "http"),
        ("X-Real-IP", "127.0.0.1"),
        ("Via", "1.1 nginx"),
    ] {
        let reply = debug_token_as(server.addr, &local, &[(name, value)], &client_id).await;
        let rule = format!("carries a {} header", name.to_ascii_lowercase());
        assert_debug_refused(&reply, &rule, name);
        let path = "/oauth/debug/introspect?token=x";
        let reply = raw_to(
            server.addr,
            "GET",
            path,
            &[("Host", &local), (name, value)],
            b"",
        )
        .await;
        assert_debug_refused(&reply, &rule, name);
    }
    // Other routes do not care.
    let reply = post_json_as(
        server.addr,
        "/oauth/register",
        &local,
        &[("X-Forwarded-For", "203.0.113.9")],
        &seed_registration(),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
}

#[tokio::test]
async fn a_browser_preflight_or_cross_site_post_gets_no_debug_token() {
    let server = start().await;
    let client_id = register_locally(server.addr).await;
    let local = format!("localhost:{}", server.addr.port());
    let reply = raw_to(
        server.addr,
        "OPTIONS",
        "/oauth/debug/token",
        &[
            ("Host", &local),
            ("Origin", "https://attacker.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        b"",
    )
    .await;
    assert_debug_refused(&reply, "cross-site", "preflight");
    assert!(reply.header("access-control-allow-origin").is_none());
    // A local page (e.g. a notebook's output) posting as a browser would.
    let reply = debug_token_as(
        server.addr,
        &local,
        &[
            ("Origin", "http://localhost:8888"),
            ("Sec-Fetch-Site", "same-site"),
        ],
        &client_id,
    )
    .await;
    assert_debug_refused(&reply, "cross-site", "local page");
    // The same without a browser's headers: a script on this machine.
    let reply = debug_token_as(server.addr, &local, &[], &client_id).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// This machine's address on its outward interface, if it has one.
fn non_loopback_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn a_peer_on_another_address_gets_no_debug_token_even_with_debug_endpoints() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("no non-loopback address here; the decision's unit tests cover this rule");
        return;
    };
    let server = start_with(Config {
        port: 0,
        host: "0.0.0.0".parse().expect("an address"),
        debug_endpoints: true,
        ..Config::default()
    })
    .await;
    let port = server.addr.port();
    let client_id = register_locally(SocketAddr::new("127.0.0.1".parse().unwrap(), port)).await;
    let outside = SocketAddr::new(ip, port);
    let local = format!("localhost:{port}");
    let reply = debug_token_as(outside, &local, &[], &client_id).await;
    assert_debug_refused(&reply, "is not a loopback address", "peer elsewhere");
    // Its own address as Host is not a name this server answers to without --public-url.
    let reply = raw_to(
        outside,
        "GET",
        "/api/fhir/metadata",
        &[("Host", &format!("{ip}:{port}"))],
        b"",
    )
    .await;
    assert_eq!(reply.status, 421, "{}", reply.text());
    // From loopback it answers (the flag was given).
    let here = SocketAddr::new("127.0.0.1".parse().unwrap(), port);
    let reply = debug_token_as(here, &local, &[], &client_id).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn a_server_on_all_interfaces_needs_debug_endpoints_even_for_loopback() {
    let server = start_with(Config {
        port: 0,
        host: "0.0.0.0".parse().expect("an address"),
        ..Config::default()
    })
    .await;
    let port = server.addr.port();
    let here = SocketAddr::new("127.0.0.1".parse().unwrap(), port);
    let client_id = register_locally(here).await;
    let local = format!("localhost:{port}");
    let reply = debug_token_as(here, &local, &[], &client_id).await;
    assert_debug_refused(&reply, "non-loopback address 0.0.0.0", "0.0.0.0");
}
