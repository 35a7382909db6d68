//! The bodies of the fuzz targets: each takes the fuzzer's bytes, feeds them to smartnb's
//! public API and checks what must hold whatever the input. A panic is a finding.
//!
//! tests/fuzz_regressions.rs includes this file as a module, so the committed seeds and
//! every minimised crash are replayed through exactly this code by `cargo test`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::Router;
use base64::Engine;
use bytes::Bytes;
use ring::hmac;
use serde_json::Value;
use tower::ServiceExt;

use smartnb::kernel::{connection, history, wire};
use smartnb::server::fhir::data::{DataStore, SERVED_TYPES};
use smartnb::server::fhir::search::{self, Search};
use smartnb::server::oauth::sha256;
use smartnb::server::scopes::{Scope, Scopes};
use smartnb::server::state::AppState;
use smartnb::server::store::{Approval, AuthCode, Client, MemoryStore, Store, Token};
use smartnb::server::{self as server_mod, Config};
use smartnb::session::parse;

// The ingress target (Host, debug gate, Content-Type) lives in its own file.
#[path = "ingress.rs"]
mod ingress;
pub use ingress::{ingress, ingress_response};

// ---------------------------------------------------------------------------------------
// cell: the helper-command parser.

/// Classify a cell, split it into commands, and ask whether it is complete.
pub fn cell(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let classified = parse::classify(&text);
    let commands = parse::commands(&text);
    let _ = parse::is_complete(&text);
    for line in text.lines() {
        let _ = parse::is_helper_line(line);
    }
    // A helper cell's commands are what `commands` makes of the same text.
    if let Ok(parse::Cell::Helper(lines)) = &classified {
        assert_eq!(commands.as_ref().ok(), Some(lines));
    }
    if let Ok(lines) = &commands {
        for line in lines {
            for word in &line.args {
                let _ = word.literal();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// scopes: the SMART scope parser.

/// Parse a scope string; a parsed set must print as itself, cover itself, and keep its
/// non-resource scopes when confined to some resource types.
pub fn scopes(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(scopes) = Scopes::parse(&text) else {
        return;
    };
    let printed = scopes.to_string();
    let again = Scopes::parse(&printed)
        .unwrap_or_else(|e| panic!("{printed:?}, printed from a parsed set, fails: {e}"));
    assert_eq!(again, scopes, "printing and parsing again changed the set");
    assert!(
        scopes.uncovered(&scopes).is_empty(),
        "{printed:?} does not cover itself"
    );
    for r in scopes.resource_scopes() {
        for t in SERVED_TYPES {
            let _ = r.names_type(t);
        }
    }
    // Confine to a prefix of the served types chosen by the input's length.
    let keep = &SERVED_TYPES[..data.len() % (SERVED_TYPES.len() + 1)];
    let restricted = scopes.restrict_types(keep, SERVED_TYPES);
    let others = |s: &Scopes| -> Vec<Scope> {
        s.items
            .iter()
            .filter(|i| matches!(i, Scope::Other(_)))
            .cloned()
            .collect()
    };
    assert_eq!(
        others(&restricted),
        others(&scopes),
        "restricting {printed:?} to {keep:?} lost or added a non-resource scope"
    );
    assert!(
        scopes.uncovered(&restricted).is_empty(),
        "restricting {printed:?} to {keep:?} widened it to {restricted}"
    );
    for r in restricted.resource_scopes() {
        if let Some(t) = &r.resource_type {
            assert!(
                keep.contains(&t.as_str()),
                "restricting {printed:?} to {keep:?} kept {t}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The server: one router over the memory store, on a current-thread runtime made once.

/// A client id, secret and the fixtures the token target uses.
pub const PUBLIC_CLIENT: &str = "fuzz-public";
/// A confidential client (client_secret_basic).
pub const CONFIDENTIAL_CLIENT: &str = "fuzz-confidential";
/// The confidential client's secret.
pub const CONFIDENTIAL_SECRET: &str = "fuzz-secret";
/// A client registered for authorization_code only.
pub const CODE_ONLY_CLIENT: &str = "fuzz-code-only";
/// The PKCE verifier of the public client's code (RFC 7636 appendix B).
pub const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const PKCE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://localhost:9001/authorized";
const SCOPE: &str = "launch/patient patient/*.read offline_access";
const PATIENT: &str = "smart-1288992";
const USER: &str = "daniel-adams";
/// Registered clients are never deleted: start over when this many have piled up.
const MAX_CLIENTS: usize = 20_000;

struct Server {
    runtime: tokio::runtime::Runtime,
    app: Mutex<(Arc<AppState>, Router)>,
}

fn new_app() -> (Arc<AppState>, Router) {
    let addr = SocketAddr::from(([127, 0, 0, 1], 9000));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let state = Arc::new(AppState::new(
        Config::default(),
        "http://localhost:9000".to_string(),
        addr,
        store,
    ));
    let router = server_mod::router(state.clone());
    (state, router)
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime"),
        app: Mutex::new(new_app()),
    })
}

impl Server {
    fn app(&self) -> (Arc<AppState>, Router) {
        self.app.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn reset(&self) {
        *self.app.lock().unwrap_or_else(|e| e.into_inner()) = new_app();
    }
}

/// Send one request through the whole router, naming the server in a Host header as a
/// client would (every route checks it); the status and the body.
async fn send(router: Router, mut request: Request<Body>) -> (StatusCode, Bytes) {
    if request.uri().authority().is_none() && !request.headers().contains_key(header::HOST) {
        request
            .headers_mut()
            .insert(header::HOST, HeaderValue::from_static("localhost:9000"));
    }
    let response = router
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the response body can be read");
    (status, body)
}

/// What every OAuth endpoint answers: `ok` with a JSON object holding `field`, or a 4xx
/// with a JSON `{"error", "error_description"}`; never a 5xx.
fn check_oauth(status: StatusCode, body: &[u8], ok: StatusCode, field: &str) -> Value {
    let text = String::from_utf8_lossy(body);
    assert!(
        !status.is_server_error(),
        "answered {status} with body {text}"
    );
    let json: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{status} with a body that is not JSON ({e}): {text}"));
    if status == ok {
        assert!(
            json.get(field).is_some_and(Value::is_string),
            "{status} without {field}: {text}"
        );
    } else {
        assert!(
            status.is_client_error(),
            "answered {status} (neither {ok} nor 4xx): {text}"
        );
        assert!(
            json.get("error").is_some_and(Value::is_string),
            "{status} without an error code: {text}"
        );
        assert!(
            json.get("error_description").is_some_and(Value::is_string),
            "{status} without an error_description: {text}"
        );
    }
    json
}

// ---------------------------------------------------------------------------------------
// register: POST /oauth/register with the bytes as the JSON body.

/// Register a client with this body.
pub fn register(data: &[u8]) {
    register_response(data);
}

/// [`register`], returning the checked status and JSON body.
pub fn register_response(data: &[u8]) -> (StatusCode, Value) {
    let server = server();
    let (state, router) = server.app();
    let request = Request::post("/oauth/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(data.to_vec()))
        .expect("a valid request");
    let (status, body) = server.runtime.block_on(send(router, request));
    let json = check_oauth(status, &body, StatusCode::CREATED, "client_id");
    if status == StatusCode::CREATED {
        // What was registered can be read back, and a public client got no secret.
        let id = json["client_id"].as_str().unwrap_or_default();
        let client = server
            .runtime
            .block_on(state.store.client(id))
            .expect("the memory store does not fail")
            .expect("the registered client is stored");
        assert_eq!(
            client.secret_sha256.is_some(),
            json.get("client_secret").is_some()
        );
        assert_eq!(
            json["token_endpoint_auth_method"] == "none",
            client.secret_sha256.is_none()
        );
        assert!(
            Scopes::parse(&client.scope).is_ok_and(|s| !s.is_empty()),
            "registered with scope {:?}",
            client.scope
        );
        let count = server
            .runtime
            .block_on(state.store.client_count())
            .unwrap_or(0);
        if count > MAX_CLIENTS {
            server.reset();
        }
    }
    (status, json)
}

// ---------------------------------------------------------------------------------------
// token: POST /oauth/token with the bytes as the form body.

fn token_server() -> &'static Server {
    static SEEDED: OnceLock<()> = OnceLock::new();
    let server = server();
    SEEDED.get_or_init(|| {
        let (state, _) = server.app();
        server.runtime.block_on(insert_clients(&state));
    });
    server
}

fn fixture_client(id: &str, secret: Option<&str>, grants: &[&str]) -> Client {
    Client {
        client_id: id.to_string(),
        secret_sha256: secret.map(smartnb::server::oauth::sha256),
        client_name: id.to_string(),
        redirect_uris: vec![REDIRECT.to_string()],
        scope: SCOPE.to_string(),
        token_endpoint_auth_method: if secret.is_some() {
            "client_secret_basic"
        } else {
            "none"
        }
        .to_string(),
        grant_types: grants.iter().map(|g| g.to_string()).collect(),
        issued_at: 0,
        extra: Default::default(),
    }
}

async fn insert_clients(state: &AppState) {
    let both = ["authorization_code", "refresh_token"];
    let clients = [
        fixture_client(PUBLIC_CLIENT, None, &both),
        fixture_client(CONFIDENTIAL_CLIENT, Some(CONFIDENTIAL_SECRET), &both),
        fixture_client(
            CODE_ONLY_CLIENT,
            Some(CONFIDENTIAL_SECRET),
            &["authorization_code"],
        ),
    ];
    for client in clients {
        state.store.insert_client(client).await.expect("memory");
    }
}

/// Put the approvals, codes and token pairs back as they were, so that every input meets
/// the same fixtures: `fuzz-code-*`, `fuzz-refresh-*` (see fuzz/README.md).
async fn reset_grants(state: &AppState) {
    let now = smartnb::server::clock::now();
    let year = 365 * 24 * 3600;
    // (name, client, approval expiry)
    let approvals = [
        ("public", PUBLIC_CLIENT, now + year),
        ("confidential", CONFIDENTIAL_CLIENT, now + year),
        ("code-only", CODE_ONLY_CLIENT, now + year),
        ("expired", CONFIDENTIAL_CLIENT, now - 10),
    ];
    let store = &state.store;
    for (name, client, expires) in approvals {
        let approval_id = format!("fuzz-approval-{name}");
        store
            .insert_approval(Approval {
                id: approval_id.clone(),
                client_id: client.to_string(),
                username: USER.to_string(),
                patient_id: PATIENT.to_string(),
                scope: SCOPE.to_string(),
                expires,
                created: now - 100,
            })
            .await
            .expect("memory");
        store
            .insert_code(AuthCode {
                code_sha256: sha256(&format!("fuzz-code-{name}")),
                approval_id: approval_id.clone(),
                redirect_uri: REDIRECT.to_string(),
                redirect_uri_given: name != "confidential",
                scope: SCOPE.to_string(),
                code_challenge: (name == "public").then(|| PKCE_CHALLENGE.to_string()),
                expires: now + 100,
                session_sha256: None,
                nonce: None,
                auth_time: None,
                context: None,
            })
            .await
            .expect("memory");
        store
            .insert_token(Token {
                access_sha256: sha256(&format!("fuzz-access-{name}")),
                refresh_sha256: Some(sha256(&format!("fuzz-refresh-{name}"))),
                approval_id,
                scope: SCOPE.to_string(),
                issued_at: now - 100,
                access_expires: now + 3600,
                from_code_sha256: None,
                session_sha256: None,
                auth_time: None,
                context: None,
            })
            .await
            .expect("memory");
    }
    // A code exchanged once already: sending it again is a replay.
    store
        .insert_code(AuthCode {
            code_sha256: sha256("fuzz-code-used"),
            approval_id: "fuzz-approval-confidential".to_string(),
            redirect_uri: REDIRECT.to_string(),
            redirect_uri_given: false,
            scope: SCOPE.to_string(),
            code_challenge: None,
            expires: now + 100,
            session_sha256: None,
            nonce: None,
            auth_time: None,
            context: None,
        })
        .await
        .expect("memory");
    let first_use = Token {
        access_sha256: sha256("fuzz-access-used"),
        refresh_sha256: None,
        approval_id: "fuzz-approval-confidential".to_string(),
        scope: SCOPE.to_string(),
        issued_at: now - 100,
        access_expires: now + 3600,
        from_code_sha256: Some(sha256("fuzz-code-used")),
        session_sha256: None,
        auth_time: None,
        context: None,
    };
    let _ = store
        .redeem_code(&sha256("fuzz-code-used"), first_use)
        .await;
    // A code that has expired although its approval is live.
    store
        .insert_code(AuthCode {
            code_sha256: sha256("fuzz-code-stale"),
            approval_id: "fuzz-approval-confidential".to_string(),
            redirect_uri: REDIRECT.to_string(),
            redirect_uri_given: false,
            scope: SCOPE.to_string(),
            code_challenge: None,
            expires: now - 10,
            session_sha256: None,
            nonce: None,
            auth_time: None,
            context: None,
        })
        .await
        .expect("memory");
}

/// Ask for a token. The first byte picks how the client authenticates: `0` (mod 3) no
/// Authorization header and the rest is the form; `1` the first line of the rest is
/// `id:secret` sent as HTTP Basic; `2` the first line is the Authorization header as is.
pub fn token(data: &[u8]) {
    token_response(data);
}

/// [`token`], returning the checked status and JSON body.
pub fn token_response(data: &[u8]) -> (StatusCode, Value) {
    let server = token_server();
    let (state, router) = server.app();
    let (mode, rest) = match data.split_first() {
        Some((first, rest)) => (first % 3, rest),
        None => (0, data),
    };
    let (authorization, form) = match mode {
        0 => (None, rest),
        _ => {
            let (line, form) = match rest.iter().position(|&b| b == b'\n') {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, &[][..]),
            };
            let value = if mode == 1 {
                let encoded = base64::engine::general_purpose::STANDARD.encode(line);
                HeaderValue::from_str(&format!("Basic {encoded}")).ok()
            } else {
                HeaderValue::from_bytes(line).ok()
            };
            (value, form)
        }
    };
    let mut request = Request::post("/oauth/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(value) = &authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let request = request
        .body(Body::from(form.to_vec()))
        .expect("a valid request");
    let (status, body) = server.runtime.block_on(async {
        reset_grants(&state).await;
        send(router, request).await
    });
    let json = check_oauth(status, &body, StatusCode::OK, "access_token");
    if status == StatusCode::OK {
        assert_eq!(json["token_type"], "Bearer");
        let scope = json["scope"]
            .as_str()
            .expect("a token response has a scope");
        assert!(
            Scopes::parse(SCOPE)
                .expect("the fixture scope parses")
                .uncovered(&Scopes::parse(scope).expect("the granted scope parses"))
                .is_empty(),
            "granted {scope:?}, more than the approval's {SCOPE:?}"
        );
        // Forget what was issued, so the store does not grow run after run.
        let access = json["access_token"].as_str().unwrap_or_default();
        let _ = server
            .runtime
            .block_on(state.store.revoke_token(&sha256(access)));
    }
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(json["error"], "invalid_client");
    }
    (status, json)
}

// ---------------------------------------------------------------------------------------
// wire: Jupyter messages as they arrive on a ROUTER socket.

/// The connection key the wire target signs with.
pub const WIRE_KEY: &[u8] = b"fuzz-key";
const DELIMITER: &[u8] = b"<IDS|MSG>";

/// Decode a multipart message. The first byte holds flags: bit 0 checks signatures with
/// [`WIRE_KEY`], bit 1 replaces the frame after `<IDS|MSG>` with the right signature, bit
/// 2 reads the rest as a connection file instead. The rest is split into frames at `\n`.
pub fn wire(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    if flags & 4 != 0 {
        if let Ok(info) = connection::parse(&String::from_utf8_lossy(rest)) {
            assert!(info.key.is_empty() || info.signature_scheme == "hmac-sha256");
        }
        return;
    }
    let key = (flags & 1 != 0).then(|| hmac::Key::new(hmac::HMAC_SHA256, WIRE_KEY));
    let mut frames: Vec<Bytes> = rest
        .split(|&b| b == b'\n')
        .map(Bytes::copy_from_slice)
        .collect();
    if flags & 2 != 0 {
        sign(&mut frames);
    }
    let Ok(message) = zeromq::ZmqMessage::try_from(frames) else {
        return;
    };
    let mut seen = wire::Signatures::default();
    let first = wire::decode(message.clone(), &key, &mut seen);
    let Ok(request) = first else {
        return;
    };
    let _ = request.msg_type();
    if key.is_some() {
        // The same message again is a replay.
        assert!(matches!(
            wire::decode(message, &key, &mut seen),
            Err(wire::WireError::Replay)
        ));
    }
    history_query(&request.content);
}

/// Sign the four frames after the signature frame as the kernel's key would.
fn sign(frames: &mut [Bytes]) {
    let Some(at) = frames.iter().position(|f| f.as_ref() == DELIMITER) else {
        return;
    };
    if frames.len() < at + 6 {
        return;
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, WIRE_KEY);
    let mut ctx = hmac::Context::with_key(&key);
    for part in &frames[at + 2..at + 6] {
        ctx.update(part);
    }
    let hex: String = ctx
        .sign()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    frames[at + 1] = Bytes::from(hex);
}

/// Read a content as a history_request and answer it from a small history.
fn history_query(content: &Value) {
    let Ok(query) = history::parse(content) else {
        return;
    };
    let mut past = history::History::default();
    for (line, input) in [
        "register",
        "token --user daniel-adams",
        "fetch Patient",
        "register",
    ]
    .iter()
    .enumerate()
    {
        past.record(line + 1, input, "");
    }
    let found = past.query(&query);
    assert!(found.len() <= 4);
    if let history::Query::Tail { n } = query.query {
        assert_eq!(found.len(), n.min(4));
    }
}

// ---------------------------------------------------------------------------------------
// fhir: FHIR search parameters.

fn charts() -> &'static DataStore {
    static CHARTS: OnceLock<DataStore> = OnceLock::new();
    CHARTS.get_or_init(DataStore::shipped)
}

/// Parse a search: the first line names the resource type (no line: Observation), the rest
/// is the query string. A search that parses is run over the bundled charts. Then the same
/// search goes to the server as `GET /api/open-fhir/{type}?{query}`.
pub fn fhir(data: &[u8]) {
    let (resource_type, query) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (String::from_utf8_lossy(&data[..at]), &data[at + 1..]),
        None => ("Observation".into(), data),
    };
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query).into_owned().collect();
    if let Ok(search) = Search::parse(&resource_type, &pairs) {
        assert!(search.count <= search::MAX_COUNT);
        for resource in charts().of_type(&resource_type) {
            let _ = search.matches(resource);
            for (name, value) in &pairs {
                let _ = search::matches_filter(&resource.json, name, value);
            }
        }
    }
    open_fhir_search(&resource_type, query);
}

/// `GET /api/open-fhir/{type}?{query}` through the router (bytes a URI cannot hold are
/// percent-encoded); `None` when the type cannot be a path segment. Never a 5xx: a 200
/// Bundle or an OperationOutcome.
pub fn open_fhir_search(resource_type: &str, query: &[u8]) -> Option<(StatusCode, Value)> {
    let mut uri = format!("/api/open-fhir/{resource_type}?");
    for &b in query {
        if b.is_ascii_graphic() && b != b'#' {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    let request = Request::get(uri).body(Body::empty()).ok()?;
    let server = server();
    let (_, router) = server.app();
    let (status, body) = server.runtime.block_on(send(router, request));
    let text = String::from_utf8_lossy(&body);
    assert!(
        !status.is_server_error(),
        "answered {status} with body {text}"
    );
    let json: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{status} with a body that is not JSON ({e}): {text}"));
    let expected = if status == StatusCode::OK {
        "Bundle"
    } else {
        "OperationOutcome"
    };
    assert_eq!(json["resourceType"], expected, "{status}: {text}");
    Some((status, json))
}

// ---------------------------------------------------------------------------------------
// next: where sign-in sends the browser afterwards.

/// The base URL of the harness's servers.
const BASE_URL: &str = "http://localhost:9000";
/// The user the `next` target signs in as, again and again.
const NEXT_SIGNER: &str = "daniel-adams";
/// A user kept signed in, who is sent on at once by GET /login.
const NEXT_SIGNED_IN: &str = "joseph-ross";

/// A server, a signed-in browser's cookie, and an anonymous browser's cookie and CSRF token.
struct NextFixture {
    router: Router,
    signed_in: String,
    anonymous: String,
    anonymous_csrf: String,
}

fn next_fixture() -> &'static NextFixture {
    static FIXTURE: OnceLock<NextFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let (state, router) = new_app();
        let (signed_in, (anonymous, _)) = server().runtime.block_on(async {
            let signed_in = state.sessions.start(NEXT_SIGNED_IN).await;
            let anonymous = state
                .sessions
                .ensure(&axum::http::HeaderMap::new(), false)
                .await;
            (
                signed_in.expect("the memory store keeps a session"),
                anonymous.expect("the memory store has a CSRF key"),
            )
        });
        NextFixture {
            router,
            signed_in: signed_in.id,
            anonymous: anonymous.id,
            anonymous_csrf: anonymous.csrf,
        }
    })
}

/// Where each way of handing in `next` led: the status and Location of GET /login
/// without a cookie, GET /login signed in, and a right sign-in posted with it.
pub type NextAnswers = Vec<(&'static str, StatusCode, Option<String>)>;

/// Hand the bytes to the sign-in pages as `next`; every Location must be a path on this
/// server with no control character, whitespace or backslash, and nothing a 5xx.
pub fn next(data: &[u8]) {
    next_answers(data);
}

/// [`next`], returning what each request was answered.
pub fn next_answers(data: &[u8]) -> NextAnswers {
    let fixture = next_fixture();
    let server = server();
    let query: String = form_urlencoded::byte_serialize(data).collect();
    let cookie = |id: &str| format!("smartnb_session={id}");
    let get = |cookie: Option<String>| {
        let mut request =
            Request::get(format!("/login?next={query}")).header(header::HOST, "localhost:9000");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        request.body(Body::empty()).expect("a valid request")
    };
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", &fixture.anonymous_csrf)
        .append_pair("username", NEXT_SIGNER)
        .append_pair("password", "demo-password")
        .finish()
        + "&next="
        + &query;
    let post = Request::post("/login")
        .header(header::HOST, "localhost:9000")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie(&fixture.anonymous))
        .body(Body::from(form))
        .expect("a valid request");
    let requests = [
        ("GET /login", get(None)),
        (
            "GET /login signed in",
            get(Some(cookie(&fixture.signed_in))),
        ),
        ("POST /login", post),
    ];
    let mut answers = Vec::new();
    for (what, request) in requests {
        let response = server
            .runtime
            .block_on(fixture.router.clone().oneshot(request));
        let response = response.unwrap_or_else(|never| match never {});
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body = server
            .runtime
            .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .expect("the response body can be read");
        let text = String::from_utf8_lossy(&body);
        assert!(!status.is_server_error(), "{what}: {status} {text}");
        if let Some(location) = &location {
            check_same_origin_path(what, location);
        }
        // The sign-in form hands `next` back in a hidden field: it must be safe too.
        if let Some(hidden) = hidden_next(&text) {
            check_same_origin_path(what, hidden);
        }
        answers.push((what, status, location));
    }
    // GET signed in and a right sign-in always go on; the first shows the form.
    assert_eq!(answers[0].1, StatusCode::OK, "{answers:?}");
    assert_eq!(answers[1].1, StatusCode::SEE_OTHER, "{answers:?}");
    assert_eq!(answers[2].1, StatusCode::SEE_OTHER, "{answers:?}");
    answers
}

/// The `value` of the form's hidden `next` field, as written in the page.
fn hidden_next(page: &str) -> Option<&str> {
    let marker = "name=\"next\" value=\"";
    let start = page.find(marker)? + marker.len();
    let len = page[start..].find('"')?;
    Some(&page[start..start + len])
}

/// A Location a browser would follow to this server's origin, and to nothing else.
fn check_same_origin_path(what: &str, location: &str) {
    assert!(
        location.starts_with('/') && !location.starts_with("//"),
        "{what}: {location:?} is not a path starting with a single /"
    );
    assert!(
        location.bytes().all(|b| b.is_ascii_graphic() && b != b'\\'),
        "{what}: {location:?} holds a control character, whitespace, a backslash or non-ASCII"
    );
    let base = url::Url::parse(BASE_URL).expect("the base URL");
    let joined = base
        .join(location)
        .unwrap_or_else(|e| panic!("{what}: {location:?} does not parse ({e})"));
    assert_eq!(
        joined.origin(),
        base.origin(),
        "{what}: {location:?} leaves for {joined}"
    );
}
