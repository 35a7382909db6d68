//! SMART discovery: `/.well-known/smart-configuration` at the root and under the FHIR base.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, Method};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tower_http::cors::{Any, CorsLayer};

use super::error::method_not_allowed;
use super::launch;
use super::oauth::client_keys::ALGORITHMS;
use super::oidc;
use super::state::AppState;

/// The configuration field that says the server is smartnb (its value: the version), so
/// a client knows the sign-in and consent pages are smartnb's own.
pub const SMARTNB_FIELD: &str = "smartnb_version";

/// SMART capabilities that work on this server, and only those.
pub const CAPABILITIES: &[&str] = &[
    "launch-ehr",
    "launch-standalone",
    "authorize-post",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-banner",
    "context-style",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "context-standalone-encounter",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
    "sso-openid-connect",
];

/// Scopes a client may register for and request, as listed in discovery: the identity
/// and access scopes, and the resource scopes as wildcards (any served type may stand for
/// the `*`, v1 `.read` or v2 `.rs`, with `?param=value` filters in v2).
pub const SCOPES_SUPPORTED: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "launch/encounter",
    "online_access",
    "offline_access",
    "patient/*.read",
    "patient/*.rs",
    "user/*.read",
    "user/*.rs",
    "system/*.read",
    "system/*.rs",
];

/// The grants the token endpoint offers.
pub const GRANT_TYPES_SUPPORTED: &[&str] =
    &["authorization_code", "refresh_token", "client_credentials"];

/// How clients may authenticate at the token endpoint.
pub const TOKEN_ENDPOINT_AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "none",
    "private_key_jwt",
];

/// The discovery routes, with open CORS.
pub fn routes() -> Router<Arc<AppState>> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::OPTIONS])
        .allow_headers([header::ACCEPT]);
    Router::new()
        .route("/.well-known/smart-configuration", get(smart_configuration))
        .route(
            "/api/fhir/.well-known/smart-configuration",
            get(smart_configuration),
        )
        .route(
            "/.well-known/openid-configuration",
            get(oidc::openid_configuration),
        )
        .route(oidc::JWKS_PATH, get(oidc::jwks))
        .route(launch::style::STYLE_PATH, get(launch::style::style))
        // Set here, under the CORS layer: the router-wide 405 fallback would replace the
        // layered one and answer browsers' OPTIONS preflights with 405.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(cors)
}

async fn smart_configuration(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    Json(configuration(&state))
}

/// The SMART App Launch 2.2 configuration document.
pub fn configuration(state: &AppState) -> Value {
    json!({
        "issuer": state.base_url,
        "jwks_uri": state.url(oidc::JWKS_PATH),
        "authorization_endpoint": state.url("/oauth/authorize"),
        "token_endpoint": state.url("/oauth/token"),
        "token_endpoint_auth_methods_supported": TOKEN_ENDPOINT_AUTH_METHODS,
        "registration_endpoint": state.url("/oauth/register"),
        "introspection_endpoint": state.url("/oauth/introspect"),
        "revocation_endpoint": state.url("/oauth/revoke"),
        "management_endpoint": state.url("/apps"),
        "grant_types_supported": GRANT_TYPES_SUPPORTED,
        "token_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        "response_types_supported": ["code"],
        "scopes_supported": SCOPES_SUPPORTED,
        "code_challenge_methods_supported": ["S256"],
        "capabilities": CAPABILITIES,
        SMARTNB_FIELD: env!("CARGO_PKG_VERSION"),
    })
}
