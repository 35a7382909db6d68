//! `simulate` and the `simulated:` line: an answer that carries `Smartnb-Simulated` is
//! annotated beneath the command that got it (above its error), once per faulted answer;
//! a target without the debug endpoint is a clear error.

use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::json;

use crate::session_support::*;
use smartnb::session::{Outcome, Output, Session};

/// A SMART server that is not smartnb: its FHIR answers carry whatever `Smartnb-Simulated`
/// header the path names, its token endpoint refuses with one, and it has no debug
/// endpoints.
struct Imitation {
    url: String,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Imitation {
    fn start() -> Imitation {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!(
            "http://127.0.0.1:{}",
            server.server_addr().to_ip().unwrap().port()
        );
        let config = json!({
            "authorization_endpoint": format!("{url}/oauth/authorize"),
            "token_endpoint": format!("{url}/oauth/token"),
        })
        .to_string();
        let serving = server.clone();
        let thread = std::thread::spawn(move || {
            for request in serving.incoming_requests() {
                let path = request
                    .url()
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let simulated = match path.as_str() {
                    "/Patient/two" => Some("fhir_expired_token; remaining=2"),
                    "/Patient/last" => Some("fhir_expired_token; remaining=0"),
                    "/Patient/forever" => Some("fhir_throttled; remaining=until-cleared"),
                    "/oauth/token" => Some("token_invalid_grant; remaining=0"),
                    _ => None,
                };
                let (status, body) = match path.as_str() {
                    "/.well-known/smart-configuration" => (200, config.clone()),
                    "/oauth/token" => (
                        400,
                        json!({"error": "invalid_grant", "error_description": "simulated"})
                            .to_string(),
                    ),
                    p if p.starts_with("/Patient/") => (
                        401,
                        json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login"}]})
                            .to_string(),
                    ),
                    _ => (404, "<html><h1>Not Found</h1></html>".to_string()),
                };
                let mut response = tiny_http::Response::from_string(body).with_status_code(status);
                if let Some(value) = simulated {
                    response = response.with_header(
                        tiny_http::Header::from_bytes("Smartnb-Simulated", value).unwrap(),
                    );
                }
                let _ = request.respond(response);
            }
        });
        Imitation {
            url,
            server,
            thread: Some(thread),
        }
    }
}

impl Drop for Imitation {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A session connected to an imitation.
fn connected(imitation: &Imitation) -> Session {
    let mut s = session();
    ok(&mut s, &format!("connect {}", imitation.url));
    s
}

/// The `simulated:` lines, in order.
fn simulated(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Simulated(s) => Some(s.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_faulted_answer_is_annotated_beneath_the_command() {
    let imitation = Imitation::start();
    let mut s = connected(&imitation);
    let out = ok(&mut s, "fetch Patient/two --token t");
    assert_eq!(statuses(&out), [401]);
    assert_eq!(simulated(&out), ["simulated: fhir_expired_token (2 more)"]);
    assert!(matches!(out.last(), Some(Output::Simulated(_))), "{out:#?}");

    let out = ok(&mut s, "http GET /Patient/forever");
    assert_eq!(
        simulated(&out),
        ["simulated: fhir_throttled (until cleared)"]
    );
    let out = ok(&mut s, "fetch Patient/plain --token t");
    assert!(simulated(&out).is_empty(), "{out:#?}");
}

#[test]
fn each_command_of_a_cell_gets_its_own_line() {
    let imitation = Imitation::start();
    let mut s = connected(&imitation);
    let out = ok(
        &mut s,
        "fetch Patient/last --token t\nfetch Patient/plain --token t\nfetch Patient/two --token t",
    );
    let lines: Vec<(usize, String)> = out
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match o {
            Output::Simulated(s) => Some((i, s.to_string())),
            _ => None,
        })
        .collect();
    let status_at: Vec<usize> = out
        .iter()
        .enumerate()
        .filter_map(|(i, o)| matches!(o, Output::Status(_)).then_some(i))
        .collect();
    assert_eq!(status_at.len(), 3, "{out:#?}");
    assert_eq!(lines.len(), 2, "{out:#?}");
    // The first command's line comes before the second command's status.
    assert_eq!(lines[0].1, "simulated: fhir_expired_token (last one)");
    assert!(status_at[0] < lines[0].0 && lines[0].0 < status_at[1]);
    assert_eq!(lines[1].1, "simulated: fhir_expired_token (2 more)");
    assert!(lines[1].0 > status_at[2]);
}

#[test]
fn a_failed_command_shows_the_line_above_its_error() {
    let imitation = Imitation::start();
    let mut s = connected(&imitation);
    ok(
        &mut s,
        "set client_id c1\nset client_secret s1\nset redirect_uri http://localhost:9001/authorized",
    );
    let (outcome, out) = run(&mut s, "exchange abc");
    assert_eq!(outcome, Outcome::Failed);
    assert_eq!(errors(&out).len(), 1, "{out:#?}");
    assert!(
        errors(&out)[0].message.contains("invalid_grant"),
        "{out:#?}"
    );
    let n = out.len();
    assert!(n >= 2, "{out:#?}");
    assert!(
        matches!(&out[n - 2], Output::Simulated(x) if x.to_string() == "simulated: token_invalid_grant (last one)"),
        "{out:#?}"
    );
    assert!(matches!(&out[n - 1], Output::Error(_)), "{out:#?}");
}

#[test]
fn a_target_without_the_debug_endpoint_says_so() {
    let imitation = Imitation::start();
    let mut s = connected(&imitation);
    for cell in [
        "simulate fhir_expired_token --client c1",
        "simulate --client c1",
        "simulate clear --client c1",
    ] {
        let error = fails(&mut s, cell);
        assert_eq!(error.kind, "NoEndpoint", "`{cell}`: {error}");
        assert!(
            error
                .message
                .contains("/oauth/debug/simulate answered HTTP 404"),
            "{error}"
        );
        assert!(
            error.hint.unwrap_or_default().contains("connect embedded"),
            "`{cell}`"
        );
    }
}

#[test]
fn simulate_needs_a_client_and_its_flags_go_with_a_fault() {
    let mut s = session();
    let error = fails(&mut s, "simulate fhir_throttled");
    assert_eq!(error.kind, "UndefinedVariable");
    assert!(error.hint.unwrap_or_default().contains("--client ID"));
    let error = fails(&mut s, "simulate clear --times 2 --client c");
    assert_eq!(error.kind, "BadFlag");
    assert!(
        error.message.contains("--times goes with a fault"),
        "{error}"
    );
    let error = fails(&mut s, "simulate --at fhir --client c");
    assert!(error.message.contains("`simulate` alone lists"), "{error}");
    let error = fails(&mut s, "simulate slow --delay soon --client c");
    assert_eq!(error.kind, "BadValue");
    assert!(error.hint.unwrap_or_default().contains("1.5s"));
    // None of these reached a server.
    assert_eq!(s.embedded_url(), None);
}
