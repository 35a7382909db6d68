//! POST /oauth/revoke: RFC 7009 token revocation.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use crate::server::error::OAuthError;
use crate::server::state::AppState;

use super::client_auth::authenticate;
use super::form::Form;
use super::{sha256, store_failed};

/// Revoke an access or refresh token (and its pair) issued to the calling client.
///
/// A token that is unknown, or issued to another client, is answered 200 and left alone:
/// RFC 7009 §2.2 treats invalid tokens as nothing to do, and the answer reveals nothing
/// about other clients' tokens.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let form = Form::parse(body)?;
    let (client, _) = authenticate(&state, &headers, &form, "/oauth/revoke").await?;
    let token = form.require("token", "send the access or refresh token to revoke")?;
    let store = &state.store;
    let hash = sha256(token);
    let found = match store.token_by_access(&hash).await.map_err(store_failed)? {
        Some(t) => Some(t),
        None => store.token_by_refresh(&hash).await.map_err(store_failed)?,
    };
    if let Some(found) = found {
        let owner = store
            .approval(&found.approval_id)
            .await
            .map_err(store_failed)?
            .map(|a| a.client_id);
        if owner.as_deref() == Some(client.client_id.as_str()) {
            store.revoke_token(&hash).await.map_err(store_failed)?;
        }
    }
    Ok(([(header::CACHE_CONTROL, "no-store")], "").into_response())
}
