//! The server under test and its JSON and form endpoints, called the way a research app
//! calls them: registration, token, introspection, revocation, FHIR reads.

use base64::Engine;
use reqwest::header::{HeaderMap, AUTHORIZATION, CACHE_CONTROL, PRAGMA};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use smartnb::server::{self, Config, RunningServer};

/// The scope the seed walkthrough registers and asks for.
pub const SEED_SCOPE: &str = "launch/patient patient/*.read offline_access";
/// The seed walkthrough's redirect URI: no site answers there, the browser stops first.
pub const SEED_REDIRECT: &str = "http://not-a-real-site";

/// A server on an ephemeral port, and a plain HTTP client (no cookies) for the app's calls.
pub struct TestServer {
    running: RunningServer,
    /// `http://localhost:PORT`.
    pub base_url: String,
    /// Its HTTP client (follows redirects).
    pub http: reqwest::Client,
}

/// How a call authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `Authorization: Basic` (client_secret_basic).
    Basic(String, String),
    /// client_id and client_secret in the body (client_secret_post).
    Post(String, String),
    /// A public client: client_id in the body only.
    Public(String),
    /// `Authorization: Bearer` (introspection by a resource holder).
    Bearer(String),
    /// No authentication at all.
    Nobody,
}

/// An HTTP answer with its body read, JSON parsed when it is JSON.
#[derive(Debug)]
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body as JSON (`Null` when it is not JSON).
    pub json: Value,
    /// Its body as text.
    pub text: String,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a readable body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "a 500: {text}");
        Reply {
            status,
            headers,
            json,
            text,
        }
    }

    /// A string field of the JSON body (the test fails when it is missing).
    pub fn str(&self, field: &str) -> &str {
        self.json[field]
            .as_str()
            .unwrap_or_else(|| panic!("no string {field:?} in {} {}", self.status, self.text))
    }

    /// A header's value, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Assert the answer carries no-store caching headers (RFC 6749 §5.1).
    pub fn assert_not_cached(&self) {
        assert_eq!(self.header(CACHE_CONTROL.as_str()), "no-store", "{self:?}");
        assert_eq!(self.header(PRAGMA.as_str()), "no-cache", "{self:?}");
    }

    /// Assert an RFC 6749 §5.2 error: status, code, a description, and no caching.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.json["error"], code, "{}", self.text);
        let description = self.json["error_description"].as_str().unwrap_or("");
        assert!(
            !description.is_empty(),
            "no error_description: {}",
            self.text
        );
        self.assert_not_cached();
    }

    /// The tokens of a successful token response.
    pub fn tokens(&self) -> Tokens {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        Tokens {
            access: self.str("access_token").to_string(),
            refresh: self.json["refresh_token"].as_str().map(str::to_string),
        }
    }
}

/// An access token and its refresh token.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The bearer token.
    pub access: String,
    /// The refresh token, when one was issued.
    pub refresh: Option<String>,
}

impl Tokens {
    /// The refresh token, which the test expects to exist.
    pub fn refresh(&self) -> &str {
        self.refresh.as_deref().expect("a refresh token")
    }
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct App {
    /// Its client_id.
    pub client_id: String,
    /// Its secret, unless public.
    pub client_secret: Option<String>,
    /// Its (first) redirect URI.
    pub redirect_uri: String,
    /// Its registered scope.
    pub scope: String,
    /// Its client_name.
    pub name: String,
    /// The token_endpoint_auth_method it registered.
    pub method: String,
}

impl App {
    /// Authentication as the app registered it.
    pub fn auth(&self) -> Auth {
        let id = self.client_id.clone();
        let secret = self.client_secret.clone().unwrap_or_default();
        match self.method.as_str() {
            "client_secret_post" => Auth::Post(id, secret),
            "none" => Auth::Public(id),
            _ => Auth::Basic(id, secret),
        }
    }

    /// grant_type=authorization_code with the app's redirect URI (and a PKCE verifier).
    pub async fn exchange(&self, server: &TestServer, code: &str, verifier: Option<&str>) -> Reply {
        let mut params = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
        ];
        if let Some(verifier) = verifier {
            params.push(("code_verifier", verifier));
        }
        server.token(&self.auth(), &params).await
    }

    /// grant_type=refresh_token, optionally narrowing the scope.
    pub async fn refresh(&self, server: &TestServer, refresh: &str, scope: Option<&str>) -> Reply {
        let mut params = vec![("grant_type", "refresh_token"), ("refresh_token", refresh)];
        if let Some(scope) = scope {
            params.push(("scope", scope));
        }
        server.token(&self.auth(), &params).await
    }
}

/// A PKCE verifier and its S256 challenge (RFC 7636).
#[derive(Debug, Clone)]
pub struct Pkce {
    /// The secret the app keeps until the token request.
    pub verifier: String,
    /// BASE64URL(SHA256(verifier)), sent with the authorize request.
    pub challenge: String,
}

impl Pkce {
    /// A fresh random verifier of 64 characters.
    pub fn fresh() -> Pkce {
        let verifier = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

impl TestServer {
    /// A server with the default configuration on a free port.
    pub async fn start() -> TestServer {
        Self::start_with(Config::default()).await
    }

    /// A server with this configuration, on a free loopback port whatever it says.
    pub async fn start_with(config: Config) -> TestServer {
        let running = server::spawn(Config { port: 0, ..config })
            .await
            .expect("the server starts");
        TestServer {
            base_url: running.base_url.clone(),
            running,
            http: reqwest::Client::new(),
        }
    }

    /// `{base}/api/fhir`.
    pub fn fhir_base(&self) -> String {
        self.running.fhir_base()
    }

    /// The server itself, for what only counting inside it can show (entries, bytes).
    pub fn running(&self) -> &RunningServer {
        &self.running
    }

    /// An absolute URL for a path on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// POST /oauth/register with this metadata; the test fails unless it is 201.
    pub async fn register(&self, metadata: Value) -> App {
        let response = self.http.post(self.url("/oauth/register")).json(&metadata);
        let reply = Reply::read(response.send().await.expect("register")).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        App {
            client_id: reply.str("client_id").to_string(),
            client_secret: reply.json["client_secret"].as_str().map(str::to_string),
            redirect_uri: reply.json["redirect_uris"][0].as_str().unwrap().to_string(),
            scope: reply.str("scope").to_string(),
            name: reply.str("client_name").to_string(),
            method: reply.str("token_endpoint_auth_method").to_string(),
        }
    }

    /// The seed walkthrough's "Fake Research Application".
    pub async fn register_seed_app(&self) -> App {
        self.register(json!({
            "client_name": "Fake Research Application",
            "redirect_uris": [SEED_REDIRECT],
            "scope": SEED_SCOPE,
        }))
        .await
    }

    /// An app authenticating with this method and asking for this scope.
    pub async fn register_app(&self, name: &str, method: &str, scope: &str) -> App {
        self.register(json!({
            "client_name": name,
            "redirect_uris": [format!("http://{}.example/callback", name.to_lowercase().replace(' ', "-"))],
            "scope": scope,
            "token_endpoint_auth_method": method,
        }))
        .await
    }

    /// POST a form to an endpoint with this authentication.
    pub async fn post_form(&self, path: &str, auth: &Auth, params: &[(&str, &str)]) -> Reply {
        let mut body: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut request = self.http.post(self.url(path));
        match auth {
            Auth::Basic(id, secret) => request = request.basic_auth(id, Some(secret)),
            Auth::Post(id, secret) => {
                body.push(("client_id".into(), id.clone()));
                body.push(("client_secret".into(), secret.clone()));
            }
            Auth::Public(id) => body.push(("client_id".into(), id.clone())),
            Auth::Bearer(token) => {
                request = request.header(AUTHORIZATION, format!("Bearer {token}"))
            }
            Auth::Nobody => {}
        }
        let response = request
            .form(&body)
            .send()
            .await
            .expect("the server answers");
        Reply::read(response).await
    }

    /// POST /oauth/token.
    pub async fn token(&self, auth: &Auth, params: &[(&str, &str)]) -> Reply {
        self.post_form("/oauth/token", auth, params).await
    }

    /// POST /oauth/introspect (RFC 7662).
    pub async fn introspect(&self, auth: &Auth, token: &str) -> Reply {
        self.post_form("/oauth/introspect", auth, &[("token", token)])
            .await
    }

    /// POST /oauth/revoke (RFC 7009).
    pub async fn revoke(&self, auth: &Auth, token: &str) -> Reply {
        self.post_form("/oauth/revoke", auth, &[("token", token)])
            .await
    }

    /// GET {fhir}/{path} with a bearer token.
    pub async fn fhir(&self, access_token: &str, path: &str) -> Reply {
        let url = format!("{}/{path}", self.fhir_base());
        let response = self.http.get(url).bearer_auth(access_token).send().await;
        Reply::read(response.expect("the FHIR API answers")).await
    }

    /// The FHIR status of reading this path with this token.
    pub async fn fhir_status(&self, access_token: &str, path: &str) -> u16 {
        self.fhir(access_token, path).await.status.as_u16()
    }

    /// POST a JSON body to a path, whatever the answer.
    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        let response = self.http.post(self.url(path)).json(body).send().await;
        Reply::read(response.expect("the server answers")).await
    }

    /// GET an absolute URL, whatever the answer.
    pub async fn get(&self, url: &str) -> Reply {
        let response = self.http.get(url).send().await;
        Reply::read(response.expect("the server answers")).await
    }

    /// GET /oauth/debug/introspect for a token.
    pub async fn debug_introspect(&self, token: &str) -> Reply {
        let url = self.url("/oauth/debug/introspect");
        let response = self.http.get(url).query(&[("token", token)]).send().await;
        Reply::read(response.expect("the server answers")).await
    }

    /// Stop the server and wait until it has stopped.
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }

    /// POST /oauth/debug/token; the test fails unless it is 200.
    pub async fn debug_token(&self, body: Value) -> Tokens {
        let response = self.http.post(self.url("/oauth/debug/token")).json(&body);
        let reply = Reply::read(response.send().await.expect("debug token")).await;
        reply.tokens()
    }
}
