//! `application/x-www-form-urlencoded` bodies as OAuth reads them: each parameter once.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;

use crate::server::error::{OAuthError, BODY_LIMIT};

/// A form body whose parameters each appear at most once (RFC 6749 §3.2).
#[derive(Debug, Default)]
pub struct Form(HashMap<String, String>);

impl Form {
    /// Parse a body; a repeated parameter is `invalid_request`.
    pub fn parse(body: Result<Bytes, BytesRejection>) -> Result<Form, OAuthError> {
        let bytes = body.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                OAuthError::invalid_request(format!(
                    "the request body is larger than {} KiB",
                    BODY_LIMIT / 1024
                ))
                .with_status(StatusCode::PAYLOAD_TOO_LARGE)
            } else {
                OAuthError::invalid_request(format!(
                    "the request body could not be read: {rejection}"
                ))
            }
        })?;
        Self::from_pairs(form_urlencoded::parse(&bytes).into_owned())
    }

    /// Build from decoded pairs; a repeated parameter is `invalid_request`.
    pub fn from_pairs(pairs: impl Iterator<Item = (String, String)>) -> Result<Form, OAuthError> {
        let mut map = HashMap::new();
        for (key, value) in pairs {
            if map.insert(key.clone(), value).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {key:?} appears more than once; send it once"
                )));
            }
        }
        Ok(Form(map))
    }

    /// A parameter's value, treating an empty value as absent (RFC 6749 §3.1).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A parameter that must be present.
    pub fn require(&self, key: &str, hint: &str) -> Result<&str, OAuthError> {
        self.get(key)
            .ok_or_else(|| OAuthError::invalid_request(format!("{key} is missing; {hint}")))
    }
}
