//! `grant_type=client_credentials` (SMART Backend Services): a backend client that proved
//! itself with an assertion gets a short-lived token of `system/` scopes, no refresh token,
//! no patient.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::server::clock;
use crate::server::error::OAuthError;
use crate::server::scopes::{Context, Scopes};
use crate::server::state::AppState;
use crate::server::store::{Approval, Client};

use super::form::Form;
use super::grants::{self, TokenRequest};
use super::{new_secret, store_failed};

/// The longest a system token lives (SMART Backend Services: five minutes at most).
pub const MAX_SYSTEM_TOKEN_LIFETIME: u64 = 300;

fn invalid_scope(description: impl Into<String>) -> OAuthError {
    OAuthError::bad_request("invalid_scope", description)
}

/// Issue a system token for the scope asked, which must be `system/` scopes the client
/// registered.
pub async fn grant(state: &AppState, client: &Client, form: &Form) -> Result<Response, OAuthError> {
    let text = form.get("scope").map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return Err(invalid_scope(format!(
            "scope is required for client_credentials; ask for system/ scopes among the registered ones ({})",
            client.scope
        )));
    }
    let wanted = Scopes::parse_request(text).map_err(|e| invalid_scope(e.to_string()))?;
    if let Some(other) = text.split_whitespace().find(|t| !t.starts_with("system/")) {
        return Err(invalid_scope(format!(
            "{other} is not a system/ scope; a backend service has no patient or user, so ask for system/ scopes only"
        )));
    }
    if !wanted
        .resource_scopes()
        .any(|s| s.context == Context::System)
    {
        return Err(invalid_scope(
            "ask for at least one system/ scope, e.g. system/Observation.rs",
        ));
    }
    let registered = Scopes::parse(&client.scope).unwrap_or_default();
    let extra = registered.uncovered(&wanted);
    if !extra.is_empty() {
        return Err(invalid_scope(format!(
            "{} not among the client's registered scopes ({})",
            extra.join(" "),
            client.scope
        )));
    }
    let lifetime = i64::try_from(
        state
            .config
            .system_token_lifetime
            .min(MAX_SYSTEM_TOKEN_LIFETIME),
    )
    .unwrap_or(300);
    let now = clock::now();
    // The grant lasts as long as its one token: both go at the same sweep.
    let approval = Approval {
        id: new_secret(),
        client_id: client.client_id.clone(),
        username: String::new(),
        patient_id: String::new(),
        scope: wanted.to_string(),
        expires: now.saturating_add(lifetime),
        created: now,
    };
    state
        .store
        .insert_approval(approval.clone())
        .await
        .map_err(store_failed)?;
    let issued = grants::issue(
        state,
        TokenRequest {
            approval_id: &approval.id,
            scope: &approval.scope,
            lifetime,
            force_refresh: false,
            refresh_allowed: false,
            from_code_sha256: None,
            session_sha256: None,
            auth_time: None,
            context: None,
        },
    )
    .await?;
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(json!({
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": approval.scope,
        })),
    )
        .into_response())
}
