//! The host a request names (its `Host` header, or the request target's authority), and the
//! middleware that refuses requests naming a host this server is not: a page that reaches
//! the server through DNS rebinding still sends its own host name, and gets nothing.
//!
//! Only the host name is compared, not the port: a reverse proxy may forward `Host` with or
//! without the public port, and rebinding cannot change the name a browser sends.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::OAuthError;
use super::state::AppState;

/// The host and port a request is addressed to, as sent (name in lower case, without a
/// trailing dot, IPv6 literals without their brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHost {
    /// e.g. `localhost`, `127.0.0.1`, `::1`, `smart.example.org`.
    pub name: String,
    /// The port, when the request named one.
    pub port: Option<u16>,
}

impl RequestHost {
    /// The host as an IP address, when it is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.name.parse().ok()
    }

    /// `localhost`, an address in 127.0.0.0/8, or `::1` (also as `::ffff:127.x.y.z`).
    pub fn is_loopback(&self) -> bool {
        self.name == "localhost" || self.ip().is_some_and(|ip| ip.to_canonical().is_loopback())
    }

    /// The port, or the default of `scheme` when the request named none.
    pub fn port_or(&self, default: u16) -> u16 {
        self.port.unwrap_or(default)
    }
}

/// Why the host of a request could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Neither a Host header nor an absolute request target.
    #[error("the request has no Host header; HTTP/1.1 requires one naming this server, e.g. Host: localhost:9000")]
    Missing,
    /// More than one Host header.
    #[error("the request has {0} Host headers; send exactly one")]
    Several(usize),
    /// A Host that is not `host[:port]`.
    #[error("the Host {0:?} is not a host name or IP address with an optional port (e.g. localhost:9000)")]
    Malformed(String),
    /// The request target's authority and the Host header name different hosts.
    #[error(
        "the request target names {target:?} but the Host header names {header:?}; they must agree"
    )]
    Disagree {
        /// The authority in the request target.
        target: String,
        /// The Host header.
        header: String,
    },
}

/// Read `host[:port]` with the http crate's authority parser; no user info, a numeric port.
pub fn parse_host(text: &str) -> Result<RequestHost, HostError> {
    let malformed = || HostError::Malformed(text.to_string());
    let authority: Authority = text.parse().map_err(|_| malformed())?;
    if authority.as_str().contains('@') {
        return Err(malformed());
    }
    let host = authority.host();
    let port = match &authority.as_str()[host.len()..] {
        "" | ":" => None,
        rest => {
            let digits = &rest[1..];
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            Some(digits.parse::<u16>().map_err(|_| malformed())?)
        }
    };
    let name = if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(malformed)?;
        inner
            .parse::<Ipv6Addr>()
            .map_err(|_| malformed())?
            .to_string()
    } else {
        let lower = host.to_ascii_lowercase();
        lower.strip_suffix('.').unwrap_or(&lower).to_string()
    };
    if name.is_empty() {
        return Err(malformed());
    }
    Ok(RequestHost { name, port })
}

/// The host a request names: the request target's authority (absolute-form, or HTTP/2's
/// `:authority`) or else the one Host header; when both are present they must agree.
pub fn request_host(uri: &Uri, headers: &HeaderMap) -> Result<RequestHost, HostError> {
    let values: Vec<_> = headers.get_all(header::HOST).iter().collect();
    if values.len() > 1 {
        return Err(HostError::Several(values.len()));
    }
    let from_header = match values.first() {
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                HostError::Malformed(String::from_utf8_lossy(value.as_bytes()).into())
            })?;
            Some((text.to_string(), parse_host(text)?))
        }
        None => None,
    };
    let from_target = match uri.authority() {
        Some(authority) => Some((authority.to_string(), parse_host(authority.as_str())?)),
        None => None,
    };
    match (from_target, from_header) {
        (Some((target, a)), Some((header, b))) => {
            if a.name != b.name || a.port != b.port {
                return Err(HostError::Disagree { target, header });
            }
            Ok(a)
        }
        (Some((_, host)), None) | (None, Some((_, host))) => Ok(host),
        (None, None) => Err(HostError::Missing),
    }
}

/// Which host names this server answers to.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// The public URL's host, as a request would name it.
    public: Option<String>,
    /// The bound address, when it is a specific one (not 0.0.0.0 or ::).
    bound: Option<IpAddr>,
    /// `--allow-any-host`: answer whatever host is named.
    allow_any: bool,
}

impl HostPolicy {
    /// The policy of a server: its public URL's host, its bound address, loopback names.
    pub fn of(state: &AppState) -> Self {
        let public = url::Url::parse(&state.base_url)
            .ok()
            .and_then(|url| url.host_str().and_then(|h| parse_host(h).ok()))
            .map(|host| host.name);
        let ip = state.addr.ip();
        HostPolicy {
            public,
            bound: (!ip.is_unspecified()).then_some(ip),
            allow_any: state.config.allow_any_host,
        }
    }

    /// Whether a request naming `host` is answered.
    pub fn allows(&self, host: &RequestHost) -> bool {
        self.allow_any
            || host.is_loopback()
            || self.public.as_deref() == Some(host.name.as_str())
            || (self.bound.is_some()
                && host.ip().map(|ip| ip.to_canonical()) == self.bound.map(|b| b.to_canonical()))
    }

    fn misdirected(&self, host: &RequestHost) -> OAuthError {
        let expected = match &self.public {
            Some(public) if public != "localhost" => format!("{public} or a loopback name"),
            _ => "a loopback name (localhost, 127.0.0.1, [::1])".to_string(),
        };
        OAuthError::invalid_request(format!(
            "this server does not answer to the host {:?}; it answers to {expected}. Start it with --public-url naming the host clients use, or with --allow-any-host to answer any host",
            host.name
        ))
        .with_status(StatusCode::MISDIRECTED_REQUEST)
    }
}

/// Middleware: 400 for a missing or malformed host, 421 for a host this server is not.
pub async fn check(
    State(policy): State<Arc<HostPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    match request_host(request.uri(), request.headers()) {
        Err(e) => OAuthError::invalid_request(e.to_string()).into_response(),
        Ok(host) if !policy.allows(&host) => policy.misdirected(&host).into_response(),
        Ok(_) => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, port: Option<u16>) -> RequestHost {
        RequestHost {
            name: name.to_string(),
            port,
        }
    }

    #[test]
    fn hosts_are_read_with_case_trailing_dots_brackets_and_ports_undone() {
        assert_eq!(parse_host("LocalHost"), Ok(host("localhost", None)));
        assert_eq!(
            parse_host("localhost.:9000"),
            Ok(host("localhost", Some(9000)))
        );
        assert_eq!(parse_host("[::1]:80"), Ok(host("::1", Some(80))));
        assert_eq!(parse_host("[0:0::1]"), Ok(host("::1", None)));
        assert_eq!(parse_host("127.0.0.1:"), Ok(host("127.0.0.1", None)));
        assert_eq!(
            parse_host("Smart.Example.ORG."),
            Ok(host("smart.example.org", None))
        );
        for bad in [
            "",
            ":80",
            "user@localhost",
            "localhost:abc",
            "localhost:+80",
            "localhost:65536",
            "localhost:1:2",
            "[::1",
            "[nope]",
            "local host",
            "localhost/x",
            "evil%2ecom",
        ] {
            assert!(parse_host(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn loopback_names_are_localhost_127_slash_8_and_the_ipv6_loopback() {
        for name in [
            "localhost",
            "127.0.0.1",
            "127.255.3.4",
            "::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(host(name, None).is_loopback(), "{name}");
        }
        for name in [
            "localhost.example",
            "foo.localhost",
            "127.0.0.1.example",
            "0.0.0.0",
            "::",
            "10.0.0.1",
            "127.1",
        ] {
            assert!(!host(name, None).is_loopback(), "{name}");
        }
    }

    #[test]
    fn the_target_authority_and_the_host_header_must_agree() {
        let mut headers = HeaderMap::new();
        let absolute: Uri = "http://localhost:9000/x".parse().unwrap();
        assert_eq!(
            request_host(&absolute, &headers),
            Ok(host("localhost", Some(9000)))
        );
        headers.insert(header::HOST, "evil.example:9000".parse().unwrap());
        assert!(matches!(
            request_host(&absolute, &headers),
            Err(HostError::Disagree { .. })
        ));
        let origin: Uri = "/x".parse().unwrap();
        assert_eq!(
            request_host(&origin, &headers),
            Ok(host("evil.example", Some(9000)))
        );
        headers.append(header::HOST, "localhost".parse().unwrap());
        assert_eq!(request_host(&origin, &headers), Err(HostError::Several(2)));
        assert_eq!(
            request_host(&origin, &HeaderMap::new()),
            Err(HostError::Missing)
        );
    }

    #[test]
    fn a_policy_allows_its_public_host_its_bound_address_and_loopback_only() {
        let policy = HostPolicy {
            public: Some("smart.example.org".into()),
            bound: Some("192.0.2.10".parse().unwrap()),
            allow_any: false,
        };
        for name in [
            "smart.example.org",
            "192.0.2.10",
            "localhost",
            "127.0.0.1",
            "::1",
        ] {
            assert!(policy.allows(&host(name, Some(1))), "{name}");
        }
        for name in [
            "rebind.attacker.example",
            "smart.example.org.evil",
            "192.0.2.11",
            "example.org",
        ] {
            assert!(!policy.allows(&host(name, None)), "{name}");
        }
        let any = HostPolicy {
            allow_any: true,
            ..policy
        };
        assert!(any.allows(&host("rebind.attacker.example", None)));
    }
}
