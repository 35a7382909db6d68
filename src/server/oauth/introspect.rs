//! POST /oauth/introspect: RFC 7662 token introspection.
//!
//! The caller authenticates as a client (Basic or client_secret_post) or with a live bearer
//! token. Either way it only learns about tokens issued to the same client; anything else
//! reads as `{"active": false}`, so introspection cannot be used to probe other apps' tokens.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::server::clock;
use crate::server::error::OAuthError;
use crate::server::oidc::id_token;
use crate::server::scopes::Scopes;
use crate::server::state::AppState;
use crate::server::store::Token;

use super::client_auth::authenticate;
use super::form::Form;
use super::launch_context;
use super::{sha256, store_failed};

/// Describe a token to the client it was issued to.
pub async fn introspect(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let form = Form::parse(body)?;
    let caller = match bearer(&headers) {
        Some(bearer) => client_of_live_token(&state, bearer)
            .await?
            .ok_or_else(|| OAuthError {
                status: StatusCode::UNAUTHORIZED,
                code: "invalid_token",
                description: "the bearer token is unknown or expired".to_string(),
                www_authenticate: Some("Bearer realm=\"smartnb\", error=\"invalid_token\""),
            })?,
        None => {
            authenticate(&state, &headers, &form, "/oauth/introspect")
                .await?
                .0
                .client_id
        }
    };
    let token = form.require("token", "send the access or refresh token to describe")?;
    let description = describe(&state, token).await?;
    let body = match description {
        Some((client_id, body)) if client_id == caller => body,
        _ => json!({"active": false}),
    };
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    )
        .into_response())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let text = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn client_of_live_token(
    state: &AppState,
    access: &str,
) -> Result<Option<String>, OAuthError> {
    let Some(token) = state
        .store
        .token_by_access(&sha256(access))
        .await
        .map_err(store_failed)?
    else {
        return Ok(None);
    };
    Ok(live_description(state, &token, false)
        .await?
        .map(|(client_id, _)| client_id))
}

/// The owning client and the RFC 7662 body for an active token, or `None`.
async fn describe(state: &AppState, token: &str) -> Result<Option<(String, Value)>, OAuthError> {
    let store = &state.store;
    let hash = sha256(token);
    if let Some(found) = store.token_by_access(&hash).await.map_err(store_failed)? {
        return live_description(state, &found, false).await;
    }
    if let Some(found) = store.token_by_refresh(&hash).await.map_err(store_failed)? {
        return live_description(state, &found, true).await;
    }
    Ok(None)
}

async fn live_description(
    state: &AppState,
    token: &Token,
    as_refresh: bool,
) -> Result<Option<(String, Value)>, OAuthError> {
    let Some(approval) = state
        .store
        .approval(&token.approval_id)
        .await
        .map_err(store_failed)?
    else {
        return Ok(None);
    };
    let now = clock::now();
    let exp = if as_refresh {
        approval.expires
    } else {
        token.access_expires.min(approval.expires)
    };
    if exp <= now {
        return Ok(None);
    }
    let scope = if as_refresh {
        &approval.scope
    } else {
        &token.scope
    };
    let mut body = json!({
        "active": true,
        "scope": scope,
        "client_id": approval.client_id,
        "username": approval.username,
        "sub": approval.username,
        "patient": approval.patient_id,
        "token_type": if as_refresh { "refresh_token" } else { "Bearer" },
        "exp": exp,
        "iat": token.issued_at,
        "aud": state.fhir_base(),
        "iss": state.base_url,
    });
    // A backend service's token (client_credentials) has no user and no patient.
    if approval.username.is_empty() {
        if let Some(fields) = body.as_object_mut() {
            for absent in ["username", "sub", "patient"] {
                fields.remove(absent);
            }
        }
    }
    // The same `sub` and `fhirUser` as the id_token issued with it (SMART App Launch 2.2,
    // "Token Introspection").
    let scopes = Scopes::parse(scope).unwrap_or_default();
    if id_token::is_wanted(&scopes) && scopes.has("fhirUser") {
        if let Some(fhir_user) = id_token::identity(state, &approval).fhir_user {
            body["fhirUser"] = json!(fhir_user);
        }
    }
    // The launch context the token response carried (SMART App Launch 2.2 lists
    // `encounter` and `fhirContext` among introspection's context fields).
    if let Some(context) = &token.context {
        launch_context::add_resources(&scopes, context, &mut body);
    }
    Ok(Some((approval.client_id, body)))
}
