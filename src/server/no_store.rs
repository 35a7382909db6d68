//! `Cache-Control: no-store` and `Pragma: no-cache` on every answer of a route group that
//! carries tokens, secrets, patient data or CSRF tokens, errors included. A layer per group,
//! so a handler cannot forget it; a header a handler set itself is kept.

use axum::http::{header, HeaderValue};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

/// `router` with `no-store` and `no-cache` added to every response that lacks them.
pub fn no_store<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::PRAGMA,
            HeaderValue::from_static("no-cache"),
        ))
}
