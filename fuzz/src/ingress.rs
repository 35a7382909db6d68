//! The ingress target: the Host check, the debug gate and the JSON Content-Type rule, over
//! four servers (default, public URL, public URL with `--debug-endpoints`, any host) with
//! the TCP peer set as axum's `ConnectInfo`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use serde_json::Value;
use tower::ServiceExt;

use smartnb::server::oauth::sha256;
use smartnb::server::state::AppState;
use smartnb::server::store::{Approval, MemoryStore, Store, Token};
use smartnb::server::{self as server_mod, Config};

use super::{fixture_client, server, MAX_CLIENTS, PATIENT, SCOPE, USER};

/// The client the ingress target's debug-token bodies name.
pub const INGRESS_CLIENT: &str = "fuzz-ingress";
/// A token the ingress target's debug introspection looks up.
pub const INGRESS_ACCESS: &str = "fuzz-ingress-access";
/// The public host of the ingress servers started with a public URL.
pub const PUBLIC_HOST: &str = "smart.example.org";
/// The ingress target's routes, chosen by the top three bits of the first byte.
pub const INGRESS_ROUTES: [(&str, &str); 8] = [
    ("POST", "/oauth/debug/token"),
    ("GET", "/oauth/debug/introspect?token=fuzz-ingress-access"),
    ("POST", "/oauth/register"),
    ("GET", "/api/fhir/Patient/smart-1288992"),
    ("GET", "/api/open-fhir/Patient/smart-1288992"),
    ("GET", "/login"),
    ("GET", "/.well-known/smart-configuration"),
    ("OPTIONS", "/oauth/debug/token"),
];

/// The four servers of the ingress target, by bits 2-3 of the first byte: 0 the default
/// (127.0.0.1:9000), 1 `--public-url https://smart.example.org`, 2 the same with
/// `--debug-endpoints`, 3 the default with `--allow-any-host`.
fn ingress_config(kind: u8) -> (Config, String) {
    let public = format!("https://{PUBLIC_HOST}");
    match kind {
        1 => (
            Config {
                public_url: Some(public.clone()),
                ..Config::default()
            },
            public,
        ),
        2 => (
            Config {
                public_url: Some(public.clone()),
                debug_endpoints: true,
                ..Config::default()
            },
            public,
        ),
        3 => (
            Config {
                allow_any_host: true,
                ..Config::default()
            },
            "http://localhost:9000".to_string(),
        ),
        _ => (Config::default(), "http://localhost:9000".to_string()),
    }
}

fn ingress_app(kind: u8, runtime: &tokio::runtime::Runtime) -> IngressApp {
    let (config, base) = ingress_config(kind);
    let addr = SocketAddr::from(([127, 0, 0, 1], 9000));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let state = Arc::new(AppState::new(config, base, addr, store));
    runtime.block_on(async {
        let both = ["authorization_code", "refresh_token"];
        let store = &state.store;
        store
            .insert_client(fixture_client(INGRESS_CLIENT, None, &both))
            .await
            .expect("memory");
        let now = smartnb::server::clock::now();
        store
            .insert_approval(Approval {
                id: "fuzz-ingress-approval".to_string(),
                client_id: INGRESS_CLIENT.to_string(),
                username: USER.to_string(),
                patient_id: PATIENT.to_string(),
                scope: SCOPE.to_string(),
                expires: now + 365 * 24 * 3600,
                created: now,
            })
            .await
            .expect("memory");
        store
            .insert_token(Token {
                access_sha256: sha256(INGRESS_ACCESS),
                refresh_sha256: None,
                approval_id: "fuzz-ingress-approval".to_string(),
                scope: SCOPE.to_string(),
                issued_at: now,
                access_expires: now + 365 * 24 * 3600,
                from_code_sha256: None,
                session_sha256: None,
                auth_time: None,
                context: None,
            })
            .await
            .expect("memory");
    });
    let router = server_mod::router(state.clone());
    (state, router)
}

/// One server of the ingress target: its state and its router.
type IngressApp = (Arc<AppState>, Router);

fn ingress_apps() -> &'static Mutex<Vec<IngressApp>> {
    static APPS: OnceLock<Mutex<Vec<IngressApp>>> = OnceLock::new();
    APPS.get_or_init(|| {
        let runtime = &server().runtime;
        Mutex::new((0..4).map(|kind| ingress_app(kind, runtime)).collect())
    })
}

/// One ingress request as the target read it from the input.
#[derive(Debug, Clone)]
pub struct Ingress {
    /// The TCP peer (none: the connection's address is unknown).
    pub peer: Option<SocketAddr>,
    /// Which server (see `ingress_config`).
    pub server: u8,
    /// An `X-Forwarded-For` header is sent.
    pub forwarded: bool,
    /// Index into [`INGRESS_ROUTES`].
    pub route: usize,
    /// The Host header, if any.
    pub host: Option<Vec<u8>>,
    /// The Content-Type header, if any.
    pub content_type: Option<Vec<u8>>,
    /// The body.
    pub body: Vec<u8>,
}

impl Ingress {
    /// Read an input: a first byte of flags (bits 0-1 the peer: none, 127.0.0.1, ::1,
    /// 192.0.2.7; bits 2-3 the server; bit 4 X-Forwarded-For; bits 5-7 the route), then a
    /// line with the Host (empty: none), a line with the Content-Type (empty: none), and the
    /// body.
    pub fn read(data: &[u8]) -> Ingress {
        let (flags, rest) = data.split_first().map_or((0, data), |(f, r)| (*f, r));
        let mut parts = rest.splitn(3, |&b| b == b'\n');
        let line = |part: Option<&[u8]>| part.filter(|p| !p.is_empty()).map(<[u8]>::to_vec);
        let host = line(parts.next());
        let content_type = line(parts.next());
        let body = parts.next().unwrap_or_default().to_vec();
        let peer = match flags & 3 {
            1 => Some(SocketAddr::from(([127, 0, 0, 1], 40000))),
            2 => Some("[::1]:40000".parse().expect("an address")),
            3 => Some(SocketAddr::from(([192, 0, 2, 7], 40000))),
            _ => None,
        };
        Ingress {
            peer,
            server: (flags >> 2) & 3,
            forwarded: flags & 16 != 0,
            route: usize::from(flags >> 5),
            host,
            content_type,
            body,
        }
    }

    /// What the request's Host names, by an independent reading: `None` when it is missing
    /// or not `host[:port]`, else the name (lower case, no trailing dot, IPv6 unbracketed)
    /// and port.
    fn host(&self) -> Option<(String, Option<u16>)> {
        let text = std::str::from_utf8(self.host.as_deref()?).ok()?;
        let host = smartnb::server::host_check::parse_host(text).ok()?;
        Some((host.name, host.port))
    }

    /// Whether the request's host is one the server answers to.
    fn host_allowed(&self) -> Option<bool> {
        let (name, _) = self.host()?;
        let loopback = name == "localhost"
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.to_canonical().is_loopback());
        let public = matches!(self.server, 1 | 2) && name == PUBLIC_HOST;
        Some(self.server == 3 || loopback || public)
    }

    /// Whether the debug endpoints may answer this request at all.
    fn debug_allowed(&self) -> bool {
        let peer_ok = self
            .peer
            .is_some_and(|p| p.ip().to_canonical().is_loopback());
        let host_ok = self.host().is_some_and(|(name, port)| {
            let loopback = name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.to_canonical().is_loopback());
            loopback && port.unwrap_or(80) == 9000
        });
        let enabled = self.server != 1;
        // The OPTIONS route is a browser's preflight from another site.
        peer_ok && host_ok && enabled && !self.forwarded && self.route != 7
    }
}

/// What the ingress target checks: never a 5xx; a refused host is 400 or 421 with a JSON
/// error; a debug endpoint answers only when the peer, Host, proxy and flag rules allow it
/// and never a permissive CORS preflight; a JSON endpoint accepts only application/json;
/// answers carrying tokens or patient data say no-store.
pub fn ingress(data: &[u8]) {
    ingress_response(data);
}

/// [`ingress`], returning the status, the headers and the body (`None`: the input cannot be
/// sent as an HTTP request).
pub fn ingress_response(data: &[u8]) -> Option<(StatusCode, axum::http::HeaderMap, Bytes)> {
    let input = Ingress::read(data);
    let (method, path) = INGRESS_ROUTES[input.route];
    let mut request = Request::builder().method(method).uri(path);
    if let Some(host) = &input.host {
        request = request.header(header::HOST, HeaderValue::from_bytes(host).ok()?);
    }
    if let Some(content_type) = &input.content_type {
        request = request.header(
            header::CONTENT_TYPE,
            HeaderValue::from_bytes(content_type).ok()?,
        );
    }
    if input.forwarded {
        request = request.header("x-forwarded-for", "192.0.2.7");
    }
    if input.route == 7 {
        request = request
            .header(header::ORIGIN, "http://rebind.attacker.example:9000")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type");
    }
    let mut request = request.body(Body::from(input.body.clone())).ok()?;
    if let Some(peer) = input.peer {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
    }
    let kind = usize::from(input.server);
    let (state, router) = ingress_apps().lock().unwrap_or_else(|e| e.into_inner())[kind].clone();
    let runtime = &server().runtime;
    let response = runtime
        .block_on(router.oneshot(request))
        .unwrap_or_else(|never| match never {});
    let status = response.status();
    let headers = response.headers().clone();
    let body = runtime
        .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .expect("the response body can be read");
    check_ingress(&input, status, &headers, &body);
    // Keep the store from growing: forget minted tokens; start over after many clients or
    // many debug approvals (each mint adds one).
    static MINTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mut full = false;
    if input.route == 0 && status == StatusCode::OK {
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let access = json["access_token"].as_str().unwrap_or_default();
        let _ = runtime.block_on(state.store.revoke_token(&sha256(access)));
        full = MINTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % MAX_CLIENTS
            == MAX_CLIENTS - 1;
    }
    if status == StatusCode::CREATED {
        full = runtime.block_on(state.store.client_count()).unwrap_or(0) > MAX_CLIENTS;
    }
    if full {
        ingress_apps().lock().unwrap_or_else(|e| e.into_inner())[kind] =
            ingress_app(input.server, runtime);
    }
    Some((status, headers, body))
}

fn check_ingress(
    input: &Ingress,
    status: StatusCode,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) {
    let text = String::from_utf8_lossy(body);
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let is_error = |json: &Option<Value>| {
        json.as_ref().is_some_and(|j| {
            j["error"].as_str().is_some_and(|e| !e.is_empty())
                && j["error_description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty())
        })
    };
    assert!(!status.is_server_error(), "{input:?}: {status} {text}");
    match input.host_allowed() {
        None => {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{input:?}: {text}");
            assert!(is_error(&json), "{input:?}: {status} {text}");
            return;
        }
        Some(false) => {
            assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{input:?}: {text}");
            assert!(is_error(&json), "{input:?}: {status} {text}");
            return;
        }
        Some(true) => assert_ne!(status, StatusCode::MISDIRECTED_REQUEST, "{input:?}: {text}"),
    }
    let debug = matches!(input.route, 0 | 1 | 7);
    if debug && !input.debug_allowed() {
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{input:?} reached a debug endpoint: {text}"
        );
        assert!(is_error(&json), "{input:?}: {status} {text}");
        assert!(
            !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            "{input:?}: a refused debug request allows CORS"
        );
        return;
    }
    if input.route == 7 {
        assert!(!status.is_success(), "{input:?}: a preflight was allowed");
    }
    if matches!(input.route, 0 | 2) {
        let declared = input
            .content_type
            .as_deref()
            .map(|c| String::from_utf8_lossy(c).to_ascii_lowercase());
        let json_declared = declared
            .as_deref()
            .is_some_and(|c| c.trim_start().starts_with("application/json"));
        if !json_declared {
            assert_eq!(
                status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{input:?}: {text}"
            );
        }
        if status.is_success() {
            assert!(json_declared, "{input:?} accepted as JSON");
        }
        assert!(
            status.is_success() || is_error(&json),
            "{input:?}: {status} {text}"
        );
    }
    if input.route <= 5 {
        let cache = headers
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            cache.contains("no-store"),
            "{input:?}: {status} without no-store"
        );
    }
}
