//! POST /oauth/token: the authorization_code and refresh_token grants (RFC 6749, RFC 7636).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::server::clock;
use crate::server::error::OAuthError;
use crate::server::oidc::id_token;
use crate::server::scopes::Scopes;
use crate::server::simulate;
use crate::server::state::AppState;
use crate::server::store::{Approval, Client, Redeemed, Token};

use super::client_auth::{authenticate, Method};
use super::form::Form;
use super::grants::{Issued, TokenRequest};
use super::{client_credentials, launch_context};
use super::{sha256, store_failed};

fn invalid_grant(description: impl Into<String>) -> OAuthError {
    OAuthError::bad_request("invalid_grant", description)
}

/// Exchange a grant for tokens.
pub async fn token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let form = Form::parse(body)?;
    let grant_type = form.require(
        "grant_type",
        "use grant_type=authorization_code, refresh_token or client_credentials",
    )?;
    if !matches!(
        grant_type,
        "authorization_code" | "refresh_token" | "client_credentials"
    ) {
        return Err(OAuthError::bad_request(
            "unsupported_grant_type",
            format!("grant_type {grant_type:?} is not supported; use authorization_code, refresh_token or client_credentials"),
        ));
    }
    let (client, method) = authenticate(&state, &headers, &form, "/oauth/token").await?;
    if !client.grant_types.iter().any(|g| g == grant_type) {
        return Err(OAuthError::bad_request(
            "unauthorized_client",
            format!("this client did not register the {grant_type} grant"),
        ));
    }
    // The client is known for sure now: one of its simulated faults may answer.
    let request = simulate::Request::Token {
        grant_type,
        assertion: matches!(method, Method::Assertion),
    };
    let simulated = simulate::take(&state, &client.client_id, request)
        .await
        .map_err(store_failed)?;
    if let Some(answer) = simulated.and_then(|taken| simulate::token_answer(taken.fault)) {
        return Err(answer);
    }
    if grant_type == "client_credentials" {
        return client_credentials::grant(&state, &client, &form).await;
    }
    let (issued, approval, id_token) = match grant_type {
        "authorization_code" => exchange_code(&state, &client, &form).await?,
        _ => refresh(&state, &client, &form).await?,
    };
    let token = &issued.record;
    let scopes = Scopes::parse(&token.scope).unwrap_or_default();
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": (token.access_expires - token.issued_at).max(0),
        "scope": token.scope,
    });
    if let Some(refresh) = &issued.refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    if let Some(signed) = id_token {
        body["id_token"] = json!(signed);
    }
    let with_patient = scopes.has("launch")
        || scopes.has("launch/patient")
        || scopes.resource_scopes().next().is_some();
    if with_patient {
        body["patient"] = json!(approval.patient_id);
    }
    launch_context::add(&state, &scopes, token.context.as_ref(), &mut body);
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    )
        .into_response())
}

/// The id_token for a token pair about to be saved, when its scope asks for one. Signed
/// before anything is saved: a key that cannot be had (the store is unreachable for the
/// first one) fails the request as a retryable 503 and leaves the code or refresh token
/// unspent, rather than hand out tokens without the identity the app asked for.
async fn id_token_for(
    state: &AppState,
    approval: &Approval,
    issued: &Issued,
    nonce: Option<&str>,
) -> Result<Option<String>, OAuthError> {
    let token = &issued.record;
    if !id_token::is_wanted(&Scopes::parse(&token.scope).unwrap_or_default()) {
        return Ok(None);
    }
    let claims = id_token::claims(state, approval, token, &issued.access_token, nonce);
    id_token::sign(state, &claims)
        .await
        .map(Some)
        .map_err(|e| OAuthError {
            status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
            code: "temporarily_unavailable",
            description: e.to_string(),
            www_authenticate: None,
        })
}

/// The approval behind a grant, if it is this client's: a grant issued to another client
/// is refused before anything about it changes.
async fn own_approval(
    state: &AppState,
    client: &Client,
    approval_id: &str,
) -> Result<Approval, OAuthError> {
    let approval = state
        .store
        .approval(approval_id)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| {
            invalid_grant("the participant has revoked this approval; ask them to authorize again")
        })?;
    if approval.client_id != client.client_id {
        return Err(invalid_grant("this grant was issued to another client"));
    }
    Ok(approval)
}

fn still_live(approval: &Approval) -> Result<(), OAuthError> {
    if approval.expires <= clock::now() {
        return Err(invalid_grant(
            "the participant's approval has expired; ask them to authorize again",
        ));
    }
    Ok(())
}

/// A code is looked at before it is spent: the wrong client, redirect_uri or verifier is
/// refused and leaves the code to its owner. Only its own client, proving itself as the
/// exchange would have it (secret, redirect_uri, PKCE verifier), can replay it, and only
/// then are the tokens it issued revoked (RFC 6749 §4.1.2).
async fn exchange_code(
    state: &AppState,
    client: &Client,
    form: &Form,
) -> Result<(Issued, Approval, Option<String>), OAuthError> {
    let code = form.require("code", "send the code from the redirect")?;
    let code_sha256 = sha256(code);
    let unknown = || invalid_grant("the authorization code is unknown");
    let stored = state
        .store
        .code(&code_sha256)
        .await
        .map_err(store_failed)?
        .ok_or_else(unknown)?;
    let record = stored.code;
    let approval = own_approval(state, client, &record.approval_id).await?;
    match form.get("redirect_uri") {
        Some(uri) if uri == record.redirect_uri => {}
        None if !record.redirect_uri_given => {}
        Some(uri) => {
            return Err(invalid_grant(format!(
                "redirect_uri {uri:?} differs from the one in the authorize request"
            )))
        }
        None => {
            return Err(invalid_grant(
                "redirect_uri is missing; repeat the authorize request's redirect_uri",
            ))
        }
    }
    check_pkce(record.code_challenge.as_deref(), form.get("code_verifier"))?;
    if stored.used {
        return Err(replay(state, &code_sha256).await);
    }
    still_live(&approval)?;
    if record.expires <= clock::now() {
        return Err(invalid_grant("the authorization code has expired; codes last a short time, so exchange it right away"));
    }
    let issued = TokenRequest {
        approval_id: &approval.id,
        scope: &record.scope,
        lifetime: state.config.access_lifetime as i64,
        force_refresh: false,
        refresh_allowed: client.grant_types.iter().any(|g| g == "refresh_token"),
        from_code_sha256: Some(code_sha256),
        session_sha256: record.session_sha256,
        auth_time: record.auth_time,
        context: record.context.clone(),
    }
    .build();
    let id_token = id_token_for(state, &approval, &issued, record.nonce.as_deref()).await?;
    match state
        .store
        .redeem_code(&code_sha256, issued.record.clone())
        .await
        .map_err(store_failed)?
    {
        Redeemed::Fresh => Ok((issued, approval, id_token)),
        // Another exchange of the same code won meanwhile.
        Redeemed::Replayed => Err(replay(state, &code_sha256).await),
        Redeemed::Unknown => Err(unknown()),
    }
}

/// A code used twice may have been stolen: revoke what its first use issued.
async fn replay(state: &AppState, code_sha256: &[u8; 32]) -> OAuthError {
    match state.store.revoke_tokens_from_code(code_sha256).await {
        Ok(()) => invalid_grant(
            "the authorization code was already used; the tokens issued for it have been revoked",
        ),
        Err(e) => store_failed(e),
    }
}

/// RFC 7636 S256: BASE64URL(SHA256(verifier)) must equal the challenge.
fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(invalid_grant(
            "code_verifier was sent but the authorize request had no code_challenge",
        )),
        (Some(_), None) => Err(invalid_grant(
            "code_verifier is missing; the authorize request sent a PKCE code_challenge",
        )),
        (Some(challenge), Some(verifier)) => {
            if !is_pkce_value(verifier) {
                return Err(invalid_grant(
                    "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
                ));
            }
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()));
            if bool::from(computed.as_bytes().ct_eq(challenge.as_bytes())) {
                Ok(())
            } else {
                Err(invalid_grant(
                    "code_verifier does not match the code_challenge",
                ))
            }
        }
    }
}

/// RFC 7636 §4.1 syntax, shared by verifiers and S256 challenges.
pub fn is_pkce_value(text: &str) -> bool {
    (43..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

async fn refresh(
    state: &AppState,
    client: &Client,
    form: &Form,
) -> Result<(Issued, Approval, Option<String>), OAuthError> {
    let refresh_token = form.require(
        "refresh_token",
        "send the refresh_token from an earlier token response",
    )?;
    let refresh_sha256 = sha256(refresh_token);
    let old = state
        .store
        .token_by_refresh(&refresh_sha256)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| invalid_grant("the refresh token is unknown, revoked or already used (refresh tokens are rotated)"))?;
    let approval = own_approval(state, client, &old.approval_id).await?;
    still_live(&approval)?;
    if let Some(session) = &old.session_sha256 {
        if !state.sessions.is_signed_in(session).await {
            // The refresh token can never work again: drop it now (the access token lives
            // out its lifetime, then the sweep takes the pair) rather than keep it for the
            // approval's whole life.
            let spent = Token {
                refresh_sha256: None,
                ..old.clone()
            };
            state
                .store
                .rotate_token(&refresh_sha256, spent)
                .await
                .map_err(store_failed)?;
            return Err(invalid_grant(
                "online access ended when the participant signed out here (or their sign-in \
                 expired); the grant had online_access without offline_access, so ask them \
                 to authorize again",
            ));
        }
    }
    let scope = match form.get("scope") {
        None => old.scope.clone(),
        // The refresh token's own scope is the approval's (RFC 6749 §6 keeps it identical
        // across rotations), so a refresh may narrow the access token from there.
        Some(text) => {
            let wanted = Scopes::parse_request(text)
                .map_err(|e| OAuthError::bad_request("invalid_scope", e.to_string()))?;
            let granted = Scopes::parse(&approval.scope).unwrap_or_default();
            let extra = granted.uncovered(&wanted);
            if !extra.is_empty() {
                return Err(OAuthError::bad_request(
                    "invalid_scope",
                    format!(
                        "{} was not granted; a refresh may only narrow the scope ({})",
                        extra.join(" "),
                        approval.scope
                    ),
                ));
            }
            wanted.to_string()
        }
    };
    let new = TokenRequest {
        approval_id: &approval.id,
        scope: &scope,
        lifetime: state.config.access_lifetime as i64,
        force_refresh: true,
        refresh_allowed: true,
        from_code_sha256: old.from_code_sha256,
        session_sha256: old.session_sha256,
        auth_time: old.auth_time,
        context: old.context.clone(),
    }
    .build();
    let id_token = id_token_for(state, &approval, &new, None).await?;
    if !state
        .store
        .rotate_token(&refresh_sha256, new.record.clone())
        .await
        .map_err(store_failed)?
    {
        return Err(invalid_grant(
            "the refresh token was used concurrently; use the newest one",
        ));
    }
    Ok((new, approval, id_token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(check_pkce(Some(challenge), Some(verifier)).is_ok());
        let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj";
        assert_eq!(
            check_pkce(Some(challenge), Some(wrong)).unwrap_err().code,
            "invalid_grant"
        );
        assert!(check_pkce(Some(challenge), None).is_err());
        assert!(check_pkce(None, Some(verifier)).is_err());
        assert!(check_pkce(Some(challenge), Some("short")).is_err());
    }
}
