//! OpenID Connect: signing keys, id_tokens, and the discovery document and JWK Set a
//! relying party verifies them with. The issuer is the server's base URL.

pub mod id_token;
pub mod keys;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::server::discovery::{
    GRANT_TYPES_SUPPORTED, SCOPES_SUPPORTED, TOKEN_ENDPOINT_AUTH_METHODS,
};
use crate::server::error::OAuthError;
use crate::server::oauth::client_keys::ALGORITHMS;
use crate::server::state::AppState;

/// Where the JWK Set is served.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Claims an id_token may carry.
pub const CLAIMS_SUPPORTED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "fhirUser",
    "profile",
    "name",
    "at_hash",
];

/// GET /.well-known/openid-configuration (OpenID Connect Discovery 1.0 §3).
pub async fn openid_configuration(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(configuration(&state))
}

/// The OpenID Provider metadata.
pub fn configuration(state: &AppState) -> Value {
    json!({
        "issuer": state.base_url,
        "authorization_endpoint": state.url("/oauth/authorize"),
        "token_endpoint": state.url("/oauth/token"),
        "jwks_uri": state.url(JWKS_PATH),
        "registration_endpoint": state.url("/oauth/register"),
        "introspection_endpoint": state.url("/oauth/introspect"),
        "revocation_endpoint": state.url("/oauth/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANT_TYPES_SUPPORTED,
        "token_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": SCOPES_SUPPORTED,
        "claims_supported": CLAIMS_SUPPORTED,
        "token_endpoint_auth_methods_supported": TOKEN_ENDPOINT_AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    })
}

/// GET /.well-known/jwks.json: the public halves of every published signing key.
pub async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    match state.keys.jwks(state.store.as_ref()).await {
        Ok(set) => Json(set).into_response(),
        Err(e) => OAuthError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "temporarily_unavailable",
            description: e.to_string(),
            www_authenticate: None,
        }
        .into_response(),
    }
}
