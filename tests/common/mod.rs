//! Shared helpers for the server integration tests: an in-process server on an ephemeral
//! port, the seed walkthrough's HTTP calls, and checks for OAuth errors and FHIR Bundles.
#![allow(dead_code)] // each test file uses its own subset of these helpers

pub mod fhir;
pub mod raw;

pub use fhir::*;

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use smartnb::server::{self, Config, RunningServer};

/// The user the seed walkthrough mints tokens for.
pub const DANIEL: &str = "daniel-adams";
/// The other shipped user.
pub const JOSEPH: &str = "joseph-ross";
/// Daniel Adams himself, the seed's patient.
pub const DANIEL_PATIENT: &str = "smart-1288992";
/// Amy Shaw, whom daniel-adams represents.
pub const AMY_PATIENT: &str = "smart-1032702";
/// Joseph Ross, joseph-ross himself.
pub const JOSEPH_PATIENT: &str = "smart-1081332";
/// The scope the seed registers with.
pub const SEED_SCOPE: &str = "launch/patient patient/*.read offline_access";
/// The redirect URI the seed registers with.
pub const SEED_REDIRECT: &str = "http://localhost:9001/authorized";

/// A server running in this test's runtime, plus an HTTP client for it.
pub struct TestServer {
    /// e.g. `http://localhost:41234`.
    pub base: String,
    /// The bound socket, for raw requests.
    pub addr: SocketAddr,
    /// A client with a generous overall timeout, so a hung server fails the test.
    pub http: reqwest::Client,
    running: RunningServer,
}

/// One HTTP response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Body as text.
    pub text: String,
}

impl Reply {
    /// The body as JSON, or a panic that shows what came back instead.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text))
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
}

/// A token pair from the debug token endpoint.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The bearer token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
}

/// A default server on 127.0.0.1, port 0.
pub async fn start() -> TestServer {
    start_with(Config {
        port: 0,
        ..Config::default()
    })
    .await
}

/// A server with the given configuration (use port 0).
pub async fn start_with(config: Config) -> TestServer {
    let running = server::spawn(config).await.expect("the server starts");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client");
    TestServer {
        base: running.base_url.clone(),
        addr: running.addr,
        http,
        running,
    }
}

/// Read a reqwest response whole.
pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a readable body");
    Reply {
        status,
        headers,
        text,
    }
}

impl TestServer {
    /// An absolute URL on this server for a path starting with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `{base}/api/fhir` + path.
    pub fn fhir(&self, path: &str) -> String {
        format!("{}/api/fhir{}", self.base, path)
    }

    /// `{base}/api/open-fhir` + path.
    pub fn open_fhir(&self, path: &str) -> String {
        format!("{}/api/open-fhir{}", self.base, path)
    }

    /// GET an absolute URL.
    pub async fn get(&self, url: &str) -> Reply {
        read(self.http.get(url).send().await.expect("GET is answered")).await
    }

    /// GET an absolute URL with `Authorization: Bearer token`.
    pub async fn get_bearer(&self, url: &str, token: &str) -> Reply {
        let request = self.http.get(url).bearer_auth(token);
        read(request.send().await.expect("GET is answered")).await
    }

    /// POST JSON to a path, as `requests.post(url, json=...)` does.
    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        let request = self.http.post(self.url(path)).json(body);
        read(request.send().await.expect("POST is answered")).await
    }

    /// POST raw bytes with a content type to a path.
    pub async fn post_bytes(&self, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let request = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        read(request.send().await.expect("POST is answered")).await
    }

    /// Register a client with the seed's name and redirect URI and this scope; panics unless 201.
    pub async fn register(&self, scope: &str) -> Value {
        let reply = self
            .post_json(
                "/oauth/register",
                &json!({
                    "client_name": "SMART Test Client",
                    "redirect_uris": [SEED_REDIRECT],
                    "scope": scope,
                }),
            )
            .await;
        assert_eq!(reply.status, 201, "registration failed: {}", reply.text);
        reply.json()
    }

    /// POST /oauth/debug/token with this body.
    pub async fn debug_token(&self, body: &Value) -> Reply {
        self.post_json("/oauth/debug/token", body).await
    }

    /// Mint tokens with this debug-token body; panics unless 200.
    pub async fn mint_with(&self, body: &Value) -> Tokens {
        let reply = self.debug_token(body).await;
        assert_eq!(reply.status, 200, "debug token failed: {}", reply.text);
        let json = reply.json();
        Tokens {
            access: json["access_token"].as_str().expect("access_token").into(),
            refresh: json["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .into(),
        }
    }

    /// Mint tokens for a client, user and patient with the client's scope.
    pub async fn mint(&self, client_id: &str, username: &str, patient: &str) -> Tokens {
        self.mint_with(
            &json!({"client_id": client_id, "username": username, "patient_id": patient}),
        )
        .await
    }

    /// Register a client with `client_scope` and mint an access token for daniel-adams and
    /// his own patient with `token_scope`.
    pub async fn daniel_token(&self, client_scope: &str, token_scope: &str) -> String {
        let client = self.register(client_scope).await;
        let body = json!({
            "client_id": client["client_id"],
            "username": DANIEL,
            "patient_id": DANIEL_PATIENT,
            "scope": token_scope,
        });
        self.mint_with(&body).await.access
    }

    /// An access token with the seed's scope for daniel-adams and smart-1288992.
    pub async fn seed_token(&self) -> String {
        self.daniel_token(SEED_SCOPE, SEED_SCOPE).await
    }

    /// GET /oauth/debug/introspect?token=…
    pub async fn introspect(&self, token: &str) -> Reply {
        let request = self
            .http
            .get(self.url("/oauth/debug/introspect"))
            .query(&[("token", token)]);
        read(request.send().await.expect("introspect is answered")).await
    }

    /// Every resource of a search, following `next` links (with the token, if any) to the end.
    /// Returns the resources and every link URL seen.
    pub async fn search_all(&self, url: &str, token: Option<&str>) -> (Vec<Value>, Vec<String>) {
        let mut resources = Vec::new();
        let mut links = Vec::new();
        let mut next = Some(url.to_string());
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            assert!(pages <= 200, "paging does not end: {url}");
            let reply = match token {
                Some(t) => self.get_bearer(&url, t).await,
                None => self.get(&url).await,
            };
            assert_eq!(reply.status, 200, "{url}: {}", reply.text);
            let bundle = reply.json();
            resources.extend(entry_resources(&bundle));
            for link in bundle["link"].as_array().into_iter().flatten() {
                let href = link["url"].as_str().expect("link url").to_string();
                if link["relation"] == "next" {
                    next = Some(href.clone());
                }
                links.push(href);
            }
        }
        (resources, links)
    }

    /// Stop the server and wait until it has stopped.
    pub async fn stop(self) {
        self.running.shutdown().await;
    }
}

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64
}

/// Seconds since the epoch of an HTTP date such as `Thu, 05 Jul 2018 17:41:24 GMT`.
pub fn http_date(value: &Value) -> i64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a string"));
    let time = httpdate::parse_http_date(text)
        .unwrap_or_else(|e| panic!("{text:?} is not an HTTP date: {e}"));
    time.duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// Assert an OAuth-style error: this status, JSON `error` = code, a non-empty description.
pub fn assert_oauth_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(
        reply.status, status,
        "wanted {status} {code}: {}",
        reply.text
    );
    let json = reply.json();
    assert_eq!(json["error"], code, "{}", reply.text);
    let description = json["error_description"].as_str().unwrap_or_default();
    assert!(
        !description.trim().is_empty(),
        "error_description is missing or empty: {}",
        reply.text
    );
}

/// Assert a FHIR error: this status, an OperationOutcome with an issue and diagnostics, and
/// the FHIR JSON content type. Returns the issue code.
pub fn assert_outcome(reply: &Reply, status: u16) -> String {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_fhir_json(reply);
    let json = reply.json();
    assert_eq!(json["resourceType"], "OperationOutcome", "{}", reply.text);
    let issue = &json["issue"][0];
    assert_eq!(issue["severity"], "error", "{}", reply.text);
    let diagnostics = issue["diagnostics"].as_str().unwrap_or_default();
    assert!(
        !diagnostics.trim().is_empty(),
        "no diagnostics: {}",
        reply.text
    );
    issue["code"].as_str().expect("issue code").to_string()
}

/// Assert `Content-Type: application/fhir+json`.
pub fn assert_fhir_json(reply: &Reply) {
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/fhir+json"),
        "content type {content_type:?}"
    );
}
