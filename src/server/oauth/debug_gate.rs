//! Who may use the debug endpoints (everything under `/oauth/debug`), decided per request:
//! a program on this machine talking to the server directly, never anything from outside.
//!
//! A request passes only when every rule holds: the TCP peer is a loopback address; no
//! header a proxy adds is present (so a local reverse proxy cannot relay outside callers);
//! the Host names a loopback host with the server's port; it is not a browser's cross-site
//! request; and, when the server faces outside (`--public-url` names a non-loopback host,
//! or it listens on a non-loopback address), `--debug-endpoints` was given. The flag never
//! lets a non-loopback peer in.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::server::error::OAuthError;
use crate::server::host_check::{parse_host, request_host};
use crate::server::state::AppState;

/// Headers whose presence means a proxy relayed the request.
pub const PROXY_HEADERS: &[&str] = &[
    "forwarded",
    "via",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-prefix",
    "x-real-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
];

/// Which rule refused a debug request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DebugRefusal {
    /// The TCP peer is not on this machine (or not known).
    #[error("the debug endpoints answer only programs on this machine: the peer {0} is not a loopback address")]
    PeerNotLoopback(String),
    /// A proxy header is present.
    #[error("the debug endpoints do not answer through a proxy: the request carries a {0} header")]
    ProxyHeader(&'static str),
    /// The Host is not a loopback name with the server's port.
    #[error("the debug endpoints answer only a Host that is a loopback name with port {expected} (localhost:{expected}, 127.0.0.1:{expected} or [::1]:{expected}), not {given:?}")]
    HostNotLoopback {
        /// The port the Host must name.
        expected: u16,
        /// What the request named.
        given: String,
    },
    /// A browser's request from another site.
    #[error("the debug endpoints do not answer a browser's cross-site request ({0})")]
    CrossSite(String),
    /// The server faces outside and `--debug-endpoints` was not given.
    #[error("{0}: start it with --debug-endpoints to use the debug endpoints (still only from this machine)")]
    NotEnabled(String),
}

/// The facts about one server the decision needs.
#[derive(Debug, Clone)]
pub struct DebugPolicy {
    /// The port the server is bound to.
    pub bound_port: u16,
    /// The public URL's port (or its scheme's default), when the public URL is loopback.
    pub public_loopback_port: Option<u16>,
    /// Why the server faces outside (a non-loopback public URL or bound address), if it does.
    pub outside: Option<String>,
    /// `--debug-endpoints` was given.
    pub debug_endpoints: bool,
}

impl DebugPolicy {
    /// The policy of a running server.
    pub fn of(state: &AppState) -> Self {
        let public = state
            .config
            .public_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok());
        let public_host = public
            .as_ref()
            .and_then(|u| u.host_str().and_then(|h| parse_host(h).ok()));
        let public_loopback = public_host.as_ref().is_some_and(|h| h.is_loopback());
        let ip = state.addr.ip();
        let outside = match (&public, &public_host) {
            (Some(url), Some(host)) if !host.is_loopback() => Some(format!(
                "the public URL {} is not a loopback URL",
                url.as_str().trim_end_matches('/')
            )),
            _ if !ip.to_canonical().is_loopback() => Some(format!(
                "the server listens on the non-loopback address {ip}"
            )),
            _ => None,
        };
        DebugPolicy {
            bound_port: state.addr.port(),
            public_loopback_port: public
                .filter(|_| public_loopback)
                .and_then(|u| u.port_or_known_default()),
            outside,
            debug_endpoints: state.config.debug_endpoints,
        }
    }

    /// Whether this request may use a debug endpoint; the first rule that fails if not.
    pub fn decide(
        &self,
        peer: Option<SocketAddr>,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<(), DebugRefusal> {
        match peer {
            Some(addr) if addr.ip().to_canonical().is_loopback() => {}
            Some(addr) => return Err(DebugRefusal::PeerNotLoopback(addr.ip().to_string())),
            None => return Err(DebugRefusal::PeerNotLoopback("(unknown)".to_string())),
        }
        if let Some(name) = PROXY_HEADERS.iter().find(|h| headers.contains_key(**h)) {
            return Err(DebugRefusal::ProxyHeader(name));
        }
        let host_refused = |given: String| DebugRefusal::HostNotLoopback {
            expected: self.bound_port,
            given,
        };
        let host = request_host(uri, headers).map_err(|e| host_refused(e.to_string()))?;
        // The server itself speaks plain HTTP, so a Host without a port means port 80.
        let port = host.port_or(80);
        let port_ok = port == self.bound_port || Some(port) == self.public_loopback_port;
        if !host.is_loopback() || !port_ok {
            let given = match host.port {
                Some(p) if host.name.contains(':') => format!("[{}]:{p}", host.name),
                Some(p) => format!("{}:{p}", host.name),
                None => host.name.clone(),
            };
            return Err(host_refused(given));
        }
        cross_site(headers, self)?;
        match &self.outside {
            Some(why) if !self.debug_endpoints => Err(DebugRefusal::NotEnabled(why.clone())),
            _ => Ok(()),
        }
    }
}

/// A browser says where a request comes from: `Sec-Fetch-Site` other than `same-origin` or
/// `none` (typed by the user), or an `Origin` that is not this server on a loopback name.
fn cross_site(headers: &HeaderMap, policy: &DebugPolicy) -> Result<(), DebugRefusal> {
    // Every copy of each header is looked at: a second Origin must not hide behind a first.
    for site in headers.get_all("sec-fetch-site") {
        let site = String::from_utf8_lossy(site.as_bytes()).to_ascii_lowercase();
        if site != "same-origin" && site != "none" {
            return Err(DebugRefusal::CrossSite(format!("Sec-Fetch-Site: {site}")));
        }
    }
    for origin in headers.get_all(header::ORIGIN) {
        let text = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        let same = url::Url::parse(&text).ok().is_some_and(|url| {
            let host = url.host_str().and_then(|h| parse_host(h).ok());
            let port = url.port_or_known_default();
            url.scheme() == "http"
                && host.is_some_and(|h| h.is_loopback())
                && (port == Some(policy.bound_port) || port == policy.public_loopback_port)
        });
        if !same {
            return Err(DebugRefusal::CrossSite(format!("Origin: {text}")));
        }
    }
    Ok(())
}

/// Whether a path is one of the debug endpoints' (or would be, if it existed).
pub fn is_debug_path(path: &str) -> bool {
    path == "/oauth/debug" || path.starts_with("/oauth/debug/")
}

/// Middleware: requests under `/oauth/debug` pass only when [`DebugPolicy::decide`] allows
/// them; otherwise 403 `access_denied` naming the rule that failed.
pub async fn gate(
    State(policy): State<Arc<DebugPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    if !is_debug_path(request.uri().path()) {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    match policy.decide(peer, request.uri(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => OAuthError::bad_request("access_denied", refusal.to_string())
            .with_status(StatusCode::FORBIDDEN)
            .into_response(),
    }
}
