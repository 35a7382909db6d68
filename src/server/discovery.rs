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
use super::state::AppState;

/// SMART capabilities that work on this server, and only those.
pub const CAPABILITIES: &[&str] = &[
    "launch-standalone",
    "authorize-post",
    "client-public",
    "client-confidential-symmetric",
    "context-standalone-patient",
    "permission-offline",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
];

/// Scopes a client may register for and request.
pub const SCOPES_SUPPORTED: &[&str] = &[
    "launch/patient",
    "offline_access",
    "patient/*.read",
    "patient/*.rs",
    "user/*.read",
    "user/*.rs",
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
        "authorization_endpoint": state.url("/oauth/authorize"),
        "token_endpoint": state.url("/oauth/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "registration_endpoint": state.url("/oauth/register"),
        "introspection_endpoint": state.url("/oauth/introspect"),
        "revocation_endpoint": state.url("/oauth/revoke"),
        "management_endpoint": state.url("/apps"),
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "response_types_supported": ["code"],
        "scopes_supported": SCOPES_SUPPORTED,
        "code_challenge_methods_supported": ["S256"],
        "capabilities": CAPABILITIES,
    })
}
