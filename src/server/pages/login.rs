//! /login and /logout.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;

use super::session::{clear_cookie, set_cookie};
use super::templates::{LoginPage, LogoutPage};
use super::throttle::{Paused, Standing};
use super::{csrf_failure, error_page, field, form_pairs, html, next, see_other, with_cookie};
use crate::server::state::AppState;

const BAD_LOGIN: &str = "That user name and password do not match an account.";

/// GET /login?next=…: the sign-in form, or straight on when already signed in.
pub async fn show(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = form_pairs(query.unwrap_or_default().as_bytes());
    // A refused `next` is not an error: sign-in goes on, to the default page instead.
    let (next, refused) = next::or_default(&state.base_url, field(&pairs, "next"));
    let (session, cookie) = match state
        .sessions
        .ensure(&headers, state.secure_cookies())
        .await
    {
        Ok(found) => found,
        Err(e) => return store_trouble(&e),
    };
    let again = field(&pairs, "again") == Some("1");
    if session.username.is_some() && !again {
        return see_other(&next, cookie);
    }
    let launch_user = field(&pairs, "username").filter(|name| name.len() <= 64);
    let notice = match (refused, launch_user) {
        (Some(why), _) => Some(format!(
            "The link's return address was not used: {why}. After signing in you will go to {}.",
            next::DEFAULT
        )),
        (None, Some(user)) if again => Some(format!(
            "This launch from the EHR belongs to {user}: sign in as {user} to go on."
        )),
        (None, None) if again => Some(
            "The app asks you to sign in again before it goes on (a fresh sign-in).".to_string(),
        ),
        _ => None,
    };
    // An EHR launch names who must sign in; the field is filled in (and still editable:
    // another name just fails the launch's check after sign-in, with a page saying so).
    let username = launch_user.unwrap_or_default();
    let page = LoginPage {
        title: "Sign in",
        user: None,
        csrf: &session.csrf,
        next: &next,
        username,
        error: None,
        notice: notice.as_deref(),
    };
    with_cookie(html(StatusCode::OK, &page), cookie)
}

/// POST /login: check the password, start a fresh signed-in session, go to `next`.
/// Too many failures pause sign-in for the name or address (see `throttle`).
pub async fn submit(
    State(state): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // Signed in already, or an anonymous browser whose nonce the CSRF token is made from.
    let Some(session) = state.sessions.visitor(&headers).await else {
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
    let (next, _) = next::or_default(&state.base_url, field(&pairs, "next"));
    let username = field(&pairs, "username")
        .unwrap_or_default()
        .trim()
        .to_string();
    let password = field(&pairs, "password").unwrap_or_default().to_string();
    let form_again = |status: StatusCode, message: &str| {
        let page = LoginPage {
            title: "Sign in",
            user: None,
            csrf: &session.csrf,
            next: &next,
            username: &username,
            error: Some(message),
            notice: None,
        };
        html(status, &page)
    };
    let address = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let attempt = match state.throttle.begin(&username, address).await {
        Ok(attempt) => attempt,
        // Paused: the password is not even looked at, so the right one fails too.
        Err(paused) => {
            return paused_page(
                form_again(StatusCode::TOO_MANY_REQUESTS, &paused.message()),
                paused,
            )
        }
    };
    let verified = state.users.verify_login(&username, &password).await;
    if !verified {
        let message = match attempt.failed().await {
            Standing::Paused(paused) => format!("{BAD_LOGIN} {}", paused.message()),
            Standing::Left(left @ 1..=2) => {
                let tries = if left == 1 { "try" } else { "tries" };
                let minutes = (state.throttle.user_pause() + 59) / 60;
                format!("{BAD_LOGIN} {left} more failed {tries} and sign-in for this user pauses for {minutes} minutes.")
            }
            Standing::Left(_) => BAD_LOGIN.to_string(),
        };
        return form_again(StatusCode::OK, &message);
    }
    attempt.succeeded().await;
    // A new session id at sign-in, so an id planted before cannot be ridden after.
    // (An anonymous browser's nonce names no stored session: nothing to end.)
    let ended = match session.username {
        Some(_) => state.sessions.end(&session.id).await,
        None => Ok(()),
    };
    let started = match ended {
        Ok(()) => state.sessions.start(&username).await,
        Err(e) => Err(e),
    };
    let signed_in = match started {
        Ok(signed_in) => signed_in,
        Err(e) => return store_trouble(&e),
    };
    see_other(&next, Some(set_cookie(&signed_in, state.secure_cookies())))
}

/// A 503 for a store that did not answer: nothing was changed, trying again may work.
fn store_trouble(e: &crate::server::store::StoreError) -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        &e.to_string(),
        "The server's store did not answer.",
    )
}

/// A 429 that says when to come back.
fn paused_page(mut response: Response, paused: Paused) -> Response {
    if let Ok(value) = HeaderValue::from_str(&paused.retry_after().to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// GET /logout: a confirmation form (signing out changes state, so it is a POST).
pub async fn show_logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match state.sessions.current(&headers).await {
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
    let Some(session) = state.sessions.current(&headers).await else {
        return see_other("/login", Some(clear_cookie(state.secure_cookies())));
    };
    let pairs = form_pairs(&body.unwrap_or_default());
    if !session.csrf_matches(field(&pairs, "csrf")) {
        return csrf_failure();
    }
    if let Err(e) = state.sessions.end(&session.id).await {
        return store_trouble(&e);
    }
    see_other("/login", Some(clear_cookie(state.secure_cookies())))
}
