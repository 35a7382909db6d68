//! /apps: the apps a participant has approved, each revocable.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::templates::{ApprovalRow, AppsPage};
use super::words;
use super::{csrf_failure, error_page, field, form_pairs, html, see_other};
use crate::server::state::AppState;

fn store_trouble(e: impl std::fmt::Display) -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        &e.to_string(),
        "The server's store did not answer.",
    )
}

/// GET /apps.
pub async fn show(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some((session, username)) = state
        .sessions
        .current(&headers)
        .and_then(|s| s.username.clone().map(|u| (s, u)))
    else {
        return see_other("/login?next=/apps", None);
    };
    let approvals = match state.store.approvals_for_user(&username).await {
        Ok(list) => list,
        Err(e) => return store_trouble(e),
    };
    let mut rows = Vec::new();
    for a in approvals {
        let app_name = match state.store.client(&a.client_id).await {
            Ok(Some(c)) => c.client_name,
            Ok(None) => a.client_id.clone(),
            Err(e) => return store_trouble(e),
        };
        let fhir_user = state
            .users
            .get(&a.username)
            .and_then(|u| u.fhir_user(&a.patient_id));
        rows.push(ApprovalRow {
            identity: words::knows_you(&a.scope, fhir_user.as_deref()),
            patient_name: state
                .data
                .patient_name(&a.patient_id)
                .unwrap_or_else(|| a.patient_id.clone()),
            until: crate::server::clock::http_date(a.expires),
            scope: a.scope,
            app_name,
            id: a.id,
        });
    }
    html(
        StatusCode::OK,
        &AppsPage {
            title: "Your apps",
            user: Some(&username),
            csrf: &session.csrf,
            approvals: rows,
        },
    )
}

/// POST /apps/revoke: end one of the signed-in user's own approvals and its tokens.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(session) = state.sessions.current(&headers) else {
        return csrf_failure();
    };
    let pairs = form_pairs(&body.unwrap_or_default());
    if !session.csrf_matches(field(&pairs, "csrf")) {
        return csrf_failure();
    }
    let Some(username) = session.username else {
        return see_other("/login?next=/apps", None);
    };
    let id = field(&pairs, "approval").unwrap_or_default();
    match state.store.approval(id).await {
        Ok(Some(a)) if a.username == username => {
            if let Err(e) = state.store.delete_approval(id).await {
                return store_trouble(e);
            }
            see_other("/apps", None)
        }
        Ok(_) => error_page(
            StatusCode::NOT_FOUND,
            "No such approval",
            "That approval is not one of yours, or it was already revoked.",
            "Open Your apps to see what you share.",
        ),
        Err(e) => store_trouble(e),
    }
}
