//! What each fault answers: the error a real server with that problem gives, in the shape
//! the endpoint's real errors have (OAuth JSON, an OperationOutcome, an error redirect or
//! page). `Retry-After` and the marker header are added by [`super::annotate`].

use axum::http::StatusCode;

use super::fault::Fault;
use crate::server::error::{FhirError, OAuthError};

/// How an authorize request is answered by a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeAnswer {
    /// The error page shown when the client or redirect URI cannot be trusted (no redirect).
    Page(String),
    /// An error redirect to the client with this `error` and `error_description` (and the
    /// request's `state`).
    Redirect(&'static str, &'static str),
}

/// The authorize answer of a fault; `None` for one that does not answer there (`slow`).
pub fn authorize_answer(
    fault: Fault,
    client_id: &str,
    redirect_uri: &str,
) -> Option<AuthorizeAnswer> {
    Some(match fault {
        Fault::AuthorizeInvalidClient => AuthorizeAnswer::Page(format!(
            "No app with client_id {client_id} is registered here."
        )),
        Fault::AuthorizeInvalidRedirectUri => AuthorizeAnswer::Page(format!(
            "The redirect_uri {redirect_uri} is not one this app registered; it must match a registered URI exactly."
        )),
        Fault::AuthorizeInvalidScope => AuthorizeAnswer::Redirect(
            "invalid_scope",
            "the requested scope is not one this server grants this app",
        ),
        Fault::AuthorizeAccessDenied => AuthorizeAnswer::Redirect(
            "access_denied",
            "the participant denied the app access",
        ),
        Fault::AuthorizeServerError => AuthorizeAnswer::Redirect(
            "server_error",
            "the authorization server met an unexpected condition; try again later",
        ),
        _ => return None,
    })
}

/// The token endpoint's answer of a fault; `None` for one that does not answer there.
pub fn token_answer(fault: Fault) -> Option<OAuthError> {
    Some(match fault {
        Fault::TokenInvalidClient => OAuthError {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: "client authentication failed: the client is unknown or its credentials are wrong".into(),
            www_authenticate: Some("Basic realm=\"smartnb\", charset=\"UTF-8\""),
        },
        Fault::TokenInvalidGrant => OAuthError::bad_request(
            "invalid_grant",
            "the authorization code is invalid, expired or already used; ask the participant to authorize again",
        ),
        Fault::TokenExpiredRefresh => OAuthError::bad_request(
            "invalid_grant",
            "the refresh token has expired; ask the participant to authorize again",
        ),
        Fault::TokenInvalidScope => OAuthError::bad_request(
            "invalid_scope",
            "the requested scope is not one this server grants this client",
        ),
        Fault::TokenReplayedJti => OAuthError {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: "the client assertion's jti was used before by this client (replayed assertion); sign a new assertion with a fresh jti".into(),
            www_authenticate: Some("Basic realm=\"smartnb\", charset=\"UTF-8\""),
        },
        Fault::TokenUnavailable => OAuthError::bad_request(
            "temporarily_unavailable",
            "the token endpoint is overloaded or down for maintenance; retry after the Retry-After seconds",
        )
        .with_status(StatusCode::SERVICE_UNAVAILABLE),
        _ => return None,
    })
}

/// The FHIR API's answer of a fault; `None` for one that does not answer there.
pub fn fhir_answer(fault: Fault) -> Option<FhirError> {
    Some(match fault {
        Fault::FhirExpiredToken => crate::server::fhir::access::expired_token(),
        Fault::FhirInvalidToken => crate::server::fhir::access::unknown_token(),
        Fault::FhirInsufficientScope => {
            let text = "the access token's scopes do not allow this request; ask for a token with the scope it needs";
            let mut error = FhirError::forbidden(text);
            error.www_authenticate = Some(format!(
                "Bearer realm=\"smartnb\", error=\"insufficient_scope\", error_description=\"{text}\""
            ));
            error
        }
        Fault::FhirServerError => FhirError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "the FHIR server met an unexpected error; try again later",
        ),
        Fault::FhirThrottled => FhirError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "too many requests; retry after the Retry-After seconds",
        ),
        _ => return None,
    })
}
