//! /apps: the apps a participant has approved, one row per grant (app, patient and scopes:
//! a grant approved again, or minted again and again by the debug endpoint, is one row),
//! each revocable, with a confirmation of what a revoke ended.

use std::collections::HashMap;
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
use crate::server::store::Approval;

fn store_trouble(e: impl std::fmt::Display) -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        &e.to_string(),
        "The server's store did not answer.",
    )
}

/// Approvals of one app, patient and scope are one grant on the page.
fn same_grant(a: &Approval, b: &Approval) -> bool {
    a.client_id == b.client_id && a.patient_id == b.patient_id && a.scope == b.scope
}

/// The approvals grouped by grant, in the order their newest member comes (newest first);
/// linear in the approvals, however many grants a shared demo account has.
fn grants(approvals: Vec<Approval>) -> Vec<Vec<Approval>> {
    let mut groups: Vec<Vec<Approval>> = Vec::new();
    let mut index: HashMap<(String, String, String), usize> = HashMap::new();
    for approval in approvals {
        let key = (
            approval.client_id.clone(),
            approval.patient_id.clone(),
            approval.scope.clone(),
        );
        match index.get(&key) {
            Some(&at) => groups[at].push(approval),
            None => {
                index.insert(key, groups.len());
                groups.push(vec![approval]);
            }
        }
    }
    groups
}

/// An app's name, or its client_id once it is gone.
async fn app_name(state: &AppState, client_id: &str) -> Result<String, Response> {
    match state.store.client(client_id).await {
        Ok(Some(c)) => Ok(c.client_name),
        Ok(None) => Ok(client_id.to_string()),
        Err(e) => Err(store_trouble(e)),
    }
}

fn patient_name(state: &AppState, patient_id: &str) -> String {
    state
        .data
        .patient_name(patient_id)
        .unwrap_or_else(|| patient_id.to_string())
}

/// GET /apps.
pub async fn show(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some((session, username)) = state
        .sessions
        .current(&headers)
        .await
        .and_then(|s| s.username.clone().map(|u| (s, u)))
    else {
        return see_other("/login?next=/apps", None);
    };
    let approvals = match state.store.approvals_for_user(&username).await {
        Ok(list) => list,
        Err(e) => return store_trouble(e),
    };
    let mut rows = Vec::new();
    for group in grants(approvals) {
        let newest = &group[0];
        let app_name = match app_name(&state, &newest.client_id).await {
            Ok(name) => name,
            Err(page) => return page,
        };
        let fhir_user = state
            .users
            .get(&newest.username)
            .and_then(|u| u.fhir_user(&newest.patient_id));
        let expires = group
            .iter()
            .map(|a| a.expires)
            .max()
            .unwrap_or(newest.expires);
        rows.push(ApprovalRow {
            identity: words::knows_you(&newest.scope, fhir_user.as_deref()),
            patient_name: patient_name(&state, &newest.patient_id),
            until: crate::server::clock::http_date(expires),
            scope: newest.scope.clone(),
            app_name,
            approvals: group.len(),
            id: newest.id.clone(),
        });
    }
    let notice = state.sessions.take_notice(&session.id).await;
    html(
        StatusCode::OK,
        &AppsPage {
            title: "Your apps",
            user: Some(&username),
            csrf: &session.csrf,
            notice: notice.as_deref(),
            approvals: rows,
        },
    )
}

/// POST /apps/revoke: end one of the signed-in user's own grants (every approval of that
/// app, patient and scope) and its tokens, then back to /apps with a confirmation.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(session) = state.sessions.current(&headers).await else {
        return csrf_failure();
    };
    let pairs = form_pairs(&body.unwrap_or_default());
    if !session.csrf_matches(field(&pairs, "csrf")) {
        return csrf_failure();
    }
    let Some(username) = session.username.clone() else {
        return see_other("/login?next=/apps", None);
    };
    let id = field(&pairs, "approval").unwrap_or_default();
    let chosen = match state.store.approval(id).await {
        Ok(Some(a)) if a.username == username => a,
        Ok(_) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "No such approval",
                "That approval is not one of yours, or it was already revoked.",
                "Open Your apps to see what you share.",
            )
        }
        Err(e) => return store_trouble(e),
    };
    let theirs = match state.store.approvals_for_user(&username).await {
        Ok(list) => list,
        Err(e) => return store_trouble(e),
    };
    let mut ended = 0;
    for approval in theirs.iter().filter(|a| same_grant(a, &chosen)) {
        if let Err(e) = state.store.delete_approval(&approval.id).await {
            return store_trouble(e);
        }
        ended += 1;
    }
    let app = match app_name(&state, &chosen.client_id).await {
        Ok(name) => name,
        Err(page) => return page,
    };
    let times = if ended > 1 {
        format!(" (granted {ended} times)")
    } else {
        String::new()
    };
    state.sessions.set_notice(
        &session.id,
        format!(
            "Revoked: {app} no longer has access to {}'s records{times}; the tokens it was given for them have stopped working.",
            patient_name(&state, &chosen.patient_id)
        ),
    )
    .await;
    see_other("/apps", None)
}
