//! The seed server's token debug endpoints: mint a token for a user without the browser
//! dance, and look any token up. For development only: `debug_gate` decides who reaches them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use crate::server::clock;
use crate::server::error::OAuthError;
use crate::server::oidc::id_token;
use crate::server::scopes::Scopes;
use crate::server::state::AppState;

use super::{grants, json_object, sha256, store_failed};

/// The default approval lifetime: one year.
pub const APPROVAL_LIFETIME: i64 = 365 * 24 * 3600;
/// The longest access lifetime accepted: ten years.
const MAX_LIFETIME: i64 = 10 * APPROVAL_LIFETIME;
const FIELDS: &[&str] = &[
    "client_id",
    "username",
    "user_name",
    "patient_id",
    "access_lifetime",
    "approval_expires",
    "scope",
];

/// POST /oauth/debug/token: `{"access_token", "refresh_token"}` for a client, user and patient
/// (and `id_token` when the scope asks who the user is).
pub async fn token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, OAuthError> {
    let m = json_object(&headers, body)?;
    if let Some(unknown) = m.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(OAuthError::invalid_request(format!(
            "unknown field {unknown:?}; the fields are {}",
            FIELDS.join(", ")
        )));
    }
    let text = |key: &str| m.get(key).and_then(Value::as_str);
    let client_id = text("client_id").ok_or_else(|| {
        OAuthError::bad_request(
            "no_client",
            "client_id is missing; register a client first and pass its client_id",
        )
    })?;
    let client = state
        .store
        .client(client_id)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| {
            OAuthError::bad_request(
                "no_client",
                format!("no client with id {client_id:?} is registered here"),
            )
        })?;
    crate::server::request_log::note_client(&client.client_id);
    let shipped = state.users.names();
    let username = text("username")
        .or_else(|| text("user_name"))
        .ok_or_else(|| {
            OAuthError::bad_request(
                "no_user",
                format!("username is missing; the shipped users are {shipped}"),
            )
        })?;
    let user = state.users.get(username).ok_or_else(|| {
        OAuthError::bad_request(
            "no_user",
            format!("no user {username:?}; the shipped users are {shipped}"),
        )
    })?;
    let patient_id = text("patient_id").ok_or_else(|| {
        OAuthError::bad_request(
            "no_patient",
            "patient_id is missing, e.g. \"smart-1288992\"",
        )
    })?;
    if state.data.get("Patient", patient_id).is_none() {
        return Err(OAuthError::bad_request(
            "no_patient",
            format!("no patient with id {patient_id:?}"),
        ));
    }
    if !user.has_patient(patient_id) {
        let theirs: Vec<&str> = user.patients.iter().map(|p| p.id.as_str()).collect();
        return Err(OAuthError::bad_request(
            "no_patient_for_user",
            format!(
                "{username} cannot share {patient_id}; their patients are {}",
                theirs.join(", ")
            ),
        ));
    }
    let now = clock::now();
    let lifetime = match m.get("access_lifetime") {
        None | Some(Value::Null) => state.config.access_lifetime as i64,
        Some(v) => whole_seconds(v)
            .filter(|s| (0..=MAX_LIFETIME).contains(s))
            .ok_or_else(|| OAuthError::bad_request("malformed_lifetime", format!("access_lifetime must be a whole number of seconds from 0 to {MAX_LIFETIME}, not {v}")))?,
    };
    let approval_expires = match m.get("approval_expires") {
        None | Some(Value::Null) => now + APPROVAL_LIFETIME,
        Some(v) => unix_time(v).ok_or_else(|| {
            OAuthError::bad_request("malformed_expiration", format!("approval_expires must be a Unix time in seconds (a number, fractions allowed), not {v}"))
        })?,
    };
    let scope = match m.get("scope") {
        None | Some(Value::Null) => client.scope.clone(),
        Some(Value::String(s)) => {
            let wanted = Scopes::parse_request(s)
                .map_err(|e| OAuthError::bad_request("invalid_scope", e.to_string()))?;
            if wanted.is_empty() {
                return Err(OAuthError::bad_request(
                    "invalid_scope",
                    "scope is empty; leave it out to get the client's scopes, or name some",
                ));
            }
            let registered = Scopes::parse(&client.scope).unwrap_or_default();
            let extra = registered.uncovered(&wanted);
            if !extra.is_empty() {
                return Err(OAuthError::bad_request(
                    "invalid_scope",
                    format!(
                        "{} not among the client's registered scopes ({})",
                        extra.join(" "),
                        client.scope
                    ),
                ));
            }
            wanted.to_string()
        }
        Some(_) => {
            return Err(OAuthError::bad_request(
                "invalid_scope",
                "scope must be a space-separated string",
            ))
        }
    };
    let grant = grants::Grant {
        client_id: &client.client_id,
        username: &user.username,
        patient_id,
        scope: &scope,
        expires: approval_expires,
    };
    let approval = grants::approve(&state, grant).await?;
    // No browser session is behind a debug mint: its refresh token is never bound to a
    // sign-in, whatever the scope (online_access included).
    let issued = grants::issue(
        &state,
        grants::TokenRequest {
            approval_id: &approval.id,
            scope: &scope,
            lifetime,
            force_refresh: true,
            refresh_allowed: true,
            from_code_sha256: None,
            session_sha256: None,
            auth_time: None,
            context: None,
        },
    )
    .await?;
    let mut body = json!({
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
    });
    // A scope that asks who the user is (`openid fhirUser`, `openid profile`) gets its
    // id_token here too, as from the token endpoint: granting it without one would claim a
    // scope the answer does not honour. No sign-in is behind a mint, so it has no auth_time.
    if id_token::is_wanted(&Scopes::parse(&scope).unwrap_or_default()) {
        let claims = id_token::claims(
            &state,
            &approval,
            &issued.record,
            &issued.access_token,
            None,
        );
        let signed = id_token::sign(&state, &claims)
            .await
            .map_err(|e| OAuthError {
                status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
                code: "temporarily_unavailable",
                description: e.to_string(),
                www_authenticate: None,
            })?;
        body["id_token"] = json!(signed);
    }
    Ok(Json(body))
}

/// GET /oauth/debug/introspect?token=T: everything known about an access or refresh token.
/// The store keeps only hashes, so of the pair only the token given is shown; the other
/// field is null.
pub async fn introspect(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, OAuthError> {
    let token = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("give the token to look up as ?token=…"))?;
    let store = &state.store;
    let hash = sha256(&token);
    let (found, access, refresh) = match store.token_by_access(&hash).await.map_err(store_failed)? {
        Some(t) => (Some(t), Some(token), None),
        None => (
            store.token_by_refresh(&hash).await.map_err(store_failed)?,
            None,
            Some(token),
        ),
    };
    let no_token = || {
        OAuthError::bad_request("no_token", "no access or refresh token matches; it may never have existed, or was revoked or rotated")
    };
    let found = found.ok_or_else(no_token)?;
    let approval = store
        .approval(&found.approval_id)
        .await
        .map_err(store_failed)?
        .ok_or_else(no_token)?;
    crate::server::request_log::note_client(&approval.client_id);
    let now = clock::now();
    // Who an id_token for this grant names, whether or not the scope asked for one.
    let who = id_token::identity(&state, &approval);
    Ok(Json(json!({
        "access_token": access,
        "refresh_token": refresh,
        "client_id": approval.client_id,
        "username": approval.username,
        "sub": who.sub,
        "fhirUser": who.fhir_user,
        "patient": approval.patient_id,
        "scope": found.scope,
        "security_labels": [],
        "token_type": "Bearer",
        "active": found.access_expires > now && approval.expires > now,
        "access_expires": clock::http_date(found.access_expires),
        "approval_expires": clock::http_date(approval.expires),
    })))
}

fn whole_seconds(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

fn unix_time(v: &Value) -> Option<i64> {
    let seconds = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (seconds.is_finite() && (0.0..=253_402_300_799.0).contains(&seconds))
        .then(|| seconds.floor() as i64)
}
