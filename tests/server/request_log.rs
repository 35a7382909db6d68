//! The request log (`smartnb serve` without `--quiet`): one line per request with method,
//! path, status, time and the client when known, and never a token, code, secret, state,
//! PKCE value or password, whether it came in the query or the body.

use std::io::Write;
use std::sync::{Arc, Mutex};

use regex::Regex;
use smartnb::server::Config;

use crate::portal::*;

/// What the server logged while the test ran, captured on this thread (the test runtime
/// runs the server's tasks on it too).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The request lines logged so far.
    fn request_lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains("smartnb::requests"))
            .map(str::to_string)
            .collect()
    }

    /// Route this thread's log events here until the guard drops.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

/// The one line for `method path…`, which must exist.
fn line<'a>(lines: &'a [String], start: &str) -> &'a str {
    let wanted = format!("smartnb::requests: {start}");
    lines
        .iter()
        .find(|l| l.contains(&wanted))
        .unwrap_or_else(|| panic!("no line for {start:?} in:\n{}", lines.join("\n")))
}

#[tokio::test]
async fn each_request_is_one_line_and_no_secret_is_ever_logged() {
    let captured = Captured::default();
    let _guard = captured.install();
    let server = TestServer::start_with(Config {
        log_requests: true,
        ..Config::default()
    })
    .await;
    let app = server.register_seed_app().await;
    let secret = app.client_secret.clone().expect("a confidential client");
    let pkce = Pkce::fresh();
    let code = authorize(&server, &Authorize::new(&server, &app).pkce(&pkce), DANIEL)
        .await
        .code();
    let first = app
        .exchange(&server, &code, Some(&pkce.verifier))
        .await
        .tokens();
    assert_eq!(
        server
            .fhir_status(&first.access, "Patient/smart-1288992")
            .await,
        200
    );
    let second = app.refresh(&server, first.refresh(), None).await.tokens();
    assert_eq!(
        server.introspect(&app.auth(), &second.access).await.status,
        200
    );
    assert_eq!(server.debug_introspect(&second.access).await.status, 200);
    assert_eq!(
        server.revoke(&app.auth(), second.refresh()).await.status,
        200
    );

    let lines = captured.request_lines();
    let shape = Regex::new(
        r"INFO smartnb::requests: (GET|POST) /\S* [1-5]\d\d \d+\.\d ms( client_id=\S+)?$",
    )
    .unwrap();
    for l in &lines {
        assert!(shape.is_match(l), "not a request line: {l}");
    }
    let all = lines.join("\n");
    for (what, value) in [
        ("client secret", secret.as_str()),
        ("code", code.as_str()),
        ("access token", first.access.as_str()),
        ("refresh token", first.refresh()),
        ("rotated access token", second.access.as_str()),
        ("rotated refresh token", second.refresh()),
        ("state", SEED_STATE),
        ("code_verifier", pkce.verifier.as_str()),
        ("code_challenge", pkce.challenge.as_str()),
        ("password", PASSWORD),
    ] {
        assert!(!all.contains(value), "the {what} is in the log:\n{all}");
    }

    let with_client = format!("client_id={}", app.client_id);
    let authorize_line = line(&lines, "GET /oauth/authorize?response_type=code&client_id=");
    assert!(authorize_line.contains("&state=***"), "{authorize_line}");
    assert!(
        authorize_line.contains("&code_challenge=***"),
        "{authorize_line}"
    );
    assert!(
        authorize_line.contains("&code_challenge_method=S256"),
        "{authorize_line}"
    );
    assert!(authorize_line.ends_with(&with_client), "{authorize_line}");
    line(&lines, "GET /login?next=*** 200");
    line(&lines, "POST /login 303");
    let registered = line(&lines, "POST /oauth/register 201");
    assert!(registered.ends_with(&with_client), "{registered}");
    let tokens: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("POST /oauth/token 200"))
        .collect();
    assert_eq!(tokens.len(), 2, "the exchange and the refresh:\n{all}");
    assert!(tokens.iter().all(|l| l.ends_with(&with_client)), "{all}");
    let read = line(&lines, "GET /api/fhir/Patient/smart-1288992 200");
    assert!(read.ends_with(&with_client), "from the token: {read}");
    let debug = line(&lines, "GET /oauth/debug/introspect?token=*** 200");
    assert!(debug.ends_with(&with_client), "{debug}");
    assert!(line(&lines, "POST /oauth/introspect 200").ends_with(&with_client));
    assert!(line(&lines, "POST /oauth/revoke 200").ends_with(&with_client));

    // A FHIR search keeps its parameters; a bad token names no client.
    let search = server
        .get(&format!(
            "{}/Observation?code=8867-4&_count=1",
            server.fhir_base()
        ))
        .await;
    assert_eq!(search.status, 401);
    let lines = captured.request_lines();
    let search_line = line(&lines, "GET /api/fhir/Observation?code=8867-4&_count=1 401");
    assert!(!search_line.contains("client_id="), "{search_line}");
}

#[tokio::test]
async fn without_log_requests_nothing_is_logged_per_request() {
    let captured = Captured::default();
    let _guard = captured.install();
    let server = TestServer::start().await;
    let reply = server
        .get(&format!("{}/metadata", server.fhir_base()))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(captured.request_lines(), Vec::<String>::new());
}
