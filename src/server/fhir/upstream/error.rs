//! What can go wrong with the upstream FHIR server, and the OperationOutcome each becomes.
//!
//! The client learns what kind of trouble it was (timeout 504, anything else the upstream did
//! wrong 502) but not the upstream's address or its raw error pages; the server log has those.

use std::time::Duration;

use axum::http::StatusCode;

use crate::server::error::FhirError;

/// Why `--fhir-upstream` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Not an absolute http(s) URL, or one with a query or fragment.
    #[error("--fhir-upstream {0:?} is not a FHIR base URL: give an absolute http:// or https:// URL without query or fragment, e.g. https://fhir.example.org/r4")]
    BadUrl(String),
    /// The HTTP client could not be set up.
    #[error("the HTTP client for the upstream FHIR server could not be set up: {0}")]
    Client(String),
}

/// One failed exchange with the upstream FHIR server.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No complete answer within the configured time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection could not be made.
    #[error("cannot connect: {0}")]
    Unreachable(String),
    /// The connection broke or the exchange failed otherwise.
    #[error("the exchange failed: {0}")]
    Transport(String),
    /// A non-success status, with the diagnostics of its OperationOutcome if it sent one.
    #[error("HTTP {status}: {diagnostics}")]
    Status {
        /// The upstream's status code.
        status: u16,
        /// Its OperationOutcome's diagnostics, shortened, or "".
        diagnostics: String,
    },
    /// The body was larger than the proxy reads.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The body is not JSON.
    #[error("the answer is not JSON")]
    NotJson,
    /// JSON, but not the kind of resource asked for.
    #[error("{0}")]
    Unexpected(String),
}

/// What the failed request was, for the wording of the OperationOutcome.
#[derive(Debug, Clone, Copy)]
pub enum Asked<'a> {
    /// A read of `type/id`.
    Read(&'a str, &'a str),
    /// A search on a type, or a page of one.
    Search,
    /// `Patient/{id}/$everything`.
    Everything(&'a str),
}

impl UpstreamError {
    /// The OperationOutcome for the client.
    pub fn into_fhir(self, asked: Asked<'_>) -> FhirError {
        let gateway = |issue, text: String| FhirError::new(StatusCode::BAD_GATEWAY, issue, text);
        match self {
            UpstreamError::Timeout(limit) => FhirError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!("the upstream FHIR server did not answer within {} seconds; try again later", limit.as_secs_f32()),
            ),
            UpstreamError::Unreachable(_) => gateway(
                "transient",
                "the upstream FHIR server cannot be reached; try again later".into(),
            ),
            UpstreamError::Transport(_) => gateway(
                "transient",
                "the exchange with the upstream FHIR server broke off; try again".into(),
            ),
            UpstreamError::Status { status: 404 | 410, .. } => match asked {
                // Exactly the bundled store's wording: an unknown resource and one outside the
                // token's reach must look alike.
                Asked::Read(t, id) => FhirError::not_found(format!("{t}/{id} is not known")),
                Asked::Everything(id) => FhirError::not_found(format!("Patient/{id} is not known")),
                Asked::Search => FhirError::not_found(
                    "the upstream FHIR server has no such search endpoint",
                ),
            },
            UpstreamError::Status { status: 405 | 501, .. } if matches!(asked, Asked::Everything(_)) => {
                FhirError::new(
                    StatusCode::NOT_IMPLEMENTED,
                    "not-supported",
                    "the upstream FHIR server does not offer Patient/$everything; search each type with patient={id} instead",
                )
            }
            UpstreamError::Status { status: 400 | 422, diagnostics } => FhirError::invalid(
                if diagnostics.is_empty() {
                    "the upstream FHIR server refused the request as malformed".to_string()
                } else {
                    format!("the upstream FHIR server refused the request: {diagnostics}")
                },
            ),
            UpstreamError::Status { status, .. } => gateway(
                "exception",
                format!("the upstream FHIR server answered HTTP {status}"),
            ),
            UpstreamError::TooLarge(limit) => gateway(
                "exception",
                format!("the upstream FHIR server's answer is larger than {limit} bytes; ask for less (_count)"),
            ),
            UpstreamError::NotJson => gateway(
                "exception",
                "the upstream FHIR server's answer is not FHIR JSON".into(),
            ),
            UpstreamError::Unexpected(what) => gateway("exception", what),
        }
    }
}

/// Classify a reqwest failure.
pub fn from_reqwest(e: reqwest::Error, timeout: Duration) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::Timeout(timeout)
    } else if e.is_connect() {
        UpstreamError::Unreachable(e.to_string())
    } else {
        UpstreamError::Transport(e.to_string())
    }
}

/// The diagnostics of an OperationOutcome body, at most 300 characters, or "".
pub fn diagnostics_of(body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    if json["resourceType"] != "OperationOutcome" {
        return String::new();
    }
    let texts: Vec<&str> = json["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["diagnostics"].as_str().or(i["details"]["text"].as_str()))
        .collect();
    texts.join("; ").chars().take(300).collect()
}
