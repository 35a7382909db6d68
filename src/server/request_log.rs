//! One log line per request (`smartnb serve`, off with `--quiet`): method, path, status,
//! time taken and the client when one is known, at info level under the target
//! `smartnb::requests`. Never a secret: outside the FHIR API only query parameters known to
//! be harmless keep their values (`state`, `code`, `token`, `launch`, `next`, … show as
//! `***`), and on the FHIR API every value shows but those of parameters whose name says
//! token, secret, password, assertion or verifier. Bodies and headers are never logged.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::Instant;

use axum::extract::Request;
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::Response;

/// The tracing target of the request lines (`SMARTNB_LOG=smartnb::requests=off` hides them).
pub const TARGET: &str = "smartnb::requests";

/// The most of a request target shown; longer ones are cut with `…`.
const MAX_SHOWN: usize = 400;

/// Longest query parameter name shown; a longer one (perhaps a value sent as a name) is
/// hidden with its value.
const MAX_NAME: usize = 32;

/// What stands for a hidden value.
const HIDDEN: &str = "***";

/// Parameters whose values are shown outside the FHIR API: the authorize request's public
/// parts, error answers and discovery's `_format`.
const HARMLESS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "aud",
    "code_challenge_method",
    "prompt",
    "response_mode",
    "max_age",
    "display",
    "ui_locales",
    "error",
    "error_description",
    "_format",
];

tokio::task_local! {
    /// The client a handler found the request to be from, for the request's log line.
    static CLIENT: RefCell<Option<String>>;
}

/// Note the (registered) client this request comes from, for its log line; nothing
/// happens outside a logged request.
pub fn note_client(client_id: &str) {
    let _ = CLIENT.try_with(|client| {
        *client.borrow_mut() = Some(client_id.chars().take(MAX_SHOWN).collect());
    });
}

/// Middleware: run the request, then log its line.
pub async fn log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let target = shown_target(request.uri());
    let (response, client) = CLIENT
        .scope(RefCell::new(None), async {
            let response = next.run(request).await;
            (response, CLIENT.with(|c| c.borrow_mut().take()))
        })
        .await;
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    match client {
        Some(client_id) => tracing::info!(
            target: TARGET,
            "{method} {target} {status} {millis:.1} ms client_id={client_id}"
        ),
        None => tracing::info!(target: TARGET, "{method} {target} {status} {millis:.1} ms"),
    }
    response
}

/// The path and query as logged: secret values hidden, cut at [`MAX_SHOWN`].
pub fn shown_target(uri: &Uri) -> String {
    let path = uri.path();
    let mut shown = String::from(path);
    if let Some(query) = uri.query() {
        let fhir = path.starts_with("/api/");
        shown.push('?');
        for (at, pair) in query.split('&').enumerate() {
            if at > 0 {
                shown.push('&');
            }
            let (name, value) = match pair.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (pair, None),
            };
            if !is_plain_name(name) {
                shown.push_str(HIDDEN);
                continue;
            }
            shown.push_str(name);
            if let Some(value) = value {
                let keep = if fhir {
                    !is_secret_name(name)
                } else {
                    HARMLESS.contains(&name)
                };
                let _ = write!(shown, "={}", if keep { value } else { HIDDEN });
            }
        }
    }
    if shown.chars().count() > MAX_SHOWN {
        shown = shown.chars().take(MAX_SHOWN).collect();
        shown.push('…');
    }
    shown
}

/// A short parameter name of the usual characters (FHIR's `_id`, `code:text`, `a.b`).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
}

/// A name that says its value is a credential.
fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "assertion",
        "verifier",
        "code_",
        "state",
        "nonce",
    ]
    .iter()
    .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(target: &str) -> String {
        shown_target(&target.parse::<Uri>().unwrap())
    }

    #[test]
    fn secrets_are_hidden_and_the_rest_kept() {
        assert_eq!(
            shown("/oauth/authorize?response_type=code&client_id=c1&state=s3cret&code_challenge=x&launch=l1"),
            "/oauth/authorize?response_type=code&client_id=c1&state=***&code_challenge=***&launch=***"
        );
        assert_eq!(
            shown("/oauth/debug/introspect?token=abc"),
            "/oauth/debug/introspect?token=***"
        );
        assert_eq!(
            shown("/login?next=%2Foauth%2Fauthorize%3Fstate%3Dx"),
            "/login?next=***"
        );
        assert_eq!(
            shown("/api/fhir/Observation?code=8867-4&patient=p1&access_token=t"),
            "/api/fhir/Observation?code=8867-4&patient=p1&access_token=***"
        );
        assert_eq!(
            shown("/x?0b0d8a9e-5f4e-4c0e-9d3b-7b1f2f3a4b5c6d7e8f9a"),
            "/x?***"
        );
        assert_eq!(shown("/oauth/authorize?flag"), "/oauth/authorize?flag");
        let long = format!("/api/fhir/Observation?code={}", "a".repeat(1000));
        assert_eq!(shown(&long).chars().count(), MAX_SHOWN + 1);
    }
}
