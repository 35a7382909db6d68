//! Client authentication at the token, introspection and revocation endpoints:
//! HTTP Basic, client_secret_post, or a public client's bare client_id.

use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine;
use percent_encoding::percent_decode_str;
use subtle::ConstantTimeEq;

use crate::server::error::OAuthError;
use crate::server::request_log;
use crate::server::state::AppState;
use crate::server::store::Client;

use super::assertion;
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
    /// A signed client assertion (`private_key_jwt`).
    Assertion,
}

fn invalid_client(description: impl Into<String>, basic_tried: bool) -> OAuthError {
    OAuthError {
        status: StatusCode::UNAUTHORIZED,
        code: "invalid_client",
        description: description.into(),
        www_authenticate: basic_tried.then_some("Basic realm=\"smartnb\", charset=\"UTF-8\""),
    }
}

/// Who is calling at the endpoint `path` (e.g. `/oauth/token`), or the
/// `invalid_client`/`invalid_request` error to answer with.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
    path: &str,
) -> Result<(Client, Method), OAuthError> {
    let basic = basic_credentials(headers)?;
    let basic_tried = basic.is_some();
    if assertion::is_present(form) {
        if basic_tried {
            return Err(OAuthError::invalid_request(
                "the client authenticated twice (HTTP Basic and client_assertion); use one",
            ));
        }
        let client = assertion::authenticate(state, form, &state.url(path)).await?;
        request_log::note_client(&client.client_id);
        return Ok((client, Method::Assertion));
    }
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
                    "no client authentication: send HTTP Basic with client_id and client_secret, client_id (and client_secret) in the body, or client_assertion_type and client_assertion (private_key_jwt)",
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
    request_log::note_client(&client.client_id);
    if client.token_endpoint_auth_method == "private_key_jwt" {
        return Err(invalid_client(
            format!(
                "client {} registered private_key_jwt: authenticate with client_assertion_type {} and a client_assertion signed by its key, not a secret or a bare client_id",
                client.client_id,
                assertion::JWT_BEARER
            ),
            basic_tried,
        ));
    }
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

/// `(client_id, client_secret)` from `Authorization: Basic` (RFC 6749 §2.3.1): base64 of
/// `id:secret`, split at the first `:`, then each whole part percent-decoded and nothing
/// else: `&` and `=` are ordinary characters, and `+` stays `+` (clients that do not encode,
/// as most do not, must not see a `+` in a secret turned into a space). `None` when there is
/// no Basic header.
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
    let not_utf8 = |what: &str| {
        invalid_client(
            format!("the Basic credentials' {what} is not UTF-8 once decoded; percent-encode the UTF-8 bytes of client_id and client_secret"),
            true,
        )
    };
    let decoded = String::from_utf8(decoded).map_err(|_| not_utf8("text"))?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let undo = |part: &str, what: &str| {
        percent_decode_str(part)
            .decode_utf8()
            .map(|text| text.into_owned())
            .map_err(|_| not_utf8(what))
    };
    Ok(Some((
        undo(id, "client_id")?,
        undo(secret, "client_secret")?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &[u8]) -> Result<Option<(String, String)>, OAuthError> {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        basic_credentials(&headers)
    }

    fn pair(id: &str, secret: &str) -> Option<(String, String)> {
        Some((id.to_string(), secret.to_string()))
    }

    #[test]
    fn each_whole_part_is_percent_decoded_and_nothing_else() {
        assert_eq!(
            basic(b"id:SECRET&anything").unwrap(),
            pair("id", "SECRET&anything")
        );
        assert_eq!(basic(b"id:SECRET%26x").unwrap(), pair("id", "SECRET&x"));
        assert_eq!(basic(b"my%3Aid:a%3Ab%25c").unwrap(), pair("my:id", "a:b%c"));
        assert_eq!(basic(b"id:a=b:c").unwrap(), pair("id", "a=b:c"));
        assert_eq!(basic(b"id:a+b").unwrap(), pair("id", "a+b"));
        assert_eq!(basic(b"id:%zz%").unwrap(), pair("id", "%zz%"));
        assert_eq!(
            basic("id:caf%C3%A9".as_bytes()).unwrap(),
            pair("id", "caf\u{e9}")
        );
    }

    #[test]
    fn invalid_utf8_is_invalid_client_saying_so() {
        for raw in [&b"id:%FF%FE"[..], b"%C3:secret", b"id:\xff"] {
            let error = basic(raw).unwrap_err();
            assert_eq!(error.code, "invalid_client");
            assert_eq!(error.status, StatusCode::UNAUTHORIZED);
            assert!(
                error.description.contains("not UTF-8"),
                "{}",
                error.description
            );
        }
    }
}
