//! The debug gate's decision as a function, on synthetic peers and headers: every rule,
//! and a peer on another machine, which a test over TCP can only show where the machine has
//! a second address.

use std::net::SocketAddr;

use axum::http::{HeaderMap, Uri};
use smartnb::server::oauth::debug_gate::{is_debug_path, DebugPolicy, DebugRefusal, PROXY_HEADERS};

fn policy() -> DebugPolicy {
    DebugPolicy {
        bound_port: 9000,
        public_loopback_port: None,
        outside: None,
        debug_endpoints: false,
    }
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, value.parse().unwrap());
    }
    map
}

fn peer(text: &str) -> Option<SocketAddr> {
    Some(text.parse().unwrap())
}

fn decide(
    policy: &DebugPolicy,
    from: Option<SocketAddr>,
    pairs: &[(&'static str, &str)],
) -> Result<(), DebugRefusal> {
    policy.decide(
        from,
        &Uri::from_static("/oauth/debug/token"),
        &headers(pairs),
    )
}

#[test]
fn a_loopback_peer_naming_a_loopback_host_with_the_port_passes() {
    for host in [
        "localhost:9000",
        "LOCALHOST.:9000",
        "127.0.0.1:9000",
        "127.9.9.9:9000",
        "[::1]:9000",
    ] {
        for from in ["127.0.0.1:5000", "[::1]:5000", "[::ffff:127.0.0.1]:5000"] {
            assert_eq!(
                decide(&policy(), peer(from), &[("host", host)]),
                Ok(()),
                "{host} from {from}"
            );
        }
    }
}

#[test]
fn a_peer_elsewhere_is_refused_even_with_debug_endpoints() {
    let open = DebugPolicy {
        debug_endpoints: true,
        ..policy()
    };
    for from in [
        "192.0.2.7:5000",
        "[2001:db8::1]:5000",
        "0.0.0.0:1",
        "[::ffff:192.0.2.7]:1",
    ] {
        let refused = decide(&open, peer(from), &[("host", "localhost:9000")]);
        assert!(
            matches!(refused, Err(DebugRefusal::PeerNotLoopback(_))),
            "{from}: {refused:?}"
        );
    }
    let unknown = decide(&open, None, &[("host", "localhost:9000")]);
    assert!(matches!(unknown, Err(DebugRefusal::PeerNotLoopback(_))));
}

#[test]
fn a_host_that_is_not_loopback_or_names_another_port_is_refused() {
    for host in [
        "rebind.attacker.example:9000",
        "localhost",
        "localhost:80",
        "localhost:9001",
        "smart.example.org",
        "localhost.attacker.example:9000",
        "0.0.0.0:9000",
    ] {
        let refused = decide(&policy(), peer("127.0.0.1:1"), &[("host", host)]);
        assert!(
            matches!(
                refused,
                Err(DebugRefusal::HostNotLoopback { expected: 9000, .. })
            ),
            "{host}: {refused:?}"
        );
    }
    let missing = decide(&policy(), peer("127.0.0.1:1"), &[]);
    assert!(matches!(missing, Err(DebugRefusal::HostNotLoopback { .. })));
}

#[test]
fn the_public_url_port_counts_when_the_public_url_is_loopback() {
    let forwarded = DebugPolicy {
        public_loopback_port: Some(8080),
        ..policy()
    };
    assert_eq!(
        decide(
            &forwarded,
            peer("127.0.0.1:1"),
            &[("host", "localhost:8080")]
        ),
        Ok(())
    );
    assert_eq!(
        decide(
            &forwarded,
            peer("127.0.0.1:1"),
            &[("host", "localhost:9000")]
        ),
        Ok(())
    );
    assert!(decide(
        &forwarded,
        peer("127.0.0.1:1"),
        &[("host", "localhost:8081")]
    )
    .is_err());
}

#[test]
fn any_proxy_header_is_refused() {
    for name in PROXY_HEADERS {
        let refused = decide(
            &policy(),
            peer("127.0.0.1:1"),
            &[("host", "localhost:9000"), (name, "192.0.2.7")],
        );
        assert_eq!(refused, Err(DebugRefusal::ProxyHeader(name)));
    }
}

#[test]
fn a_browser_cross_site_request_is_refused() {
    let ok = [("host", "localhost:9000")];
    for (name, value) in [
        ("origin", "https://attacker.example"),
        ("origin", "http://localhost:8888"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let refused = decide(&policy(), peer("127.0.0.1:1"), &[ok[0], (name, value)]);
        assert!(
            matches!(refused, Err(DebugRefusal::CrossSite(_))),
            "{name}: {value}"
        );
    }
    assert_eq!(
        decide(
            &policy(),
            peer("127.0.0.1:1"),
            &[ok[0], ("origin", "http://localhost:9000")]
        ),
        Ok(())
    );
    assert_eq!(
        decide(
            &policy(),
            peer("127.0.0.1:1"),
            &[ok[0], ("sec-fetch-site", "none")]
        ),
        Ok(())
    );
}

#[test]
fn a_server_facing_outside_needs_debug_endpoints() {
    let outside = DebugPolicy {
        outside: Some("the public URL https://smart.example.org is not a loopback URL".into()),
        ..policy()
    };
    let refused = decide(&outside, peer("127.0.0.1:1"), &[("host", "localhost:9000")]);
    assert!(
        matches!(&refused, Err(DebugRefusal::NotEnabled(why)) if why.contains("smart.example.org")),
        "{refused:?}"
    );
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("--debug-endpoints"));
    let enabled = DebugPolicy {
        debug_endpoints: true,
        ..outside
    };
    assert_eq!(
        decide(&enabled, peer("127.0.0.1:1"), &[("host", "localhost:9000")]),
        Ok(())
    );
}

#[test]
fn every_path_under_oauth_debug_is_gated() {
    for path in [
        "/oauth/debug",
        "/oauth/debug/",
        "/oauth/debug/token",
        "/oauth/debug/introspect",
        "/oauth/debug/launch",
        "/oauth/debug/x/y",
    ] {
        assert!(is_debug_path(path), "{path}");
    }
    for path in ["/oauth/debugger", "/oauth/token", "/oauth/introspect", "/"] {
        assert!(!is_debug_path(path), "{path}");
    }
}
