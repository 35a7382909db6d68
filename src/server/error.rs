//! Error responses: OAuth JSON errors and FHIR OperationOutcomes, never a bare 500.

use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The largest request body any endpoint reads.
pub const BODY_LIMIT: usize = 64 * 1024;

/// An OAuth-style error: `{"error": code, "error_description": text}`.
#[derive(Debug, Clone)]
pub struct OAuthError {
    /// HTTP status to answer with.
    pub status: StatusCode,
    /// The machine-readable code, e.g. `invalid_client`.
    pub code: &'static str,
    /// What went wrong and what to do about it, for a person.
    pub description: String,
    /// `WWW-Authenticate` value, when the error is about authentication.
    pub www_authenticate: Option<&'static str>,
}

impl OAuthError {
    /// A 400 with the given code and description.
    pub fn bad_request(code: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            code,
            description: description.into(),
            www_authenticate: None,
        }
    }

    /// `invalid_request`, 400.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::bad_request("invalid_request", description)
    }

    /// Same error with another status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "error_description": self.description});
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(value) = self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
        }
        response
    }
}

/// A FHIR error, answered as an OperationOutcome.
#[derive(Debug, Clone)]
pub struct FhirError {
    /// HTTP status to answer with.
    pub status: StatusCode,
    /// OperationOutcome.issue.code, e.g. `not-found`.
    pub issue: &'static str,
    /// What went wrong and what to do about it, for a person.
    pub diagnostics: String,
    /// `WWW-Authenticate` value for 401s.
    pub www_authenticate: Option<String>,
}

impl FhirError {
    /// An error with the given status, issue type and text.
    pub fn new(status: StatusCode, issue: &'static str, diagnostics: impl Into<String>) -> Self {
        FhirError {
            status,
            issue,
            diagnostics: diagnostics.into(),
            www_authenticate: None,
        }
    }

    /// 400 `invalid`.
    pub fn invalid(diagnostics: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", diagnostics)
    }

    /// 404 `not-found`.
    pub fn not_found(diagnostics: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", diagnostics)
    }

    /// 403 `forbidden`.
    pub fn forbidden(diagnostics: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", diagnostics)
    }

    /// 401 `login` with an RFC 6750 challenge.
    pub fn unauthorized(error: Option<&str>, diagnostics: impl Into<String>) -> Self {
        let diagnostics = diagnostics.into();
        let challenge = match error {
            Some(code) => format!(
                "Bearer realm=\"smartnb\", error=\"{code}\", error_description=\"{}\"",
                diagnostics.replace(['"', '\\'], "'")
            ),
            None => "Bearer realm=\"smartnb\"".to_string(),
        };
        FhirError {
            status: StatusCode::UNAUTHORIZED,
            issue: "login",
            diagnostics,
            www_authenticate: Some(challenge),
        }
    }
}

/// The OperationOutcome body for one issue.
pub fn operation_outcome(severity: &str, issue: &str, diagnostics: &str) -> serde_json::Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": issue, "diagnostics": diagnostics}]
    })
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let body = operation_outcome("error", self.issue, &self.diagnostics);
        let mut response = (self.status, fhir_json(&body)).into_response();
        if let Some(challenge) = self.www_authenticate {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// A body with `Content-Type: application/fhir+json`.
pub fn fhir_json(value: &serde_json::Value) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/fhir+json; charset=utf-8"),
        )],
        value.to_string(),
    )
}

/// Unknown paths: an OperationOutcome under the FHIR bases, an OAuth-style error elsewhere.
pub async fn not_found(uri: Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") {
        FhirError::not_found(format!(
            "no FHIR endpoint at {path}; reads look like /api/fhir/Patient/{{id}} and searches like /api/fhir/Observation?patient={{id}}"
        ))
        .into_response()
    } else {
        OAuthError::bad_request("not_found", format!("no endpoint at {path}; see /.well-known/smart-configuration for the endpoints this server has"))
            .with_status(StatusCode::NOT_FOUND)
            .into_response()
    }
}

/// A known path with the wrong method.
pub async fn method_not_allowed(uri: Uri) -> Response {
    OAuthError::bad_request(
        "method_not_allowed",
        format!("{} does not accept this HTTP method", uri.path()),
    )
    .with_status(StatusCode::METHOD_NOT_ALLOWED)
    .into_response()
}
