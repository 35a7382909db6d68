//! The participant's pages: sign-in, patient picker, encounter picker, consent, the list of
//! approved apps, and the simulated EHR that launches apps.
//! Plain HTML forms that work without JavaScript; every form carries a CSRF token.

mod apps;
mod consent;
mod ehr;
mod encounters;
mod login;
pub mod next;
pub mod session;
pub mod templates;
pub mod throttle;
pub mod words;

use std::sync::Arc;

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::state::AppState;
use templates::ErrorPage;

/// Page routes; none may be cached (they name patients and carry CSRF tokens).
pub fn routes() -> Router<Arc<AppState>> {
    let routes = Router::new()
        .route("/login", get(login::show).post(login::submit))
        .route(
            "/logout",
            get(login::show_logout).post(login::submit_logout),
        )
        .route("/oauth/consent", get(consent::show).post(consent::decide))
        .route("/oauth/consent/patient", post(consent::choose_patient))
        .route("/oauth/consent/encounter", post(consent::choose_encounter))
        .route("/ehr", get(ehr::show))
        .route("/ehr/launch", post(ehr::launch))
        .route("/apps", get(apps::show))
        .route("/apps/revoke", post(apps::revoke))
        // Set before the layers: the router-wide 405 fallback does not reach layered routes.
        .method_not_allowed_fallback(super::error::method_not_allowed);
    super::no_store::no_store(routes)
}

/// A rendered page with the headers every page gets: no caching, no framing (the consent
/// page must not be clickjacked), no referrer leaking request ids.
pub fn html(status: StatusCode, page: &impl Template) -> Response {
    let body = page.render().unwrap_or_else(|e| {
        format!("<!doctype html><title>Error</title><p>The page could not be drawn: {e}</p>")
    });
    let mut response = (status, axum::response::Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A response that ends a handler early (boxed: a Response is large to carry in a Result).
pub struct Halt(Box<Response>);

impl From<Response> for Halt {
    fn from(response: Response) -> Self {
        Halt(Box::new(response))
    }
}

impl IntoResponse for Halt {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// An HTML error page.
pub fn error_page(status: StatusCode, title: &str, message: &str, hint: &str) -> Response {
    html(
        status,
        &ErrorPage {
            title,
            user: None,
            message,
            hint,
        },
    )
}

/// The page to show when a form's CSRF token or session is missing or wrong.
pub fn csrf_failure() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "The form was not sent from this portal's current page (its security token is missing or out of date).",
        "Go back, reload the page, and submit it again. Cookies must be enabled for this site.",
    )
}

/// 303 to a path on this server, optionally setting a cookie.
pub fn see_other(location: &str, cookie: Option<HeaderValue>) -> Response {
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Attach a Set-Cookie header when there is one.
pub fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Decoded form pairs of a page's POST body (repeats kept, for checkboxes).
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The first value of a form field.
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The sign-in page, returning to `next` (a path on this server) afterwards.
pub fn sign_in_first(next: &str) -> String {
    format!(
        "/login?next={}",
        form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
    )
}

/// The sign-in page for this user (the name filled in), whoever is signed in now, then
/// `next`: for an EHR launch, which belongs to the user who launched it.
pub fn sign_in_as(next: &str, username: &str) -> String {
    format!(
        "{}&username={}",
        sign_in_again(next),
        form_urlencoded::byte_serialize(username.as_bytes()).collect::<String>()
    )
}

/// The sign-in page even for a signed-in participant, then `next`: for an app that asks
/// for a fresh sign-in (OpenID Connect `prompt=login`, `max_age`).
pub fn sign_in_again(next: &str) -> String {
    format!("{}&again=1", sign_in_first(next))
}
