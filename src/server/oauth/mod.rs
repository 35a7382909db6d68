//! OAuth endpoints: registration (RFC 7591) and the seed's token debug endpoints.

pub mod assertion;
pub mod authorize;
pub mod client_auth;
pub mod client_credentials;
pub mod client_keys;
mod debug;
pub mod debug_gate;
pub mod form;
pub mod grants;
mod introspect;
pub mod jwks_cache;
mod launch_context;
pub mod limits;
pub mod pending;
pub mod prompt;
mod redirect_uris;
pub mod register;
mod revoke;
mod token;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tower_http::cors::{Any, CorsLayer};

use super::error::{method_not_allowed, OAuthError, BODY_LIMIT};
use super::no_store::no_store;
use super::simulate;
use super::state::AppState;

/// Routes under `/oauth`, none of whose answers may be cached (they carry tokens, client
/// secrets, codes in redirects, or errors about them).
pub fn routes() -> Router<Arc<AppState>> {
    // What a browser app calls with fetch (a public client's code exchange and refresh,
    // introspection, revocation): CORS open, as SMART App Launch asks of the token
    // endpoint. No cookies are read there, so no credentials are allowed either.
    // Registration stays without CORS: its JSON body then needs a preflight no other site's
    // page is granted (see the README's "JSON bodies").
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            header::RETRY_AFTER,
            simulate::HEADER,
        ]);
    let from_browser_apps = Router::new()
        .route("/oauth/token", post(token::token))
        .route("/oauth/introspect", post(introspect::introspect))
        .route("/oauth/revoke", post(revoke::revoke))
        // Set under the CORS layer, or the router-wide 405 fallback answers preflights.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(cors);
    let routes = Router::new()
        .route("/oauth/register", post(register::register))
        .route(
            "/oauth/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/oauth/debug/token", post(debug::token))
        .route("/oauth/debug/introspect", get(debug::introspect))
        .route(
            "/oauth/debug/launch",
            post(crate::server::launch::debug::launch),
        )
        .route(
            "/oauth/debug/simulate",
            get(simulate::list)
                .post(simulate::set)
                .delete(simulate::clear),
        )
        // Set before the layers: the router-wide 405 fallback does not reach layered routes.
        .method_not_allowed_fallback(method_not_allowed)
        .merge(from_browser_apps);
    no_store(routes)
}

/// A store failure, as the 503 a client can retry.
pub fn store_failed(e: crate::server::store::StoreError) -> OAuthError {
    OAuthError::bad_request("temporarily_unavailable", e.to_string())
        .with_status(StatusCode::SERVICE_UNAVAILABLE)
}

/// A fresh random identifier or secret (UUIDv4: 122 random bits).
pub fn new_secret() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// SHA-256 of a secret, which is all the store keeps of client secrets.
pub fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The request body as a JSON object, or an error saying what to fix: 415 unless the
/// request says `Content-Type: application/json`, 413 over the body limit, 400 otherwise.
pub fn json_object(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, OAuthError> {
    require_json(headers)?;
    let bytes = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            OAuthError::invalid_request(format!(
                "the request body is larger than {} KiB",
                BODY_LIMIT / 1024
            ))
            .with_status(status)
        } else {
            OAuthError::invalid_request(format!("the request body could not be read: {rejection}"))
        }
    })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(OAuthError::invalid_request(
            "the body must be a JSON object, e.g. {\"client_name\": \"My App\", ...}",
        )),
        Err(e) => Err(OAuthError::invalid_request(format!(
            "the body is not valid JSON ({e}); send a JSON object with Content-Type: application/json"
        ))),
    }
}

/// `Content-Type: application/json`, with at most a `charset=utf-8` parameter (any case);
/// anything else, `application/*+json` included, or none at all, is 415. A browser cannot
/// send this type to another site without a CORS preflight, which these endpoints refuse.
pub fn require_json(headers: &HeaderMap) -> Result<(), OAuthError> {
    let unsupported = |what: String| {
        OAuthError::invalid_request(format!(
            "{what}; this endpoint takes a JSON object sent with Content-Type: application/json"
        ))
        .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
    };
    let values: Vec<_> = headers.get_all(header::CONTENT_TYPE).iter().collect();
    let value = match values.as_slice() {
        [] => return Err(unsupported("the request has no Content-Type".into())),
        [one] => *one,
        _ => {
            return Err(unsupported(
                "the request has several Content-Type headers".into(),
            ))
        }
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    let media: mime::Mime = text
        .parse()
        .map_err(|_| unsupported(format!("Content-Type {text:?} is not a media type")))?;
    if media.essence_str() != "application/json" {
        return Err(unsupported(format!(
            "Content-Type {:?} is not application/json",
            media.essence_str()
        )));
    }
    for (name, value) in media.params() {
        if name != mime::CHARSET || !value.as_str().eq_ignore_ascii_case("utf-8") {
            return Err(unsupported(format!(
                "the Content-Type parameter {name}={value} is not accepted (JSON is UTF-8; only charset=utf-8 may be given)"
            )));
        }
    }
    Ok(())
}
