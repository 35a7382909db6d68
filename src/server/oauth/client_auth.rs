//! Client authentication at the token, introspection and revocation endpoints:
//! HTTP Basic, client_secret_post, or a public client's bare client_id.

use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::server::error::OAuthError;
use crate::server::state::AppState;
use crate::server::store::Client;

use super::form::Form;
use super::{sha256, store_failed};

/// How the client proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `Authorization: Basic` with id and secret.
    Basic,
    /// `client_id` and `client_secret` in the body.
    Post,
    /// A public client: `client_id` only.
    Public,
}

fn invalid_client(description: impl Into<String>, basic_tried: bool) -> OAuthError {
    OAuthError {
        status: StatusCode::UNAUTHORIZED,
        code: "invalid_client",
        description: description.into(),
        www_authenticate: basic_tried.then_some("Basic realm=\"smartnb\", charset=\"UTF-8\""),
    }
}

/// Who is calling, or the `invalid_client`/`invalid_request` error to answer with.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
) -> Result<(Client, Method), OAuthError> {
    let basic = basic_credentials(headers)?;
    let basic_tried = basic.is_some();
    let (client_id, secret, method) = match basic {
        Some((id, secret)) => {
            if form.get("client_secret").is_some() {
                return Err(OAuthError::invalid_request(
                    "the client authenticated twice (Basic and client_secret); use one method",
                ));
            }
            if form.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the one in the Authorization header",
                ));
            }
            (id, Some(secret), Method::Basic)
        }
        None => match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => (id.to_string(), Some(secret.to_string()), Method::Post),
            (Some(id), None) => (id.to_string(), None, Method::Public),
            _ => {
                return Err(invalid_client(
                    "no client authentication: send HTTP Basic with client_id and client_secret, or client_id (and client_secret) in the body",
                    false,
                ))
            }
        },
    };
    let client = state
        .store
        .client(&client_id)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| {
            invalid_client(
                format!("no client {client_id:?} is registered"),
                basic_tried,
            )
        })?;
    match (&client.secret_sha256, secret) {
        (Some(expected), Some(given)) => {
            if bool::from(sha256(&given).ct_eq(expected)) {
                Ok((client, method))
            } else {
                Err(invalid_client("the client secret is wrong", basic_tried))
            }
        }
        (Some(_), None) => Err(invalid_client(
            "this is a confidential client: authenticate with its client_secret (HTTP Basic or client_secret_post)",
            basic_tried,
        )),
        (None, Some(_)) => Err(invalid_client(
            "this is a public client and has no secret; send only client_id (and the PKCE code_verifier)",
            basic_tried,
        )),
        (None, None) => Ok((client, Method::Public)),
    }
}

/// `(client_id, client_secret)` from `Authorization: Basic`, form-urlencoding undone
/// (RFC 6749 §2.3.1); `None` when there is no Basic header.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || {
        invalid_client(
            "the Authorization header is not valid Basic credentials: base64 of client_id:client_secret",
            true,
        )
    };
    let text = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let undo = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((undo(id), undo(secret))))
}
