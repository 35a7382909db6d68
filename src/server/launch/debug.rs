//! `POST /oauth/debug/launch`: mint an EHR launch without the EHR page, as the debug token
//! endpoint mints tokens without the browser (reached only as `debug_gate` allows).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::server::error::OAuthError;
use crate::server::oauth::json_object;
use crate::server::state::AppState;

use super::mint::{lifetime, mint, EncounterChoice, LaunchRequest};

/// The user a debug launch is for when none is named: the practitioner.
pub const DEFAULT_USER: &str = "dr-carter";

const FIELDS: &[&str] = &[
    "patient_id",
    "encounter_id",
    "username",
    "client_id",
    "intent",
    "need_patient_banner",
    "fhir_context",
    "fault",
];

/// POST /oauth/debug/launch: `{"launch", "iss", "expires_in"}`.
pub async fn launch(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, OAuthError> {
    let m = json_object(&headers, body)?;
    let request = parse(&m)?;
    let (id, _) = mint(&state, request).await.map_err(|e| {
        let error = OAuthError::bad_request(e.code, e.description);
        if e.code == "temporarily_unavailable" {
            error.with_status(StatusCode::SERVICE_UNAVAILABLE)
        } else {
            error
        }
    })?;
    Ok(Json(json!({
        "launch": id,
        "iss": state.fhir_base(),
        "expires_in": lifetime(&state),
    })))
}

fn parse(m: &Map<String, Value>) -> Result<LaunchRequest, OAuthError> {
    if let Some(unknown) = m.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(OAuthError::invalid_request(format!(
            "unknown field {unknown:?}; the fields are {}",
            FIELDS.join(", ")
        )));
    }
    let text = |key: &str| -> Result<Option<String>, OAuthError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(OAuthError::invalid_request(format!(
                "{key} must be a string, not {other}"
            ))),
        }
    };
    let patient_id = text("patient_id")?
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            OAuthError::bad_request(
                "no_patient",
                "patient_id is missing; name the patient whose chart the EHR has open",
            )
        })?;
    let encounter = match text("encounter_id")?.as_deref() {
        None | Some("") => EncounterChoice::None,
        Some("auto") => EncounterChoice::Latest,
        Some(id) => EncounterChoice::Id(id.to_string()),
    };
    let need_patient_banner = match m.get("need_patient_banner") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(OAuthError::invalid_request(format!(
                "need_patient_banner must be true or false, not {other}"
            )))
        }
    };
    let fhir_context = match m.get("fhir_context") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                // SMART's own shape, {"reference": "Type/id"}, is accepted too.
                Value::Object(o) => o
                    .get("reference")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| bad_context(item)),
                other => Err(bad_context(other)),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(bad_context(other)),
    };
    let fault = match text("fault")?.as_deref() {
        None | Some("") => None,
        Some(name) => Some(
            crate::server::simulate::parse_fault(name)
                .map_err(|e| OAuthError::bad_request("unknown_fault", e))?,
        ),
    };
    Ok(LaunchRequest {
        fault,
        username: text("username")?.unwrap_or_else(|| DEFAULT_USER.to_string()),
        patient_id,
        encounter,
        client_id: text("client_id")?,
        intent: text("intent")?,
        need_patient_banner,
        fhir_context,
    })
}

fn bad_context(value: &Value) -> OAuthError {
    OAuthError::invalid_request(format!(
        "fhir_context must be a list of references like \"Observation/<id>\", not {value}"
    ))
}
