//! /login and /logout.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::session::{clear_cookie, set_cookie};
use super::templates::{LoginPage, LogoutPage};
use super::{csrf_failure, error_page, field, form_pairs, html, safe_next, see_other, with_cookie};
use crate::server::state::AppState;

const BAD_LOGIN: &str = "That user name and password do not match an account.";

/// GET /login?next=…: the sign-in form, or straight on when already signed in.
pub async fn show(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = form_pairs(query.unwrap_or_default().as_bytes());
    let next = safe_next(field(&pairs, "next")).to_string();
    let (session, cookie) = state.sessions.ensure(&headers, state.secure_cookies());
    if session.username.is_some() {
        return see_other(&next, cookie);
    }
    let page = LoginPage {
        title: "Sign in",
        user: None,
        csrf: &session.csrf,
        next: &next,
        username: "",
        error: None,
    };
    with_cookie(html(StatusCode::OK, &page), cookie)
}

/// POST /login: check the password, start a fresh signed-in session, go to `next`.
pub async fn submit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(session) = state.sessions.current(&headers) else {
        return csrf_failure();
    };
    let Ok(body) = body else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The form could not be read.",
            "Go back and try again.",
        );
    };
    let pairs = form_pairs(&body);
    if !session.csrf_matches(field(&pairs, "csrf")) {
        return csrf_failure();
    }
    let next = safe_next(field(&pairs, "next")).to_string();
    let username = field(&pairs, "username")
        .unwrap_or_default()
        .trim()
        .to_string();
    let password = field(&pairs, "password").unwrap_or_default();
    let verified = state.users.verify_login(&username, password).await;
    if !verified {
        let page = LoginPage {
            title: "Sign in",
            user: None,
            csrf: &session.csrf,
            next: &next,
            username: &username,
            error: Some(BAD_LOGIN),
        };
        return html(StatusCode::OK, &page);
    }
    // A new session id at sign-in, so an id planted before cannot be ridden after.
    state.sessions.end(&session.id);
    let signed_in = state.sessions.start(Some(username));
    see_other(&next, Some(set_cookie(&signed_in, state.secure_cookies())))
}

/// GET /logout: a confirmation form (signing out changes state, so it is a POST).
pub async fn show_logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match state.sessions.current(&headers) {
        Some(session) if session.username.is_some() => html(
            StatusCode::OK,
            &LogoutPage {
                title: "Sign out",
                user: session.username.as_deref(),
                csrf: &session.csrf,
            },
        ),
        _ => see_other("/login", None),
    }
}

/// POST /logout: end the session.
pub async fn submit_logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(session) = state.sessions.current(&headers) else {
        return see_other("/login", Some(clear_cookie()));
    };
    let pairs = form_pairs(&body.unwrap_or_default());
    if !session.csrf_matches(field(&pairs, "csrf")) {
        return csrf_failure();
    }
    state.sessions.end(&session.id);
    see_other("/login", Some(clear_cookie()))
}
